// Tests for httpcore; the first suite is the twin of Nim's tests/stdlib/thttpcore.nim.
#include <asynchttp/httpcore.hpp>

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

using namespace asynchttp;

using Pairs = std::vector<std::pair<std::string, std::string>>;

static Pairs collect(const HttpHeaders& h) {
  Pairs out;
  for (const auto& [key, value] : h) out.emplace_back(key, value);
  return out;
}

// --- Nim's thttpcore.nim -------------------------------------------------------------

TEST(NimHttpCore, HttpCode) {
  EXPECT_EQ(to_string(Http418), "418 I'm a teapot");
  EXPECT_TRUE(is4xx(Http418));
  EXPECT_FALSE(is2xx(Http418));
}

TEST(NimHttpCore, Headers) {
  auto h = newHttpHeaders();
  EXPECT_EQ(h.len(), 0u);
  h.add("Cookie", "foo");
  EXPECT_EQ(h.len(), 1u);
  EXPECT_TRUE(h.hasKey("cooKIE"));
  EXPECT_TRUE(h["Cookie"] == "foo");
  EXPECT_TRUE(h["cookie"] == "foo");
  h["cookie"] = std::vector<std::string>{"bar", "x"};
  EXPECT_TRUE(h["Cookie"] == "bar");
  EXPECT_EQ(h.at("Cookie", 1), "x");
  EXPECT_TRUE(h["Cookie"].contains("BaR"));
  EXPECT_TRUE(h["Cookie"].contains("X"));
  EXPECT_TRUE(std::as_const(h)["cookiE"].contains("baR"));
  h.del("coOKie");
  EXPECT_EQ(h.len(), 0u);
}

// --- HttpCode ----------------------------------------------------------------------------

TEST(HttpCode, EveryNimCodeHasItsReason) {
  const std::vector<std::pair<HttpCode, std::string>> table = {
      {Http100, "100 Continue"},
      {Http101, "101 Switching Protocols"},
      {Http102, "102 Processing"},
      {Http103, "103 Early Hints"},
      {Http200, "200 OK"},
      {Http201, "201 Created"},
      {Http202, "202 Accepted"},
      {Http203, "203 Non-Authoritative Information"},
      {Http204, "204 No Content"},
      {Http205, "205 Reset Content"},
      {Http206, "206 Partial Content"},
      {Http207, "207 Multi-Status"},
      {Http208, "208 Already Reported"},
      {Http226, "226 IM Used"},
      {Http300, "300 Multiple Choices"},
      {Http301, "301 Moved Permanently"},
      {Http302, "302 Found"},
      {Http303, "303 See Other"},
      {Http304, "304 Not Modified"},
      {Http305, "305 Use Proxy"},
      {Http307, "307 Temporary Redirect"},
      {Http308, "308 Permanent Redirect"},
      {Http400, "400 Bad Request"},
      {Http401, "401 Unauthorized"},
      {Http402, "402 Payment Required"},
      {Http403, "403 Forbidden"},
      {Http404, "404 Not Found"},
      {Http405, "405 Method Not Allowed"},
      {Http406, "406 Not Acceptable"},
      {Http407, "407 Proxy Authentication Required"},
      {Http408, "408 Request Timeout"},
      {Http409, "409 Conflict"},
      {Http410, "410 Gone"},
      {Http411, "411 Length Required"},
      {Http412, "412 Precondition Failed"},
      {Http413, "413 Request Entity Too Large"},
      {Http414, "414 Request-URI Too Long"},
      {Http415, "415 Unsupported Media Type"},
      {Http416, "416 Requested Range Not Satisfiable"},
      {Http417, "417 Expectation Failed"},
      {Http418, "418 I'm a teapot"},
      {Http421, "421 Misdirected Request"},
      {Http422, "422 Unprocessable Entity"},
      {Http423, "423 Locked"},
      {Http424, "424 Failed Dependency"},
      {Http425, "425 Too Early"},
      {Http426, "426 Upgrade Required"},
      {Http428, "428 Precondition Required"},
      {Http429, "429 Too Many Requests"},
      {Http431, "431 Request Header Fields Too Large"},
      {Http451, "451 Unavailable For Legal Reasons"},
      {Http500, "500 Internal Server Error"},
      {Http501, "501 Not Implemented"},
      {Http502, "502 Bad Gateway"},
      {Http503, "503 Service Unavailable"},
      {Http504, "504 Gateway Timeout"},
      {Http505, "505 HTTP Version Not Supported"},
      {Http506, "506 Variant Also Negotiates"},
      {Http507, "507 Insufficient Storage"},
      {Http508, "508 Loop Detected"},
      {Http510, "510 Not Extended"},
      {Http511, "511 Network Authentication Required"},
  };
  for (const auto& [code, text] : table) EXPECT_EQ(to_string(code), text);
}

