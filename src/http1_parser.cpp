// The HTTP/1.1 request parser. See http1_parser.hpp for the contract.
//
// Consistency between a head parsed whole and one grown byte by byte comes from a simple rule:
// the outcome depends only on the first maxHeaderBytes bytes (the "window") and on whether more
// than that has arrived, and every decision that is reported before the head is complete (bad
// method, request line too long, bad request line, head too large, a bare LF) is taken on bytes
// that no later byte can change. Errors inside field lines are reported once the head is complete
// or too large; until then the result is partial, which lets calls after the first skip straight
// to the search for the end of the head. That search looks at every line end anyway, so it also
// finds a bare LF (an LF not after a CR), which is refused as soon as it arrives, ahead of any
// error in the field lines before it.
//
// Where RFC 9112 lets a recipient choose, the parser is strict, as llhttp is: every line end is
// CRLF (§2.2), the target holds no "#", an origin-form target needs a non-empty Host.
#include "http1_parser.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace asynchttp::detail {
namespace {

// --- Character classes (RFC 9110 §5.6, RFC 3986 §3.2.2), one table lookup each ---------------

enum CharClass : std::uint8_t {
  kTchar = 1,       // token character
  kHex = 2,         // HEXDIG
  kFieldValue = 4,  // VCHAR, obs-text, SP, HTAB: may appear in a field value
  kRegName = 8,     // unreserved, sub-delims and "%": may appear in a host name
};

consteval std::array<std::uint8_t, 256> makeClasses() {
  constexpr std::string_view tcharSymbols = "!#$%&'*+-.^_`|~";
  constexpr std::string_view regNameSymbols = "-._~!$&'()*+,;=%";
  std::array<std::uint8_t, 256> table{};
  for (int c = 0; c < 256; ++c) {
    const char ch = static_cast<char>(c);
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    std::uint8_t cls = 0;
    if (alpha || digit || tcharSymbols.find(ch) != std::string_view::npos) cls |= kTchar;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) cls |= kHex;
    if ((c >= 0x20 && c != 0x7f) || c == '\t') cls |= kFieldValue;
    if (alpha || digit || regNameSymbols.find(ch) != std::string_view::npos) cls |= kRegName;
    table[static_cast<std::size_t>(c)] = cls;
  }
  return table;
}

constexpr std::array<std::uint8_t, 256> kClasses = makeClasses();

constexpr bool is(char c, CharClass cls) noexcept {
  return (kClasses[static_cast<unsigned char>(c)] & cls) != 0;
}
constexpr bool isWs(char c) noexcept {
  return c == ' ' || c == '\t';
}
constexpr bool isDigit(char c) noexcept {
  return c >= '0' && c <= '9';
}
constexpr int hexValue(char c) noexcept {
  if (c <= '9') return c - '0';
  return (c | 0x20) - 'a' + 10;
}

// --- Fast scans -----------------------------------------------------------------------------
// Field values and targets are the bulk of a head; checking them 16 bytes at a time with SSE2
// (always present on x86-64) instead of byte by byte roughly halves the parse time of a typical
// browser request. The scalar loop finishes the tail and serves other targets.

/// The first byte of [p, end) that is a control character (< 0x20 or DEL), or end.
const char* findControl(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i minusOne = _mm_set1_epi8(-1);
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7f);
  for (; end - p >= 16; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed compares: bytes >= 0x80 are negative, so "> -1 and < 0x20" is exactly 0x00..0x1f.
    const __m128i ctl = _mm_and_si128(_mm_cmpgt_epi8(v, minusOne), _mm_cmplt_epi8(v, space));
    const int mask = _mm_movemask_epi8(_mm_or_si128(ctl, _mm_cmpeq_epi8(v, del)));
    if (mask != 0) return p + std::countr_zero(static_cast<unsigned>(mask));
  }
#endif
  for (; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c == 0x7f) return p;
  }
  return end;
}

/// The first byte of [p, end) that cannot be in a request-target: not VCHAR (SP, a control, DEL
/// or >= 0x80), or "#" (a fragment is the client's business, never sent: RFC 9112 §3.2); or end.
const char* findTargetEnd(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i bang = _mm_set1_epi8(0x21);
  const __m128i del = _mm_set1_epi8(0x7f);
  const __m128i hash = _mm_set1_epi8('#');
  for (; end - p >= 16; p += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // Signed: bytes >= 0x80 are negative and so also "< 0x21".
    const __m128i stop = _mm_or_si128(_mm_cmplt_epi8(v, bang), _mm_cmpeq_epi8(v, del));
    const int mask = _mm_movemask_epi8(_mm_or_si128(stop, _mm_cmpeq_epi8(v, hash)));
    if (mask != 0) return p + std::countr_zero(static_cast<unsigned>(mask));
  }
#endif
  for (; p != end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c <= 0x20 || c >= 0x7f || c == '#') return p;
  }
  return end;
}

