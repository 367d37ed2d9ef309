--[[ gcra-1.lua: generic cell rate algorithm (a token bucket kept as one timestamp).

Each unit is due one emission interval T = period / limit after the previous; up to
`burst` units may come early. The key holds the theoretical arrival time (TAT).

KEYS[1]  string: TAT in ms since epoch ("%.3f")
ARGV[1]  limit (units per period)
ARGV[2]  period in ms
ARGV[3]  cost (1 <= cost <= burst)
ARGV[4]  burst (units that may arrive at once)

Returns {allowed (1|0), remaining, reset_ms (until the TAT is now: full again),
retry_after_ms (until this cost conforms)}.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local interval = period / limit
local tolerance = interval * burst

local tat = tonumber(redis.call('GET', KEYS[1])) or now
tat = math.max(tat, now)
local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance

if now + 1e-6 < allow_at then
  local remaining = math.max(0, math.floor((tolerance - (tat - now)) / interval + 1e-9))
  return {0, remaining, math.ceil(tat - now), math.max(1, math.ceil(allow_at - now))}
end
local ttl = math.max(1, math.ceil(new_tat - now))
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', ttl)
local remaining = math.max(0, math.floor((tolerance - (new_tat - now)) / interval + 1e-9))
return {1, remaining, ttl, 0}
