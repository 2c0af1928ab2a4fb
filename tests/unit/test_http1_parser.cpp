// Tests of the HTTP/1.1 request parser: tables of valid and invalid requests, each parsed whole,
// byte by byte and in odd slices with the same outcome; the chunked decoder split at every byte;
// and a property test over deterministic mutations.
#include "http1_parser.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using asynchttp::HttpCode;
using namespace asynchttp::detail;
namespace ah = asynchttp;

namespace {

// --- A connection simulator -------------------------------------------------------------------

/// What a connection made of a byte stream: one line per request, then how the stream ended
/// ("ok", "incomplete" or "error <code> <reason>").
struct Transcript {
  std::vector<std::string> requests;
  std::string end;
  friend bool operator==(const Transcript&, const Transcript&) = default;
};

void PrintTo(const Transcript& t, std::ostream* os) {
  for (const std::string& r : t.requests) *os << "\n  " << r;
  *os << "\n  => " << t.end;
}

/// One line per request: `METHOD target VERSION {Name=value}... framing keep-alive|close`.
std::string describe(const RequestHead& h) {
  std::string s =
      std::string(h.methodToken) + ' ' + std::string(h.target) + ' ' + std::string(h.version);
  for (const HeaderField& f : h.headers) {
    s += " {" + std::string(f.name) + '=' + std::string(f.value) + '}';
  }
  switch (h.framing) {
    case BodyFraming::none:
      s += " none";
      break;
    case BodyFraming::contentLength:
      s += " length:" + std::to_string(h.contentLength);
      break;
    case BodyFraming::chunked:
      s += " chunked";
      break;
  }
  s += h.keepAlive ? " keep-alive" : " close";
  if (h.expectContinue) s += " expect-100";
  return s;
}

/// True when `view` lies inside `buffer`.
bool inside(std::string_view view, std::string_view buffer) {
  return view.data() >= buffer.data() && view.data() + view.size() <= buffer.data() + buffer.size();
}

/// Checks what a complete head must satisfy whatever the input.
void checkInvariants(const RequestHead& h, std::string_view buffer, const ParseResult& r,
                     const ParserLimits& limits) {
  ASSERT_GT(r.consumed, 0u);
  ASSERT_LE(r.consumed, buffer.size());
  ASSERT_LE(r.consumed, limits.maxHeaderBytes);
  const std::string_view head = buffer.substr(0, r.consumed);
  ASSERT_TRUE(inside(h.methodToken, head) && inside(h.target, head) && inside(h.version, head));
  ASSERT_EQ(ah::to_string(h.method), h.methodToken);
  ASSERT_EQ(h.versionMajor, 1);
  ASSERT_LE(h.headers.size(), limits.maxHeaderCount);
  for (const HeaderField& f : h.headers) {
    ASSERT_TRUE(inside(f.name, head) && inside(f.value, head));
    ASSERT_FALSE(f.name.empty());
  }
  if (h.framing == BodyFraming::contentLength) {
    ASSERT_LE(h.contentLength, limits.maxBody);
  }
}

/// Feeds `input` as a server's read loop would, `slice` bytes at a time (0: all at once): heads
/// are parsed from a growing buffer with alreadyScanned = its previous length, then bodies.
Transcript run(std::string_view input, std::size_t slice, const ParserLimits& limits) {
  Transcript t;
  std::string buffer;
  std::size_t fed = 0;
  std::size_t scanned = 0;
  RequestHead head;
  ChunkedDecoder decoder(limits);
  enum class Phase { head, length, chunked } phase = Phase::head;
  std::string current;
  std::string body;
  std::uint64_t remaining = 0;
  const auto finish = [&] {
    if (!body.empty() || phase != Phase::head) current += " body=\"" + body + '"';
    t.requests.push_back(current);
    phase = Phase::head;
  };
  const auto failed = [&](const ParseResult& r) {
    t.end = "error " + std::to_string(r.error.value) + ' ' + std::string(r.reason);
    return t;
  };

  for (;;) {
    const std::size_t n = slice == 0 ? input.size() - fed : std::min(slice, input.size() - fed);
    buffer.append(input.substr(fed, n));
    fed += n;
    for (bool progress = true; progress;) {
      progress = false;
      if (phase == Phase::head && !buffer.empty()) {
        const ParseResult r = parseRequestHead(buffer, scanned, limits, head);
        if (r.status == ParseStatus::error) return failed(r);
        if (r.status == ParseStatus::partial) {
          EXPECT_EQ(r.consumed, 0u);
          scanned = buffer.size();
          continue;
        }
        checkInvariants(head, buffer, r, limits);
        current = describe(head);
        body.clear();
        buffer.erase(0, r.consumed);
        scanned = 0;
        progress = true;
        if (head.framing == BodyFraming::chunked) {
          decoder.reset();
          phase = Phase::chunked;
        } else if (head.framing == BodyFraming::contentLength) {
          remaining = head.contentLength;
          phase = Phase::length;
        } else {
          finish();
        }
      } else if (phase == Phase::length) {
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining, buffer.size()));
        body.append(buffer, 0, take);
        buffer.erase(0, take);
        remaining -= take;
        if (remaining == 0) {
          finish();
          progress = true;
        }
      } else if (phase == Phase::chunked && !buffer.empty()) {
        const ParseResult r = decoder.decode(buffer, body);
        if (r.status == ParseStatus::error) return failed(r);
        EXPECT_LE(r.consumed, buffer.size());
        buffer.erase(0, r.consumed);
        if (r.status == ParseStatus::complete) {
          finish();
          progress = true;
        }
      }
    }
    if (fed == input.size()) break;
  }
  t.end = phase == Phase::head && buffer.empty() ? "ok" : "incomplete";
  return t;
}

/// The stream parsed whole, byte by byte and in slices of 7 must all give `expected`.
void expectSameEverySlicing(std::string_view input, const ParserLimits& limits,
                            const Transcript& expected) {
  EXPECT_EQ(run(input, 0, limits), expected) << "whole";
  EXPECT_EQ(run(input, 1, limits), expected) << "byte by byte";
  EXPECT_EQ(run(input, 7, limits), expected) << "7 bytes at a time";
}

