// The HTTP/1.1 request parser (RFC 9112): a strict, incremental head parser and chunked-body
// decoder. Pure functions of their input: no I/O, no copies (views into the caller's buffer) and,
// in steady state, no allocation.
#pragma once

#include <asynchttp/httpcore.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace asynchttp::detail {

/// Bounds on what a client may send; each names the status that answers exceeding it.
struct ParserLimits {
  // Bytes of the request line, without its line end -> 414.
  std::size_t maxRequestLine = 8 * 1024;
  // Bytes of the head, every line end included (leading empty lines too) -> 431. Also bounds a
  // chunked body's trailer section.
  std::size_t maxHeaderBytes = 64 * 1024;
  // Field lines -> 431. Callers may raise it up to headerLimit.
  std::size_t maxHeaderCount = 100;
  // Body bytes, declared by Content-Length or by the chunk sizes -> 413.
  std::uint64_t maxBody = 8 * 1024 * 1024;
  // Bytes of chunk extensions on one chunk-size line -> 400.
  std::size_t maxChunkExtensions = 4 * 1024;
  // Whether CONNECT is served (a proxy's business); otherwise it is answered 501.
  bool allowConnect = false;
};

/// Empty lines skipped before a request line (RFC 9112 §2.2); one more is a malformed request.
inline constexpr int kMaxLeadingEmptyLines = 4;
/// Longest method token; a longer one is 501 (no known method is), decided without waiting.
inline constexpr std::size_t kMaxMethodLength = 32;

/// One field line; views into the parsed buffer, the value trimmed of surrounding OWS.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};

/// How the request's body is delimited (RFC 9112 §6.3).
enum class BodyFraming : std::uint8_t { none, contentLength, chunked };

/// A parsed request head. Views point into the parsed buffer. Keep one per connection and pass it
/// to every parse: `headers` is cleared, not freed, so steady state allocates nothing.
struct RequestHead {
  HttpMethod method = HttpMethod::HttpGet;
  std::string_view methodToken;  // "GET"
  std::string_view target;       // as sent: origin-, absolute-, authority- or asterisk-form
  std::string_view version;      // "HTTP/1.1"
  int versionMajor = 1;
  int versionMinor = 1;  // 2..9 are accepted and treated as 1.1
  std::vector<HeaderField> headers;
  BodyFraming framing = BodyFraming::none;
  std::uint64_t contentLength = 0;  // meaningful when framing == contentLength
  bool keepAlive = false;           // the connection may carry another request after this one
  bool expectContinue = false;      // "Expect: 100-continue" on an HTTP/1.1 request
};

/// Outcome of a parse step.
enum class ParseStatus : std::uint8_t { complete, partial, error };

/// What a parse step did. On error, `error` is the status to answer with (then close) and
/// `reason` a short static text for the response body; both are empty otherwise.
struct ParseResult {
  ParseStatus status = ParseStatus::partial;
  std::size_t consumed = 0;  // complete: length of the head / bytes of input used
  HttpCode error{};
  std::string_view reason;
};

// parseRequestHead is called each time bytes arrive, with every byte received so far for this
// head. It returns partial until the head's final empty line has arrived, then complete with
// `consumed` the head's length (the body or the next pipelined request starts there) and `out`
// filled in; after partial or error `out` is unspecified. `alreadyScanned` is the buffer length
// of the previous call that returned partial for this head (0 on the first call): the search for
// the end resumes there, so a head arriving byte by byte costs O(n) overall (plus a memchr
// re-locating the request line while it may still be incomplete). The outcome is a function of
// the bytes alone: a buffer parsed whole or grown byte by byte gives the same result. Limits apply
// to partial input too (414, 431 as soon as exceeded), so a caller never buffers more than
// maxHeaderBytes plus one read. A Content-Length above maxBody is reported here, as 413.
// Strict where RFC 9112 lets a recipient choose (as llhttp is): a line ending in a bare LF is 400
// as soon as it arrives, so is a "#" in the target, and an empty Host with an origin-form target;
// CONNECT is 501 unless limits.allowConnect; the HTTP/2 preface ("PRI * HTTP/2.0") is 505.
/// Parses the request head at the start of `buffer`; see the contract above.
ParseResult parseRequestHead(std::string_view buffer, std::size_t alreadyScanned,
                             const ParserLimits& limits, RequestHead& out);

/// Decodes a chunked body (RFC 9112 §7.1) fed in slices split anywhere: a state machine.
class ChunkedDecoder {
 public:
  /// A decoder at the start of a body; it keeps a copy of `limits`.
  explicit ChunkedDecoder(const ParserLimits& limits) noexcept : limits_(limits) {}

  // decode returns partial having consumed all of `input`; complete with `consumed` the bytes up
  // to the end of the trailer section (what follows belongs to the next request); or error,
  // sticky until reset(), with `consumed` the offset of the offending byte (0 on the calls after,
  // whose input starts there). Every line ends in CRLF (a bare LF is 400). Chunk extensions and
  // trailer fields are validated, then ignored.
  /// Decodes `input`, appending the body bytes to `body`; see the contract above.
  ParseResult decode(std::string_view input, std::string& body);
  /// Readies the decoder for the next body.
  void reset() noexcept;
  /// Body bytes declared by the chunk sizes seen so far.
  std::uint64_t bodySize() const noexcept { return total_; }

 private:
  enum class State : std::uint8_t {
    sizeStart,       // expecting the first hex digit of a chunk size
    size,            // in the chunk size
    extBeforeSemi,   // whitespace after the size or a value: only ";" may follow
    extBeforeName,   // after ";"
    extName,         // in an extension name
    extAfterName,    // whitespace after a name: "=" or ";" may follow
    extBeforeValue,  // after "="
    extValue,        // in a token value
    extQuoted,       // in a quoted-string value
    extQuotedPair,   // after a backslash in a quoted string
    extAfterQuoted,  // after the closing quote
    sizeLineLf,      // after the CR ending a chunk-size line
    data,            // in chunk data
    dataEnd,         // expecting the CRLF after chunk data
    dataLf,          // after that CR
    trailerStart,    // at the start of a trailer line, or of the final empty line
    trailerName,     // in a trailer field name
    trailerValue,    // in a trailer field value
    trailerLf,       // after the CR ending a trailer line
    endLf,           // after the CR of the final empty line
    done,
    failed
  };

  /// Enters the failed state with the given status and returns it.
  ParseResult fail(HttpCode code, std::string_view reason, std::size_t at) noexcept;
  /// Handles the end of a chunk-size line: data follows, or the trailer after the last chunk.
  void endSizeLine() noexcept;

  ParserLimits limits_;
  State state_ = State::sizeStart;
  std::uint64_t chunkSize_ = 0;       // the size being read, then the data bytes still to come
  std::uint64_t total_ = 0;           // sum of the chunk sizes so far
  std::size_t digits_ = 0;            // hex digits of the current size
  std::size_t lineBytes_ = 0;         // extension bytes of this size line, or bytes of the trailer
  std::uint64_t chunks_ = 0;          // chunk-size lines begun
  std::uint64_t extensionBytes_ = 0;  // of every chunk so far
  // Extension bytes a body may carry beyond 16 per chunk and 2 per body byte.
  static constexpr std::uint64_t kExtensionAllowance = 16 * 1024;
  ParseResult failure_;
};

}  // namespace asynchttp::detail