TEST(HttpCode, UnknownCodeIsJustTheNumber) {
  EXPECT_EQ(to_string(HttpCode{299}), "299");
  EXPECT_EQ(to_string(HttpCode{599}), "599");
  EXPECT_EQ(reasonPhrase(HttpCode{299}), "");
}

TEST(HttpCode, StreamsItsText) {
  std::ostringstream os;
  os << Http404;
  EXPECT_EQ(os.str(), "404 Not Found");
}

TEST(HttpCode, ClassesAreExclusive) {
  EXPECT_TRUE(is1xx(Http100));
  EXPECT_TRUE(is2xx(Http200));
  EXPECT_TRUE(is3xx(Http304));
  EXPECT_TRUE(is4xx(Http404));
  EXPECT_TRUE(is5xx(Http503));
  EXPECT_FALSE(is1xx(Http200));
  EXPECT_FALSE(is2xx(HttpCode{199}));
  EXPECT_FALSE(is3xx(Http400));
  EXPECT_FALSE(is4xx(Http500));
  EXPECT_FALSE(is5xx(HttpCode{600}));
}

TEST(HttpCode, ComparesWithRawStatus) {
  EXPECT_TRUE(std::string_view("404") == Http404);
  EXPECT_TRUE(std::string_view("404 Not Found") == Http404);
  EXPECT_FALSE(std::string_view("200 OK") == Http404);
  EXPECT_FALSE(std::string_view("40") == Http404);
  EXPECT_FALSE(std::string_view("4x4") == Http404);
  EXPECT_EQ(Http200, HttpCode{200});
  EXPECT_LT(Http200, Http404);
}

// --- HttpMethod and HttpVersion ------------------------------------------------------------

TEST(HttpMethod, NamesRoundTrip) {
  const std::vector<std::pair<HttpMethod, std::string_view>> table = {
      {HttpHead, "HEAD"},       {HttpGet, "GET"},         {HttpPost, "POST"},
      {HttpPut, "PUT"},         {HttpDelete, "DELETE"},   {HttpTrace, "TRACE"},
      {HttpOptions, "OPTIONS"}, {HttpConnect, "CONNECT"}, {HttpPatch, "PATCH"},
  };
  for (const auto& [method, name] : table) {
    EXPECT_EQ(to_string(method), name);
    EXPECT_EQ(parseHttpMethod(name), method);
  }
  std::ostringstream os;
  os << HttpPatch;
  EXPECT_EQ(os.str(), "PATCH");
}

TEST(HttpMethod, ParsingIsExactAndCaseSensitive) {
  EXPECT_FALSE(parseHttpMethod("get"));
  EXPECT_FALSE(parseHttpMethod("BREW"));
  EXPECT_FALSE(parseHttpMethod(""));
  EXPECT_FALSE(parseHttpMethod("GET "));
}

TEST(HttpMethod, ContainsInSet) {
  EXPECT_TRUE(contains({HttpGet, HttpHead}, "GET"));
  EXPECT_FALSE(contains({HttpGet, HttpHead}, "POST"));
  EXPECT_FALSE(contains({HttpGet}, "NOPE"));
}

TEST(HttpVersion, ProtocolComparesByNumbers) {
  HttpProtocol p11{"HTTP/1.1", 1, 1};
  HttpProtocol p10{"HTTP/1.0", 1, 0};
  HttpProtocol p20{"HTTP/2.0", 2, 0};
  EXPECT_TRUE(p11 == HttpVer11);
  EXPECT_FALSE(p11 == HttpVer10);
  EXPECT_TRUE(p10 == HttpVer10);
  EXPECT_FALSE(p20 == HttpVer11);
  EXPECT_FALSE(p20 == HttpVer10);
}

// --- HttpHeaderValues -------------------------------------------------------------------------

TEST(HttpHeaderValues, FirstValueAndContains) {
  HttpHeaderValues v{"gzip", "Deflate"};
  EXPECT_EQ(std::string(v), "gzip");
  EXPECT_EQ(toString(v), "gzip");
  EXPECT_TRUE(v.contains("GZIP"));
  EXPECT_TRUE(v.contains("deflate"));
  EXPECT_FALSE(v.contains("br"));
  EXPECT_EQ(v[1], "Deflate");
  EXPECT_EQ(v.size(), 2u);
  std::vector<std::string> seen(v.begin(), v.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"gzip", "Deflate"}));
}

