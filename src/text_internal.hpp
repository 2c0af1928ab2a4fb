// A string helper shared by the hot paths of httpcore and the server.
#pragma once

#include <string>
#include <string_view>

namespace asynchttp::detail {

/// Sets `target` to `text` unless it holds it already. Most fields of a request repeat the
/// previous request's on the same connection, and comparing costs far less than
/// std::string::assign's general replace (~70 instructions per call, callgrind).
inline void assignIfChanged(std::string& target, std::string_view text) {
  if (std::string_view(target) != text) target.assign(text);
}

}  // namespace asynchttp::detail
