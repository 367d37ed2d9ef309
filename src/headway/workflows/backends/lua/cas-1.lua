-- cas-1.lua: compare-and-set moves on the fields of ONE hash (a run or an approval).
--
-- KEYS[1]  the hash: <prefix>:wf:{<run id>} or <prefix>:wfa:{<approval id>}
-- ARGV[1]  "1" to return the whole hash after the moves (HGETALL), "0" not to
-- ARGV[2]  k, the number of moves; then each move, in order:
--            n, then n triples (field, op, operand), the conditions:
--              op "in": the field's value (missing = "") is one of the "|"-separated operand
--              op "gt": the field is missing or empty, or its number is > the operand's
--            m, then m pairs (field, JSON object): the object's keys are set in the JSON
--              object stored in the field (a step's small fields: ids, attempts, times)
--            w, then w pairs (field, value) written as they are (HSET)
--          A move writes only when all its conditions hold, checked after the moves
--          before it (a step's completion, then the claims of the steps it made ready).
--
-- Returns {{1 or 0 per move}, the hash as HGETALL gives it (empty unless ARGV[1] is "1")}.
-- A hash that does not exist: no move applies. Values the script merges are small
-- scalars (cjson keeps 14 significant digits); results and other user JSON are plain
-- fields it never decodes.

local key = KEYS[1]
local exists = redis.call('EXISTS', key) == 1

local function holds(field, op, operand)
  local value = redis.call('HGET', key, field) or ''
  if op == 'in' then
    for allowed in string.gmatch(operand, '[^|]+') do
      if allowed == value then
        return true
      end
    end
    return false
  elseif op == 'gt' then
    return value == '' or tonumber(value) > tonumber(operand)
  end
  error('cas-1.lua: unknown op ' .. tostring(op))
end

local function merge(field, patch)
  local current = redis.call('HGET', key, field)
  local object = current and cjson.decode(current) or {}
  for name, value in pairs(cjson.decode(patch)) do
    object[name] = value
  end
  redis.call('HSET', key, field, cjson.encode(object))
end

local applied = {}
local at = 3
for move = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[at])
  local ok = exists
  for i = 0, n - 1 do
    if ok then
      ok = holds(ARGV[at + 1 + 3 * i], ARGV[at + 2 + 3 * i], ARGV[at + 3 + 3 * i])
    end
  end
  at = at + 1 + 3 * n
  local m = tonumber(ARGV[at])
  local merges_at = at + 1
  at = at + 1 + 2 * m
  local w = tonumber(ARGV[at])
  local writes_at = at + 1
  at = at + 1 + 2 * w
  if ok then
    for j = 0, m - 1 do
      merge(ARGV[merges_at + 2 * j], ARGV[merges_at + 2 * j + 1])
    end
    if w > 0 then
      redis.call('HSET', key, unpack(ARGV, writes_at, writes_at + 2 * w - 1))
    end
  end
  applied[move] = ok and 1 or 0
end

local snapshot = {}
if ARGV[1] == '1' then
  snapshot = redis.call('HGETALL', key)
end
return {applied, snapshot}
