-- GET /ngsi-ld/v1/entities/{id} of a random pre-created entity (seed-0 .. seed-N-1), compacted with the Link.
-- args: seed_count
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

setup, init, done = common.setup, common.seeded, common.done

function request()
  local path = "/ngsi-ld/v1/entities/" .. common.random_seed_id()
  return wrk.format("GET", path, common.get_headers, nil)
end
