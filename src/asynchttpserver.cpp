// The server: its listening socket, the accept loop, and the worker loops of `threads`.
#include <asynchttp/asynchttpserver.hpp>

#include "connection_set.hpp"

#include <sys/resource.h>

#include <chrono>
#include <future>
#include <thread>

namespace asynchttp {

namespace {
// How long a worker loop lets its closing connections finish before its thread ends.
constexpr auto kWorkerDrain = std::chrono::seconds(5);
}  // namespace

// --- AsyncHttpServer ----------------------------------------------------------------------------

AsyncHttpServer::AsyncHttpServer(ServerSettings settings)
    : settings_(settings), connections_(std::make_shared<detail::ConnectionSet>(settings)) {
  rlimit limit{};
  maxDescriptors_ = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY
                        ? static_cast<int>(std::min<rlim_t>(limit.rlim_cur, 1 << 30))
                        : 16000;  // Nim's fallback
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
  if (settings_.threads > 1 && workers_.empty()) startWorkers(callback, address);
  auto shared = std::make_shared<const RequestCallback>(std::move(callback));
  std::int64_t backoffMs = 0;
  for (;;) {
    if (!shouldAcceptRequest(assumedDescriptorsPerRequest)) {
      co_await sleepAsync(10);
      continue;
    }
    try {
      auto [peer, client] = co_await socket_.acceptAddr();
      backoffMs = 0;
      startConnection(std::move(peer), std::move(client), shared, connections_);
    } catch (const SocketClosedError&) {
      co_return;  // close() was called
    } catch (const OSError& e) {
      // Out of descriptors or memory: wait and retry, as Go's server does, instead of dying.
      if (e.code() != EMFILE && e.code() != ENFILE && e.code() != ENOBUFS && e.code() != ENOMEM) {
        throw;
      }
      backoffMs = std::min<std::int64_t>(backoffMs == 0 ? 5 : backoffMs * 2, 1000);
    }
    if (backoffMs > 0) co_await sleepAsync(backoffMs);
  }
}

// One more event loop on its own thread, with its own server listening on the same port. The
// server lives and dies on that thread; the owner reaches it only by posting to its loop.
struct AsyncHttpServer::Worker {
  std::thread thread;
  std::promise<void> started;
  Dispatcher::Remote loop;
  std::weak_ptr<AsyncHttpServer> server;
};

void AsyncHttpServer::startWorkers(const RequestCallback& callback, const std::string& address) {
  ServerSettings single = settings_;
  single.threads = 1;
  single.reusePort = true;
  Port port = getPort();
  for (int i = 1; i < settings_.threads; ++i) {
    auto worker = std::make_unique<Worker>();
    auto ready = worker->started.get_future();
    worker->thread = std::thread([&w = *worker, single, port, address, callback] {
      bool running = false;
      try {
        auto server = newAsyncHttpServer(single);
        server->listen(port, address);
        w.loop = getGlobalDispatcher().remote();
        w.server = server;
        auto serving = server->serve(port, callback, address);
        running = true;
        w.started.set_value();
        try {
          waitFor(std::move(serving));
        } catch (...) {
          server->close();  // closed here, on its own thread, whatever ended serving
          throw;
        }
        // Let closing connections finish, for a while: close() joins this thread, and a
        // handler or client that never ends must not keep it waiting forever.
        auto until = Clock::now() + kWorkerDrain;
        while (hasPendingOperations() && Clock::now() < until) poll(100);
      } catch (...) {
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
      stopWorkers();
      throw;
    }
    workers_.push_back(std::move(worker));
  }
}

void AsyncHttpServer::stopWorkers() noexcept {
  for (auto& worker : workers_) {
    worker->loop.post([server = worker->server] {
      if (auto s = server.lock()) s->close();
    });
  }
  for (auto& worker : workers_) worker->thread.join();
  workers_.clear();
}

AsyncHttpServer::~AsyncHttpServer() {
  stopWorkers();
}

void AsyncHttpServer::close() {
  stopWorkers();
  socket_.close();
  connections_->closeAll();
}

std::size_t AsyncHttpServer::parkedConnections() const noexcept {
  return connections_->parkedCount;
}

}  // namespace asynchttp
