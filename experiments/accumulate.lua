-- Gradient accumulation: k micro-batches of size B/k, gradients summed (each loss scaled by its share of the update's
-- images: 1/k, and the micro-batch's share of what is left in an epoch's last, shorter update), one
-- update: the same update as one batch of B, with the activation memory of B/k. Shown here on a network
-- without batch norm (whose batch statistics would differ between B and B/k by design): the weights after
-- the same updates, and the activation memory per step.
--   tshost experiments/accumulate.lua [batch=128] [k=4]
local nn = ts.nn
local opt = ts.experiment.options({batch = 128, k = 4, images = 2048, seed = 1}, {batch = {1}, k = {1}, images = {1}})
-- (k=3 of batch=128 failed in ts.train on a batch of 42.67, after the data was made)
if opt.batch % opt.k ~= 0 then
   error(('accumulate.lua: k=%d does not divide batch=%d into micro-batches of one size'):format(opt.k, opt.batch), 0)
end
local g = ts.experiment.dataset(opt)
local train = g.train:subset((function() local p = {} for i = 1, math.min(opt.images, g.train:size()) do p[i] = i end return p end)())

local function net()
   return nn.Sequential(nn.Conv2d(3, 16, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, {padding = 1}),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2048, 43))
end
local function run(batch, k)
   ts.manualSeed(opt.seed)
   local model = net()
   local r = ts.train{model = model, data = {train = train}, epochs = 1, batch = batch, accumulate = k, lr = 0.05,
                      momentum = 0.9, schedule = 'none', seed = opt.seed, quiet = true}
   -- bytes of the activations and their gradients kept for one micro-batch
   local bytes = 0
   r.model:apply(function(m)
      for _, f in ipairs({'output', 'gradInput'}) do
         if m[f] and ts.isTensor(m[f]) and m[f]:isContiguous() then bytes = bytes + m[f]:numel() * 4 end
      end
   end)
   return r.model, bytes
end
local big, big_bytes = run(opt.batch, 1)
local acc, acc_bytes = run(opt.batch / opt.k, opt.k)
-- the same updates up to float rounding: the largest weight difference against the largest weight, below 1e-4 (the
-- summation order of a batch's gradients changes with its split; a real difference, such as a wrong 1/k scale,
-- shows as whole percents)
local worst, largest = 0, 0
for i, pair in ipairs(big:stateDict()) do
   worst = math.max(worst, pair[2]:maxAbsDiff(acc:stateDict()[i][2]))
   largest = math.max(largest, pair[2]:abs():max())
end
local same = worst <= 1e-4 * largest
local ratio = big_bytes / acc_bytes
print(('batch %d in one step vs %d micro-batches of %d: largest weight difference after %d updates: %.2e (%.1e of the largest weight)'):format(
   opt.batch, opt.k, opt.batch / opt.k, math.ceil(train:size() / opt.batch), worst, worst / largest))
print(('activation memory per step: %.1f MB vs %.1f MB (%.1fx %s)'):format(big_bytes / 1e6, acc_bytes / 1e6,
      ratio >= 1 and ratio or 1 / ratio, ratio >= 1 and 'less' or 'more'))
print(('conclusion: accumulation %s the large-batch update%s, %s: %s (this network has no batch norm; with it, the ' ..
       'statistics would come from each micro-batch and differ from the batch\'s by design)'):format(
   same and 'reproduces' or 'does NOT reproduce', same and ' to float rounding' or (' (weights %.1e of the largest apart)'):format(worst / largest),
   ratio > 1 and ('with %.0f%% of its activation memory'):format(100 / ratio) or 'without saving activation memory',
   same and ratio > 1 and 'the answer when a GPU runs out of memory, at the price of k smaller, less efficient steps' or
   'not the remedy it should be here'))
