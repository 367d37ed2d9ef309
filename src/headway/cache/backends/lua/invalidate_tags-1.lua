--[[
  invalidate_tags-1.lua: delete every entry recorded under some tags, and the tag sets.

  KEYS[1]   the first tag set key (routes the call to the tenant's slot)
  ARGV[1..] every tag set key to invalidate (KEYS[1] included; all share its hash tag)

  Work is proportional to the members of the given tags, never to the keyspace.
  Returns the number of entries deleted.
]]
local deleted = 0
for i = 1, #ARGV do
  local members = redis.call('SMEMBERS', ARGV[i])
  for j = 1, #members, 1000 do
    deleted = deleted + redis.call('UNLINK', unpack(members, j, math.min(j + 999, #members)))
  end
  redis.call('UNLINK', ARGV[i])
end
return deleted
