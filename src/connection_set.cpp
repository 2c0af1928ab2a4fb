#include "connection_set.hpp"

#include "asyncnet_internal.hpp"
#include "buffers.hpp"
#include "http1_connection.hpp"

#include <malloc.h>
#include <sys/socket.h>
#include <unistd.h>
#include <algorithm>

namespace asynchttp::detail {

namespace {

// Parked records in pooled pages, apart from the malloc heap: records allocated in the holes
// that the freed connections leave would keep those heap pages resident.
class ParkedPool {
 public:
  static ParkedPool& local() {
    thread_local ParkedPool pool;
    return pool;
  }
  ParkedConnection* make() {
    if (!free_) {
      char* page = PagePool::local().take();  // kept for reuse while the thread lives
      for (std::size_t i = 0; i + sizeof(Slot) <= PagePool::kPage; i += sizeof(Slot)) {
        free_ = new (page + i) Slot{free_};
      }
    }
    Slot* slot = std::exchange(free_, free_->next);
    return new (slot) ParkedConnection();
  }
  void destroy(ParkedConnection* record) noexcept {
    record->~ParkedConnection();
    free_ = new (record) Slot{free_};
  }

 private:
  union Slot {
    Slot* next;
    alignas(ParkedConnection) unsigned char storage[sizeof(ParkedConnection)];
  };
  Slot* free_ = nullptr;
};

}  // namespace

// Parking this many connections at once frees enough heap (~1.5 KiB each) to trim it.
constexpr std::size_t kTrimAfterParking = 256;

namespace {
// Milliseconds as a duration that no clock reading plus it overflows (at most ~290 years).
Clock::duration phaseLimit(std::int64_t ms) {
  constexpr std::int64_t kMaxMs = std::int64_t{1} << 43;
  return std::chrono::milliseconds(std::clamp<std::int64_t>(ms, 0, kMaxMs));
}
}  // namespace

ConnectionSet::ConnectionSet(const ServerSettings& serverSettings) : settings(serverSettings) {
  phaseLimits = {Clock::duration::zero(), phaseLimit(settings.idleTimeout),
                 phaseLimit(settings.headerTimeout), phaseLimit(settings.bodyTimeout)};
  sweeper.set = this;
  sweeper.fire = [](TimerNode& node) { static_cast<Sweeper&>(node).set->sweep(); };
}

ConnectionSet::~ConnectionSet() {
  // At exit, after this thread's loop and pools (a server in a static variable): touch
  // nothing; the process's end closes the descriptors.
  if (!loop || globalDispatcherGone()) return;
  loop->cancelTimer(sweeper);
  closeParked();
}

void ConnectionSet::add(Connection* connection) {
  connection->liveIndex_ = live.size();
  live.push_back(connection);
  if (!loop) loop = &getGlobalDispatcher();
  if (settings.idleRelease > 0 && sweeper.heapIndex == TimerNode::kNotQueued) {
    sweeper.deadline = deadlineAfter(loop->now(), settings.idleRelease);
    loop->addTimer(sweeper);
  }
}

void ConnectionSet::remove(Connection* connection) noexcept {
  Connection* last = live.back();
  live[connection->liveIndex_] = last;
  last->liveIndex_ = connection->liveIndex_;
  live.pop_back();
  if (live.empty() && loop) loop->cancelTimer(sweeper);  // no timer keeps an idle loop busy
}

void ConnectionSet::sweep() {
  auto cutoff = loop->now() - std::chrono::milliseconds(settings.idleRelease);
  std::size_t parking = 0;
  for (Connection* connection : live) parking += connection->parkIfIdleSince(cutoff) ? 1 : 0;
  // glibc keeps freed chunks in its heap: once the parked connections' coroutines have ended
  // (they resume on this turn, before callbacks), hand the freed pages back.
  if (parking >= kTrimAfterParking) loop->callSoon([] { ::malloc_trim(0); });
  sweeper.deadline = deadlineAfter(loop->now(), settings.idleRelease);
  loop->addTimer(sweeper);
}

void ConnectionSet::park(int fd, int domain, std::shared_ptr<const RequestCallback> callback,
                         CarriedClocks clocks, std::optional<Clock::time_point> idleEnd) noexcept {
  ParkedConnection* record = nullptr;
  try {
    record = ParkedPool::local().make();
    record->fire = &ParkedConnection::onDeadline;
    record->readDeadline = clocks.readDeadline.value_or(Clock::time_point::max());
    record->headerSince = clocks.headerSince.value_or(Clock::time_point::max());
    record->deadline = std::min(record->readDeadline, idleEnd.value_or(Clock::time_point::max()));
    if (clocks.readDeadline || idleEnd) loop->addTimer(*record);
  } catch (const std::bad_alloc&) {
    // Out of memory: the idle connection is closed instead, as if its client had left.
    if (record) ParkedPool::local().destroy(record);
    loop->unregisterClosing(fd);
    ::close(fd);
    return;
  }
  record->IoWait::callback = &ParkedConnection::onReadable;
  record->set = this;
  record->callback = std::move(callback);
  record->fd = fd;
  record->domain = domain;
  record->next = parked;
  if (parked) parked->previous = record;
  parked = record;
  ++parkedCount;
  loop->waitReadable(fd, *record);  // the connection parks only when its socket is drained
}

void ConnectionSet::unlink(ParkedConnection& record) noexcept {
  if (record.previous) {
    record.previous->next = record.next;
  } else {
    parked = record.next;
  }
  if (record.next) record.next->previous = record.previous;
  record.previous = record.next = nullptr;
  record.set = nullptr;
  --parkedCount;
}

void ConnectionSet::closeAll(bool evenNew) noexcept {
  // A copy: a connection leaves the set when its coroutine ends, which must not invalidate
  // this loop should it happen inside it.
  auto connections = live;
  for (Connection* connection : connections) connection->shutdown(evenNew);
  closeParked();
}

void ConnectionSet::abortAll() noexcept {
  auto connections = live;  // a copy, as in closeAll
  for (Connection* connection : connections) connection->forceClose();
  closeParked();
}

bool ConnectionSet::drained() const noexcept {
  return parked == nullptr && std::none_of(live.begin(), live.end(), [](const Connection* c) {
           return c->transport_->isOpen();
         });
}

Future<void> drainConnections(std::shared_ptr<ConnectionSet> set, std::int64_t graceMs) {
  // Looked at every few milliseconds: a shutdown's cost is not worth a wake-up per connection.
  constexpr std::int64_t kPollMs = 5;
  // How long a new connection with no byte yet may still send its first request.
  constexpr std::int64_t kNewConnectionGraceMs = 1000;
  auto started = Clock::now();
  auto graceEnd = deadlineAfter(started, graceMs);
  auto newEnd = std::min(graceEnd, deadlineAfter(started, kNewConnectionGraceMs));
  bool newClosed = false;
  while (!set->drained()) {
    auto now = Clock::now();
    if (now >= graceEnd) {
      set->abortAll();  // closes each at once; what ends them resumes on the next turns
      graceEnd = Clock::time_point::max();
    } else if (!newClosed && now >= newEnd) {
      newClosed = true;
      set->closeAll(true);
    }
    co_await sleepAsync(kPollMs);
  }
}

void ConnectionSet::closeParked() noexcept {
  while (ParkedConnection* record = parked) {
    unlink(*record);
    loop->cancelTimer(*record);
    loop->cancelWaits(record->fd);  // its callback, cancelled, closes and frees it
  }
}

void ConnectionSet::unpark(ParkedConnection& record, std::string_view received) {
  // The socket handle owns the descriptor from here: whatever throws below closes it.
  AsyncSocket client =
      SocketAccess::adoptRegistered(std::exchange(record.fd, -1), record.domain, *loop);
  std::string address;
  try {
    address = client.getPeerAddr().first;
  } catch (const OSError&) {
    // The peer is gone already: the connection will find out on its next read.
  }
  auto callback = std::move(record.callback);
  // The read deadline and a header timeout run on from when they started, not from the waking.
  CarriedClocks clocks;
  if (record.readDeadline != Clock::time_point::max()) clocks.readDeadline = record.readDeadline;
  if (record.headerSince != Clock::time_point::max()) clocks.headerSince = record.headerSince;
  asyncCheck(serveTcp(std::move(client), std::move(address), std::move(callback),
                      shared_from_this(), received, clocks));
}

void ParkedConnection::onReadable(IoWait& wait) {
  auto& record = static_cast<ParkedConnection&>(wait);
  Dispatcher& loop = getGlobalDispatcher();
  auto closeAndFree = [&] {
    loop.cancelTimer(record);
    if (record.set) record.set->unlink(record);
    loop.unregisterClosing(record.fd);
    ::close(record.fd);
    ParkedPool::local().destroy(&record);
  };
  if (record.cancelled) return closeAndFree();  // the server closed, or the deadline passed
  char received[kInitialReadBuffer];
  ssize_t n;
  do {
    n = ::recv(record.fd, received, sizeof received, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {  // a spurious wake-up
    loop.readDrained(record.fd);
    loop.waitReadable(record.fd, record);
    return;
  }
  // The client left (or the socket failed) while its connection was parked.
  if (n <= 0) return closeAndFree();
  if (static_cast<std::size_t>(n) < sizeof received) loop.readDrained(record.fd);
  loop.cancelTimer(record);
  ConnectionSet* set = record.set;
  set->unlink(record);
  try {
    set->unpark(record, {received, static_cast<std::size_t>(n)});
  } catch (...) {
    reportException("could not resume a parked connection", std::current_exception());
  }
  ParkedPool::local().destroy(&record);
}

void ParkedConnection::onDeadline(TimerNode& timer) {
  auto& record = static_cast<ParkedConnection&>(timer);
  // onReadable, called back cancelled on the next turn, closes it.
  getGlobalDispatcher().cancelWaits(record.fd);
}

}  // namespace asynchttp::detail
