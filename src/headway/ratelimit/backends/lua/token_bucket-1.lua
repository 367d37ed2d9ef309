--[[ token_bucket-1.lua: token bucket with burst.

The bucket holds at most `burst` tokens and refills continuously at limit/period tokens
per ms; a check takes `cost` tokens or none. A new key starts full.

KEYS[1]  hash {t = tokens (float, "%.6f"), u = time of the last update (ms)}
ARGV[1]  limit (tokens added per period)
ARGV[2]  period in ms
ARGV[3]  cost (1 <= cost <= burst)
ARGV[4]  burst (bucket size)

Returns {allowed (1|0), remaining (whole tokens), reset_ms (until full),
retry_after_ms (until `cost` tokens are there)}.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit, period, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local per_ms = limit / period

local v = redis.call('HMGET', KEYS[1], 't', 'u')
local tokens, updated = tonumber(v[1]), tonumber(v[2])
if tokens == nil or updated == nil then
  tokens, updated = burst, now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * per_ms)

if tokens + 1e-9 < cost then
  local full = math.ceil((burst - tokens) / per_ms)
  return {0, math.floor(tokens + 1e-9), full, math.max(1, math.ceil((cost - tokens) / per_ms))}
end
tokens = tokens - cost
local full = math.ceil((burst - tokens) / per_ms)
redis.call('HSET', KEYS[1], 't', string.format('%.6f', tokens), 'u', now)
redis.call('PEXPIRE', KEYS[1], math.max(1, full))
return {1, math.floor(tokens + 1e-9), full, 0}
