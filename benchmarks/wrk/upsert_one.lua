-- POST /ngsi-ld/v1/entityOperations/upsert?options=update with ONE pre-created entity (seed-0 .. seed-N-1)
-- and two of its attributes: how FIWARE IoT agents send a device's measures.
-- args: seed_count
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local n = 0
setup, init, done = common.setup, common.seeded, common.done

function request()
  n = n + 1
  local id = common.random_seed_id()
  local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local body = string.format('[{"id":"%s","type":"Vehicle",'
    .. '"speed":{"type":"Property","value":%.2f,"unitCode":"KMH","observedAt":"%s"},'
    .. '"heading":{"type":"Property","value":%d,"unitCode":"DD","observedAt":"%s"}}]',
    id, 30.25 + n % 70, now, (n * 7) % 360, now)
  return wrk.format("POST", "/ngsi-ld/v1/entityOperations/upsert?options=update", common.headers, body)
end
