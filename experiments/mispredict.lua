-- Which signs are mispredicted, into what, and why: from a finished run (default runs/baseline), the
-- per-class error rates, the most confused pairs, a gallery, and image statistics of the mistakes against
-- the correct predictions: brightness, contrast and sharpness (variance of the Laplacian, low = blurred).
--   tshost experiments/mispredict.lua [run=runs/baseline]
local ffi = require('ffi')
local opt = ts.experiment.options{run = 'runs/baseline'}
local model, config = ts.models.load(opt.run)
local final = ts.json.decode(ts.files.readFile(opt.run .. '/final.json') or '{}')
local g = ts.experiment.runData(opt.run, final, opt)
local preds = ts.load(opt.run .. '/test_predictions.safetensors')
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
local worst = {}
for c = 0, 42 do worst[#worst + 1] = {c, summary.per_class[c].recall, summary.per_class[c].support} end
table.sort(worst, function(a, b) return a[2] < b[2] end)
print('classes with the lowest recall:')
for k = 1, 8 do
   print(('  %2d %-50s recall %.4f of %d'):format(worst[k][1], names[worst[k][1]] or '', worst[k][2], worst[k][3]))
end
print('most confused pairs (true -> predicted):')
for _, m in ipairs(ts.metrics.mostConfused(cm, 10)) do
   print(('  %2d %-42s -> %2d %-42s %d'):format(m[1], names[m[1]] or '', m[2], names[m[2]] or '', m[3]))
end

local function averages(list)
   local b, c, s = 0, 0, 0
   for _, i in ipairs(list) do
      local mb, mc, ms = image_stats(i)
      b, c, s = b + mb, c + mc, s + ms
   end
   return b / #list, c / #list, s / #list
end
local step = math.max(1, math.floor(#right / 2000))
local sample = {}
for k = 1, #right, step do sample[#sample + 1] = right[k] end
local wb, wc, ws = averages(wrong)
local rb, rc, rs = averages(sample)
print(('\n%-22s %12s %12s %14s'):format('', 'brightness', 'contrast', 'sharpness'))
print(('%-22s %12.1f %12.1f %14.1f'):format('mispredicted', wb, wc, ws))
print(('%-22s %12.1f %12.1f %14.1f'):format('correct (sample)', rb, rc, rs))
local reasons = {}
local function compare(name, w, r, low, high)
   if w < 0.85 * r then reasons[#reasons + 1] = ('%s (%.0f%% of the correct ones\' %s)'):format(low, 100 * w / r, name)
   elseif w > 1.15 * r then reasons[#reasons + 1] = ('%s (%.0f%% of the correct ones\' %s)'):format(high, 100 * w / r, name) end
end
compare('brightness', wb, rb, 'darker images', 'brighter images (glare, washed-out colours)')
compare('contrast', wc, rc, 'lower contrast', 'higher contrast')
compare('sharpness', ws, rs, 'blurred images (motion blur, low resolution)', 'noisier, sharper-edged images')
local pair = ts.metrics.mostConfused(cm, 1)[1]
print('conclusion: the mistakes are ' .. (#reasons > 0 and table.concat(reasons, ', ') or 'not different in brightness, contrast or sharpness')
      .. (pair and ('; the most frequent confusion, %s -> %s, is between look-alike signs (same shape and rim, similar pictograms at 32x32)'):format(
            names[pair[1]] or pair[1], names[pair[2]] or pair[2]) or ''))

-- a gallery of the mistakes: each mistake next to a correct example of the class it was taken for
local picks = {}
for k = 1, math.min(24, #wrong) do
   local i = wrong[k]
   picks[#picks + 1] = i
   local p = preds.pred[i]
   local example = i
   for j = 1, g.test:size() do if g.test.y[j] == p and preds.pred[j] == p then example = j break end end
   picks[#picks + 1] = example
end
if #picks > 0 then
   local x = ts.data.batch(g.test, picks)
   local file = opt.run .. '/mispredicted_pairs.png'
   ts.image.save(file, ts.image.grid(x, {cols = 8, scale = 3}))
   print('wrote ' .. file .. ' (pairs: a mistake, then a correct image of the class it was taken for)')
end
