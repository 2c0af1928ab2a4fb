// uri: URI parsing, building and percent-encoding per RFC 3986 (Nim's std/uri).
#include <asynchttp/uri.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace asynchttp {

namespace {

constexpr std::string_view hexDigits = "0123456789ABCDEF";

bool isAsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool isUnreserved(char c) {
  return isAsciiAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

bool isSchemeChar(char c) {
  return isAsciiAlnum(c) || c == '+' || c == '-' || c == '.';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes the escape starting at s[i] == '%' and moves `i` to its last character. A malformed
// or truncated escape yields just the '%', so the characters after it are kept literally.
char decodePercent(std::string_view s, std::size_t& i) {
  if (i + 2 >= s.size()) return '%';
  const int high = hexValue(s[i + 1]);
  const int low = hexValue(s[i + 2]);
  if (high < 0 || low < 0) return '%';
  i += 2;
  return static_cast<char>(high * 16 + low);
}

// Decodes one query field up to (not including) a byte in `stops`; returns where it stopped.
std::size_t decodeField(std::string_view data, std::size_t i, std::string_view stops,
                        std::string& field) {
  for (; i < data.size() && stops.find(data[i]) == std::string_view::npos; ++i) {
    const char c = data[i];
    if (c == '%') {
      field += decodePercent(data, i);
    } else {
      field += c == '+' ? ' ' : c;
    }
  }
  return i;
}

// The input as it may appear in a message: control bytes escaped as \xNN so that a hostile
// URI cannot forge log lines, and cut short so that a huge one cannot flood them.
std::string printable(std::string_view text) {
  constexpr std::size_t maxShown = 200;
  std::string out;
  for (const char c : text.substr(0, maxShown)) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f || c == '\\') {
      out += "\\x";
      out += hexDigits[byte >> 4];
      out += hexDigits[byte & 0xf];
    } else {
      out += c;
    }
  }
  if (text.size() > maxShown) out += "...";
  return out;
}

[[noreturn]] void fail(std::string_view what, std::string_view text) {
  throw UriParseError(std::string(what) + " in URI '" + printable(text) + "'");
}

// A request target with a raw control byte or space was not percent-encoded by its sender;
// accepting it would let such bytes through to logs and handlers.
void checkCharacters(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7f || byte == ' ') {
      std::string what = "invalid character 0x";
      what += hexDigits[byte >> 4];
      what += hexDigits[byte & 0xf];
      what += " at index " + std::to_string(i);
      fail(what, text);
    }
  }
}

// Length of the scheme-like prefix: parseUri takes it as a scheme if a ':' follows it.
std::size_t schemeLength(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && isSchemeChar(text[i])) ++i;
  return i;
}

bool wouldReadAsScheme(std::string_view path) {
  const std::size_t i = schemeLength(path);
  return i < path.size() && path[i] == ':';
}

bool hasBracket(std::string_view s) {
  return s.find_first_of("[]") != std::string_view::npos;
}

// "host", "host:port", "[v6]" or "[v6]:port". The port is kept verbatim, digits or not, as
// Nim does ("//git@github.com:dom96/packages" has port "dom96").
void parseHostPort(std::string_view hostPort, std::string_view text, Uri& result) {
  if (!hostPort.starts_with('[')) {
    if (hasBracket(hostPort)) fail("'[' or ']' outside an IPv6 literal", text);
    const std::size_t colon = hostPort.find(':');
    result.hostname = hostPort.substr(0, colon);
    if (colon != std::string_view::npos) result.port = hostPort.substr(colon + 1);
    return;
  }
  const std::size_t close = hostPort.find(']');
  if (close == std::string_view::npos) fail("unterminated IPv6 literal", text);
  const std::string_view literal = hostPort.substr(1, close - 1);
  if (literal.empty()) fail("empty IPv6 literal", text);
  if (literal.find('[') != std::string_view::npos) fail("nested '[' in IPv6 literal", text);
  std::string_view rest = hostPort.substr(close + 1);
  if (!rest.empty() && rest.front() != ':') fail("unexpected character after IPv6 literal", text);
  if (!rest.empty()) rest.remove_prefix(1);
  if (hasBracket(rest)) fail("'[' or ']' in port", text);
  result.hostname = literal;
  result.port = rest;
  result.isIpv6 = true;
}

