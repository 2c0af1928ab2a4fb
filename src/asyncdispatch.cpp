#include <asynchttp/asyncdispatch.hpp>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <new>

namespace asynchttp {

SocketClosedError::SocketClosedError(const std::string& what) : OSError(what, ECANCELED) {}

namespace detail {

void reportException(std::string_view context, std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asynchttp: %.*s: %s\n", static_cast<int>(context.size()), context.data(),
                 e.what());
  } catch (...) {
    std::fprintf(stderr, "asynchttp: %.*s: a non-standard exception\n",
                 static_cast<int>(context.size()), context.data());
  }
}

void reportDetachedException(std::exception_ptr error) noexcept {
  reportException("unhandled exception in a detached future", error);
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kPoolFrames = false;
#else
constexpr bool kPoolFrames = true;
#endif

// Free lists of frame memory by 64-byte size class, linked through the free blocks themselves
// (an earlier std::vector-based pool cost ~70 instructions per frame; this costs a few).
class FramePool {
 public:
  static constexpr std::size_t kGranule = 64, kClasses = 32, kMaxCached = 1024;
  ~FramePool() {
    for (FreeBlock* head : heads_) {
      while (head) ::operator delete(std::exchange(head, head->next));
    }
  }
  void* allocate(std::size_t size) {
    std::size_t c = sizeClass(size);
    if (c >= kClasses) return ::operator new(size);
    if (FreeBlock* block = heads_[c]) {
      heads_[c] = block->next;
      --counts_[c];
      return block;
    }
    return ::operator new(c* kGranule);
  }
  void deallocate(void* memory, std::size_t size) noexcept {
    std::size_t c = sizeClass(size);
    if (c >= kClasses || counts_[c] >= kMaxCached) {
      ::operator delete(memory);
      return;
    }
    heads_[c] = new (memory) FreeBlock{heads_[c]};
    ++counts_[c];
  }

 private:
  struct FreeBlock {
    FreeBlock* next;
  };
  static std::size_t sizeClass(std::size_t size) noexcept {
    return (size + kGranule - 1) / kGranule;
  }
  std::array<FreeBlock*, kClasses> heads_{};
  std::array<std::uint32_t, kClasses> counts_{};
};

FramePool& framePool() {
  thread_local FramePool pool;
  return pool;
}

}  // namespace

void* allocateFrame(std::size_t size) {
  if constexpr (!kPoolFrames) return ::operator new(size);
  return framePool().allocate(size);
}

void deallocateFrame(void* frame, std::size_t size) noexcept {
  if constexpr (!kPoolFrames) return ::operator delete(frame);
  framePool().deallocate(frame, size);
}

}  // namespace detail

// Work posted from other threads: a locked queue and an eventfd that wakes the loop. Shared with
// the posting threads, so that a post after the loop is gone is dropped instead of crashing.
struct Dispatcher::PostQueue {
  std::mutex mutex;
  std::vector<std::function<void()>> items;
  int eventFd = -1;
  bool open = true;
};

Dispatcher::Dispatcher() : posted_(std::make_shared<PostQueue>()), now_(Clock::now()) {
  epollFd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epollFd_ < 0) throw OSError("epoll_create1", errno);
  posted_->eventFd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (posted_->eventFd < 0) {
    int error = errno;
    ::close(epollFd_);
    throw OSError("eventfd", error);
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = posted_->eventFd;
  ::epoll_ctl(epollFd_, EPOLL_CTL_ADD, posted_->eventFd, &event);
}

namespace {
// Set when this thread's global loop is destroyed (thread exit); never destroyed itself.
thread_local bool globalLoopGone = false;
}  // namespace

bool detail::globalDispatcherGone() noexcept {
  return globalLoopGone;
}

Dispatcher::~Dispatcher() {
  {
    std::lock_guard lock(posted_->mutex);
    posted_->open = false;
    posted_->items.clear();
    ::close(posted_->eventFd);
  }
  ::close(epollFd_);
}

Dispatcher::Descriptor& Dispatcher::slot(int fd) {
  if (static_cast<std::size_t>(fd) >= descriptors_.size()) {
    descriptors_.resize(static_cast<std::size_t>(fd) * 2 + 16);
  }
  return descriptors_[static_cast<std::size_t>(fd)];
}

