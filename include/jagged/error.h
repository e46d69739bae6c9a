// Errors: the library never aborts on bad input; it throws one of these with a message a user can act on.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace jagged {

// Base of every error jagged throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed arguments that cannot work together (shapes, offsets, head counts, ids out of range...).
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A file is missing, truncated or malformed; the message names the file and the problem.
class FileError : public Error {
 public:
  using Error::Error;
};

// Concatenates anything streamable into one string: concat("seqlen ", 3, " > ", 2).
template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace jagged
