-- Shared by the wrk scripts: the Vehicle body (same shape as benchmarks/payloads.py), headers, thread ids
-- and a machine-readable summary line ("BENCH_JSON {...}") that the harness parses.
local M = {}

M.headers = {
  ["Content-Type"] = "application/json",
  ["Link"] = '<https://raw.githubusercontent.com/smart-data-models/dataModel.Transportation/master/context.jsonld>; '
    .. 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"',
}
M.get_headers = { ["Link"] = M.headers["Link"], ["Accept"] = "application/json" }
M.observed = "2024-05-01T10:00:00Z"

local VEHICLE = '{"id":"%s","type":"Vehicle",'
  .. '"vehicleType":{"type":"Property","value":"lorry"},'
  .. '"serviceStatus":{"type":"Property","value":"onRoute","observedAt":"%s"},'
  .. '"speed":{"type":"Property","value":%.1f,"unitCode":"KMH","observedAt":"%s"},'
  .. '"heading":{"type":"Property","value":%d,"unitCode":"DD","observedAt":"%s"},'
  .. '"location":{"type":"GeoProperty","value":{"type":"Point","coordinates":[%.4f,%.4f]},"observedAt":"%s"},'
  .. '"refVehicleModel":{"type":"Relationship","object":"urn:ngsi-ld:VehicleModel:model-%d"}}'

function M.vehicle(id, n)
  local o = M.observed
  return string.format(VEHICLE, id, o, 40.5 + n % 50, o, (n * 7) % 360, o,
    -3.7 + (n % 1000) / 10000, 40.4 + (n % 997) / 10000, o, n % 10)
end

function M.seed_id(i)
  return "urn:ngsi-ld:Vehicle:seed-" .. i
end

-- number the threads (runs in the main state); each thread reads `tid` in init()
local next_tid = 0
function M.setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end

-- the seeded-id scripts' init (args[1]: how many were seeded) and their random pick, each thread its own
local seeds = 10000
function M.seeded(args)
  seeds = tonumber(args[1] or "10000")
  math.randomseed(os.time() + 7919 * tid)
end

function M.random_seed_id()
  return M.seed_id(math.random(0, seeds - 1))
end

function M.report(summary, latency)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"status_errors":%d,"socket_errors":%d,'
      .. '"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end

function M.done(summary, latency, requests)
  M.report(summary, latency)
end

return M
