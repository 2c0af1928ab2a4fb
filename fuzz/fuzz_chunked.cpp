// libFuzzer entry point for the chunked-body decoder on its own (see README.md to build it).
// Every input is used twice:
//  - as raw bytes fed to the decoder, whole, cut in two, in pseudo-random pieces and byte by
//    byte: all must give the same status, error, body and end (the offset of the end of the
//    trailer, or of the offending byte); a lenient reference decoder (sizes, line ends, data and
//    trailer lines; extensions and trailer fields not validated) must agree with a decoder that
//    completes, and the limits must hold;
//  - as the choices building a well-formed chunked body (sizes in either case, leading zeros,
//    extensions with token and quoted values, trailer fields, LF or CRLF line ends, bytes of a
//    next request after it): the decoder must accept it with exactly the encoded body, or,
//    under small limits, refuse it with the status of the first limit crossed.
#include "fuzz_require.hpp"
#include "http1_parser.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace asynchttp;
using namespace asynchttp::detail;

namespace {

bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

std::uint64_t hexValue(char c) {
  if (c >= '0' && c <= '9') return static_cast<std::uint64_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<std::uint64_t>(c - 'a' + 10);
  return static_cast<std::uint64_t>(c - 'A' + 10);
}

// --- The lenient reference -------------------------------------------------------------------

struct Reference {
  enum Status { complete, partial, invalid } status = partial;
  std::size_t consumed = 0;  // complete: the end of the trailer section
  std::string body;
  std::uint64_t declared = 0;         // sum of the chunk sizes
  std::size_t longestExtensions = 0;  // extension bytes on one size line (line end excluded)
  std::uint64_t extensionBytes = 0;   // what the decoder counts: all but each line's first
  std::uint64_t chunks = 0;
  std::size_t trailerBytes = 0;  // the trailer section, its final empty line included
};

// Frames `in` as a chunked body by its line ends and sizes alone. A decoder that completes must
// find the same frames; one that accepts every byte up to where this one completes must complete.
Reference reference(std::string_view in) {
  Reference r;
  std::size_t pos = 0;
  const auto fail = [&] {
    r.status = Reference::invalid;
    return r;
  };
  for (;;) {
    std::size_t digits = 0;
    std::uint64_t size = 0;
    while (pos + digits < in.size() && isHex(in[pos + digits])) {
      if (digits < 16) size = size * 16 + hexValue(in[pos + digits]);
      ++digits;
    }
    if (pos + digits == in.size()) return r;  // partial
    if (digits == 0 || digits > 16) return fail();
    const std::size_t lf = in.find('\n', pos + digits);
    if (lf == std::string_view::npos) return r;
    std::size_t extensions = lf - (pos + digits);
    if (extensions > 0 && in[lf - 1] == '\r') --extensions;
    r.longestExtensions = std::max(r.longestExtensions, extensions);
    if (extensions > 0) r.extensionBytes += extensions - 1;
    ++r.chunks;
    r.declared += size;
    pos = lf + 1;
    if (size == 0) break;
    if (in.size() - pos < size) return r;
    r.body.append(in.substr(pos, size));
    pos += size;
    if (pos == in.size()) return r;
    if (in[pos] == '\n') {
      pos += 1;
    } else if (in[pos] == '\r') {
      if (pos + 1 == in.size()) return r;
      if (in[pos + 1] != '\n') return fail();
      pos += 2;
    } else {
      return fail();
    }
  }
  const std::size_t trailer = pos;
  for (;;) {
    const std::size_t lf = in.find('\n', pos);
    if (lf == std::string_view::npos) return r;
    const std::string_view line = in.substr(pos, lf - pos);
    pos = lf + 1;
    if (line.empty() || line == "\r") break;
  }
  r.status = Reference::complete;
  r.consumed = pos;
  r.trailerBytes = pos - trailer;
  return r;
}

// --- Decoding in pieces ---------------------------------------------------------------------

struct Outcome {
  ParseStatus status = ParseStatus::partial;
  std::size_t end = 0;  // complete: bytes used; error: offset of the offending byte
  HttpCode error{};
  std::string body;
};

void checkStep(const ParseResult& r, std::string_view piece, const std::string& body,
               const ChunkedDecoder& decoder, const ParserLimits& limits) {
  require(r.consumed <= piece.size());
  if (r.status == ParseStatus::partial) require(r.consumed == piece.size());
  if (r.status == ParseStatus::complete) require(r.error == HttpCode{} && r.reason.empty());
  if (r.status == ParseStatus::error) {
    require(r.consumed < piece.size() || piece.empty());
    require(r.error == Http400 || r.error == Http413 || r.error == Http431);
    require(!r.reason.empty());
  }
  // Never more body than the sizes declared, nor declared beyond the limit.
  require(body.size() <= decoder.bodySize() && decoder.bodySize() <= limits.maxBody);
  if (r.status == ParseStatus::complete) require(body.size() == decoder.bodySize());
}

// Decodes `input` in pieces whose lengths are `cuts` (0: as long as the rest), then 1 by 1.
Outcome decodeInPieces(std::string_view input, const std::vector<std::size_t>& cuts,
                       const ParserLimits& limits, ChunkedDecoder& decoder) {
  Outcome o;
  std::size_t offset = 0;
  std::size_t k = 0;
  for (;;) {
    std::size_t n = k < cuts.size() ? cuts[k] : 1;
    if (n == 0) n = input.size() - offset;
    ++k;
    const std::string_view piece = input.substr(offset, std::min(n, input.size() - offset));
    const std::size_t before = o.body.size();
    const ParseResult r = decoder.decode(piece, o.body);
    checkStep(r, piece, o.body, decoder, limits);
    if (r.status != ParseStatus::complete) require(o.body.size() - before <= r.consumed);
    o.status = r.status;
    o.error = r.error;
    o.end = offset + r.consumed;
    offset += piece.size();
    if (r.status != ParseStatus::partial || offset == input.size()) break;
  }
  // The decoder's promises once it has stopped: an error is sticky (the offending byte starts
  // the next input), a finished body takes nothing more.
  const std::string body = o.body;
  const ParseResult again = decoder.decode(input.substr(std::min(o.end, input.size())), o.body);
  require(o.body == body);
  if (o.status == ParseStatus::error) {
    require(again.status == ParseStatus::error && again.consumed == 0 && again.error == o.error);
  }
  if (o.status == ParseStatus::complete) {
    require(again.status == ParseStatus::complete && again.consumed == 0);
  }
  return o;
}

bool same(const Outcome& a, const Outcome& b) {
  return a.status == b.status && a.end == b.end && a.error == b.error && a.body == b.body;
}

// Decodes raw bytes every way and checks the decoder against itself, its limits and the reference.
Outcome checkRaw(std::string_view input, const ParserLimits& limits) {
  ChunkedDecoder decoder(limits);
  const Outcome whole = decodeInPieces(input, {0}, limits, decoder);
  decoder.reset();  // a reset decoder is a fresh one
  require(same(decodeInPieces(input, {0}, limits, decoder), whole));

  // Pieces from a hash of the input: deterministic, yet different for different inputs.
  std::uint64_t h = 1469598103934665603ULL;
  for (const char c : input) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  std::vector<std::size_t> random;
  for (std::size_t total = 0; total < input.size();) {
    h = h * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::size_t n = 1 + static_cast<std::size_t>((h >> 33) % 16);
    random.push_back(n);
    total += n;
  }
  const std::vector<std::size_t> splits[] = {{input.size() / 3, 0}, {1}, random};
  for (const auto& cuts : splits) {
    ChunkedDecoder d(limits);
    require(same(decodeInPieces(input, cuts, limits, d), whole));
  }

  const Reference ref = reference(input);
  if (whole.status == ParseStatus::complete) {
    require(ref.status == Reference::complete && ref.consumed == whole.end &&
            ref.body == whole.body);
    require(ref.declared <= limits.maxBody);
    require(ref.longestExtensions <= limits.maxChunkExtensions);
    require(ref.trailerBytes <= limits.maxHeaderBytes);
    require(ref.extensionBytes <= 16 * 1024 + 16 * ref.chunks + 2 * ref.declared);
  }
  // Accepting every byte up to where the body ends, yet not finishing, is losing the framing.
  if (ref.status == Reference::complete) {
    require(whole.status == ParseStatus::complete ||
            (whole.status == ParseStatus::error && whole.end < ref.consumed));
  }
  return whole;
}

// --- Well-formed bodies built from the input ----------------------------------------------

class Choices {
 public:
  explicit Choices(std::string_view data) : data_(data) {}
  bool empty() const { return at_ >= data_.size(); }
  unsigned byte() { return empty() ? 0 : static_cast<unsigned char>(data_[at_++]); }
  unsigned below(unsigned n) { return byte() % n; }
  char pick(std::string_view from) { return from[below(static_cast<unsigned>(from.size()))]; }

