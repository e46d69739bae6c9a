// An environment variable set for a scope.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace jagged::testing {

// Sets an environment variable for a scope (JAGGED_Q8_ACTIVATIONS=f32, a peer's location...), restoring the old
// value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace jagged::testing
