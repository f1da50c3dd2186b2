-- Colour or grayscale? The same network, budget and seeds on RGB input and on its luminance
-- (0.299 R + 0.587 G + 0.114 B, one input channel).
--   tshost experiments/grayscale.lua [epochs=6] [seeds=1] [run=runs/grayscale]
local opt = ts.experiment.options({epochs = 6, run = 'runs/grayscale'}, {epochs = {1}})
local g = ts.experiment.dataset(opt)
local mean, std = g.train:channelStats()
local gray_mean = 0.299 * mean[1] + 0.587 * mean[2] + 0.114 * mean[3]
local gray_std = (std[1] + std[2] + std[3]) / 3

local colour = ts.experiment.variant(g, 'colour', {preprocess = ts.data.preprocess{mean = mean, std = std}}, opt)
local gray = ts.experiment.variant(g, 'grayscale', {
   model = {name = 'refcnn', classes = 43, channels = 1},
   preprocess = ts.data.preprocess{grayscale = true, mean = {gray_mean}, std = {gray_std}},
}, opt)
local verdict = ts.experiment.compare({colour, gray}, 'colour vs grayscale (same network, budget and seeds)').grayscale

-- which classes gain or lose most without colour: each class's recall averaged over the seeds (seed 1's alone was
-- printed beside the accuracies of several)
local function recall(v, c)
   local sum = 0
   for _, run in ipairs(v.runs) do sum = sum + run.per_class[c].recall end
   return sum / #v.runs
end
local deltas = {}
for c = 1, #colour.runs[1].per_class do deltas[#deltas + 1] = {c - 1, recall(gray, c) - recall(colour, c)} end
table.sort(deltas, function(a, b) return a[2] < b[2] end)
local losers = 0
for k = 1, math.min(5, #deltas) do
   if deltas[k][2] < 0 then
      if losers == 0 then print(('classes that lose most recall in grayscale (mean over %d seed(s)):'):format(#gray.runs)) end
      losers = losers + 1
      print(('  %2d %-45s %+.3f'):format(deltas[k][1], g.classNames[deltas[k][1]] or '', deltas[k][2]))
   end
end
if losers == 0 then print('no class loses recall in grayscale') end
-- the verdict decides the words; why colour would help or hurt is not measured here, so it is not said
print(('conclusion: %s (%s)'):format(not verdict.significant and 'no significant difference at this budget'
                                 or colour.mean > gray.mean and ('colour helps (%+.2f points, significant)'):format(-100 * verdict.diff)
                                 or ('grayscale is better here (%+.2f points, significant)'):format(100 * verdict.diff),
                                 verdict.detail))
