-- What pooling buys and costs: the reference network with 2x2 max pooling, 2x2 average pooling, stride-2
-- convolutions in place of pooling, and no downsampling at all (global average pooling at the end keeps
-- the head the same size). Accuracy, parameters, training time, and translation robustness: test accuracy
-- when every test image is shifted by 1, 2 and 3 pixels. Then how many pooling stages (what=stages): 2x2 max
-- pooling after the first one, two or three of the network's three stages (the head takes the last map whole).
--   tshost experiments/pooling.lua [epochs=6] [seeds=1] [run=runs/pooling] [what=down,stages]
local opt = ts.experiment.options({epochs = 6, run = 'runs/pooling', what = 'down,stages'}, {epochs = {1}})
local what = {}   -- (what=pools, or down misspelt, ran nothing)
for _, w in ipairs(ts.experiment.choices(opt.what, 'what', {'down', 'stages'})) do what[w] = true end
local g = ts.experiment.dataset(opt)

-- the variants' builder, pooling_variant, registers from a file of its own so that the runs can be reloaded
dofile(ts.root .. '/experiments/models/pooling.lua')

-- test accuracy with every image translated by d pixels right and down, the d rows and columns it uncovers black
local function shifted_accuracy(model, pre, d)
   local ds = g.test
   local n, h, w = ds:size(), ds.x:size(2), ds.x:size(3)
   local x = ts.zeros({n, h, w, 3}, 'uint8')
   x:narrow(2, 1 + d, h - d):narrow(3, 1 + d, w - d):copy(ds.x:narrow(2, 1, h - d):narrow(3, 1, w - d))
   local shifted = ts.data.Dataset(x, ds.y, ds.classNames)
   return ts.evaluate(model, shifted, {preprocess = pre}).accuracy
end

-- how many pooling stages: each 2x2 pool halves the side, so a 32x32 input is 16, 8, 4, 2, then 1 pixel after
-- five of them, and a sixth has nothing left to pool
if what.stages then
   local side, sides = 32, {}
   for p = 1, 6 do
      side = math.floor(side / 2)
      sides[#sides + 1] = ('%d pools: %dx%d'):format(p, side, side)
   end
   print('a 32x32 input after stacked 2x2 pools: ' .. table.concat(sides, ', '))
   local stages = {}
   for pools = 1, 3 do
      stages[#stages + 1] = ts.experiment.variant(g, ('%d pooling stage%s'):format(pools, pools > 1 and 's' or ''),
                                                  {model = {name = 'pooling_variant', down = 'max', pools = pools}}, opt)
   end
   ts.experiment.compare(stages, 'pooling stages (2x2 max pooling after the first k of 3)')
   for _, v in ipairs(stages) do print(('  %-18s params %9d'):format(v.name, v.runs[1].parameters)) end
   print(('conclusion (stages): %s; fewer pools keep larger maps, so every later layer costs more and the head grows '
          .. 'four times per pool left out (parameters above)'):format(select(2, ts.experiment.best(stages))))
end
if not what.down then return end

local variants = {}
for _, down in ipairs({'max', 'avg', 'stride', 'none'}) do
   local v = ts.experiment.variant(g, 'downsample ' .. down, {model = {name = 'pooling_variant', down = down}}, opt)
   variants[#variants + 1] = v
end
ts.experiment.compare(variants, 'downsampling (same budget)')
print('\ntranslation robustness (test accuracy with images shifted by d pixels right and down, the uncovered border black):')
for _, v in ipairs(variants) do
   local model, config = ts.models.load(v.dirs[1])
   local pre = ts.data.preprocess(config.preprocess)
   local row = {}
   for _, d in ipairs({1, 2, 3}) do row[#row + 1] = ('d=%d %.2f%%'):format(d, 100 * shifted_accuracy(model, pre, d)) end
   print(('  %-18s params %7d  %s'):format(v.name, v.runs[1].parameters, table.concat(row, '  ')))
end
local cheapest = variants[1]
for _, v in ipairs(variants) do
   if v.runs[1].train_seconds < cheapest.runs[1].train_seconds then cheapest = v end
end
print(('conclusion: %s, and %s the cheapest training (%.0f s); the shifted accuracies above show how much of each ' ..
       'one\'s accuracy survives small translations'):format(select(2, ts.experiment.best(variants)), cheapest.name,
   cheapest.runs[1].train_seconds))