// "[user[:password]@]hostport". The last '@' ends the user info, so that an unencoded '@'
// before it (as in "mailto:a@b,c@d") stays in the user info instead of being lost.
void parseAuthority(std::string_view authority, std::string_view text, Uri& result) {
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userInfo = authority.substr(0, at);
    if (hasBracket(userInfo)) fail("'[' or ']' in user info", text);
    const std::size_t colon = userInfo.find(':');
    result.username = userInfo.substr(0, colon);
    if (colon != std::string_view::npos) result.password = userInfo.substr(colon + 1);
    authority.remove_prefix(at + 1);
  }
  parseHostPort(authority, text, result);
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Path, then "?query", then "#anchor", from text[i] on.
void parsePathQueryAnchor(std::string_view text, std::size_t i, Uri& result) {
  std::string_view rest = text.substr(i);
  const std::size_t pathEnd = rest.find_first_of("?#");
  const std::string_view path = rest.substr(0, pathEnd);
  // A mailto URI has no "//", yet its "path" is the address: split it as an authority. (With
  // "//", the authority was there and this is a path.)
  if (result.opaque && equalsIgnoreCase(result.scheme, "mailto")) {
    parseAuthority(path, text, result);
  } else {
    result.path = path;
  }
  if (pathEnd == std::string_view::npos) return;
  rest.remove_prefix(pathEnd);
  if (rest.front() == '?') {
    const std::size_t queryEnd = rest.find('#');
    result.query = rest.substr(1, queryEnd == std::string_view::npos ? queryEnd : queryEnd - 1);
    if (queryEnd == std::string_view::npos) return;
    rest.remove_prefix(queryEnd);
  }
  result.anchor = rest.substr(1);
}

void clear(Uri& uri) {
  for (std::string* part : {&uri.scheme, &uri.username, &uri.password, &uri.hostname, &uri.port,
                            &uri.path, &uri.query, &uri.anchor}) {
    part->clear();
  }
  uri.opaque = false;
  uri.isIpv6 = false;
}

// Drops the last "/segment" (or the lone first segment) from a path being built.
void popLastSegment(std::string& output) {
  const std::size_t slash = output.rfind('/');
  output.erase(slash == std::string::npos ? 0 : slash);
}

// RFC 3986 section 5.2.3: the reference path relative to the base path's directory.
std::string merge(const Uri& base, const Uri& reference) {
  if (!base.hostname.empty() && base.path.empty()) return "/" + reference.path;
  const std::size_t slash = base.path.rfind('/');
  if (slash == std::string::npos) return reference.path;
  return base.path.substr(0, slash + 1) + reference.path;
}

void copyAuthority(Uri& dest, const Uri& src) {
  dest.username = src.username;
  dest.password = src.password;
  dest.hostname = src.hostname;
  dest.port = src.port;
  dest.isIpv6 = src.isIpv6;
  dest.opaque = src.opaque;
}

std::string base64Encode(std::string_view data) {
  constexpr std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < data.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, data.size() - i);
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      const auto byte = k < n ? static_cast<unsigned char>(data[i + k]) : 0U;
      group = (group << 8) | byte;
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= n ? alphabet[(group >> (18 - 6 * k)) & 0x3f] : '=';
    }
  }
  return out;
}

}  // namespace

// --- Percent-encoding ---------------------------------------------------------------------

std::string encodeUrl(std::string_view s, bool usePlus) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (const char c : s) {
    if (isUnreserved(c)) {
      out += c;
    } else if (c == ' ' && usePlus) {
      out += '+';
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out += '%';
      out += hexDigits[byte >> 4];
      out += hexDigits[byte & 0xf];
    }
  }
  return out;
}

std::string decodeUrl(std::string_view s, bool decodePlus) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      out += decodePercent(s, i);
    } else {
      out += s[i] == '+' && decodePlus ? ' ' : s[i];
    }
  }
  return out;
}

