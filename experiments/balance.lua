-- Is the training set balanced, and what do the cures do? Counts and imbalance ratio; then the same
-- network trained with no rebalancing, up-sampling with augmentation, square-root sampling (an epoch of the
-- same size whose class shares follow the square roots of the counts), synthesized images of rare classes,
-- down-sampling, and class-weighted loss: overall accuracy and the recall of the rare classes.
--   tshost experiments/balance.lua [epochs=6] [seeds=1] [run=runs/balance]
local opt = ts.experiment.options({epochs = 6, run = 'runs/balance'}, {epochs = {1}})
local g = ts.experiment.dataset(opt)
local counts, imb = g.train:counts(), g.train:imbalance()
print(('training set: %d images, %d classes; largest class %d (%s) %d images, smallest %d (%s) %d: ratio %.1f'):format(
   g.train:size(), g.train:numClasses(), imb.largest_class, g.classNames[imb.largest_class] or '', imb.largest,
   imb.smallest_class, g.classNames[imb.smallest_class] or '', imb.smallest, imb.ratio))
local sorted = {}
for c = 0, g.train:numClasses() - 1 do sorted[#sorted + 1] = counts[c] end
table.sort(sorted)
local median = sorted[math.ceil(#sorted / 2)]
local rare = {}
for c = 0, g.train:numClasses() - 1 do
   print(('  %2d %-50s %5d %s'):format(c, g.classNames[c] or '', counts[c], ('#'):rep(math.floor(counts[c] / imb.largest * 50))))
   if counts[c] < median / 2 then rare[#rare + 1] = c end
end
print(('rare classes (under half the median of %d): %s'):format(median, table.concat(rare, ' ')))

local variants = {
   ts.experiment.variant(g, 'none', {}, opt),
   ts.experiment.variant(g, 'upsample+augment', {sampler = 'upsample'}, opt),
   ts.experiment.variant(g, 'sqrt sampling', {sampler = 'sqrt'}, opt),
   ts.experiment.variant(g, 'synthesize', {train = ts.data.synthesize(g.train, median)}, opt),
   ts.experiment.variant(g, 'downsample', {sampler = 'downsample', epochs = (opt.epochs or 6) * 3}, opt),
   ts.experiment.variant(g, 'class weights', {class_weights = 'balanced'}, opt),
}
ts.experiment.compare(variants, 'rebalancing (same network and budget; down-sampling gets 3x the epochs of a smaller set)')
-- over every seed, as the accuracy beside it (seed 1's alone were printed under the mean accuracy of several)
print(('\nrecall of the rare classes (%s), mean over the %d seed(s):'):format(table.concat(rare, ' '), #variants[1].runs))
for _, v in ipairs(variants) do
   local rare_sum, f1_sum = 0, 0
   for _, run in ipairs(v.runs) do
      local sum = 0
      for _, c in ipairs(rare) do sum = sum + run.per_class[c + 1].recall end
      rare_sum, f1_sum = rare_sum + (#rare > 0 and sum / #rare or 0), f1_sum + run.test_macro_f1
   end
   v.rare = rare_sum / #v.runs
   print(('  %-20s mean rare-class recall %.4f   macro-F1 %.4f'):format(v.name, v.rare, f1_sum / #v.runs))
end
local by_rare = {unpack(variants)}
table.sort(by_rare, function(a, b) return a.rare > b.rare end)
-- the accuracy's winner with its test (ts.experiment.best), not only the larger number; a tie in recall said as one
local tied = {}
for _, v in ipairs(by_rare) do if v.rare == by_rare[1].rare then tied[#tied + 1] = v.name end end
print(('conclusion: best rare-class recall with %s (%.4f); %s; without rebalancing %.4f and %.2f%%'):format(
   #tied > 1 and table.concat(tied, ', ') .. ', tied' or by_rare[1].name, by_rare[1].rare,
   select(2, ts.experiment.best(variants)), variants[1].rare, 100 * variants[1].mean))
