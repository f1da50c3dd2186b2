-- Do deeper layers hold "one-sign" units? For each ReLU layer of a trained network (default runs/baseline),
-- every unit's (channel's) mean activation per class over the test set, and its class selectivity
-- (mu_max - mu_rest) / (mu_max + mu_rest) (Morcos et al. 2018): 1 = fires for one class only, 0 = for all alike.
--   tshost experiments/units.lua [run=runs/baseline] [images=3000]
local ffi = require('ffi')
local opt = ts.experiment.options({run = 'runs/baseline', images = 3000}, {images = {1}})
local model, config = ts.models.load(opt.run)
local final = ts.json.readFile(opt.run .. '/final.json') or {}
local g = ts.experiment.runData(opt.run, final, opt)
local n = math.min(opt.images, g.test:size())
local step = g.test:size() / n
local picks = {}
for k = 1, n do picks[k] = math.floor((k - 1) * step) + 1 end
local pre = ts.data.preprocess(config.preprocess)
local relus = {}
for _, c in ipairs(model:children()) do
   if c.module.__typename == 'ReLU' then relus[#relus + 1] = {module = c.module, name = c.name} end
end
local sums, counts = {}, {}
for s = 1, n, 256 do
   local chunk = {}
   for k = s, math.min(n, s + 255) do chunk[#chunk + 1] = picks[k] end
   local x, y = ts.data.batch(g.test, chunk, {preprocess = pre})
   model:forward(x)
   for li, r in ipairs(relus) do
      local out = r.module.output
      local per = out:dim() == 4 and out:mean(4):mean(3):view(out:size(1), out:size(2)) or out   -- [B, units]
      per = per:contiguous()
      local units = per:size(2)
      sums[li] = sums[li] or {}
      local p = ffi.cast('float *', per:data())
      for b = 0, per:size(1) - 1 do
         local c = y[b + 1]
         sums[li][c] = sums[li][c] or ffi.new('double[?]', units)
         counts[c] = (li == 1) and (counts[c] or 0) + 1 or counts[c]
         for u = 0, units - 1 do sums[li][c][u] = sums[li][c][u] + p[b * units + u] end
      end
      relus[li].units = units
   end
end
print(('%-6s %-6s %6s %10s %11s %9s   %s'):format('layer', 'depth', 'units', 'mean sel.', 'top-5 sel.', 'one-sign', 'most selective unit'))
for li, r in ipairs(relus) do
   local sel = {}
   for u = 0, r.units - 1 do
      local best, bestc, total, classes = -math.huge, 0, 0, 0
      for c, s in pairs(sums[li]) do
         local m = s[u] / counts[c]
         total, classes = total + m, classes + 1
         if m > best then best, bestc = m, c end
      end
      local rest = (total - best) / math.max(1, classes - 1)
      sel[#sel + 1] = {best + rest > 0 and (best - rest) / (best + rest) or 0, u, bestc}
   end
   table.sort(sel, function(a, b) return a[1] > b[1] end)
   local mean, top, one = 0, 0, 0
   for _, s in ipairs(sel) do
      mean = mean + s[1]
      if s[1] > 0.9 then one = one + 1 end
   end
   for k = 1, math.min(5, #sel) do top = top + sel[k][1] end
   r.mean, r.top, r.one = mean / #sel, top / math.min(5, #sel), one
   print(('%-6s %-6d %6d %10.3f %11.3f %9d   unit %3d -> %2d %s'):format(r.name, li, r.units, r.mean, r.top, one, sel[1][2],
         sel[1][3], (g.classNames[sel[1][3]] or ''):sub(1, 30)))
end
-- "one-sign" units: selectivity above 0.9
local with = {}
for li, r in ipairs(relus) do
   if r.one > 0 then with[#with + 1] = ('the ReLU at depth %d (layer %s: %d of %d units)'):format(li, r.name, r.one, r.units) end
end
-- the shape of the mean selectivity over depth, said as the numbers have it: where it is lowest and highest, and
-- a reading only where the shape is plain (steadily up, steadily down, or a dip with both ends above it)
local low, high, rising, falling = 1, 1, true, true
for li, r in ipairs(relus) do
   if r.mean < relus[low].mean then low = li end
   if r.mean > relus[high].mean then high = li end
   if li > 1 then
      rising = rising and r.mean >= relus[li - 1].mean
      falling = falling and r.mean <= relus[li - 1].mean
   end
end
-- (said by depth, the table's second column: it said "layer 7" for depth 7, which the first column calls layer 24)
local shape = ('mean selectivity is %.3f at depth 1 and %.3f at the last, lowest at depth %d (%.3f), highest at depth %d (%.3f)'):format(
   relus[1].mean, relus[#relus].mean, low, relus[low].mean, high, relus[high].mean)
if #relus > 1 and relus[high].mean > relus[low].mean then
   if rising then shape = shape .. ': it grows with depth, single-sign units deeper'
   elseif falling then shape = shape .. ': it falls with depth, the features most shared across signs at the output'
   elseif low > 1 and low < #relus then shape = shape .. ': a dip, the layers around it shared across signs and both ends more selective' end
end
print(('conclusion: one-sign units (selectivity above 0.9) appear in %s; %s'):format(
   #with > 0 and table.concat(with, ', ') or 'no layer', shape))
