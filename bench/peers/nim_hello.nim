# Nim's asynchttpserver Hello World: the seed's example (the one in Nim's asynchttpserver
# documentation), without its per-request `echo` and extra header: every request gets
# respond(Http200, "Hello World"). Single-threaded, one asyncdispatch loop.
# Usage: nim_hello [port]   (default 8080; 0 picks a free one). Listens on 127.0.0.1.
# Build: nim c -d:release nim_hello.nim
import std/[asynchttpserver, asyncdispatch, os, strutils]

proc main {.async.} =
  let port = if paramCount() >= 1: parseInt(paramStr(1)) else: 8080
  var server = newAsyncHttpServer()
  proc cb(req: Request) {.async.} =
    await req.respond(Http200, "Hello World")

  server.listen(Port(port), "127.0.0.1")
  echo "nim_hello listening on port ", server.getPort.uint16
  while true:
    if server.shouldAcceptRequest():
      await server.acceptRequest(cb)
    else:
      # too many concurrent connections, `maxFDs` exceeded: wait for descriptors to close
      await sleepAsync(500)

waitFor main()
