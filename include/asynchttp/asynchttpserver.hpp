// asynchttpserver: an asynchronous HTTP/1.1 server (Nim's std/asynchttpserver), strict by
// RFC 9112. Including this header gives the whole library: httpcore, uri, asyncdispatch and
// asyncnet come with it.
//
//   auto server = newAsyncHttpServer();
//   auto cb = [](Request& req) -> Future<void> { co_await req.respond(Http200, "Hello World"); };
//   waitFor(server->serve(Port(8080), cb));
#pragma once

#include <asynchttp/asyncdispatch.hpp>
#include <asynchttp/asyncnet.hpp>
#include <asynchttp/httpcore.hpp>
#include <asynchttp/uri.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace asynchttp {

namespace detail {
class Responder;
struct ConnectionSet;
}  // namespace detail

/// A response whose body is written piece by piece (`Request::respondStream`). Framing is
/// chosen when the first piece or `finish` comes: the handler's `Content-Length` if it gave one,
/// else chunked for HTTP/1.1 and close-delimited for HTTP/1.0. Destroyed before `finish`, it
/// aborts the response and the connection closes: a cut response never looks complete.
/// Once the handler's exchange has ended, its calls throw ValueError.
class ResponseStream {
 public:
  /// A stream of no response; its calls throw ValueError.
  ResponseStream() = default;
  ResponseStream(ResponseStream&& other) noexcept;
  ResponseStream& operator=(ResponseStream&& other) noexcept;
  ResponseStream(const ResponseStream&) = delete;
  ResponseStream& operator=(const ResponseStream&) = delete;
  /// Aborts the response unless `finish` was called.
  ~ResponseStream();

  /// Sends `bytes` as the next piece of the body (nothing for HEAD, 204 and 304). Completes
  /// once the bytes are in the kernel or within ServerSettings::maxOutputBuffer; the caller
  /// may reuse `bytes` then. Throws ValueError past a declared Content-Length, OSError when
  /// the client is gone.
  Future<void> write(std::string_view bytes);
  /// Ends the body, with `trailers` when chunked (dropped otherwise). Throws ValueError when a
  /// declared Content-Length was not reached (the response is then aborted).
  Future<void> finish(const HttpHeaders& trailers = HttpHeaders());
  /// True once `finish` was called, or the exchange ended: no more writes.
  bool finished() const noexcept { return responder_ == nullptr; }

 private:
  friend struct Request;
  friend class detail::Responder;
  explicit ResponseStream(detail::Responder* responder) noexcept;
  void release() noexcept;  // lets go of the responder (and it of this handle)
  detail::Responder* responder_ = nullptr;
};

/// One request, as the callback sees it. Not copyable: it is the handle to the exchange.
///
/// Lifetime: the Request (and every string in it) stays valid until the callback's Future
/// completes; the server then reuses it for the connection's next request.
struct Request {
  AsyncSocket client;              ///< the connection; writes to it go after queued responses
  HttpMethod reqMethod = HttpGet;  ///< the method
  HttpHeaders headers;             ///< the header fields, each line's value as sent
  HttpProtocol protocol;           ///< "HTTP/1.1" as {orig, 1, 1}
  Uri url;                         ///< the request-target, parsed
  std::string hostname;            ///< the peer's address (Nim's name for it)
  /// The body, de-chunked, filled before the callback runs (ServerSettings::bufferBody), or by
  /// `readBody`; empty when there is none.
  std::string body;
  std::string target;  ///< the request-target exactly as received

  Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  /// Sends a complete response: status line, `Date`, `headers`, `Content-Length` (unless
  /// `headers` has one) and `content` (omitted for HEAD, 1xx, 204 and 304). Does not close
  /// the connection. `content` may be freed once this returns (bytes the kernel did not take
  /// at once are copied first). Throws ValueError for a code outside 100..599, a second final
  /// response, or a header with CR, LF or NUL in it. May complete inline: responses to
  /// pipelined requests are gathered and written together.
  Future<void> respond(HttpCode code, std::string_view content,
                       const HttpHeaders& headers = HttpHeaders());
  /// As above, taking the body over: never copied, however slowly the client reads.
  Future<void> respond(HttpCode code, std::string&& content,
                       const HttpHeaders& headers = HttpHeaders());
  /// As above, for a C string (a literal).
  Future<void> respond(HttpCode code, const char* content,
                       const HttpHeaders& headers = HttpHeaders()) {
    return respond(code, std::string_view(content), headers);
  }
  /// Sends header lines `key: value\r\n` (Nim's sendHeaders: no status line, no blank line),
  /// for handlers that write their own response. May complete inline.
  Future<void> sendHeaders(const HttpHeaders& headers);