std::string testName(std::string_view name) {
  std::string s;
  for (const char c : name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
}

// --- Valid requests ---------------------------------------------------------------------------

struct ValidCase {
  std::string name;
  std::string input;
  std::vector<std::string> requests;  // describe() of each request, body appended
  ParserLimits limits{};
  std::string end = "ok";
};

void PrintTo(const ValidCase& c, std::ostream* os) {
  *os << c.name;
}

std::string manyFields(int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s += "X-" + std::to_string(i) + ": v\r\n";
  return s;
}
std::string manyFieldsDescribed(int count) {
  std::string s;
  for (int i = 0; i < count; ++i) s += " {X-" + std::to_string(i) + "=v}";
  return s;
}

const std::vector<ValidCase>& validCases() {
  static const std::vector<ValidCase> cases = {
      {"SimpleGet",
       "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
       {"GET / HTTP/1.1 {Host=example.com} none keep-alive"}},
      {"GetWithHeadersAndOws",
       "GET /index.html?q=1&r=%20 HTTP/1.1\r\nHost: a\r\nAccept:  text/html \t\r\n"
       "X-Empty:\r\nX-Spaces:   \r\nUser-Agent:curl/8.0\r\nX-Inner: a  b\tc\r\n\r\n",
       {"GET /index.html?q=1&r=%20 HTTP/1.1 {Host=a} {Accept=text/html} {X-Empty=} {X-Spaces=} "
        "{User-Agent=curl/8.0} {X-Inner=a  b\tc} none keep-alive"}},
      {"ObsTextInValue",
       "GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9 \xff\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} {X-Name=caf\xc3\xa9 \xff} none keep-alive"}},
      {"TokenCharsInName",
       "GET / HTTP/1.1\r\nHost: a\r\n!#$%&'*+-.^_`|~09azAZ: x\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} {!#$%&'*+-.^_`|~09azAZ=x} none keep-alive"}},
      {"VisibleCharsInTarget",
       "GET /a|b{c}\"d\\e^f`g<h>i HTTP/1.1\r\nHost: a\r\n\r\n",
       {"GET /a|b{c}\"d\\e^f`g<h>i HTTP/1.1 {Host=a} none keep-alive"}},
      {"PostWithContentLength",
       "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
       {"POST /submit HTTP/1.1 {Host=a} {Content-Length=5} length:5 keep-alive body=\"hello\""}},
      {"ContentLengthZero",
       "POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 0\r\n\r\n",
       {"POST / HTTP/1.1 {Host=a} {content-length=0} length:0 keep-alive body=\"\""}},
      {"ContentLengthLeadingZeros",
       "PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 003\r\n\r\nabc",
       {"PUT /f HTTP/1.1 {Host=a} {Content-Length=003} length:3 keep-alive body=\"abc\""}},
      {"RepeatedIdenticalContentLength",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
       {"POST / HTTP/1.1 {Host=a} {Content-Length=2} {Content-Length=2} length:2 keep-alive "
        "body=\"ok\""}},
      {"BodyWithBareLfAfterTheHead",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\na\nb",
       {"POST / HTTP/1.1 {Host=a} {Content-Length=3} length:3 keep-alive body=\"a\nb\""}},
      {"ContentLengthAtMaxBody",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd",
       {"POST / HTTP/1.1 {Host=a} {Content-Length=4} length:4 keep-alive body=\"abcd\""},
       {.maxBody = 4}},
      {"ChunkedWithExtensionsAndTrailers",
       "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "5;ext=1\r\nhello\r\n6 ; a ; b = \"q;\\\"x\" ;c=t\r\n world\r\n"
       "0;last\r\nTrailer-A: 1\r\nX-Checksum:  abc \r\n\r\n",
       {"POST /up HTTP/1.1 {Host=a} {Transfer-Encoding=chunked} chunked keep-alive "
        "body=\"hello world\""}},
      {"ChunkedCaseAndOws",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  , CHUNKED  \r\n\r\n"
       "A\r\n0123456789\r\n0\r\n\r\n",
       {"POST / HTTP/1.1 {Host=a} {Transfer-Encoding=, CHUNKED} chunked keep-alive "
        "body=\"0123456789\""}},
      {"ChunkedHexAndLeadingZeros",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       "000000000000000b\r\nhello world\r\n00\r\n\r\n",
       {"POST / HTTP/1.1 {Host=a} {Transfer-Encoding=chunked} chunked keep-alive "
        "body=\"hello world\""}},
      {"ChunkedEmptyBody",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       {"POST / HTTP/1.1 {Host=a} {Transfer-Encoding=chunked} chunked keep-alive body=\"\""}},
      {"ChunkedAtMaxBody",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n2\r\ncd\r\n"
       "0\r\n\r\n",
       {"POST / HTTP/1.1 {Host=a} {Transfer-Encoding=chunked} chunked keep-alive body=\"abcd\""},
       {.maxBody = 4}},
      {"Pipelined",
       "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
       "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"
       "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nq\r\n0\r\n\r\n"
       "GET /4 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
       {"GET /1 HTTP/1.1 {Host=a} none keep-alive",
        "POST /2 HTTP/1.1 {Host=a} {Content-Length=3} length:3 keep-alive body=\"xyz\"",
        "POST /3 HTTP/1.1 {Host=a} {Transfer-Encoding=chunked} chunked keep-alive body=\"q\"",
        "GET /4 HTTP/1.1 {Host=a} {Connection=close} none close"}},
      {"Http10Default", "GET / HTTP/1.0\r\n\r\n", {"GET / HTTP/1.0 none close"}},
      {"Http10KeepAlive",
       "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n",
       {"GET / HTTP/1.0 {Connection=Keep-Alive} {Host=a} none keep-alive"}},
      {"Http10KeepAliveAndClose",
       "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n",
       {"GET / HTTP/1.0 {Connection=keep-alive, close} none close"}},
      {"Http10PostWithoutHost",
       "POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi",
       {"POST / HTTP/1.0 {Content-Length=2} length:2 close body=\"hi\""}},
      {"Http10ExpectIgnored",
       "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
       {"POST / HTTP/1.0 {Expect=100-continue} {Content-Length=1} length:1 close body=\"x\""}},
      {"Http11ConnectionClose",
       "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} {Connection=Upgrade, CLOSE} none close"}},
      {"Http11ConnectionKeepAliveToken",
       "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: ,upgrade\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} {Connection=keep-alive} {Connection=,upgrade} none keep-alive"}},
      {"Http12TreatedAs11",
       "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
       {"GET / HTTP/1.2 {Host=a} none keep-alive"}},
      {"ExpectContinue",
       "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nz",
       {"PUT /f HTTP/1.1 {Host=a} {Expect=100-Continue} {Content-Length=1} length:1 keep-alive "
        "expect-100 body=\"z\""}},
      {"AbsoluteForm",
       "GET http://example.com/path?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n",
       {"GET http://example.com/path?x=1 HTTP/1.1 {Host=example.com} none keep-alive"}},
      {"AbsoluteFormHttpsWithPortNoPath",
       "GET HTTPS://Example.COM:8443 HTTP/1.1\r\nHost: x\r\n\r\n",
       {"GET HTTPS://Example.COM:8443 HTTP/1.1 {Host=x} none keep-alive"}},
      {"OptionsAsterisk",
       "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
       {"OPTIONS * HTTP/1.1 {Host=a} none keep-alive"}},
      {"OptionsOriginForm",
       "OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n",
       {"OPTIONS /x HTTP/1.1 {Host=a} none keep-alive"}},
      {"ConnectHostPort",
       "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
       {"CONNECT example.com:443 HTTP/1.1 {Host=example.com:443} none keep-alive"},
       {.allowConnect = true}},
      {"ConnectIpv6",
       "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
       {"CONNECT [::1]:8080 HTTP/1.1 {Host=[::1]:8080} none keep-alive"},
       {.allowConnect = true}},
      {"ConnectEmptyHost",
       "CONNECT a.com:443 HTTP/1.1\r\nHost:\r\n\r\n",
       {"CONNECT a.com:443 HTTP/1.1 {Host=} none keep-alive"},
       {.allowConnect = true}},
      {"OtherMethods",
       "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nDELETE /d HTTP/1.1\r\nHost: a\r\n\r\n"
       "TRACE / HTTP/1.1\r\nHost: a\r\n\r\nPATCH /p HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
       "\r\n!",
       {"HEAD / HTTP/1.1 {Host=a} none keep-alive", "DELETE /d HTTP/1.1 {Host=a} none keep-alive",
        "TRACE / HTTP/1.1 {Host=a} none keep-alive",
        "PATCH /p HTTP/1.1 {Host=a} {Content-Length=1} length:1 keep-alive body=\"!\""}},
      {"LeadingEmptyLines",
       "\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} none keep-alive"}},
      {"EmptyHostAbsoluteForm",
       "GET http://a.com/p HTTP/1.1\r\nHost:\r\n\r\n",
       {"GET http://a.com/p HTTP/1.1 {Host=} none keep-alive"}},
      {"HostForms",
       "GET / HTTP/1.1\r\nHost: 192.168.0.1:80\r\n\r\nGET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n"
       "GET / HTTP/1.1\r\nHost: xn--d1a.example%2D:\r\n\r\n",
       {"GET / HTTP/1.1 {Host=192.168.0.1:80} none keep-alive",
        "GET / HTTP/1.1 {Host=[2001:db8::1]} none keep-alive",
        "GET / HTTP/1.1 {Host=xn--d1a.example%2D:} none keep-alive"}},
      {"TransferCodingParametersQuoted",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue, ,\r\n"
       "\r\n0\r\n\r\n",
       {"POST / HTTP/1.1 {Host=a} {Transfer-Encoding=chunked} {Expect=100-continue, ,} chunked "
        "keep-alive expect-100 body=\"\""}},
      {"RequestLineAtLimit",
       "GET /" + std::string(14, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n",
       {"GET /" + std::string(14, 'a') + " HTTP/1.1 {Host=a} none keep-alive"},
       {.maxRequestLine = 28}},
      {"HeadAtLimit",
       "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(12, 'v') + "\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} {X=" + std::string(12, 'v') + "} none keep-alive"},
       {.maxHeaderBytes = 44}},
      {"FieldCountAtLimit",
       "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields(99) + "\r\n",
       {"GET / HTTP/1.1 {Host=a}" + manyFieldsDescribed(99) + " none keep-alive"}},
      {"RaisedFieldCount",
       "GET / HTTP/1.1\r\nHost: a\r\n" + manyFields(2000) + "\r\n",
       {"GET / HTTP/1.1 {Host=a}" + manyFieldsDescribed(2000) + " none keep-alive"},
       {.maxHeaderCount = 10000}},
      {"LargeHeadUnderDefaultLimit",
       "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(60000, 'v') + "\r\n\r\n",
       {"GET / HTTP/1.1 {Host=a} {X=" + std::string(60000, 'v') + "} none keep-alive"}},
      {"TruncatedHeadIsIncomplete", "GET / HTTP/1.1\r\nHost: a\r\n", {}, {}, "incomplete"},
      {"TruncatedBodyIsIncomplete",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
       {},
       {},
       "incomplete"},
      {"BadFieldLineStaysPartialUntilHeadEnds",
       "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n",
       {},
       {},
       "incomplete"},
  };
  return cases;
}

