-- Batches for training and evaluation: augmentation and preprocessing settings, samplers that rebalance
-- classes, and the prefetching Loader.
--
--   local aug = ts.data.augment{rotate = 15, scale = {0.9, 1.1}, translate = 0.1, brightness = 0.3, flip = 0.5}
--   local pre = ts.data.preprocess{mean = {...}, std = {...}, equalize = 'clahe', grayscale = false}
--   local loader = ts.data.Loader(train, {batch = 128, augment = aug, preprocess = pre, sampler = 'upsample'})
--   for x, y in loader:epoch() do ... end      -- x float [B,C,H,W], y int64 [B]
--   loader:close()                               -- its threads and buffers freed now, not at a collection
local ffi = require('ffi')
local T = require('ts.tensor')
local keys = require('ts.keys')
local cffi = require('ts.ffi')
local C, check, fail = cffi.C, cffi.check, cffi.fail

local M = {}

-- ---- the checks of what batches are made from, shared by every taker (the Loader, ts.data.batch, ts.data.synthesize,
-- ts.evaluate, ts.train) -----------------------------------------------------------------------------------------

-- ds, unless it is no dataset (ts.data.Dataset, or a table with its images x, labels y, size and numClasses): an error
-- "<what>: <name> must be a dataset (ts.data.Dataset), got ..." at `level` as error's, counted from the caller (nil and
-- tables without them failed on indexing inside)
function M.checkDataset(ds, what, name, level)
   if not (type(ds) == 'table' and T.isTensor(ds.x) and T.isTensor(ds.y) and type(ds.size) == 'function' and
           type(ds.numClasses) == 'function') then
      error(('%s: %s must be a dataset (ts.data.Dataset), got %s'):format(what, name,
            type(ds) == 'table' and 'a table that is not one' or keys.show(ds)), level + 1)
   end
   return ds
end

-- v, unless it is neither nil nor the settings ts.data.<kind>{...} makes (kind 'augment' or 'preprocess'): an error
-- "<what>: <name> must be the settings ts.data.<kind>{...} makes, got ..." (name: kind unless given) at `level` as
-- error's, counted from the caller. A plain table of settings reached C as none at all (preprocess = {mean = ..., std =
-- ...} gave unnormalized images without a word, augment = {rotate = 10} no augmentation), a number failed on indexing
-- inside, and the one kind given for the other failed in the FFI.
local settings_types = {augment = ffi.typeof('ts_augment'), preprocess = ffi.typeof('ts_preprocess')}
function M.checkSettings(v, kind, what, level, name)
   if v == nil or (type(v) == 'table' and ffi.istype(settings_types[kind], v.c) and type(v.settings) == 'table') then
      return v
   end
   local got = type(v) ~= 'table' and type(v) .. ' ' .. keys.show(v) or
               ('a table it did not make (make it with ts.data.%s{...})'):format(kind)
   for other, ct in pairs(settings_types) do
      if type(v) == 'table' and ffi.istype(ct, v.c) then got = ('the settings ts.data.%s{...} makes'):format(other) end
   end
   error(('%s: %s must be the settings ts.data.%s{...} makes, got %s'):format(what, name or kind, kind, got), level + 1)
end

-- A list or a 1-d tensor of 1-based positions in a dataset of n images, each a whole number in 1 .. n (repeats
-- allowed), as a list and its length (Dataset:subset, ts.data.batch); an error naming `what` otherwise, at `level` as
-- error's, counted from the caller. Unchecked, -1 took the last image, a hole ended the list there (or made the rest
-- image 1), and 0, n + 1 or 1.5 failed inside on indexing.
function M.checkPositions(v, n, what, level)
   if T.isTensor(v) then
      if v:dim() ~= 1 then
         error(('%s: positions must be a list or a 1-d tensor, got a tensor %s'):format(what, tostring(v:size())), level + 1)
      end
      v = v:totable()
   end
   if type(v) ~= 'table' then
      error(('%s: positions must be a list or a 1-d tensor of 1-based positions, got %s'):format(what, keys.show(v)),
            level + 1)
   end
   local count = 0
   for k in pairs(v) do
      if type(k) ~= 'number' or k % 1 ~= 0 or k < 1 then
         error(('%s: positions must be a list, got a table with the key %s'):format(what, keys.show(k)), level + 1)
      end
      count = math.max(count, k)
   end
   for i = 1, count do
      local p = v[i]
      if type(p) ~= 'number' or p % 1 ~= 0 or p < 1 or p > n then
         error(('%s: position %d is %s; positions are whole numbers 1 .. %d (1-based)'):format(what, i, keys.show(p), n),
               level + 1)
      end
   end
   return v, count
