-- The options a ts.models builder takes, checked before it builds: a misspelt one (widht = {...}) was ignored and
-- the network built at its defaults, and a size of 0 built a layer of nothing. `name` is the spec's own key
-- (ts.train's model = {name = 'refcnn', ...} reaches the builder whole).
local M = {}

-- opts (nil: none) against `known` (a set of option names); counts (a list of names) must be whole numbers >= 1
function M.check(builder, opts, known, counts)
   opts = opts or {}
   if type(opts) ~= 'table' then error(('ts.models.%s: options must be a table, got %s'):format(builder, type(opts)), 0) end
   for k in pairs(opts) do
      if k ~= 'name' and not known[k] then
         local names = {}
         for n in pairs(known) do names[#names + 1] = n end
         table.sort(names)
         error(('ts.models.%s: unknown option %s (known: %s)'):format(builder, tostring(k), table.concat(names, ', ')), 0)
      end
   end
   for _, k in ipairs(counts or {}) do
      local v = opts[k]
      if v ~= nil and (type(v) ~= 'number' or v % 1 ~= 0 or v < 1 or v > 2 ^ 24) then
         error(('ts.models.%s: %s must be a whole number from 1, got %s'):format(builder, k, tostring(v)), 0)
      end
   end
   return opts
end

return M
