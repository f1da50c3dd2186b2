-- The one check of a settings table's keys: wherever tshost takes a table of options, a misspelt key (batch_size,
-- temprature, widht) was ignored and the work ran without it. Every taker refuses it here, naming the known ones.
local M = {}

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

-- A value as an error message shows it: a list as {a, b, c} (tostring gave "table: 0x..."), a string quoted
function M.show(v)
   if type(v) == 'string' then return ('%q'):format(v) end
   if type(v) ~= 'table' then return tostring(v) end
   local parts = {}
   for i = 1, #v do parts[i] = type(v[i]) == 'string' and ('%q'):format(v[i]) or tostring(v[i]) end
   return '{' .. table.concat(parts, ', ') .. '}'
end

return M
