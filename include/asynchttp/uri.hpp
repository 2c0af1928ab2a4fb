// uri: URI parsing, building and percent-encoding per RFC 3986 (Nim's std/uri).
// A leaf module: it depends on nothing in asynchttp but the exception types.
#pragma once

#include <asynchttp/errors.hpp>

#include <concepts>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asynchttp {

/// A URI string was malformed (Nim's UriParseError).
class UriParseError : public ValueError {
 public:
  using ValueError::ValueError;
};

/// The parts of a URI, kept raw (still percent-encoded) as they appear in the text.
struct Uri {
  std::string scheme, username, password;
  std::string hostname, port, path, query, anchor;
  /// No "//" after the scheme ("mailto:x", "urn:a:b").
  bool opaque = false;
  /// The hostname is an IP literal, written between brackets.
  bool isIpv6 = false;

  friend bool operator==(const Uri&, const Uri&) = default;
};

/// Key/value pairs of a query string, in order; keys may repeat.
using QueryPairs = std::vector<std::pair<std::string, std::string>>;

// --- Percent-encoding ---------------------------------------------------------------------

/// Percent-encodes all but RFC 3986 unreserved characters; a space becomes '+' if `usePlus`.
std::string encodeUrl(std::string_view s, bool usePlus = true);
/// Decodes "%xx" escapes (a malformed one is kept as-is) and, if `decodePlus`, '+' to space.
std::string decodeUrl(std::string_view s, bool decodePlus = true);

/// Builds "k=v&k2=v2" with encoded keys and values; `omitEq` drops the '=' of an empty value.
std::string encodeQuery(const QueryPairs& query, bool usePlus = true, bool omitEq = true,
                        char sep = '&');
/// As above, for a braced list: `encodeQuery({{"a", "1"}})`.
std::string encodeQuery(std::initializer_list<std::pair<std::string, std::string>> query,
                        bool usePlus = true, bool omitEq = true, char sep = '&');
/// Splits a query string at `sep` and '=' and decodes each key and value ('+' is a space).
QueryPairs decodeQuery(std::string_view data, char sep = '&');

// --- Parsing and printing -----------------------------------------------------------------

/// An empty URI; `isIpv6` marks the hostname to be set later as an IP literal.
Uri initUri(bool isIpv6 = false);
/// Parses absolute, relative, network-path and opaque URIs; throws UriParseError if malformed.
Uri parseUri(std::string_view text);
/// As above, reusing the storage of `result`, which is cleared first.
void parseUri(std::string_view text, Uri& result);
/// Recomposes the URI text (Nim's `$`); parseUri(to_string(u)) == u for any parsed `u`.
std::string to_string(const Uri& uri);
/// Writes `to_string(uri)`.
std::ostream& operator<<(std::ostream& os, const Uri& uri);

/// True if the URI has a scheme and a hostname or a path.
bool isAbsolute(const Uri& uri);

// --- Building -----------------------------------------------------------------------------

/// Resolves `reference` against `base` (RFC 3986 section 5.2).
Uri combine(const Uri& base, const Uri& reference);
/// Resolves each URI against the result so far, left to right; an empty list gives initUri().
Uri combine(std::initializer_list<Uri> uris);
/// Resolves three or more URIs left to right: combine(a, b, c) == combine(combine(a, b), c).
template <std::same_as<Uri>... More>
Uri combine(const Uri& first, const Uri& second, const Uri& third, const More&... more) {
  return combine({first, second, third, more...});
}
/// Appends `path` to the URI's path with exactly one '/' between them (Nim's `/`).
Uri operator/(Uri uri, std::string_view path);
/// Replaces the query with the encoded `query` pairs (Nim's `?`).
Uri withQuery(Uri uri, const QueryPairs& query);
/// As above, for a braced list: `withQuery(u, {{"a", "1"}})`.
Uri withQuery(Uri uri, std::initializer_list<std::pair<std::string, std::string>> query);

/// A base64 data URI (RFC 2397): "data:<mime>;charset=<encoding>;base64,<data>".
std::string getDataUri(std::string_view data, std::string_view mime,
                       std::string_view encoding = "utf-8");

namespace detail {
/// Removes "." and ".." segments from a path (RFC 3986 section 5.2.4).
std::string removeDotSegments(std::string_view path);
}  // namespace detail

}  // namespace asynchttp