TEST(HttpHeaderValues, EmptyAndOutOfRangeThrowKeyError) {
  HttpHeaderValues none;
  EXPECT_THROW((void)std::string(none), KeyError);
  EXPECT_THROW((void)none[0], KeyError);
  HttpHeaderValues one{"a"};
  EXPECT_THROW((void)one[1], KeyError);
  EXPECT_FALSE(none == "");
}

// --- HttpHeaders ------------------------------------------------------------------------------

TEST(HttpHeaders, MissingKeyThrowsKeyErrorNamingIt) {
  const auto h = newHttpHeaders();
  try {
    (void)h["X-Missing"];
    FAIL() << "expected KeyError";
  } catch (const KeyError& e) {
    EXPECT_NE(std::string(e.what()).find("X-Missing"), std::string::npos);
  }
  EXPECT_THROW((void)h.at("X-Missing", 0), KeyError);
  auto m = newHttpHeaders();
  m.add("a", "1");
  EXPECT_THROW((void)m.at("a", 1), KeyError);
  EXPECT_THROW((void)std::string(m["b"]), KeyError);
  EXPECT_FALSE(m["b"] == "1");
}

TEST(HttpHeaders, FromPairsGathersRepeatedKeys) {
  auto h =
      newHttpHeaders({{"Content-Type", "text/html"}, {"Set-Cookie", "a=1"}, {"set-cookie", "b=2"}});
  EXPECT_EQ(h.len(), 2u);
  EXPECT_EQ(h.at("SET-COOKIE", 0), "a=1");
  EXPECT_EQ(h.at("Set-Cookie", 1), "b=2");
  EXPECT_EQ(collect(h),
            (Pairs{{"content-type", "text/html"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}}));
  auto v = newHttpHeaders(std::vector<std::pair<std::string, std::string>>{{"K", "v"}});
  EXPECT_TRUE(v["k"] == "v");
}

TEST(HttpHeaders, TitleCaseNormalizesKeys) {
  auto h = newHttpHeaders(true);
  h["content-length"] = "5";
  h.add("x-FORWARDED-for", "1.2.3.4");
  h.add("etag", "\"x\"");
  EXPECT_TRUE(h.isTitleCase());
  EXPECT_EQ(collect(h),
            (Pairs{{"Content-Length", "5"}, {"X-Forwarded-For", "1.2.3.4"}, {"Etag", "\"x\""}}));
  EXPECT_TRUE(h.hasKey("CONTENT-LENGTH"));
  EXPECT_EQ(h.normalize("a-b-c"), "A-B-C");
  EXPECT_EQ(newHttpHeaders().normalize("A-B-C"), "a-b-c");
  auto p = newHttpHeaders({{"content-type", "x"}}, true);
  EXPECT_EQ(collect(p), (Pairs{{"Content-Type", "x"}}));
}

TEST(HttpHeaders, AssignmentReplacesAndEmptyListDeletes) {
  auto h = newHttpHeaders();
  h.add("Accept", "a");
  h.add("Accept", "b");
  h["accept"] = "c";
  EXPECT_EQ(h["Accept"].values().size(), 1u);
  EXPECT_TRUE(h["Accept"] == "c");
  h["Accept"] = {"x", "y", "z"};
  EXPECT_EQ(h.at("accept", 2), "z");
  h["Accept"] = std::vector<std::string>{};
  EXPECT_FALSE(h.hasKey("Accept"));
  EXPECT_EQ(h.len(), 0u);
  h.set("Vary", std::vector<std::string>{"a"});
  EXPECT_TRUE(h.contains("vary"));
}

TEST(HttpHeaders, GetOrDefault) {
  auto h = newHttpHeaders({{"A", "1"}});
  EXPECT_EQ(std::string(h.getOrDefault("a")), "1");
  EXPECT_EQ(std::string(h.getOrDefault("b")), "");  // Nim's default is one empty value
  EXPECT_EQ(std::string(h.getOrDefault("b", HttpHeaderValues{"fallback"})), "fallback");
}

TEST(HttpHeaders, IteratesInInsertionOrder) {
  auto h = newHttpHeaders();
  h.add("Zeta", "1");
  h.add("Alpha", "2");
  h.add("zeta", "3");
  h.add("Mid", "4");
  EXPECT_EQ(collect(h), (Pairs{{"zeta", "1"}, {"zeta", "3"}, {"alpha", "2"}, {"mid", "4"}}));
  h.del("ALPHA");
  EXPECT_EQ(collect(h), (Pairs{{"zeta", "1"}, {"zeta", "3"}, {"mid", "4"}}));
  h.del("absent");  // deleting a missing key is not an error
  EXPECT_EQ(h.len(), 2u);
  h.clear();
  EXPECT_EQ(h.len(), 0u);
  EXPECT_EQ(h.begin(), h.end());
}

