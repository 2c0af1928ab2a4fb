// Tests for asyncnet: real sockets on loopback, IPv6 and Unix domain, and their error paths.
#include <asynchttp/asyncnet.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

using namespace asynchttp;

namespace {

// A listening socket on 127.0.0.1 with a kernel-chosen port.
AsyncSocket listenLocal(int domain = AF_INET) {
  auto server = newAsyncSocket(domain);
  server.setSockOpt(OptReuseAddr, true);
  server.bindAddr(Port(0), domain == AF_INET6 ? "::1" : "127.0.0.1");
  server.listen();
  return server;
}

// A connected (client, server-side) pair over TCP.
std::pair<AsyncSocket, AsyncSocket> connectedPair(int domain = AF_INET) {
  auto server = listenLocal(domain);
  auto [host, port] = server.getLocalAddr();
  auto client = newAsyncSocket(domain);
  auto accepted = server.accept();
  waitFor(client.connect(host, port));
  auto peer = waitFor(std::move(accepted));
  server.close();
  return {client, peer};
}

bool ipv6Available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST(Port, IsADistinctNumber) {
  EXPECT_EQ(to_string(Port(8080)), "8080");
  static_assert(!std::is_convertible_v<int, Port>);
}

TEST(AsyncSocket, EchoRoundTripOverTcp) {
  auto [client, peer] = connectedPair();
  waitFor(client.send("hello\r\nworld\n"));
  EXPECT_EQ(waitFor(peer.recvLine()), "hello");
  EXPECT_EQ(waitFor(peer.recvLine()), "world");
  waitFor(peer.send("pong"));
  EXPECT_EQ(waitFor(client.recv(4)), "pong");
}

TEST(AsyncSocket, AddressesOfBothEnds) {
  auto [client, peer] = connectedPair();
  auto [localHost, localPort] = client.getLocalAddr();
  auto [peerHost, peerPort] = peer.getPeerAddr();
  EXPECT_EQ(localHost, "127.0.0.1");
  EXPECT_EQ(peerHost, "127.0.0.1");
  EXPECT_EQ(localPort, peerPort);
  EXPECT_NE(static_cast<int>(localPort), 0);
  EXPECT_EQ(client.getPeerAddr().second, peer.getLocalAddr().second);
}

TEST(AsyncSocket, AcceptAddrGivesThePeerAddressAsText) {
  auto server = listenLocal();
  auto client = newAsyncSocket();
  auto accepted = server.acceptAddr();
  waitFor(client.connect("127.0.0.1", server.getLocalAddr().second));
  auto [address, peer] = waitFor(std::move(accepted));
  EXPECT_EQ(address, "127.0.0.1");
  EXPECT_FALSE(peer.isClosed());
}

TEST(AsyncSocket, RecvReturnsFewerBytesOnlyAtEndOfStream) {
  auto [client, peer] = connectedPair();
  auto pending = peer.recv(10);  // waits: fewer than 10 bytes is not enough before EOF
  waitFor(client.send("abc"));
  poll(10);
  EXPECT_FALSE(pending.finished());
  waitFor(client.send("defghij"));
  EXPECT_EQ(waitFor(std::move(pending)), "abcdefghij");
  waitFor(client.send("xyz"));
  client.close();
  EXPECT_EQ(waitFor(peer.recv(10)), "xyz");
  EXPECT_EQ(waitFor(peer.recv(10)), "");
  EXPECT_EQ(waitFor(peer.recvLine()), "");
}

TEST(AsyncSocket, ASecondReadWhileOneIsPendingIsAValueError) {
  auto [client, peer] = connectedPair();
  auto first = peer.recv(3);
  EXPECT_FALSE(first.finished());
  EXPECT_THROW(waitFor(peer.recv(3)), ValueError);
  waitFor(client.send("abc"));
  EXPECT_EQ(waitFor(std::move(first)), "abc");  // the pending read is unharmed
  EXPECT_NO_THROW(waitFor(client.send("d")));
  EXPECT_EQ(waitFor(peer.recv(1)), "d");  // and once it is done, the next read may start
}

TEST(AsyncSocket, RecvLineConventions) {
  auto [client, peer] = connectedPair();
  waitFor(client.send("\r\nonly-lf\nrest-then-eof"));
  EXPECT_EQ(waitFor(peer.recvLine()), "\r\n");  // an empty line comes back as "\r\n"
  EXPECT_EQ(waitFor(peer.recvLine()), "only-lf");
  // recv after recvLine sees the bytes recvLine read ahead.
  EXPECT_EQ(waitFor(peer.recv(4)), "rest");
  client.close();
  EXPECT_EQ(waitFor(peer.recvLine()), "");  // a partial line at end of stream is dropped
}

TEST(AsyncSocket, RecvLineLongerThanMaxLengthIsAValueError) {
  auto [client, peer] = connectedPair();
  waitFor(client.send(std::string(100, 'x')));
  EXPECT_THROW(waitFor(peer.recvLine(50)), ValueError);
}

TEST(AsyncSocket, RecvIntoAndRecvSome) {
  auto [client, peer] = connectedPair();
  waitFor(client.send("0123456789"));
  char buffer[16];
  EXPECT_EQ(waitFor(peer.recvInto(buffer, 4)), 4u);
  EXPECT_EQ(std::string_view(buffer, 4), "0123");
  std::size_t n = waitFor(peer.recvSome(buffer));
  EXPECT_GE(n, 1u);
  EXPECT_EQ(std::string_view(buffer, n), std::string_view("456789").substr(0, n));
}

TEST(AsyncSocket, LargeSendCompletesAcrossManyWrites) {
  auto [client, peer] = connectedPair();
  std::string big(8 * 1024 * 1024, 'a');
  for (std::size_t i = 0; i < big.size(); i += 4096) big[i] = char('a' + i / 4096 % 26);
  auto sending = client.send(big);  // more than the socket buffers: must suspend and resume
  EXPECT_FALSE(sending.finished());
  auto received = waitFor(peer.recv(big.size()));
  waitFor(std::move(sending));
  EXPECT_EQ(received, big);
}

TEST(AsyncSocket, RefusedConnectIsAnOSErrorWithErrno) {
  Port port;
  {
    auto probe = listenLocal();
    port = probe.getLocalAddr().second;
  }  // closed: nothing listens there now
  auto client = newAsyncSocket();
  try {
    waitFor(client.connect("127.0.0.1", port));
    FAIL() << "connect should fail";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), ECONNREFUSED);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1"), std::string::npos) << e.what();
  }
}