/// What findHeadEnd returns when a line ends in a bare LF before the head's end.
constexpr std::size_t kBareLfFound = std::numeric_limits<std::size_t>::max();
constexpr std::string_view kBareLfReason = "Bare LF";

/// Looks at the line ends from `from` (> 0): just past the empty line that ends a head (its CRLF
/// after a CRLF), kBareLfFound if an LF without a CR before it comes first, 0 if neither is there
/// yet.
std::size_t findHeadEnd(std::string_view w, std::size_t from) noexcept {
  while (from < w.size()) {
    const void* hit = std::memchr(w.data() + from, '\n', w.size() - from);
    if (hit == nullptr) return 0;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(hit) - w.data());
    if (w[lf - 1] != '\r') return kBareLfFound;
    if (lf + 2 < w.size() && w[lf + 1] == '\r' && w[lf + 2] == '\n') return lf + 3;
    from = lf + 1;
  }
  return 0;
}

// --- Small grammar helpers ---------------------------------------------------------------------

/// A rule broken: the status and the static reason; empty (code 0) when all is well.
struct Fault {
  HttpCode code{};
  std::string_view reason;
  explicit operator bool() const noexcept { return code.value != 0; }
};

constexpr ParseResult failWith(Fault f) noexcept {
  return {ParseStatus::error, 0, f.code, f.reason};
}
constexpr ParseResult kPartial{};

std::string_view trimOws(std::string_view s) noexcept {
  while (!s.empty() && isWs(s.front())) s.remove_prefix(1);
  while (!s.empty() && isWs(s.back())) s.remove_suffix(1);
  return s;
}

bool isToken(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is(c, kTchar); });
}

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

/// 1*DIGIT into `value`; false on anything else or on overflow of 64 bits.
bool parseDecimal(std::string_view s, std::uint64_t& value) noexcept {
  if (s.empty()) return false;
  value = 0;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (const char c : s) {
    if (!isDigit(c)) return false;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    // value * 10 + digit <= kMax, without a division per digit.
    if (value > kMax / 10 || (value == kMax / 10 && digit > kMax % 10)) return false;
    value = value * 10 + digit;
  }
  return true;
}

/// Calls `f(element)` for each non-empty element of a comma-separated list (RFC 9110 §5.6.1),
/// trimmed of OWS; commas inside quoted strings do not split. False when `f` returns false or a
/// quoted string is unterminated.
template <class F>
bool forEachElement(std::string_view list, F&& f) {
  std::size_t start = 0;
  bool quoted = false;
  for (std::size_t i = 0; i <= list.size(); ++i) {
    if (i == list.size() || (!quoted && list[i] == ',')) {
      if (quoted) return false;
      const std::string_view element = trimOws(list.substr(start, i - start));
      if (!element.empty() && !f(element)) return false;
      start = i + 1;
    } else if (list[i] == '"') {
      quoted = !quoted;
    } else if (quoted && list[i] == '\\') {
      if (++i == list.size()) return false;
    }
  }
  return true;
}

/// After a quoted string's opening quote at s[i]: the index past its closing quote, or npos.
std::size_t skipQuotedString(std::string_view s, std::size_t i) noexcept {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '"') return i + 1;
    if (s[i] == '\\') ++i;  // quoted-pair; the escaped byte is checked by the caller's class
    if (i >= s.size() || !is(s[i], kFieldValue)) return std::string_view::npos;
  }
  return std::string_view::npos;
}

/// `*( OWS ";" OWS token "=" ( token / quoted-string ) )`, the parameters of a transfer coding.
bool validParameters(std::string_view p) noexcept {
  std::size_t i = 0;
  const auto skipWs = [&] {
    while (i < p.size() && isWs(p[i])) ++i;
  };
  const auto skipToken = [&] {
    const std::size_t start = i;
    while (i < p.size() && is(p[i], kTchar)) ++i;
    return i > start;
  };
  for (;;) {
    skipWs();
    if (i == p.size()) return true;
    if (p[i] != ';') return false;
    ++i;
    skipWs();
    if (!skipToken() || i == p.size() || p[i] != '=') return false;
    ++i;
    if (i < p.size() && p[i] == '"') {
      i = skipQuotedString(p, i);
      if (i == std::string_view::npos) return false;
    } else if (!skipToken()) {
      return false;
    }
  }
}

