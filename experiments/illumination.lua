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
local function pct(q) return stats[math.max(1, math.floor(q * #stats))][2] end
print(('mean luminance per image: min %.1f, 5%% %.1f, median %.1f, 95%% %.1f, max %.1f (0..255)'):format(
   stats[1][2], pct(0.05), pct(0.5), pct(0.95), stats[#stats][2]))
local dark = 0
for _, s in ipairs(stats) do if s[2] < 40 then dark = dark + 1 end end
print(('%d images (%.1f%%) are very dark (mean luminance under 40)'):format(dark, 100 * dark / #stats))
local contrasts = {}
for _, s in ipairs(stats) do contrasts[#contrasts + 1] = s[3] end
table.sort(contrasts)
print(('contrast (luminance standard deviation): 5%% %.1f, median %.1f, 95%% %.1f'):format(
   contrasts[math.floor(0.05 * #contrasts)], contrasts[math.floor(0.5 * #contrasts)], contrasts[math.floor(0.95 * #contrasts)]))

-- pictures: the 16 darkest and 16 brightest, raw, equalized and with CLAHE
ts.files.mkdirs(opt.run)
local picks = {}
for k = 1, 16 do picks[k] = stats[k][1] end
for k = 1, 16 do picks[16 + k] = stats[#stats - 16 + k][1] end
for _, mode in ipairs({'none', 'hist', 'clahe'}) do
   local x = ts.data.batch(g.train, picks, {preprocess = ts.data.preprocess{equalize = mode ~= 'none' and mode or nil}})
   local file = ('%s/darkest_brightest_%s.png'):format(opt.run, mode)
   ts.image.save(file, ts.image.grid(x, {cols = 16, scale = 3}))
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
