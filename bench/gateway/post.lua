-- bench/gateway/post.lua -- wrk's own configuration (not product code):
-- makes every request of the run a POST of the same 1 KiB chat/completions
-- body with the caller token and a traceparent.  bench/gateway/run sets
-- the environment:
--   BENCH_BODY_FILE    the request body (bench/gateway/request.json)
--   BENCH_TOKEN_FILE   the caller token, sent as Authorization: Bearer
--   BENCH_TRACEPARENT  a W3C traceparent the gateway continues
--   BENCH_HEADERS_FILE optional: more headers, one "Name: value" a line
--                      (bench/report/run: Portkey's provider headers)
local function slurp(path)
   local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
   local s = f:read("*a")
   f:close()
   return s
end

local token = slurp(os.getenv("BENCH_TOKEN_FILE")):gsub("%s+$", "")

wrk.method = "POST"
wrk.body = slurp(os.getenv("BENCH_BODY_FILE"))
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["traceparent"] = os.getenv("BENCH_TRACEPARENT")

local extra = os.getenv("BENCH_HEADERS_FILE")
if extra and extra ~= "" then
   for line in slurp(extra):gmatch("[^\r\n]+") do
      local name, value = line:match("^([^:]+):%s*(.*)$")
      if name then wrk.headers[name] = value end
   end
end
