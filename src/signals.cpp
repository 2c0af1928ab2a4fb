// Signals through the loop (addSignal): a signalfd per watched signal, read when it is readable.
#include <asynchttp/asyncdispatch.hpp>

#include <sys/signalfd.h>
#include <unistd.h>

#include <csignal>
#include <map>
#include <memory>

namespace asynchttp {

namespace {

struct SignalWatch : IoWait {
  int fd = -1;
  int signal = 0;
  std::function<void()> callback;

  // The loop's callback: every queued occurrence of the signal runs `callback` once.
  static void onReadable(IoWait& wait);
};

// This thread's watches, by id (the signalfd's descriptor, as Nim's addSignal returns).
std::map<int, std::unique_ptr<SignalWatch>>& watches() {
  thread_local std::map<int, std::unique_ptr<SignalWatch>> all;
  return all;
}

void SignalWatch::onReadable(IoWait& wait) {
  auto& watch = static_cast<SignalWatch&>(wait);
  if (watch.cancelled) {
    std::unique_ptr<SignalWatch> removed(&watch);  // removeSignal handed it to this last call
    return;
  }
  signalfd_siginfo info{};
  int occurrences = 0;
  while (::read(watch.fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) ++occurrences;
  getGlobalDispatcher().readDrained(watch.fd);
  int id = watch.fd;
  getGlobalDispatcher().waitReadable(watch.fd, watch);
  for (int i = 0; i < occurrences; ++i) {
    try {
      watch.callback();
    } catch (...) {
      detail::reportException("signal callback failed", std::current_exception());
    }
    if (!watches().contains(id)) return;  // the callback removed its watch
  }
}

}  // namespace

int addSignal(int signal, std::function<void()> callback) {
  sigset_t set;
  sigemptyset(&set);
  if (sigaddset(&set, signal) != 0) throw OSError("addSignal", EINVAL);
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw OSError("signalfd", errno);
  auto watch = std::make_unique<SignalWatch>();
  watch->fd = fd;
  watch->signal = signal;
  watch->callback = std::move(callback);
  watch->IoWait::callback = &SignalWatch::onReadable;
  Dispatcher& loop = getGlobalDispatcher();
  try {
    loop.registerDescriptor(fd);
  } catch (...) {
    ::close(fd);
    throw;
  }
  loop.waitReadable(fd, *watch);
  watches()[fd] = std::move(watch);
  return fd;
}

void removeSignal(int id) {
  auto found = watches().find(id);
  if (found == watches().end()) throw ValueError("removeSignal: no such watch");
  // Its pending wait is resumed cancelled on the next turn, and frees it then.
  SignalWatch* watch = found->second.release();
  watches().erase(found);
  getGlobalDispatcher().unregisterDescriptor(watch->fd);
  ::close(watch->fd);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, watch->signal);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace asynchttp
