-- Overexposure: why the baseline reads the test set's "Double curve" (class 21) as "Right-of-way" (11),
-- and whether an exposure augmentation cures it.
--   1. pictures: class-21 images of the training set, the test images the first variant's model gets right
--      and those it gets wrong, and the same test images mirrored; the shares of clipped and of rim-red pixels;
--      training batches as each augmentation delivers them;
--   2. the baseline recipe trained in variants, seeds each, compared with McNemar against the first, with
--      class 21's recall and its 21 -> 11 count:
--        no-exposure  without overexposure
--        baseline     the recipe: a fixed gain >= 1 before the clip, with probability 0.3, up to 3
--        washout      the fixed gain replaced by one relative to each image's light (ts.data.augment's washout:
--                     its bright level brought to 1, times up to 3, probability 0.3): a fixed gain leaves most
--                     of the dark training images of class 21 unclipped, where the test track is washed out
--   3. each model on the validation set brightened by a gain of 1, 2 and 3 (channels clipped at 255).
-- The runs go to runs/recipe, where experiments/ingredients.lua finds the baseline's runs again.
--   tshost experiments/exposure.lua [epochs=24] [seeds=1] [run=runs/recipe] [variants=no-exposure,baseline,washout]
local ffi = require('ffi')
local opt = ts.experiment.options({epochs = 24, run = 'runs/recipe', variants = 'no-exposure,baseline,washout'},
                                 {epochs = {1}})
-- checked before the data and the first part's pictures (a variant given twice trained twice into one folder)
local KNOWN = {'no-exposure', 'baseline', 'washout'}
local names = ts.experiment.choices(opt.variants, 'variants', KNOWN)
local g = ts.experiment.dataset(opt)
ts.files.mkdirs(opt.run)
local DOUBLE_CURVE, RIGHT_OF_WAY = 21, 11

