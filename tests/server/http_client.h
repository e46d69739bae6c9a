// Test helpers for the server: an OpenAI-style HTTP client on loopback (cpp-httplib), server-sent-event parsing,
// and a raw socket for a client that vanishes mid-stream. Every wait is bounded.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace jagged::testing {

struct HttpAnswer {
  int status = -1;  // -1: no answer (connection failed)
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

inline HttpAnswer http_request(int port, const std::string& method, const std::string& path,
                               const std::string& body = "", const std::string& api_key = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  httplib::Headers headers;
  if (!api_key.empty()) headers.emplace("Authorization", "Bearer " + api_key);
  httplib::Result result = method == "GET" ? client.Get(path.c_str(), headers)
                                           : client.Post(path.c_str(), headers, body, "application/json");
  HttpAnswer answer;
  if (!result) return answer;
  answer.status = result->status;
  answer.body = result->body;
  return answer;
}

inline HttpAnswer post_json(int port, const std::string& path, const nlohmann::json& body, const std::string& key = "") {
  return http_request(port, "POST", path, body.dump(), key);
}

// The JSON payloads of "data: ..." events, and whether the stream ended with [DONE].
struct SseStream {
  std::vector<nlohmann::json> chunks;
  bool done = false;
};

inline SseStream parse_sse(const std::string& body) {
  SseStream stream;
  size_t start = 0;
  while (start < body.size()) {
    size_t end = body.find("\n\n", start);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(start, end - start);
    start = end + 2;
    if (event.rfind("data: ", 0) != 0) continue;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      stream.done = true;
      continue;
    }
    stream.chunks.push_back(nlohmann::json::parse(data, nullptr, false));
  }
  return stream;
}

// Polls `get_value` every 20 ms until it returns true or `seconds` pass.
template <typename Condition>
bool eventually(Condition condition, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// The value of an unlabelled Prometheus sample ("name value" line), or -1.
inline double metric(const std::string& text, const std::string& name) {
  const std::string prefix = name + " ";
  size_t pos = 0;
  while ((pos = text.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || text[pos - 1] == '\n') return std::stod(text.substr(pos + prefix.size()));
    pos += prefix.size();
  }
  return -1;
}

// A connected socket that has sent `POST path` with `body` and reads nothing yet (-1 on failure); the caller
// closes it.
inline int send_and_keep_open(int port, const std::string& path, const nlohmann::json& body) {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  if (sock < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string payload = body.dump();
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
  if (::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::send(sock, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(sock);
    return -1;
  }
  return sock;
}

// A client that sends a streaming request, reads until the first event arrives, then closes its socket.
inline bool start_stream_and_vanish(int port, const nlohmann::json& body) {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  if (sock < 0) return false;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{5, 0};
  setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  bool seen = false;
  if (::connect(sock, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string payload = body.dump();
    const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                                "Content-Length: " + std::to_string(payload.size()) + "\r\n\r\n" + payload;
    if (::send(sock, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      std::string received;
      char buffer[4096];
      for (int reads = 0; reads < 100 && !seen; ++reads) {
        const ssize_t got = ::recv(sock, buffer, sizeof(buffer), 0);
        if (got <= 0) break;
        received.append(buffer, static_cast<size_t>(got));
        seen = received.find("data: {") != std::string::npos;
      }
    }
  }
  ::close(sock);
  return seen;
}

}  // namespace jagged::testing
