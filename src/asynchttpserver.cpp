#include <asynchttp/asynchttpserver.hpp>

#include "asyncnet_internal.hpp"
#include "http1_parser.hpp"
#include "text_internal.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <future>
#include <span>
#include <thread>

namespace asynchttp {

// Literals appended as string_views: no strlen per append (48 instructions per response).
using namespace std::string_view_literals;

namespace {

// Responses up to this size are copied behind the head into the connection's output and sent
// with other pipelined responses; larger bodies are written straight from the caller's bytes.
constexpr std::size_t kCopyBodyLimit = 16 * 1024;
// Corked output past this size is written out without waiting for the end of the batch.
constexpr std::size_t kFlushThreshold = 64 * 1024;
constexpr std::size_t kInitialReadBuffer = 4096;
constexpr std::size_t kMinReadSpace = 2048;
// Content-Length bodies: reserved up front up to this (address space, not yet memory), and
// received in steps of kBodyChunk, each committed only as its bytes arrive.
constexpr std::size_t kEagerBodyReserve = 1 << 20;
constexpr std::size_t kBodyChunk = 64 * 1024;
// After an error response: how long and how much to drain before closing, so that the client
// reads the response instead of a reset caused by its unread request bytes.
constexpr std::int64_t kLingerMs = 1000;
constexpr std::size_t kLingerBytes = 1 << 20;

// The IMF-fixdate of the current second, formatted once per second per thread. `now` is the
// loop's cached time: the wall clock is read only when the second changes, not per response.
std::string_view httpDate(Clock::time_point now) {
  thread_local Clock::time_point nextSecond{};
  thread_local char text[32];
  thread_local std::size_t length = 0;
  if (now >= nextSecond) {
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    std::tm utc{};
    ::gmtime_r(&wall.tv_sec, &utc);
    length = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    nextSecond = now + std::chrono::nanoseconds(1'000'000'000 - wall.tv_nsec);
  }
  return {text, length};
}

void appendNumber(std::string& out, std::uint64_t value) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  // Pointer and length, not an iterator pair: that overload builds a temporary string
  // (~80 instructions per response, callgrind).
  out.append(digits, static_cast<std::size_t>(end - digits));
}

// "HTTP/1.1 200 OK\r\n": for every code 100..599 from a table built once, instead of formatting
// a number and searching the reason table per response (~140 instructions); other codes are
// formatted into `scratch`.
std::string_view statusLine(HttpCode code, std::string& scratch) {
  constexpr int kFirst = 100, kLast = 599;
  if (code.value < kFirst || code.value > kLast) {
    scratch = "HTTP/1.1 ";
    appendNumber(scratch, static_cast<std::uint64_t>(code.value));
    scratch += ' ';
    scratch += reasonPhrase(code);
    scratch += "\r\n";
    return scratch;
  }
  static const auto lines = [] {  // immutable once built: shared by every thread
    std::vector<std::string> table;
    for (int value = kFirst; value <= kLast; ++value) {
      std::string line = "HTTP/1.1 " + std::to_string(value) + " ";
      line += reasonPhrase(HttpCode{value});
      table.push_back(line + "\r\n");
    }
    return table;
  }();
  return lines[static_cast<std::size_t>(code.value - kFirst)];
}

// Fills `url` from an origin-form target ("/path?query"), which is a path and a query, never
// an authority: "//a" is the path "//a". Cheaper than the general parseUri, and more exact here.
void fillOriginForm(std::string_view target, Uri& url) {
  url.scheme.clear();
  url.username.clear();
  url.password.clear();
  url.hostname.clear();
  url.port.clear();
  url.opaque = false;
  url.isIpv6 = false;
  auto hash = target.find('#');
  detail::assignIfChanged(
      url.anchor, hash == std::string_view::npos ? std::string_view{} : target.substr(hash + 1));
  target = target.substr(0, hash);
  auto question = target.find('?');
  detail::assignIfChanged(url.query, question == std::string_view::npos
                                         ? std::string_view{}
                                         : target.substr(question + 1));
  detail::assignIfChanged(url.path, target.substr(0, question));
}

// The parser's limits from the server's settings.
detail::ParserLimits limitsFrom(const ServerSettings& settings) {
  detail::ParserLimits limits;
  limits.maxRequestLine = settings.maxRequestLine;
  limits.maxHeaderBytes = settings.maxHeaderBytes;
  limits.maxHeaderCount = std::min<std::size_t>(settings.maxHeaders, headerLimit);
  limits.maxBody = settings.maxBody;
  return limits;
}

// A response header must not smuggle a line break or a NUL into the head.
void checkHeaderText(std::string_view text, const char* what) {
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') {
      throw ValueError(std::string("response header ") + what + " contains CR, LF or NUL: '" +
                       std::string(text.substr(0, 64)) + "'");
    }
  }
}