end

-- device, unless it is neither nil nor 'cpu' or 'cuda': an error "<what>: device must be 'cpu' or 'cuda', got ..." at
-- `level` as error's, counted from the caller
function M.checkDevice(device, what, level)
   if device ~= nil and device ~= 'cpu' and device ~= 'cuda' then
      error(("%s: device must be 'cpu' or 'cuda', got %s"):format(what, keys.show(device)), level + 1)
   end
   return device
end

-- a seed for the augmentation's draws, which C takes as a uint64, unless it is neither nil nor a whole number from 0 to
-- 2^53: 1.5 gave seed 1's draws, -0.5 seed 0's, NaN and 1e30 those of 2^63, a string an FFI error
function M.checkSeed(seed, what, level)
   if seed ~= nil then keys.count(seed, what, 'seed', 0, keys.MAX_SEED, level + 1) end
   return seed
end

-- a number of images a batch (or batches prefetched) as C's int takes it, unless it is no whole number from 1 to
-- MAX_BATCH: the Loader's, the evaluation's, updateBatchNorm's and ts.train's. name: the option's name
M.MAX_BATCH = 2 ^ 24
function M.checkBatch(v, what, name, level)
   keys.count(v, what, name, 1, M.MAX_BATCH, level + 1)   -- not a tail call, which drops this frame from the count
   return v
end

-- a setting's number, refused when it is not a finite number (a NaN rotation reaches the warp as a NaN
-- matrix; math.huge as an infinite one)
local function finite(v, what, name, level)
   if not T.isFinite(v) then
      error(('%s: %s must be a finite number, got %s'):format(what, name, keys.show(v)), level + 1)
   end
   return v
end

-- an augmentation setting given as one number or {lo, hi} (nil: the defaults), its errors at augment's caller (they
-- pointed one level above it: into the runner, or nowhere)
local function range(v, name, default_lo, default_hi)
   if v == nil then return default_lo, default_hi end
   if type(v) == 'number' then return finite(v, 'augment', name, 3), v end
   if type(v) == 'table' and #v == 2 then return finite(v[1], 'augment', name, 3), finite(v[2], 'augment', name, 3) end
   error(('augment: %s must be a number or {lo, hi}, got %s'):format(name, keys.show(v)), 3)
end

-- a single-number setting: nil gives 0 (off)
local function number(o, name) return o[name] == nil and 0 or finite(o[name], 'augment', name, 3) end

local augment_keys = {rotate = 1, scale = 1, translate = 1, shear = 1, perspective = 1, brightness = 1, contrast = 1,
                      saturation = 1, hue = 1, gamma = 1, exposure = 1, washout = 1, fade = 1, shadow = 1,
                      blur = 1, noise = 1, cutout = 1, flip = 1}