  /// With ServerSettings::bufferBody false: the next de-chunked bytes of the body, valid until
  /// the next call; empty at its end. Sends `100 Continue` first when the client asked.
  /// With bufferBody true: `body` once, then empty. Past `maxBody` (or a malformed chunk) the
  /// error response is sent and ValueError thrown.
  Future<std::string_view> bodyChunk();
  /// Reads the rest of the body into `body`. Past `limit` bytes (at most ServerSettings::maxBody,
  /// which is the default) answers 413, closes the connection after it, and throws ValueError.
  Future<void> readBody(std::size_t limit = static_cast<std::size_t>(-1));
  /// Starts a response whose body follows in pieces (see ResponseStream). Throws ValueError as
  /// `respond` does, and for a 1xx code or a `Transfer-Encoding` header.
  Future<ResponseStream> respondStream(HttpCode code, const HttpHeaders& headers = HttpHeaders());
  /// Answers with the file at `path`: `Content-Type` from its extension (unless `headers` has
  /// one), `Content-Length`, `ETag`, `Last-Modified`; 304 for a matching `If-None-Match` /
  /// `If-Modified-Since`, 206 for one `Range` (`If-Range` honoured), 416 for an unsatisfiable
  /// one; 404 when missing, 403 when not a regular file or not readable. The file goes out by
  /// sendfile(2) in bounded pieces.
  Future<void> sendFile(std::string path, const HttpHeaders& headers = HttpHeaders());

 private:
  friend class detail::Responder;
  detail::Responder& responder(const char* operation) const;
  detail::Responder* responder_ = nullptr;
};

/// The request handler: a coroutine (lambda or function) taking the Request.
using RequestCallback = std::function<Future<void>(Request&)>;

/// Server settings; each field's unit and default are given beside it.
struct ServerSettings {
  bool reuseAddr = true;               ///< SO_REUSEADDR on the listening socket
  bool reusePort = false;              ///< SO_REUSEPORT on the listening socket
  std::size_t maxBody = 8388608;       ///< bytes of body; a larger one gets 413
  std::size_t maxRequestLine = 8192;   ///< bytes of request line; a longer one gets 414
  std::size_t maxHeaderBytes = 65536;  ///< bytes of the whole head; more gets 431
  std::size_t maxHeaders = 100;        ///< header lines (at most headerLimit); more gets 431
  /// Whether the body is read into `Request::body` before the callback runs (Nim's behaviour).
  /// false: the callback runs once the head is in, and reads with `bodyChunk` or `readBody`.
  bool bufferBody = true;
  /// Whether CONNECT requests reach the callback (for a proxy); false: they get 501.
  bool allowConnect = false;
  /// Bytes of response a connection may hold unsent before a stream's `write` waits for the
  /// client: the backpressure of streamed responses. 1 MiB by default.
  std::size_t maxOutputBuffer = 1 << 20;
  /// Milliseconds for a whole request (head and body) to arrive, counted from when the server
  /// starts waiting for it; slow trickling does not extend it. Past it: 408 and close, or a
  /// silent close when not even a request line came (an idle keep-alive connection too). A
  /// body the handler reads (bufferBody false) uses what is left, counted only while its
  /// reads wait. 0: wait forever (Nim's default).
  std::int64_t readTimeout = 0;
  /// Milliseconds from the first byte of a request (from the connection's start, for its first
  /// request) to the end of its head. Past it: 408 and close, or a quiet close when no byte
  /// came. Cuts slowloris clients. 0: no limit. As Go's ReadHeaderTimeout; 10 s by default.
  std::int64_t headerTimeout = 10000;
  /// Milliseconds a read of the body may wait for its next byte, buffered or streamed (the
  /// handler's own work between reads is not counted). Past it: 408 and close. 0: no limit.
  /// 30 s by default.
  std::int64_t bodyTimeout = 30000;
  /// Milliseconds a keep-alive connection, parked or not, waits for the first byte of its next
  /// request; past it, it is closed quietly. 0: forever. As Go's IdleTimeout; 60 s by default.
  std::int64_t idleTimeout = 60000;
  /// Milliseconds a response may wait for the client to take any of its bytes (reset by each
  /// byte taken); past it the connection closes, and a handler's pending `respond` fails with
  /// OSError(ETIMEDOUT). 0: wait forever (Nim's behaviour). As nginx's send_timeout.
  std::int64_t writeTimeout = 60000;
  /// Bytes per second a waiting write must average: it may take `writeTimeout` plus one second
  /// per `writeMinRate` bytes the client took meanwhile, so that a client taking a byte now
  /// and then cannot hold a response forever. Past it: as for writeTimeout. 0: no minimum.
  /// 1024 by default, well under a 56 kbit/s modem's 7 000.
  std::size_t writeMinRate = 1024;
  /// Connections served at once by the server (all its loops); past it the listener pauses
  /// until one ends. 0: the descriptor limit (RLIMIT_NOFILE) less a reserve of 64.
  std::size_t maxConnections = 0;
  /// Milliseconds after which an idle keep-alive connection is parked: its buffers, coroutine
  /// and socket state are freed, leaving a ~100-byte record until its next request comes.
  /// 0: never.
  std::int64_t idleRelease = 1000;
  int domain = AF_INET;  ///< AF_INET or AF_INET6
  /// Event loops serving connections: the thread that calls `serve` plus `threads - 1` more,
  /// each with its own SO_REUSEPORT listener and nothing shared on the request path. With more
  /// than one, the callback runs on several threads at once and must be thread-safe.
  int threads = 1;
};

