-- tests/memory/mix.lua -- wrk's configuration (test code): every
-- connection sends the same cycle of eight governed calls, so a run is the
-- mix in fixed proportions, and stops once it has had MEM_REQUESTS
-- answers (wrk -t1 only; -d is only a bound):
--
--   ALLOW  200  4 in 8  chat/completions, gpt-4o-mini
--   DENY   403  1 in 8  chat/completions, gpt-4-32k (rule deny-32k)
--   401         1 in 8  a token signed with a key the gateway does not know
--   400         1 in 8  chat/completions with a body that is not JSON
--   428         1 in 8  a ServiceNow incident write (REQUIRE_HITL)
--
-- done() prints one line: "mix: answers=N 200=a 403=b 401=c 400=d 428=e
-- other=f", which tests/memory/* parse.  Environment: MEM_TOKEN_FILE,
-- MEM_BADTOKEN_FILE, MEM_REQUESTS, MEM_DONE_FILE.

local function slurp(path)
   local f = assert(io.open(path, "rb"), "cannot open " .. tostring(path))
   local s = f:read("*a")
   f:close()
   return (s:gsub("%s+$", ""))
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local reqs, n, quota, pid
counts = {}
answers = 0

function init(args)
   local token = slurp(os.getenv("MEM_TOKEN_FILE"))
   local bad = slurp(os.getenv("MEM_BADTOKEN_FILE"))
   local total = tonumber(os.getenv("MEM_REQUESTS") or "100000")
   quota = total
   n = 0
   -- wrk's main thread sleeps for -d whatever its threads do: a thread
   -- that has had its answers stops and interrupts that sleep (SIGINT,
   -- upon which wrk reports as at the end of -d)
   local f = assert(io.open("/proc/self/stat", "r"))
   pid = f:read("*l"):match("^(%d+)")
   f:close()

   local tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
   local function h(tok)
      return { ["Content-Type"] = "application/json",
               ["Authorization"] = "Bearer " .. tok,
               ["traceparent"] = tp }
   end
   local chat = "/v1/chat/completions"
   local allow = '{"model":"gpt-4o-mini","max_tokens":64,"messages":'
      .. '[{"role":"user","content":"Summarize INC0010001 in one line."}]}'
   local deny = '{"model":"gpt-4-32k","messages":'
      .. '[{"role":"user","content":"hello"}]}'
   local broken = '{"model":"gpt-4o-mini","messages":[{"role":'
   local write = '{"category":"network","priority":"2",'
      .. '"work_notes":"memory test: reassign to Network Operations"}'

   reqs = {
      wrk.format("POST", chat, h(token), allow),
      wrk.format("POST", chat, h(token), deny),
      wrk.format("POST", chat, h(token), allow),
      wrk.format("POST", chat, h(bad), allow),
      wrk.format("POST", chat, h(token), allow),
      wrk.format("POST", chat, h(token), broken),
      wrk.format("POST", chat, h(token), allow),
      wrk.format("POST", "/api/now/table/incident", h(token), write),
   }
end

function request()
   n = n + 1
   return reqs[(n - 1) % #reqs + 1]
end

function response(status, headers, body)
   counts[status] = (counts[status] or 0) + 1
   answers = answers + 1
   if answers == quota then
      wrk.thread:stop()
      -- not os.execute: system() ignores SIGINT while its child runs.
      -- The signal may land on this thread rather than on the main one
      -- (then wrk goes on sleeping): MEM_DONE_FILE tells run_mix
      -- (common.sh) to send it again until wrk exits.
      local d = io.open(os.getenv("MEM_DONE_FILE") or "/dev/null", "w")
      if d then d:close() end
      local k = io.popen("kill -INT " .. pid)
      k:close()
   end
end

function done(summary, latency, requests)
   local c, total = {}, 0
   for _, t in ipairs(threads) do
      local tc = t:get("counts")
      for k, v in pairs(tc) do
         c[k] = (c[k] or 0) + v
         total = total + v
      end
   end
   local known = 0
   local line = "mix: answers=" .. total
   for _, s in ipairs({ 200, 403, 401, 400, 428 }) do
      line = line .. " " .. s .. "=" .. (c[s] or 0)
      known = known + (c[s] or 0)
   end
   line = line .. " other=" .. (total - known)
   for k, v in pairs(c) do
      if k ~= 200 and k ~= 403 and k ~= 401 and k ~= 400 and k ~= 428 then
         line = line .. " (" .. k .. ": " .. v .. ")"
      end
   end
   io.write(line .. "\n")
end
