// asyncdispatch: the coroutine type Future<T> and the per-thread event loop (Nim's
// std/asyncdispatch), over epoll.
//
// A coroutine returning Future<T> starts at once, as a Nim async proc does, and runs until its
// first suspension. Awaiting chains resume each other by symmetric transfer, so they never grow
// the stack. Ownership: the Future owns the coroutine frame. Dropping a Future that has not
// finished detaches it: it runs on, frees its frame when done and reports an exception it ends
// with on stderr (as `asyncCheck` does).
#pragma once

#include <asynchttp/errors.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace asynchttp {

template <class T = void>
class Future;

/// A pending operation was aborted: its socket was closed, or its wait cancelled.
class SocketClosedError : public OSError {
 public:
  /// `what` names the operation that was pending.
  explicit SocketClosedError(const std::string& what);
};

namespace detail {

/// Writes "asynchttp: <context>: <what the exception says>" to stderr.
void reportException(std::string_view context, std::exception_ptr error) noexcept;
/// Writes "asynchttp: unhandled exception in a detached future: <what>" to stderr.
void reportDetachedException(std::exception_ptr error) noexcept;
/// True once this thread's global loop is being destroyed (thread or process exit): objects
/// destroyed after it, such as a server in a static variable, must not touch it.
bool globalDispatcherGone() noexcept;

/// Memory for a coroutine frame from this thread's recycling pool (plain operator new for large
/// frames, and under AddressSanitizer, so that it still sees every use after free).
void* allocateFrame(std::size_t size);
/// Returns a frame's memory to this thread's pool.
void deallocateFrame(void* frame, std::size_t size) noexcept;

/// What every Future's promise holds besides its value.
struct PromiseBase {
  // Frames come from a per-thread pool: a connection's coroutines are made and freed per
  // request, and the pool makes that free of malloc in the steady state.
  static void* operator new(std::size_t size) { return allocateFrame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept {
    deallocateFrame(frame, size);
  }

  std::coroutine_handle<> continuation;  // resumed when the coroutine finishes
  std::exception_ptr exception;
  bool detached = false;  // its Future is gone: the frame frees itself when done

  std::suspend_never initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      PromiseBase& promise = self.promise();
      if (promise.continuation) return promise.continuation;
      if (promise.detached) {
        if (promise.exception) reportDetachedException(promise.exception);
        self.destroy();
      }
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Future<T> get_return_object() noexcept;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
};

template <>
struct Promise<void> : PromiseBase {
  Future<void> get_return_object() noexcept;
  void return_void() noexcept {}
};

}  // namespace detail

/// The result of an asynchronous computation; `co_await` it for the value (or the exception).
template <class T>
class [[nodiscard]] Future {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  /// No coroutine. A `Future<void>{}` is an already completed future (as Nim's completed
  /// `newFuture`): awaiting it continues at once, at no cost. Any other `Future<T>{}` is
  /// invalid: awaiting or reading it throws ValueError.
  Future() noexcept = default;
  /// Takes over the frame of `other`.
  Future(Future&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  /// Takes over the frame of `other`, releasing this one's.
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      release();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;
  ~Future() { release(); }

  /// True once the coroutine has finished, with a value or an exception.
  bool finished() const noexcept { return !handle_ || handle_.done(); }
  /// True when finished with an exception.
  bool failed() const noexcept { return handle_ && handle_.done() && handle_.promise().exception; }
  /// True when this Future refers to a coroutine.
  bool valid() const noexcept { return static_cast<bool>(handle_); }

  /// The value of a finished Future, or its exception rethrown; ValueError if not finished.
  decltype(auto) read() & {
    checkReadable();
    if constexpr (!std::is_void_v<T>) return static_cast<T&>(*handle_.promise().value);
  }
  /// The value moved out of a finished Future, or its exception rethrown.
  decltype(auto) read() && {
    checkReadable();
    if constexpr (!std::is_void_v<T>) return T(std::move(*handle_.promise().value));
  }

  /// Awaits the Future; the result is moved out when the Future is a temporary.
  auto operator co_await() && noexcept { return Awaiter<true>{handle_}; }
  /// Awaits the Future; the result is a reference into it.
  auto operator co_await() & noexcept { return Awaiter<false>{handle_}; }

  /// The frame, for the runtime's own awaiters (withTimeout).
  Handle handle() const noexcept { return handle_; }

 private:
  friend struct detail::Promise<T>;
  explicit Future(Handle handle) noexcept : handle_(handle) {}

  void release() noexcept {
    if (!handle_) return;
    if (handle_.done()) {
      handle_.destroy();
    } else {
      handle_.promise().detached = true;
    }
    handle_ = {};
  }

  void checkReadable() const {
    if (!handle_) {
      if constexpr (std::is_void_v<T>) return;  // the completed Future<void>{}
      throw ValueError("Future has no coroutine");
    }
    if (!handle_.done()) throw ValueError("Future is not finished yet");
    if (handle_.promise().exception) std::rethrow_exception(handle_.promise().exception);
  }

  template <bool Move>
  struct Awaiter {
    Handle handle;
    bool await_ready() const noexcept { return !handle || handle.done(); }
    void await_suspend(std::coroutine_handle<> awaiting) const noexcept {
      handle.promise().continuation = awaiting;
    }
    decltype(auto) await_resume() const {
      if (!handle) {
        if constexpr (std::is_void_v<T>) {
          return;  // the completed Future<void>{}
        } else {
          throw ValueError("awaited a Future that has no coroutine");
        }
      }
      handle.promise().continuation = {};
      if (handle.promise().exception) std::rethrow_exception(handle.promise().exception);
      if constexpr (std::is_void_v<T>) {
        return;
      } else if constexpr (Move) {
        return T(std::move(*handle.promise().value));
      } else {
        return static_cast<T&>(*handle.promise().value);
      }
    }
  };

  Handle handle_;
};

namespace detail {
template <class T>
Future<T> Promise<T>::get_return_object() noexcept {
  return Future<T>(Future<T>::Handle::from_promise(*this));
}
inline Future<void> Promise<void>::get_return_object() noexcept {
  return Future<void>(Future<void>::Handle::from_promise(*this));
}
}  // namespace detail

// --- The dispatcher ---------------------------------------------------------------------------

/// Milliseconds on the loop's monotonic clock.
using Clock = std::chrono::steady_clock;

/// A timer entry; lives inside whoever waits on it (no allocation), linked into the loop's heap.
struct TimerNode {
  Clock::time_point deadline;
  void (*fire)(TimerNode&) = nullptr;  // called by the loop when the deadline passes
  std::size_t heapIndex = kNotQueued;  // position in the heap, kNotQueued when not pending
  std::uint64_t sequence = 0;          // orders timers with equal deadlines first-in first-out
  static constexpr std::size_t kNotQueued = static_cast<std::size_t>(-1);
};

/// One pending wait for readiness of a descriptor; lives inside the awaiter (or inside whoever
/// waits without a coroutine, with `callback` set).
struct IoWait {
  std::coroutine_handle<> waiter;
  /// Called instead of resuming `waiter` when set: a wait that costs no coroutine frame.
  void (*callback)(IoWait&) = nullptr;
  bool cancelled = false;  // set when the descriptor was closed while waiting
};

/// The event loop of one thread: epoll, timers, and a queue of work to run soon.
class Dispatcher {
 public:
  /// A new loop with its own epoll instance; throws OSError if the kernel refuses.
  Dispatcher();
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  /// Runs ready work and timers, then waits up to `timeoutMs` for events and handles them.
  /// Throws ValueError when nothing at all is pending (as Nim's poll does).
  void poll(int timeoutMs = 500);
  /// True when any descriptor, timer or queued callback is pending.
  bool hasPendingOperations() const noexcept;
  /// True when coroutines or callbacks are queued for the next turn (timers and waits aside).
  bool hasReadyWork() const noexcept { return !ready_.empty() || !callbacks_.empty(); }