class ValidRequest : public testing::TestWithParam<ValidCase> {};

TEST_P(ValidRequest, SameResultWholeAndByteByByte) {
  const ValidCase& c = GetParam();
  expectSameEverySlicing(c.input, c.limits, {c.requests, c.end});
}

INSTANTIATE_TEST_SUITE_P(Table, ValidRequest, testing::ValuesIn(validCases()),
                         [](const auto& info) { return testName(info.param.name); });

// --- Invalid requests -------------------------------------------------------------------------

struct InvalidCase {
  std::string name;
  std::string input;
  HttpCode code;
  std::string reason;
  ParserLimits limits{};
};

void PrintTo(const InvalidCase& c, std::ostream* os) {
  *os << c.name;
}

const std::string kHost = "Host: a\r\n";

/// A GET head with the given field lines after Host.
std::string get(const std::string& fields) {
  return "GET / HTTP/1.1\r\n" + kHost + fields + "\r\n";
}
/// A POST head with the given field lines after Host, then `body`.
std::string post(const std::string& fields, const std::string& body = "") {
  return "POST / HTTP/1.1\r\n" + kHost + fields + "\r\n" + body;
}
/// A chunked POST whose body is `body`.
std::string chunked(const std::string& body) {
  return post("Transfer-Encoding: chunked\r\n", body);
}

