// Streams each request body to a file as it arrives and answers its size and SHA-256: uploads of
// any size in a fixed amount of memory. Usage: upload [port] [folder]   (port default 8080, 0
// picks a free one; folder default /tmp). PUT or POST /name writes <folder>/upload-<n>. With the
// folder "-" bodies are only counted, not stored or hashed (the benchmark's sink).
#include <asynchttp/asynchttpserver.hpp>

#include <openssl/evp.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

using namespace asynchttp;

namespace {

// A SHA-256 digest in progress (OpenSSL's EVP interface).
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!context_ || EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr) != 1) {
      throw std::runtime_error("SHA-256 is not available");
    }
  }
  void update(std::string_view bytes) {
    EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
  }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest, &length);
    std::string text;
    char pair[3];
    for (unsigned int i = 0; i < length; ++i) {
      std::snprintf(pair, sizeof pair, "%02x", digest[i]);
      text += pair;
    }
    return text;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context_;
};

// Writes all of `bytes` to `fd`. A regular file never makes the loop wait long: plain write(2).
void writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw OSError("write", errno);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Port port = Port(argc > 1 ? std::atoi(argv[1]) : 8080);
  std::string folder = argc > 2 ? argv[2] : "/tmp";
  // Bodies are read by the handler as they come; up to 64 GiB each.
  auto server = newAsyncHttpServer({.maxBody = std::size_t{64} << 30, .bufferBody = false});
  int uploads = 0;
  auto cb = [&](Request& req) -> Future<void> {
    if (req.reqMethod != HttpPut && req.reqMethod != HttpPost) {
      co_await req.respond(Http405, "PUT or POST a body\n");
      co_return;
    }
    if (folder == "-") {
      std::uint64_t size = 0;
      for (std::string_view piece; !(piece = co_await req.bodyChunk()).empty();)
        size += piece.size();
      co_await req.respond(Http200, std::to_string(size) + "\n");
      co_return;
    }
    std::string path = folder + "/upload-" + std::to_string(++uploads);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      co_await req.respond(Http500, "cannot create " + path + "\n");
      co_return;
    }
    std::unique_ptr<int, void (*)(int*)> file(&fd, [](int* f) { ::close(*f); });
    Sha256 digest;
    std::uint64_t size = 0;
    for (;;) {
      std::string_view piece = co_await req.bodyChunk();
      if (piece.empty()) break;
      writeAll(fd, piece);
      digest.update(piece);
      size += piece.size();
    }
    auto headers = newHttpHeaders({{"Content-Type", "application/json"}});
    co_await req.respond(Http201,
                         "{\"bytes\": " + std::to_string(size) + ", \"sha256\": \"" + digest.hex() +
                             "\", \"file\": \"" + path + "\"}\n",
                         headers);
  };
  server->listen(port);
  std::printf("upload listening on port %s\n", to_string(server->getPort()).c_str());
  std::fflush(stdout);
  waitFor(server->serve(server->getPort(), cb));
}
