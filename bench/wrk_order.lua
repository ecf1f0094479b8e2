-- wrk script: POST /api/order/submit with IOC orders of 1 lot on cu2501 that never cross
-- (buys at 70000, sells at 80000), alternating, as demo trader alice. Set the token first:
--   T=$(curl -s -XPOST localhost:8080/api/auth/login \
--         -d '{"username":"alice","password":"alice-demo-pw"}' | jq -r .token)
--   QX_TOKEN=$T wrk -t2 -c32 -d10s -s bench/wrk_order.lua http://127.0.0.1:8080
local token = os.getenv("QX_TOKEN") or ""
local n = 0
local bodies = {
  '{"account":"alice-01","instrument":"cu2501","direction":"BUY","price":"70000",' ..
    '"volume":1,"time_condition":"IOC"}',
  '{"account":"alice-01","instrument":"cu2501","direction":"SELL","price":"80000",' ..
    '"volume":1,"time_condition":"IOC"}',
}

request = function()
  n = n + 1
  return wrk.format("POST", "/api/order/submit", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, bodies[n % 2 + 1])
end

-- Count answers that are not 200 (wrk reports them as "Non-2xx or 3xx responses").