std::string encodeQuery(const QueryPairs& query, bool usePlus, bool omitEq, char sep) {
  std::string out;
  for (const auto& [key, value] : query) {
    if (!out.empty()) out += sep;
    out += encodeUrl(key, usePlus);
    if (!omitEq || !value.empty()) {
      out += '=';
      out += encodeUrl(value, usePlus);
    }
  }
  return out;
}

std::string encodeQuery(std::initializer_list<std::pair<std::string, std::string>> query,
                        bool usePlus, bool omitEq, char sep) {
  return encodeQuery(QueryPairs(query), usePlus, omitEq, sep);
}

QueryPairs decodeQuery(std::string_view data, char sep) {
  const char keyStops[] = {'=', sep};
  const std::string_view valueStops(&sep, 1);
  QueryPairs pairs;
  std::size_t i = 0;
  while (i < data.size()) {
    auto& [key, value] = pairs.emplace_back();
    i = decodeField(data, i, std::string_view(keyStops, 2), key);
    // Everything up to the separator is the value, '=' included ("b=2c=6" gives "2c=6").
    if (i < data.size() && data[i] == '=') i = decodeField(data, i + 1, valueStops, value);
    ++i;  // Skip the separator.
  }
  return pairs;
}

// --- Parsing and printing -----------------------------------------------------------------

Uri initUri(bool isIpv6) {
  Uri uri;
  uri.isIpv6 = isIpv6;
  return uri;
}

void parseUri(std::string_view text, Uri& result) {
  clear(result);
  checkCharacters(text);
  const bool networkPath = text.starts_with("//");
  if (text.starts_with('/') && !networkPath) return parsePathQueryAnchor(text, 0, result);

  std::size_t i = schemeLength(text);
  if (!networkPath) {
    // No ':' after a scheme-like prefix: a relative path such as "a/b" or "./x".
    if (i == text.size() || text[i] != ':') return parsePathQueryAnchor(text, 0, result);
    if (i == 0) fail("empty scheme before ':'", text);
    result.scheme = text.substr(0, i);
    ++i;  // Skip ':'.
  }

  if (text.substr(i).starts_with("//")) {
    i += 2;
    const std::size_t end = std::min(text.find_first_of("/?#", i), text.size());
    if (end > i) parseAuthority(text.substr(i, end - i), text, result);
    i = end;
  } else {
    result.opaque = true;
  }
  parsePathQueryAnchor(text, i, result);
}

Uri parseUri(std::string_view text) {
  Uri uri;
  parseUri(text, uri);
  return uri;
}

std::string to_string(const Uri& uri) {
  std::string out;
  const bool hasAuthority = !uri.hostname.empty() || !uri.username.empty() ||
                            !uri.password.empty() || !uri.port.empty() || uri.isIpv6;
  if (!uri.scheme.empty()) {
    out += uri.scheme;
    out += uri.opaque ? ":" : "://";
  } else if (hasAuthority || uri.path.starts_with("//")) {
    // A network-path reference, or a path that would otherwise read as one (RFC 3986 5.3).
    out += "//";
  } else if (wouldReadAsScheme(uri.path)) {
    out += "./";  // Else "a:b" would read as scheme "a".
  }
  // An opaque address starting "//" ("mailto:@//a") would read back as an authority: its empty
  // user info stays.
  const bool emptyUserInfoShown = uri.opaque && uri.hostname.starts_with("//");
  if (!uri.username.empty() || !uri.password.empty() || emptyUserInfoShown) {
    out += uri.username;
    if (!uri.password.empty()) out += ':' + uri.password;
    out += '@';
  }
  // A hostname set by hand may end in '/' ("example.com/"); the path supplies that slash. An
  // opaque URI's "hostname" is its address ("mailto:a/"), printed as parsed.
  std::string_view host = uri.hostname;
  if (host.ends_with('/') && !uri.opaque) host.remove_suffix(1);
  if (uri.isIpv6) {
    out += '[';
    out += host;
    out += ']';
  } else {
    out += host;
  }
  if (!uri.port.empty()) out += ':' + uri.port;
  if (!uri.path.empty()) {
    if (!uri.hostname.empty() && uri.path.front() != '/') out += '/';
    out += uri.path;
  }
  if (!uri.query.empty()) out += '?' + uri.query;
  if (!uri.anchor.empty()) out += '#' + uri.anchor;
  return out;
}