/// `uri-host [ ":" port ]` (RFC 3986 §3.2.2): a reg-name or IPv4 address, or an IP literal in
/// brackets, and up to 5 digits of port no greater than 65535. CONNECT targets need both parts.
bool validAuthority(std::string_view a, bool requirePort) noexcept {
  std::size_t i = 0;
  if (!a.empty() && a[0] == '[') {
    const std::size_t close = a.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (std::size_t k = 1; k < close; ++k) {
      if (!is(a[k], kRegName) && a[k] != ':') return false;
    }
    i = close + 1;
  } else {
    for (; i < a.size() && is(a[i], kRegName); ++i) {
      if (a[i] == '%' && (i + 2 >= a.size() || !is(a[i + 1], kHex) || !is(a[i + 2], kHex))) {
        return false;  // "%" must start a percent-encoded byte
      }
    }
    if (i == 0) return false;
  }
  if (i == a.size()) return !requirePort;
  if (a[i] != ':') return false;
  const std::string_view port = a.substr(i + 1);
  if (port.empty()) return !requirePort;
  std::uint64_t number = 0;
  return port.size() <= 5 && parseDecimal(port, number) && number <= 65535;
}

// --- The request line --------------------------------------------------------------------------

/// Checks the request-target's form against the method (RFC 9112 §3.2).
bool validTargetForm(HttpMethod method, std::string_view target) noexcept {
  if (method == HttpConnect) return validAuthority(target, true);  // authority-form only
  if (target[0] == '/') return true;                               // origin-form
  if (target == "*") return method == HttpOptions;                 // asterisk-form
  // absolute-form: we serve http(s) only, so other schemes are malformed here. The authority
  // must be present; userinfo ("@") is refused as RFC 9110 §4.2.4 advises. (No "#" gets here.)
  std::string_view rest;
  if (startsWithIgnoreCase(target, "http://")) {
    rest = target.substr(7);
  } else if (startsWithIgnoreCase(target, "https://")) {
    rest = target.substr(8);
  } else {
    return false;
  }
  return validAuthority(rest.substr(0, rest.find_first_of("/?")), false);
}

/// Validates the target and version of a complete request line and records them; `line` is the
/// request line without its line end, `targetStart` the offset after the method's SP.
Fault parseRequestLineRest(std::string_view line, std::size_t targetStart, RequestHead& out) {
  if (line.find('\r') != std::string_view::npos) return {Http400, "Bare CR"};
  // The target runs to the first byte that is not VCHAR, which must be the SP before the version.
  // Bytes >= 0x80 are refused rather than passed on: a URI is ASCII (RFC 3986), clients
  // percent-encode anything else, and raw bytes would reach routing and logging code that may
  // decode them differently from whatever sits in front of us. So is "#": a fragment is never
  // sent, and one would be read as part of the path or query by some and cut off by others.
  const char* begin = line.data() + targetStart;
  const char* end = line.data() + line.size();
  const char* stop = findTargetEnd(begin, end);
  if (stop == begin || stop == end || *stop != ' ') {
    return {Http400, stop == end ? "Malformed request line" : "Invalid request target"};
  }
  out.target = std::string_view(begin, static_cast<std::size_t>(stop - begin));
  const std::string_view version =
      std::string_view(stop + 1, static_cast<std::size_t>(end - stop - 1));
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !isDigit(version[5]) ||
      version[6] != '.' || !isDigit(version[7])) {
    return {Http400, "Invalid HTTP version"};
  }
  out.version = version;
  out.versionMajor = version[5] - '0';
  out.versionMinor = version[7] - '0';
  if (out.versionMajor != 1) return {Http505, "HTTP version not supported"};
  if (!validTargetForm(out.method, out.target)) return {Http400, "Invalid request target"};
  return {};
}

// --- Field lines -----------------------------------------------------------------------------

/// Where the field lines stop: the head's end, or a fault, or the need for more bytes.
struct FieldsOutcome {
  enum Kind : std::uint8_t { complete, fault, incomplete } kind;
  std::size_t end = 0;  // complete: just past the empty line
  Fault error{};
};