void Dispatcher::registerDescriptor(int fd) {
  Descriptor& d = slot(fd);
  if (d.registered) throw ValueError("descriptor " + std::to_string(fd) + " is already registered");
  epoll_event event{};
  // Registered once for both directions, edge-triggered: no epoll_ctl per operation. Every
  // operation tries its syscall first and waits only after EAGAIN, so no edge is missed.
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.fd = fd;
  if (::epoll_ctl(epollFd_, EPOLL_CTL_ADD, fd, &event) < 0) throw OSError("epoll_ctl", errno);
  d = Descriptor{};
  d.registered = true;
  ++activeDescriptors_;
}

void Dispatcher::unregisterDescriptor(int fd) noexcept {
  if (!isRegistered(fd)) return;
  ::epoll_ctl(epollFd_, EPOLL_CTL_DEL, fd, nullptr);
  unregisterClosing(fd);
}

void Dispatcher::unregisterClosing(int fd) noexcept {
  if (!isRegistered(fd)) return;
  cancelWaits(fd);
  descriptors_[static_cast<std::size_t>(fd)] = Descriptor{};
  --activeDescriptors_;
}

void Dispatcher::cancelWaits(int fd) noexcept {
  cancelWait(fd, &Descriptor::reader);
  cancelWait(fd, &Descriptor::writer);
}

void Dispatcher::cancelWrite(int fd) noexcept {
  cancelWait(fd, &Descriptor::writer);
}

void Dispatcher::cancelRead(int fd) noexcept {
  cancelWait(fd, &Descriptor::reader);
}

void Dispatcher::cancelWait(int fd, IoWait* Descriptor::*direction) noexcept {
  if (!isRegistered(fd)) return;
  // Resume the waiter on the next turn, not inline: the caller is mid-statement.
  if (IoWait* wait =
          std::exchange(descriptors_[static_cast<std::size_t>(fd)].*direction, nullptr)) {
    wait->cancelled = true;
    wakeSoon(*wait);
  }
}

void Dispatcher::wakeSoon(IoWait& wait) {
  if (wait.callback) {
    callbacks_.push_back([&wait] { wait.callback(wait); });  // fits std::function's own storage
  } else {
    ready_.push_back(wait.waiter);
  }
}

void Dispatcher::readDrained(int fd) noexcept {
  if (!isRegistered(fd)) return;
  Descriptor& d = descriptors_[static_cast<std::size_t>(fd)];
  if (!d.hungUp) d.readReady = false;
}

void Dispatcher::writeBlocked(int fd) noexcept {
  if (isRegistered(fd)) descriptors_[static_cast<std::size_t>(fd)].writeReady = false;
}

void Dispatcher::waitReadable(int fd, IoWait& wait) noexcept {
  addWait(fd, wait, &Descriptor::reader);
}

void Dispatcher::waitWritable(int fd, IoWait& wait) noexcept {
  addWait(fd, wait, &Descriptor::writer);
}

void Dispatcher::addWait(int fd, IoWait& wait, IoWait* Descriptor::*direction) noexcept {
  if (!isRegistered(fd)) {  // closed meanwhile: the wait ends at once, cancelled
    wait.cancelled = true;
    wakeSoon(wait);
    return;
  }
  descriptors_[static_cast<std::size_t>(fd)].*direction = &wait;
}

// --- Timers: a binary min-heap of intrusive nodes that know their own index ---------------------

bool Dispatcher::heapLess(std::size_t a, std::size_t b) const noexcept {
  const TimerNode& x = *timers_[a];
  const TimerNode& y = *timers_[b];
  return x.deadline < y.deadline || (x.deadline == y.deadline && x.sequence < y.sequence);
}

void Dispatcher::heapSwap(std::size_t a, std::size_t b) noexcept {
  std::swap(timers_[a], timers_[b]);
  timers_[a]->heapIndex = a;
  timers_[b]->heapIndex = b;
}

void Dispatcher::heapUp(std::size_t i) noexcept {
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (!heapLess(i, parent)) break;
    heapSwap(i, parent);
    i = parent;
  }
}

void Dispatcher::heapDown(std::size_t i) noexcept {
  for (;;) {
    std::size_t smallest = i, left = 2 * i + 1, right = left + 1;
    if (left < timers_.size() && heapLess(left, smallest)) smallest = left;
    if (right < timers_.size() && heapLess(right, smallest)) smallest = right;
    if (smallest == i) return;
    heapSwap(i, smallest);
    i = smallest;
  }
}

