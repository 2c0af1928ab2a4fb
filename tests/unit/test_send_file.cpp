// Request::sendFile over real loopback connections: validators, conditional requests, ranges,
// HEAD, and files too large to copy.
#include <asynchttp/asynchttpserver.hpp>

#include "http_test_client.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace asynchttp;
using namespace asynchttp::testing;

namespace {

// A scratch folder with a few files, removed at the end of the test.
class Files : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/asynchttp-files-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    root_ = pattern;
    write("hello.txt", "Hello, files!\n");
    write("empty.bin", "");
    std::string large(3 * (1 << 20) + 12345, '\0');  // over a sendfile piece and the copy limit
    for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>('A' + i % 23);
    write("large.dat", large);
    large_ = large;
    std::filesystem::create_directory(root_ + "/folder");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void write(const std::string& name, const std::string& content) {
    std::ofstream(root_ + "/" + name, std::ios::binary) << content;
  }
  // Serves the file named by the request path from the scratch folder.
  RequestCallback handler() {
    return [root = root_](Request& req) -> Future<void> {
      co_await req.sendFile(root + req.url.path);
    };
  }
  Response get(TestServer& server, const std::string& path, const std::string& extra = "") {
    return exchange(server.port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
  }

  std::string root_;
  std::string large_;
};

}  // namespace

TEST_F(Files, WholeFileWithTypeLengthAndValidators) {
  TestServer server(handler());
  auto r = get(server, "/hello.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello, files!\n");
  EXPECT_EQ(r.headers["Content-Type"], "text/plain; charset=utf-8");
  EXPECT_EQ(r.headers["Content-Length"], "14");
  EXPECT_EQ(r.headers["Accept-Ranges"], "bytes");
  EXPECT_EQ(std::string(r.headers["ETag"]).front(), '"');
  EXPECT_TRUE(r.headers.hasKey("Last-Modified"));
  auto empty = get(server, "/empty.bin");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.headers["Content-Length"], "0");
  EXPECT_EQ(empty.headers["Content-Type"], "application/octet-stream");
}

