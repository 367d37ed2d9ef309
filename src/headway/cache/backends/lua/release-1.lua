--[[
  release-1.lua: release a loader lock only while it is still ours.

  KEYS[1]   the lock key   P:c:{tenant}:l:<key>
  ARGV[1]   the token the lock was taken with

  Returns 1 when the lock was deleted, 0 when it expired or another owner holds it.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
