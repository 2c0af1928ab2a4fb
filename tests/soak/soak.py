#!/usr/bin/env python3
"""Soak test for an asynchttp example server (issue 10; not a CI test).

Starts the server binary (by default build-soak/examples/echo), pins it to one CPU and the
clients to another, raises RLIMIT_NOFILE for both, and holds --connections concurrent
connections on 127.0.0.1 for --seconds with a mix of client behaviours:

  keepalive   request/response in a loop on one connection, every response checked exactly
  pipelined   batches of requests in one write, every response checked, in order
  slowloris   one header byte every few seconds (the server's headerTimeout must cut it)
  abort_body  Content-Length (or chunked) announced, part of the body sent, then close
  abort_resp  a large response asked for (a large body echoed), then close without reading it
  never_read  many pipelined requests sent, nothing ever read

It records the server's RSS and descriptor count at the start, their peak, and the end (after
every client socket is closed and a bounded settle time), checks that a fresh request is
answered, prints a summary and exits non-zero on a wrong response to a well-behaved request,
an error on a well-behaved connection, a server crash, leaked descriptors, RSS not back near
its start, or a failed fresh request.

Python 3 standard library only (asyncio on raw non-blocking sockets). Linux only (/proc,
sched_setaffinity). Only ever connects to 127.0.0.1.
"""

import argparse
import asyncio
import collections
import errno
import multiprocessing
import os
import queue as queue_module
import random
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SERVER = os.path.join(REPO, "build-soak", "examples", "echo")
HOST = "127.0.0.1"

KINDS = ("keepalive", "pipelined", "slowloris", "abort_body", "abort_resp", "never_read")
# Kinds whose requests are well formed and must be answered exactly: a wrong response or an
# error on them fails the run.
WELL_BEHAVED = ("keepalive", "pipelined")
DEFAULT_MIX = "keepalive=52,pipelined=25,slowloris=10,abort_body=10,abort_resp=1,never_read=2"

NEVER_READ_BATCH = 16  # requests per write of a never_read client
MAX_HEAD = 65536  # bytes of response head accepted before calling the response wrong
MAX_EXAMPLES = 3  # problem descriptions kept per client kind and worker

_HAS_TIMEOUT = hasattr(asyncio, "timeout")  # Python 3.11+


async def bounded(awaitable, seconds):
    """`await awaitable`, raising TimeoutError after `seconds`."""
    if seconds <= 0:
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        elif isinstance(awaitable, asyncio.Future):
            awaitable.cancel()
        raise TimeoutError()
    if _HAS_TIMEOUT:
        async with asyncio.timeout(seconds):
            return await awaitable
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise TimeoutError() from None


def _wake(future):
    if not future.done():
        future.set_result(None)


async def recv_some(loop, sock, size, timeout):
    """Up to `size` bytes (b"" at end of stream), raising TimeoutError after `timeout` s.

    Waits for readability, then reads: a timeout never loses bytes, as cancelling
    loop.sock_recv can (its result is dropped if the timeout fires after the read completed
    but before the task resumed, which a busy loop makes likely)."""
    deadline = loop.time() + timeout
    fd = sock.fileno()
    while True:
        try:
            return sock.recv(size)
        except (BlockingIOError, InterruptedError):
            pass
        future = loop.create_future()
        loop.add_reader(fd, _wake, future)
        try:
            await bounded(future, deadline - loop.time())
        finally:
            loop.remove_reader(fd)


def errno_name(e):
    return errno.errorcode.get(e.errno, repr(e)) if e.errno else repr(e)


class PeerClosed(Exception):
    """The server closed the connection where a response was expected."""


class BadResponse(Exception):
    """A response that cannot be parsed."""


# ---------------------------------------------------------------------------------------------
# What the server answers


class EchoModel:
    """examples/echo: "<METHOD> <target>\\n" + body, text/plain, 200."""

    name = "echo"
    large_responses = True

    @staticmethod
    def expected(method, target, body):
        return b"%s %s\n%s" % (method, target, body)

    content_type = b"text/plain"


class HelloModel:
    """examples/hello: "Hello World", 200, whatever the request."""

    name = "hello"
    large_responses = False

    @staticmethod
    def expected(method, target, body):
        return b"Hello World"

    content_type = None


MODELS = {"echo": EchoModel, "hello": HelloModel}


