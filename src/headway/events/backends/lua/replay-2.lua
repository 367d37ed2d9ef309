--[[ replay-2.lua: a channel's state and kept history, read at one instant.

KEYS[1]  channel state hash {epoch, seq}   KEYS[2]  channel history list (newest first)
ARGV[1]  history ttl (ms): entries older than this are not returned
Returns  {epoch or false, seq or false, {entry, ...} oldest first}; an entry is
"<seq>|<ms>|<event>\n<data>" (as written by publish-2.lua).
]]
local t = redis.call('TIME')
local cutoff = t[1] * 1000 + math.floor(t[2] / 1000) - tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local entries = redis.call('LRANGE', KEYS[2], 0, -1)
local kept = {}
for i = #entries, 1, -1 do
  if tonumber(string.match(entries[i], '^%d+|(%d+)|')) >= cutoff then
    kept[#kept + 1] = entries[i]
  end
end
return {state[1], state[2], kept}