/// Parses the field lines of `w` from `pos` into out.headers, up to the empty line.
FieldsOutcome parseFieldLines(std::string_view w, std::size_t pos, const ParserLimits& limits,
                              RequestHead& out) {
  const auto fault = [](HttpCode code, std::string_view reason) {
    return FieldsOutcome{FieldsOutcome::fault, 0, {code, reason}};
  };
  const auto done = [](std::size_t end) { return FieldsOutcome{FieldsOutcome::complete, end, {}}; };
  constexpr FieldsOutcome more{FieldsOutcome::incomplete, 0, {}};
  const char* const end = w.data() + w.size();
  for (;;) {
    if (pos >= w.size()) return more;
    const char first = w[pos];
    if (first == '\n') return fault(Http400, kBareLfReason);
    if (first == '\r') {
      if (pos + 1 == w.size()) return more;
      if (w[pos + 1] == '\n') return done(pos + 2);
      return fault(Http400, "Bare CR");
    }
    if (isWs(first)) return fault(Http400, "Obsolete line folding");

    std::size_t colon = pos;
    while (colon < w.size() && is(w[colon], kTchar)) ++colon;
    if (colon == w.size()) return more;
    // Anything but ":" after the name, whitespace included (RFC 9112 §5.1), is refused.
    if (w[colon] != ':' || colon == pos) return fault(Http400, "Invalid header field name");
    if (out.headers.size() >= limits.maxHeaderCount) {
      return fault(Http431, "Too many header fields");
    }

    std::size_t valueStart = colon + 1;
    while (valueStart < w.size() && isWs(w[valueStart])) ++valueStart;
    // The value runs to the first control byte; HTAB is the one control it may contain.
    const char* stop = findControl(w.data() + valueStart, end);
    while (stop != end && *stop == '\t') stop = findControl(stop + 1, end);
    if (stop == end) return more;
    std::size_t lineEnd = static_cast<std::size_t>(stop - w.data());
    std::size_t next = lineEnd + 1;
    if (*stop == '\r') {
      if (next == w.size()) return more;
      if (w[next] != '\n') return fault(Http400, "Bare CR");
      ++next;
    } else {
      return fault(Http400, *stop == '\n' ? kBareLfReason : "Invalid header field value");
    }
    while (lineEnd > valueStart && isWs(w[lineEnd - 1])) --lineEnd;
    out.headers.push_back({w.substr(pos, colon - pos), w.substr(valueStart, lineEnd - valueStart)});
    pos = next;
  }
}

// --- Meaning of the fields ---------------------------------------------------------------------