const std::vector<InvalidCase>& invalidCases() {
  using namespace asynchttp;
  static const std::vector<InvalidCase> cases = {
      // Line ends.
      {"BareCrInRequestLine", "GET /\r/ HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Bare CR"},
      {"BareCrEndingRequestLine", "GET / HTTP/1.1\rHost: a\r\n\r\n", Http400, "Bare CR"},
      {"BareCrInValue", get("X: a\rb\r\n"), Http400, "Bare CR"},
      {"BareCrEndingFieldLine", get("X: a\rY: b\r\n"), Http400, "Bare CR"},
      {"BareCrStartingLine", get("\rX: a\r\n"), Http400, "Bare CR"},
      {"BareCrInsteadOfEmptyLine", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\r\n", Http400, "Bare CR"},
      {"CrCrLf", "GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", Http400, "Bare CR"},
      {"FiveLeadingEmptyLines", "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid method"},
      // Bare LF as a line end (RFC 9112 §2.2 lets a recipient accept it; we do not, as llhttp).
      {"BareLfLeadingEmptyLine", "\nGET / HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Bare LF"},
      {"BareLfSecondLeadingEmptyLine", "\r\n\nGET / HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Bare LF"},
      {"BareLfEndingRequestLine", "GET / HTTP/1.1\n" + kHost + "\r\n", Http400, "Bare LF"},
      {"BareLfEndingRequestLineAtLimit",
       "GET /" + std::string(14, 'a') + " HTTP/1.1\nHost: a\r\n\r\n",
       Http400,
       "Bare LF",
       {.maxRequestLine = 28}},
      {"BareLfEndingFieldLine", get("X: y\n"), Http400, "Bare LF"},
      {"BareLfEndingHost", "GET / HTTP/1.1\r\nHost: a\n\r\n", Http400, "Bare LF"},
      {"BareLfEndingEmptyValue", get("X:\n"), Http400, "Bare LF"},
      {"BareLfFinalEmptyLine", "GET / HTTP/1.1\r\nHost: a\r\n\n", Http400, "Bare LF"},
      {"BareLfAfterABareCr", "GET / HTTP/1.1\r\nHost: a\r\n\r\r\n\n", Http400, "Bare LF"},
      {"LfOnlyLines", "GET /lf HTTP/1.1\nHost: a\nX: y\n\n", Http400, "Bare LF"},
      {"MixedLineEnds", "GET / HTTP/1.1\r\nHost: a\r\nX: y\n\r\n", Http400, "Bare LF"},
      // Known as soon as it arrives, before the head's end: it beats a field error before it.
      {"BareLfBeforeTheHeadEnds", "GET / HTTP/1.1\r\nHost: a\r\nX: y\n", Http400, "Bare LF"},
      {"BareLfBeatsAnEarlierFieldError", "GET / HTTP/1.1\r\nBad Name: x\r\nX: y\nZ", Http400,
       "Bare LF"},
      {"BareLfAfterALongBuffer",
       "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(40, 'v') + "\n",
       Http400,
       "Bare LF",
       {.maxRequestLine = 16}},
      {"BareLfInTheWindowBeatsTheSizeLimit",
       "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\nX: " + std::string(100, 'v'),
       Http400,
       "Bare LF",
       {.maxHeaderBytes = 45}},
      {"ChunkedLfOnly",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\nT: v\n\n",
       Http400, "Bare LF"},
      {"LeadingBareCr", "\rGET / HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid method"},
      // Method.
      {"LeadingSpace", " GET / HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid method"},
      {"MethodBadChar", "G@T / HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid method"},
      {"MethodNul", "GE\0T / HTTP/1.1\r\n"s + kHost + "\r\n", Http400, "Invalid method"},
      {"MethodTab", "GET\t/ HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid method"},
      {"MethodOnly", "GET\r\n\r\n", Http400, "Invalid method"},
      {"TlsHandshake", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, Http400, "Invalid method"},
      {"MethodLowercase", "get / HTTP/1.1\r\n" + kHost + "\r\n", Http501, "Method not implemented"},
      {"MethodUnknown", "BREW /pot HTTP/1.1\r\n" + kHost + "\r\n", Http501,
       "Method not implemented"},
      {"MethodTooLong", std::string(33, 'A'), Http501, "Method not implemented"},
      {"Http2Preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Http505, "HTTP version not supported"},
      {"Http2PrefaceRequestLine", "PRI * HTTP/2.0\r\n", Http505, "HTTP version not supported"},
      {"Http2PrefaceAfterEmptyLine", "\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Http505,
       "HTTP version not supported"},
      {"Http2PrefaceSmallLimits",
       "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
       Http505,
       "HTTP version not supported",
       {.maxRequestLine = 5, .maxHeaderBytes = 20}},
      {"PriOtherTarget", "PRI / HTTP/2.0\r\n\r\n", Http501, "Method not implemented"},
      {"PriHttp11", "PRI * HTTP/1.1\r\n" + kHost + "\r\n", Http501, "Method not implemented"},
      {"PriBareLf", "PRI * HTTP/2.0\n\nSM\n\n", Http501, "Method not implemented"},
      // CONNECT, unless allowed (a proxy's business).
      {"ConnectNotAllowed", "CONNECT a.com:443 HTTP/1.1\r\nHost: a.com:443\r\n\r\n", Http501,
       "CONNECT not supported"},
      {"ConnectNotAllowedBadTarget", "CONNECT / HTTP/1.1\r\n" + kHost + "\r\n", Http501,
       "CONNECT not supported"},
      // Request target.
      {"DoubleSpace", "GET  / HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid request target"},
      {"MissingVersion", "GET /\r\n" + kHost + "\r\n", Http400, "Malformed request line"},
      {"MissingTargetAndVersion", "GET \r\n" + kHost + "\r\n", Http400, "Malformed request line"},
      {"TargetCtl", "GET /a\x01 HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid request target"},
      {"TargetTab", "GET /a\tb HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid request target"},
      {"TargetDel", "GET /a\x7f HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid request target"},
      {"TargetNonAscii", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"TargetRelative", "GET index.html HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"AsteriskWithGet", "GET * HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid request target"},
      {"AuthorityFormWithGet", "GET a.com:80 HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"ConnectOriginForm",
       "CONNECT / HTTP/1.1\r\n" + kHost + "\r\n",
       Http400,
       "Invalid request target",
       {.allowConnect = true}},
      {"ConnectWithoutPort",
       "CONNECT a.com HTTP/1.1\r\n" + kHost + "\r\n",
       Http400,
       "Invalid request target",
       {.allowConnect = true}},
      {"ConnectAbsoluteForm",
       "CONNECT http://a.com:80/ HTTP/1.1\r\n" + kHost + "\r\n",
       Http400,
       "Invalid request target",
       {.allowConnect = true}},
      {"ConnectPortTooLarge",
       "CONNECT a.com:65536 HTTP/1.1\r\n" + kHost + "\r\n",
       Http400,
       "Invalid request target",
       {.allowConnect = true}},
      {"AbsoluteFormOtherScheme", "GET ftp://a.com/ HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"AbsoluteFormNoAuthority", "GET http:///x HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"TargetFragment", "GET /a#b HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"TargetHashOnly", "GET /# HTTP/1.1\r\n" + kHost + "\r\n", Http400, "Invalid request target"},
      {"TargetHashInQuery", "GET /p?q=1#" + std::string(40, 'f') + " HTTP/1.1\r\n" + kHost + "\r\n",
       Http400, "Invalid request target"},
      {"TargetHashAfterSixteenBytes",
       "GET /" + std::string(37, 'a') + "#b HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"AbsoluteFormFragment", "GET http://a.com/#x HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"AbsoluteFormHashAfterHost", "GET http://a.com#x HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      {"AbsoluteFormUserinfo", "GET http://u@a.com/ HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid request target"},
      // Version.
      {"VersionLowercase", "GET / http/1.1\r\n" + kHost + "\r\n", Http400, "Invalid HTTP version"},
      {"VersionTwoDigitMinor", "GET / HTTP/1.10\r\n" + kHost + "\r\n", Http400,
       "Invalid HTTP version"},
      {"VersionNoMinor", "GET / HTTP/1\r\n" + kHost + "\r\n", Http400, "Invalid HTTP version"},
      {"VersionLetter", "GET / HTTP/1.x\r\n" + kHost + "\r\n", Http400, "Invalid HTTP version"},
      {"VersionTrailingSpace", "GET / HTTP/1.1 \r\n" + kHost + "\r\n", Http400,
       "Invalid HTTP version"},
      {"ExtraRequestLinePart", "GET / x HTTP/1.1\r\n" + kHost + "\r\n", Http400,
       "Invalid HTTP version"},
      {"Version09", "GET / HTTP/0.9\r\n" + kHost + "\r\n", Http505, "HTTP version not supported"},
      {"Version20", "GET / HTTP/2.0\r\n" + kHost + "\r\n", Http505, "HTTP version not supported"},
      {"Version30", "GET / HTTP/3.0\r\n" + kHost + "\r\n", Http505, "HTTP version not supported"},
      // Request line limit, with or without its line end, on partial input too.
      {"RequestLineTooLong",
       "GET /" + std::string(15, 'a') + " HTTP/1.1\r\n" + kHost + "\r\n",
       Http414,
       "Request line too long",
       {.maxRequestLine = 28}},
      {"RequestLineTooLongLf",
       "GET /" + std::string(15, 'a') + " HTTP/1.1\n" + kHost + "\r\n",
       Http414,
       "Request line too long",
       {.maxRequestLine = 28}},
      {"RequestLineTooLongUnterminated",
       "GET /" + std::string(100, 'a'),
       Http414,
       "Request line too long",
       {.maxRequestLine = 28}},
      {"RequestLineTooLongDefault", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n\r\n", Http414,
       "Request line too long"},
      {"RequestLineLimitBelowMethod",
       "OPTIONS * HTTP/1.1\r\n",
       Http414,
       "Request line too long",
       {.maxRequestLine = 3}},
      // Field lines.
      {"ObsFold", get("X: a\r\n  b\r\n"), Http400, "Obsolete line folding"},
      {"ObsFoldTab", get("X: a\r\n\tb\r\n"), Http400, "Obsolete line folding"},
      {"SpaceBeforeFirstField", "GET / HTTP/1.1\r\n " + kHost + "\r\n", Http400,
       "Obsolete line folding"},
      {"SpaceBeforeColon", get("X : a\r\n"), Http400, "Invalid header field name"},
      {"TabBeforeColon", get("X\t: a\r\n"), Http400, "Invalid header field name"},
      {"EmptyName", get(": a\r\n"), Http400, "Invalid header field name"},
      {"NoColon", get("NoColon\r\n"), Http400, "Invalid header field name"},
      {"NameBadChar", get("X(y): a\r\n"), Http400, "Invalid header field name"},
      {"NameNonAscii", get("X\xc3\xa9: a\r\n"), Http400, "Invalid header field name"},
      {"ValueNul", get("X: a\0b\r\n"s), Http400, "Invalid header field value"},
      {"ValueCtl", get("X: a\x01\r\n"), Http400, "Invalid header field value"},
      {"ValueEsc", get("X: a\x1b[0m\r\n"), Http400, "Invalid header field value"},
      {"ValueDel", get("X: a\x7f\r\n"), Http400, "Invalid header field value"},
      {"LongValueCtl", get("X: " + std::string(40, 'v') + '\x02' + "\r\n"), Http400,
       "Invalid header field value"},
      {"SyntaxBeforeSemantics", get("Content-Length: x\r\nBad Name: y\r\n"), Http400,
       "Invalid header field name"},
      // Limits on the head.
      {"TooManyFields", get(manyFields(100)), Http431, "Too many header fields"},
      {"TooManyFieldsCustom",
       get(manyFields(3)),
       Http431,
       "Too many header fields",
       {.maxHeaderCount = 3}},
      {"HeadTooLarge",
       "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(13, 'v') + "\r\n\r\n",
       Http431,
       "Request header fields too large",
       {.maxHeaderBytes = 44}},
      {"HeadTooLargeUnterminated",
       "GET / HTTP/1.1\r\n" + kHost + std::string(100, 'v'),
       Http431,
       "Request header fields too large",
       {.maxHeaderBytes = 45}},
      {"HeadTooLargeInRequestLine",
       "GET /" + std::string(100, 'v'),
       Http431,
       "Request header fields too large",
       {.maxHeaderBytes = 45}},
      {"HeadTooLargeDefault", get("X: " + std::string(70000, 'v') + "\r\n"), Http431,
       "Request header fields too large"},
      {"FieldErrorBeatsSizeLimit",
       get("Bad Name: x\r\n" + std::string(100, 'v')),
       Http400,
       "Invalid header field name",
       {.maxHeaderBytes = 45}},
      // Host.
      {"MissingHost", "GET / HTTP/1.1\r\nX: a\r\n\r\n", Http400, "Missing Host header"},
      {"MissingHostHttp12", "GET / HTTP/1.2\r\n\r\n", Http400, "Missing Host header"},
      {"EmptyHost", "GET / HTTP/1.1\r\nHost:\r\n\r\n", Http400, "Empty Host header"},
      {"EmptyHostOws", "GET /p?q HTTP/1.1\r\nHost: \t \r\n\r\n", Http400, "Empty Host header"},
      {"EmptyHostHttp10", "GET / HTTP/1.0\r\nHost:\r\n\r\n", Http400, "Empty Host header"},
      {"TwoHosts", get("host: b\r\n"), Http400, "Multiple Host headers"},
      {"TwoHostsHttp10", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", Http400,
       "Multiple Host headers"},
      {"HostWithSpace", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Http400, "Invalid Host header"},
      {"HostWithSlash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Http400, "Invalid Host header"},
      {"HostWithUserinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", Http400, "Invalid Host header"},
      {"HostBadPort", "GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", Http400, "Invalid Host header"},
      {"HostPortTooLarge", "GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", Http400,
       "Invalid Host header"},
      {"HostBadPercent", "GET / HTTP/1.1\r\nHost: a%2\r\n\r\n", Http400, "Invalid Host header"},
      {"HostUnclosedBracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", Http400,
       "Invalid Host header"},
      // Content-Length.
      {"ContentLengthNotNumber", post("Content-Length: abc\r\n"), Http400,
       "Invalid Content-Length"},
      {"ContentLengthNegative", post("Content-Length: -1\r\n"), Http400, "Invalid Content-Length"},
      {"ContentLengthPlus", post("Content-Length: +5\r\n"), Http400, "Invalid Content-Length"},
      {"ContentLengthEmpty", post("Content-Length:\r\n"), Http400, "Invalid Content-Length"},
      {"ContentLengthInnerSpace", post("Content-Length: 5 5\r\n"), Http400,
       "Invalid Content-Length"},
      {"ContentLengthList", post("Content-Length: 5, 5\r\n"), Http400, "Invalid Content-Length"},
      {"ContentLengthHex", post("Content-Length: 0x5\r\n"), Http400, "Invalid Content-Length"},
      {"ContentLengthDiffering", post("Content-Length: 5\r\nContent-Length: 6\r\n"), Http400,
       "Invalid Content-Length"},
      {"ContentLengthSameValueOtherText", post("Content-Length: 5\r\nContent-Length: 05\r\n"),
       Http400, "Invalid Content-Length"},
      {"ContentLengthOverflow", post("Content-Length: 18446744073709551616\r\n"), Http400,
       "Invalid Content-Length"},
      {"ContentLengthMaxUint64", post("Content-Length: 18446744073709551615\r\n"), Http413,
       "Content too large"},
      {"ContentLengthAboveMaxBody", post("Content-Length: 8388609\r\n"), Http413,
       "Content too large"},
      {"ContentLengthAboveCustomMaxBody",
       post("Content-Length: 5\r\n", "hello"),
       Http413,
       "Content too large",
       {.maxBody = 4}},
      // Transfer-Encoding.
      {"TransferEncodingAndContentLength",
       post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"), Http400,
       "Both Transfer-Encoding and Content-Length"},
      {"ContentLengthAndTransferEncoding",
       post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"), Http400,
       "Both Transfer-Encoding and Content-Length"},
      {"TransferEncodingHttp10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       Http400, "Transfer-Encoding in HTTP/1.0"},
      {"TransferEncodingNotChunked", post("Transfer-Encoding: gzip\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingChunkedNotLast", post("Transfer-Encoding: chunked, gzip\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingChunkedTwice", post("Transfer-Encoding: chunked, chunked\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingChunkedTwiceInTwoFields",
       post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingLaterFieldNotChunked",
       post("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingEmpty", post("Transfer-Encoding:\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingChunkedWithParameter", post("Transfer-Encoding: chunked;q=1\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingBadToken", post("Transfer-Encoding: x y, chunked\r\n"), Http400,
       "Invalid Transfer-Encoding"},
      {"TransferEncodingUnterminatedQuote", post("Transfer-Encoding: gzip;a=\"x, chunked\r\n"),
       Http400, "Invalid Transfer-Encoding"},
      {"TransferEncodingGzipChunked", post("Transfer-Encoding: gzip, chunked\r\n"), Http501,
       "Unsupported transfer coding"},
      {"TransferEncodingGzipFieldThenChunked",
       post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), Http501,
       "Unsupported transfer coding"},
      {"TransferEncodingQuotedComma", post("Transfer-Encoding: x;a=\"1,2\";b=c , chunked\r\n"),
       Http501, "Unsupported transfer coding"},
      // Connection and Expect.
      {"ConnectionNotToken", get("Connection: close;x\r\n"), Http400, "Invalid Connection header"},
      {"ExpectOther", get("Expect: 200-ok\r\n"), Http417, "Unsupported expectation"},
      {"ExpectContinueAndOther", get("Expect: 100-continue, foo\r\n"), Http417,
       "Unsupported expectation"},
      {"ExpectContinueWithParameter", get("Expect: 100-continue;x=1\r\n"), Http417,
       "Unsupported expectation"},
      // Chunked bodies.
      {"ChunkSizeNotHex", chunked("x\r\n"), Http400, "Invalid chunk size"},
      {"ChunkSizeHexPrefix", chunked("0x5\r\nhello\r\n0\r\n\r\n"), Http400, "Invalid chunk size"},
      {"ChunkSizeSign", chunked("+5\r\nhello\r\n0\r\n\r\n"), Http400, "Invalid chunk size"},
      {"ChunkSizeLeadingSpace", chunked(" 5\r\nhello\r\n0\r\n\r\n"), Http400, "Invalid chunk size"},
      {"ChunkSizeEmpty", chunked("\r\n"), Http400, "Invalid chunk size"},
      {"ChunkSizeTrailingSpace", chunked("5 \r\nhello\r\n0\r\n\r\n"), Http400,
       "Invalid chunk extension"},
      {"ChunkSizeOverflow", chunked("10000000000000000\r\n"), Http400, "Chunk size too large"},
      {"ChunkSizeTooManyZeros", chunked("00000000000000001\r\nx\r\n0\r\n\r\n"), Http400,
       "Chunk size too large"},
      {"ChunkSizeBareCr", chunked("5\rhello\r\n0\r\n\r\n"), Http400, "Bare CR"},
      {"ChunkDataTooLong", chunked("5\r\nhello!\r\n0\r\n\r\n"), Http400,
       "Missing CRLF after chunk data"},
      {"ChunkDataBareCr", chunked("5\r\nhello\rx"), Http400, "Missing CRLF after chunk data"},
      {"ChunkSizeBareLf", chunked("5\nhello\r\n0\r\n\r\n"), Http400, "Bare LF"},
      {"LastChunkBareLf", chunked("0\n\r\n"), Http400, "Bare LF"},
      {"ChunkExtensionNameBareLf", chunked("5;a\nhello\r\n0\r\n\r\n"), Http400, "Bare LF"},
      {"ChunkExtensionValueBareLf", chunked("5;a=b\nhello\r\n0\r\n\r\n"), Http400, "Bare LF"},
      {"ChunkExtensionQuotedBareLf", chunked("5;a=\"b\"\nhello\r\n0\r\n\r\n"), Http400, "Bare LF"},
      {"ChunkDataBareLf", chunked("5\r\nhello\n0\r\n\r\n"), Http400, "Bare LF"},
      {"TrailerBareLf", chunked("0\r\nT: a\n\r\n"), Http400, "Bare LF"},
      {"TrailerEmptyValueBareLf", chunked("0\r\nT:\n\r\n"), Http400, "Bare LF"},
      {"TrailerEndBareLf", chunked("0\r\n\n"), Http400, "Bare LF"},
      {"TrailerEndBareLfAfterField", chunked("0\r\nT: a\r\n\n"), Http400, "Bare LF"},
      {"ChunkExtensionBadName", chunked("5;@\r\nhello\r\n0\r\n\r\n"), Http400,
       "Invalid chunk extension"},
      {"ChunkExtensionEmptyValue", chunked("5;a=\r\nhello\r\n0\r\n\r\n"), Http400,
       "Invalid chunk extension"},
      {"ChunkExtensionUnterminatedQuote", chunked("5;a=\"b\r\nhello\r\n0\r\n\r\n"), Http400,
       "Invalid chunk extension"},
      {"ChunkExtensionCtlInQuote", chunked("5;a=\"\x01\"\r\nhello\r\n0\r\n\r\n"), Http400,
       "Invalid chunk extension"},
      {"ChunkExtensionTooLong",
       chunked("5;a=" + std::string(20, 'b') + "\r\nhello\r\n0\r\n\r\n"),
       Http400,
       "Chunk extensions too long",
       {.maxChunkExtensions = 16}},
      {"ChunkExtensionTooLongDefault", chunked("5;a=" + std::string(5000, 'b') + "\r\n"), Http400,
       "Chunk extensions too long"},
      {"ChunkedBodyTooLarge",
       chunked("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
       Http413,
       "Content too large",
       {.maxBody = 4}},
      {"ChunkedHugeChunk", chunked("ffffffffffffffff\r\n"), Http413, "Content too large"},
      {"TrailerObsFold", chunked("0\r\nT: a\r\n b\r\n\r\n"), Http400, "Obsolete line folding"},
      {"TrailerBadName", chunked("0\r\nT x: a\r\n\r\n"), Http400, "Invalid trailer field"},
      {"TrailerNoColon", chunked("0\r\nT\r\n\r\n"), Http400, "Invalid trailer field"},
      {"TrailerBadValue", chunked("0\r\nT: a\0\r\n\r\n"s), Http400, "Invalid trailer field"},
      {"TrailerBareCr", chunked("0\r\nT: a\rb\r\n\r\n"), Http400, "Bare CR"},
      {"TrailerEndBareCr", chunked("0\r\n\rx"), Http400, "Bare CR"},
      {"TrailerTooLarge",
       chunked("0\r\nT: " + std::string(100, 'v') + "\r\n\r\n"),
       Http431,
       "Trailer section too large",
       {.maxHeaderBytes = 80}},
      // A bad request after good ones.
      {"SecondPipelinedRequestBad", get("") + "GET / HTTP/1.1\r\nX: a\r\n\r\n", Http400,
       "Missing Host header"},
  };
  return cases;
}

class InvalidRequest : public testing::TestWithParam<InvalidCase> {};

TEST_P(InvalidRequest, SameErrorWholeAndByteByByte) {
  const InvalidCase& c = GetParam();
  Transcript expected = run(c.input, 0, c.limits);  // requests before the bad one, if any
  EXPECT_EQ(expected.end, "error " + std::to_string(c.code.value) + ' ' + c.reason);
  expected.end = "error " + std::to_string(c.code.value) + ' ' + c.reason;
  expectSameEverySlicing(c.input, c.limits, expected);
}

INSTANTIATE_TEST_SUITE_P(Table, InvalidRequest, testing::ValuesIn(invalidCases()),
                         [](const auto& info) { return testName(info.param.name); });

// --- parseRequestHead directly ------------------------------------------------------------------

TEST(ParseRequestHead, FillsTheHeadAndConsumedForPipelining) {
  const std::string buffer =
      "POST /a?b HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nhi"
      "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const ParserLimits limits;
  RequestHead head;
  ParseResult r = parseRequestHead(buffer, 0, limits, head);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.consumed, buffer.find("hi"));
  EXPECT_EQ(head.method, asynchttp::HttpPost);
  EXPECT_EQ(head.methodToken, "POST");
  EXPECT_EQ(head.target, "/a?b");
  EXPECT_EQ(head.version, "HTTP/1.0");
  EXPECT_EQ(head.versionMajor, 1);
  EXPECT_EQ(head.versionMinor, 0);
  ASSERT_EQ(head.headers.size(), 3u);
  EXPECT_EQ(head.headers[1].name, "Content-Length");
  EXPECT_EQ(head.headers[1].value, "2");
  EXPECT_EQ(head.framing, BodyFraming::contentLength);
  EXPECT_EQ(head.contentLength, 2u);
  EXPECT_TRUE(head.keepAlive);
  EXPECT_FALSE(head.expectContinue);
  EXPECT_TRUE(r.reason.empty());
  EXPECT_EQ(r.error, HttpCode{});

  const std::string_view next = std::string_view(buffer).substr(r.consumed + 2);
  r = parseRequestHead(next, 0, limits, head);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(r.consumed, next.size());
  EXPECT_EQ(head.method, asynchttp::HttpGet);
  EXPECT_EQ(head.headers.size(), 1u);
  EXPECT_EQ(head.framing, BodyFraming::none);
  EXPECT_EQ(head.contentLength, 0u);
}

TEST(ParseRequestHead, ReusesTheFieldVector) {
  const std::string buffer = get(manyFields(20));
  const ParserLimits limits;
  RequestHead head;
  ASSERT_EQ(parseRequestHead(buffer, 0, limits, head).status, ParseStatus::complete);
  const HeaderField* storage = head.headers.data();
  const std::size_t capacity = head.headers.capacity();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(parseRequestHead(buffer, 0, limits, head).status, ParseStatus::complete);
    EXPECT_EQ(head.headers.data(), storage);
    EXPECT_EQ(head.headers.capacity(), capacity);
    EXPECT_EQ(head.headers.size(), 21u);
  }
}

TEST(ParseRequestHead, PartialUntilTheEmptyLine) {
  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const ParserLimits limits;
  RequestHead head;
  EXPECT_EQ(parseRequestHead("", 0, limits, head).status, ParseStatus::partial);
  for (std::size_t n = 1; n < request.size(); ++n) {
    const ParseResult r = parseRequestHead(std::string_view(request).substr(0, n), 0, limits, head);
    EXPECT_EQ(r.status, ParseStatus::partial) << n;
    EXPECT_EQ(r.consumed, 0u);
  }
}

TEST(ParseRequestHead, RequestLineLimitOnPartialInput) {
  const ParserLimits limits{.maxRequestLine = 16};
  RequestHead head;
  const auto status = [&](std::string_view s) {
    const ParseResult r = parseRequestHead(s, 0, limits, head);
    return r.status == ParseStatus::error ? r.error.value : static_cast<int>(r.status) * 1000;
  };
  constexpr int partial = static_cast<int>(ParseStatus::partial) * 1000;
  // 16 bytes of line: fine so far; a 17th that is a CR may end the line at exactly 16.
  EXPECT_EQ(status("GET /23456789abc"), partial);
  EXPECT_EQ(status("GET /23456789abc\r"), partial);
  EXPECT_EQ(status("GET /23456789abcd"), 414);
  EXPECT_EQ(status("GET /23456789abc\rx"), 414);
  // The limit does not count leading empty lines.
  EXPECT_EQ(status("\r\n\r\nGET /23456789abc"), partial);
}

TEST(ParseRequestHead, HeadLimitOnPartialInput) {
  const ParserLimits limits{.maxHeaderBytes = 32};
  RequestHead head;
  std::string s = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  s.resize(32, 'v');
  EXPECT_EQ(parseRequestHead(s, 0, limits, head).status, ParseStatus::partial);
  s += 'v';
  const ParseResult r = parseRequestHead(s, 0, limits, head);
  EXPECT_EQ(r.status, ParseStatus::error);
  EXPECT_EQ(r.error, asynchttp::Http431);
}

TEST(ParseRequestHead, AlreadyScannedResumesAcrossACrLfCrLfSplit) {
  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const ParserLimits limits;
  RequestHead head;
  // Every split into two calls, the second resuming where the first stopped.
  for (std::size_t n = 1; n < request.size(); ++n) {
    const std::string_view first = std::string_view(request).substr(0, n);
    ASSERT_EQ(parseRequestHead(first, 0, limits, head).status, ParseStatus::partial);
    const ParseResult r = parseRequestHead(request, n, limits, head);
    ASSERT_EQ(r.status, ParseStatus::complete) << n;
    EXPECT_EQ(r.consumed, request.size());
    EXPECT_EQ(head.headers.size(), 1u);
  }
}

/// The status of parsing `s` whole, as a number: the error's code, or -1 for partial, 0 complete.
int outcome(std::string_view s, const ParserLimits& limits = {}, std::size_t scanned = 0) {
  RequestHead head;
  const ParseResult r = parseRequestHead(s, scanned, limits, head);
  if (r.status == ParseStatus::error) return r.error.value;
  return r.status == ParseStatus::partial ? -1 : 0;
}

TEST(ParseRequestHead, BareLfIsRefusedAsSoonAsItArrives) {
  // Wherever the bare LF is, the head is refused when it arrives: no need to wait for the end.
  for (const std::string& request :
       {"\r\n\nGET / HTTP/1.1\r\n"s, "GET / HTTP/1.1\nHost: a\r\n"s, "GET / HTTP/1.1\r\nHost: a\n"s,
        "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(100, 'v') + '\n',
        "GET / HTTP/1.1\r\nHost: a\r\n\n"s}) {
    std::size_t lf = request.find('\n');
    while (lf > 0 && request[lf - 1] == '\r') lf = request.find('\n', lf + 1);
    for (std::size_t n = 1; n <= request.size(); ++n) {
      const std::string_view prefix = std::string_view(request).substr(0, n);
      const int expected = n <= lf ? -1 : 400;
      EXPECT_EQ(outcome(prefix), expected) << testing::PrintToString(prefix);
      // Resumed where the previous call, which was partial, stopped.
      if (n - 1 <= lf) {
        EXPECT_EQ(outcome(prefix, {}, n - 1), expected) << testing::PrintToString(prefix);
      }
    }
  }
}

TEST(ParseRequestHead, Http2PrefaceIs505AsSoonAsItsRequestLineIsIn) {
  const std::string_view preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  for (std::size_t n = 1; n <= preface.size(); ++n) {
    EXPECT_EQ(outcome(preface.substr(0, n)), n < 16 ? -1 : 505) << n;
  }
  EXPECT_EQ(outcome("PRI * HTTP/2.1"), 501);
  EXPECT_EQ(outcome("PRI  "), 501);
}

TEST(ParseRequestHead, ConnectIsServedOnlyWhenAllowed) {
  const std::string request = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
  // Refused as soon as the method is known, so a CONNECT is never buffered.
  EXPECT_EQ(outcome("CONNECT "), 501);
  EXPECT_EQ(outcome("CONNECT"), -1);
  EXPECT_EQ(outcome(request), 501);
  const ParserLimits allowed{.allowConnect = true};
  RequestHead head;
  const ParseResult r = parseRequestHead(request, 0, allowed, head);
  ASSERT_EQ(r.status, ParseStatus::complete);
  EXPECT_EQ(head.method, asynchttp::HttpConnect);
  EXPECT_EQ(head.target, "example.com:443");
}

// --- ChunkedDecoder --------------------------------------------------------------------------

struct ChunkedCase {
  std::string name;
  std::string input;
  ParseStatus status;
  std::string body;          // decoded so far (also on error or partial)
  std::size_t consumed = 0;  // complete: bytes up to the end of the trailer section
  HttpCode code{};
  ParserLimits limits{};
};

void PrintTo(const ChunkedCase& c, std::ostream* os) {
  *os << c.name;
}

const std::vector<ChunkedCase>& chunkedCases() {
  using namespace asynchttp;
  constexpr auto complete = ParseStatus::complete;
  constexpr auto partial = ParseStatus::partial;
  constexpr auto error = ParseStatus::error;
  static const std::vector<ChunkedCase> cases = {
      {"Simple", "5\r\nhello\r\n0\r\n\r\n", complete, "hello", 15},
      {"TwoChunks", "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", complete, "abcdefg", 22},
      {"Empty", "0\r\n\r\n", complete, "", 5},
      {"LeftoverIsNotConsumed", "1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\n", complete, "x", 11},
      {"UpperHex", "A\r\n0123456789\r\n0\r\n\r\n", complete, "0123456789", 20},
      {"Extensions", "3;a;b=c;d=\"e;\\\"f\"\r\nabc\r\n0;z\r\n\r\n", complete, "abc", 31},
      {"ExtensionsWithBws", "3 ; a = b ;c= \"d\"\r\nabc\r\n0\r\n\r\n", complete, "abc", 29},
      {"Trailers", "3\r\nabc\r\n0\r\nA: 1\r\nB-2:\r\n\r\n", complete, "abc", 25},
      {"LfOnlyIsRefused", "3\nabc\n0\nA: 1\n\n", error, "", 0, Http400},
      {"BareLfAfterData", "3\r\nabc\n0\r\n\r\n", error, "abc", 0, Http400},
      {"BareLfEndingLastChunk", "3\r\nabc\r\n0\n\r\n", error, "abc", 0, Http400},
      {"BareLfEndingTrailer", "0\r\nA: 1\n\r\n", error, "", 0, Http400},
      {"BareLfEndingTrailerSection", "3\r\nabc\r\n0\r\nA: 1\r\n\n", error, "abc", 0, Http400},
      {"CrLfInData", "4\r\n\r\n\r\n\r\n0\r\n\r\n", complete, "\r\n\r\n", 14},
      {"BinaryData", "3\r\n\0\xff\n\r\n0\r\n\r\n"s, complete, "\0\xff\n"s, 13},
      {"SixteenDigits", "0000000000000003\r\nabc\r\n0\r\n\r\n", complete, "abc", 28},
      {"Truncated", "5\r\nhel", partial, "hel"},
      {"TruncatedInTrailer", "0\r\nA: 1\r\n", partial, ""},
      {"BadSize", "g\r\n", error, "", 0, Http400},
      {"SizeWithSpace", "5 \r\nhello\r\n0\r\n\r\n", error, "", 0, Http400},
      {"SizeOverflow", "10000000000000000\r\n", error, "", 0, Http400},
      {"MissingCrLfAfterData", "3\r\nabcd", error, "abc", 0, Http400},
      {"BareCrAfterSize", "3\rabc", error, "", 0, Http400},
      {"BadExtension", "3;=\r\nabc\r\n0\r\n\r\n", error, "", 0, Http400},
      {"BadTrailer", "0\r\n:x\r\n\r\n", error, "", 0, Http400},
      {"ExtensionsTooLong",
       "1;aaaaaaaa=bbbbbbbb\r\n",
       error,
       "",
       0,
       Http400,
       {.maxChunkExtensions = 8}},
      {"ExtensionsAtLimit",
       "1;aaa=bbbb\r\nx\r\n0\r\n\r\n",
       complete,
       "x",
       20,
       {},
       {.maxChunkExtensions = 9}},
      {"TrailerTooLarge", "0\r\nA: 12345678\r\n\r\n", error, "", 0, Http431, {.maxHeaderBytes = 8}},
      {"BodyTooLarge",
       "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
       error,
       "abc",
       0,
       Http413,
       {.maxBody = 4}},
      {"BodyAtLimit", "3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n", complete, "abcd", 19, {}, {.maxBody = 4}},
  };
  return cases;
}

/// Decodes `input` cut at `cuts` (sorted offsets); returns the last status and the total consumed.
ParseResult decodeInPieces(const ChunkedCase& c, const std::vector<std::size_t>& cuts,
                           std::string& body) {
  ChunkedDecoder decoder(c.limits);
  ParseResult r;
  std::size_t offset = 0;
  std::size_t total = 0;
  for (std::size_t k = 0; k <= cuts.size(); ++k) {
    const std::size_t end = k < cuts.size() ? cuts[k] : c.input.size();
    r = decoder.decode(std::string_view(c.input).substr(offset, end - offset), body);
    total += r.consumed;
    if (r.status != ParseStatus::partial) break;
    offset = end;
  }
  r.consumed = r.status == ParseStatus::complete ? total : 0;
  return r;
}

class Chunked : public testing::TestWithParam<ChunkedCase> {};

TEST_P(Chunked, SameResultWholeSplitAnywhereAndByteByByte) {
  const ChunkedCase& c = GetParam();
  const auto check = [&](const std::vector<std::size_t>& cuts, const std::string& how) {
    std::string body;
    const ParseResult r = decodeInPieces(c, cuts, body);
    EXPECT_EQ(r.status, c.status) << how;
    EXPECT_EQ(body, c.body) << how;
    EXPECT_EQ(r.consumed, c.consumed) << how;
    EXPECT_EQ(r.error, c.code) << how;
    EXPECT_EQ(r.reason.empty(), c.status != ParseStatus::error) << how;
  };
  check({}, "whole");
  for (std::size_t cut = 0; cut <= c.input.size(); ++cut)
    check({cut}, "cut at " + std::to_string(cut));
  std::vector<std::size_t> everyByte;
  for (std::size_t cut = 1; cut < c.input.size(); ++cut) everyByte.push_back(cut);
  check(everyByte, "byte by byte");
}

INSTANTIATE_TEST_SUITE_P(Table, Chunked, testing::ValuesIn(chunkedCases()),
                         [](const auto& info) { return testName(info.param.name); });

TEST(ChunkedDecoder, ErrorIsStickyUntilReset) {
  ChunkedDecoder decoder(ParserLimits{});
  std::string body;
  const ParseResult first = decoder.decode("5\r\nhello\r\nzz", body);
  ASSERT_EQ(first.status, ParseStatus::error);
  EXPECT_EQ(first.consumed, 10u);  // the offending byte
  const ParseResult again = decoder.decode("5\r\nhello\r\n0\r\n\r\n", body);
  EXPECT_EQ(again.status, ParseStatus::error);
  EXPECT_EQ(again.reason, first.reason);
  EXPECT_EQ(again.consumed, 0u);  // the caller consumed up to the offending byte already
  decoder.reset();
  body.clear();
  const ParseResult fresh = decoder.decode("5\r\nhello\r\n0\r\n\r\n", body);
  EXPECT_EQ(fresh.status, ParseStatus::complete);
  EXPECT_EQ(body, "hello");
  EXPECT_EQ(decoder.bodySize(), 5u);
}

// --- Property test: mutations of valid requests ------------------------------------------------

/// A small deterministic generator (xorshift64*): the same mutations on every platform.
struct Random {
  std::uint64_t state;
  std::uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1DULL;
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
};

std::string mutate(std::string s, Random& random) {
  static constexpr std::string_view interesting =
      "\r\n \t:;,=\"\\0123456789abcdefxX-\x7f\x80\xff\x01";
  const int edits = 1 + static_cast<int>(random.below(3));
  for (int e = 0; e < edits; ++e) {
    const std::size_t at = random.below(s.size() + 1);
    const char byte = random.below(4) == 0 ? static_cast<char>(random.below(256))
                                           : interesting[random.below(interesting.size())];
    switch (random.below(5)) {
      case 0:  // replace
        if (at < s.size()) s[at] = byte;
        break;
      case 1:  // insert
        s.insert(at, 1, byte);
        break;
      case 2:  // delete
        if (at < s.size()) s.erase(at, 1);
        break;
      case 3:  // duplicate a stretch
        if (at < s.size()) s.insert(at, s.substr(at, 1 + random.below(8)));
        break;
      default:  // truncate
        s.resize(at);
        break;
    }
  }
  return s;
}

TEST(Property, MutatedRequestsAgreeWholeAndByteByByte) {
  std::vector<std::string> seeds;
  for (const ValidCase& c : validCases()) {
    if (c.input.size() <= 400) seeds.push_back(c.input);
  }
  // Default limits and ever smaller ones (the last below a method's length), so that all are
  // crossed, at every stage of a request; CONNECT refused and allowed.
  const std::vector<ParserLimits> limitSets = {
      {},
      {.maxRequestLine = 64,
       .maxHeaderBytes = 256,
       .maxHeaderCount = 6,
       .maxBody = 64,
       .allowConnect = true},
      {.maxRequestLine = 24,
       .maxHeaderBytes = 64,
       .maxHeaderCount = 2,
       .maxBody = 4,
       .maxChunkExtensions = 6},
      {.maxRequestLine = 5, .maxHeaderBytes = 40, .maxHeaderCount = 1, .maxBody = 2}};
  Random random{0x9e3779b97f4a7c15ULL};
  int errors = 0;
  std::map<std::string, int> outcomes;
  for (int i = 0; i < 20000; ++i) {
    const std::string input = mutate(seeds[random.below(seeds.size())], random);
    const ParserLimits& limits = limitSets[static_cast<std::size_t>(i) % limitSets.size()];
    const Transcript whole = run(input, 0, limits);
    const Transcript bytes = run(input, 1, limits);
    const std::size_t slice = 2 + random.below(15);
    const Transcript slices = run(input, slice, limits);
    if (whole != bytes || whole != slices) {
      ADD_FAILURE() << "mutation " << i << ": " << testing::PrintToString(input)
                    << "\nwhole:" << testing::PrintToString(whole)
                    << "\nbyte by byte:" << testing::PrintToString(bytes) << "\nslices of " << slice
                    << ':' << testing::PrintToString(slices);
      if (++errors == 5) break;
    }
    ++outcomes[whole.end.substr(0, whole.end.find(' ', 6))];  // "ok", "error 400", ...
  }
  // The mutations must reach far: many outcomes, and plenty of requests still accepted.
  EXPECT_GE(outcomes.size(), 9u) << testing::PrintToString(outcomes);
  EXPECT_GE(outcomes["ok"], 1000) << testing::PrintToString(outcomes);
}

TEST(Property, MutatedChunkedBodiesAgreeWholeAndSplit) {
  const std::vector<std::string> seeds = {
      "5;ext=1\r\nhello\r\n6 ; a ; b = \"q;\\\"x\"\r\n world\r\n0\r\nT: 1\r\n\r\n",
      "3\nabc\n0\nA: 1\n\n", "0\r\n\r\n"};
  Random random{42};
  for (int i = 0; i < 5000; ++i) {
    const std::string input = mutate(seeds[random.below(seeds.size())], random);
    const ChunkedCase c{
        "m",
        input,
        ParseStatus::partial,
        "",
        0,
        {},
        ParserLimits{.maxHeaderBytes = 16, .maxBody = 12, .maxChunkExtensions = 12}};
    std::string wholeBody;
    const ParseResult whole = decodeInPieces(c, {}, wholeBody);
    std::string splitBody;
    const std::size_t cut = random.below(input.size() + 1);
    const ParseResult split = decodeInPieces(c, {cut}, splitBody);
    ASSERT_EQ(whole.status, split.status) << testing::PrintToString(input) << " cut " << cut;
    ASSERT_EQ(whole.error, split.error) << testing::PrintToString(input);
    ASSERT_EQ(whole.consumed, split.consumed) << testing::PrintToString(input);
    ASSERT_EQ(wholeBody, splitBody) << testing::PrintToString(input);
    ASSERT_LE(wholeBody.size(), 12u);
  }
}

}  // namespace

TEST(ChunkedDecoder, ExtensionsAreBoundedAgainstTheDataTheyCarry) {
  // 5 000 one-byte chunks with 4 000 bytes of extension each: 20 MB for a 5 000-byte body.
  std::string bloated;
  for (int i = 0; i < 5000; ++i) bloated += "1;" + std::string(3998, 'e') + "\r\nx\r\n";
  bloated += "0\r\n\r\n";
  std::string body;
  ChunkedDecoder decoder(ParserLimits{});
  ParseResult r = decoder.decode(bloated, body);
  EXPECT_EQ(r.status, ParseStatus::error);
  EXPECT_EQ(r.error, asynchttp::Http400);
  EXPECT_LT(r.consumed, 64u * 1024);  // refused within the allowance, not after 20 MB
  // Short extensions on many small chunks stay acceptable.
  std::string modest;
  for (int i = 0; i < 10000; ++i) modest += "1;a=b\r\nx\r\n";
  modest += "0\r\n\r\n";
  body.clear();
  ChunkedDecoder fine(ParserLimits{});
  EXPECT_EQ(fine.decode(modest, body).status, ParseStatus::complete);
  EXPECT_EQ(body, std::string(10000, 'x'));
}
