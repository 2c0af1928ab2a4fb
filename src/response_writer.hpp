// The HTTP/1 response head, written in one place for every kind of response: `respond`, error
// responses, streams and files. It decides the framing of the body.
#pragma once

#include <asynchttp/asyncdispatch.hpp>
#include <asynchttp/httpcore.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace asynchttp::detail {

/// How a response's body is delimited on the connection.
enum class Framing : std::uint8_t {
  none,           // no body: HEAD, 1xx, 204, 304, or a stream's HEAD response
  contentLength,  // Content-Length: N
  chunked,        // Transfer-Encoding: chunked (HTTP/1.1)
  untilClose,     // the end of the connection ends the body (HTTP/1.0)
  byHandler,      // the handler's own Content-Length or Transfer-Encoding header
};

/// What the connection knows as a head is written.
struct HeadContext {
  bool headRequest = false;  // a response to HEAD: framing headers, but never body bytes
  bool http10 = false;       // HTTP/1.0: keep-alive only when announced
  bool keepAlive = true;     // the connection may carry another request after this one
};

/// What writing the head decided.
struct HeadOutcome {
  Framing framing = Framing::none;
  bool closeAfter = false;  // the connection closes after this response
};

/// Appends the head: status line, `Date` (unless given), `headers`, framing and `Connection`,
/// then `body` (bytes the caller wants copied behind the head, in the same room). `length`: the
/// body's size when known (nullopt: a stream). Throws ValueError for CR, LF or NUL in a header.
HeadOutcome writeHead(std::string& out, HttpCode code, const HttpHeaders& headers,
                      std::optional<std::uint64_t> length, const HeadContext& context,
                      Clock::time_point now, std::string_view body = {});

/// Throws ValueError for a header name or value with CR, LF or NUL in it.
void checkHeaders(const HttpHeaders& headers);
/// Appends `key: value\r\n` for every field (checked first: nothing is appended on error).
void appendHeaderLines(std::string& out, const HttpHeaders& headers);

/// True for a response that never carries body bytes (RFC 9110: 1xx, 204, 304; HEAD aside).
inline bool isBodyless(HttpCode code) noexcept {
  return is1xx(code) || code == Http204 || code == Http304;
}

/// The IMF-fixdate of the current second, formatted once per second per thread. `now` is the
/// loop's cached time: the wall clock is read only when the second changes.
std::string_view httpDate(Clock::time_point now);

/// True when the comma-separated `list` has `token` (case-insensitive).
bool hasToken(std::string_view list, std::string_view token);

}  // namespace asynchttp::detail