-- ts.data.augment{...}: every transformation is off unless named.
--   rotate (degrees), scale {lo, hi}, translate (fraction), shear (degrees), perspective (0.05 mild),
--   brightness, contrast, saturation (factor spread s: factors from max(0, 1 - s) to 1 + s), hue (turns),
--   gamma {lo, hi},
--   exposure {probability, max gain} (overexposure: a gain >= 1 before the clip, washing out bright colours),
--   washout {probability, max gain} (overexposure relative to the image's light: the gain that brings its
--   bright level, the 90th percentile of each pixel's brightest channel, to 1, times one >= 1; a dark image
--   washes out as a bright one, which a fixed gain leaves unclipped),
--   fade {probability, max} (faded red paint: a fraction up to max <= 1 of each pixel's excess of red over
--   its green and blue added to both, so a sun-bleached red rim pales toward white and its symbol stays),
--   shadow {probability, darkest gain} (a cast shadow: a band at a random angle and place, from a pole's
--   width to most of the image, its light times a gain uniform in [darkest, 1], with soft edges),
--   blur {probability, max sigma >= 0.3} (sigma from 0.3 to max), noise (std, 0..1 scale), cutout {probability,
--   size}, flip (probability, applied only where the loader's flip map allows, relabelling mirrored signs)
function M.augment(o)
   o = o or {}
   keys.check('augment', o, augment_keys, 2, 'setting')
   -- the settings that are a probability and a magnitude: one number would be both (cutout = 0.5, a square of half a
   -- pixel half the time, was silently none)
   for key, magnitude in pairs({exposure = 'max gain', washout = 'max gain', fade = 'max', shadow = 'darkest gain',
                                blur = 'max sigma', cutout = 'size'}) do
      if o[key] ~= nil and (type(o[key]) ~= 'table' or #o[key] ~= 2) then
         error(('augment: %s must be {probability, %s}, got %s'):format(key, magnitude, keys.show(o[key])), 2)
      end
   end
   local a = ffi.new('ts_augment')
   a.rotate = number(o, 'rotate')
   a.scale_min, a.scale_max = range(o.scale, 'scale', 1, 1)
   a.translate = number(o, 'translate')
   a.shear = number(o, 'shear')
   a.perspective = number(o, 'perspective')
   a.brightness, a.contrast = number(o, 'brightness'), number(o, 'contrast')
   a.saturation, a.hue = number(o, 'saturation'), number(o, 'hue')
   a.gamma_min, a.gamma_max = range(o.gamma, 'gamma', 0, 0)
   if o.gamma ~= nil and a.gamma_min <= 0 then   -- 0 is how C says "off", which only nil means here
      error(('augment: gamma must be {lo, hi} with 0 < lo <= hi <= 10, got %s'):format(tostring(a.gamma_min)), 2)
   end
   a.exposure_prob, a.exposure_max = range(o.exposure, 'exposure', 0, 1)
   if a.exposure_prob > 0 and a.exposure_max < 1 then error('augment: exposure gain must be at least 1', 2) end
   a.washout_prob, a.washout_max = range(o.washout, 'washout', 0, 1)
   if a.washout_prob > 0 and a.washout_max < 1 then error('augment: washout gain must be at least 1', 2) end
   a.fade_prob, a.fade_max = range(o.fade, 'fade', 0, 0)
   if a.fade_prob > 0 and not (a.fade_max > 0 and a.fade_max <= 1) then error('augment: fade must be in (0, 1]', 2) end
   a.shadow_prob, a.shadow_min = range(o.shadow, 'shadow', 0, 0)
   if a.shadow_prob > 0 and not (a.shadow_min >= 0 and a.shadow_min < 1) then
      error('augment: shadow gain must be in [0, 1)', 2)
   end
   a.blur_prob, a.blur_sigma = range(o.blur, 'blur', 0, 0)
   a.noise = number(o, 'noise')
   local cp, cs = range(o.cutout, 'cutout', 0, 0)
   -- a whole number of pixels, checked before the C int takes it (3e9 wrapped to a negative size)
   keys.count(cs, 'augment', 'the cutout size (pixels)', 0, 4096, 2)
   a.cutout_prob, a.cutout_size = cp, cs
   a.flip_prob = number(o, 'flip')
   if a.scale_min <= 0 or a.scale_max <= 0 then error('augment: scale must be positive', 2) end
   if C.ts_augment_check('augment', a) ~= 0 then error(ffi.string(C.ts_last_error()), 2) end
   return {c = a, settings = o}
end


-- ts.data.preprocess{mean = {r, g, b}, std = {r, g, b}, grayscale = false, equalize = nil|'hist'|'clahe',
--                    clahe_tiles = 4, clahe_clip = 2, size = {h, w} or n}
local preprocess_keys = {mean = 1, std = 1, grayscale = 1, equalize = 1, clahe_tiles = 1, clahe_clip = 1, size = 1}
function M.preprocess(o)
   o = o or {}
   if type(o) ~= 'table' then error('preprocess: expected a table of settings, got ' .. type(o), 2) end
   keys.check('preprocess', o, preprocess_keys, 2, 'setting')
   for _, k in ipairs({'mean', 'std'}) do
      local v = o[k]
      if v ~= nil and (type(v) ~= 'table' or (#v ~= 1 and #v ~= 3)) then
         error(('preprocess: %s must be a list of 1 or 3 numbers (one per channel), got %s'):format(k, keys.show(v)), 2)
      end
   end
   keys.flag(o.grayscale, 'preprocess', 'grayscale', 2)
   local p = ffi.new('ts_preprocess')
   p.grayscale = o.grayscale and 1 or 0
   local eq = {none = 0, hist = 1, clahe = 2}
   p.equalize = eq[o.equalize or 'none'] or error("preprocess: equalize must be nil, 'hist' or 'clahe'", 2)
   -- tiles as C takes them (2.5 was 2 tiles; 0 and 65 were refused only when a batch was made, at no line)
   p.clahe_tiles = keys.count(o.clahe_tiles or 4, 'preprocess', 'clahe_tiles', 1, C.TS_PREPROCESS_MAX_TILES, 2)
   p.clahe_clip = o.clahe_clip and finite(o.clahe_clip, 'preprocess', 'clahe_clip', 2) or 2
   -- pixels, 0 being C's "the images' own size": size = 0 or {16, 0} kept that size without a word, 2.5 was 2, and
   -- -4 or 1e6 failed only when a batch was made (1e6 as an out-of-memory)
   if o.size ~= nil then
      p.out_h, p.out_w = keys.sizes(o.size, 'preprocess', 'size', 1, 2, 2)
      if p.out_h > C.TS_PREPROCESS_MAX_SIDE or p.out_w > C.TS_PREPROCESS_MAX_SIDE then
         error(('preprocess: size must be at most %d pixels a side, got %s'):format(C.TS_PREPROCESS_MAX_SIDE, keys.show(o.size)), 2)
      end
   end
   local mean, std = o.mean or {0, 0, 0}, o.std or {1, 1, 1}
   for i = 1, 3 do
      p.mean[i - 1] = finite(mean[i] or mean[1], 'preprocess', 'mean', 2)
      p.std[i - 1] = finite(std[i] or std[1], 'preprocess', 'std', 2)
      if p.std[i - 1] == 0 then error('preprocess: std must not be 0 (it divides)', 2) end
   end
   return {c = p, settings = o}
end

-- The geometric transform the augmentation applies, as a function mapping source pixel coordinates
-- (x, y) to output coordinates: ts.data.augmentMatrix{size = 32, rotate = 10, scale = 1.1, shear = 0,
-- tx = 0, ty = 0 (pixels), px = 0, py = 0 (perspective), out = size}
local matrix_options = {size = 1, out = 1, rotate = 1, scale = 1, shear = 1, tx = 1, ty = 1, px = 1, py = 1}
function M.augmentMatrix(o)
   keys.check('ts.data.augmentMatrix', o, matrix_options, 2)   -- rotation = 10 was ignored: no rotation
   for _, k in ipairs({'rotate', 'scale', 'shear', 'tx', 'ty', 'px', 'py'}) do   -- a NaN made a NaN matrix
      if o[k] ~= nil then finite(o[k], 'ts.data.augmentMatrix', k, 2) end
   end
   if o.scale ~= nil and o.scale <= 0 then error(('ts.data.augmentMatrix: scale must be positive, got %s'):format(o.scale), 2) end
   local m = ffi.new('double[9]')
   -- n or {h, w} pixels (a nil size reached C as a nil int, 0 divided by zero)
   local h, w = keys.sizes(o.size, 'ts.data.augmentMatrix', 'size', 1, 2, 2)
   local oh, ow = keys.sizes(o.out or o.size, 'ts.data.augmentMatrix', 'out', 1, 2, 2)
   C.ts_augment_matrix(m, h, w, oh, ow, o.rotate or 0, o.scale or 1, o.shear or 0, o.tx or 0, o.ty or 0,
                       o.px or 0, o.py or 0)
   return function(x, y)
      local z = m[6] * x + m[7] * y + m[8]
      return (m[0] * x + m[1] * y + m[2]) / z, (m[3] * x + m[4] * y + m[5]) / z
   end
end

-- The class a horizontally mirrored GTSRB sign shows (0-based ClassIds): symmetric signs keep their class,
-- left/right pairs swap, all others (digits, text, asymmetric pictograms) are never mirrored. Class 21
-- (double curve, first to the left) is not mirrored either: its mirror image is another sign (first to the
-- right), and every class-21 image of GTSRB, test set included, shows the same variant
-- (experiments/exposure.lua shows them side by side; its test mistakes are washed-out rims, not mirrors).
M.gtsrbFlips = {[11] = 11, [12] = 12, [13] = 13, [15] = 15, [17] = 17, [18] = 18, [22] = 22, [26] = 26,
                [30] = 30, [35] = 35, [19] = 20, [20] = 19, [33] = 34, [34] = 33, [36] = 37, [37] = 36, [38] = 39,
                [39] = 38}

-- a flip map {[class] = class of the mirror image} as C's array over classes 0 .. classes-1 (-1: never mirrored). Keys
-- and classes are whole numbers in that range, else an error naming `what` at `level` (counted from the caller): a
-- number or true failed on indexing inside, a class of 1.5 was cut to 1, one of 1000 labelled mirrored images 1000,
-- a key '11' (a string) or 50 was ignored
local function flip_array(map, classes, what, level)
   if not map then return nil, 0 end
   if type(map) ~= 'table' then
      error(('%s: flips must be a table {[class] = class of its mirror image}, got %s'):format(what, keys.show(map)),
            level + 1)
   end
   local function class(c) return type(c) == 'number' and c % 1 == 0 and c >= 0 and c < classes end
   for k, v in pairs(map) do
      if not (class(k) and class(v)) then
         error(('%s: flips maps %s to %s; both must be class ids, whole numbers 0 .. %d'):format(what, keys.show(k),
               keys.show(v), classes - 1), level + 1)
      end
   end
   local arr = ffi.new('int32_t[?]', classes)
   for c = 0, classes - 1 do arr[c] = map[c] or -1 end
   return arr, classes
end

-- ---- samplers: the 0-based image order of one epoch -------------------------------------------------

local function by_class(ds)
   local groups = {}
   local p = ffi.cast('int64_t *', ds.y:data())
   for i = 0, ds.y:numel() - 1 do
      local c = tonumber(p[i])
      groups[c] = groups[c] or {}
      groups[c][#groups[c] + 1] = i
   end
   return groups
end

local function shuffle(list)
   for i = #list, 2, -1 do
      local j = T.randint(i)
      list[i], list[j] = list[j], list[i]
   end
   return list
end

M.samplers = {}
-- every image once, shuffled
function M.samplers.shuffle(ds)
   local order = {}
   for i = 0, ds:size() - 1 do order[i + 1] = i end
   return shuffle(order)
end
-- every image once, in order (evaluation)
function M.samplers.sequential(ds)
   local order = {}
   for i = 0, ds:size() - 1 do order[i + 1] = i end
   return order
end
-- An epoch that takes quota[c] images of each class c: all of its images (in order) and then random
-- repeats, which the augmentation turns into new variants, when the quota is at least the class's count;
-- a fresh random subset of that many when it is smaller. quota(groups) -> {class = count}.
local function by_quota(ds, quota)
   local groups, order = by_class(ds), {}
   local want = quota(groups)
   for c, g in pairs(groups) do
      if want[c] >= #g then
         for i = 1, want[c] do order[#order + 1] = i <= #g and g[i] or g[T.randint(#g)] end
      else
         local copy = {}
         for i = 1, #g do copy[i] = g[i] end
         shuffle(copy)
         for i = 1, want[c] do order[#order + 1] = copy[i] end
      end
   end
   return shuffle(order)
end

-- every class at the same count n (the largest class's, or the smallest's)
local function equal(pick)
   return function(ds)
      return by_quota(ds, function(groups)
         local n = nil
         for _, g in pairs(groups) do n = n and pick(n, #g) or #g end
         local want = {}
         for c in pairs(groups) do want[c] = n end
         return want
      end)
   end
end
-- every class up to the largest class's count
M.samplers.upsample = equal(math.max)
-- every class down to the smallest class's count, a fresh random subset each epoch
M.samplers.downsample = equal(math.min)

-- Square-root sampling (Mahajan et al. 2018; Kang et al. 2020): an epoch of the dataset's size in which a
-- class of n_c images has a share proportional to sqrt(n_c) instead of n_c, so that an 11:1 imbalance
-- becomes about 3.3:1 while every epoch costs what a plain one does (up-sampling to the largest class costs
-- 2.5 times as much on GTSRB). The counts N * sqrt(n_c) / sum sqrt(n_k) are rounded by largest remainder,
-- so that they add up to N exactly; every class keeps at least one image, since sqrt(n) <= n makes the
-- smallest share N / sum sqrt(n_k) >= 1.
function M.samplers.sqrt(ds)
   return by_quota(ds, function(groups)
      local total, weight, want, rest = ds:size(), 0, {}, {}
      for _, g in pairs(groups) do weight = weight + math.sqrt(#g) end
      local given = 0
      for c, g in pairs(groups) do
         local exact = total * math.sqrt(#g) / weight
         want[c] = math.floor(exact)
         given = given + want[c]
         rest[#rest + 1] = {c = c, frac = exact - math.floor(exact)}
      end
      table.sort(rest, function(a, b) return a.frac > b.frac or (a.frac == b.frac and a.c < b.c) end)
      for k = 1, total - given do want[rest[k].c] = want[rest[k].c] + 1 end
      return want
   end)
end

-- Up-sampling by synthesis: strongly augmented copies of the images of every class with fewer than
-- `target` images, made once, until each reaches target; returns a new dataset (the originals first).
function M.synthesize(ds, target, augment)
   -- (a nil dataset or target failed on indexing or arithmetic inside)
   local call = 'ts.data.synthesize(ds, target [, augment])'
   M.checkDataset(ds, call, 'ds', 2)
   keys.count(target, call, 'target (images per class)', 0, nil, 2)
   M.checkSettings(augment, 'augment', call, 2)
   local strong = augment or M.augment{rotate = 15, scale = {0.85, 1.15}, translate = 0.1, shear = 8, perspective = 0.05,
                                       brightness = 0.4, contrast = 0.4, saturation = 0.3, gamma = {0.7, 1.5},
                                       blur = {0.3, 1.0}, noise = 0.03}
   local picks = {}
   for _, list in pairs(by_class(ds)) do
      for k = 1, math.max(0, target - #list) do picks[#picks + 1] = list[(k - 1) % #list + 1] + 1 end
   end
   if #picks == 0 then return ds end
   local x, y = M.batch(ds, picks, {augment = strong})   -- float [K,C,H,W] in 0..1
   local n, c = ds:size() + #picks, ds.x:size(4)
   local images, labels = T.zeros({n, ds.x:size(2), ds.x:size(3), c}, 'uint8'), T.zeros({n}, 'int64')
   images:narrow(1, 1, ds:size()):copy(ds.x)
   labels:narrow(1, 1, ds:size()):copy(ds.y)
   images:narrow(1, ds:size() + 1, #picks):copy((x * 255):clamp(0, 255):add_(0.5):floor_():transpose(2, 3):transpose(3, 4))
   labels:narrow(1, ds:size() + 1, #picks):copy(y)
   return require('ts.data').Dataset(images, labels, ds.classNames, ds.name .. '+synthetic')
end

-- ---- the loader ------------------------------------------------------------------------------------

local Loader = {}
Loader.__index = Loader

-- opts: batch (128), augment, preprocess, sampler ('shuffle' | 'sequential' | 'upsample' | 'downsample' | 'sqrt' or a
-- function(ds) -> 0-based order), flips (a flip map, default ts.data.gtsrbFlips when augment has flip),
-- drop_last (false), prefetch (3 batches, at least workers + 1), workers (1: threads building batches; the
-- batches do not depend on it), device ('cpu'; 'cuda': the images arrive on the GPU, finished there)
local loader_options = {batch = 1, drop_last = 1, sampler = 1, augment = 1, preprocess = 1, flips = 1, workers = 1,
                        prefetch = 1, device = 1}
-- the sampler s names (nil: 'shuffle') or is, unless it is neither one of M.samplers' names nor a function: an error
-- "<what>: sampler must be one of ..., got ..." at `level` as error's, counted from the caller
function M.checkSampler(s, what, level)
   local sampler = type(s) == 'function' and s or M.samplers[s == nil and 'shuffle' or s]
   if type(sampler) ~= 'function' then
      local known = {}
      for name in pairs(M.samplers) do known[#known + 1] = name end
      table.sort(known)
      error(('%s: sampler must be one of %s or a function(dataset) -> order, got %s'):format(what,
            table.concat(known, ', '), keys.show(s)), level + 1)
   end
   return sampler
end

function M.Loader(ds, opts)
   opts = opts or {}
   keys.check('Loader', opts, loader_options, 2)   -- batch_size = 2 was ignored: batches of 128
   M.checkDataset(ds, 'Loader(ds, opts)', 'ds', 2)
   -- C's int took a batch of 2.5 as 2 and 2^31 as a negative size; workers 2.5 ran 2 threads, 2^40 and NaN reached C
   -- as a prefetch depth of -2^31
   local batch = M.checkBatch(opts.batch or 128, 'Loader', 'batch', 2)
   -- (100 passed here and failed in C, at no line)
   if opts.prefetch ~= nil then keys.count(opts.prefetch, 'Loader', 'prefetch', 1, C.TS_LOADER_MAX_PREFETCH, 2) end
   local workers = keys.count(opts.workers or 1, 'Loader', 'workers', 1, C.TS_LOADER_MAX_WORKERS, 2)
   -- drop_last = 0 or 'no' is true in Lua, and dropped the last batch
   keys.flag(opts.drop_last, 'Loader', 'drop_last', 2)
   M.checkSettings(opts.augment, 'augment', 'Loader', 2)
   M.checkSettings(opts.preprocess, 'preprocess', 'Loader', 2)
   M.checkDevice(opts.device, 'Loader', 2)
   local self = setmetatable({ds = ds, batch = batch, drop_last = opts.drop_last or false}, Loader)
   self.sampler = M.checkSampler(opts.sampler, 'Loader', 2)
   self.augment, self.preprocess = opts.augment, opts.preprocess or M.preprocess()
   local flips = opts.flips
   if flips == nil and self.augment and (self.augment.settings.flip or 0) > 0 then flips = M.gtsrbFlips end
   self.flip_arr, self.flip_classes = flip_array(flips, math.max(ds:numClasses(), 43), 'Loader', 2)
   local l = C.ts_loader_new(ds.x._c, ds.y._c, self.augment and self.augment.c or nil, self.preprocess.c,
                             self.flip_arr, self.flip_classes, math.max(opts.prefetch or 3, workers + 1), workers,
                             T.deviceCode(opts.device or 'cpu'))
   if l == nil then fail() end
   self.c = ffi.gc(l, C.ts_loader_free)
   return self
end


-- A sampler's order as C indices, refused unless it is a sequence of whole numbers in 0 .. N-1: a table
-- with holes would otherwise deliver image 1 in their place, a fraction would be truncated.
local function order_array(order, n)
   if type(order) ~= 'table' then error('Loader: the sampler returned a ' .. type(order) .. ', not a table of indices', 3) end
   local count, last = 0, 0
   for k in pairs(order) do
      if type(k) ~= 'number' or k < 1 or k % 1 ~= 0 then
         error(('Loader: the sampler returned a table with the key %s; it must be a list {i1, i2, ...}'):format(tostring(k)), 3)
      end
      count, last = count + 1, math.max(last, k)
   end
   if count ~= last then
      local hole = 1
      while order[hole] ~= nil do hole = hole + 1 end
      error(('Loader: the sampler returned a list with holes (position %d of %d is nil)'):format(hole, last), 3)
   end
   local arr = ffi.new('int64_t[?]', math.max(count, 1))
   for i = 1, count do
      local v = order[i]
      if type(v) ~= 'number' or v % 1 ~= 0 or v < 0 or v >= n then
         error(('Loader: the sampler\'s position %d holds %s; indices are whole numbers 0 .. %d (0-based)'):format(
            i, tostring(v), n - 1), 3)
      end
      arr[i - 1] = v
   end
   return arr, count
end

-- Frees the loader now: its threads, its prefetched batches and, with device 'cuda', its buffers on the GPU,
-- instead of at a garbage collection that may come much later (an evaluation's loader, every epoch). A
-- batch already taken stays valid; the loader cannot start another epoch.
function Loader:close()
   if self.c ~= nil then C.ts_loader_free(ffi.gc(self.c, nil)) end
   self.c = nil
end

-- the number of images one epoch of this loader's sampler yields
function Loader:epochSize() return select(2, order_array(self.sampler(self.ds), self.ds:size())) end

-- iterator over the batches of one epoch; the order and the augmentation seed come from the global generator,
-- the augmentation's seed from `seed` when given. first (1-based, default 1): the batch to start at, for an
-- epoch resumed in its middle (the batches are the ones an epoch from its start would give, without building
-- those skipped)
-- One epoch at a time: starting another stops this one, whose iterator then refuses to go on (it went on with the
-- new epoch's batches, from wherever that one started).
function Loader:epoch(first, seed)
   if self.c == nil then error('Loader: closed; it cannot start another epoch', 2) end
   -- C's int took a first batch of 1.5 as 1, and NaN or 2^40 as -2^31
   if first ~= nil then keys.count(first, 'Loader:epoch(first, seed)', 'first (a batch)', 1, 2 ^ 31, 2) end
   M.checkSeed(seed, 'Loader:epoch(first, seed)', 2)
   local arr, count = order_array(self.sampler(self.ds), self.ds:size())
   -- a start past the batch after the last (an epoch resumed at its end: no batches) failed in C, at no line
   local batches = (self.drop_last and math.floor or math.ceil)(count / self.batch)
   if first and first > batches + 1 then
      error(('Loader:epoch(first, seed): first (a batch) is %d, past the end of this epoch of %d batches'):format(first,
            batches), 2)
   end
   self.epoch_images = count   -- this epoch's, which a custom sampler may change from epoch to epoch
   self.epochs_started = (self.epochs_started or 0) + 1
   local this_epoch = self.epochs_started
   check(C.ts_loader_start(self.c, arr, count, self.batch, self.drop_last and 1 or 0, seed or C.ts_rng_u64(),
                           (first or 1) - 1))
   self.batches = C.ts_loader_batches(self.c)
   local x, y = ffi.new('ts_tensor *[1]'), ffi.new('ts_tensor *[1]')
   return function()
      if self.c == nil then error('Loader: closed in the middle of its epoch', 2) end
      if self.epochs_started ~= this_epoch then
         error('Loader: this epoch was stopped by a later loader:epoch() (a loader runs one epoch at a time)', 2)
      end
      local rc = C.ts_loader_next(self.c, x, y)
      if rc < 0 then fail() end
      if rc == 0 then return nil end
      return T.wrap(x[0]), T.wrap(y[0])
   end
end

-- After the epoch's iterator raised an error (an out-of-memory, in a worker or while a batch was finished on the
-- GPU), the epoch goes on from the first batch it did not deliver, built again: the same images and draws, so a
-- training that releases memory and retries sees the batches an uninterrupted epoch would. Until then the
-- iterator raises the same error.
function Loader:retry()
   if self.c == nil then error('Loader: closed; there is no epoch to go on with', 2) end
   check(C.ts_loader_retry(self.c))
end

-- one batch of the given 1-based dataset positions, prepared now (no prefetch), e.g. for evaluation or pictures
local batch_options = {preprocess = 1, augment = 1, flips = 1, seed = 1}
function M.batch(ds, positions, opts)
   opts = opts or {}
   keys.check('ts.data.batch', opts, batch_options, 2)   -- preprocesss = ... was ignored: the images came unnormalized
   M.checkDataset(ds, 'ts.data.batch(ds, positions, opts)', 'ds', 2)
   M.checkSettings(opts.augment, 'augment', 'ts.data.batch', 2)
   M.checkSettings(opts.preprocess, 'preprocess', 'ts.data.batch', 2)
   M.checkSeed(opts.seed, 'ts.data.batch', 2)
   -- as Dataset:subset takes them (a hole made the rest image 1, a tensor an empty batch, a fraction another image)
   local n
   positions, n = M.checkPositions(positions, ds:size(), 'ts.data.batch', 2)
   local idx = ffi.new('int64_t[?]', math.max(n, 1))
   for i = 1, n do idx[i - 1] = positions[i] - 1 end
   local pre = opts.preprocess or M.preprocess()
   local ps = pre.c
   local oc = ps.grayscale == 1 and 1 or ds.x:size(4)
   local h = ps.out_h > 0 and ps.out_h or ds.x:size(2)
   local w = ps.out_w > 0 and ps.out_w or ds.x:size(3)
   local x, y = T.zeros(n, oc, h, w), T.zeros({n}, 'int64')
   local flips = opts.flips
   if flips == nil and opts.augment and (opts.augment.settings.flip or 0) > 0 then flips = M.gtsrbFlips end
   local farr, fc = flip_array(flips, math.max(ds:numClasses(), 43), 'ts.data.batch', 2)
   check(C.ts_batch_fill(x._c, y._c, ds.x._c, ds.y._c, idx, n, opts.augment and opts.augment.c or nil, ps, farr, fc,
                         opts.seed or C.ts_rng_u64()))
   return x, y
end

return M
