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

-- done(): the machine-readable result line, shared with the plain loads.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