 private:
  std::string_view data_;
  std::size_t at_ = 0;
};

constexpr std::string_view kTchars =
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kQdtext = " \t!#$%&'()*+,-./:;<=>?@[]^_`{|}~azAZ09\x80\xff";

// A size line of a built body: where it starts, its hex digits, its size and extension bytes.
struct SizeLine {
  std::size_t start = 0;
  std::size_t digits = 0;
  std::uint64_t size = 0;
  std::size_t extensions = 0;
};

struct Built {
  std::string wire;
  std::string body;
  std::size_t length = 0;  // of the chunked body, before the bytes of a next request
  std::vector<SizeLine> lines;
  std::size_t trailerStart = 0;
  std::size_t trailerBytes = 0;
  std::size_t firstBareLf = std::string::npos;
};

// Whether the decoder takes a bare LF for a line end (RFC 9112 lets a recipient choose): the
// built bodies use one now and then, and must then be refused there if it does not.
const bool kBareLfAccepted = [] {
  ChunkedDecoder decoder{ParserLimits{}};
  std::string body;
  return decoder.decode("0\n\n", body).status == ParseStatus::complete;
}();

void lineEnd(Choices& in, Built& b) {
  if (in.below(8) == 0) {
    if (b.firstBareLf == std::string::npos) b.firstBareLf = b.wire.size();
    b.wire += "\n";
  } else {
    b.wire += "\r\n";
  }
}

std::string whitespace(Choices& in) {
  std::string s(in.below(4) == 0 ? in.below(3) : 0, ' ');
  for (char& c : s) c = in.pick(" \t");
  return s;
}

std::string extensions(Choices& in) {
  std::string s;
  for (unsigned n = in.below(4) == 0 ? in.below(4) : 0; n > 0; --n) {
    s += whitespace(in) + ";" + whitespace(in);
    for (unsigned k = 1 + in.below(4); k > 0; --k) s += in.pick(kTchars);
    switch (in.below(3)) {
      case 0:
        break;
      case 1:
        s += whitespace(in) + "=" + whitespace(in);
        for (unsigned k = 1 + in.below(4); k > 0; --k) s += in.pick(kTchars);
        break;
      default:
        s += whitespace(in) + "=" + whitespace(in) + "\"";
        for (unsigned k = in.below(5); k > 0; --k) {
          if (in.below(4) == 0) {
            s += '\\';
            s += in.pick("\"\\ \tax\x80");
          } else {
            s += in.pick(kQdtext);
          }
        }
        s += "\"";
    }
  }
  return s;
}

std::string hexSize(Choices& in, std::uint64_t size) {
  static constexpr std::string_view lower = "0123456789abcdef";
  static constexpr std::string_view upper = "0123456789ABCDEF";
  const std::string_view digits = in.below(2) ? lower : upper;
  std::string hex;
  do {
    hex.insert(hex.begin(), digits[size % 16]);
    size /= 16;
  } while (size > 0);
  if (in.below(8) == 0) hex.insert(0, std::min<std::size_t>(in.below(4), 16 - hex.size()), '0');
  return hex;
}

void sizeLine(Choices& in, Built& b, std::uint64_t size) {
  const std::string hex = hexSize(in, size);
  const std::string ext = extensions(in);
  b.lines.push_back({b.wire.size(), hex.size(), size, ext.size()});
  b.wire += hex + ext;
  lineEnd(in, b);
}

Built build(Choices& in) {
  Built b;
  for (unsigned chunks = in.below(6); chunks > 0 && !in.empty(); --chunks) {
    const std::uint64_t size = 1 + in.below(in.below(4) == 0 ? 64 : 8);
    std::string data;
    for (std::uint64_t k = 0; k < size; ++k) data += static_cast<char>(in.byte());
    sizeLine(in, b, size);
    b.wire += data;
    lineEnd(in, b);
    b.body += data;
  }
  sizeLine(in, b, 0);
  b.trailerStart = b.wire.size();
  for (unsigned fields = in.below(4) == 0 ? in.below(3) : 0; fields > 0; --fields) {
    for (unsigned k = 1 + in.below(6); k > 0; --k) b.wire += in.pick(kTchars);
    b.wire += ":";
    for (unsigned k = in.below(8); k > 0; --k) b.wire += in.pick(kQdtext);
    lineEnd(in, b);
  }
  lineEnd(in, b);
  b.trailerBytes = b.wire.size() - b.trailerStart;
  b.length = b.wire.size();
  if (in.below(4) == 0) b.wire += "GET / HTTP/1.1\r\n\r\n";
  return b;
}

// Where and why the decoder must refuse a built body: the first limit crossed, in the order the
// decoder meets them, or its first bare LF if it refuses those. At the same byte a limit may win.
struct Expected {
  std::size_t at = std::string::npos;  // npos: accepted
  HttpCode error{};
  std::size_t bareLf = std::string::npos;
};

Expected expected(const Built& b, const ParserLimits& limits) {
  Expected e;
  if (!kBareLfAccepted) e.bareLf = b.firstBareLf;
  const auto candidate = [&](std::size_t at, HttpCode error) {
    if (at < e.at) e = {at, error, e.bareLf};
  };
  std::uint64_t total = 0;
  for (const SizeLine& line : b.lines) {
    if (line.size > limits.maxBody - total) {
      candidate(line.start + line.digits, Http413);
      break;
    }
    total += line.size;
    if (line.extensions > limits.maxChunkExtensions) {
      candidate(line.start + line.digits + limits.maxChunkExtensions, Http400);
      break;
    }
  }
  if (b.trailerBytes > limits.maxHeaderBytes) {
    candidate(b.trailerStart + limits.maxHeaderBytes, Http431);
  }
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Default limits, and small ones that inputs of a few hundred bytes can cross.
  const ParserLimits small{.maxRequestLine = 48,
                           .maxHeaderBytes = 24,
                           .maxHeaderCount = 4,
                           .maxBody = 32,
                           .maxChunkExtensions = 12};
  const ParserLimits tiny{.maxHeaderBytes = 2, .maxBody = 0, .maxChunkExtensions = 1};
  for (const ParserLimits& limits : {ParserLimits{}, small, tiny}) {
    checkRaw(input, limits);

    Choices choices(input);
    const Built b = build(choices);
    const Outcome o = checkRaw(b.wire, limits);
    const Expected e = expected(b, limits);
    if (e.bareLf < e.at || (e.bareLf == e.at && o.error == Http400)) {
      require(o.status == ParseStatus::error && o.error == Http400 && o.end == e.bareLf);
    } else if (e.at != std::string::npos) {
      require(o.status == ParseStatus::error && o.error == e.error && o.end == e.at);
    } else {
      require(o.status == ParseStatus::complete && o.end == b.length && o.body == b.body);
    }
  }
  return 0;
}
