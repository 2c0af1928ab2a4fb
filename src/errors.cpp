#include <asynchttp/errors.hpp>

#include <cstring>

namespace asynchttp {

OSError::OSError(const std::string& what, int code)
    : std::runtime_error(what + ": " + std::strerror(code)), code_(code) {}

}  // namespace asynchttp
