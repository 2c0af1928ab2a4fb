-- wrk script for the plain loads (keep-alive, 1 000 connections, connection churn):
-- wrk's default GET request, plus one machine-readable line at the end for bench/run.
-- Latency figures are wrk's, in microseconds.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d bytes=%d p50_us=%.1f p99_us=%.1f " ..
      "connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration, summary.bytes,
      latency:percentile(50.0), latency:percentile(99.0),
      e.connect, e.read, e.write, e.status, e.timeout))
end
