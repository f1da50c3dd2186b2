-- The options a ts.models builder takes, checked before it builds: a misspelt one (widht = {...}) was ignored and
-- the network built at its defaults, and a size of 0 built a layer of nothing. `name` is the spec's own key
-- (ts.train's model = {name = 'refcnn', ...} reaches the builder whole).
local keys = require('ts.keys')

local M = {}

-- opts (nil: none) against `known` (a set of option names); counts (a list of names) must be whole numbers >= 1. The
-- errors carry no position: a spec read from a run's config.json has no line of the caller's to point at.
function M.check(builder, opts, known, counts)
   local what = 'ts.models.' .. builder
   opts = opts or {}
   local with_name = {name = true}
   for k in pairs(known) do with_name[k] = true end
   keys.check(what, opts, with_name, 0)
   for _, k in ipairs(counts or {}) do
      if opts[k] ~= nil then keys.sizes(opts[k], what, k, 1, 1, 0) end
   end
   return opts
end

return M
