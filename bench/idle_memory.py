#!/usr/bin/env python3
"""Memory per idle keep-alive connection: RSS growth of a server after N connections have each
made one request and stay open. Loopback only, bounded in count and time.
Usage: bench/idle_memory.py SERVER_BINARY [N=10000] [SECONDS_IDLE_BEFORE_MEASURING=2.5]
(run with `ulimit -n` raised above N; the server is started as `SERVER_BINARY 0`)"""
import re
import resource
import socket
import subprocess
import sys
import time

hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
idle = float(sys.argv[3]) if len(sys.argv) > 3 else 2.5
server = subprocess.Popen(["taskset", "-c", "0", binary, "0"], stdout=subprocess.PIPE, text=True)
port = int(re.search(r"port (\d+)", server.stdout.readline()).group(1))


def rss_kib():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{server.pid}/status").read()).group(1))


try:
    warm = socket.create_connection(("127.0.0.1", port))  # one-time allocations not counted
    warm.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    warm.recv(4096)
    before = rss_kib()
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: idle-test\r\nAccept: */*\r\n\r\n"
    sockets = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(request)
        sockets.append(s)
    for s in sockets:
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    time.sleep(idle)
    after = rss_kib()
    print(f"{binary.split('/')[-1]}: {n} idle connections after {idle} s: RSS {before} -> {after} KiB,"
          f" {(after - before) * 1024 / n:.0f} bytes per connection")
    for s in sockets:
        s.close()
finally:
    server.kill()
    server.wait()