  /// Adds `fd` (non-blocking) to the loop, watched for both directions, edge-triggered.
  void registerDescriptor(int fd);
  /// Removes `fd`; waits pending on it are resumed with `cancelled` set. Does not close it.
  void unregisterDescriptor(int fd) noexcept;
  /// Like unregisterDescriptor for an `fd` the caller closes next: closing takes it out of
  /// epoll, so this saves the epoll_ctl (unless the descriptor was duplicated, then its events
  /// may still come, and are ignored or taken for spurious by whoever gets that number next).
  void unregisterClosing(int fd) noexcept;
  /// Resumes the waits pending on `fd` with `cancelled` set, keeping it registered and open
  /// (a deadline that aborts a read but still wants to write a response).
  void cancelWaits(int fd) noexcept;
  /// Like cancelWaits, for the wait for writability only.
  void cancelWrite(int fd) noexcept;
  /// Like cancelWaits, for the wait for readability only (a read deadline that must not cut
  /// short the writing of earlier responses).
  void cancelRead(int fd) noexcept;
  /// True when `fd` is registered.
  bool isRegistered(int fd) const noexcept {
    return fd >= 0 && static_cast<std::size_t>(fd) < descriptors_.size() &&
           descriptors_[static_cast<std::size_t>(fd)].registered;
  }
  /// True when a wait for readability of `fd` is pending.
  bool readerPending(int fd) const noexcept { return slotOrEmpty(fd).reader != nullptr; }
  /// The number of registered descriptors (Nim's activeDescriptors).
  int activeDescriptors() const noexcept { return activeDescriptors_; }

