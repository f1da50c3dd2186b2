-- Illumination: how bright and how contrasted are the training images (mean and spread of luminance per
-- image), pictures of the darkest and brightest, and training with none vs histogram equalization vs CLAHE.
--   tshost experiments/illumination.lua [epochs=6] [seeds=1] [run=runs/illumination]
local ffi = require('ffi')
local opt = ts.experiment.options({epochs = 6, run = 'runs/illumination'}, {epochs = {1}})
local g = ts.experiment.dataset(opt)
local n, hw = g.train:size(), g.train.x:size(2) * g.train.x:size(3)
local p = ffi.cast('uint8_t *', g.train.x:data())
local stats = {}
for i = 0, n - 1 do
   local s, sq = 0, 0
   for k = 0, hw - 1 do
      local q = p + (i * hw + k) * 3
      local l = 0.299 * q[0] + 0.587 * q[1] + 0.114 * q[2]
      s, sq = s + l, sq + l * l
   end
   local mean = s / hw
   stats[#stats + 1] = {i + 1, mean, math.sqrt(math.max(0, sq / hw - mean * mean))}
end
table.sort(stats, function(a, b) return a[2] < b[2] end)
-- the q-quantile of a sorted list (its first element below 1/n: a set of 10 images looked up contrasts[0])
local function pct(sorted, q) return sorted[math.max(1, math.floor(q * #sorted))] end
local means = {}
for k, s in ipairs(stats) do means[k] = s[2] end
print(('mean luminance per image: min %.1f, 5%% %.1f, median %.1f, 95%% %.1f, max %.1f (0..255)'):format(
   means[1], pct(means, 0.05), pct(means, 0.5), pct(means, 0.95), means[#means]))
local dark = 0
for _, s in ipairs(stats) do if s[2] < 40 then dark = dark + 1 end end
print(('%d images (%.1f%%) are very dark (mean luminance under 40)'):format(dark, 100 * dark / #stats))
local contrasts = {}
for _, s in ipairs(stats) do contrasts[#contrasts + 1] = s[3] end
table.sort(contrasts)
print(('contrast (luminance standard deviation): 5%% %.1f, median %.1f, 95%% %.1f'):format(
   pct(contrasts, 0.05), pct(contrasts, 0.5), pct(contrasts, 0.95)))

-- pictures: the 16 darkest and 16 brightest (half the set each when it has fewer than 32 images: a set of 20 failed
-- here), raw, equalized and with CLAHE
ts.files.mkdirs(opt.run)
local per_row = math.min(16, math.floor(#stats / 2))
local picks = {}
for k = 1, per_row do picks[k] = stats[k][1] end
for k = 1, per_row do picks[per_row + k] = stats[#stats - per_row + k][1] end
for _, mode in ipairs(per_row > 0 and {'none', 'hist', 'clahe'} or {}) do
   local x = ts.data.batch(g.train, picks, {preprocess = ts.data.preprocess{equalize = mode ~= 'none' and mode or nil}})
   local file = ('%s/darkest_brightest_%s.png'):format(opt.run, mode)
   ts.image.save(file, ts.image.grid(x, {cols = per_row, scale = 3}))
   print('wrote ' .. file .. ' (top row: darkest, bottom: brightest)')
end

local mean, std = g.train:channelStats()
local variants = {}
for _, mode in ipairs({'none', 'hist', 'clahe'}) do
   variants[#variants + 1] = ts.experiment.variant(g, 'equalize ' .. mode,
      {preprocess = ts.data.preprocess{equalize = mode ~= 'none' and mode or nil, mean = mean, std = std}}, opt)
end
ts.experiment.compare(variants, 'illumination normalization (same network and budget)')
print('conclusion: ' .. select(2, ts.experiment.best(variants)))
