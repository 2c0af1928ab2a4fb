// The server: its listening socket, the accept loop, and the worker loops of `threads`.
#include <asynchttp/asynchttpserver.hpp>

#include "asyncnet_internal.hpp"
#include "connection_set.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace asynchttp {

namespace {
// How long a worker loop lets handlers still running after its shutdown finish before its
// thread ends (the server's destructor joins it).
constexpr auto kWorkerDrain = std::chrono::seconds(5);
// Descriptors kept back from maxConnections' default, for files, logs and the loops' own.
constexpr rlim_t kDescriptorReserve = 64;
// shutdown()'s default grace, which close() gives.
constexpr std::int64_t kDefaultGraceMs = 10000;
// How often a paused accept loop looks again.
constexpr std::int64_t kPausedPollMs = 5;

rlim_t descriptorLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) {
    return 16000;  // Nim's fallback
  }
  return std::min<rlim_t>(limit.rlim_cur, 1 << 30);
}

// accept(2): errors of the connection being accepted, not of the listener; skip it and go on.
bool concernsOneConnection(int error) {
  switch (error) {
    case ECONNABORTED:
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case EPERM:  // a firewall rule refused it
    case EINTR:
    case ETIMEDOUT:
      return true;
    default:
      return false;
  }
}

// Out of descriptors or memory: wait and retry, as Go's server does, instead of ending.
bool exhausted(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}
}  // namespace

namespace detail {
thread_local InjectedAcceptErrors injectedAcceptErrors;
}  // namespace detail

// --- AsyncHttpServer ----------------------------------------------------------------------------

AsyncHttpServer::AsyncHttpServer(ServerSettings settings)
    : settings_(settings), connections_(std::make_shared<detail::ConnectionSet>(settings)) {
  auto loops = static_cast<rlim_t>(std::max(1, settings_.threads));
  rlim_t limit = descriptorLimit();
  maxDescriptors_ = static_cast<int>(limit / loops);
  std::size_t total =
      settings_.maxConnections > 0
          ? settings_.maxConnections
          : static_cast<std::size_t>(limit > kDescriptorReserve * 2 ? limit - kDescriptorReserve
                                                                    : limit / 2);
  maxConnections_ = std::max<std::size_t>(1, total / loops);
}

std::shared_ptr<AsyncHttpServer> newAsyncHttpServer(bool reuseAddr, bool reusePort,
                                                    std::size_t maxBody, std::int64_t readTimeout) {
  return newAsyncHttpServer(ServerSettings{.reuseAddr = reuseAddr,
                                           .reusePort = reusePort,
                                           .maxBody = maxBody,
                                           .readTimeout = readTimeout});
}

std::shared_ptr<AsyncHttpServer> newAsyncHttpServer(const ServerSettings& settings) {
  return std::make_shared<AsyncHttpServer>(settings);
}

void AsyncHttpServer::listen(Port port, std::string_view address) {
  if (!socket_.isClosed()) socket_.close();
  socket_ = newAsyncSocket(settings_.domain);
  if (settings_.reuseAddr) socket_.setSockOpt(OptReuseAddr, true);
  // Several loops share the port through SO_REUSEPORT; the kernel spreads connections.
  if (settings_.reusePort || settings_.threads > 1) socket_.setSockOpt(OptReusePort, true);
  // Responses leave whole, in one write per batch: no Nagle delay. Set on the listener, which
  // Linux copies to every accepted socket (one setsockopt less per connection).
  if (settings_.domain == AF_INET || settings_.domain == AF_INET6) {
    socket_.setSockOpt(OptNoDelay, true);
  }
  socket_.bindAddr(port, address);
  socket_.listen();
  address_ = address;
  closing_ = false;
}

Port AsyncHttpServer::getPort() const {
  return socket_.getLocalAddr().second;
}

bool AsyncHttpServer::shouldAcceptRequest(int assumedDescriptorsPerRequest) const {
  return assumedDescriptorsPerRequest < 0 ||
         activeDescriptors() + assumedDescriptorsPerRequest < maxDescriptors_;
}

namespace {
void startConnection(std::string address, AsyncSocket client,
                     const std::shared_ptr<const RequestCallback>& callback,
                     const std::shared_ptr<detail::ConnectionSet>& connections) {
  asyncCheck(detail::serveTcp(std::move(client), std::move(address), callback, connections));
}
}  // namespace

Future<void> AsyncHttpServer::acceptRequest(RequestCallback callback) {
  auto self = shared_from_this();
  auto shared = std::make_shared<const RequestCallback>(std::move(callback));
  auto [address, client] = co_await socket_.acceptAddr();
  startConnection(std::move(address), std::move(client), shared, connections_);
}

Future<void> AsyncHttpServer::serve(Port port, RequestCallback callback, std::string address,
                                    int assumedDescriptorsPerRequest) {
  auto self = shared_from_this();  // the server lives while it serves
  // Keep a socket already listening there: closing it would reset the connections waiting in
  // its backlog (listen(Port(0)) then serve(getPort()) is how a caller learns the port first).
  bool listening = !socket_.isClosed() && (port == Port(0) || port == getPort());
  if (!listening) listen(port, address);
  co_await acceptLoop(std::move(callback), assumedDescriptorsPerRequest);
}

Future<void> AsyncHttpServer::serve(AsyncSocket listener, RequestCallback callback) {
  auto self = shared_from_this();
  if (!socket_.isClosed()) socket_.close();
  socket_ = std::move(listener);
  address_ = socket_.getLocalAddr().first;
  closing_ = false;
  co_await acceptLoop(std::move(callback), -1);
}

