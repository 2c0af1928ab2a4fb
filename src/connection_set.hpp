// The connections one server has on one loop: the live ones, so that closing the server can
// end them, and the parked ones (idle keep-alive connections reduced to a small record).
#pragma once

#include <asynchttp/asynchttpserver.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace asynchttp::detail {

class Connection;
struct ConnectionSet;

// A keep-alive connection idle for ServerSettings::idleRelease, reduced to what it takes to
// wait for its next request: no coroutine frame, no Connection, no buffer, no socket state
// (112 bytes, from pooled pages: 1 950 bytes per idle connection before). The dispatcher calls
// it back on readiness; the connection is then made again.
/// What a connection's clocks were when it parked, for the connection it becomes again.
struct CarriedClocks {
  std::optional<Clock::time_point> readDeadline;  // ServerSettings::readTimeout's, if running
  std::optional<Clock::time_point> headerSince;   // a new connection's header timeout start
};

struct ParkedConnection : IoWait, TimerNode {
  ConnectionSet* set = nullptr;  // null once the set has let go of it (the server closed)
  ParkedConnection* previous = nullptr;
  ParkedConnection* next = nullptr;
  std::shared_ptr<const RequestCallback> callback;
  int fd = -1;
  int domain = AF_INET;
  // The read deadline (ServerSettings::readTimeout) carried over to the connection's next
  // request; the timer's own deadline is the earlier of it and the idle timeout's end.
  Clock::time_point readDeadline = Clock::time_point::max();
  // A connection parked before its first byte: when its header timeout started (its
  // beginning), carried over so that parking does not restart it. max() otherwise.
  Clock::time_point headerSince = Clock::time_point::max();

  // The dispatcher's callback: a request begins, the client left, or the wait was cancelled.
  static void onReadable(IoWait& wait);
  // The read deadline or the idle timeout passed while parked: a silent close.
  static void onDeadline(TimerNode& timer);
};

/// The connections a server has started on this loop, and the parked ones.
struct ConnectionSet : std::enable_shared_from_this<ConnectionSet> {
  ServerSettings settings;
  // What a connection waits for, and for how long at most (zero: no limit): none, then
  // idleTimeout, headerTimeout and bodyTimeout, as durations.
  enum class Phase : std::uint8_t { none, idle, head, body };
  std::array<Clock::duration, 4> phaseLimits{};
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
  // Takes over `fd` (open, registered) of an idle connection about to end; it is closed at
  // the earlier of `readDeadline` and `idleEnd`.
  void park(int fd, int domain, std::shared_ptr<const RequestCallback> callback,
            CarriedClocks clocks, std::optional<Clock::time_point> idleEnd) noexcept;
  void unlink(ParkedConnection& record) noexcept;
  // Makes the connection again, with the first bytes of its next request.
  void unpark(ParkedConnection& record, std::string_view received);
  // Ends the server's connections: idle and parked ones now (new ones with no byte yet only
  // when `evenNew`), busy ones after their response.
  void closeAll(bool evenNew = false) noexcept;
  // Closes every connection now, busy or not: pending writes and reads fail (the grace of a
  // shutdown is over).
  void abortAll() noexcept;
  // True when no connection is open: none parked, and every live one closed (a handler may
  // still be running; its Request stays valid until it returns).
  bool drained() const noexcept;
  // Closes every parked connection (their callbacks finish the job on the next turn).
  void closeParked() noexcept;
};

/// Completes once `set` is drained; past `graceMs` milliseconds, closes what is still open.
Future<void> drainConnections(std::shared_ptr<ConnectionSet> set, std::int64_t graceMs);

/// Serves one TCP connection until it ends (never throws): `received`, bytes already read of
/// it, and `clocks`, its deadlines carried over (both from a parked connection).
Future<void> serveTcp(AsyncSocket client, std::string address,
                      std::shared_ptr<const RequestCallback> callback,
                      std::shared_ptr<ConnectionSet> set, std::string_view received = {},
                      CarriedClocks clocks = {});

}  // namespace asynchttp::detail