TEST(AsyncSocket, ConnectResolvesNamesWithoutBlockingTheLoop) {
  auto server = listenLocal();
  auto port = server.getLocalAddr().second;
  auto accepted = server.accept();
  auto client = newAsyncSocket();
  waitFor(client.connect("localhost", port));
  auto peer = waitFor(std::move(accepted));
  waitFor(client.send("x"));
  EXPECT_EQ(waitFor(peer.recv(1)), "x");
  auto bad = newAsyncSocket();
  EXPECT_THROW(waitFor(bad.connect("no-such-host.invalid", port)), OSError);
}

TEST(AsyncSocket, DialTriesAddressFamiliesInTurn) {
  auto server = listenLocal();
  auto accepted = server.accept();
  auto client = waitFor(dial("127.0.0.1", server.getLocalAddr().second));
  EXPECT_FALSE(waitFor(std::move(accepted)).isClosed());
  EXPECT_EQ(client.getDomain(), AF_INET);
}

TEST(AsyncSocket, PeerResetMidSendIsAnErrorNotASignal) {
  auto [client, peer] = connectedPair();
  // An abortive close (linger 0) makes the peer's next writes fail with ECONNRESET/EPIPE.
  linger abort{1, 0};
  ::setsockopt(peer.getFd(), SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  peer.close();
  std::string chunk(1 << 20, 'z');
  auto sendForever = [&]() -> Future<void> {
    for (int i = 0; i < 64; ++i) co_await client.send(chunk);
  };
  try {
    waitFor(sendForever());
    FAIL() << "sending to a reset peer should fail";
  } catch (const OSError& e) {
    EXPECT_TRUE(e.code() == ECONNRESET || e.code() == EPIPE) << e.what();
  }
}

TEST(AsyncSocket, CloseWhileRecvPendingResumesWithSocketClosedError) {
  auto [client, peer] = connectedPair();
  auto pending = peer.recv(1);
  EXPECT_FALSE(pending.finished());
  peer.close();
  EXPECT_TRUE(peer.isClosed());
  EXPECT_THROW(waitFor(std::move(pending)), SocketClosedError);
  EXPECT_THROW(waitFor(peer.recv(1)), SocketClosedError);
  EXPECT_THROW(waitFor(peer.send("x")), SocketClosedError);
  peer.close();  // idempotent
}

TEST(AsyncSocket, CloseWhileAcceptPendingResumesWithSocketClosedError) {
  auto server = listenLocal();
  auto pending = server.accept();
  server.close();
  EXPECT_THROW(waitFor(std::move(pending)), SocketClosedError);
}

TEST(AsyncSocket, HandlesShareOneSocketThatClosesWithTheLast) {
  int before = activeDescriptors();
  {
    auto a = newAsyncSocket();
    auto b = a;
    EXPECT_TRUE(a == b);
    EXPECT_EQ(activeDescriptors(), before + 1);
    { auto c = b; }
    EXPECT_FALSE(a.isClosed());
    b.close();
    EXPECT_TRUE(a.isClosed());
    EXPECT_EQ(activeDescriptors(), before);
  }
  { auto d = newAsyncSocket(); }
  EXPECT_EQ(activeDescriptors(), before);
  AsyncSocket none;
  EXPECT_TRUE(none.isClosed());
  EXPECT_THROW(none.listen(), SocketClosedError);
}

TEST(AsyncSocket, SocketOptions) {
  auto s = newAsyncSocket();
  s.setSockOpt(OptReuseAddr, true);
  EXPECT_TRUE(s.getSockOpt(OptReuseAddr));
  s.setSockOpt(OptNoDelay, true);
  EXPECT_TRUE(s.getSockOpt(OptNoDelay));
  s.setSockOpt(OptKeepAlive, false);
  EXPECT_FALSE(s.getSockOpt(OptKeepAlive));
  s.setSockOpt(OptReusePort, true);
  EXPECT_TRUE(s.getSockOpt(OptReusePort));
}

TEST(AsyncSocket, BindErrorsNameTheAddress) {
  auto taken = listenLocal();
  auto port = taken.getLocalAddr().second;
  auto second = newAsyncSocket();
  try {
    second.bindAddr(port, "127.0.0.1");
    FAIL() << "binding a taken port should fail";
  } catch (const OSError& e) {
    EXPECT_EQ(e.code(), EADDRINUSE);
  }
  auto third = newAsyncSocket();
  EXPECT_THROW(third.bindAddr(Port(0), "not an address"), OSError);
}

TEST(AsyncSocket, Ipv6Loopback) {
  if (!ipv6Available()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  auto [client, peer] = connectedPair(AF_INET6);
  EXPECT_EQ(client.getLocalAddr().first, "::1");
  waitFor(client.send("six"));
  EXPECT_EQ(waitFor(peer.recv(3)), "six");
}

TEST(AsyncSocket, UnixDomain) {
  auto path = (std::filesystem::temp_directory_path() /
               ("asynchttp-test-" + std::to_string(::getpid()) + ".sock"))
                  .string();
  std::filesystem::remove(path);
  auto server = newAsyncSocket(AF_UNIX);
  server.bindUnix(path);
  server.listen();
  EXPECT_EQ(server.getLocalAddr().first, path);
  auto accepted = server.accept();
  auto client = newAsyncSocket(AF_UNIX);
  waitFor(client.connectUnix(path));
  auto peer = waitFor(std::move(accepted));
  waitFor(client.send("unix\n"));
  EXPECT_EQ(waitFor(peer.recvLine()), "unix");
  std::filesystem::remove(path);
  EXPECT_THROW(newAsyncSocket(AF_UNIX).bindUnix(std::string(200, 'p')), ValueError);
}

TEST(AsyncSocket, ManyConcurrentEchoClients) {
  auto server = listenLocal();
  auto port = server.getLocalAddr().second;
  auto serveOne = [](AsyncSocket client) -> Future<void> {
    for (;;) {
      auto line = co_await client.recvLine();
      if (line.empty()) break;
      co_await client.send("you said: " + line + "\r\n");
    }
  };
  auto acceptLoop = [&](int n) -> Future<void> {
    for (int i = 0; i < n; ++i) asyncCheck(serveOne(co_await server.accept()));
  };
  auto clientSession = [&](int id) -> Future<int> {
    auto socket = newAsyncSocket();
    co_await socket.connect("127.0.0.1", port);
    int ok = 0;
    for (int i = 0; i < 20; ++i) {
      std::string msg = std::to_string(id) + "-" + std::to_string(i);
      co_await socket.send(msg + "\n");
      if (co_await socket.recvLine() == "you said: " + msg) ++ok;
    }
    socket.close();
    co_return ok;
  };
  constexpr int kClients = 64;
  auto acceptor = acceptLoop(kClients);
  std::vector<Future<int>> sessions;
  for (int i = 0; i < kClients; ++i) sessions.push_back(clientSession(i));
  auto results = waitFor(all(std::move(sessions)));
  for (int ok : results) EXPECT_EQ(ok, 20);
  waitFor(std::move(acceptor));
  server.close();
  while (hasPendingOperations()) poll(10);  // the echo coroutines see EOF and end
}

TEST(AsyncSocket, AdoptsASocketpair) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto a = newAsyncSocket(AsyncFD(fds[0]), AF_UNIX);
  auto b = newAsyncSocket(AsyncFD(fds[1]), AF_UNIX);
  waitFor(a.send("pair"));
  EXPECT_EQ(waitFor(b.recv(4)), "pair");
  a.close();
  EXPECT_EQ(waitFor(b.recv(1)), "");
}

TEST(AsyncSocket, EndOfStreamRightBehindDataIsSeenAfterAShortRead) {
  // Data and FIN land before the loop looks, so epoll reports them as one edge; the short read
  // of the data must not make the reader wait for another edge that will never come.
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto reader = newAsyncSocket(AsyncFD(fds[0]), AF_UNIX);
  ASSERT_EQ(::write(fds[1], "tail", 4), 4);
  ::shutdown(fds[1], SHUT_WR);
  poll(0);  // the merged event is harvested here
  auto all = reader.recv(100);
  EXPECT_TRUE(waitFor(withTimeout(all, 2000)));
  EXPECT_EQ(all.read(), "tail");
  ::close(fds[1]);
}

TEST(AsyncSocket, ReadAfterShortReadWaitsForTheNextEdge) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto a = newAsyncSocket(AsyncFD(fds[0]), AF_UNIX);
  auto b = newAsyncSocket(AsyncFD(fds[1]), AF_UNIX);
  char buffer[64];
  waitFor(a.send("one"));
  EXPECT_EQ(waitFor(b.recvSome(buffer)), 3u);  // short: marked drained
  auto next = b.recvSome(buffer);
  EXPECT_FALSE(next.finished());
  waitFor(a.send("two!"));
  EXPECT_TRUE(waitFor(withTimeout(next, 2000)));
  EXPECT_EQ(next.read(), 4u);
}