  /// False when the last read of `fd` drained it and no readiness event has come since: a read
  /// now would only fail with EAGAIN, so wait for the event instead.
  bool mayRead(int fd) const noexcept { return slotOrEmpty(fd).readReady; }
  /// Records that a read of `fd` found it drained (EAGAIN, or fewer bytes than asked).
  void readDrained(int fd) noexcept;
  /// False when the last write to `fd` found its buffer full and no event has come since.
  bool mayWrite(int fd) const noexcept { return slotOrEmpty(fd).writeReady; }
  /// Records that a write to `fd` found its buffer full.
  void writeBlocked(int fd) noexcept;
  /// Forgets what events said of `fd` so far (a socket that just connected).
  void resetReadiness(int fd) noexcept {
    if (!isRegistered(fd)) return;
    Descriptor& d = descriptors_[static_cast<std::size_t>(fd)];
    d.readReady = d.writeReady = true;
    d.hungUp = false;
  }

  /// Suspends `wait.waiter` until `fd` is readable (or closed).
  void waitReadable(int fd, IoWait& wait) noexcept;
  /// Suspends `wait.waiter` until `fd` is writable (or closed).
  void waitWritable(int fd, IoWait& wait) noexcept;

  /// Arms `timer` to fire at its deadline.
  void addTimer(TimerNode& timer);
  /// Disarms `timer` if pending; cheap (O(log n)).
  void cancelTimer(TimerNode& timer) noexcept;
  /// The number of pending timers.
  std::size_t pendingTimers() const noexcept { return timers_.size(); }

  /// Resumes `handle` on the next turn of the loop, never inline.
  void resumeSoon(std::coroutine_handle<> handle) { ready_.push_back(handle); }
  /// Runs `fn` on the next turn of the loop (Nim's callSoon).
  void callSoon(std::function<void()> fn) { callbacks_.push_back(std::move(fn)); }
  /// Runs `fn` on this loop's thread; safe to call from any thread.
  void post(std::function<void()> fn);