TEST(HttpHeaders, IsAValueType) {
  auto a = newHttpHeaders({{"K", "1"}});
  auto b = a;
  b.add("K", "2");
  EXPECT_EQ(a["k"].values().size(), 1u);
  EXPECT_EQ(b["k"].values().size(), 2u);
  EXPECT_FALSE(a == b);
  b.set("k", "1");
  EXPECT_TRUE(a == b);
}

TEST(HttpHeaders, ManyFieldsStayConsistentPastTheIndexThreshold) {
  auto h = newHttpHeaders();
  constexpr int kFields = 2000;
  for (int i = 0; i < kFields; ++i) h.add("X-Field-" + std::to_string(i), std::to_string(i));
  EXPECT_EQ(h.len(), std::size_t(kFields));
  for (int i = 0; i < kFields; i += 97) {
    EXPECT_TRUE(h["x-field-" + std::to_string(i)] == std::to_string(i));
  }
  for (int i = 0; i < kFields; i += 2) h.del("X-FIELD-" + std::to_string(i));
  EXPECT_EQ(h.len(), std::size_t(kFields / 2));
  EXPECT_FALSE(h.hasKey("x-field-0"));
  EXPECT_TRUE(h["x-field-1"] == "1");
  EXPECT_TRUE(h["x-field-1999"] == "1999");
  h.add("x-field-1", "again");
  EXPECT_EQ(h.at("X-Field-1", 1), "again");
  auto copy = h;  // the copy's index must point into its own fields
  copy.del("x-field-3");
  EXPECT_TRUE(copy["x-field-5"] == "5");
  EXPECT_TRUE(h["x-field-3"] == "3");
}

TEST(HttpHeaders, ToStringLooksLikeNimTable) {
  auto h = newHttpHeaders();
  EXPECT_EQ(to_string(h), "{}");
  h.add("A", "1");
  h.add("a", "2");
  h.add("B", "3");
  EXPECT_EQ(to_string(h), R"({"a": @["1", "2"], "b": @["3"]})");
  std::ostringstream os;
  os << h;
  EXPECT_EQ(os.str(), to_string(h));
}

TEST(HttpCore, Constants) {
  EXPECT_EQ(headerLimit, 10000);
  EXPECT_EQ(httpNewLine, "\r\n");
  EXPECT_TRUE(equalsIgnoreCase("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(equalsIgnoreCase("a", "ab"));
}

TEST(HttpHeaders, ReuseAfterClearShowsOnlyTheNewFields) {
  auto h = newHttpHeaders();
  h.add("A", "a-value-long-enough-to-live-on-the-heap");
  h.add("A", "second");
  h.add("B", "b");
  h.clear();
  EXPECT_EQ(h.len(), 0u);
  EXPECT_EQ(h.begin(), h.end());
  EXPECT_FALSE(h.hasKey("A"));
  h.add("C", "c");
  h.add("A", "again");
  EXPECT_EQ(collect(h), (Pairs{{"c", "c"}, {"a", "again"}}));
  EXPECT_EQ(h["A"].values().size(), 1u);  // the old second value does not come back
  EXPECT_THROW((void)h.at("A", 1), KeyError);
  h.set("C", "one");
  h.add("C", "two");
  EXPECT_EQ(collect(h), (Pairs{{"c", "one"}, {"c", "two"}, {"a", "again"}}));
}

TEST(HttpHeaders, DeleteKeepsOrderAndReusedSlotsCompareEqual) {
  auto a = newHttpHeaders();
  for (const char* k : {"K1", "K2", "K3", "K4"}) a.add(k, k);
  a.del("k2");
  EXPECT_EQ(collect(a), (Pairs{{"k1", "K1"}, {"k3", "K3"}, {"k4", "K4"}}));
  a.add("K5", "K5");  // takes the slot the deleted field left behind
  auto b = newHttpHeaders({{"K1", "K1"}, {"K3", "K3"}, {"K4", "K4"}, {"K5", "K5"}});
  EXPECT_TRUE(a == b);
  auto copy = a;
  copy.clear();
  copy.add("K1", "K1");
  EXPECT_FALSE(copy == a);
  EXPECT_EQ(copy.len(), 1u);
  EXPECT_EQ(a.len(), 4u);
}