/// Applies the rules of Host, Content-Length, Transfer-Encoding, Connection and Expect (RFC 9112
/// §3.2, §6, §9.3; RFC 9110 §10.1.1) and fills in framing, keepAlive and expectContinue.
Fault interpretFields(const ParserLimits& limits, RequestHead& out) {
  const bool http10 = out.versionMinor == 0;
  int hostCount = 0;
  std::string_view host;
  bool hasLength = false;
  bool badLength = false;
  std::string_view lengthText;
  bool hasTransferEncoding = false;
  bool badTransferEncoding = false;
  int chunkedCount = 0;
  bool lastIsChunked = false;
  bool otherCoding = false;
  bool close = false;
  bool keepAliveToken = false;
  bool badConnection = false;
  bool continueExpected = false;
  bool otherExpectation = false;

  for (const HeaderField& field : out.headers) {
    const std::string_view name = field.name;
    const std::string_view value = field.value;
    switch (name.size()) {
      case 4:
        if (equalsIgnoreCase(name, "host")) {
          ++hostCount;
          host = value;
        }
        break;
      case 6:
        if (equalsIgnoreCase(name, "expect")) {
          const bool ok = forEachElement(value, [&](std::string_view e) {
            if (equalsIgnoreCase(e, "100-continue")) {
              continueExpected = true;
            } else {
              otherExpectation = true;
            }
            return true;
          });
          if (!ok) otherExpectation = true;
        }
        break;
      case 10:
        if (equalsIgnoreCase(name, "connection")) {
          const bool ok = forEachElement(value, [&](std::string_view e) {
            if (!isToken(e)) return false;
            if (equalsIgnoreCase(e, "close")) close = true;
            if (equalsIgnoreCase(e, "keep-alive")) keepAliveToken = true;
            return true;
          });
          if (!ok) badConnection = true;
        }
        break;
      case 14:
        if (equalsIgnoreCase(name, "content-length")) {
          std::uint64_t length = 0;
          // Repeats must be textually identical; a list ("5, 5") is not 1*DIGIT and is refused.
          if (!parseDecimal(value, length) || (hasLength && value != lengthText)) badLength = true;
          hasLength = true;
          lengthText = value;
          out.contentLength = length;
        }
        break;
      case 17:
        if (equalsIgnoreCase(name, "transfer-encoding")) {
          hasTransferEncoding = true;
          // All Transfer-Encoding fields form one list, in order (RFC 9110 §5.3).
          const bool ok = forEachElement(value, [&](std::string_view e) {
            std::size_t n = 0;
            while (n < e.size() && is(e[n], kTchar)) ++n;
            const std::string_view coding = e.substr(0, n);
            const std::string_view parameters = e.substr(n);
            if (coding.empty() || !validParameters(parameters)) return false;
            lastIsChunked = equalsIgnoreCase(coding, "chunked");
            if (lastIsChunked) {
              ++chunkedCount;
              if (!parameters.empty()) return false;  // chunked takes no parameters
            } else {
              otherCoding = true;
            }
            return true;
          });
          if (!ok) badTransferEncoding = true;
        }
        break;
      default:
        break;
    }
  }

  if (hostCount == 0 && !http10) return {Http400, "Missing Host header"};
  if (hostCount > 1) return {Http400, "Multiple Host headers"};
  if (!host.empty() && !validAuthority(host, false)) return {Http400, "Invalid Host header"};
  // Empty is what a client sends when the target has no authority (RFC 9112 §3.2.2). An
  // origin-form target has none, so the Host must give it: an empty one cannot (absolute- and
  // authority-form carry theirs; "*" names the server itself).
  if (host.empty() && hostCount == 1 && out.target[0] == '/') return {Http400, "Empty Host header"};
  if (badLength) return {Http400, "Invalid Content-Length"};
  if (hasTransferEncoding) {
    // Both framings at once is the classic request smuggling vector: refuse (RFC 9112 §6.3).
    if (hasLength) return {Http400, "Both Transfer-Encoding and Content-Length"};
    if (http10) return {Http400, "Transfer-Encoding in HTTP/1.0"};
    if (badTransferEncoding || !lastIsChunked || chunkedCount != 1) {
      return {Http400, "Invalid Transfer-Encoding"};
    }
  }
  if (badConnection) return {Http400, "Invalid Connection header"};
  if (otherCoding) return {Http501, "Unsupported transfer coding"};
  if (hasLength && out.contentLength > limits.maxBody) return {Http413, "Content too large"};
  if (otherExpectation) return {Http417, "Unsupported expectation"};

  out.framing = hasTransferEncoding ? BodyFraming::chunked
                : hasLength         ? BodyFraming::contentLength
                                    : BodyFraming::none;
  if (!hasLength) out.contentLength = 0;
  out.keepAlive = http10 ? keepAliveToken && !close : !close;
  // An HTTP/1.0 client cannot know 100 Continue; RFC 9110 §10.1.1 says to ignore it.
  out.expectContinue = continueExpected && !http10;
  return {};
}

/// Why a request whose method we do not know is refused: 501, or 505 for the HTTP/2 connection
/// preface (RFC 9113 §3.4), which reads as a request line of method "PRI" and is answered as the
/// version it is, once its request line is in. `w` starts at the method; no code: not known yet.
/// Out of line: it is no part of the common path.
[[gnu::noinline]] Fault unknownMethod(std::string_view w, std::string_view method) {
  constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n";
  if (method == "PRI") {
    const std::string_view sent = w.substr(0, kPreface.size());
    if (kPreface.starts_with(sent)) {
      if (sent.size() < kPreface.size()) return {};
      return {Http505, "HTTP version not supported"};
    }
  }
  return {Http501, "Method not implemented"};
}

}  // namespace

// --- parseRequestHead ------------------------------------------------------------------------