  struct PostQueue;
  /// A handle for posting to this loop from any thread; it outlives the loop safely (work
  /// posted after the loop is gone is dropped).
  class Remote {
   public:
    /// Runs `fn` on the loop's thread, or drops it if the loop is gone.
    void post(std::function<void()> fn) const;

   private:
    friend class Dispatcher;
    std::shared_ptr<PostQueue> queue_;
  };
  /// A Remote for this loop.
  Remote remote() const {
    Remote r;
    r.queue_ = posted_;
    return r;
  }

  /// Counts a wait on work outside the loop (a helper thread that will post back), so that
  /// waitFor keeps polling until it arrives.
  void beginExternalWait() noexcept { ++externalWaits_; }
  /// Ends a wait counted by beginExternalWait.
  void endExternalWait() noexcept { --externalWaits_; }

  /// The loop's cached time, refreshed on every turn.
  Clock::time_point now() const noexcept { return now_; }

 private:
  struct Descriptor {
    IoWait* reader = nullptr;
    IoWait* writer = nullptr;
    bool registered = false;
    // Readiness as the edge-triggered events and the last system calls tell it; optimistic at
    // first. Saves the EAGAIN-returning call that otherwise precedes every wait.
    bool readReady = true;
    bool writeReady = true;
    // The peer closed or the socket failed: reads never block again, and no further edge
    // will come, so a short read must not mark it drained.
    bool hungUp = false;
  };
  const Descriptor& slotOrEmpty(int fd) const noexcept {
    static const Descriptor kUnregistered{};
    return isRegistered(fd) ? descriptors_[static_cast<std::size_t>(fd)] : kUnregistered;
  }
  void handleEvent(int fd, std::uint32_t flags);
  static void wake(IoWait& wait) {
    if (wait.callback) {
      wait.callback(wait);
    } else {
      wait.waiter.resume();
    }
  }
  void wakeSoon(IoWait& wait);
  void addWait(int fd, IoWait& wait, IoWait* Descriptor::*direction) noexcept;
  void cancelWait(int fd, IoWait* Descriptor::*direction) noexcept;
  void runTimers();
  void runReady();
  int waitTimeout(int timeoutMs) const noexcept;
  void heapSwap(std::size_t a, std::size_t b) noexcept;
  void heapUp(std::size_t i) noexcept;
  void heapDown(std::size_t i) noexcept;
  bool heapLess(std::size_t a, std::size_t b) const noexcept;
  Descriptor& slot(int fd);

