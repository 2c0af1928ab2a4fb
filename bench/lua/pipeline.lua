-- wrk script: HTTP/1.1 pipelining, 16 GET requests in each write (as wrk's own
-- examples/scripts/pipeline.lua does with 3). wrk counts every response as a request, but
-- records one latency sample per batch: from the write of the 16 requests to the 16th response.
-- Depth: `wrk ... -s pipeline.lua URL -- 8` sends 8 per write instead of 16.

local depth = 16

init = function(args)
   if args[1] then depth = tonumber(args[1]) end
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format(nil, "/")
   end
   req = table.concat(r)
end

request = function()
   return req
end

-- done(): the machine-readable result line, shared with the plain loads.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