local function indices(ds, cls)
   local out = {}
   for i = 1, ds:size() do if ds.y[i] == cls then out[#out + 1] = i end end
   return out
end

-- shares of the image's pixels that are clipped (a channel at 250 or more: overexposed) and bright rim red
-- (R above 120 and 1.6 times both G and B; the darker red-brown of soil is not counted)
local function pixel_shares(ds, i)
   local img = ds.x[i]:contiguous()
   local p, n = ffi.cast('uint8_t *', img:data()), img:size(1) * img:size(2)
   local clipped, red = 0, 0
   for k = 0, n - 1 do
      local r, gg, b = p[3 * k], p[3 * k + 1], p[3 * k + 2]
      if r >= 250 or gg >= 250 or b >= 250 then clipped = clipped + 1 end
      if r > 120 and r > 1.6 * gg and r > 1.6 * b then red = red + 1 end
   end
   return clipped / n, red / n
end

local function mean_shares(ds, list)
   local c, r = 0, 0
   for _, i in ipairs(list) do
      local a, b = pixel_shares(ds, i)
      c, r = c + a, r + b
   end
   return 100 * c / #list, 100 * r / #list
end

-- the dataset with every channel multiplied by gain and clipped at 255, as an overexposed camera records it
local function brightened(ds, gain)
   local x = ds.x:clone():contiguous()
   local p = ffi.cast('uint8_t *', x:data())
   for k = 0, x:numel() - 1 do
      local v = p[k] * gain
      p[k] = v >= 255 and 255 or math.floor(v + 0.5)
   end
   return ts.data.Dataset(x, ds.y:clone(), ds.classNames, ('%s x%g'):format(ds.name or 'data', gain))
end

local function sheet(ds, list, file, what, batch_opts)
   if #list == 0 then return end
   local picks = {}
   for k = 1, math.min(40, #list) do picks[k] = list[math.floor((k - 1) * #list / math.min(40, #list)) + 1] end
   ts.image.save(file, ts.image.grid(ts.data.batch(ds, picks, batch_opts), {cols = 10, scale = 3, pad = 2}))
   print(('wrote %s (%s)'):format(file, what))
end

-- 2. the baseline recipe in variants
local without_exposure = ts.experiment.with(ts.experiment.baselineAugment, {}, {'exposure'})
local washout = ts.experiment.with(ts.experiment.baselineAugment, {washout = {0.3, 3}}, {'exposure'})
local augments = {['no-exposure'] = without_exposure, baseline = ts.experiment.baselineAugment, washout = washout}
local recipe = {recipe = ts.experiment.baseline}
for k, v in pairs(opt) do recipe[k] = v end
local variants = {}
for k, name in ipairs(names) do
   local changes = name == 'baseline' and {} or {augment = ts.data.augment(augments[name])}
   variants[k] = ts.experiment.variant(g, name, changes, recipe)
end
local verdicts = ts.experiment.compare(variants, 'overexposure augmentation (baseline recipe, same budget)')

-- 1. pictures, from the first variant's model (first seed)
local ev = variants[1].evals[1]
local train21, right21, wrong21 = indices(g.train, DOUBLE_CURVE), {}, {}
for _, i in ipairs(indices(g.test, DOUBLE_CURVE)) do
   if ev.pred[i] == DOUBLE_CURVE then right21[#right21 + 1] = i else wrong21[#wrong21 + 1] = i end
end
print(('\nclass %d (%s): %d training images, %d test images, %d of them mispredicted by %s'):format(
   DOUBLE_CURVE, g.classNames[DOUBLE_CURVE] or '', #train21, #right21 + #wrong21, #wrong21, names[1]))
sheet(g.train, train21, opt.run .. '/class21_train.png', 'training images, evenly spaced: every track')
sheet(g.test, right21, opt.run .. '/class21_test_right.png', 'test images it gets right')
sheet(g.test, wrong21, opt.run .. '/class21_test_wrong.png', 'test images it gets wrong')
local mirror = ts.data.augment{flip = 1}
sheet(g.test, wrong21, opt.run .. '/class21_test_wrong_mirrored.png', 'the mistakes mirrored: compare with the training images',
      {augment = mirror, flips = {[DOUBLE_CURVE] = DOUBLE_CURVE}})
for _, name in ipairs(KNOWN) do
   sheet(g.train, train21, ('%s/class21_train_batches_%s.png'):format(opt.run, name),
         ('training images as the %s augmentation delivers them'):format(name), {augment = ts.data.augment(augments[name]), seed = 7})
end
print(('%-30s %10s %10s'):format('pixels (class ' .. DOUBLE_CURVE .. ')', 'clipped', 'rim red'))
for _, row in ipairs({{'training', g.train, train21}, {'test, right', g.test, right21}, {'test, mispredicted', g.test, wrong21}}) do
   -- (an empty group has no shares: it printed 0.0%, as if none of its pixels were clipped)
   if #row[3] == 0 then print(('%-30s %10s %10s'):format(row[1], '-', '-'))
   else print(('%-30s %9.1f%% %9.1f%%'):format(row[1], mean_shares(row[2], row[3]))) end
end

print(('\n%-28s %14s %10s'):format('variant', 'class 21 recall', '21 -> 11'))
for _, v in ipairs(variants) do
   for s, e in ipairs(v.evals) do
      local cls = e.summary.per_class[DOUBLE_CURVE]
      print(('%-28s %14.3f %10d'):format(('%s (seed %d)'):format(v.name, (opt.seed or 1) + s - 1), cls.recall,
                                         e.cm[DOUBLE_CURVE][RIGHT_OF_WAY]))
   end
end

-- 3. robustness to overexposure, on the validation set
print(('\nvalidation accuracy when the images are brightened (gain, channels clipped at 255):'))
local gains = {1, 2, 3}
local head = ('%-28s'):format('variant')
for _, k in ipairs(gains) do head = head .. ('%10s'):format('x' .. k) end
print(head)
local sets = {}
for k, gain in ipairs(gains) do sets[k] = gain == 1 and g.valid or brightened(g.valid, gain) end
for _, v in ipairs(variants) do
   local model, config = ts.models.load(v.dirs[1])
   local line = ('%-28s'):format(v.name)
   for k in ipairs(gains) do
      local r = ts.evaluate(model, sets[k], {preprocess = ts.data.preprocess(config.preprocess)})
      line = line .. ('%9.2f%%'):format(100 * r.accuracy)
   end
   print(line)
end
-- with its test (a single variant printed no conclusion at all)
if #variants == 1 then print(('conclusion: only %s trained: nothing to compare it with (variants=)'):format(names[1])) end
for k = 2, #variants do
   local name = variants[k].name
   local verdict = not verdicts[name].significant and 'makes no significant difference'
                   or verdicts[name].diff > 0 and 'pays' or 'hurts'
   print(('conclusion: %s against %s %s (%+.2f points on test, %s)'):format(name, names[1], verdict,
                                                                          100 * verdicts[name].diff, verdicts[name].detail))
end
