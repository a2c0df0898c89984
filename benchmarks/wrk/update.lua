-- PATCH /ngsi-ld/v1/entities/{id}/attrs/speed on a random pre-created entity (seed-0 .. seed-N-1).
-- args: seed_count
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local count, n = 10000, 0
setup = common.setup

function init(args)
  count = tonumber(args[1] or "10000")
  math.randomseed(os.time() + 7919 * tid)
end

function request()
  n = n + 1
  local path = "/ngsi-ld/v1/entities/" .. common.seed_id(math.random(0, count - 1)) .. "/attrs/speed"
  -- observed now, as a sensor's reading is (and so recorded in the current month's history partition)
  local body = string.format('{"value":%.2f,"observedAt":"%s"}', 30.25 + n % 70, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("PATCH", path, common.headers, body)
end

function done(summary, latency, requests)
  common.report(summary, latency)
end
