--[[ publish-2.lua: give a message its channel's next offset, keep it, send it.

KEYS[1]  channel state hash {epoch, seq}   KEYS[2]  channel history list (newest first)
ARGV[1]  channel   ARGV[2]  event name   ARGV[3]  data (JSON)
ARGV[4]  epoch to use if the channel has no state yet (random hex)
ARGV[5]  history size (messages)   ARGV[6]  history ttl (ms)   ARGV[7]  state ttl (ms)
ARGV[8]  pub/sub channel of the process-wide feed
A history entry is "<seq>|<ms>|<event>\n<data>"; the feed message is
"<channel>|<epoch>|<seq>|<ms>|<event>\n<data>".
Returns  {epoch, seq, ms}.
]]
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[4]) == 1 then
  redis.call('DEL', KEYS[2])  -- history of a forgotten epoch is not this one's
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local size = tonumber(ARGV[5])
if size > 0 then
  redis.call('LPUSH', KEYS[2], seq .. '|' .. now .. '|' .. ARGV[2] .. '\n' .. ARGV[3])
  redis.call('LTRIM', KEYS[2], 0, size - 1)
  local cutoff = now - tonumber(ARGV[6])
  while true do
    local last = redis.call('LINDEX', KEYS[2], -1)
    if not last or tonumber(string.match(last, '^%d+|(%d+)|')) >= cutoff then break end
    redis.call('RPOP', KEYS[2])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
local header = ARGV[1] .. '|' .. epoch .. '|' .. seq .. '|' .. now .. '|' .. ARGV[2]
redis.call('PUBLISH', ARGV[8], header .. '\n' .. ARGV[3])
return {epoch, seq, now}
