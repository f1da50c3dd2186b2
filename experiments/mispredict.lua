-- Which signs are mispredicted, into what, and why: from a finished run (default runs/baseline), the
-- per-class error rates, the most confused pairs, a gallery, and image statistics of the mistakes against
-- the correct predictions: brightness, contrast and sharpness (variance of the Laplacian, low = blurred).
--   tshost experiments/mispredict.lua [run=runs/baseline]
local ffi = require('ffi')
local opt = ts.experiment.options({run = 'runs/baseline'})
local model, config = ts.models.load(opt.run)
local final = ts.json.readFile(opt.run .. '/final.json') or {}
local g = ts.experiment.runData(opt.run, final, opt)
local preds = ts.experiment.readPredictions(opt.run, g.test:size())
local names = g.classNames

local function image_stats(i)
   local img = g.test.x[i]:contiguous()
   local h, w = img:size(1), img:size(2)
   local p = ffi.cast('uint8_t *', img:data())
   local lum = {}
   local s, sq = 0, 0
   for k = 0, h * w - 1 do
      local l = 0.299 * p[3 * k] + 0.587 * p[3 * k + 1] + 0.114 * p[3 * k + 2]
      lum[k] = l
      s, sq = s + l, sq + l * l
   end
   local mean = s / (h * w)
   local lap, ls, lsq, n = 0, 0, 0, 0
   for y = 1, h - 2 do
      for x = 1, w - 2 do
         lap = 4 * lum[y * w + x] - lum[(y - 1) * w + x] - lum[(y + 1) * w + x] - lum[y * w + x - 1] - lum[y * w + x + 1]
         ls, lsq, n = ls + lap, lsq + lap * lap, n + 1
      end
   end
   return mean, math.sqrt(math.max(0, sq / (h * w) - mean * mean)), lsq / n - (ls / n) ^ 2
end

local wrong, right = {}, {}
for i = 1, preds.pred:numel() do
   if preds.pred[i] ~= preds.target[i] then wrong[#wrong + 1] = i else right[#right + 1] = i end
end
print(('%s: %d of %d test images mispredicted (%.2f%%)'):format(opt.run, #wrong, preds.pred:numel(), 100 * #wrong / preds.pred:numel()))

local cm = ts.metrics.confusion(preds.pred, preds.target, 43)
local summary = ts.metrics.summary(cm)
-- (a class without test images has no recall: it was listed among the lowest, "recall 0.0000 of 0")
local worst = {}
for c = 0, 42 do
   if summary.per_class[c].support > 0 then worst[#worst + 1] = {c, summary.per_class[c].recall, summary.per_class[c].support} end
end
table.sort(worst, function(a, b) return a[2] < b[2] end)
print('classes with the lowest recall:')
for k = 1, math.min(8, #worst) do
   print(('  %2d %-50s recall %.4f of %d'):format(worst[k][1], names[worst[k][1]] or '', worst[k][2], worst[k][3]))
end
print('most confused pairs (true -> predicted):')
for _, m in ipairs(ts.metrics.mostConfused(cm, 10)) do
   print(('  %2d %-42s -> %2d %-42s %d'):format(m[1], names[m[1]] or '', m[2], names[m[2]] or '', m[3]))
end

-- the mean and the standard error of each statistic over a list of images
local function averages(list)
   local sum, sq = {0, 0, 0}, {0, 0, 0}
   for _, i in ipairs(list) do
      local v = {image_stats(i)}
      for k = 1, 3 do sum[k], sq[k] = sum[k] + v[k], sq[k] + v[k] * v[k] end
   end
   local n, mean, se = #list, {}, {}
   for k = 1, 3 do
      mean[k] = sum[k] / n
      -- (one image has no spread to measure: its error is unknown, so no difference is called clear)
      se[k] = n > 1 and math.sqrt(math.max(0, sq[k] / n - mean[k] ^ 2) / (n - 1)) or math.huge
   end
   return mean, se
end
if #wrong == 0 then
   print('conclusion: no test image is mispredicted')
   return
end
local pair = ts.metrics.mostConfused(cm, 1)[1]
local confusion = pair and ('the most frequent confusion is %s -> %s (%d images; mispredicted_pairs.png puts each mistake ' ..
                            'beside the class it was taken for)'):format(names[pair[1]] or pair[1], names[pair[2]] or pair[2], pair[3])
-- each mistake beside an image of the class it was taken for: a test image the model reads right, else a training
-- image of that class (with none in the test set, the mistake was put beside itself, under the words "a correct image
-- of the class"); written before the statistics, which need correct images to compare with
local function example_of(class)
   for j = 1, g.test:size() do if g.test.y[j] == class and preds.pred[j] == class then return g.test, j end end
   for j = 1, g.train:size() do if g.train.y[j] == class then return g.train, j end end
end
local function gallery()
   local shown = {}
   for k = 1, math.min(24, #wrong) do shown[k] = wrong[k] end
   local mistakes, rows = ts.data.batch(g.test, shown), {}
   for k, i in ipairs(shown) do
      local ds, j = example_of(preds.pred[i])
      rows[2 * k - 1] = mistakes:narrow(1, k, 1)
      rows[2 * k] = ds and ts.data.batch(ds, {j}) or mistakes:narrow(1, k, 1):clone():zero()
   end
   local file = opt.run .. '/mispredicted_pairs.png'
   ts.image.save(file, ts.image.grid(ts.cat(rows, 1), {cols = 8, scale = 3}))
   print('wrote ' .. file .. ' (pairs: a mistake, then an image of the class it was taken for: a test image read right, ' ..
         'else a training image)')
end
if #right == 0 then
   gallery()
   print('conclusion: every test image is mispredicted, so no correct prediction to compare the mistakes with' ..
         (confusion and '; ' .. confusion or ''))
   return
end
local step = math.max(1, math.floor(#right / 2000))
local sample = {}
for k = 1, #right, step do sample[#sample + 1] = right[k] end
local wm, wse = averages(wrong)
local rm, rse = averages(sample)
print(('\n%-22s %12s %12s %14s'):format('', 'brightness', 'contrast', 'sharpness'))
print(('%-22s %12.1f %12.1f %14.1f'):format('mispredicted', wm[1], wm[2], wm[3]))
print(('%-22s %12.1f %12.1f %14.1f'):format('correct (sample)', rm[1], rm[2], rm[3]))
-- a difference is named when it is large (15% of the correct images' mean) and clear (more than twice the standard
-- error of the difference of the two means: Welch's statistic over 2)
local reasons = {}
local names3 = {{'brightness', 'darker images', 'brighter images'}, {'contrast', 'lower contrast', 'higher contrast'},
                {'sharpness', 'blurrier images', 'sharper-edged images'}}
for k, n in ipairs(names3) do
   local w, r = wm[k], rm[k]
   local clear = math.abs(w - r) > 2 * math.sqrt(wse[k] ^ 2 + rse[k] ^ 2)
   if clear and (w < 0.85 * r or w > 1.15 * r) then
      reasons[#reasons + 1] = ('%s (%.0f%% of the correct ones\' %s)'):format(w < r and n[2] or n[3], 100 * w / r, n[1])
   end
end
print('conclusion: the mistakes are ' ..
      (#reasons > 0 and table.concat(reasons, ', ') or 'not clearly different in brightness, contrast or sharpness') ..
      (confusion and '; ' .. confusion or ''))
gallery()
