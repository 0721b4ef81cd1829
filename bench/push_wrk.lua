-- wrk script for bench/push.py: each request is one line of the bodies file, sent to PATH
-- with the given headers (so every push is a distinct record). Arguments after "--":
--   BODIES_FILE THREAD_COUNT    (or nothing: a plain GET of the URL, for the ceiling)
-- The Authorization header comes from the environment (WRK_AUTHORIZATION) so the token is
-- never on a command line. done() prints one JSON line that bench/push.py reads.

local bodies = {}
counter = 0     -- globals, so that done() can read them with thread:get
body_count = 0
local threads = {}
local next_index = 0

function setup(thread)
  thread:set("index", next_index)
  next_index = next_index + 1
  table.insert(threads, thread)
end

function init(args)
  if args[1] == nil then return end
  local count = tonumber(args[2]) or 1
  local n = 0
  for line in io.lines(args[1]) do
    if n % count == index then table.insert(bodies, line) end
    n = n + 1
  end
  body_count = #bodies
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = os.getenv("WRK_AUTHORIZATION")
end

function request()
  if #bodies == 0 then return wrk.request() end
  counter = counter + 1
  return wrk.format(nil, nil, nil, bodies[(counter - 1) % #bodies + 1])
end

function done(summary, latency, requests)
  local sent, available = 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + (thread:get("counter") or 0)
    available = available + (thread:get("body_count") or 0)
  end
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "bad_status": %d, ' ..
    '"socket_errors": %d, "sent": %d, "bodies": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    sent, available))
end
