#!/usr/bin/env python3
"""Integration tests behind real proxies (issue 10): Debian's nginx and HAProxy in front of the
example servers (echo, upload, hello), all on free ports of 127.0.0.1, configured in a temporary
folder and run as the current user. Usage: test_proxies.py EXAMPLES_DIR

Skipped only when the nginx or haproxy binary is absent (scripts/install-deps.sh installs both).
The configurations written here are the ones docs/DEPLOYMENT.md shows."""

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

EXAMPLES = None
TIMEOUT = 10  # seconds: every connect, read and start-up wait is bounded by it
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
NGINX = shutil.which("nginx", path=SBIN_PATH)
HAPROXY = shutil.which("haproxy", path=SBIN_PATH)
BIG = random.Random(10).randbytes(6 * 1024 * 1024 + 12345)  # 6 MiB and an odd tail


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, what, log_files=()):
    """Waits (bounded) until 127.0.0.1:port accepts connections; fails if `proc` exits first."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    logs = ""
    for name in log_files:
        if os.path.exists(name):
            with open(name, errors="replace") as f:
                logs += f"\n--- {name}:\n" + f.read()[-4000:]
    raise RuntimeError(f"{what} did not start listening on {port} (exit {proc.poll()}){logs}")


def stop(proc, sig=signal.SIGTERM):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def upstream_connections(port):
    """TCP connections to 127.0.0.1:port that this network namespace holds or still remembers
    (TIME_WAIT keeps a closed one for 60 s), as {client-side port: established?}. Read from
    /proc/net/tcp, so the server's accepted connections are counted without its help."""
    found = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            remote_port = int(fields[2].split(":")[1], 16)
            established = fields[3] == "01"
            if local_port == port and remote_port != 0:  # the server's side
                key = remote_port
            elif remote_port == port:  # the proxy's side
                key = local_port
            else:
                continue
            found[key] = found.get(key, False) or established
    return found


