-- cas-1.lua: an atomic compare-and-set on the fields of one hash (a run or an approval).
--
-- KEYS[1]  the hash: hw:wf:{<run id>} or hw:wfa:{<approval id>} (one slot per run)
-- ARGV[1]  n, the number of conditions; then n triples (field, op, operand):
--            op "in": the field's value (missing = "") is one of the "|"-separated operand
--            op "gt": the field is missing or empty, or its number is > the operand's
-- ARGV[2 + 3n ...]  field, value pairs written (HSET) when every condition holds
--
-- Returns 1 when it wrote, 0 when a condition failed or the hash does not exist.
-- States are plain strings; the other values are JSON the script never decodes.

if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end

local n = tonumber(ARGV[1])
for i = 0, n - 1 do
  local field, op, operand = ARGV[2 + 3 * i], ARGV[3 + 3 * i], ARGV[4 + 3 * i]
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
      return 0
    end
  elseif op == 'gt' then
    if value ~= '' and tonumber(value) <= tonumber(operand) then
      return 0
    end
  else
    return redis.error_reply('cas-1.lua: unknown op ' .. op)
  end
end

local first = 2 + 3 * n
if #ARGV >= first then
  redis.call('HSET', KEYS[1], unpack(ARGV, first))
end
return 1
