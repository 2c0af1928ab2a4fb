#!/usr/bin/env python3
"""Integration tests: the example servers, started on port 0, driven by real HTTP clients
(Python's http.client, curl, wrk) and raw sockets. Usage: test_examples.py EXAMPLES_DIR"""

import hashlib
import http.client
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

EXAMPLES = None
TIMEOUT = 10


class Server:
    """An example program listening on 127.0.0.1 and a free port, stopped on exit."""

    def __init__(self, name, *args):
        self.proc = subprocess.Popen([os.path.join(EXAMPLES, name), "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # "<name> listening on port N"
        match = re.search(r"port (\d+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"{name} did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(match.group(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def raw(self, data, read_until_close=True):
        """Sends raw bytes; returns everything received until the server closes (or times out)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as s:
            s.sendall(data)
            chunks = []
            while read_until_close:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)


def curl(*args):
    result = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT), *args],
                            capture_output=True, timeout=TIMEOUT + 5)
    return result


class HelloTests(unittest.TestCase):
    def test_http_client_keep_alive_across_requests(self):
        with Server("hello") as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            for path in ("/", "/a", "/b?c=d", "/"):
                conn.request("GET", path)
                response = conn.getresponse()
                self.assertEqual(response.status, 200)
                self.assertEqual(response.read(), b"Hello World")
                self.assertEqual(response.getheader("Content-Length"), "11")
                self.assertIsNotNone(response.getheader("Date"))
            conn.request("HEAD", "/")
            response = conn.getresponse()
            self.assertEqual(response.getheader("Content-Length"), "11")
            self.assertEqual(response.read(), b"")
            conn.close()

    def test_http10_client(self):
        with Server("hello") as server:
            reply = server.raw(b"GET / HTTP/1.0\r\n\r\n")
            self.assertTrue(reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply)
            self.assertTrue(reply.endswith(b"\r\n\r\nHello World"), reply)

    def test_pipelined_requests_over_a_raw_socket(self):
        with Server("hello") as server:
            requests = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 50
            reply = server.raw(requests + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertEqual(reply.count(b"HTTP/1.1 200 OK\r\n"), 51)
            self.assertEqual(reply.count(b"Hello World"), 51)

    def test_malformed_input_gets_400_and_close(self):
        with Server("hello") as server:
            for bad in (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
                        b"\x00\x01\x02garbage\r\n\r\n"):
                reply = server.raw(bad)
                self.assertTrue(reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply)
                self.assertIn(b"Connection: close\r\n", reply)
            # The server survives and still serves.
            self.assertTrue(server.raw(b"GET / HTTP/1.0\r\n\r\n").endswith(b"Hello World"))

    @unittest.skipUnless(shutil.which("wrk"), "wrk is not installed")
    def test_wrk_short_run_has_no_errors(self):
        with Server("hello") as server:
            result = subprocess.run(["wrk", "-t1", "-c32", "-d2s", server.url()],
                                    capture_output=True, text=True, timeout=30)
            out = result.stdout
            self.assertEqual(result.returncode, 0, out + result.stderr)
            self.assertNotIn("Socket errors", out, out)
            self.assertNotIn("Non-2xx", out, out)
            requests = int(re.search(r"(\d+) requests in", out).group(1))
            self.assertGreater(requests, 1000, out)


class JsonTests(unittest.TestCase):
    def test_hello_world_json_and_404(self):
        with Server("json") as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            conn.request("GET", "/hello-world")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            self.assertEqual(response.getheader("Content-Type"), "application/json")
            self.assertEqual(json.loads(response.read()), {"message": "Hello World"})
            conn.request("GET", "/other")
            response = conn.getresponse()
            self.assertEqual(response.status, 404)
            self.assertEqual(response.read(), b"Not Found")
            conn.close()


class EchoTests(unittest.TestCase):
    def test_curl_keep_alive_across_urls(self):
        with Server("echo") as server:
            result = curl("-v", server.url("/one"), server.url("/two?x=1"), server.url("/three"))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, b"GET /one\nGET /two?x=1\nGET /three\n")
            self.assertIn(b"Re-using existing connection", result.stderr)

    def test_curl_binary_bodies_with_and_without_expect(self):
        body = bytes(random.Random(7).getrandbits(8) for _ in range(300_000))
        with Server("echo") as server, tempfile.NamedTemporaryFile() as f:
            f.write(body)
            f.flush()
            for extra in ([], ["-H", "Expect:"], ["-H", "Transfer-Encoding: chunked"]):
                result = curl("-X", "PUT", "--data-binary", "@" + f.name, *extra,
                              "-H", "Content-Type: application/octet-stream", server.url("/up"))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout, b"PUT /up\n" + body, extra)

    def test_curl_expect_100_continue_is_answered(self):
        with Server("echo") as server:
            result = curl("-v", "--data-binary", "x" * 2000, "-H", "Expect: 100-continue",
                          server.url("/c"))
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn(b"HTTP/1.1 100 Continue", result.stderr)
            self.assertEqual(result.stdout, b"POST /c\n" + b"x" * 2000)

    def test_http_client_chunked_body_and_every_method(self):
        with Server("echo") as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                # An iterable body without a length: http.client sends it chunked.
                conn.request(method, "/m", body=iter([b"ab", b"cd"]))
                response = conn.getresponse()
                self.assertEqual(response.read(), f"{method} /m\nabcd".encode())
            conn.close()

    def test_body_over_the_limit_gets_413(self):
        with Server("echo") as server:
            reply = server.raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n")
            self.assertTrue(reply.startswith(b"HTTP/1.1 413 "), reply)


class UploadTests(unittest.TestCase):
    def test_curl_uploads_are_streamed_to_disk_with_their_digest(self):
        body = random.Random(11).randbytes(3_000_000)
        with tempfile.TemporaryDirectory() as folder, tempfile.NamedTemporaryFile() as f, \
                Server("upload", folder) as server:
            f.write(body)
            f.flush()
            for extra in ([], ["-H", "Transfer-Encoding: chunked"], ["-H", "Expect:"]):
                result = curl("-T", f.name, *extra, server.url("/big.bin"))
                self.assertEqual(result.returncode, 0, result.stderr)
                answer = json.loads(result.stdout)
                self.assertEqual(answer["bytes"], len(body), extra)
                self.assertEqual(answer["sha256"], hashlib.sha256(body).hexdigest(), extra)
                with open(answer["file"], "rb") as written:
                    self.assertEqual(written.read(), body, extra)

    def test_get_is_refused(self):
        with tempfile.TemporaryDirectory() as folder, Server("upload", folder) as server:
            result = curl("-o", "/dev/null", "-w", "%{http_code}", server.url("/"))
            self.assertEqual(result.stdout, b"405")


class SseTests(unittest.TestCase):
    def test_events_arrive_one_by_one_as_a_chunked_stream(self):
        with Server("sse") as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            conn.request("GET", "/events?count=3&interval=150")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            self.assertEqual(response.getheader("Content-Type"), "text/event-stream")
            self.assertEqual(response.getheader("Transfer-Encoding"), "chunked")
            started = time.monotonic()
            first = response.readline()
            self.assertEqual(first, b"data: 1\n")
            self.assertLess(time.monotonic() - started, 0.14)  # not held until the stream ends
            rest = response.read()
            self.assertEqual(b"\n" + rest, b"\n\ndata: 2\n\ndata: 3\n\n")
            conn.close()


class ShutdownTests(unittest.TestCase):
    """SIGTERM and SIGINT stop a server gracefully; systemd's socket activation starts one."""

    def test_sigterm_lets_a_stream_in_flight_end_then_exits_cleanly(self):
        with Server("sse") as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            conn.request("GET", "/events?count=1000&interval=100")
            response = conn.getresponse()
            self.assertEqual(response.status, 200)
            self.assertEqual(response.readline(), b"data: 1\n")
            started = time.monotonic()
            server.proc.send_signal(15)  # SIGTERM
            body = response.read()  # the stream ends after its current event: complete
            self.assertTrue(body.endswith(b"\n\n"), body)
            self.assertEqual(server.proc.wait(TIMEOUT), 0)
            self.assertLess(time.monotonic() - started, 3)
            conn.close()

    def test_sigint_stops_hello_and_no_new_connection_is_accepted(self):
        with Server("hello") as server:
            self.assertEqual(server.raw(b"GET / HTTP/1.0\r\n\r\n")[:15], b"HTTP/1.1 200 OK")
            server.proc.send_signal(2)  # SIGINT
            self.assertEqual(server.proc.wait(TIMEOUT), 0)
            self.assertIn("shutting down", server.proc.stderr.read())
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)

    def test_hello_serves_a_socket_passed_by_systemd(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]

        # Passed as descriptor 3, as systemd does; whatever this process has there is kept.
        try:
            saved = os.dup(3)
        except OSError:
            saved = None
        os.dup2(listener.fileno(), 3)
        try:
            # The shell's pid is the server's after exec, as systemd sets LISTEN_PID.
            proc = subprocess.Popen(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0"',
                                     os.path.join(EXAMPLES, "hello")],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    pass_fds=(3,))
        finally:
            if saved is None:
                os.close(3)
            else:
                os.dup2(saved, 3)
                os.close(saved)
        try:
            self.assertIn("systemd", proc.stdout.readline())
            listener.close()  # the server holds its own copy
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                reply = b""
                while chunk := s.recv(65536):
                    reply += chunk
            self.assertTrue(reply.endswith(b"Hello World"), reply)
            proc.send_signal(15)
            self.assertEqual(proc.wait(TIMEOUT), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


class FilesTests(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.content = random.Random(5).randbytes(5_000_000)
        with open(os.path.join(self.folder.name, "data.bin"), "wb") as f:
            f.write(self.content)
        with open(os.path.join(self.folder.name, "index.html"), "w") as f:
            f.write("<h1>index</h1>")

    def tearDown(self):
        self.folder.cleanup()

    def test_curl_whole_file_ranges_and_conditional_get(self):
        with Server("files", self.folder.name) as server:
            result = curl("-D", "-", "-o", "/dev/null", server.url("/data.bin"))
            headers = result.stdout.decode()
            self.assertIn("200 OK", headers)
            etag = re.search(r"(?i)etag: (\S+)", headers).group(1)
            whole = curl(server.url("/data.bin"))
            self.assertEqual(whole.stdout, self.content)
            part = curl("-r", "1000-1999", server.url("/data.bin"))
            self.assertEqual(part.stdout, self.content[1000:2000])
            tail = curl("-r", "-100", server.url("/data.bin"))
            self.assertEqual(tail.stdout, self.content[-100:])
            code = curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: " + etag,
                        server.url("/data.bin"))
            self.assertEqual(code.stdout, b"304")
            code = curl("-o", "/dev/null", "-w", "%{http_code}", "-r", "9999999-",
                        server.url("/data.bin"))
            self.assertEqual(code.stdout, b"416")

    def test_clients_leaving_mid_file_never_kill_the_server(self):
        # sendfile(2) has no MSG_NOSIGNAL: without care, the peer's reset raises SIGPIPE.
        with Server("files", self.folder.name) as server:
            for i in range(10):
                with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as s:
                    s.sendall(b"GET /data.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    if i % 2:
                        s.recv(1000)  # then a reset: bytes were left unread
                    # else closed at once (a FIN): the server writes into a closed connection
                time.sleep(0.02)
            self.assertIsNone(server.proc.poll(), "the server died")
            self.assertEqual(curl(server.url("/")).stdout, b"<h1>index</h1>")

    def test_index_head_missing_and_climbing_out(self):
        with Server("files", self.folder.name) as server:
            self.assertEqual(curl(server.url("/")).stdout, b"<h1>index</h1>")
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
            conn.request("HEAD", "/data.bin")
            response = conn.getresponse()
            self.assertEqual(response.getheader("Content-Length"), str(len(self.content)))
            self.assertEqual(response.read(), b"")
            conn.request("GET", "/index.html")  # the same connection: nothing leaked
            self.assertEqual(conn.getresponse().read(), b"<h1>index</h1>")
            conn.close()
            for path in (b"/missing", b"/../etc/passwd", b"/%2e%2e/etc/passwd"):
                reply = server.raw(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                self.assertTrue(reply.startswith(b"HTTP/1.1 404 "), reply)


def main():
    global EXAMPLES
    EXAMPLES = sys.argv.pop(1)
    unittest.main(verbosity=2)


if __name__ == "__main__":
    main()
