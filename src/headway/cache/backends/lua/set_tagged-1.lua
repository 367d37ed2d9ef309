--[[
  set_tagged-1.lua: store one cache entry and record it under each of its tags.

  KEYS[1]   the entry key           P:c:{tenant}:k:<key>
  ARGV[1]   the value (codec bytes)
  ARGV[2]   TTL in milliseconds (> 0)
  ARGV[3..] tag set keys           P:c:{tenant}:t:<tag>  (same hash tag as KEYS[1])

  A tag set lives as long as the longest-lived entry recorded in it, so that a tag
  invalidation still finds every live entry; a member whose entry already expired is
  harmless (deleting it is a no-op) and goes when the set does.

  Returns the number of tags recorded.
]]
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 3, #ARGV do
  redis.call('SADD', ARGV[i], KEYS[1])
  if redis.call('PTTL', ARGV[i]) < ttl then
    redis.call('PEXPIRE', ARGV[i], ttl)
  end
end
return #ARGV - 2
