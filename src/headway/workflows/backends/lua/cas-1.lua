-- cas-1.lua: an atomic compare-and-set on the fields of one hash (a run or an approval).
--
-- KEYS[1]  the hash: <prefix>:wf:{<run id>} or <prefix>:wfa:{<approval id>}
-- ARGV[1]  "1" to return the whole hash after the move (HGETALL), "0" not to
-- ARGV[2]  n, the number of conditions; then n triples (field, op, operand):
--            op "in": the field's value (missing = "") is one of the "|"-separated operand
--            op "gt": the field is missing or empty, or its number is > the operand's
-- then     m, the number of merges; then m pairs (field, JSON object): the object's keys
--          are set in the JSON object stored in the field (a step's small fields)
-- then     field, value pairs written as they are (HSET)
--
-- Everything is written only when every condition holds. Returns {1 or 0 (written),
-- the hash as HGETALL gives it (empty unless ARGV[1] is "1")}; {0, {}} when the hash
-- does not exist. Values the script merges are small scalars (ids, states, attempts,
-- times); results and other user JSON are plain fields it never decodes.

local function snapshot()
  if ARGV[1] == '1' then
    return redis.call('HGETALL', KEYS[1])
  end
  return {}
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, {}}
end

local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local field, op, operand = ARGV[3 + 3 * i], ARGV[4 + 3 * i], ARGV[5 + 3 * i]
  local value = redis.call('HGET', KEYS[1], field) or ''
  if op == 'in' then
    local found = false
    for allowed in string.gmatch(operand, '[^|]+') do
      if allowed == value then
        found = true
        break
      end
    end
    if not found then
      return {0, snapshot()}
    end
  elseif op == 'gt' then
    if value ~= '' and tonumber(value) <= tonumber(operand) then
      return {0, snapshot()}
    end
  else
    return redis.error_reply('cas-1.lua: unknown op ' .. op)
  end
end

local at = 3 + 3 * n
local m = tonumber(ARGV[at])
at = at + 1
for _ = 1, m do
  local field, patch = ARGV[at], cjson.decode(ARGV[at + 1])
  local current = redis.call('HGET', KEYS[1], field)
  local object = current and cjson.decode(current) or {}
  for key, value in pairs(patch) do
    object[key] = value
  end
  redis.call('HSET', KEYS[1], field, cjson.encode(object))
  at = at + 2
end

if #ARGV >= at then
  redis.call('HSET', KEYS[1], unpack(ARGV, at))
end
return {1, snapshot()}
