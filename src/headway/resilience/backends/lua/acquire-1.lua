--[[
  acquire-1.lua: may a call run? Closed: yes. Open: once open_timeout has passed (Redis
  TIME), move to half-open; half-open: grant at most half_open_calls trials at a time.
  Mirrors headway/resilience/machine.py:acquire.

  KEYS[1]   state hash    P:{br:NAME}:s   (fields: see record-2.lua)
  ARGV[1]   channel       ARGV[2]  breaker name
  ARGV[3..12] policy, as ARGV[4..13] of record-2.lua (only open_timeout_ms and
            half_open_calls are read)

  Returns {state, generation, opened_at_ms, forced, consecutive, now_ms, permitted 0/1,
  0, 0, 0}. Publishes the transition to half-open on ARGV[1].
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 's', 'g', 'o', 'f', 'cf', 'tr', 'ta')
local s, g, o = h[1] or 'closed', tonumber(h[2] or '0'), tonumber(h[3] or '0')
local f, cf = tonumber(h[4] or '0'), tonumber(h[5] or '0')
local tr, ta = tonumber(h[6] or '0'), tonumber(h[7] or '0')
local open_ms, half_calls = tonumber(ARGV[10]), tonumber(ARGV[11])

if s == 'closed' then
  return {s, g, o, f, cf, now, 1, 0, 0, 0}
end
if s == 'open' then
  if f == 1 or now < o + open_ms then
    return {s, g, o, f, cf, now, 0, 0, 0, 0}
  end
  s, g, tr = 'half_open', g + 1, 0
  redis.call('HSET', KEYS[1], 's', s, 'g', g, 'hs', 0, 'tr', 0)
  redis.call('PUBLISH', ARGV[1],
    cjson.encode({n = ARGV[2], s = s, g = g, o = o, f = f, cf = cf, now = now}))
end
if tr >= half_calls and now - ta > open_ms then
  tr = 0 -- trials that never reported (their process died): grant new ones
end
if tr < half_calls then
  redis.call('HSET', KEYS[1], 'tr', tr + 1, 'ta', now)
  return {s, g, o, f, cf, now, 1, 0, 0, 0}
end
return {s, g, o, f, cf, now, 0, 0, 0, 0}