Future<void> AsyncHttpServer::acceptLoop(RequestCallback callback,
                                         int assumedDescriptorsPerRequest) {
  auto self = shared_from_this();
  if (settings_.threads > 1 && workers_.empty()) startWorkers(callback);
  auto shared = std::make_shared<const RequestCallback>(std::move(callback));
  std::int64_t backoffMs = 0;
  for (;;) {
    if (!shouldAcceptRequest(assumedDescriptorsPerRequest) ||
        connections_->live.size() + connections_->parkedCount >= maxConnections_) {
      co_await sleepAsync(kPausedPollMs);  // paused: new connections wait in the backlog
      if (closing_) break;
      continue;
    }
    try {
      if (detail::injectedAcceptErrors.count > 0) {
        --detail::injectedAcceptErrors.count;
        throw OSError("accept", detail::injectedAcceptErrors.error);
      }
      auto [peer, client] = co_await socket_.acceptAddr();
      backoffMs = 0;
      startConnection(std::move(peer), std::move(client), shared, connections_);
    } catch (const SocketClosedError&) {
      break;  // shutdown() or close()
    } catch (const OSError& e) {
      if (concernsOneConnection(e.code())) continue;
      if (!exhausted(e.code())) throw;
      backoffMs = std::min<std::int64_t>(backoffMs == 0 ? 5 : backoffMs * 2, 1000);
    }
    if (backoffMs > 0) co_await sleepAsync(backoffMs);
  }
  // Complete once the connections are gone, here and on the other loops.
  while (!connections_->drained() || !workersStopped()) co_await sleepAsync(kPausedPollMs);
}

// One more event loop on its own thread, with its own server listening on the same port. The
// server lives and dies on that thread; the owner reaches it only by posting to its loop.
struct AsyncHttpServer::Worker {
  std::thread thread;
  std::promise<void> started;
  Dispatcher::Remote loop;
  std::weak_ptr<AsyncHttpServer> server;
  std::atomic<bool> stopped{false};  // its serve() completed: its connections are gone
};

void AsyncHttpServer::startWorkers(const RequestCallback& callback) {
  ServerSettings single = settings_;
  single.threads = 1;
  single.reusePort = true;
  Port port = getPort();
  for (int i = 1; i < settings_.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    auto ready = worker->started.get_future();
    worker->thread = std::thread([&w = *worker, single, port, address = address_, callback,
                                  descriptors = maxDescriptors_, connections = maxConnections_] {
      bool running = false;
      try {
        auto server = newAsyncHttpServer(single);
        server->maxDescriptors_ = descriptors;  // shares of the whole server's limits
        server->maxConnections_ = connections;
        server->listen(port, address);
        w.loop = getGlobalDispatcher().remote();
        w.server = server;
        auto serving = server->serve(port, callback, address);
        running = true;
        w.started.set_value();
        try {
          waitFor(std::move(serving));
        } catch (...) {
          server->beginShutdown(0);  // closed here, on its own thread, whatever ended serving
          w.stopped = true;
          throw;
        }
        w.stopped = true;
        // Handlers still running past the grace: a while to end, then the thread goes.
        auto until = Clock::now() + kWorkerDrain;
        while (hasPendingOperations() && Clock::now() < until) poll(100);
      } catch (...) {
        w.stopped = true;
        if (running) {
          detail::reportDetachedException(std::current_exception());
        } else {
          w.started.set_exception(std::current_exception());
        }
      }
    });
    try {
      ready.get();  // a worker that cannot listen makes serve() fail here
    } catch (...) {
      worker->thread.join();
      beginShutdown(0);
      joinWorkers();
      throw;
    }
    workers_.push_back(std::move(worker));
  }
}

bool AsyncHttpServer::workersStopped() const noexcept {
  return std::all_of(workers_.begin(), workers_.end(),
                     [](const std::unique_ptr<Worker>& w) { return w->stopped.load(); });
}

void AsyncHttpServer::beginShutdown(std::int64_t graceMs) noexcept {
  if (closing_) return;
  closing_ = true;
  socket_.close();  // accepting stops: the accept loop ends with SocketClosedError
  connections_->closeAll();
  for (auto& worker : workers_) {
    worker->loop.post([server = worker->server, graceMs] {
      if (auto s = server.lock()) s->startShutdown(graceMs);
    });
  }
}

Future<void> AsyncHttpServer::shutdown(std::int64_t graceMs) {
  auto self = shared_from_this();
  beginShutdown(graceMs);
  co_await detail::drainConnections(connections_, graceMs);
  while (!workersStopped()) co_await sleepAsync(kPausedPollMs);
}

void AsyncHttpServer::close() {
  startShutdown(kDefaultGraceMs);
}

void AsyncHttpServer::startShutdown(std::int64_t graceMs) noexcept {
  beginShutdown(graceMs);
  // Holds the connections, not the server: it may be destroyed meanwhile.
  asyncCheck(detail::drainConnections(connections_, graceMs));
}

void AsyncHttpServer::joinWorkers() noexcept {
  for (auto& worker : workers_) {
    // Whatever is left is closed now: the destructor must not wait out a grace.
    worker->loop.post([server = worker->server] {
      if (auto s = server.lock()) s->connections_->abortAll();
    });
    worker->thread.join();
  }
  workers_.clear();
}

AsyncHttpServer::~AsyncHttpServer() {
  if (!workers_.empty()) {
    beginShutdown(0);
    joinWorkers();
  }
}

std::size_t AsyncHttpServer::parkedConnections() const noexcept {
  return connections_->parkedCount;
}

}  // namespace asynchttp
