-- Batch norm statistics recomputed with a model's weights as they are (PyTorch's torch.optim.swa_utils.update_bn,
-- "precise BN"). A training leaves each batch norm a moving average of batch statistics taken while the weights
-- were still changing, over augmented images; weights averaged afterwards (an EMA, several checkpoints) or layers
-- changed after training have none that fit them. This passes a dataset through the model once and sets every batch
-- norm's running mean and variance to the exact mean and unbiased variance of its input over all of it.
--
-- ts.updateBatchNorm(model, ds, opts) -> the number of batch norms updated
-- opts: preprocess (ts.data.preprocess; the identity when nil), augment (ts.data.augment: the images augmented as in
-- training; nil: as they are), seed (of the augmentation's draws), batch (128), device (the model's).
-- The other modules run as in evaluation (dropout off). A batch norm frozen with its statistics kept
-- (freeze_stats) is left as it is. The model is left in the mode it was in, every module of it (a part the caller
-- had put in evaluation inside a training model is then in training, as PyTorch's update_bn leaves it); on an error
-- every batch norm gets back the statistics it had.
local data = require('ts.data')
local keys = require('ts.keys')
local nn = require('ts.nn')

local M = {}

local options = {batch = 1, preprocess = 1, augment = 1, device = 1, seed = 1}
function M.update(model, ds, opts)
   opts = opts or {}
   keys.check('updateBatchNorm', opts, options, 2)   -- batch_size = 0 was ignored
   -- a class (ts.nn.Sequential unmade) or a tensor as ds passed the checks of an apply and a size, and failed inside
   nn.Module.check(model, 'updateBatchNorm: model', 2)
   data.checkDataset(ds, 'updateBatchNorm(model, ds, opts)', 'ds', 2)
   -- (a bad preprocess or augment was refused by the loader, named so and at a line of this file)
   data.checkSettings(opts.preprocess, 'preprocess', 'updateBatchNorm', 2)
   data.checkSettings(opts.augment, 'augment', 'updateBatchNorm', 2)
   if ds:size() == 0 then error('updateBatchNorm: the dataset is empty, so there are no statistics to take', 2) end
   -- (false was taken as the default batch)
   local batch = data.checkBatch(opts.batch == nil and 128 or opts.batch, 'updateBatchNorm', 'batch', 2)
   data.checkSeed(opts.seed, 'updateBatchNorm', 2)   -- C takes it as a uint64: 1.5 gave seed 1's draws
   data.checkDevice(opts.device, 'updateBatchNorm', 2)
   -- a last batch of one image failed in a BatchNorm1d (one value a channel has no variance; PyTorch's update_bn fails
   -- alike): the statistics are gathered exactly over all images, so another batch size gives the same numbers. The
   -- nearest smaller one that leaves no single image, else a larger one (n itself, one batch, always does)
   local n = ds:size()
   if n > 1 and n % batch == 1 then
      local b = batch - 1
      while b >= 2 and n % b == 1 do b = b - 1 end
      if b < 2 then
         b = batch + 1
         while n % b == 1 do b = b + 1 end
      end
      batch = b
   end
   -- made before any batch norm is touched: a loader that cannot be made left them gathering, in training mode
   local loader = data.Loader(ds, {batch = batch, sampler = 'sequential', preprocess = opts.preprocess,
                                   augment = opts.augment, device = opts.device or model.device or 'cpu'})
   local was_training = model.train
   model:evaluate()
   local norms = {}
   model:apply(function(m)
      if m.startGathering then
         m.train = true
         if m:usesBatchStats() then norms[#norms + 1] = m; m:startGathering() else m.train = false end
      end
   end)
   local ok, err = pcall(function()
      for x in loader:epoch(1, opts.seed) do model:forward(x) end
   end)
   loader:close()
   for _, m in ipairs(norms) do m:finishGathering(ok) end
   model:evaluate()
   if was_training then model:training() end
   if not ok then error(err, 0) end
   return #norms
end

return M
