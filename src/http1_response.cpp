// Responses on the HTTP/1 connection: whole (`respond`), streamed, and files. Every head goes
// through writeHead (response_writer.cpp), which decides the framing.
#include "file_response.hpp"
#include "http1_connection.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

namespace asynchttp::detail {

using namespace std::string_view_literals;

namespace {

// A file piece per sendfile call; between pieces the loop's other connections get a turn.
constexpr std::size_t kFilePiece = 1 << 20;

// An open file, closed with the scope.
struct FileDescriptor {
  int fd;
  explicit FileDescriptor(int descriptor) noexcept : fd(descriptor) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

// Writes a body the coroutine frame owns, however long the client takes.
Future<void> writeOwned(Transport& transport, std::string body) {
  std::string_view part = body;
  co_await transport.write(std::span(&part, 1), false);
}

std::optional<std::uint64_t> parseLength(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return {};
  return value;
}

}  // namespace

bool Connection::unreadBodyCloses() const noexcept {
  return waitsForContinue() ||
         (head_.framing == BodyFraming::contentLength && bodyRemaining_ > kLingerBytes);
}

void Connection::refuseAnswer(HttpCode code, const char* operation) const {
  checkStatusCode(code, operation);
  if (code == Http101) {
    throw ValueError(std::string(operation) +
                     ": 101 Switching Protocols needs an upgrade, "
                     "which this server does not offer yet");
  }
  if (stream_ != StreamState::none) {
    throw ValueError(std::string(operation) + ": a streamed response is under way (or aborted)");
  }
  throw ValueError(std::string(operation) + ": this request was already answered (" +
                   to_string(code) + " would be taken for the next request's response)");
}

void Connection::appendError(HttpCode code, std::string_view text) {
  HttpHeaders headers;  // error responses are off the hot path
  headers.add("Content-Type", "text/plain; charset=utf-8");
  closeAfterResponse_ = true;
  std::string body(text);
  body += '\n';
  writeResponseHead(code, headers, body.size(), headRequest_ ? std::string_view() : body);
}

// Not a coroutine: in the common (corked) case it appends to the output and returns a
// completed Future, costing no coroutine frame.
Future<void> Connection::respond(HttpCode code, std::string_view content,
                                 const HttpHeaders& headers) {
  checkCanAnswer(code, "respond");
  if (is1xx(code) && request_.protocol.minor == 0) return {};  // never to HTTP/1.0 (RFC 9110)
  // RFC 9110: no body in 1xx, 204 and 304 responses, nor in any response to HEAD, which
  // still announces the length a GET would get.
  bool bodyless = headRequest_ || isBodyless(code);
  if (bodyless || content.size() <= kCopyBodyLimit) {
    writeResponseHead(code, headers, content.size(), bodyless ? std::string_view() : content);
    return afterAppend();
  }
  writeResponseHead(code, headers, content.size());
  // Head and body leave in one write; bytes the kernel does not take at once are copied, so
  // the caller's string may go as soon as this returns.
  return transport_->write(std::span(&content, 1), true);
}

Future<void> Connection::respond(HttpCode code, std::string&& content, const HttpHeaders& headers) {
  if (content.size() <= kCopyBodyLimit) return respond(code, std::string_view(content), headers);
  checkCanAnswer(code, "respond");
  HeadOutcome head = writeResponseHead(code, headers, content.size());
  if (!sendsBody(head)) return afterAppend();
  return writeOwned(*transport_, std::move(content));
}

Future<void> Connection::sendHeaders(const HttpHeaders& headers) {
  appendHeaderLines(transport_->corked(), headers);
  return corked_ ? Future<void>() : transport_->flush();
}

// --- Streams ------------------------------------------------------------------------------------

void Connection::startStream(HttpCode code, const HttpHeaders& headers) {
  checkCanAnswer(code, "respondStream");
  if (is1xx(code)) throw ValueError("respondStream: a 1xx response has no body (use respond)");
  if (headers.hasKey("Transfer-Encoding")) {
    throw ValueError("respondStream: the server frames the body; give no Transfer-Encoding");
  }
  checkHeaders(headers);
  streamLength_.reset();
  if (headers.hasKey("Content-Length")) {
    auto values = headers["Content-Length"];
    streamLength_ = values.size() == 1 ? parseLength(values[0]) : std::nullopt;
    if (!streamLength_) throw ValueError("respondStream: Content-Length is not one number");
  }
  streamHeaders_ = headers;
  streamHeaders_.del("Content-Length");  // written by writeHead, from streamLength_
  streamCode_ = code;
  streamWritten_ = 0;
  streamFraming_ = Framing::none;
  stream_ = StreamState::headPending;  // answers nothing yet: `100 Continue` may still go out
}

// The head goes out with the first piece or the end: a stream that ends before any piece has
// a known length (0), whatever the protocol.
void Connection::openStreamHead(std::optional<std::uint64_t> length) {
  HeadOutcome head =
      writeResponseHead(streamCode_, streamHeaders_, streamLength_ ? streamLength_ : length);
  streamFraming_ = sendsBody(head) ? head.framing : Framing::none;
  stream_ = StreamState::open;
}

Future<void> Connection::streamWrite(std::string_view bytes) {
  if (stream_ != StreamState::headPending && stream_ != StreamState::open) {
    throw ValueError("write: the response was aborted");
  }
  if (stream_ == StreamState::headPending) openStreamHead(std::nullopt);
  if (streamLength_ && streamWritten_ + bytes.size() > *streamLength_) {
    streamAbort();
    throw ValueError("write: " + std::to_string(streamWritten_ + bytes.size()) +
                     " bytes exceed the declared Content-Length " + std::to_string(*streamLength_) +
                     "; the response is aborted");
  }
  streamWritten_ += bytes.size();
  if (streamFraming_ == Framing::none || bytes.empty()) return {};  // an empty chunk would end it
  std::string& out = transport_->corked();
  bool chunked = streamFraming_ == Framing::chunked;
  if (chunked) {
    char size[20];
    auto end = std::to_chars(size, size + sizeof size, bytes.size(), 16).ptr;
    out.append(size, static_cast<std::size_t>(end - size));
    out += "\r\n"sv;
  }
  if (bytes.size() > kCopyBodyLimit) {
    std::string_view parts[2] = {bytes, chunked ? "\r\n"sv : ""sv};
    return transport_->write(parts, true);  // straight from the caller's bytes
  }
  out += bytes;
  if (chunked) out += "\r\n"sv;
  // Backpressure: within maxOutputBuffer while corked; otherwise once the kernel has it.
  if (corked_ && out.size() <= maxOutputBuffer_) return {};
  return transport_->flush();
}

Future<void> Connection::streamFinish(const HttpHeaders& trailers) {
  if (stream_ != StreamState::headPending && stream_ != StreamState::open) {
    throw ValueError("finish: the response was aborted");
  }
  // Nothing written: a known length, 0 (for HEAD, nothing: a GET might get a body).
  if (stream_ == StreamState::headPending) {
    openStreamHead(headRequest_ ? std::nullopt : std::optional<std::uint64_t>(0));
  }
  if (streamLength_ && streamWritten_ != *streamLength_) {
    streamAbort();
    throw ValueError("finish: " + std::to_string(streamWritten_) + " of the " +
                     std::to_string(*streamLength_) +
                     " bytes declared were written; the "
                     "response is aborted");
  }
  if (streamFraming_ == Framing::chunked) {
    checkHeaders(trailers);
    std::string& out = transport_->corked();
    out += "0\r\n"sv;
    appendHeaderLines(out, trailers);
    out += "\r\n"sv;
  }
  stream_ = StreamState::none;
  return afterAppend();
}

void Connection::streamAbort() noexcept {
  if (stream_ == StreamState::headPending) {
    // Nothing was sent yet: the client can still get a proper error.
    stream_ = StreamState::none;
    try {
      appendError(Http500, "The response stream was dropped before it began.");
    } catch (const std::exception&) {
      stream_ = StreamState::aborted;
    }
    closeAfterResponse_ = true;
    return;
  }
  if (stream_ == StreamState::open) {
    stream_ = StreamState::aborted;
    closeAfterResponse_ = true;
  }
}

// --- Files --------------------------------------------------------------------------------------

Future<void> Connection::sendFile(std::string path, const HttpHeaders& given) {
  checkCanAnswer(Http200, "sendFile");
  HttpHeaders headers = given;    // copied before any wait: `given` may be a temporary
  headers.del("Content-Length");  // the file's framing is the server's
  headers.del("Transfer-Encoding");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // a FIFO must not block
  if (fd < 0) {
    int error = errno;
    bool forbidden = error == EACCES || error == EPERM;
    co_await respond(forbidden ? Http403 : Http404,
                     forbidden ? std::string_view("Forbidden\n") : std::string_view("Not Found\n"),
                     HttpHeaders());
    co_return;
  }
  FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    co_await respond(Http403, std::string_view("Forbidden\n"), HttpHeaders());
    co_return;
  }
  auto size = static_cast<std::uint64_t>(info.st_size);
  std::int64_t modified = info.st_mtim.tv_sec;
  std::string tag = entityTag(modified, size);
  FileAnswer answer =
      evaluateFileRequest(request_.reqMethod, request_.headers, tag, modified, size);
  if (!headers.hasKey("ETag")) headers.set("ETag", tag);
  if (!headers.hasKey("Last-Modified")) headers.set("Last-Modified", formatHttpDate(modified));
  if (answer.code == Http304) {
    co_await respond(Http304, std::string_view(), headers);
    co_return;
  }
  if (answer.code == Http412 || answer.code == Http416) {
    if (answer.code == Http416) headers.set("Content-Range", contentRange(answer, size));
    headers.set("Content-Type", "text/plain; charset=utf-8");
    co_await respond(answer.code,
                     answer.code == Http412 ? std::string_view("Precondition Failed\n")
                                            : std::string_view("Range Not Satisfiable\n"),
                     headers);
    co_return;
  }
  if (!headers.hasKey("Content-Type")) headers.set("Content-Type", mimeType(path));
  if (!headers.hasKey("Accept-Ranges")) headers.set("Accept-Ranges", "bytes");
  if (answer.code == Http206) headers.set("Content-Range", contentRange(answer, size));
  HeadOutcome head = writeResponseHead(answer.code, headers, answer.length);
  if (!sendsBody(head) || answer.length == 0) {
    co_await afterAppend();
    co_return;
  }
  co_await sendFileRange(fd, answer.offset, answer.length);
}

Future<void> Connection::sendFileRange(int fd, std::uint64_t offset, std::uint64_t length) {
  if (length <= kCopyBodyLimit) {
    // A small file is read behind its head: one write, batched with pipelined responses.
    std::string& out = transport_->corked();
    std::size_t at = out.size();
    out.resize(at + length);
    ssize_t n = ::pread(fd, out.data() + at, length, static_cast<off_t>(offset));
    if (n != static_cast<ssize_t>(length)) {
      out.resize(at);
      transport_->abort();  // the head promised bytes the file no longer has
      throw OSError("sendFile: the file changed while being read", n < 0 ? errno : EIO);
    }
    co_await afterAppend();
    co_return;
  }
  while (length > 0) {
    std::size_t piece = static_cast<std::size_t>(std::min<std::uint64_t>(length, kFilePiece));
    std::size_t n = co_await transport_->sendFile(fd, offset, piece);
    if (n == 0) {
      transport_->abort();
      throw OSError("sendFile: the file shrank while being sent", EIO);
    }
    offset += n;
    length -= n;
    if (length > 0) co_await YieldToLoop{transport_->loop()};
  }
}

}  // namespace asynchttp::detail