/// An HTTP server: a listening socket and the settings its connections follow.
class AsyncHttpServer : public std::enable_shared_from_this<AsyncHttpServer> {
 public:
  /// A server with `settings`; it listens once `listen` or `serve` is called.
  explicit AsyncHttpServer(ServerSettings settings);
  /// Closes the server and joins its worker threads.
  ~AsyncHttpServer();
  AsyncHttpServer(const AsyncHttpServer&) = delete;
  AsyncHttpServer& operator=(const AsyncHttpServer&) = delete;

  /// Listens on `address` (empty: every address) and `port` (Port(0): any free one). Throws
  /// OSError.
  void listen(Port port, std::string_view address = "");
  /// The port listened on, the real one after `listen(Port(0))`.
  Port getPort() const;
  /// Accepts one connection and serves it in the background with `callback`. Throws OSError
  /// (SocketClosedError once the server is closed).
  Future<void> acceptRequest(RequestCallback callback);
  /// True while this loop has room for `assumedDescriptorsPerRequest` more descriptors within
  /// its share of the process's limit (RLIMIT_NOFILE divided among the server's loops; a
  /// negative value: always true).
  bool shouldAcceptRequest(int assumedDescriptorsPerRequest = 5) const;
  /// Keep-alive connections of this thread's loop currently parked (see
  /// ServerSettings::idleRelease).
  std::size_t parkedConnections() const noexcept;
  /// Listens (unless already listening on `port`), then accepts and serves connections until
  /// `shutdown` or `close`; completes once every connection is gone. A full descriptor table
  /// or `maxConnections` pauses accepting; accept errors that concern one connection only
  /// (ECONNABORTED, EPROTO, ...) are skipped.
  Future<void> serve(Port port, RequestCallback callback, std::string address = "",
                     int assumedDescriptorsPerRequest = -1);
  /// As above, on a listening socket made elsewhere (see `listenFds` for systemd's). The
  /// server takes it over and closes it at shutdown. With `threads` > 1 the other loops
  /// listen on its address with SO_REUSEPORT, which the socket must have set.
  Future<void> serve(AsyncSocket listener, RequestCallback callback);
  /// Stops accepting at once and closes idle and parked connections. Requests in flight
  /// finish, their responses saying `Connection: close`. After `graceMs` milliseconds what is
  /// still open is closed: pending reads and writes fail with SocketClosedError (a handler
  /// still running keeps its Request until it returns). Completes once every connection of
  /// every loop is closed; never blocks a loop. As Go's Server.Shutdown.
  Future<void> shutdown(std::int64_t graceMs = 10000);
  /// `shutdown()` with its default grace, not awaited.
  void close();
  /// True once `shutdown` or `close` was called: a long-lived handler (server-sent events)
  /// can end itself.
  bool closing() const noexcept { return closing_; }
  /// The settings.
  const ServerSettings& settings() const noexcept { return settings_; }

 private:
  ServerSettings settings_;
  AsyncSocket socket_;
  std::string address_;         // listened on (empty: every address)
  int maxDescriptors_;          // this loop's share of RLIMIT_NOFILE
  std::size_t maxConnections_;  // this loop's share of maxConnections
  bool closing_ = false;
  std::shared_ptr<detail::ConnectionSet> connections_;
  struct Worker;
  std::vector<std::unique_ptr<Worker>> workers_;  // the other threads' servers, when threads > 1
  Future<void> acceptLoop(RequestCallback callback, int assumedDescriptorsPerRequest);
  void startWorkers(const RequestCallback& callback);
  void beginShutdown(std::int64_t graceMs) noexcept;
  void startShutdown(std::int64_t graceMs) noexcept;  // beginShutdown, and the grace's end
  bool workersStopped() const noexcept;
  void joinWorkers() noexcept;
};

/// A new server (Nim's signature); listen with `serve` or `listen`.
std::shared_ptr<AsyncHttpServer> newAsyncHttpServer(bool reuseAddr = true, bool reusePort = false,
                                                    std::size_t maxBody = 8388608,
                                                    std::int64_t readTimeout = 0);
/// A new server with every setting: `newAsyncHttpServer({.maxBody = 1 << 20})`.
std::shared_ptr<AsyncHttpServer> newAsyncHttpServer(const ServerSettings& settings);

}  // namespace asynchttp