ParseResult parseRequestHead(std::string_view buffer, std::size_t alreadyScanned,
                             const ParserLimits& limits, RequestHead& out) {
  // Only the window matters, plus whether more arrived: see the comment at the top of the file.
  const std::string_view w = buffer.substr(0, std::min(buffer.size(), limits.maxHeaderBytes));
  const bool overflow = buffer.size() > limits.maxHeaderBytes;
  const ParseResult incomplete =
      overflow ? failWith({Http431, "Request header fields too large"}) : kPartial;

  // Empty lines before the request line; a CR at the end of the window may yet become one.
  std::size_t start = 0;
  for (int i = 0; i < kMaxLeadingEmptyLines; ++i) {
    if (start + 1 < w.size() && w[start] == '\r' && w[start + 1] == '\n') {
      start += 2;
    } else if (start < w.size() && w[start] == '\n') {
      return failWith({Http400, kBareLfReason});
    } else {
      if (start + 1 == w.size() && w[start] == '\r') return incomplete;
      break;
    }
  }
  if (start == w.size()) return incomplete;

  // The method is judged as soon as it ends, and within kMaxMethodLength bytes: garbage (a TLS
  // handshake, a stray binary protocol) is refused at once, before any limit could apply.
  const std::size_t methodScanEnd = std::min(w.size(), start + kMaxMethodLength + 1);
  std::size_t methodEnd = start;
  while (methodEnd < methodScanEnd && is(w[methodEnd], kTchar)) ++methodEnd;
  if (methodEnd == methodScanEnd) {
    if (methodEnd - start > kMaxMethodLength) return failWith({Http501, "Method not implemented"});
    return incomplete;
  }
  if (methodEnd == start || w[methodEnd] != ' ') return failWith({Http400, "Invalid method"});
  const std::string_view methodToken = w.substr(start, methodEnd - start);
  const std::optional<HttpMethod> method = parseHttpMethod(methodToken);
  if (!method) {
    const Fault f = unknownMethod(w.substr(start), methodToken);
    return f ? failWith(f) : incomplete;
  }
  if (*method == HttpConnect && !limits.allowConnect) {
    return failWith({Http501, "CONNECT not supported"});
  }

  // A later call that had the method and more than maxRequestLine + 1 bytes of request line last
  // time: that call found the line's end (else it was 414), the line valid and every line end
  // CRLF, so only the bytes since matter (from 2 back, for a CRLF CRLF split across calls).
  // Spares re-scanning a long request line.
  const std::size_t scannedInWindow = std::min(alreadyScanned, w.size());
  if (!overflow && scannedInWindow > methodEnd &&
      scannedInWindow - start - 1 > limits.maxRequestLine) {
    const std::size_t headEnd = findHeadEnd(w, scannedInWindow - 2);
    if (headEnd == 0) return kPartial;
    if (headEnd == kBareLfFound) return failWith({Http400, kBareLfReason});
  }

  // The request line's end, looked for no further than its limit allows. Without an LF, the
  // line is known too long once it holds maxRequestLine + 1 bytes that cannot be a CR of CRLF.
  const std::size_t have = w.size() - start;
  const std::size_t lineWindow =
      have - 1 > limits.maxRequestLine ? limits.maxRequestLine + 2 : have;
  const std::size_t scanEnd = start + lineWindow;  // the method holds no LF: start after it
  const void* lf =
      methodEnd < scanEnd ? std::memchr(w.data() + methodEnd, '\n', scanEnd - methodEnd) : nullptr;
  if (lf == nullptr) {
    if (have - 1 > limits.maxRequestLine ||
        (have - 1 == limits.maxRequestLine && w[start + limits.maxRequestLine] != '\r')) {
      return failWith({Http414, "Request line too long"});
    }
    return incomplete;
  }
  const std::size_t lineEnd = static_cast<std::size_t>(static_cast<const char*>(lf) - w.data());
  // A bare LF ends the line too, for the limit: too long is known before the line end arrives.
  if (w[lineEnd - 1] != '\r') [[unlikely]] {
    if (lineEnd - start > limits.maxRequestLine)
      return failWith({Http414, "Request line too long"});
    return failWith({Http400, kBareLfReason});
  }
  const std::size_t contentEnd = lineEnd - 1;
  if (contentEnd - start > limits.maxRequestLine) {
    return failWith({Http414, "Request line too long"});
  }
  const std::size_t fieldsStart = lineEnd + 1;

  // Likewise for a request line that was complete last time, however short.
  if (!overflow && fieldsStart <= scannedInWindow) {
    const std::size_t headEnd = findHeadEnd(w, std::max(lineEnd, scannedInWindow - 2));
    if (headEnd == 0) return kPartial;
    if (headEnd == kBareLfFound) return failWith({Http400, kBareLfReason});
  }

  out.method = *method;
  out.methodToken = methodToken;
  const std::string_view line = w.substr(start, contentEnd - start);
  if (const Fault f = parseRequestLineRest(line, methodEnd + 1 - start, out)) return failWith(f);

  out.headers.clear();  // keeps the capacity: no allocation once warmed up
  const FieldsOutcome fields = parseFieldLines(w, fieldsStart, limits, out);
  switch (fields.kind) {
    case FieldsOutcome::incomplete:
      return incomplete;
    case FieldsOutcome::fault: {
      // Reported once the head is complete or too large, not before: see the top of the file.
      // A bare LF is reported as soon as it arrives, so it wins wherever it is in the window.
      const std::size_t headEnd = findHeadEnd(w, lineEnd);
      if (headEnd == kBareLfFound) return failWith({Http400, kBareLfReason});
      if (overflow || headEnd != 0) return failWith(fields.error);
      return kPartial;
    }
    case FieldsOutcome::complete:
      break;
  }
  if (const Fault f = interpretFields(limits, out)) return failWith(f);
  return {ParseStatus::complete, fields.end, {}, {}};
}

