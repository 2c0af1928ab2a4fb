// libFuzzer entry point for the URI module (include/asynchttp/uri.hpp; see README.md to build
// it). The input is a URI text. Besides memory errors and exceptions other than UriParseError,
// it checks the module's promises:
//  - parseUri(to_string(u)) == u for a parsed u (uri.hpp), and printing is then a fixed point;
//  - parsing into a reused Uri gives what parsing into a fresh one gives;
//  - decodeUrl(encodeUrl(s)) == s, with or without '+' for a space, and encodeUrl writes only
//    unreserved characters, '%' escapes and '+';
//  - decodeQuery(encodeQuery(pairs)) == pairs for pairs decoded from the input;
//  - removeDotSegments leaves no "." or ".." segment in an absolute path, and is idempotent;
//  - combine() with the RFC 3986 section 5.4 base gives an absolute path without dot segments;
//  - getDataUri's base64 decodes back to the input.
#include <asynchttp/uri.hpp>
#include "fuzz_require.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace asynchttp;

namespace {

bool isUnreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool hasDotSegment(std::string_view path) {
  for (std::size_t start = 0; start <= path.size();) {
    const std::size_t slash = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, slash - start);
    if (segment == "." || segment == "..") return true;
    start = slash + 1;
  }
  return false;
}

void checkParse(std::string_view text) {
  Uri u;
  try {
    u = parseUri(text);
  } catch (const UriParseError&) {
    // Reused storage must not change the outcome.
    Uri reused = parseUri("http://user:pw@[::1]:80/p?q#a");
    bool threw = false;
    try {
      parseUri(text, reused);
    } catch (const UriParseError&) {
      threw = true;
    }
    require(threw);
    return;
  }
  Uri reused = parseUri("mailto:user:pw@[::1]:80?q#a");
  parseUri(text, reused);
  require(reused == u);

  const std::string printed = to_string(u);
  Uri again;
  try {
    again = parseUri(printed);
  } catch (const UriParseError&) {
    require(false);  // a parsed URI prints as a URI that parses
  }
  require(again == u);
  require(to_string(again) == printed);
  (void)isAbsolute(u);

  if (u.path.starts_with('/')) {
    const std::string clean = detail::removeDotSegments(u.path);
    require(clean.size() <= u.path.size() && !hasDotSegment(clean));
    require(detail::removeDotSegments(clean) == clean);
  }

  // RFC 3986 section 5.4's base; any reference without a scheme of its own, or with "http",
  // resolves to an absolute path without dot segments.
  static const Uri base = parseUri("http://a/b/c/d;p?q");
  const Uri resolved = combine(base, u);
  if (u.scheme.empty() || u.scheme == "http") {
    require(resolved.scheme == "http");
    require(resolved.path.empty() ||
            (resolved.path.starts_with('/') && !hasDotSegment(resolved.path)));
  }
  (void)combine(u, base);
  (void)combine(u, u);
  (void)to_string(u / "seg");
}

void checkPercent(std::string_view text) {
  for (const bool plus : {true, false}) {
    const std::string encoded = encodeUrl(text, plus);
    for (const char c : encoded) require(isUnreserved(c) || c == '%' || c == '+');
    require(decodeUrl(encoded, plus) == text);
  }
  require(decodeUrl(encodeUrl(text, false), true) == text);  // '+' is escaped without usePlus
  require(decodeUrl(text).size() <= text.size());
}

void checkQuery(std::string_view text) {
  for (const char sep : {'&', ';'}) {
    const QueryPairs pairs = decodeQuery(text, sep);
    // A pair with an empty key and value encodes as nothing when '=' is omitted: last, or first
    // (encodeQuery, like Nim's, puts a separator only after some text: {"", ""}, {"a", ""} gives
    // "a"), it is lost.
    bool emptyPair = false;
    for (const auto& [key, value] : pairs) emptyPair = emptyPair || (key.empty() && value.empty());
    for (const bool plus : {true, false}) {
      require(decodeQuery(encodeQuery(pairs, plus, false, sep), sep) == pairs);
      if (!emptyPair) require(decodeQuery(encodeQuery(pairs, plus, true, sep), sep) == pairs);
    }
  }
}

std::string base64Decode(std::string_view s) {
  constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  require(s.size() % 4 == 0);
  std::string out;
  for (std::size_t i = 0; i < s.size(); i += 4) {
    std::uint32_t group = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const std::size_t v = alphabet.find(s[i + k]);
      if (s[i + k] == '=') {
        ++pad;
      } else {
        require(v != std::string_view::npos && pad == 0);
      }
      group = (group << 6) | (v == std::string_view::npos ? 0U : static_cast<std::uint32_t>(v));
    }
    require(pad <= 2 && (pad == 0 || i + 4 == s.size()));
    for (int k = 0; k < 3 - pad; ++k) out += static_cast<char>((group >> (16 - 8 * k)) & 0xff);
  }
  return out;
}

void checkDataUri(std::string_view text) {
  constexpr std::string_view prefix = "data:text/plain;charset=utf-8;base64,";
  const std::string uri = getDataUri(text, "text/plain");
  require(uri.starts_with(prefix));
  require(base64Decode(std::string_view(uri).substr(prefix.size())) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  checkParse(text);
  checkPercent(text);
  checkQuery(text);
  checkDataUri(text);
  return 0;
}