class Backend:
    """An example program on 127.0.0.1 and a free port (it prints "<name> listening on port N")."""

    def __init__(self, name, folder, *args):
        self.name = name
        self.stderr_path = os.path.join(folder, name + ".stderr")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([os.path.join(EXAMPLES, name), "0", *args],
                                         stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            line = self.proc.stdout.readline()
            match = re.search(r"port (\d+)", line)
            if not match:
                raise RuntimeError(f"{name} did not start: {line!r}")
            self.port = int(match.group(1))
        except BaseException:
            self.stop()
            raise

    def stop(self):
        stop(self.proc)
        self.proc.stdout.close()

    def alive(self):
        return self.proc.poll() is None


# The nginx configuration (docs/DEPLOYMENT.md shows the same). {echo}, {upload} and {hello} are
# the backends' ports; {buffered} and {streamed} the two listening ports, which differ only in
# proxy_request_buffering.
NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    # keepalive_timeout: shorter than asynchttp's idleTimeout (60 s by default), so that nginx,
    # not asynchttp, closes an idle upstream connection.
    upstream echo {{ server 127.0.0.1:{echo}; keepalive 16; keepalive_timeout 30s; }}
    upstream upload {{ server 127.0.0.1:{upload}; keepalive 16; keepalive_timeout 30s; }}
    upstream hello {{ server 127.0.0.1:{hello}; keepalive 16; keepalive_timeout 30s; }}

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    client_max_body_size 8m;  # asynchttp's maxBody (8 MiB by default): nginx refuses first

    server {{
        listen 127.0.0.1:{buffered};
        proxy_request_buffering on;
        location /upload/ {{ proxy_pass http://upload; client_max_body_size 1g; }}
        location /hello   {{ proxy_pass http://hello; }}
        location /        {{ proxy_pass http://echo; }}
    }}
    server {{
        listen 127.0.0.1:{streamed};
        proxy_request_buffering off;
        location /upload/ {{ proxy_pass http://upload; client_max_body_size 1g; }}
        location /hello   {{ proxy_pass http://hello; }}
        location /        {{ proxy_pass http://echo; }}
    }}
}}
"""

# The HAProxy configuration (docs/DEPLOYMENT.md shows the same). Each request is logged to
# stdout as "<status> <termination state> <request line>".
HAPROXY_CONF = """\
global
    log stdout format raw local0
    maxconn 256

defaults
    mode http
    log global
    log-format "%ST %tsc %{{+Q}}r"
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 10s

frontend web
    bind 127.0.0.1:{front}
    use_backend upload if {{ path_beg /upload/ }}
    use_backend hello if {{ path_beg /hello }}
    default_backend echo

backend echo
    server echo1 127.0.0.1:{echo}
backend upload
    server upload1 127.0.0.1:{upload}
backend hello
    server hello1 127.0.0.1:{hello}
"""


class Nginx:
    def __init__(self, folder, backends):
        self.dir = folder
        self.error_log = os.path.join(folder, "error.log")
        self.log_offset = 0
        for attempt in range(3):  # a free port taken by someone else in between: try again
            self.ports = {"buffered": free_port(), "streamed": free_port()}
            conf = os.path.join(folder, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(dir=folder, **backends, **self.ports))
            with open(os.path.join(folder, "nginx.out"), "wb") as out:
                self.proc = subprocess.Popen([NGINX, "-p", folder, "-c", conf, "-e", self.error_log],
                                             stdout=out, stderr=subprocess.STDOUT)
            try:
                for port in self.ports.values():
                    wait_for_port(port, self.proc, "nginx",
                                  [self.error_log, os.path.join(folder, "nginx.out")])
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise

    def stop(self):
        stop(self.proc, signal.SIGTERM)  # fast shutdown

    def new_problems(self):
        """Error-log lines of level error or worse written since the last call."""
        with open(self.error_log, errors="replace") as f:
            f.seek(self.log_offset)
            text = f.read()
            self.log_offset = f.tell()
        return [l for l in text.splitlines() if re.search(r"\[(error|crit|alert|emerg)\]", l)]


class Haproxy:
    def __init__(self, folder, backends):
        self.out_path = os.path.join(folder, "haproxy.out")
        self.log_offset = 0
        for attempt in range(3):
            self.ports = {"front": free_port()}
            conf = os.path.join(folder, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write(HAPROXY_CONF.format(**backends, **self.ports))
            with open(self.out_path, "wb") as out:
                self.proc = subprocess.Popen([HAPROXY, "-f", conf, "-db"],
                                             stdout=out, stderr=subprocess.STDOUT)
            try:
                wait_for_port(self.ports["front"], self.proc, "haproxy", [self.out_path])
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise

    def stop(self):
        stop(self.proc, signal.SIGUSR1)  # soft stop; killed after 5 s

    def new_problems(self):
        """Log lines since the last call whose status is 5xx or whose termination state blames
        the server side (S...) or a proxy-side error (P..., R..., I...)."""
        with open(self.out_path, errors="replace") as f:
            f.seek(self.log_offset)
            text = f.read()
            self.log_offset = f.tell()
        problems = []
        for line in text.splitlines():
            match = re.match(r"(-?\d+) (\S{2,4}) ", line)
            if match and (match.group(1).startswith("5") or match.group(2)[0] in "SPRI"):
                problems.append(line)
            elif re.search(r"\[(ALERT|EMERG)\]", line):
                problems.append(line)
        return problems


def read_response(f, head_request=False):
    """One HTTP/1.1 response from the buffered reader `f`: (status, {lowercase name: value},
    body). Content-Length and chunked framing only (what the proxies send)."""
    status_line = f.readline()
    if not status_line:
        raise EOFError("the connection closed before a response")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = bytearray()
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b""):  # trailers
                    pass
                return status, headers, bytes(body)
            body += f.read(size)
            f.readline()
    length = int(headers.get("content-length", "0"))
    return status, headers, f.read(length)


def chunked(data, size):
    for i in range(0, len(data), size):
        yield data[i:i + size]


class ProxyTests:
    """The same checks through each proxy. A subclass sets `missing_binary_check`,
    `start_proxy` and `port`."""

    @classmethod
    def setUpClass(cls):
        if EXAMPLES is None:
            raise unittest.SkipTest("usage: test_proxies.py EXAMPLES_DIR")
        cls.missing_binary_check()
        tmp = tempfile.TemporaryDirectory(prefix="asynchttp-proxy-")
        cls.addClassCleanup(tmp.cleanup)
        cls.folder = tmp.name
        uploads = os.path.join(cls.folder, "uploads")
        os.mkdir(uploads)
        cls.backends = {}
        for name, args in (("echo", ()), ("upload", (uploads,)), ("hello", ())):
            backend = Backend(name, cls.folder, *args)
            cls.addClassCleanup(backend.stop)
            cls.backends[name] = backend
        cls.proxy = cls.start_proxy(cls.folder, {n: b.port for n, b in cls.backends.items()})
        cls.addClassCleanup(cls.proxy.stop)

    def setUp(self):
        self.proxy.new_problems()  # what earlier tests left is theirs
        self.expected_problem = None  # a regular expression for a line a test causes

    def tearDown(self):
        for backend in self.backends.values():
            if not backend.alive():
                with open(backend.stderr_path, errors="replace") as f:
                    self.fail(f"{backend.name} died: {f.read()}")
        problems = [line for line in self.proxy.new_problems()
                    if not (self.expected_problem and re.search(self.expected_problem, line))]
        self.assertEqual(problems, [], "the proxy logged problems")

    def connect(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        self.addCleanup(conn.close)
        return conn

    def exchange(self, conn, method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response

    def test_plain_get_and_keep_alive_from_the_client(self):
        conn = self.connect()
        for path in ("/", "/a/b?c=d", "/"):
            status, body, _ = self.exchange(conn, "GET", path)
            self.assertEqual((status, body), (200, f"GET {path}\n".encode()))
        status, body, response = self.exchange(conn, "GET", "/hello")
        self.assertEqual((status, body), (200, b"Hello World"))
        self.assertEqual(response.getheader("Content-Length"), "11")
        status, body, response = self.exchange(conn, "HEAD", "/hello")
        self.assertEqual((status, body), (200, b""))

    def test_body_with_content_length(self):
        conn = self.connect()
        for size in (1, 1000, 70_000):
            data = random.Random(size).randbytes(size)
            status, body, _ = self.exchange(conn, "POST", "/cl", body=data)
            self.assertEqual((status, body), (200, b"POST /cl\n" + data), size)
        status, body, _ = self.exchange(conn, "PUT", "/empty", body=b"")
        self.assertEqual((status, body), (200, b"PUT /empty\n"))

    def test_chunked_request_body(self):
        conn = self.connect()
        pieces = [b"a", b"bc" * 100, b"\r\n0\r\n\r\n", random.Random(3).randbytes(40_000)]
        status, body, _ = self.exchange(conn, "POST", "/chunked", body=iter(pieces))
        self.assertEqual((status, body), (200, b"POST /chunked\n" + b"".join(pieces)))
        # The same connection goes on.
        status, body, _ = self.exchange(conn, "GET", "/after")
        self.assertEqual((status, body), (200, b"GET /after\n"))

    def test_large_bodies_checked_by_content(self):
        conn = self.connect()
        status, body, _ = self.exchange(conn, "PUT", "/big", body=BIG)
        self.assertEqual(status, 200)
        self.assertTrue(body == b"PUT /big\n" + BIG, "the echoed 6 MiB differ")
        status, body, _ = self.exchange(conn, "PUT", "/big-chunked", body=chunked(BIG, 256 * 1024))
        self.assertEqual(status, 200)
        self.assertTrue(body == b"PUT /big-chunked\n" + BIG, "the echoed chunked 6 MiB differ")
        digest = hashlib.sha256(BIG).hexdigest()
        for name, data in (("cl", BIG), ("chunked", chunked(BIG, 100_000))):
            status, body, _ = self.exchange(conn, "PUT", f"/upload/{name}", body=data)
            self.assertEqual(status, 201, body)
            answer = json.loads(body)
            self.assertEqual((answer["bytes"], answer["sha256"]), (len(BIG), digest), name)
            with open(answer["file"], "rb") as written:
                self.assertTrue(written.read() == BIG, f"the stored upload ({name}) differs")

    def test_pipelined_requests_from_the_client(self):
        data = random.Random(4).randbytes(5000)
        requests = [
            (b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /p1\n"),
            (b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + data,
             b"POST /p2\n" + data),
            (b"POST /p3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n", b"POST /p3\nabc0123456789abcdef"),
            (b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", b"Hello World"),
            (b"DELETE /p5?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", b"DELETE /p5?q=1\n"),
        ] * 4
        requests.append((b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         b"GET /last\n"))
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(b"".join(r for r, _ in requests))  # one write
            f = s.makefile("rb")
            for i, (_, expected) in enumerate(requests):
                status, _, body = read_response(f)
                self.assertEqual((status, body), (200, expected), f"response {i}")
            self.assertEqual(f.read(), b"", "bytes after the last response")

    def test_keep_alive_to_the_upstream(self):
        echo = self.backends["echo"].port
        # The count works: direct connections show up.
        direct = [socket.create_connection(("127.0.0.1", echo), timeout=TIMEOUT) for _ in range(3)]
        direct_ports = {s.getsockname()[1] for s in direct}
        seen = upstream_connections(echo)
        self.assertTrue(direct_ports <= set(seen), seen)
        for s in direct:
            s.close()
        before = set(upstream_connections(echo))
        requests = 12
        for i in range(requests):  # a new client connection for each request
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
            try:
                status, body, _ = self.exchange(conn, "POST", f"/k{i}", body=b"x" * i)
                self.assertEqual((status, body), (200, f"POST /k{i}\n".encode() + b"x" * i))
            finally:
                conn.close()
        after = upstream_connections(echo)
        opened = set(after) - before
        self.assertLessEqual(len(opened), 2, f"{requests} requests opened {len(opened)} "
                             "connections to asynchttp: the proxy does not reuse them")
        # An idle connection stays open to asynchttp, from the proxy's pool.
        self.assertTrue(any(established for port, established in after.items()
                            if port not in direct_ports), after)

    def test_parked_upstream_connection_is_reused(self):
        # asynchttp parks a keep-alive connection idle for idleRelease (1 s by default): the
        # proxy's pooled connection then wakes from the parked state for its next request.
        echo = self.backends["echo"].port
        conn = self.connect()
        status, body, _ = self.exchange(conn, "GET", "/before")
        self.assertEqual((status, body), (200, b"GET /before\n"))
        before = set(upstream_connections(echo))
        time.sleep(1.3)
        status, body, _ = self.exchange(conn, "POST", "/after-park", body=b"z" * 3000)
        self.assertEqual((status, body), (200, b"POST /after-park\n" + b"z" * 3000))
        self.assertEqual(set(upstream_connections(echo)) - before, set(),
                         "the parked upstream connection was not reused")

    def test_expect_100_continue(self):
        # nginx answers 100 Continue itself; HAProxy passes the expectation to asynchttp.
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(b"PUT /expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            f = s.makefile("rb")
            status, _, _ = read_response(f)
            self.assertEqual(status, 100)
            s.sendall(b"hello")
            status, _, body = read_response(f)
            self.assertEqual((status, body), (200, b"PUT /expect\nhello"))

    def test_body_over_the_limit_gets_413(self):
        # nginx refuses it itself (client_max_body_size matches maxBody); behind HAProxy,
        # asynchttp answers 413 as soon as it has the head.
        self.expected_problem = r"client intended to send too large body"
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(b"PUT /too-big HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n")
            status, _, _ = read_response(s.makefile("rb"))
            self.assertEqual(status, 413)

    def test_request_carrying_its_own_x_forwarded_for(self):
        # The proxies append the client's address; no example shows request headers, so the
        # handler's view is not observable here: asynchttp must accept and answer it.
        conn = self.connect()
        status, body, _ = self.exchange(conn, "GET", "/xff",
                                        headers={"X-Forwarded-For": "203.0.113.7"})
        self.assertEqual((status, body), (200, b"GET /xff\n"))


def nginx_missing():
    if NGINX is None:
        raise unittest.SkipTest("nginx is not installed (scripts/install-deps.sh installs it)")


def haproxy_missing():
    if HAPROXY is None:
        raise unittest.SkipTest("haproxy is not installed (scripts/install-deps.sh installs it)")


class NginxRequestBufferingTests(ProxyTests, unittest.TestCase):
    """nginx reads the whole request body (to memory or a temp file), then sends it upstream with
    Content-Length, even when the client sent it chunked."""
    missing_binary_check = staticmethod(nginx_missing)

    @staticmethod
    def start_proxy(folder, backends):
        return Nginx(folder, backends)

    @property
    def port(self):
        return self.proxy.ports["buffered"]


class NginxStreamingTests(ProxyTests, unittest.TestCase):
    """proxy_request_buffering off: nginx streams the body upstream as it arrives, chunked when
    the client's was."""
    missing_binary_check = staticmethod(nginx_missing)

    @staticmethod
    def start_proxy(folder, backends):
        return Nginx(folder, backends)

    @property
    def port(self):
        return self.proxy.ports["streamed"]


class HaproxyTests(ProxyTests, unittest.TestCase):
    missing_binary_check = staticmethod(haproxy_missing)

    @staticmethod
    def start_proxy(folder, backends):
        return Haproxy(folder, backends)

    @property
    def port(self):
        return self.proxy.ports["front"]


def main():
    global EXAMPLES
    EXAMPLES = sys.argv.pop(1) if len(sys.argv) > 1 else None
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
