--[[
  read-2.lua: a breaker's state and window counts, without changing anything.

  KEYS[1]   state hash    P:{br:NAME}:s   (fields: see record-2.lua)
  KEYS[2]   window list   P:{br:NAME}:w
  ARGV[1]   window_kind (0 count, 1 time)      ARGV[2]  window size (calls or ms)

  Returns {state, generation, opened_at_ms, forced, consecutive, now_ms, 1, calls,
  failures, slow}; a time window counts only outcomes younger than its size.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 's', 'g', 'o', 'f', 'cf')
local horizon = -1
if tonumber(ARGV[1]) == 1 then horizon = now - tonumber(ARGV[2]) end
local n, fails, slow = 0, 0, 0
for _, e in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local ts, code = string.match(e, '^(%d+):(%d+)$')
  if tonumber(ts) > horizon then
    code = tonumber(code)
    n = n + 1
    if code % 2 == 1 then fails = fails + 1 end
    if code >= 2 then slow = slow + 1 end
  end
end
return {h[1] or 'closed', tonumber(h[2] or '0'), tonumber(h[3] or '0'),
  tonumber(h[4] or '0'), tonumber(h[5] or '0'), now, 1, n, fails, slow}
