// libFuzzer entry point for the HTTP/1.1 request parser (see README.md to build it). Besides
// memory errors, it checks the parser's promises: a head parsed whole and grown byte by byte
// gives the same outcome, views stay inside the buffer, limits hold, and the chunked decoder gives
// the same body however its input is split.
#include "fuzz_require.hpp"
#include "http1_parser.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace asynchttp::detail;

namespace {

bool inside(std::string_view view, std::string_view buffer) {
  return view.data() >= buffer.data() && view.data() + view.size() <= buffer.data() + buffer.size();
}

bool sameResult(const ParseResult& a, const ParseResult& b) {
  return a.status == b.status && a.consumed == b.consumed && a.error == b.error &&
         a.reason == b.reason;
}

bool sameHead(const RequestHead& a, const RequestHead& b) {
  if (a.method != b.method || a.methodToken != b.methodToken || a.target != b.target ||
      a.version != b.version || a.versionMinor != b.versionMinor || a.framing != b.framing ||
      a.contentLength != b.contentLength || a.keepAlive != b.keepAlive ||
      a.expectContinue != b.expectContinue || a.headers.size() != b.headers.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value) {
      return false;
    }
  }
  return true;
}

/// Decodes `input` as a chunked body whole, cut at `cut`, and byte by byte: all must agree.
void checkChunked(std::string_view input, std::size_t cut, const ParserLimits& limits) {
  std::string wholeBody;
  ChunkedDecoder whole(limits);
  const ParseResult w = whole.decode(input, wholeBody);
  require(w.consumed <= input.size() && wholeBody.size() <= limits.maxBody);
  if (w.status == ParseStatus::partial) require(w.consumed == input.size());

  // The first piece has `first` bytes, the others `step`.
  const auto inPieces = [&](std::size_t first, std::size_t step) {
    std::string body;
    ChunkedDecoder decoder(limits);
    ParseResult r;
    std::size_t offset = 0;
    std::size_t total = 0;
    for (std::size_t n = first;; n = step) {
      r = decoder.decode(input.substr(offset, n), body);
      total += r.consumed;
      offset = std::min(offset + n, input.size());
      if (r.status != ParseStatus::partial || offset == input.size()) break;
    }
    require(r.status == w.status && r.error == w.error && body == wholeBody);
    if (r.status == ParseStatus::complete) require(total == w.consumed);
  };
  inPieces(cut, input.size());
  inPieces(1, 1);
}

/// Parses `input` as a request head whole and grown byte by byte; then its chunked body, if any.
void checkHead(std::string_view input, const ParserLimits& limits) {
  RequestHead whole;
  const ParseResult w = parseRequestHead(input, 0, limits, whole);

  RequestHead grown;
  ParseResult g = parseRequestHead(input.substr(0, 0), 0, limits, grown);
  std::size_t scanned = 0;
  for (std::size_t n = 1; n <= input.size() && g.status == ParseStatus::partial; ++n) {
    g = parseRequestHead(input.substr(0, n), scanned, limits, grown);
    scanned = n;
  }
  require(sameResult(w, g));
  if (w.status == ParseStatus::error) require(w.error.value >= 400 && !w.reason.empty());
  if (w.status != ParseStatus::complete) return;

  require(sameHead(whole, grown));
  require(w.consumed > 0 && w.consumed <= input.size() && w.consumed <= limits.maxHeaderBytes);
  const std::string_view head = input.substr(0, w.consumed);
  require(inside(whole.methodToken, head) && inside(whole.target, head) &&
          inside(whole.version, head));
  require(whole.headers.size() <= limits.maxHeaderCount);
  for (const HeaderField& f : whole.headers) {
    require(!f.name.empty() && inside(f.name, head) && inside(f.value, head));
  }
  if (whole.framing == BodyFraming::contentLength) require(whole.contentLength <= limits.maxBody);
  if (whole.framing == BodyFraming::chunked) {
    const std::string_view rest = input.substr(w.consumed);
    checkChunked(rest, rest.size() / 2, limits);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Default limits, and small ones that inputs of a few hundred bytes can cross.
  const ParserLimits small{.maxRequestLine = 48,
                           .maxHeaderBytes = 160,
                           .maxHeaderCount = 4,
                           .maxBody = 32,
                           .maxChunkExtensions = 12};
  // And CONNECT served, as a proxy's settings have it (authority-form targets then parse).
  const ParserLimits proxy{.allowConnect = true};
  for (const ParserLimits& limits : {ParserLimits{}, small, proxy}) {
    checkHead(input, limits);
    checkChunked(input, size / 3, limits);  // the input as a body on its own
  }
  return 0;
}
