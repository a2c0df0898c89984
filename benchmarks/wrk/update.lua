-- PATCH /ngsi-ld/v1/entities/{id}/attrs/speed on a random pre-created entity (seed-0 .. seed-N-1).
-- args: seed_count
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local n = 0
setup, init, done = common.setup, common.seeded, common.done

function request()
  n = n + 1
  local path = "/ngsi-ld/v1/entities/" .. common.random_seed_id() .. "/attrs/speed"
  -- observed now, as a sensor's reading is (and so recorded in the current month's history partition)
  local body = string.format('{"value":%.2f,"observedAt":"%s"}', 30.25 + n % 70, os.date("!%Y-%m-%dT%H:%M:%SZ"))
  return wrk.format("PATCH", path, common.headers, body)
end
