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
print(('\nrecall of the rare classes (%s):'):format(table.concat(rare, ' ')))
for _, v in ipairs(variants) do
   local sum = 0
   for _, c in ipairs(rare) do sum = sum + v.runs[1].per_class[c + 1].recall end
   v.rare = #rare > 0 and sum / #rare or 0
   print(('  %-20s mean rare-class recall %.4f   macro-F1 %.4f'):format(v.name, v.rare, v.runs[1].test_macro_f1))
end
local by_rare, by_all = {unpack(variants)}, {unpack(variants)}
table.sort(by_rare, function(a, b) return a.rare > b.rare end)
table.sort(by_all, function(a, b) return a.mean > b.mean end)
print(('conclusion: best rare-class recall with %s (%.4f), best overall accuracy with %s (%.2f%%); without rebalancing %.4f and %.2f%%'):format(
   by_rare[1].name, by_rare[1].rare, by_all[1].name, 100 * by_all[1].mean, variants[1].rare, 100 * variants[1].mean))