bool hasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (equalsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// One-page blocks for receive buffers, from mmap'd slabs kept per thread. A released block
// is madvise'd away: an idle connection's buffer then costs no resident memory at all (from
// the malloc heap, freed 4 KiB chunks mostly stay resident: 6.9 KiB per idle connection).
class PagePool {
 public:
  static constexpr std::size_t kPage = 4096, kSlabPages = 64, kMaxResidentFree = 256;
  PagePool() = default;
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;
  ~PagePool() {
    for (void* slab : slabs_) ::munmap(slab, kPage * kSlabPages);
  }
  static PagePool& local() {
    thread_local PagePool pool;
    return pool;
  }
  char* take() {
    if (free_.empty()) {
      void* slab = ::mmap(nullptr, kPage * kSlabPages, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (slab == MAP_FAILED) throw std::bad_alloc();
      slabs_.push_back(slab);
      free_.reserve(slabs_.size() * kSlabPages);  // room for every page: give() never allocates
      for (std::size_t i = kSlabPages; i-- > 0;)
        free_.push_back(static_cast<char*>(slab) + i * kPage);
    }
    char* page = free_.back();
    free_.pop_back();
    return page;
  }
  // `resident`: the page holds data worth keeping in memory (a reuse soon); else it is dropped.
  void give(char* page, bool resident) noexcept {
    // Past kMaxResidentFree free pages, even a reusable one is dropped: a burst of
    // connections must not stay resident for the life of the thread.
    if (!resident || free_.size() >= kMaxResidentFree) ::madvise(page, kPage, MADV_DONTNEED);
    free_.push_back(page);  // within the capacity reserved in take()
  }

 private:
  std::vector<void*> slabs_;
  std::vector<char*> free_;
};

// A connection's receive buffer: one pooled page, or a heap block once a request needs more.
class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { release(true); }

  char* data() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }
  // Grows to at least `size` bytes, keeping the first `keep`.
  void grow(std::size_t size, std::size_t keep) {
    char* bigger;
    std::size_t capacity;
    if (size <= PagePool::kPage) {
      bigger = PagePool::local().take();
      capacity = PagePool::kPage;
    } else {
      capacity = (size + PagePool::kPage - 1) / PagePool::kPage * PagePool::kPage;
      bigger = static_cast<char*>(std::malloc(capacity));
      if (!bigger) throw std::bad_alloc();
    }
    if (keep > 0) std::memcpy(bigger, data_, keep);
    release(true);
    data_ = bigger;
    capacity_ = capacity;
  }
  // Frees the buffer; `resident` keeps a pooled page's memory for the next connection.
  void release(bool resident) noexcept {
    if (!data_) return;
    if (capacity_ == PagePool::kPage) {
      PagePool::local().give(data_, resident);
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  char* data_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace

namespace detail {

struct ConnectionSet;

// A keep-alive connection idle for ServerSettings::idleRelease, reduced to what it takes to
// wait for its next request: no coroutine frame, no Connection, no buffer, no socket state
// (104 bytes, from pooled pages: 1 950 bytes per idle connection before). The dispatcher calls
// it back on readiness; the connection is then made again.
struct ParkedConnection : IoWait, TimerNode {
  ConnectionSet* set = nullptr;  // null once the set has let go of it (the server closed)
  ParkedConnection* previous = nullptr;
  ParkedConnection* next = nullptr;
  std::shared_ptr<const RequestCallback> callback;
  int fd = -1;
  int domain = AF_INET;

  // The dispatcher's callback: a request begins, the client left, or the wait was cancelled.
  static void onReadable(IoWait& wait);
  // The read deadline passed while parked: a silent close, as for any idle connection.
  static void onDeadline(TimerNode& timer);
};

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

// The connections a server has started, so that closing the server can end them, and the
// parked ones.
struct ConnectionSet : std::enable_shared_from_this<ConnectionSet> {
  ServerSettings settings;
  std::vector<Connection*> live;  // each connection knows its index: O(1) removal
  ParkedConnection* parked = nullptr;
  std::size_t parkedCount = 0;
  // While there are connections, every idleRelease the idle ones are parked.
  struct Sweeper : TimerNode {
    ConnectionSet* set = nullptr;
  } sweeper;
  Dispatcher* loop = nullptr;

  explicit ConnectionSet(const ServerSettings& serverSettings);
  ~ConnectionSet();
  ConnectionSet(const ConnectionSet&) = delete;
  ConnectionSet& operator=(const ConnectionSet&) = delete;
  void add(Connection* connection);
  void remove(Connection* connection) noexcept;
  void sweep();
  // Takes over `fd` (open, registered) of an idle connection about to end.
  void park(int fd, int domain, std::shared_ptr<const RequestCallback> callback,
            const TimerNode* deadline) noexcept;
  void unlink(ParkedConnection& record) noexcept;
  // Makes the connection again, with the first bytes of its next request.
  void unpark(ParkedConnection& record, std::string_view received);
  // Closes every parked connection (their callbacks finish the job on the next turn).
  void closeParked() noexcept;
};

// One client connection: reads requests, calls the callback, writes responses, in order.
// States: reading a request (idle when no byte of the next one has come), handling it,
// closing. A server's close() moves an idle connection to closing at once, a busy one after
// its response.
class Connection {
 public:
  Connection(AsyncSocket client, std::string address, const ServerSettings& settings,
             std::shared_ptr<const RequestCallback> callback,
             std::shared_ptr<ConnectionSet> siblings, std::string_view received = {})
      : socket_(SocketAccess::state(client)),
        callback_(std::move(callback)),
        siblings_(std::move(siblings)),
        limits_(limitsFrom(settings)),
        decoder_(limits_) {
    readTimeout_ = settings.readTimeout;
    socket_->writeTimeoutMs = settings.writeTimeout;
    deadline_.owner = this;
    deadline_.fire = [](TimerNode& node) { static_cast<Deadline&>(node).owner->readTimedOut(); };
    request_.client = std::move(client);
    request_.hostname = std::move(address);
    request_.connection_ = this;
    buffer_.grow(std::max(kInitialReadBuffer, received.size()), 0);
    if (!received.empty()) std::memcpy(buffer_.data(), received.data(), received.size());
    end_ = received.size();
    siblings_->add(this);  // last: a constructor that throws leaves no dangling entry
  }

  ~Connection() {
    socket_->loop->cancelTimer(deadline_);
    siblings_->remove(this);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Serves requests until the peer leaves, an error response ends the connection, a request
  // asks to close, or the server closes. Never throws.
  Future<void> run(std::unique_ptr<Connection> self);

  // Starts parking a connection idle since `cutoff` or longer: its pending read is cancelled,
  // and run() hands the descriptor to a ParkedConnection and ends. True if it will.
  bool parkIfIdleSince(Clock::time_point cutoff) noexcept {
    if (!idle_ || parking_ || closing_ || timedOut_ || idleSince_ > cutoff || socket_->fd < 0 ||
        socket_->sendInFlight || !socket_->pendingOutput.empty() || socket_->buffered() > 0) {
      return false;
    }
    parking_ = true;
    socket_->loop->cancelWaits(socket_->fd);
    return true;
  }

  // The server is closing: close now if idle, else after the response in progress.
  void shutdown() noexcept {
    closing_ = true;
    if (idle_) socket_->close();  // the pending read ends with SocketClosedError
  }

  Future<void> respond(HttpCode code, std::string_view content, const HttpHeaders& headers);
  Future<void> sendHeaders(const HttpHeaders& headers);

 private:
  std::string_view unparsed() const noexcept { return {buffer_.data() + begin_, end_ - begin_}; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Everything written or queued on the socket so far: a change means the handler answered.
  std::uint64_t outputMark() const noexcept {
    return socket_->bytesSent + socket_->pendingOutput.size();
  }

  // The read deadline: armed when the server starts waiting for a request, disarmed once the
  // request (head and body) is in. It aborts the pending read; run() then answers.
  void armDeadline() {
    if (readTimeout_ <= 0 || deadline_.heapIndex != TimerNode::kNotQueued) return;
    deadline_.deadline = socket_->loop->now() + std::chrono::milliseconds(readTimeout_);
    socket_->loop->addTimer(deadline_);
  }
  void disarmDeadline() noexcept { socket_->loop->cancelTimer(deadline_); }
  // Arms the read deadline at `when` (a parked connection's, carried over).
  void armDeadlineAt(Clock::time_point when) {
    deadline_.deadline = when;
    socket_->loop->addTimer(deadline_);
  }
  void readTimedOut() noexcept {
    timedOut_ = true;
    if (socket_->fd >= 0) socket_->loop->cancelWaits(socket_->fd);
  }

  std::span<char> readSpace();
  void park() noexcept;
  Future<bool> readMore();
  Future<void> flush();
  Future<void> sendError(HttpCode code, std::string_view reason);
  Future<void> lingerAndClose();
  Future<void> sendContinue();
  bool fillRequest();
  Future<bool> readBody();
  Future<void> handlerFailed(std::exception_ptr failure, bool answered);

  std::shared_ptr<AsyncSocket::State> socket_;
  std::shared_ptr<const RequestCallback> callback_;
  std::shared_ptr<ConnectionSet> siblings_;
  ParserLimits limits_;
  RequestHead head_;
  ChunkedDecoder decoder_;
  Request request_;
  ReadBuffer buffer_;  // received bytes; [begin_, end_) not yet parsed
  std::size_t begin_ = 0, end_ = 0;
  std::size_t scanned_ = 0;  // bytes of a partial head already searched for its end
  // The exchange in progress.
  bool corked_ = true;  // responses wait for the end of the batch of pipelined requests
  bool keepAlive_ = true;
  bool headRequest_ = false;
  bool continueSent_ = false;
  bool closeAfterResponse_ = false;
  bool finalSent_ = false;        // a final (non-1xx) response was sent for this request
  std::size_t interimBytes_ = 0;  // bytes of 1xx responses, which do not answer a request
  bool idle_ = false;             // waiting for the first byte of a request
  bool parking_ = false;          // idle long enough: its wait is cancelled to park it
  std::size_t liveIndex_ = 0;     // in siblings_->live
  friend struct ConnectionSet;
  Clock::time_point idleSince_;
  bool closing_ = false;  // the server is closing: no request after the current one
  bool readingBody_ = false;
  bool timedOut_ = false;
  struct Deadline : TimerNode {
    Connection* owner = nullptr;
  };
  Deadline deadline_;
  std::int64_t readTimeout_ = 0;
};

constexpr auto kWorkerDrain = std::chrono::seconds(5);
// Parking this many connections at once frees enough heap (~1.5 KiB each) to trim it.
constexpr std::size_t kTrimAfterParking = 256;

ConnectionSet::ConnectionSet(const ServerSettings& serverSettings) : settings(serverSettings) {
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
                         const TimerNode* deadline) noexcept {
  ParkedConnection* record = nullptr;
  try {
    record = ParkedPool::local().make();
    record->fire = &ParkedConnection::onDeadline;
    record->deadline = deadline ? deadline->deadline : Clock::time_point::max();
    if (deadline) loop->addTimer(*record);
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
  auto connection = std::make_unique<Connection>(std::move(client), std::move(address), settings,
                                                 std::move(callback), shared_from_this(), received);
  Connection& c = *connection;
  // The read deadline runs on from when the connection began to wait, not from its waking.
  if (record.deadline != Clock::time_point::max()) c.armDeadlineAt(record.deadline);
  asyncCheck(c.run(std::move(connection)));
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

// The free tail of the read buffer, made room for by compacting or growing it.
std::span<char> Connection::readSpace() {
  if (end_ == buffer_.capacity()) {
    if (begin_ > 0) {  // compact: parsed bytes are gone, views into them were copied
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.capacity() - end_ < kMinReadSpace) {
      buffer_.grow(std::max(buffer_.capacity() * 2, kInitialReadBuffer), end_);
    }
  }
  return {buffer_.data() + end_, buffer_.capacity() - end_};
}

// Hands the socket to a ParkedConnection; the caller (run) then ends, freeing the rest.
void Connection::park() noexcept {
  bool armed = deadline_.heapIndex != TimerNode::kNotQueued;
  int fd = SocketAccess::detachDescriptor(*socket_);
  siblings_->park(fd, socket_->domain, callback_, armed ? &deadline_ : nullptr);
  disarmDeadline();
  buffer_.release(false);
}

// Receives more into the buffer (for chunked bodies); false at end of stream.
Future<bool> Connection::readMore() {
  std::size_t n = co_await receiveRaw(socket_, readSpace(), "recv");
  end_ += n;
  co_return n > 0;
}

// Writes the corked output; a completed Future when there is none (no coroutine frame).
Future<void> Connection::flush() {
  if (socket_->pendingOutput.empty()) return {};
  return sendAll(socket_, {}, "send");
}

Future<void> Connection::sendError(HttpCode code, std::string_view reason) {
  std::string& out = socket_->pendingOutput;
  std::string scratch;
  out += statusLine(code, scratch);
  std::string_view text = reason.empty() ? reasonPhrase(code) : reason;
  out += "Date: ";
  out += httpDate(socket_->loop->now());
  out += "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ";
  appendNumber(out, text.size() + 1);
  out += "\r\nConnection: close\r\n\r\n";
  out += text;
  out += '\n';
  co_await flush();
  co_await lingerAndClose();
}

// Lingering close: stop sending, then drain what the client still sends for a while, so that
// closing with unread bytes does not reset the connection before it reads the response.
Future<void> Connection::lingerAndClose() {
  ::shutdown(socket_->fd, SHUT_WR);
  auto drain = [](std::shared_ptr<AsyncSocket::State> s) -> Future<void> {
    char sink[4096];
    std::size_t total = 0;
    while (total < kLingerBytes) {
      std::size_t n = co_await receiveRaw(s, sink, "recv");
      if (n == 0) break;
      total += n;
    }
  };
  auto draining = drain(socket_);
  co_await withTimeout(draining, kLingerMs);
  socket_->close();  // a drain still pending ends with SocketClosedError, which it drops
  try {
    co_await draining;
  } catch (const OSError&) {
  }
}

Future<void> Connection::sendContinue() {
  continueSent_ = true;
  socket_->pendingOutput += "HTTP/1.1 100 Continue\r\n\r\n";
  co_await flush();
}

// Copies the parsed head into the Request; false (after answering 400) if the target is bad.
bool Connection::fillRequest() {
  Request& r = request_;
  r.reqMethod = head_.method;
  assignIfChanged(r.protocol.orig, head_.version);
  r.protocol.major = head_.versionMajor;
  r.protocol.minor = head_.versionMinor;
  assignIfChanged(r.target, head_.target);
  r.headers.clear();
  for (const auto& field : head_.headers) r.headers.add(field.name, field.value);
  r.body.clear();
  try {
    if (head_.method == HttpConnect) {  // authority-form: host:port, which is no URI
      r.url = Uri{};
      auto colon = head_.target.rfind(':');
      r.url.hostname.assign(head_.target.substr(0, colon));
      r.url.port.assign(head_.target.substr(colon + 1));
    } else if (head_.target.front() == '/') {
      fillOriginForm(head_.target, r.url);
    } else {
      parseUri(head_.target, r.url);  // absolute-form, or "*"
    }
  } catch (const UriParseError&) {
    return false;
  }
  keepAlive_ = head_.keepAlive;
  headRequest_ = head_.method == HttpHead;
  continueSent_ = false;
  closeAfterResponse_ = false;
  finalSent_ = false;
  interimBytes_ = 0;
  return true;
}

Future<bool> Connection::readBody() {
  std::string& body = request_.body;
  if (head_.framing == BodyFraming::contentLength) {
    auto length = static_cast<std::size_t>(head_.contentLength);
    std::size_t buffered = std::min(length, end_ - begin_);
    body.assign(buffer_.data() + begin_, buffered);
    consume(buffered);
    if (buffered == length) co_return true;
    co_await flush();  // answers to earlier pipelined requests do not wait for this body
    if (head_.expectContinue && !continueSent_) co_await sendContinue();
    // Receive the rest straight into the body: the only copy in user space is the kernel's.
    // Memory is committed as bytes arrive (a reservation is address space until written), so
    // a client announcing 8 MiB and sending nothing costs little.
    body.reserve(std::min(length, kEagerBodyReserve));
    std::size_t have = buffered;
    while (have < length) {
      std::size_t chunk = std::min(length - have, kBodyChunk);
      body.resize(have + chunk);
      std::size_t n = co_await receiveRaw(socket_, std::span(body.data() + have, chunk), "recv");
      body.resize(have + n);
      if (n == 0) co_return false;  // the client left mid-body
      have += n;
    }
    co_return true;
  }
  if (head_.framing == BodyFraming::chunked) {
    decoder_.reset();
    for (;;) {
      ParseResult r = decoder_.decode(unparsed(), body);
      consume(r.consumed);
      if (r.status == ParseStatus::complete) co_return true;
      if (r.status == ParseStatus::error) {
        co_await sendError(r.error, r.reason);
        co_return false;
      }
      co_await flush();
      if (head_.expectContinue && !continueSent_) co_await sendContinue();
      if (!co_await readMore()) co_return false;
    }
  }
  co_return true;
}

// After a handler threw: log it, answer 500 if it had sent nothing, and close.
Future<void> Connection::handlerFailed(std::exception_ptr failure, bool answered) {
  reportException("request handler failed", failure);
  if (!answered) {
    co_await sendError(Http500, "Internal Server Error");
  } else {
    co_await flush();
    socket_->close();
  }
}

// The common path runs here without nested coroutines: reads, parsing and the handler call
// cost no coroutine frame of their own (about ten per request before, measured with callgrind).
Future<void> Connection::run(std::unique_ptr<Connection> self) {
  // `self` owns this object from the frame: the connection is one frame plus this object,
  // not a second coroutine frame around it (220 bytes less per idle connection).
  (void)self;
  try {
    for (;;) {
      ParseResult r = parseRequestHead(unparsed(), scanned_, limits_, head_);
      if (r.status == ParseStatus::partial) {
        scanned_ = end_ - begin_;
        co_await flush();  // one write for the whole batch of responses
        idle_ = begin_ == end_;
        if (idle_) idleSince_ = socket_->loop->now();
        if (idle_ && closing_) break;
        armDeadline();
        std::ptrdiff_t n;
        while ((n = tryReceive(*socket_, readSpace(), "recv")) < 0) {
          if (co_await readableOrCancelled(*socket_)) continue;
          if (!parking_ || closing_ || timedOut_ || socket_->fd < 0) {
            throw SocketClosedError("recv");
          }
          parking_ = false;
          // Parked only while drained; bytes that came meanwhile are read here instead.
          if (!socket_->loop->mayRead(socket_->fd)) {
            park();
            co_return;
          }
        }
        idle_ = false;
        if (n == 0) break;  // the client closed
        end_ += static_cast<std::size_t>(n);
        continue;
      }
      scanned_ = 0;
      if (r.status == ParseStatus::error) {
        disarmDeadline();
        co_await sendError(r.error, r.reason);
        co_return;
      }
      bool targetOk = fillRequest();
      consume(r.consumed);
      if (!targetOk) {
        disarmDeadline();
        co_await sendError(Http400, "Invalid request target");
        co_return;
      }
      if (head_.framing != BodyFraming::none) {
        armDeadline();  // also for a head that was already buffered (pipelined)
        readingBody_ = true;
        bool bodyOk = co_await readBody();
        readingBody_ = false;
        if (!bodyOk) break;
      }
      disarmDeadline();  // the handler is never cut short by the read deadline

      // The handler. Its answers stay corked while it runs without waiting; if it waits, what
      // it already answered is written first, so that it does not wait with it.
      std::uint64_t markBefore = outputMark();
      std::exception_ptr failure;
      bool peerGone = false;
      corked_ = true;
      // `handling` outlives everything below: the handler holds `request_` until it is done,
      // even when the connection fails under it.
      Future<void> handling;
      try {
        handling = (*callback_)(request_);
      } catch (...) {
        failure = std::current_exception();
      }
      if (!failure && !handling.finished()) {
        corked_ = false;
        try {
          co_await flush();
        } catch (const OSError&) {
          peerGone = true;  // the handler still runs to its end; its writes will fail
        }
      }
      if (!failure) {
        try {
          co_await handling;
        } catch (...) {
          failure = std::current_exception();
        }
      }
      corked_ = true;
      if (peerGone || socket_->fd < 0) break;  // closed, by the peer or by the handler
      bool answered = finalSent_ || outputMark() - markBefore > interimBytes_;
      if (failure) {
        co_await handlerFailed(failure, answered);
        co_return;
      }
      if (!answered) {
        // Documented choice: a handler that answers nothing gets a 500 on its behalf, so that
        // no client waits forever and the mistake shows.
        co_await respond(Http500, "The request handler sent no response.\n", HttpHeaders());
      }
      if (!keepAlive_ || closeAfterResponse_ || closing_) {
        co_await flush();
        // The client sent more after a request that ends the connection: closing with bytes
        // unread would reset it, and it could lose the response. Linger then, as nginx does;
        // otherwise close at once (no extra system calls per connection).
        if (begin_ < end_ || socket_->loop->mayRead(socket_->fd)) co_await lingerAndClose();
        break;
      }
    }
    co_await flush();
  } catch (const OSError&) {
    // The peer vanished mid-exchange, or the read deadline aborted a read: either way, this
    // connection only.
  } catch (const std::exception&) {
    // A second reader on the socket (a handler's own detached read), or memory exhausted:
    // reported, and the connection still closes below.
    reportException("connection failed", std::current_exception());
  }
  disarmDeadline();
  if (timedOut_ && socket_->fd >= 0) {
    // 408 once a request line has come (a request is arriving, too slowly); before that, a
    // silent close, as for an idle keep-alive connection.
    bool requestStarted = readingBody_ || unparsed().find('\n') != std::string_view::npos;
    if (requestStarted) {
      try {
        co_await sendError(Http408, "Request Timeout");
      } catch (const std::exception&) {
        // Nothing more to do for this connection: it closes below.
      }
    }
  }
  socket_->close();
}

// Not a coroutine: in the common (corked) case it appends to the output and returns a
// completed Future, costing no coroutine frame.
Future<void> Connection::respond(HttpCode code, std::string_view content,
                                 const HttpHeaders& headers) {
  std::size_t headerBytes = 0;
  for (const auto& [key, value] : headers) {
    checkHeaderText(key, "name");
    checkHeaderText(value, "value");
    headerBytes += key.size() + value.size() + 4;  // "key: value\r\n"
  }
  if (!is1xx(code)) {
    if (finalSent_) {
      throw ValueError("respond: this request was already answered (" + to_string(code) +
                       " would be taken for the next request's response)");
    }
    finalSent_ = true;
  }
  bool given = headers.len() > 0;  // most responses give no headers: skip the lookups
  // RFC 9110: no body in 1xx, 204 and 304 responses, nor in any response to HEAD, which
  // still announces the length a GET would get.
  bool bodyless = is1xx(code) || code == Http204 || code == Http304;
  std::string_view body = bodyless || headRequest_ ? std::string_view{} : content;
  bool copyBody = body.size() <= kCopyBodyLimit;
  std::string scratch;
  std::string_view status = statusLine(code, scratch);

  // Room for the longest head this can write (and the body, when copied) is made at once and
  // trimmed after: one size check, not one per piece (~530 -> ~385 instructions, callgrind).
  constexpr std::size_t kMostOfTheRest = ("Date: \r\n"sv).size() + 32 +                // date
                                         ("Content-Length: \r\n"sv).size() + 20 +      // length
                                         ("Connection: keep-alive\r\n\r\n"sv).size();  // end
  std::string& out = socket_->pendingOutput;
  const std::size_t startSize = out.size();
  out.resize(startSize + status.size() + headerBytes + kMostOfTheRest +
             (copyBody ? body.size() : 0));
  char* const start = out.data() + startSize;
  char* p = start;
  auto put = [&p](std::string_view text) {
    if (!text.empty()) std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  put(status);
  if (!given || !headers.hasKey("Date")) {
    put("Date: "sv);
    put(httpDate(socket_->loop->now()));
    put("\r\n"sv);
  }
  for (const auto& [key, value] : headers) {
    put(key);
    put(": "sv);
    put(value);
    put("\r\n"sv);
  }
  // A length unless the handler framed the body itself (Content-Length or Transfer-Encoding).
  if (!bodyless &&
      (!given || (!headers.hasKey("Content-Length") && !headers.hasKey("Transfer-Encoding")))) {
    put("Content-Length: "sv);
    p = std::to_chars(p, p + 20, content.size()).ptr;
    put("\r\n"sv);
  }
  if (given && headers.hasKey("Connection")) {
    for (const auto& value : headers["Connection"]) {
      if (hasToken(value, "close")) closeAfterResponse_ = true;
    }
  } else if (!keepAlive_ || closing_) {
    put("Connection: close\r\n"sv);
  } else if (request_.protocol.minor == 0) {
    put("Connection: keep-alive\r\n"sv);  // HTTP/1.0 keeps the connection only when told
  }
  put("\r\n"sv);
  if (is1xx(code)) interimBytes_ += static_cast<std::size_t>(p - start);
  if (copyBody) put(body);
  out.resize(static_cast<std::size_t>(p - out.data()));
  if (!copyBody) return sendAll(socket_, body, "send");  // head and body leave in one send
  if (!corked_ || out.size() > kFlushThreshold) return flush();
  return {};
}

Future<void> Connection::sendHeaders(const HttpHeaders& headers) {
  std::string& out = socket_->pendingOutput;
  for (const auto& [key, value] : headers) {
    checkHeaderText(key, "name");
    checkHeaderText(value, "value");
    out += key;
    out += ": "sv;
    out += value;
    out += "\r\n"sv;
  }
  return corked_ ? Future<void>() : flush();
}

namespace {
Future<void> processClient(AsyncSocket client, std::string address, ServerSettings settings,
                           std::shared_ptr<const RequestCallback> callback,
                           std::shared_ptr<ConnectionSet> siblings) {
  auto connection = std::make_unique<Connection>(std::move(client), std::move(address), settings,
                                                 std::move(callback), std::move(siblings));
  Connection& c = *connection;
  return c.run(std::move(connection));
}
}  // namespace

}  // namespace detail

// --- Request ------------------------------------------------------------------------------------

Future<void> Request::respond(HttpCode code, std::string_view content, const HttpHeaders& headers) {
  if (!connection_) throw ValueError("respond: this Request belongs to no connection");
  return connection_->respond(code, content, headers);
}

Future<void> Request::sendHeaders(const HttpHeaders& headers) {
  if (!connection_) throw ValueError("sendHeaders: this Request belongs to no connection");
  return connection_->sendHeaders(headers);
}

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
void startConnection(std::string address, AsyncSocket client, const ServerSettings& settings,
                     const std::shared_ptr<const RequestCallback>& callback,
                     const std::shared_ptr<detail::ConnectionSet>& connections) {
  asyncCheck(detail::processClient(std::move(client), std::move(address), settings, callback,
                                   connections));
}
}  // namespace

Future<void> AsyncHttpServer::acceptRequest(RequestCallback callback) {
  auto self = shared_from_this();
  auto shared = std::make_shared<const RequestCallback>(std::move(callback));
  auto [address, client] = co_await socket_.acceptAddr();
  startConnection(std::move(address), std::move(client), settings_, shared, connections_);
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
      startConnection(std::move(peer), std::move(client), settings_, shared, connections_);
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
        auto until = Clock::now() + detail::kWorkerDrain;
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
  // A copy: a connection leaves the set when its coroutine ends, which must not invalidate
  // this loop should it happen inside it.
  auto live = connections_->live;
  for (detail::Connection* connection : live) connection->shutdown();
  connections_->closeParked();
}

std::size_t AsyncHttpServer::parkedConnections() const noexcept {
  return connections_->parkedCount;
}

}  // namespace asynchttp