void Dispatcher::addTimer(TimerNode& timer) {
  if (timer.heapIndex != TimerNode::kNotQueued) cancelTimer(timer);
  timers_.push_back(&timer);  // first: if it throws, the timer is still plainly not queued
  timer.sequence = timerSequence_++;
  timer.heapIndex = timers_.size() - 1;
  heapUp(timer.heapIndex);
}

void Dispatcher::cancelTimer(TimerNode& timer) noexcept {
  std::size_t i = timer.heapIndex;
  if (i == TimerNode::kNotQueued) return;
  std::size_t last = timers_.size() - 1;
  if (i != last) {
    heapSwap(i, last);
    timers_.pop_back();
    heapDown(i);
    heapUp(i);
  } else {
    timers_.pop_back();
  }
  timer.heapIndex = TimerNode::kNotQueued;
}

void Dispatcher::runTimers() {
  // Only timers armed before this pass: one re-armed while it runs (sleepAsync(0) in a loop)
  // waits for the next turn instead of keeping this one going forever.
  const std::uint64_t armedBefore = timerSequence_;
  while (!timers_.empty() && timers_.front()->deadline <= now_ &&
         timers_.front()->sequence < armedBefore) {
    TimerNode& timer = *timers_.front();
    cancelTimer(timer);
    timer.fire(timer);  // may add or cancel timers, or resume a coroutine
  }
}

// --- The loop --------------------------------------------------------------------------------

void Dispatcher::post(std::function<void()> fn) {
  remote().post(std::move(fn));
}

void Dispatcher::Remote::post(std::function<void()> fn) const {
  auto& queue = queue_;
  std::lock_guard lock(queue->mutex);
  if (!queue->open) return;
  queue->items.push_back(std::move(fn));
  std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(queue->eventFd, &one, sizeof one);
}

bool Dispatcher::hasPendingOperations() const noexcept {
  return activeDescriptors_ > 0 || externalWaits_ > 0 || !timers_.empty() || !ready_.empty() ||
         !callbacks_.empty();
}

void Dispatcher::runReady() {
  // Swap out the batch so that work queued while it runs waits for the next turn.
  readyRunning_.swap(ready_);
  for (auto handle : readyRunning_) handle.resume();
  readyRunning_.clear();
  callbacksRunning_.swap(callbacks_);
  // A callback that throws is reported, not propagated: the batch's other callbacks still run
  // once each, and the batch is cleared (an exception out of here left it to run again).
  for (auto& fn : callbacksRunning_) {
    try {
      fn();
    } catch (...) {
      detail::reportException("a callSoon or post callback failed", std::current_exception());
    }
  }
  callbacksRunning_.clear();
}

int Dispatcher::waitTimeout(int timeoutMs) const noexcept {
  if (!ready_.empty() || !callbacks_.empty()) return 0;
  if (timers_.empty()) return timeoutMs;
  auto untilNext = std::chrono::ceil<std::chrono::milliseconds>(timers_.front()->deadline - now_);
  auto ms = std::max<std::int64_t>(0, untilNext.count());
  return timeoutMs < 0 ? static_cast<int>(std::min<std::int64_t>(ms, INT32_MAX))
                       : static_cast<int>(std::min<std::int64_t>(ms, timeoutMs));
}

void Dispatcher::poll(int timeoutMs) {
  if (polling_) {
    throw ValueError(
        "poll (or waitFor) called from inside the loop, by a callback or coroutine it runs: "
        "co_await instead");
  }
  struct Polling {
    bool& flag;
    explicit Polling(bool& f) : flag(f) { flag = true; }
    ~Polling() { flag = false; }
  } polling(polling_);
  if (!hasPendingOperations()) {
    std::lock_guard lock(posted_->mutex);
    if (posted_->items.empty()) {
      throw ValueError("No handles or timers registered in dispatcher.");
    }
  }
  // Wait (not at all when work is queued), handle events, run due timers, then the work that
  // all of that queued: whatever finishes here is seen by the caller as soon as poll returns.
  now_ = Clock::now();
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  int count = ::epoll_wait(epollFd_, events, kMaxEvents, waitTimeout(timeoutMs));
  if (count < 0 && errno != EINTR) throw OSError("epoll_wait", errno);
  now_ = Clock::now();
  for (int i = 0; i < count; ++i) handleEvent(events[i].data.fd, events[i].events);
  runTimers();
  runReady();
}

