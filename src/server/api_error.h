// An HTTP error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. Thrown by request parsing and
// routes, caught by the HTTP layer, which answers with `status`.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "jagged/error.h"

namespace jagged::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "")
      : Error(message), status_(status), param_(std::move(param)), code_(std::move(code)) {}
  int status() const { return status_; }
  // OpenAI's error types: invalid_request_error (400, 404, 413), authentication_error (401), rate_limit_error
  // (429), server_error (5xx).
  std::string type() const;
  nlohmann::json json() const;

 private:
  int status_;
  std::string param_;
  std::string code_;
};

inline std::string ApiError::type() const {
  if (status_ == 401) return "authentication_error";
  if (status_ == 429) return "rate_limit_error";
  if (status_ == 503) return "service_unavailable";
  if (status_ >= 500) return "server_error";
  return "invalid_request_error";
}

inline nlohmann::json ApiError::json() const {
  nlohmann::json error = {{"message", what()}, {"type", type()}, {"param", nullptr}, {"code", nullptr}};
  if (!param_.empty()) error["param"] = param_;
  if (!code_.empty()) error["code"] = code_;
  return {{"error", error}};
}

}  // namespace jagged::server
