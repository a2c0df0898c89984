-- POST /ngsi-ld/v1/entities with a new Vehicle per request: ids unique per run (nonce), thread and counter.
-- args: nonce
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")

local nonce, counter = "x", 0
setup = common.setup

function init(args)
  nonce = args[1] or tostring(os.time())
end

function request()
  counter = counter + 1
  local id = string.format("urn:ngsi-ld:Vehicle:%s-%d-%d", nonce, tid, counter)
  return wrk.format("POST", "/ngsi-ld/v1/entities", common.headers, common.vehicle(id, counter))
end

function done(summary, latency, requests)
  common.report(summary, latency)
end
