--[[
  incr-1.lua: add to a counter, giving it a TTL when it has none (i.e. on creation).

  KEYS[1]   the counter key   P:c:{tenant}:k:<key>
  ARGV[1]   the integer to add (may be negative)
  ARGV[2]   TTL in milliseconds; 0 = no expiry

  Returns the new value; a non-integer value under the key is a script error.
]]
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return value
