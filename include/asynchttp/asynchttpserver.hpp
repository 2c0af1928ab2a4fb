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
#include <vector>

namespace asynchttp {

namespace detail {
class Connection;
struct ConnectionSet;
}  // namespace detail

/// One request, as the callback sees it.
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
  std::string body;                ///< the body, de-chunked; empty when there is none
  std::string target;              ///< the request-target exactly as received

  /// Sends a complete response: status line, `Date`, `headers`, `Content-Length` (unless
  /// `headers` has one) and `content` (omitted for HEAD, 1xx, 204 and 304). Does not close
  /// the connection. `content` must stay valid until the Future completes (co_await it in the
  /// same statement). Throws ValueError for a header with CR, LF or NUL in it. May complete
  /// inline: responses to pipelined requests are gathered and written together.
  Future<void> respond(HttpCode code, std::string_view content,
                       const HttpHeaders& headers = HttpHeaders());
  /// Sends header lines `key: value\r\n` (Nim's sendHeaders: no status line, no blank line),
  /// for handlers that write their own response. May complete inline.
  Future<void> sendHeaders(const HttpHeaders& headers);

 private:
  friend class detail::Connection;
  detail::Connection* connection_ = nullptr;
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
  /// Milliseconds for a whole request (head and body) to arrive, counted from when the server
  /// starts waiting for it; slow trickling does not extend it. Past it: 408 and close, or a
  /// silent close when not even a request line came (an idle keep-alive connection too).
  /// 0: wait forever (Nim's default).
  std::int64_t readTimeout = 0;
  /// Milliseconds a response may wait for the client to take any of its bytes (reset by each
  /// byte taken); past it the connection closes, and a handler's pending `respond` fails with
  /// OSError(ETIMEDOUT). 0: wait forever (Nim's behaviour). As nginx's send_timeout.
  std::int64_t writeTimeout = 60000;
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
  /// True while the process has room for `assumedDescriptorsPerRequest` more descriptors
  /// (a negative value: always true).
  bool shouldAcceptRequest(int assumedDescriptorsPerRequest = 5) const;
  /// Keep-alive connections of this thread's loop currently parked (see
  /// ServerSettings::idleRelease).
  std::size_t parkedConnections() const noexcept;
  /// Listens (unless already listening on `port`), then accepts and serves connections until
  /// `close()`; completes then. A full descriptor table delays accepting instead of failing.
  Future<void> serve(Port port, RequestCallback callback, std::string address = "",
                     int assumedDescriptorsPerRequest = -1);
  /// Stops listening (`serve` completes) and ends the server's connections gracefully: idle
  /// ones close at once, one busy with a request closes after its response
  /// (`Connection: close`).
  void close();
  /// The settings.
  const ServerSettings& settings() const noexcept { return settings_; }

 private:
  ServerSettings settings_;
  AsyncSocket socket_;
  int maxDescriptors_;
  std::shared_ptr<detail::ConnectionSet> connections_;
  struct Worker;
  std::vector<std::unique_ptr<Worker>> workers_;  // the other threads' servers, when threads > 1
  void startWorkers(const RequestCallback& callback, const std::string& address);
  void stopWorkers() noexcept;
};

/// A new server (Nim's signature); listen with `serve` or `listen`.
std::shared_ptr<AsyncHttpServer> newAsyncHttpServer(bool reuseAddr = true, bool reusePort = false,
                                                    std::size_t maxBody = 8388608,
                                                    std::int64_t readTimeout = 0);
/// A new server with every setting: `newAsyncHttpServer({.maxBody = 1 << 20})`.
std::shared_ptr<AsyncHttpServer> newAsyncHttpServer(const ServerSettings& settings);

}  // namespace asynchttp