std::ostream& operator<<(std::ostream& os, const Uri& uri) {
  return os << to_string(uri);
}

bool isAbsolute(const Uri& uri) {
  return !uri.scheme.empty() && (!uri.hostname.empty() || !uri.path.empty());
}

// --- Building -----------------------------------------------------------------------------

Uri combine(const Uri& base, const Uri& reference) {
  // A reference with the base's own scheme is resolved as if it had none ("http:g" against
  // an http base gives "http://a/b/c/g"): the non-strict reading that RFC 3986 5.2.2 permits.
  if (!reference.scheme.empty() && reference.scheme != base.scheme) {
    Uri result = reference;
    result.path = detail::removeDotSegments(reference.path);
    return result;
  }
  Uri result;
  if (!reference.hostname.empty()) {
    copyAuthority(result, reference);
    result.path = detail::removeDotSegments(reference.path);
    result.query = reference.query;
  } else {
    if (reference.path.empty()) {
      result.path = base.path;
      result.query = reference.query.empty() ? base.query : reference.query;
    } else {
      result.path = detail::removeDotSegments(
          reference.path.starts_with('/') ? reference.path : merge(base, reference));
      result.query = reference.query;
    }
    copyAuthority(result, base);
  }
  result.scheme = base.scheme;
  result.anchor = reference.anchor;
  return result;
}

Uri combine(std::initializer_list<Uri> uris) {
  if (uris.size() == 0) return initUri();
  Uri result = *uris.begin();
  for (auto it = uris.begin() + 1; it != uris.end(); ++it) result = combine(result, *it);
  return result;
}

Uri operator/(Uri uri, std::string_view path) {
  const bool pathHasSlash = path.starts_with('/');
  if (uri.path.empty()) {
    if (!pathHasSlash) uri.path = "/";
  } else if (uri.path.ends_with('/')) {
    if (pathHasSlash) path.remove_prefix(1);
  } else if (!pathHasSlash) {
    uri.path += '/';
  }
  uri.path += path;
  return uri;
}

Uri withQuery(Uri uri, const QueryPairs& query) {
  uri.query = encodeQuery(query);
  return uri;
}

Uri withQuery(Uri uri, std::initializer_list<std::pair<std::string, std::string>> query) {
  uri.query = encodeQuery(query);
  return uri;
}

std::string getDataUri(std::string_view data, std::string_view mime, std::string_view encoding) {
  if (mime.empty() || encoding.empty()) {
    throw ValueError("getDataUri: the MIME type and the encoding must not be empty");
  }
  std::string out = "data:";
  out += mime;
  out += ";charset=";
  out += encoding;
  out += ";base64,";
  out += base64Encode(data);
  return out;
}

namespace detail {

std::string removeDotSegments(std::string_view path) {
  std::string output;
  output.reserve(path.size());
  std::string_view input = path;
  while (!input.empty()) {
    if (input.starts_with("../")) {
      input.remove_prefix(3);
    } else if (input.starts_with("./")) {
      input.remove_prefix(2);
    } else if (input.starts_with("/./")) {
      input.remove_prefix(2);
    } else if (input == "/.") {
      input = "/";
    } else if (input.starts_with("/../")) {
      input.remove_prefix(3);
      popLastSegment(output);
    } else if (input == "/..") {
      input = "/";
      popLastSegment(output);
    } else if (input == "." || input == "..") {
      input = {};
    } else {
      // Move the first segment, with its leading '/', to the output.
      const std::size_t end = std::min(input.find('/', 1), input.size());
      output += input.substr(0, end);
      input.remove_prefix(end);
    }
  }
  return output;
}

}  // namespace detail

}  // namespace asynchttp