TEST_F(Files, LargeFileGoesOutWholeAndInOrder) {
  TestServer server(handler());
  auto client = connectTo(server.port());
  waitFor(client.send(
      "GET /large.dat HTTP/1.1\r\nHost: x\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto r = awaitResponse(client, 10000);
  EXPECT_EQ(r.headers["Content-Length"], std::to_string(large_.size()));
  EXPECT_TRUE(r.body == large_);
  EXPECT_EQ(awaitResponse(client).body, "Hello, files!\n");  // the next one intact behind it
}

TEST_F(Files, HeadSendsTheHeadersOnly) {
  TestServer server(handler());
  for (const char* path : {"/hello.txt", "/large.dat"}) {
    auto client = connectTo(server.port());
    waitFor(client.send(std::string("HEAD ") + path + " HTTP/1.1\r\nHost: x\r\n\r\n" +
                        "GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string head = waitFor(client.recvLine());
    EXPECT_EQ(head, "HTTP/1.1 200 OK");
    std::string line, length;
    while ((line = waitFor(client.recvLine())) != "\r\n") {
      if (line.rfind("content-length:", 0) == 0 || line.rfind("Content-Length:", 0) == 0)
        length = line;
    }
    EXPECT_NE(length, "") << path;      // what GET would get
    auto next = awaitResponse(client);  // no body bytes in between
    EXPECT_EQ(next.statusLine, "HTTP/1.1 200 OK") << path;
    EXPECT_EQ(next.body, "Hello, files!\n") << path;
  }
}

TEST_F(Files, ConditionalRequestsGet304) {
  TestServer server(handler());
  auto first = get(server, "/hello.txt");
  std::string tag = first.headers["ETag"];
  std::string modified = first.headers["Last-Modified"];
  ASSERT_FALSE(tag.empty());
  for (const std::string& condition :
       {"If-None-Match: " + tag + "\r\n", "If-None-Match: \"other\", W/" + tag + "\r\n",
        std::string("If-None-Match: *\r\n"), "If-Modified-Since: " + modified + "\r\n"}) {
    auto r = get(server, "/hello.txt", condition);
    EXPECT_EQ(r.status, 304) << condition;
    EXPECT_EQ(r.body, "") << condition;
    EXPECT_EQ(r.headers["ETag"], tag) << condition;
  }
  EXPECT_EQ(get(server, "/hello.txt", "If-None-Match: \"other\"\r\n").status, 200);
  EXPECT_EQ(
      get(server, "/hello.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n").status,
      200);
  EXPECT_EQ(get(server, "/hello.txt", "If-Match: \"other\"\r\n").status, 412);
}

TEST_F(Files, RangesAsRfc9110Section14) {
  TestServer server(handler());
  struct Case {
    std::string range;
    int status;
    std::string body;
    std::string contentRange;
  };
  const std::string text = "Hello, files!\n";  // 14 bytes
  for (const Case& c : std::vector<Case>{
           {"bytes=0-0", 206, "H", "bytes 0-0/14"},
           {"bytes=-5", 206, "les!\n", "bytes 9-13/14"},  // the last five
           {"bytes=5-", 206, text.substr(5), "bytes 5-13/14"},
           {"bytes=7-100", 206, text.substr(7), "bytes 7-13/14"},
           {"bytes=14-", 416, "", "bytes */14"},
           {"bytes=100-200", 416, "", "bytes */14"},
           {"bytes=5-1", 200, text, ""},
           {"bytes=abc", 200, text, ""},
           {"lines=1-2", 200, text, ""},
           {"bytes=0-1,4-5", 200, text, ""},
       }) {
    auto r = get(server, "/hello.txt", "Range: " + c.range + "\r\n");
    EXPECT_EQ(r.status, c.status) << c.range;
    if (c.status != 416) {
      EXPECT_EQ(r.body, c.body) << c.range;
    }
    if (c.contentRange.empty()) {
      EXPECT_FALSE(r.headers.hasKey("Content-Range")) << c.range;
    } else {
      EXPECT_EQ(r.headers["Content-Range"], c.contentRange) << c.range;
    }
  }
}

TEST_F(Files, IfRangeServesTheRangeOnlyForTheSameFile) {
  TestServer server(handler());
  std::string tag = get(server, "/hello.txt").headers["ETag"];
  auto same = get(server, "/hello.txt", "Range: bytes=0-4\r\nIf-Range: " + tag + "\r\n");
  EXPECT_EQ(same.status, 206);
  EXPECT_EQ(same.body, "Hello");
  auto changed = get(server, "/hello.txt", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n");
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "Hello, files!\n");
}

TEST_F(Files, RangeOfALargeFileUsesSendfileBoundsCorrectly) {
  TestServer server(handler());
  std::uint64_t first = 1000, last = large_.size() - 1000;
  auto r = get(server, "/large.dat",
               "Range: bytes=" + std::to_string(first) + "-" + std::to_string(last) + "\r\n");
  EXPECT_EQ(r.status, 206);
  EXPECT_TRUE(r.body == large_.substr(first, last - first + 1));
}

TEST_F(Files, MissingOrNotARegularFile) {
  TestServer server(handler());
  EXPECT_EQ(get(server, "/nothing-here").status, 404);
  EXPECT_EQ(get(server, "/hello.txt/below").status, 404);
  EXPECT_EQ(get(server, "/folder").status, 403);
  if (::geteuid() != 0) {  // root reads anything
    write("secret.txt", "secret");
    ::chmod((root_ + "/secret.txt").c_str(), 0);
    EXPECT_EQ(get(server, "/secret.txt").status, 403);
  }
}

TEST_F(Files, GivenHeadersWinAndTheConnectionStaysAlive) {
  TestServer server([root = root_](Request& req) -> Future<void> {
    auto headers =
        newHttpHeaders({{"Content-Type", "application/x-custom"}, {"Cache-Control", "max-age=60"}});
    co_await req.sendFile(root + "/hello.txt", headers);
  });
  auto client = connectTo(server.port());
  for (int i = 0; i < 3; ++i) {
    waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = awaitResponse(client);
    EXPECT_EQ(r.headers["Content-Type"], "application/x-custom");
    EXPECT_EQ(r.headers["Cache-Control"], "max-age=60");
    EXPECT_EQ(r.body, "Hello, files!\n");
  }
}

TEST_F(Files, FramingHeadersFromTheCallerAreIgnored) {
  TestServer server([root = root_](Request& req) -> Future<void> {
    auto headers = newHttpHeaders({{"Content-Length", "3"}, {"Transfer-Encoding", "chunked"}});
    co_await req.sendFile(root + "/hello.txt", headers);
  });
  auto client = connectTo(server.port());
  waitFor(client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  for (int i = 0; i < 2; ++i) {
    auto r = awaitResponse(client);
    EXPECT_EQ(r.headers["Content-Length"], "14");
    EXPECT_FALSE(r.headers.hasKey("Transfer-Encoding"));
    EXPECT_EQ(r.body, "Hello, files!\n");
  }
}
