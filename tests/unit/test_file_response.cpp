// Tests for file_response: media types, validators, HTTP-dates, preconditions and Range.
#include "file_response.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace asynchttp;
using detail::FileAnswer;

namespace {

// The file of most cases: 100 bytes modified at Sun, 06 Nov 1994 08:49:37 GMT.
constexpr std::int64_t kMtime = 784111777;
constexpr std::string_view kTag = "\"2ebc98a1-64\"";  // entityTag(kMtime, 100)
constexpr std::string_view kWeakTag = "W/\"2ebc98a1-64\"";
constexpr std::string_view kSame = "Sun, 06 Nov 1994 08:49:37 GMT";
constexpr std::string_view kBefore = "Sun, 06 Nov 1994 08:49:36 GMT";  // the file is newer
constexpr std::string_view kAfter = "Sun, 06 Nov 1994 08:49:38 GMT";   // the file is older

using Fields = std::vector<std::pair<std::string_view, std::string_view>>;

struct RequestCase {
  const char* name;
  HttpMethod method;
  Fields fields;  // added in order, so a repeated name makes several lines
  std::uint64_t size;
  HttpCode code;
  std::uint64_t offset;
  std::uint64_t length;
};

void PrintTo(const RequestCase& c, std::ostream* os) {
  *os << c.name;
}

class FileRequest : public testing::TestWithParam<RequestCase> {};

TEST_P(FileRequest, Answers) {
  const RequestCase& c = GetParam();
  HttpHeaders headers;
  for (const auto& [key, value] : c.fields) headers.add(key, value);
  const std::string etag = detail::entityTag(kMtime, c.size);
  const FileAnswer answer = detail::evaluateFileRequest(c.method, headers, etag, kMtime, c.size);
  EXPECT_EQ(answer.code, c.code);
  EXPECT_EQ(answer.offset, c.offset);
  EXPECT_EQ(answer.length, c.length);
}

std::string caseName(const testing::TestParamInfo<RequestCase>& info) {
  return info.param.name;
}

// A GET of the 100-byte file with only a Range header.
RequestCase range(const char* name, std::string_view value, HttpCode code, std::uint64_t offset,
                  std::uint64_t length, std::uint64_t size = 100) {
  return {name, HttpGet, {{"Range", value}}, size, code, offset, length};
}

// A request for the 100-byte file; a 200 sends it whole, other codes send nothing.
RequestCase request(const char* name, HttpMethod method, Fields fields, HttpCode code) {
  const bool whole = code == Http200;
  return {name, method, std::move(fields), 100, code, 0, whole ? 100u : 0u};
}

const RequestCase kRangeCases[] = {
    range("FirstByte", "bytes=0-0", Http206, 0, 1),
    range("LastByte", "bytes=99-99", Http206, 99, 1),
    range("Middle", "bytes=10-19", Http206, 10, 10),
    range("WholeAsRange", "bytes=0-99", Http206, 0, 100),
    range("Suffix", "bytes=-5", Http206, 95, 5),
    range("SuffixOfExactSize", "bytes=-100", Http206, 0, 100),
    range("SuffixLongerThanFile", "bytes=-1000", Http206, 0, 100),
    range("OpenEnded", "bytes=5-", Http206, 5, 95),
    range("LastPastEndClamped", "bytes=50-1000", Http206, 50, 50),
    range("LastIsUint64Max", "bytes=0-18446744073709551615", Http206, 0, 100),
    range("UnitUpperCase", "BYTES=0-0", Http206, 0, 1),
    range("UnitMixedCase", "Bytes=0-0", Http206, 0, 1),
    range("OwsAroundSpec", "bytes= 1-2 ", Http206, 1, 2),
    range("EmptyListElements", "bytes=,, 3-4 ,", Http206, 3, 2),
    // Syntactically valid but unsatisfiable.
    range("FirstAtEnd", "bytes=100-", Http416, 0, 0),
    range("FirstPastEnd", "bytes=150-200", Http416, 0, 0),
    range("ZeroSuffix", "bytes=-0", Http416, 0, 0),
    // Invalid: the header is ignored and the whole file sent.
    range("LastBeforeFirst", "bytes=5-1", Http200, 0, 100),
    range("Letters", "bytes=abc", Http200, 0, 100),
    range("OtherUnit", "items=0-1", Http200, 0, 100),
    range("EmptySet", "bytes=", Http200, 0, 100),
    range("OnlyCommas", "bytes=,,", Http200, 0, 100),
    range("DoubleDash", "bytes=--1", Http200, 0, 100),
    range("ThreeParts", "bytes=1-2-3", Http200, 0, 100),
    range("DashAlone", "bytes=-", Http200, 0, 100),
    range("NoDash", "bytes=1", Http200, 0, 100),
    range("NoEquals", "bytes 0-1", Http200, 0, 100),
    range("NoUnit", "=0-1", Http200, 0, 100),
    range("SpaceBeforeEquals", "bytes =0-1", Http200, 0, 100),
    range("SpaceInsideSpec", "bytes=0 -1", Http200, 0, 100),
    range("PlusSign", "bytes=+1-2", Http200, 0, 100),
    range("Hex", "bytes=0x1-2", Http200, 0, 100),
    range("TrailingJunk", "bytes=0-1;x", Http200, 0, 100),
    range("FirstOverflows", "bytes=18446744073709551616-", Http200, 0, 100),
    range("LastOverflows", "bytes=0-18446744073709551616", Http200, 0, 100),
    range("SuffixOverflows", "bytes=-18446744073709551616", Http200, 0, 100),
    range("OneBadAmongGood", "bytes=0-1,abc", Http200, 0, 100),
    // Several ranges: no multipart/byteranges, so the whole file, or 416 if none is satisfiable.
    range("TwoRanges", "bytes=0-1,5-6", Http200, 0, 100),
    range("TwoRangesWithOws", "bytes=0-1 , -5", Http200, 0, 100),
    range("OneOfTwoSatisfiable", "bytes=0-1, 200-300", Http200, 0, 100),
    range("NoneOfTwoSatisfiable", "bytes=100-,200-300", Http416, 0, 0),
    range("NoneOfThreeSatisfiable", "bytes=100-,-0,500-", Http416, 0, 0),
    // An empty file satisfies no range.
    range("EmptyFileFirstByte", "bytes=0-0", Http416, 0, 0, 0),
    range("EmptyFileOpen", "bytes=0-", Http416, 0, 0, 0),
    range("EmptyFileSuffix", "bytes=-5", Http416, 0, 0, 0),
    range("EmptyFileInvalid", "bytes=abc", Http200, 0, 0, 0),
    {"EmptyFileNoRange", HttpGet, {}, 0, Http200, 0, 0},
    // The method: HEAD reports what GET would get; others ignore Range.
    {"HeadHonoursRange", HttpHead, {{"Range", "bytes=0-0"}}, 100, Http206, 0, 1},
    {"PostIgnoresRange", HttpPost, {{"Range", "bytes=0-0"}}, 100, Http200, 0, 100},
    {"PutIgnoresRange", HttpPut, {{"Range", "bytes=0-0"}}, 100, Http200, 0, 100},
    {"RepeatedRangeIgnored",
     HttpGet,
     {{"Range", "bytes=0-0"}, {"Range", "bytes=1-1"}},
     100,
     Http200,
     0,
     100},
};
INSTANTIATE_TEST_SUITE_P(Range, FileRequest, testing::ValuesIn(kRangeCases), caseName);

const RequestCase kPreconditionCases[] = {
    request("NoPreconditions", HttpGet, {}, Http200),
    // If-None-Match: weak comparison; 304 for GET and HEAD, 412 for the others.
    request("NoneMatchSameTag", HttpGet, {{"If-None-Match", kTag}}, Http304),
    request("NoneMatchWeakTag", HttpGet, {{"If-None-Match", kWeakTag}}, Http304),
    request("NoneMatchStar", HttpGet, {{"If-None-Match", "*"}}, Http304),
    request("NoneMatchInList", HttpGet, {{"If-None-Match", "\"a\", W/\"b\",\"2ebc98a1-64\""}},
            Http304),
    request("NoneMatchOtherTags", HttpGet, {{"If-None-Match", "\"a\", W/\"b\""}}, Http200),
    request("NoneMatchOverLines", HttpGet, {{"If-None-Match", "\"a\""}, {"If-None-Match", kTag}},
            Http304),
    request("NoneMatchMalformedNeighbour", HttpGet, {{"If-None-Match", "abc, \"2ebc98a1-64\""}},
            Http304),
    // A space cannot be in a tag, so `"x y` is malformed and the next element still counts.
    request("NoneMatchSpaceEndsTag", HttpGet, {{"If-None-Match", "\"x y, \"2ebc98a1-64\""}},
            Http304),
    request("NoneMatchUnquoted", HttpGet, {{"If-None-Match", "2ebc98a1-64"}}, Http200),
    request("NoneMatchLowerCaseWeak", HttpGet, {{"If-None-Match", "w/\"2ebc98a1-64\""}}, Http200),
    request("NoneMatchUnterminated", HttpGet, {{"If-None-Match", "\"2ebc98a1-64"}}, Http200),
    request("NoneMatchStarNotAlone", HttpGet, {{"If-None-Match", "\"a\", *"}}, Http200),
    request("NoneMatchEmpty", HttpGet, {{"If-None-Match", ""}}, Http200),
    request("NoneMatchHead", HttpHead, {{"If-None-Match", kTag}}, Http304),
    request("NoneMatchPut", HttpPut, {{"If-None-Match", kTag}}, Http412),
    request("NoneMatchPostStar", HttpPost, {{"If-None-Match", "*"}}, Http412),
    request("NoneMatchPutOtherTag", HttpPut, {{"If-None-Match", "\"a\""}}, Http200),
    // If-Modified-Since: GET and HEAD only; an invalid date is ignored.
    request("ModifiedSinceSame", HttpGet, {{"If-Modified-Since", kSame}}, Http304),
    request("ModifiedSinceLater", HttpGet, {{"If-Modified-Since", kAfter}}, Http304),
    request("ModifiedSinceEarlier", HttpGet, {{"If-Modified-Since", kBefore}}, Http200),
    request("ModifiedSinceRfc850", HttpGet,
            {{"If-Modified-Since", "Sunday, 06-Nov-94 08:49:37 GMT"}}, Http304),
    request("ModifiedSinceAsctime", HttpHead, {{"If-Modified-Since", "Sun Nov  6 08:49:37 1994"}},
            Http304),
    request("ModifiedSinceMalformed", HttpGet, {{"If-Modified-Since", "yesterday"}}, Http200),
    request("ModifiedSinceTrailingJunk", HttpGet,
            {{"If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT; length=5"}}, Http200),
    request("ModifiedSinceRepeated", HttpGet,
            {{"If-Modified-Since", kSame}, {"If-Modified-Since", kSame}}, Http200),
    request("ModifiedSincePutIgnored", HttpPut, {{"If-Modified-Since", kSame}}, Http200),
    // If-None-Match, when present, makes If-Modified-Since irrelevant.
    request("NoneMatchMissBeatsModifiedSince", HttpGet,
            {{"If-None-Match", "\"a\""}, {"If-Modified-Since", kSame}}, Http200),
    request("NoneMatchHitBeatsModifiedSince", HttpGet,
            {{"If-None-Match", kTag}, {"If-Modified-Since", kBefore}}, Http304),
    // If-Match: strong comparison; 412 when nothing matches.
    request("MatchSameTag", HttpGet, {{"If-Match", kTag}}, Http200),
    request("MatchStar", HttpPut, {{"If-Match", "*"}}, Http200),
    request("MatchInList", HttpGet, {{"If-Match", "\"a\", \"2ebc98a1-64\""}}, Http200),
    request("MatchOverLines", HttpGet, {{"If-Match", "\"a\""}, {"If-Match", kTag}}, Http200),
    request("MatchOtherTag", HttpGet, {{"If-Match", "\"a\""}}, Http412),
    request("MatchWeakTag", HttpGet, {{"If-Match", kWeakTag}}, Http412),
    request("MatchEmpty", HttpGet, {{"If-Match", ""}}, Http412),
    request("MatchMalformed", HttpGet, {{"If-Match", "2ebc98a1-64"}}, Http412),
    // If-Unmodified-Since: only without If-Match; an invalid date is ignored.
    request("UnmodifiedSinceSame", HttpGet, {{"If-Unmodified-Since", kSame}}, Http200),
    request("UnmodifiedSinceLater", HttpGet, {{"If-Unmodified-Since", kAfter}}, Http200),
    request("UnmodifiedSinceEarlier", HttpGet, {{"If-Unmodified-Since", kBefore}}, Http412),
    request("UnmodifiedSinceEarlierPut", HttpPut, {{"If-Unmodified-Since", kBefore}}, Http412),
    request("UnmodifiedSinceMalformed", HttpGet, {{"If-Unmodified-Since", "soon"}}, Http200),
    request("MatchBeatsUnmodifiedSince", HttpGet,
            {{"If-Match", kTag}, {"If-Unmodified-Since", kBefore}}, Http200),
    // 412 from step 1 comes before 304 from step 3.
    request("MatchFailsBeforeNoneMatch", HttpGet, {{"If-Match", "\"a\""}, {"If-None-Match", kTag}},
            Http412),
    request("UnmodifiedFailsBeforeModified", HttpGet,
            {{"If-Unmodified-Since", kBefore}, {"If-Modified-Since", kSame}}, Http412),
    // Preconditions come before Range.
    request("NotModifiedBeatsRange", HttpGet, {{"If-None-Match", kTag}, {"Range", "bytes=0-0"}},
            Http304),
    request("FailedMatchBeatsRange", HttpGet, {{"If-Match", "\"a\""}, {"Range", "bytes=0-0"}},
            Http412),
    request("FailedMatchBeatsBadRange", HttpGet, {{"If-Match", "\"a\""}, {"Range", "bytes=100-"}},
            Http412),
    // If-Range: the Range is honoured only if it matches.
    {"IfRangeSameTag", HttpGet, {{"If-Range", kTag}, {"Range", "bytes=0-0"}}, 100, Http206, 0, 1},
    request("IfRangeOtherTag", HttpGet, {{"If-Range", "\"a\""}, {"Range", "bytes=0-0"}}, Http200),
    request("IfRangeWeakTag", HttpGet, {{"If-Range", kWeakTag}, {"Range", "bytes=0-0"}}, Http200),
    request("IfRangeTagJunk", HttpGet, {{"If-Range", "\"2ebc98a1-64\" x"}, {"Range", "bytes=0-0"}},
            Http200),
    {"IfRangeSameDate", HttpGet, {{"If-Range", kSame}, {"Range", "bytes=-5"}}, 100, Http206, 95, 5},
    request("IfRangeEarlierDate", HttpGet, {{"If-Range", kBefore}, {"Range", "bytes=0-0"}},
            Http200),
    request("IfRangeLaterDate", HttpGet, {{"If-Range", kAfter}, {"Range", "bytes=0-0"}}, Http200),
    request("IfRangeJunk", HttpGet, {{"If-Range", "whenever"}, {"Range", "bytes=0-0"}}, Http200),
    request("IfRangeRepeated", HttpGet,
            {{"If-Range", kTag}, {"If-Range", kTag}, {"Range", "bytes=0-0"}}, Http200),
    request("IfRangeWithoutRange", HttpGet, {{"If-Range", "\"a\""}}, Http200),
    request("IfRangeMatchUnsatisfiable", HttpGet, {{"If-Range", kTag}, {"Range", "bytes=100-"}},
            Http416),
    request("IfRangeMissUnsatisfiable", HttpGet, {{"If-Range", "\"a\""}, {"Range", "bytes=100-"}},
            Http200),
    // Field names are case-insensitive.
    request("FieldNameCase", HttpGet, {{"if-none-match", kTag}}, Http304),
};
INSTANTIATE_TEST_SUITE_P(Preconditions, FileRequest, testing::ValuesIn(kPreconditionCases),
                         caseName);

TEST(FileRequestEtag, AWeakOwnTagNeverMatchesStrongly) {
  HttpHeaders headers;
  headers.add("If-Match", "W/\"x\"");
  EXPECT_EQ(detail::evaluateFileRequest(HttpGet, headers, "W/\"x\"", kMtime, 10).code, Http412);
  headers.del("If-Match");
  headers.add("If-None-Match", "\"x\"");
  EXPECT_EQ(detail::evaluateFileRequest(HttpGet, headers, "W/\"x\"", kMtime, 10).code, Http304);
}

TEST(FileRequestEtag, AMalformedOwnTagMatchesNothing) {
  HttpHeaders headers;
  headers.add("If-None-Match", "\"x\"");
  EXPECT_EQ(detail::evaluateFileRequest(HttpGet, headers, "\"x\"junk", kMtime, 10).code, Http200);
  EXPECT_EQ(detail::evaluateFileRequest(HttpGet, headers, "x", kMtime, 10).code, Http200);
  headers.set("If-None-Match", "*");  // the file exists, whatever its tag
  EXPECT_EQ(detail::evaluateFileRequest(HttpGet, headers, "x", kMtime, 10).code, Http304);
}

// --- contentRange ----------------------------------------------------------------------------

TEST(ContentRange, Forms) {
  EXPECT_EQ(detail::contentRange({Http206, 0, 1}, 100), "bytes 0-0/100");
  EXPECT_EQ(detail::contentRange({Http206, 95, 5}, 100), "bytes 95-99/100");
  EXPECT_EQ(detail::contentRange({Http206, 0, 100}, 100), "bytes 0-99/100");
  EXPECT_EQ(detail::contentRange({Http416}, 100), "bytes */100");
  EXPECT_EQ(detail::contentRange({Http416}, 0), "bytes */0");
  EXPECT_EQ(detail::contentRange({Http200, 0, 100}, 100), "");
  EXPECT_EQ(detail::contentRange({Http304}, 100), "");
}

TEST(ContentRange, OfEvaluatedRequest) {
  HttpHeaders headers;
  headers.add("Range", "bytes=-5");
  const auto answer = detail::evaluateFileRequest(HttpGet, headers, kTag, kMtime, 100);
  EXPECT_EQ(detail::contentRange(answer, 100), "bytes 95-99/100");
}

// --- HTTP-date -------------------------------------------------------------------------------

struct DateCase {
  std::string_view text;
  std::optional<std::int64_t> seconds;
};

void PrintTo(const DateCase& c, std::ostream* os) {
  *os << '"' << c.text << '"';
}

class HttpDate : public testing::TestWithParam<DateCase> {};

TEST_P(HttpDate, Parses) {
  EXPECT_EQ(detail::parseHttpDate(GetParam().text), GetParam().seconds) << GetParam().text;
}

const DateCase kDateCases[] = {
    // The three forms of RFC 9110 §5.6.7, all the same instant.
    {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
    {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
    {"Sun Nov  6 08:49:37 1994", 784111777},
    {"Sun Nov 06 08:49:37 1994", 784111777},  // asctime's day may be two digits
    {"Thu, 01 Jan 1970 00:00:00 GMT", 0},
    {"Wed, 31 Dec 1969 23:59:59 GMT", -1},
    {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
    {"Thu, 29 Feb 1996 12:00:00 GMT", 825595200},
    {"Sun, 06 Nov 1994 08:49:60 GMT", 784111800},     // a leap second
    {"Mon, 06 Nov 1994 08:49:37 GMT", 784111777},     // the weekday is checked for form only
    {"Thursday, 01-Jan-70 00:00:00 GMT", 0},          // 70..99 are 19xx
    {"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},  // 00..69 are 20xx
    {"Tuesday, 31-Dec-69 23:59:59 GMT", 3155759999},
    {"Fri Dec 31 23:59:59 9999", 253402300799},
    // Anything else.
    {"", std::nullopt},
    {"Sun, 06 Nov 1994 08:49:37 GMT ", std::nullopt},
    {" Sun, 06 Nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 06 Nov 1994 08:49:37 UTC", std::nullopt},
    {"Sun, 06 Nov 1994 08:49:37", std::nullopt},
    {"sun, 06 Nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 06 nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 06 Nox 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 6 Nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 06 Nov 94 08:49:37 GMT", std::nullopt},
    {"Sun,06 Nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 00 Nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 31 Nov 1994 08:49:37 GMT", std::nullopt},
    {"Sun, 29 Feb 1995 08:49:37 GMT", std::nullopt},
    {"Sun, 29 Feb 1900 08:49:37 GMT", std::nullopt},
    {"Sun, 06 Nov 1994 24:00:00 GMT", std::nullopt},
    {"Sun, 06 Nov 1994 08:60:37 GMT", std::nullopt},
    {"Sun, 06 Nov 1994 08:49:61 GMT", std::nullopt},
    {"Sun, 06 Nov 1994 8:49:37 GMT", std::nullopt},
    {"Sun, 06 Nov 1994 08:49:3a GMT", std::nullopt},
    {"Sunday, 06-Nov-1994 08:49:37 GMT", std::nullopt},
    {"Sun, 06-Nov-94 08:49:37 GMT", std::nullopt},
    {"Sunday, 06-Nov-94 08:49:37 GMT;", std::nullopt},
    {"Sun Nov  6 08:49:37 1994 GMT", std::nullopt},
    {"Sun Nov 6 08:49:37 1994", std::nullopt},
    {"Sun Nov  6 08:49:37 94", std::nullopt},
    {"784111777", std::nullopt},
};
INSTANTIATE_TEST_SUITE_P(Forms, HttpDate, testing::ValuesIn(kDateCases));

TEST(FormatHttpDate, KnownValues) {
  EXPECT_EQ(detail::formatHttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(detail::formatHttpDate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(detail::formatHttpDate(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
  EXPECT_EQ(detail::formatHttpDate(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(detail::formatHttpDate(-2208988800), "Mon, 01 Jan 1900 00:00:00 GMT");
}

TEST(FormatHttpDate, ClampsToFourDigitYears) {
  EXPECT_EQ(detail::formatHttpDate(std::numeric_limits<std::int64_t>::max()),
            "Fri, 31 Dec 9999 23:59:59 GMT");
  EXPECT_EQ(detail::formatHttpDate(std::numeric_limits<std::int64_t>::min()),
            "Sat, 01 Jan 0000 00:00:00 GMT");
}

TEST(FormatHttpDate, RoundTrips) {
  // Every ~13 days and some seconds from 1900 to 2100, crossing leap days and month ends.
  for (std::int64_t t = -2208988800; t < 4102444800; t += 1123457) {
    const std::string text = detail::formatHttpDate(t);
    ASSERT_EQ(text.size(), 29u) << t;
    ASSERT_EQ(detail::parseHttpDate(text), t) << text;
  }
}

// --- mimeType and entityTag ------------------------------------------------------------------

TEST(MimeType, ByExtension) {
  const std::vector<std::pair<std::string_view, std::string_view>> table = {
      {"index.html", "text/html; charset=utf-8"},
      {"/docs/old.htm", "text/html; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json"},
      {"app.js.map", "application/json"},
      {"notes.txt", "text/plain; charset=utf-8"},
      {"feed.xml", "text/xml; charset=utf-8"},
      {"table.csv", "text/csv; charset=utf-8"},
      {"README.md", "text/markdown; charset=utf-8"},
      {"logo.svg", "image/svg+xml"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.jpeg", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.webp", "image/webp"},
      {"a.avif", "image/avif"},
      {"favicon.ico", "image/x-icon"},
      {"a.bmp", "image/bmp"},
      {"a.tif", "image/tiff"},
      {"a.tiff", "image/tiff"},
      {"m.wasm", "application/wasm"},
      {"paper.pdf", "application/pdf"},
      {"a.zip", "application/zip"},
      {"a.tar.gz", "application/gzip"},
      {"a.tar", "application/x-tar"},
      {"song.mp3", "audio/mpeg"},
      {"film.mp4", "video/mp4"},
      {"film.webm", "video/webm"},
      {"sound.ogg", "audio/ogg"},
      {"sound.wav", "audio/wav"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"f.ttf", "font/ttf"},
      {"f.otf", "font/otf"},
      {"site.webmanifest", "application/manifest+json"},
      // Case-insensitive.
      {"INDEX.HTML", "text/html; charset=utf-8"},
      {"Photo.JpG", "image/jpeg"},
      {"F.WOFF2", "font/woff2"},
      // Unknown or absent extensions.
      {"Makefile", "application/octet-stream"},
      {"/a/b/c", "application/octet-stream"},
      {"/a.b/c", "application/octet-stream"},
      {"/a.html/", "application/octet-stream"},
      {"/a/.profile", "application/octet-stream"},
      {"/a/.html", "application/octet-stream"},  // a hidden file, not an extension
      {"file.", "application/octet-stream"},
      {"a.exe", "application/octet-stream"},
      {"a.htmlx", "application/octet-stream"},
      {"a.verylongextension", "application/octet-stream"},
      {"", "application/octet-stream"},
  };
  for (const auto& [path, type] : table) EXPECT_EQ(detail::mimeType(path), type) << path;
}

TEST(EntityTag, NginxForm) {
  EXPECT_EQ(detail::entityTag(784111777, 100), kTag);
  EXPECT_EQ(detail::entityTag(0, 0), "\"0-0\"");
  EXPECT_EQ(detail::entityTag(0x5f5e100, 0xabcdef), "\"5f5e100-abcdef\"");
  EXPECT_EQ(detail::entityTag(-1, 1), "\"ffffffffffffffff-1\"");
  EXPECT_EQ(detail::entityTag(std::numeric_limits<std::int64_t>::max(),
                              std::numeric_limits<std::uint64_t>::max()),
            "\"7fffffffffffffff-ffffffffffffffff\"");
}

}  // namespace
