-- Activations of random images through every layer of a trained network (default runs/baseline): one
-- picture per layer and, per layer, how much of the map is active (ReLU sparsity) and how large it is.
--   tshost experiments/layers.lua [run=runs/baseline] [images=4]
local opt = ts.experiment.options({run = 'runs/baseline', images = 4, seed = 7}, {images = {1}})
ts.manualSeed(opt.seed)
local model, config = ts.models.load(opt.run)
local final = ts.json.readFile(opt.run .. '/final.json') or {}
local g = ts.experiment.runData(opt.run, final, opt)
local picks = {}
for k = 1, opt.images do picks[k] = ts.randint(g.test:size()) end
local x = ts.data.batch(g.test, picks, {preprocess = ts.data.preprocess(config.preprocess)})
model:forward(x)
ts.files.mkdirs(opt.run .. '/layers')
print(('%-4s %-12s %-16s %9s %9s'):format('#', 'layer', 'output', 'active', 'mean'))
local relu_active = {}
for _, c in ipairs(model:children()) do
   local out = c.module.output
   if out and out:dim() >= 2 then
      local active = out:gt(0):sum() / out:numel()
      print(('%-4s %-12s %-16s %8.1f%% %9.3f'):format(c.name, c.module.__typename, tostring(out:size()), 100 * active, out:mean()))
      if c.module.__typename == 'ReLU' and out:dim() == 4 then relu_active[#relu_active + 1] = {c.name, active, out:size(3)} end
      -- named as the # column names the layer (the pictures were numbered from 1 where the column counts from 0)
      if out:dim() == 4 then
         local id = tonumber(c.name) and ('%02d'):format(c.name) or c.name
         ts.image.save(('%s/layers/%s_%s.png'):format(opt.run, id, c.module.__typename), ts.image.activationGrid(out, 16))
      end
   end
end
print(('pictures in %s/layers/ (rows: the %d images; columns: the first channels)'):format(opt.run, opt.images))
local first, last = relu_active[1], relu_active[#relu_active]
if first and last then
   print(('conclusion: %.0f%% of the first convolutional layer\'s units are active on %dx%d maps%s; %.0f%% of the last ' ..
          'one\'s on %dx%d maps, each unit seeing a larger part of the sign%s'):format(
          100 * first[2], first[3], first[3], first[2] > 0.5 and ' (dense: most units respond almost everywhere)' or '',
          100 * last[2], last[3], last[3],
          last[2] < first[2] and ': the code gets sparser with depth' or last[2] > first[2] and ': the code gets denser with depth' or ''))
end