void Dispatcher::handleEvent(int fd, std::uint32_t flags) {
  if (fd == posted_->eventFd) {
    std::uint64_t value;
    [[maybe_unused]] auto read = ::read(fd, &value, sizeof value);
    std::vector<std::function<void()>> items;
    {
      std::lock_guard lock(posted_->mutex);
      items.swap(posted_->items);
    }
    for (auto& fn : items) callbacks_.push_back(std::move(fn));
    return;
  }
  // Look the slot up afresh for each direction: resuming a waiter may have closed this or
  // another descriptor. A stale event then finds an empty slot, or a new socket with the same
  // fd, whose waiter retries its system call and waits again: a spurious wake-up is harmless.
  constexpr std::uint32_t kReadable = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
  constexpr std::uint32_t kWritable = EPOLLOUT | EPOLLHUP | EPOLLERR;
  if ((flags & kReadable) && isRegistered(fd)) {
    Descriptor& d = descriptors_[static_cast<std::size_t>(fd)];
    d.readReady = true;
    if (flags & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) d.hungUp = true;
    if (IoWait* wait = std::exchange(d.reader, nullptr)) wake(*wait);
  }
  if ((flags & kWritable) && isRegistered(fd)) {
    Descriptor& d = descriptors_[static_cast<std::size_t>(fd)];
    d.writeReady = true;
    if (IoWait* wait = std::exchange(d.writer, nullptr)) wake(*wait);
  }
}

// --- Free functions on this thread's loop -----------------------------------------------------

Dispatcher& getGlobalDispatcher() {
  thread_local struct Global {
    Dispatcher loop;
    ~Global() { globalLoopGone = true; }  // before `loop` goes: objects outliving it can tell
  } global;
  return global.loop;
}

void poll(int timeoutMs) {
  getGlobalDispatcher().poll(timeoutMs);
}

void runForever() {
  auto& loop = getGlobalDispatcher();
  while (loop.hasPendingOperations()) loop.poll();
}

void callSoon(std::function<void()> fn) {
  getGlobalDispatcher().callSoon(std::move(fn));
}

int activeDescriptors() {
  return getGlobalDispatcher().activeDescriptors();
}

bool hasPendingOperations() {
  return getGlobalDispatcher().hasPendingOperations();
}

// --- Timers for coroutines ---------------------------------------------------------------------

namespace detail {

Clock::time_point deadlineAfter(Clock::time_point now, std::int64_t ms) noexcept {
  // Saturates: a huge timeout means "never", not an overflow.
  auto room = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now);
  if (ms >= room.count()) return Clock::time_point::max();
  return now + std::chrono::milliseconds(std::max<std::int64_t>(ms, 0));
}

TimerAwaiter::TimerAwaiter(std::int64_t ms) {
  deadline = deadlineAfter(Clock::now(), ms);  // fresh: the loop's time may be a turn old
  fire = [](TimerNode& node) { static_cast<TimerAwaiter&>(node).waiter.resume(); };
}

void TimerAwaiter::await_suspend(std::coroutine_handle<> h) {
  waiter = h;
  getGlobalDispatcher().addTimer(*this);
}

TimeoutAwaiter::TimeoutAwaiter(std::coroutine_handle<> watchedHandle, PromiseBase& promise,
                               std::int64_t ms)
    : watched(watchedHandle), watchedPromise(&promise) {
  deadline = deadlineAfter(Clock::now(), ms);  // fresh: the loop's time may be a turn old
  fire = [](TimerNode& node) {
    auto& self = static_cast<TimeoutAwaiter&>(node);
    self.timedOut = true;
    self.watchedPromise->continuation = {};  // the watched future no longer resumes us
    self.waiter.resume();
  };
}

void TimeoutAwaiter::await_suspend(std::coroutine_handle<> h) {
  if (watchedPromise->continuation) {
    throw ValueError("withTimeout: the future is already awaited by another coroutine");
  }
  waiter = h;
  watchedPromise->continuation = h;
  getGlobalDispatcher().addTimer(*this);
}

bool TimeoutAwaiter::await_resume() noexcept {
  if (!timedOut) {
    getGlobalDispatcher().cancelTimer(*this);
    watchedPromise->continuation = {};
  }
  return !timedOut;
}

}  // namespace detail

Future<void> sleepAsync(std::int64_t ms) {
  co_await detail::TimerAwaiter(ms);
}

}  // namespace asynchttp
