-- wrk script: POST a 1 MiB request body (1 048 576 bytes of 'x', Content-Length framed) on
-- every request, for the echo servers, which send it back. The request is built once, in init.
-- Size: `wrk ... -s post.lua URL -- 65536` posts 64 KiB instead (done() runs in wrk's
-- separate setup/done Lua state, where init never ran, so it does not print the size).

local size = 1048576

init = function(args)
   if args[1] then size = tonumber(args[1]) end
   local headers = { ["Content-Type"] = "application/octet-stream" }
   req = wrk.format("POST", "/", headers, string.rep("x", size))
end

request = function()
   return req
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%.1f p99_us=%.1f " ..
      "connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50.0), latency:percentile(99.0),
      e.connect, e.read, e.write, e.status, e.timeout))
end