# ---------------------------------------------------------------------------------------------
# /proc figures


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def raise_nofile(want):
    """Raises RLIMIT_NOFILE to `want` (soft and hard) if allowed, else soft to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
        except (ValueError, OSError):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            except (ValueError, OSError):
                pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)


# ---------------------------------------------------------------------------------------------
# The clients (run in worker processes)


class Stats:
    def __init__(self):
        self.counts = {kind: collections.Counter() for kind in KINDS}
        self.lo = {}  # (kind, name) -> minimum
        self.hi = {}  # (kind, name) -> maximum
        self.examples = []
        self.per_kind = collections.Counter()

    def low(self, kind, name, value):
        key = (kind, name)
        self.lo[key] = min(self.lo.get(key, value), value)

    def high(self, kind, name, value):
        key = (kind, name)
        self.hi[key] = max(self.hi.get(key, value), value)

    def example(self, text):
        kind = text.split(":", 1)[0]
        self.per_kind[kind] += 1
        if self.per_kind[kind] <= MAX_EXAMPLES:
            self.examples.append(text)

    def as_dict(self):
        return {"counts": {k: dict(v) for k, v in self.counts.items()},
                "lo": {f"{k}|{n}": v for (k, n), v in self.lo.items()},
                "hi": {f"{k}|{n}": v for (k, n), v in self.hi.items()},
                "examples": self.examples}


class Conn:
    """A raw non-blocking socket and the bytes received on it but not yet parsed."""

    __slots__ = ("sock", "buf")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    async def recv_more(self, loop, deadline):
        data = await recv_some(loop, self.sock, 262144, deadline - loop.time())
        if not data:
            raise PeerClosed("the server closed the connection")
        self.buf += data

    async def read_response(self, loop, timeout):
        """(status line, {lowercase name: [values]}, body), framed by Content-Length."""
        deadline = loop.time() + timeout
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self.buf) > MAX_HEAD:
                raise BadResponse("response head longer than %d bytes" % MAX_HEAD)
            await self.recv_more(loop, deadline)
        lines = bytes(self.buf[:end]).split(b"\r\n")
        del self.buf[:end + 4]
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise BadResponse("header line without a colon: %r" % line[:80])
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        if b"transfer-encoding" in headers:
            raise BadResponse("unexpected Transfer-Encoding %r" % headers[b"transfer-encoding"])
        lengths = headers.get(b"content-length", [])
        if len(lengths) != 1 or not lengths[0].isdigit():
            raise BadResponse("not one Content-Length: %r (status %r)" % (lengths, lines[0]))
        length = int(lengths[0])
        while len(self.buf) < length:
            await self.recv_more(loop, deadline)
        body = bytes(self.buf[:length])
        del self.buf[:length]
        return lines[0], headers, body


class Worker:
    def __init__(self, wid, plan, cfg, stop_event):
        self.wid = wid
        self.plan = plan
        self.cfg = cfg
        self.model = MODELS[cfg["model"]]
        self.stop_event = stop_event
        self.stats = Stats()
        self.rng = random.Random(cfg["seed"] * 1000 + wid)
        self.blob = self.rng.randbytes(max(cfg["large_body"], 1 << 18) + 65536)
        self.open = 0
        self.first_attempts = 0
        self.sockets = set()
        self.loop = None
        self.stopping = False
        self.hard_deadline = time.monotonic() + cfg["ramp_timeout"] + cfg["seconds"] + 120

    # -- sockets

    async def connect(self, kind, rcvbuf=None, sndbuf=None):
        """A connected non-blocking socket, or None (counted) after a failure."""
        st = self.stats.counts[kind]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sockets.add(sock)
        self.open += 1
        try:
            await bounded(self.loop.sock_connect(sock, (HOST, self.cfg["port"])),
                          self.cfg["connect_timeout"])
        except (OSError, TimeoutError) as e:
            st["connect_errors"] += 1
            self.stats.example(f"{kind}: connect failed: {e!r}")
            self.close(sock)
            return None
        st["connects"] += 1
        return sock

    def close(self, sock):
        if sock in self.sockets:
            self.sockets.discard(sock)
            self.open -= 1
            sock.close()

    def running(self, iteration):
        return (not self.stopping and iteration < self.cfg["max_iterations"]
                and time.monotonic() < self.hard_deadline)

    async def pause(self, lo, hi):
        await asyncio.sleep(self.rng.uniform(lo, hi))

    # -- requests

    def request(self, tag, n, rng):
        """(method, target, body, encoded request) for a small checked request."""
        if rng.random() < 0.5:
            method, body = b"GET", b""
        else:
            method = b"POST"
            size = rng.randint(0, self.cfg["small_body"])
            start = rng.randint(0, 65536)
            body = self.blob[start:start + size]
        target = b"/%s/%d?r=%d" % (tag, n, rng.randint(0, 1 << 30))
        req = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: soak\r\n" % (method, target)
        if method == b"POST":
            req += b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % len(body)
        return method, target, body, req + b"\r\n" + body

    def check(self, kind, status, headers, body, method, target, sent):
        """True if the response is exactly the expected one; else counted as wrong."""
        problem = None
        expected = self.model.expected(method, target, sent)
        if status != b"HTTP/1.1 200 OK":
            problem = f"status line {status!r}"
        elif body != expected:
            problem = (f"body of {len(body)} bytes differs from the expected {len(expected)} "
                       f"(got {body[:60]!r}..., expected {expected[:60]!r}...)")
        elif (self.model.content_type is not None
              and headers.get(b"content-type") != [self.model.content_type]):
            problem = f"Content-Type {headers.get(b'content-type')!r}"
        elif any(v.lower() == b"close" for v in headers.get(b"connection", [])):
            problem = "Connection: close on a keep-alive exchange"
        if problem is None:
            return True
        self.stats.counts[kind]["wrong"] += 1
        self.stats.example(f"{kind}: WRONG response to {method.decode()} {target.decode()}: "
                           f"{problem}")
        return False

    # -- client kinds

    async def keepalive(self, cid, first):
        st = self.stats.counts["keepalive"]
        rng = random.Random(self.rng.random())
        n = 0
        while self.running(n):
            sock = await self.connect("keepalive")
            first()
            if sock is None:
                await self.pause(0.5, 1.5)
                n += 1
                continue
            conn = Conn(sock)
            try:
                while self.running(n):
                    method, target, body, req = self.request(b"ka%d" % cid, n, rng)
                    await bounded(self.loop.sock_sendall(sock, req), self.cfg["response_timeout"])
                    status, headers, rbody = await conn.read_response(
                        self.loop, self.cfg["response_timeout"])
                    n += 1
                    if self.check("keepalive", status, headers, rbody, method, target, body):
                        st["ok"] += 1
                    else:
                        break
                    await self.pause(0, self.cfg["think"])
            except (OSError, TimeoutError, PeerClosed, BadResponse) as e:
                st["errors"] += 1
                self.stats.example(f"keepalive: error after {n} requests: {e!r}")
                n += 1
            finally:
                self.close(sock)

    async def pipelined(self, cid, first):
        st = self.stats.counts["pipelined"]
        rng = random.Random(self.rng.random())
        n = 0
        while self.running(n):
            sock = await self.connect("pipelined")
            first()
            if sock is None:
                await self.pause(0.5, 1.5)
                n += 1
                continue
            conn = Conn(sock)
            try:
                while self.running(n):
                    batch = [self.request(b"pl%d" % cid, n + i, rng)
                             for i in range(rng.randint(2, self.cfg["pipeline_depth"]))]
                    await bounded(self.loop.sock_sendall(sock, b"".join(r[3] for r in batch)),
                                  self.cfg["response_timeout"])
                    good = True
                    for method, target, body, _ in batch:
                        status, headers, rbody = await conn.read_response(
                            self.loop, self.cfg["response_timeout"])
                        n += 1
                        if self.check("pipelined", status, headers, rbody, method, target, body):
                            st["ok"] += 1
                        else:
                            good = False
                            break
                    if not good:
                        break
                    st["batches"] += 1
                    await self.pause(0, self.cfg["think"])
            except (OSError, TimeoutError, PeerClosed, BadResponse) as e:
                st["errors"] += 1
                self.stats.example(f"pipelined: error after {n} requests: {e!r}")
                n += 1
            finally:
                self.close(sock)

    async def slowloris(self, cid, first):
        st = self.stats.counts["slowloris"]
        head = (b"GET /slow/%d HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " % cid) + b"z" * 400 + \
            b"\r\n\r\n"
        n = 0
        while self.running(n):
            n += 1
            sock = await self.connect("slowloris")
            first()
            if sock is None:
                await self.pause(0.5, 1.5)
                continue
            started = self.loop.time()
            # Every other connection waits before its first byte: long enough to be parked
            # (idleRelease), which must not extend headerTimeout (counted from the connection's
            # start for a first request).
            late = n % 2 == 0 and self.cfg["slow_first"] > 0
            if late:
                await asyncio.sleep(self.cfg["slow_first"])
            got = bytearray()
            closed = False
            how = ""  # how the server's close was seen, for a close without an answer
            sent = 0
            try:
                while sent < len(head) and not closed and time.monotonic() < self.hard_deadline:
                    try:
                        await self.loop.sock_sendall(sock, head[sent:sent + 1])
                        sent += 1
                    except OSError as e:
                        closed = True  # the server closed: what it sent may still be here
                        how = f"send {errno_name(e)}"
                        try:
                            got += sock.recv(4096)
                        except OSError:
                            pass
                        break
                    wait_end = self.loop.time() + self.rng.uniform(*self.cfg["slow_interval"])
                    while self.loop.time() < wait_end and len(got) < MAX_HEAD:
                        try:
                            data = await recv_some(self.loop, sock, 4096,
                                                   wait_end - self.loop.time())
                        except TimeoutError:
                            break
                        except OSError as e:
                            closed = True
                            how = f"recv {errno_name(e)}"
                            break
                        if not data:
                            closed = True
                            how = "end of stream"
                            break
                        got += data
                    if len(got) >= MAX_HEAD:
                        break
            finally:
                self.close(sock)
            elapsed = self.loop.time() - started
            if not closed:
                st["not_cut"] += 1
                self.stats.example(f"slowloris: not cut after {elapsed:.1f} s, {sent} bytes")
                continue
            if got.startswith(b"HTTP/1.1 408 "):
                st["ok"] += 1
                st["cut_408"] += 1
            elif not got:
                st["ok"] += 1
                st["cut_silent"] += 1
                if st["cut_silent"] <= 2:
                    self.stats.example(f"slowloris: closed without a 408 after {elapsed:.1f} s, "
                                       f"{sent} bytes sent ({how})")
            else:
                st["wrong"] += 1
                self.stats.example(f"slowloris: unexpected answer {bytes(got[:80])!r}")
            name = "cut_s_first_byte_late" if late else "cut_s"
            self.stats.low("slowloris", name, round(elapsed, 1))
            self.stats.high("slowloris", name, round(elapsed, 1))
            if elapsed > self.cfg["header_timeout"] + 2:  # headerTimeout plus some loop lag
                st["cut_late"] += 1
            await self.pause(0, 1)

    async def abort_body(self, cid, first):
        st = self.stats.counts["abort_body"]
        n = 0
        while self.running(n):
            n += 1
            sock = await self.connect("abort_body")
            first()
            if sock is None:
                await self.pause(0.5, 1.5)
                continue
            try:
                size = self.rng.randint(1024, self.cfg["abort_body_max"])
                part = self.blob[:self.rng.randint(1, size - 1)]
                if n % 2:
                    req = (b"POST /abort-body/%d/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Content-Length: %d\r\n\r\n" % (cid, n, size)) + part
                else:
                    req = (b"POST /abort-chunked/%d/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (cid, n, size)) + part
                await bounded(self.loop.sock_sendall(sock, req), self.cfg["response_timeout"])
                await self.pause(0, 0.5)
                try:  # nothing should have come back: the body is still arriving
                    data = sock.recv(4096)
                    if data:
                        st["answered_early"] += 1
                        self.stats.example(f"abort_body: answered before the body: {data[:80]!r}")
                except BlockingIOError:
                    pass
                st["ok"] += 1
            except (OSError, TimeoutError) as e:
                st["errors"] += 1
                self.stats.example(f"abort_body: {e!r}")
            finally:
                self.close(sock)
            await self.pause(0.5, 2)

    async def abort_resp(self, cid, first):
        st = self.stats.counts["abort_resp"]
        body = self.blob[:self.cfg["large_body"]]
        n = 0
        while self.running(n):
            n += 1
            sock = await self.connect("abort_resp", rcvbuf=4096)
            first()
            if sock is None:
                await self.pause(0.5, 1.5)
                continue
            try:
                req = (b"POST /abort-response/%d/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Length: %d\r\n\r\n" % (cid, n, len(body))) + body
                await bounded(self.loop.sock_sendall(sock, req), self.cfg["response_timeout"])
                if n % 2:  # read the status line, then close with the rest unread (a reset)
                    conn = Conn(sock)
                    deadline = self.loop.time() + self.cfg["response_timeout"]
                    while len(conn.buf) < 17:
                        await conn.recv_more(self.loop, deadline)
                    if conn.buf.startswith(b"HTTP/1.1 200 OK\r\n"):
                        st["ok"] += 1
                        st["read_status_then_closed"] += 1
                    else:
                        st["wrong"] += 1
                        self.stats.example(f"abort_resp: WRONG status {bytes(conn.buf[:40])!r}")
                else:  # close as soon as the request is sent
                    st["ok"] += 1
                    st["closed_unread"] += 1
            except (OSError, TimeoutError, PeerClosed) as e:
                st["errors"] += 1
                self.stats.example(f"abort_resp: {e!r}")
            finally:
                self.close(sock)
            await self.pause(0.5, 2)

    async def never_read(self, cid, first):
        st = self.stats.counts["never_read"]
        sock = await self.connect("never_read", rcvbuf=4096, sndbuf=65536)
        first()
        if sock is None:
            return
        body = self.blob[:self.cfg["never_read_body"]]
        one = b"POST /never-read/%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % (
            cid, len(body)) + body
        batch = one * NEVER_READ_BATCH
        try:
            for _ in range(self.cfg["never_read_batches"]):
                if self.stopping:
                    break
                try:
                    await bounded(self.loop.sock_sendall(sock, batch), 5)
                except TimeoutError:
                    st["blocked"] += 1  # the server stopped reading: backpressure
                    break
                st["ok"] += NEVER_READ_BATCH  # requests sent
            else:
                st["never_blocked"] += 1
            # Hold the connection, reading nothing, until the end.
            while not self.stopping and time.monotonic() < self.hard_deadline:
                await asyncio.sleep(1)
        except OSError as e:
            st["send_errors"] += 1  # the server may close it (writeTimeout); not an error
            self.stats.example(f"never_read: {e!r}")
        finally:
            self.note_closed_by_server(sock, "never_read")
            self.close(sock)

    def note_closed_by_server(self, sock, kind):
        try:
            p = select.poll()
            p.register(sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
            if p.poll(0):
                self.stats.counts[kind]["closed_by_server"] += 1
        except (OSError, ValueError):
            pass

    # -- the run

    async def watch_stop(self):
        while not self.stop_event.is_set() and time.monotonic() < self.hard_deadline:
            await asyncio.sleep(0.1)
        self.stopping = True

    async def lag_probe(self):
        while not self.stopping:
            t = self.loop.time()
            await asyncio.sleep(0.25)
            self.stats.high("worker", "loop_lag_ms", int((self.loop.time() - t - 0.25) * 1000))

    async def main(self, queue):
        self.loop = asyncio.get_running_loop()
        stopper = self.loop.create_task(self.watch_stop())
        lag = self.loop.create_task(self.lag_probe())
        tasks = []

        def first():
            self.first_attempts += 1

        ramp_started = time.monotonic()
        # By the clock: as many clients as the rate allows by now, however late the loop runs.
        while len(tasks) < len(self.plan) and not self.stopping:
            due = min(len(self.plan), int((time.monotonic() - ramp_started) * self.cfg["ramp_rate"]) + 1)
            for kind, cid in self.plan[len(tasks):due]:
                tasks.append(self.loop.create_task(self.run_client(kind, cid, first)))
            await asyncio.sleep(0.02)
        ramp_deadline = ramp_started + self.cfg["ramp_timeout"]
        while (self.first_attempts < len(tasks) and time.monotonic() < ramp_deadline
               and not self.stopping):
            await asyncio.sleep(0.05)
        queue.put(("ready", self.wid, self.open, time.monotonic() - ramp_started))
        lowest = highest = self.open
        while not self.stopping:
            await asyncio.sleep(0.5)
            lowest, highest = min(lowest, self.open), max(highest, self.open)
        self.stats.low("worker", "open_during_hold", lowest)
        self.stats.high("worker", "open_during_hold", highest)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sock in list(self.sockets):
            self.close(sock)
        lag.cancel()
        stopper.cancel()
        await asyncio.gather(lag, stopper, return_exceptions=True)
        queue.put(("result", self.wid, self.stats.as_dict()))

    async def run_client(self, kind, cid, first):
        try:
            await getattr(self, kind)(cid, first)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug of this script: reported, never silent
            self.stats.counts[kind]["client_crash"] += 1
            self.stats.example(f"{kind}: client raised {e!r}")


def worker_process(wid, plan, cfg, queue, stop_event):
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    worker = Worker(wid, plan, cfg, stop_event)
    asyncio.run(worker.main(queue))


# ---------------------------------------------------------------------------------------------
# The main process: the server, the figures, the verdict


def parse_mix(text):
    mix = {}
    for item in text.split(","):
        name, _, weight = item.partition("=")
        name = name.strip()
        if name not in KINDS:
            raise SystemExit(f"--mix: unknown client kind {name!r} (known: {', '.join(KINDS)})")
        mix[name] = float(weight)
    return mix


def make_plan(connections, mix, rng):
    total = sum(mix.values())
    counts = {k: int(connections * w / total) for k, w in mix.items()}
    biggest = max(mix, key=mix.get)
    counts[biggest] += connections - sum(counts.values())
    plan = []
    for kind, count in counts.items():
        plan += [(kind, i) for i in range(count)]
    rng.shuffle(plan)
    return plan, counts


def start_server(args, log):
    cpu, nofile = args.server_cpu, args.nofile

    def preexec():
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        except (ValueError, OSError):
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        os.setpgrp()  # Ctrl-C on the terminal reaches this script only

    proc = subprocess.Popen([args.server, "0", *args.server_arg], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with open(log.name, "rb") as f:
            for line in f:
                if b"listening on port" in line:
                    return proc, int(line.split()[-1])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    with open(log.name, "rb") as f:
        raise SystemExit("the server did not say it was listening:\n" + f.read().decode(errors="replace"))


def fresh_check(port, model, timeout=10.0):
    """A new connection, a GET and a POST on it, both checked exactly. None if fine."""
    async def run():
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await bounded(loop.sock_connect(sock, (HOST, port)), timeout)
            conn = Conn(sock)
            for method, target, body in ((b"GET", b"/fresh?after=soak", b""),
                                         (b"POST", b"/fresh/post", b"fresh body \x00\xff")):
                req = b"%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n" % (method, target)
                if body:
                    req += b"Content-Length: %d\r\n" % len(body)
                await bounded(loop.sock_sendall(sock, req + b"\r\n" + body), timeout)
                status, headers, rbody = await conn.read_response(loop, timeout)
                expected = model.expected(method, target, body)
                if status != b"HTTP/1.1 200 OK" or rbody != expected:
                    return f"{method.decode()} {target.decode()}: {status!r} {rbody[:80]!r}"
            return None
        except (OSError, TimeoutError, PeerClosed, BadResponse) as e:
            return repr(e)
        finally:
            sock.close()
    return asyncio.run(run())


def malloc_diagnosis(pid, log_name):
    """glibc's heap figures of the server, before and after malloc_trim(0), through gdb."""
    offset = os.path.getsize(log_name)
    before = rss_kib(pid)
    try:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx",
                        "-ex", "call (void)malloc_stats()", "-ex", "call (int)malloc_trim(0)",
                        "-ex", "call (void)malloc_stats()"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"gdb failed: {e!r}"
    time.sleep(0.3)
    after = rss_kib(pid)
    with open(log_name, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace").splitlines()
    totals = []  # (system bytes, in use bytes) of each "Total (incl. mmap):" block
    for i, line in enumerate(text):
        if line.startswith("Total (incl. mmap):") and i + 2 < len(text):
            try:
                totals.append((int(text[i + 1].split("=")[1]), int(text[i + 2].split("=")[1])))
            except (IndexError, ValueError):
                pass
    if len(totals) < 2:
        return "no malloc_stats output (ptrace refused?)"
    (sys0, use0), (sys1, use1) = totals[0], totals[1]
    return (f"in use {use0 / 2**20:.1f} MiB of {sys0 / 2**20:.1f} MiB held; after "
            f"malloc_trim(0): held {sys1 / 2**20:.1f} MiB, RSS {mib(before):.1f} -> "
            f"{mib(after):.1f} MiB")


def merge(results):
    counts = {k: collections.Counter() for k in KINDS}
    lo, hi, examples = {}, {}, []
    los = collections.defaultdict(list)
    for r in results:
        for k, c in r["counts"].items():
            counts[k].update(c)
        for key, v in r["lo"].items():
            los[key].append(v)
            lo[key] = min(lo.get(key, v), v)
        for key, v in r["hi"].items():
            hi[key] = max(hi.get(key, v), v)
        examples += r["examples"]
    # Open sockets during the hold: the sum of each worker's figure (a bound, not a sample).
    if "worker|open_during_hold" in los:
        lo["worker|open_during_hold"] = sum(los["worker|open_during_hold"])
    return counts, lo, hi, examples


def mib(kib):
    return kib / 1024.0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("server", nargs="?", default=DEFAULT_SERVER,
                   help="server binary, run as `SERVER 0 [--server-arg ...]`; it must print "
                        "'... listening on port N'")
    p.add_argument("--server-arg", action="append", default=[],
                   help="extra argument after the port (e.g. hello's thread count)")
    p.add_argument("--model", choices=sorted(MODELS), default=None,
                   help="what the server answers (default: hello if the binary is named hello, "
                        "else echo)")
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--seconds", type=float, default=60.0, help="hold time, after the ramp")
    p.add_argument("--mix", default=DEFAULT_MIX, help="client kinds and their weights")
    p.add_argument("--workers", type=int, default=1, help="client processes (all on --client-cpu)")
    p.add_argument("--ramp-rate", type=int, default=2000, help="new connections a second")
    p.add_argument("--ramp-timeout", type=float, default=120.0)
    p.add_argument("--think", type=float, default=6.0,
                   help="well-behaved clients pause 0..THINK s between exchanges (idle keep-alive "
                        "connections are parked after 1 s by default)")
    p.add_argument("--pipeline-depth", type=int, default=8,
                   help="most requests per batch of a pipelined client")
    p.add_argument("--small-body", type=int, default=2048, help="largest checked request body")
    p.add_argument("--large-body", type=int, default=6 << 20,
                   help="body echoed back to abort_resp clients (the large response): more than "
                        "the 4 MiB a loopback socket's send buffer takes, under maxBody (8 MiB)")
    p.add_argument("--abort-body-max", type=int, default=256 * 1024,
                   help="largest body announced by abort_body clients")
    p.add_argument("--never-read-body", type=int, default=4096)
    p.add_argument("--never-read-batches", type=int, default=128,
                   help=f"batches of {NEVER_READ_BATCH} requests a never_read client sends at most")
    p.add_argument("--slow-interval", type=float, nargs=2, default=(2.0, 4.0), metavar=("MIN", "MAX"),
                   help="seconds between slowloris header bytes")
    p.add_argument("--slow-first", type=float, default=5.0,
                   help="every other slowloris connection sends its first byte this late (0: none)")
    p.add_argument("--header-timeout", type=float, default=10.0,
                   help="the server's headerTimeout (s), to flag slowloris cut late")
    p.add_argument("--response-timeout", type=float, default=30.0)
    p.add_argument("--connect-timeout", type=float, default=30.0)
    p.add_argument("--max-iterations", type=int, default=1000000, help="per client")
    p.add_argument("--settle", type=float, default=30.0,
                   help="longest wait after the clients closed for the fds to come back")
    p.add_argument("--end-wait", type=float, default=1.0,
                   help="seconds to wait, once the fds are back, before the end figures")
    p.add_argument("--fd-margin", type=int, default=8, help="fds over the start allowed at the end")
    p.add_argument("--rss-margin-mib", type=float, default=50.0,
                   help="MiB of RSS over the start allowed at the end")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1)
    p.add_argument("--nofile", type=int, default=65536, help="RLIMIT_NOFILE wanted for both sides")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-log", action="store_true", help="keep the server's output file")
    p.add_argument("--malloc-stats", action="store_true",
                   help="at the end, attach gdb to the server and print glibc's malloc_stats "
                        "before and after malloc_trim(0): tells memory still in use (a leak) from "
                        "memory freed but kept by the allocator (diagnostic only; needs gdb and "
                        "ptrace)")
    args = p.parse_args()

    if not os.access(args.server, os.X_OK):
        raise SystemExit(f"no server binary at {args.server} (build it: see tests/soak/README.md)")
    model_name = args.model or ("hello" if os.path.basename(args.server) == "hello" else "echo")
    model = MODELS[model_name]
    mix = parse_mix(args.mix)
    if not model.large_responses and mix.get("abort_resp"):
        print(f"note: {model_name} has no large response; abort_resp clients get a small one")

    allowed = os.sched_getaffinity(0)
    for name in ("server_cpu", "client_cpu"):
        if getattr(args, name) not in allowed:
            print(f"note: CPU {getattr(args, name)} not available ({sorted(allowed)}): "
                  f"--{name.replace('_', '-')} not pinned")
            setattr(args, name, None)
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})
    soft, hard = raise_nofile(args.nofile)
    need = args.connections // max(1, args.workers) + 64
    if soft < need:
        raise SystemExit(f"RLIMIT_NOFILE is {soft} (hard {hard}); {need} needed per worker")

    rng = random.Random(args.seed)
    plan, planned = make_plan(args.connections, mix, rng)
    log = tempfile.NamedTemporaryFile(prefix="soak-server-", suffix=".log", delete=False)
    proc, port = start_server(args, log)
    pid = proc.pid
    failures = []
    try:
        server_limit = "?"
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    server_limit = line.split()[3]
        print(f"server {args.server} (pid {pid}, port {port}, model {model_name}, "
              f"CPU {args.server_cpu}, nofile {server_limit}); clients on CPU {args.client_cpu}, "
              f"nofile {soft}, {args.workers} worker(s)")
        warm = fresh_check(port, model)
        if warm:
            raise SystemExit(f"the server does not answer a first request: {warm}")
        time.sleep(0.5)
        start_rss, start_fds = rss_kib(pid), fd_count(pid)
        peak_rss, peak_fds = start_rss, start_fds
        print(f"start: RSS {mib(start_rss):.1f} MiB, {start_fds} fds; "
              f"{args.connections} connections: " +
              ", ".join(f"{k} {v}" for k, v in planned.items()))

        cfg = {"port": port, "model": model_name, "seed": args.seed, "seconds": args.seconds,
               "ramp_rate": max(1, args.ramp_rate // max(1, args.workers)),
               "ramp_timeout": args.ramp_timeout, "think": args.think,
               "pipeline_depth": max(2, args.pipeline_depth), "small_body": args.small_body,
               "large_body": args.large_body, "abort_body_max": max(2048, args.abort_body_max),
               "never_read_body": args.never_read_body,
               "never_read_batches": args.never_read_batches,
               "slow_interval": tuple(args.slow_interval), "slow_first": args.slow_first, "header_timeout": args.header_timeout,
               "response_timeout": args.response_timeout,
               "connect_timeout": args.connect_timeout, "max_iterations": args.max_iterations}
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        stop_event = ctx.Event()
        workers = []
        for wid in range(max(1, args.workers)):
            w = ctx.Process(target=worker_process,
                            args=(wid, plan[wid::max(1, args.workers)], cfg, queue, stop_event))
            w.start()
            workers.append(w)

        def sample():
            nonlocal peak_rss, peak_fds
            r, f = rss_kib(pid), fd_count(pid)
            peak_rss, peak_fds = max(peak_rss, r), max(peak_fds, f)
            return r, f

        # The ramp: until every worker has opened its connections.
        ready, results, messages = {}, {}, []
        t0 = time.monotonic()
        while len(ready) < len(workers) and time.monotonic() - t0 < args.ramp_timeout + 10:
            try:
                msg = queue.get(timeout=0.25)
                if msg[0] == "ready":
                    ready[msg[1]] = msg
            except queue_module.Empty:
                pass
            sample()
            if proc.poll() is not None or not any(w.is_alive() for w in workers):
                break
        ramp_s = time.monotonic() - t0
        opened = sum(m[2] for m in ready.values())
        r, f = sample()
        print(f"ramp: {opened} client sockets open after {ramp_s:.1f} s; server RSS "
              f"{mib(r):.1f} MiB, {f} fds")

        # The hold.
        hold_end = time.monotonic() + args.seconds
        hold_fds = []
        next_print = time.monotonic() + 5
        while time.monotonic() < hold_end and proc.poll() is None:
            time.sleep(0.25)
            r, f = sample()
            hold_fds.append(f)
            if time.monotonic() >= next_print:
                next_print += 5
                print(f"  t+{args.seconds - (hold_end - time.monotonic()):5.1f} s: server RSS "
                      f"{mib(r):7.1f} MiB, {f} fds", flush=True)
        stop_event.set()
        t1 = time.monotonic()
        while len(results) < len(workers) and time.monotonic() - t1 < 60:
            try:
                msg = queue.get(timeout=0.25)
                if msg[0] == "result":
                    results[msg[1]] = msg[2]
            except queue_module.Empty:
                if not any(w.is_alive() for w in workers):
                    break
            sample()
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
                w.join()
                failures.append(f"client worker {w.pid} did not end")
        closed_at = time.monotonic()
        print(f"clients closed {closed_at - t1:.1f} s after the stop")

        # Settle: the server must drop every connection the clients closed.
        settle_deadline = closed_at + args.settle
        while time.monotonic() < settle_deadline and proc.poll() is None:
            r, f = sample()
            if f <= start_fds + args.fd_margin:
                break
            time.sleep(0.25)
        fds_back_s = time.monotonic() - closed_at
        back_rss = rss_kib(pid)
        time.sleep(max(0.0, args.end_wait))  # RSS after the last frees
        end_rss, end_fds = rss_kib(pid), fd_count(pid)
        hwm = hwm_kib(pid)
        crashed = proc.poll()
        fresh = None if crashed is not None else fresh_check(port, model)
        with open(log.name, "rb") as f:
            server_lines = f.read().decode(errors="replace").splitlines()[1:]
        diagnosis = None
        if args.malloc_stats and crashed is None:
            diagnosis = malloc_diagnosis(pid, log.name)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()

    counts, lo, hi, examples = merge(results.values())

    # ---- the summary
    print()
    print(f"{'client kind':<12}{'conns':>7}{'connects':>10}{'ok':>10}{'wrong':>7}{'errors':>8}"
          f"{'conn.err':>9}  notes")
    for kind in KINDS:
        c = counts[kind]
        notes = []
        for key in sorted(c):
            if key not in ("connects", "ok", "wrong", "errors", "connect_errors"):
                notes.append(f"{key} {c[key]}")
        if kind == "slowloris" and f"{kind}|cut_s" in lo:
            notes.append(f"cut after {lo[kind + '|cut_s']}-{hi[kind + '|cut_s']} s")
        if kind == "slowloris" and f"{kind}|cut_s_first_byte_late" in lo:
            notes.append(f"with the first byte {args.slow_first:g} s late: after "
                         f"{lo[kind + '|cut_s_first_byte_late']}-"
                         f"{hi[kind + '|cut_s_first_byte_late']} s")
        print(f"{kind:<12}{planned.get(kind, 0):>7}{c['connects']:>10}{c['ok']:>10}"
              f"{c['wrong']:>7}{c['errors']:>8}{c['connect_errors']:>9}  {', '.join(notes)}")
    print()
    hold_min = min(hold_fds) if hold_fds else -1
    print(f"server RSS: start {mib(start_rss):.1f} MiB, peak {mib(peak_rss):.1f} MiB "
          f"(VmHWM {mib(hwm):.1f}), end {mib(end_rss):.1f} MiB ({mib(back_rss):.1f} MiB when "
          f"the fds were back, {args.end_wait:g} s before)")
    print(f"server fds: start {start_fds}, peak {peak_fds} (lowest during the hold {hold_min}), "
          f"end {end_fds} ({fds_back_s:.1f} s after the clients closed)")
    print(f"client sockets during the hold: >= {lo.get('worker|open_during_hold', '?')}; "
          f"ramp {ramp_s:.1f} s; client event loop lag <= {hi.get('worker|loop_lag_ms', '?')} ms")
    if diagnosis:
        print("server heap (glibc malloc_stats, through gdb): " + diagnosis)
    if server_lines:
        kinds = collections.Counter(server_lines)
        print(f"server output: {len(server_lines)} lines after the first, {len(kinds)} distinct:")
        for line, count in kinds.most_common(8):
            print(f"  {count:8d}  {line[:150]}")
    if examples:
        print("first problems seen:")
        for e in examples[:24]:
            print("  " + e)

    # ---- the verdict
    if crashed is not None:
        failures.append(f"the server exited during the run (status {crashed})")
    if len(results) < len(workers):
        failures.append(f"only {len(results)} of {len(workers)} client workers reported")
    for kind in KINDS:
        if counts[kind]["wrong"]:
            failures.append(f"{counts[kind]['wrong']} wrong responses ({kind})")
        if counts[kind]["client_crash"]:
            failures.append(f"{counts[kind]['client_crash']} client crashes ({kind}): a bug here")
    for kind in WELL_BEHAVED:
        if counts[kind]["errors"] or counts[kind]["connect_errors"]:
            failures.append(f"{counts[kind]['errors']} errors, {counts[kind]['connect_errors']} "
                            f"failed connects on well-behaved {kind} connections")
    if planned.get("slowloris") and counts["slowloris"]["not_cut"]:
        failures.append(f"{counts['slowloris']['not_cut']} slowloris connections never cut")
    if end_fds > start_fds + args.fd_margin:
        failures.append(f"fds leaked: {end_fds} at the end, {start_fds} at the start")
    if end_rss > start_rss + args.rss_margin_mib * 1024:
        failures.append(f"RSS at the end {mib(end_rss):.1f} MiB > start {mib(start_rss):.1f} "
                        f"+ {args.rss_margin_mib:g} MiB")
    if fresh:
        failures.append(f"a fresh request after the run failed: {fresh}")
    print()
    if not args.keep_log:
        os.unlink(log.name)
    else:
        print(f"server output kept in {log.name}")
    if failures:
        print("FAIL")
        for f in failures:
            print("  " + f)
        return 1
    print("PASS: every checked response exact, fds and RSS back near the start, "
          "a fresh request answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
