-- GET /ngsi-ld/v1/entities/{id} of a random pre-created entity (seed-0 .. seed-N-1), compacted with the Link.
-- args: seed_count
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local count = 10000
setup = common.setup

function init(args)
  count = tonumber(args[1] or "10000")
  math.randomseed(os.time() + 7919 * tid)
end

function request()
  local path = "/ngsi-ld/v1/entities/" .. common.seed_id(math.random(0, count - 1))
  return wrk.format("GET", path, common.get_headers, nil)
end

function done(summary, latency, requests)
  common.report(summary, latency)
end
