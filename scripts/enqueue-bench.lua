-- wrk script of `queue-bench --mode api` (BENCHMARKS.md, "Enqueue API"): POST /v1/attachments
-- with a distinct cluster in every body (nothing deduplicates), authenticated with the API key
-- in ACR_ATTACH_KEY.
--   wrk -t2 -c32 -d10s --latency -s scripts/enqueue-bench.lua http://127.0.0.1:PORT -- PREFIX [RATE]
-- PREFIX makes the clusters of this run distinct from earlier runs'. RATE (requests per second,
-- all threads together; 0 or absent: as fast as the connections go) paces the requests on a
-- fixed schedule (wrk has no rate option; wrk2 is not packaged): request k of a thread is sent
-- no earlier than start + k / (RATE / threads). Latency is measured by wrk from send to answer.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local CLUSTER = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-aks-demo"
  .. "/providers/Microsoft.ContainerService/managedClusters/"
local headers = {}
local prefix, interval, start, sent, slots = "x", 0, nil, 0, 0

function init(args)
  prefix = args[1] or "x"
  local rate = tonumber(args[2] or "0")
  local nthreads = tonumber(args[3] or "1")
  if rate > 0 then
    interval = 1000 / (rate / nthreads)
  end
  headers["Content-Type"] = "application/json"
  headers["Authorization"] = "Bearer " .. (os.getenv("ACR_ATTACH_KEY") or "")
end

function request()
  sent = sent + 1
  local body = string.format('{"cluster":"%saks-%s-%d-%d","registry":"acrdemo"}',
    CLUSTER, prefix, thread_id or 0, sent)
  return wrk.format("POST", "/v1/attachments", headers, body)
end

function delay()
  if interval == 0 then
    return 0
  end
  local now = now_ms()
  if start == nil then
    start = now
  end
  -- Each call reserves the next slot of this thread's schedule (connections wait at once).
  local due = start + slots * interval
  slots = slots + 1
  if due <= now then
    return 0
  end
  return math.ceil(due - now)
end