  int epollFd_ = -1;
  std::vector<Descriptor> descriptors_;  // indexed by fd: stale events find an empty slot
  int activeDescriptors_ = 0;
  int externalWaits_ = 0;
  bool polling_ = false;            // inside poll(): a nested poll would corrupt the batch it runs
  std::vector<TimerNode*> timers_;  // binary min-heap on (deadline, sequence)
  std::uint64_t timerSequence_ = 0;
  std::vector<std::coroutine_handle<>> ready_, readyRunning_;
  std::vector<std::function<void()>> callbacks_, callbacksRunning_;
  std::shared_ptr<PostQueue> posted_;  // shared with threads that post; outlives the loop
  Clock::time_point now_;
};

/// This thread's dispatcher, created on first use (Nim's getGlobalDispatcher).
Dispatcher& getGlobalDispatcher();

/// Runs this thread's loop once (Nim's poll); ValueError when nothing is pending.
void poll(int timeoutMs = 500);
/// Runs this thread's loop until nothing is pending.
void runForever();
/// Queues `fn` to run on the next turn of this thread's loop.
void callSoon(std::function<void()> fn);
/// The number of descriptors registered with this thread's loop.
int activeDescriptors();
/// True when this thread's loop has any pending work.
bool hasPendingOperations();

/// Runs this thread's loop until `fut` finishes, then returns its value or rethrows.
template <class T>
T waitFor(Future<T> fut) {
  auto& loop = getGlobalDispatcher();
  while (!fut.finished()) loop.poll();
  return std::move(fut).read();
}

/// Lets `fut` run detached; an exception it ends with is reported on stderr, not lost.
template <class T>
void asyncCheck(Future<T> fut) {
  if (fut.failed()) {
    detail::reportDetachedException(fut.handle().promise().exception);
  }
  // Dropping an unfinished Future detaches it with the same reporting.
}

/// Watches `signal` on this thread's loop (Nim's addSignal): `callback` runs on the loop each
/// time it arrives, through a signalfd, never in a signal handler. The signal is blocked in
/// this thread, and in threads started after (they inherit the mask): call it before starting
/// any. The watch keeps the loop busy until removeSignal. Returns its id; throws OSError.
int addSignal(int signal, std::function<void()> callback);
/// Ends a watch that addSignal made, and unblocks its signal in this thread.
void removeSignal(int id);

/// Completes after `ms` milliseconds; never inline, even for 0.
Future<void> sleepAsync(std::int64_t ms);

namespace detail {

/// `now + ms`, saturating at the clock's maximum; negative `ms` counts as 0.
Clock::time_point deadlineAfter(Clock::time_point now, std::int64_t ms) noexcept;

/// Awaits a timer on the current loop; resumes the awaiting coroutine when it fires.
struct TimerAwaiter : TimerNode {
  std::coroutine_handle<> waiter;
  explicit TimerAwaiter(std::int64_t ms);
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}
};

/// Resumes the awaiting coroutine when `watched` finishes or the timer fires, whichever first.
struct TimeoutAwaiter : TimerNode {
  std::coroutine_handle<> watched;
  PromiseBase* watchedPromise;
  std::coroutine_handle<> waiter;
  bool timedOut = false;
  TimeoutAwaiter(std::coroutine_handle<> watched, PromiseBase& promise, std::int64_t ms);
  bool await_ready() const noexcept { return watched.done(); }
  void await_suspend(std::coroutine_handle<> h);
  bool await_resume() noexcept;
};

}  // namespace detail

/// True if `fut` finishes within `ms` milliseconds, false otherwise; `fut` keeps running
/// either way and stays readable (Nim's withTimeout). The caller keeps `fut` alive.
template <class T>
Future<bool> withTimeout(Future<T>& fut, std::int64_t ms) {
  if (fut.finished()) co_return true;
  co_return co_await detail::TimeoutAwaiter(fut.handle(), fut.handle().promise(), ms);
}

/// As withTimeout(fut&, ms), for a Future the caller does not keep: on a timeout it runs on
/// detached.
template <class T>
Future<bool> withTimeout(Future<T>&& fut, std::int64_t ms) {
  Future<T> owned = std::move(fut);
  co_return co_await withTimeout(owned, ms);
}

/// Completes when every future has; rethrows the exception of the first failed one in order.
inline Future<void> all(std::vector<Future<void>> futures) {
  for (auto& fut : futures) co_await fut;
}

/// Completes with every future's value, in order; rethrows the first failed one's exception.
template <class T>
Future<std::vector<T>> all(std::vector<Future<T>> futures) {
  std::vector<T> values;
  values.reserve(futures.size());
  for (auto& fut : futures) values.push_back(co_await std::move(fut));
  co_return values;
}

/// Completes when every argument has; the values come back as a tuple (void as std::monostate
/// is not needed: pass only value futures here, or use the vector form for Future<void>).
template <class... T>
requires(sizeof...(T) > 1 &&
         (!std::is_void_v<T> && ...)) Future<std::tuple<T...>> all(Future<T>... futures) {
  // Each awaited in turn; all of them started when they were made.
  co_return std::tuple<T...>{co_await std::move(futures)...};
}

/// Completes when every argument has (Future<void> overload of the variadic form).
template <class... F>
requires(sizeof...(F) > 1 &&
         (std::is_same_v<F, Future<void>> && ...)) Future<void> all(F... futures) {
  (co_await std::move(futures), ...);
}

}  // namespace asynchttp
