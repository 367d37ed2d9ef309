--[[
  record-2.lua: add call outcomes to a breaker and apply its rules (closed -> open,
  half-open -> open / closed). Mirrors headway/resilience/machine.py:record.

  KEYS[1]   state hash    P:{br:NAME}:s   fields s g o f cf hs tr ta (see below)
  KEYS[2]   window list   P:{br:NAME}:w   entries "<ms>:<code>", oldest first
  ARGV[1]   channel for transition messages      ARGV[2]  breaker name
  ARGV[3]   generation the calls ran under (other generations are ignored)
  ARGV[4..13] policy: failure_threshold failure_rate slow_call_rate minimum_calls
            window_kind(0 count, 1 time) window_size(calls or ms) capacity
            open_timeout_ms half_open_calls success_threshold
  ARGV[14..] outcome codes: bit 0 failure, bit 1 slow

  Hash fields: s state (closed|open|half_open), g generation, o opened_at ms, f forced
  (0/1), cf consecutive failures, hs half-open successes, tr trials in flight, ta last
  trial grant ms. Clock: Redis TIME.
  Returns {state, generation, opened_at_ms, forced, consecutive, now_ms, 1, calls,
  failures, slow}. Publishes {n, s, g, o, f, cf, now} on ARGV[1] when the state changed.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 's', 'g', 'o', 'f', 'cf', 'hs', 'tr')
local s, g, o = h[1] or 'closed', tonumber(h[2] or '0'), tonumber(h[3] or '0')
local f, cf = tonumber(h[4] or '0'), tonumber(h[5] or '0')
local hs, tr = tonumber(h[6] or '0'), tonumber(h[7] or '0')
local threshold, rate, slow_rate = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local min_calls, kind, size = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local cap, success_threshold = tonumber(ARGV[10]), tonumber(ARGV[13])
local changed = false

local function count()
  local n, fails, slow = 0, 0, 0
  for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    local code = tonumber(string.match(e, ':(%d+)$'))
    n = n + 1
    if code % 2 == 1 then fails = fails + 1 end
    if code >= 2 then slow = slow + 1 end
  end
  return n, fails, slow
end

local function open()
  s, o, g, hs, tr, changed = 'open', now, g + 1, 0, 0, true
end

if tonumber(ARGV[3]) == g and s == 'closed' then
  local batch = {}
  for i = 14, #ARGV do
    local code = tonumber(ARGV[i])
    batch[#batch + 1] = now .. ':' .. code
    if code % 2 == 1 then cf = cf + 1 else cf = 0 end
    if #batch == 500 then redis.call('RPUSH', KEYS[2], unpack(batch)); batch = {} end
  end
  if #batch > 0 then redis.call('RPUSH', KEYS[2], unpack(batch)) end
  if kind == 1 then
    local first = redis.call('LINDEX', KEYS[2], 0)
    while first and tonumber(string.match(first, '^(%d+):')) <= now - size do
      redis.call('LPOP', KEYS[2])
      first = redis.call('LINDEX', KEYS[2], 0)
    end
  end
  redis.call('LTRIM', KEYS[2], -cap, -1)
  if f == 0 then
    local n, fails, slow = count()
    if threshold > 0 and cf >= threshold then
      open()
    elseif n >= min_calls and ((rate > 0 and fails >= rate * n)
        or (slow_rate > 0 and slow >= slow_rate * n)) then
      open()
    end
  end
elseif tonumber(ARGV[3]) == g and s == 'half_open' then
  for i = 14, #ARGV do
    tr = math.max(0, tr - 1)
    if tonumber(ARGV[i]) % 2 == 1 then open(); break end
    hs = hs + 1
    if hs >= success_threshold then
      s, g, o, cf, hs, tr, changed = 'closed', g + 1, 0, 0, 0, 0, true
      redis.call('DEL', KEYS[2])
      break
    end
  end
end

redis.call('HSET', KEYS[1], 's', s, 'g', g, 'o', o, 'f', f, 'cf', cf, 'hs', hs, 'tr', tr)
if changed then
  redis.call('PUBLISH', ARGV[1],
    cjson.encode({n = ARGV[2], s = s, g = g, o = o, f = f, cf = cf, now = now}))
end
local n, fails, slow = count()
return {s, g, o, f, cf, now, 1, n, fails, slow}
