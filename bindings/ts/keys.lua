-- The one check of a settings table's keys: wherever tshost takes a table of options, a misspelt key (batch_size,
-- temprature, widht) was ignored and the work ran without it. Every taker refuses it here, naming the known ones.
-- Beside it, the one check of sizes and counts given in whole numbers (layers' kernels, images' pixels, updates;
-- batches, classes, views, seeds) and the one of switches given as true or false.
local M = {}

-- The most classes anything takes (class ids 0 .. MAX_CLASSES - 1), one bound for all: far above any real label set,
-- so that a corrupt label or ClassId such as 2^40 does not make per-class tables of that many entries, and low enough
-- for the confusion matrix every evaluation makes (classes^2 cells: 100,000 classes asked for 10^10). Datasets took
-- ids to 99,999 while the matrix took 10,000 classes, so such a set trained for hours and failed at its evaluation.
M.MAX_CLASSES = 10000

-- The largest seed (ts.manualSeed, ts.train, the loader, the scenes): every whole number up to 2^53 is exact in a Lua
-- number, and C takes it as a uint64
M.MAX_SEED = 2 ^ 53

-- t, or an error unless each of its keys is in `known` (a set): "<what>: unknown <noun> <key> (known: ...)", noun
-- 'option' (the default) or 'setting'; level as error's, counted from the caller (0: no position)
function M.check(what, t, known, level, noun)
   if type(t) ~= 'table' then
      error(('%s: the %ss must be a table, got %s'):format(what, noun or 'option', type(t)), level == 0 and 0 or (level or 1) + 1)
   end
   for k in pairs(t) do
      if not known[k] then
         local names = {}
         for name in pairs(known) do names[#names + 1] = tostring(name) end
         table.sort(names)
         error(('%s: unknown %s %s (known: %s)'):format(what, noun or 'option', tostring(k), table.concat(names, ', ')),
               level == 0 and 0 or (level or 1) + 1)
      end
   end
   return t
end

-- A value as an error message shows it: a list as {a, b, c} (tostring gave "table: 0x..."), a string quoted, a module
-- or a tensor by its kind, another table with keys as such (a module given for a number showed as {})
function M.show(v)
   if type(v) == 'string' then return ('%q'):format(v) end
   if type(v) ~= 'table' then return tostring(v) end
   if type(v.__typename) == 'string' then return (v.__typename:find('^[AEIOU]') and 'an ' or 'a ') .. v.__typename end
   if type(v.numel) == 'function' and type(v.size) == 'function' then return 'a tensor ' .. tostring(v:size()) end
   if #v == 0 and next(v) ~= nil then return 'a table with keys' end
   local parts = {}
   for i = 1, #v do parts[i] = type(v[i]) == 'string' and ('%q'):format(v[i]) or tostring(v[i]) end
   return '{' .. table.concat(parts, ', ') .. '}'
end

-- A count or an index given as one whole number from lo to hi (hi nil: no upper bound): a batch size, a number of
-- classes, views, bins or workers, a seed, an opset. Returns v; otherwise an error "<what>: <name> must be a whole
-- number from lo to hi, got v" (">= lo" without hi, as M.sizes says it) at `level` as error's, counted from the
-- caller (0: no position). Unchecked, the FFI cut 2.5 to 2, wrapped 2^40 into a negative int and took NaN as some
-- number; a string failed in the arithmetic. Bounds that are large powers of two show as 2^k.
local function bound(x)
   local k = math.log(x) / math.log(2)
   if x >= 2 ^ 20 and math.abs(k - math.floor(k + 0.5)) < 1e-9 then return ('2^%d'):format(math.floor(k + 0.5)) end
   return ('%d'):format(x)
end
function M.count(v, what, name, lo, hi, level)
   if type(v) ~= 'number' or v % 1 ~= 0 or v < lo or (hi and v > hi) then
      error(('%s: %s must be a whole number %s, got %s'):format(what, name, hi and ('from %s to %s'):format(bound(lo),
            bound(hi)) or '>= ' .. bound(lo), M.show(v)), level == 0 and 0 or level + 1)
   end
   return v
end

-- A key=value of a script's option defaults, for an error's example: the first key in order whose default key=value
-- can give (not a table, not empty), with that default; 'epochs=3' when none can
function M.example(defaults)
   local best
   for k, d in pairs(defaults) do
      if type(k) == 'string' and type(d) ~= 'table' and d ~= '' and (not best or k < best) then best = k end
   end
   return best and ('%s=%s'):format(best, tostring(defaults[best])) or 'epochs=3'
end

-- A number from 0 to 1 (nil: not given): v, or an error "<what>: <name> must be <kind>, got v" at `level` as error's,
-- counted from the caller (0: no position); NaN is none (it is neither below 0 nor above 1). kind: how the message names
-- such a number. Its callers call it, then return v: a tail call would drop their frame from the count
local function in_unit_interval(v, what, name, level, kind)
   if v ~= nil and not (type(v) == 'number' and v >= 0 and v <= 1) then
      error(('%s: %s must be %s, got %s'):format(what, name, kind, M.show(v)), level == 0 and 0 or level + 1)
   end
end
-- a probability: "... must be a probability in [0, 1], got v"
function M.probability(v, what, name, level)
   in_unit_interval(v, what, name, level == 0 and 0 or level + 1, 'a probability in [0, 1]')
   return v
end
-- a share or a rate that is not a probability (label smoothing, a moving average's momentum): "... must be a number
-- from 0 to 1, got v"
function M.fraction(v, what, name, level)
   in_unit_interval(v, what, name, level == 0 and 0 or level + 1, 'a number from 0 to 1')
   return v
end

-- A switch given as true or false (nil: not given): v, or an error "<what>: <name> must be true or false, got v" at
-- `level` as error's, counted from the caller (0: no position). 0, 'no' and "false" are true in Lua: they turned on
-- what they were meant to turn off.
function M.flag(v, what, name, level)
   if v ~= nil and type(v) ~= 'boolean' then
      error(('%s: %s must be true or false, got %s'):format(what, name, M.show(v)), level == 0 and 0 or level + 1)
   end
   return v
end

-- Size arguments as whole numbers of at least `least`: a layer's kernel, stride, padding, dilation and groups when
-- it is made, an image's or a scene's pixels, a schedule's update counts. Unchecked, the FFI cut a kernel of 2.5 to 2 and a padding of 0.5 to 0
-- without a word, and a kernel of 0 gave NaN. v is one number for all `count` values or a list of exactly `count`;
-- count 2 ({h, w}, the default), 4 ({top, bottom, left, right}) or 1. Returns the count values; errors name the call
-- (what) and the argument (name), at `level` as error's counted from the caller (default: the caller's caller; 0: no
-- position).
local arrangement = {'', ' or {h, w} of them', nil, ' or {top, bottom, left, right} of them'}
function M.sizes(v, what, name, least, count, level)
   count = count or 2
   local values = {}
   if type(v) == 'table' and count > 1 and #v == count then
      for i = 1, count do values[i] = v[i] end
   else
      for i = 1, count do values[i] = v end
   end
   for i = 1, count do   -- not ipairs: a nil size stopped it at once, and came back unchecked
      local x = values[i]
      if type(x) ~= 'number' or x % 1 ~= 0 or x < least or x > 2 ^ 30 then
         error(('%s: %s must be a whole number >= %d%s, got %s'):format(what, name, least, arrangement[count],
               M.show(v)), level == 0 and 0 or (level or 2) + 1)
      end
   end
   return unpack(values)
end

return M
