-- What pooling buys and costs: the reference network with 2x2 max pooling, 2x2 average pooling, stride-2
-- convolutions in place of pooling, and no downsampling at all (global average pooling at the end keeps
-- the head the same size). Accuracy, parameters, training time, and translation robustness: test accuracy
-- when every test image is shifted by 1, 2 and 3 pixels.
--   tshost experiments/pooling.lua [epochs=6] [seeds=1] [run=runs/pooling]
local nn = ts.nn
local opt = ts.experiment.options{epochs = 6, run = 'runs/pooling'}
local g = ts.experiment.dataset(opt)

-- conv blocks of the reference network with `down` as the downsampling after each stage
function ts.models.pooling_variant(o)
   local net = nn.Sequential()
   local function block(a, b, stride)
      net:add(nn.Conv2d(a, b, 3, {padding = 1, stride = stride or 1, bias = false}))
      net:add(nn.BatchNorm2d(b))
      net:add(nn.ReLU())
   end
   local function down(c)
      if o.down == 'max' then net:add(nn.MaxPool2d(2))
      elseif o.down == 'avg' then net:add(nn.AvgPool2d(2)) end
   end
   local strided = o.down == 'stride' and 2 or 1
   block(3, 32); block(32, 32, strided); down(32)
   block(32, 64); block(64, 64, strided); down(64)
   block(64, 128, strided); down(128)
   if o.down == 'none' then net:add(nn.GlobalAvgPool2d()) end
   net:add(nn.Flatten())
   net:add(nn.Dropout(0.5))
   net:add(nn.Linear(o.down == 'none' and 128 or 2048, 256))
   net:add(nn.ReLU())
   net:add(nn.Linear(256, 43))
   return net
end

-- test accuracy with every image translated by (dx, dy) pixels (edges replicated)
local function shifted_accuracy(model, pre, d)
   local ds = g.test
   local n, h, w = ds:size(), ds.x:size(2), ds.x:size(3)
   local x = ts.zeros({n, h, w, 3}, 'uint8')
   x:narrow(2, 1 + d, h - d):narrow(3, 1 + d, w - d):copy(ds.x:narrow(2, 1, h - d):narrow(3, 1, w - d))
   local shifted = ts.data.Dataset(x, ds.y, ds.classNames)
   return ts.evaluate(model, shifted, {preprocess = pre}).accuracy
end

local variants = {}
for _, down in ipairs({'max', 'avg', 'stride', 'none'}) do
   local v = ts.experiment.variant(g, 'downsample ' .. down, {model = {name = 'pooling_variant', down = down}}, opt)
   variants[#variants + 1] = v
end
ts.experiment.compare(variants, 'downsampling (same budget)')
print('\ntranslation robustness (test accuracy with images shifted by d pixels right and down):')
for _, v in ipairs(variants) do
   local model, config = ts.models.load(('%s/%s-s%d'):format(opt.run, v.name, opt.seed))
   local pre = ts.data.preprocess(config.preprocess)
   local row = {}
   for _, d in ipairs({1, 2, 3}) do row[#row + 1] = ('d=%d %.2f%%'):format(d, 100 * shifted_accuracy(model, pre, d)) end
   print(('  %-18s params %7d  %s'):format(v.name, v.runs[1].parameters, table.concat(row, '  ')))
end
local best, cheapest = variants[1], variants[1]
for _, v in ipairs(variants) do
   if v.mean > best.mean then best = v end
   if v.runs[1].train_seconds < cheapest.runs[1].train_seconds then cheapest = v end
end
print(('conclusion: %s gives the best accuracy (%.2f%%) and %s the cheapest training (%.0f s); the shifted ' ..
       'accuracies above show how much of each one\'s accuracy survives small translations'):format(
   best.name, 100 * best.mean, cheapest.name, cheapest.runs[1].train_seconds))
