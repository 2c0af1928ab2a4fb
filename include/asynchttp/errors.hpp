// Exception types of the public API, named as Nim's system module names them.
#pragma once

#include <stdexcept>
#include <string>

namespace asynchttp {

/// A value was malformed or out of range (Nim's ValueError).
class ValueError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// A key was not found in a container (Nim's KeyError).
class KeyError : public std::out_of_range {
 public:
  using std::out_of_range::out_of_range;
};

/// An operating-system call failed; `code()` is the errno value (Nim's OSError).
class OSError : public std::runtime_error {
 public:
  /// Builds the message "<what>: <strerror(code)>" and keeps `code`.
  OSError(const std::string& what, int code);
  /// The errno value of the failed call.
  int code() const noexcept { return code_; }

 private:
  int code_;
};

}  // namespace asynchttp