TEST(AsyncSocket, ConcurrentSendsLeaveInCallOrder) {
  // Both sends are larger than the socket buffers: the second must wait for the first, not
  // interleave with it or take its place.
  auto [client, peer] = connectedPair();
  std::string a(3 * 1024 * 1024, 'a'), b(3 * 1024 * 1024, 'b');
  auto first = client.send(a);
  auto second = client.send(b);
  auto received = waitFor(peer.recv(a.size() + b.size()));
  waitFor(std::move(first));
  waitFor(std::move(second));
  ASSERT_EQ(received.size(), a.size() + b.size());
  EXPECT_TRUE(received == a + b);
}

TEST(AsyncSocket, DatagramsAreNotTakenForADrainedStream) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), 0);
  auto reader = newAsyncSocket(AsyncFD(fds[0]), AF_UNIX);
  ASSERT_EQ(::write(fds[1], "one", 3), 3);
  ASSERT_EQ(::write(fds[1], "two", 3), 3);
  poll(0);  // the edge for both is consumed here
  char buffer[64];
  EXPECT_EQ(waitFor(reader.recvSome(buffer)), 3u);  // short, but another datagram is queued
  auto next = reader.recvSome(buffer);
  EXPECT_TRUE(waitFor(withTimeout(next, 2000)));
  EXPECT_EQ(std::string_view(buffer, 3), "two");
  ::close(fds[1]);
}

TEST(AsyncSocket, DialByNameTriesEachResolvedAddress) {
  auto server = listenLocal();  // IPv4 only: a ::1 attempt is refused, 127.0.0.1 then works
  auto accepted = server.accept();
  auto client = waitFor(dial("localhost", server.getLocalAddr().second));
  EXPECT_FALSE(waitFor(std::move(accepted)).isClosed());
  EXPECT_EQ(client.getPeerAddr().first, "127.0.0.1");
  EXPECT_THROW(waitFor(dial("no-such-host.invalid", Port(1))), OSError);
}
