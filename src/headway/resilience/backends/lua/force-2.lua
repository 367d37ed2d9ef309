--[[
  force-2.lua: an operator's decision: force open, force closed, or reset (closed, not
  forced). Always a transition: the generation is incremented and published.
  Mirrors headway/resilience/machine.py:force.

  KEYS[1]   state hash    P:{br:NAME}:s   (fields: see record-2.lua)
  KEYS[2]   window list   P:{br:NAME}:w   (emptied unless forced open)
  ARGV[1]   channel       ARGV[2]  breaker name       ARGV[3]  open | closed | reset

  Returns {state, generation, opened_at_ms, forced, 0, now_ms, 1, 0, 0, 0}.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = tonumber(redis.call('HGET', KEYS[1], 'g') or '0') + 1
local s, o, f = 'closed', 0, 0
if ARGV[3] == 'open' then
  s, o, f = 'open', now, 1
else
  if ARGV[3] == 'closed' then f = 1 end
  redis.call('DEL', KEYS[2])
end
local cf = tonumber(redis.call('HGET', KEYS[1], 'cf') or '0')
if s == 'closed' then cf = 0 end
redis.call('HSET', KEYS[1], 's', s, 'g', g, 'o', o, 'f', f, 'cf', cf, 'hs', 0, 'tr', 0)
redis.call('PUBLISH', ARGV[1],
  cjson.encode({n = ARGV[2], s = s, g = g, o = o, f = f, cf = cf, now = now}))
return {s, g, o, f, cf, now, 1, 0, 0, 0}