// --- ChunkedDecoder ----------------------------------------------------------------------------

void ChunkedDecoder::reset() noexcept {
  state_ = State::sizeStart;
  chunkSize_ = 0;
  total_ = 0;
  digits_ = 0;
  lineBytes_ = 0;
  chunks_ = 0;
  extensionBytes_ = 0;
  failure_ = {};
}

ParseResult ChunkedDecoder::fail(HttpCode code, std::string_view reason, std::size_t at) noexcept {
  state_ = State::failed;
  failure_ = {ParseStatus::error, at, code, reason};
  return failure_;
}

void ChunkedDecoder::endSizeLine() noexcept {
  lineBytes_ = 0;
  state_ = chunkSize_ == 0 ? State::trailerStart : State::data;
}

ParseResult ChunkedDecoder::decode(std::string_view input, std::string& body) {
  if (state_ == State::failed) {  // the offending byte was not consumed: it starts this input
    ParseResult again = failure_;
    again.consumed = 0;
    return again;
  }
  if (state_ == State::done) return {ParseStatus::complete, 0, {}, {}};
  static constexpr std::string_view kBadExtension = "Invalid chunk extension";

  // Where a chunk-size line may end (with CRLF); BWS is allowed only before ";" and "=" (RFC 9112
  // §7.1.1). Any other byte there fails with `reason`, an LF as a bare LF.
  const auto endOfLine = [&](char ch) {
    if (ch != '\r') return false;
    state_ = State::sizeLineLf;
    return true;
  };
  const auto notLineEnd = [&](char ch, std::string_view reason, std::size_t at) {
    return fail(Http400, ch == '\n' ? kBareLfReason : reason, at);
  };

  std::size_t i = 0;
  while (i < input.size()) {
    if (state_ == State::data) {  // the bulk of a body: copied in one go
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(chunkSize_, input.size() - i));
      body.append(input.data() + i, n);
      i += n;
      chunkSize_ -= n;
      if (chunkSize_ == 0) state_ = State::dataEnd;
      continue;
    }

    const char c = input[i];
    // The line end is not part of the extensions; everything else on the line after the size is.
    const bool inExtension =
        state_ >= State::extBeforeSemi && state_ <= State::extAfterQuoted && c != '\r' && c != '\n';
    if (inExtension && ++lineBytes_ > limits_.maxChunkExtensions) {
      return fail(Http400, "Chunk extensions too long", i);
    }
    // Extensions bounded against what they carry (as Go's "too much non-data"): a stream of
    // tiny chunks with long extensions would otherwise cost 4 KiB on the wire per body byte.
    if (inExtension && ++extensionBytes_ > kExtensionAllowance + 16 * chunks_ + 2 * total_) {
      return fail(Http400, "Chunk extensions out of proportion to the body", i);
    }
    const bool inTrailer = state_ >= State::trailerStart && state_ <= State::endLf;
    if (inTrailer && ++lineBytes_ > limits_.maxHeaderBytes) {
      return fail(Http431, "Trailer section too large", i);
    }
    switch (state_) {
      case State::sizeStart:
        // 1*HEXDIG: no sign, no "0x", no whitespace first.
        if (!is(c, kHex)) return fail(Http400, "Invalid chunk size", i);
        chunkSize_ = static_cast<std::uint64_t>(hexValue(c));
        digits_ = 1;
        ++chunks_;
        state_ = State::size;
        break;
      case State::size:
        if (is(c, kHex)) {
          // 16 digits hold any 64-bit size; like Go, more is refused even if they are zeros.
          if (++digits_ > 16) return fail(Http400, "Chunk size too large", i);
          chunkSize_ = chunkSize_ * 16 + static_cast<std::uint64_t>(hexValue(c));
          break;
        }
        // The size is known: refuse an oversized body before reading any of it.
        if (chunkSize_ > limits_.maxBody - total_) return fail(Http413, "Content too large", i);
        total_ += chunkSize_;
        if (c == ';') {
          state_ = State::extBeforeName;
          lineBytes_ = 1;
        } else if (isWs(c)) {
          state_ = State::extBeforeSemi;
          lineBytes_ = 1;
        } else if (!endOfLine(c)) {
          return notLineEnd(c, "Invalid chunk size", i);
        }
        break;
      case State::extBeforeSemi:
        if (c == ';') {
          state_ = State::extBeforeName;
        } else if (!isWs(c)) {
          return fail(Http400, kBadExtension, i);
        }
        break;
      case State::extBeforeName:
        if (is(c, kTchar)) {
          state_ = State::extName;
        } else if (!isWs(c)) {
          return fail(Http400, kBadExtension, i);
        }
        break;
      case State::extName:
        if (is(c, kTchar)) break;
        if (c == '=') {
          state_ = State::extBeforeValue;
        } else if (c == ';') {
          state_ = State::extBeforeName;
        } else if (isWs(c)) {
          state_ = State::extAfterName;
        } else if (!endOfLine(c)) {
          return notLineEnd(c, kBadExtension, i);
        }
        break;
      case State::extAfterName:
        if (c == '=') {
          state_ = State::extBeforeValue;
        } else if (c == ';') {
          state_ = State::extBeforeName;
        } else if (!isWs(c)) {
          return fail(Http400, kBadExtension, i);
        }
        break;
      case State::extBeforeValue:
        if (c == '"') {
          state_ = State::extQuoted;
        } else if (is(c, kTchar)) {
          state_ = State::extValue;
        } else if (!isWs(c)) {
          return fail(Http400, kBadExtension, i);
        }
        break;
      case State::extValue:
        if (is(c, kTchar)) break;
        if (c == ';') {
          state_ = State::extBeforeName;
        } else if (isWs(c)) {
          state_ = State::extBeforeSemi;
        } else if (!endOfLine(c)) {
          return notLineEnd(c, kBadExtension, i);
        }
        break;
      case State::extQuoted:
        if (c == '"') {
          state_ = State::extAfterQuoted;
        } else if (c == '\\') {
          state_ = State::extQuotedPair;
        } else if (!is(c, kFieldValue)) {
          return fail(Http400, kBadExtension, i);
        }
        break;
      case State::extQuotedPair:
        if (!is(c, kFieldValue)) return fail(Http400, kBadExtension, i);
        state_ = State::extQuoted;
        break;
      case State::extAfterQuoted:
        if (c == ';') {
          state_ = State::extBeforeName;
        } else if (isWs(c)) {
          state_ = State::extBeforeSemi;
        } else if (!endOfLine(c)) {
          return notLineEnd(c, kBadExtension, i);
        }
        break;
      case State::sizeLineLf:
        if (c != '\n') return fail(Http400, "Bare CR", i);
        endSizeLine();
        break;
      case State::dataEnd:
        if (c != '\r') return notLineEnd(c, "Missing CRLF after chunk data", i);
        state_ = State::dataLf;
        break;
      case State::dataLf:
        if (c != '\n') return fail(Http400, "Missing CRLF after chunk data", i);
        state_ = State::sizeStart;
        break;
      case State::trailerStart:
        if (c == '\r') {
          state_ = State::endLf;
        } else if (c == '\n') {
          return fail(Http400, kBareLfReason, i);
        } else if (isWs(c)) {
          return fail(Http400, "Obsolete line folding", i);
        } else if (is(c, kTchar)) {
          state_ = State::trailerName;
        } else {
          return fail(Http400, "Invalid trailer field", i);
        }
        break;
      case State::trailerName:
        if (c == ':') {
          state_ = State::trailerValue;
        } else if (!is(c, kTchar)) {
          return fail(Http400, "Invalid trailer field", i);
        }
        break;
      case State::trailerValue:
        if (c == '\r') {
          state_ = State::trailerLf;
        } else if (!is(c, kFieldValue)) {
          return notLineEnd(c, "Invalid trailer field", i);
        }
        break;
      case State::trailerLf:
        if (c != '\n') return fail(Http400, "Bare CR", i);
        state_ = State::trailerStart;
        break;
      case State::endLf:
        if (c != '\n') return fail(Http400, "Bare CR", i);
        state_ = State::done;
        break;
      case State::data:
      case State::done:
      case State::failed:
        break;  // handled above and below
    }
    ++i;
    if (state_ == State::done) return {ParseStatus::complete, i, {}, {}};
  }
  return {ParseStatus::partial, i, {}, {}};
}

}  // namespace asynchttp::detail
