-- Ingredients of the main recipe, each measured against the recipe without it: the baseline recipe
-- (ts.experiment.baseline) trained per seed with and without the ingredient, each model's test set evaluated
-- once, McNemar's test on the first seed and the seed-to-seed spread (ts.experiment.compare). Runs that
-- finished are reused (a second call with more ingredients trains only the new ones).
-- The runs go to runs/recipe, with those of experiments/exposure.lua (the baseline's are shared).
--   tshost experiments/ingredients.lua [what=ema,tta] [epochs=24] [seeds=1] [teachers=3] [run=runs/recipe]
-- what: a comma-separated list of
--   ema   the exponential moving average of the weights (decay 0.999) is validated, chosen and tested
--   clahe contrast-limited adaptive histogram equalization of every image before the network (in training,
--         after the augmentation, and in evaluation); experiments/illumination.lua compares it at a short budget
--   stn   a spatial transformer in front of the network (ts.models.localization: it learns an affine warp of
--         each image, a crop, zoom or turn, before the baseline sees it)
--   multiscale  the first stage's features fed to the classifier too (ts.models.refcnn's multiscale, as
--         Sermanet & LeCun's multi-scale network: 197k more weights at the recipe's widths)
--   narrow  the recipe's network at ts.models.baseline's default widths (32, 64, 128 channels: 823,051
--         parameters against 1,443,195; the recipe's 1.5 times wider network costs about 2.3 times the
--         multiply-adds and is in the recipe since it gained 0.38 points on test)
--   wider  the recipe's network at widths 56, 112, 224 (1,806,835 parameters, within the 2M budget of a single
--         network; about 1.36 times the recipe's multiply-adds)
--   deep  three convolutions in every stage instead of two (ts.models.refcnn's convs = {3, 3, 3}: 1,879,323
--         parameters, within the 2M budget of a single network; about 1.73 times the recipe's multiply-adds,
--         151M against 87M an image): wider layers (wider) bought nothing at 32x32, so the question is whether
--         depth, which widens every unit's receptive field, does
--   bf16  the recipe in bf16 mixed precision (ts.train's precision: the convolutions' and linear layers' operands
--         rounded to bfloat16, their products summed in fp32; AMX tiles or vdpbf16ps where the processor has
--         them, the fp32 kernels elsewhere): the accuracy it costs at the full budget, and the time it saves
--   nofade  the recipe WITHOUT its faded red paint (ts.data.augment's fade, probability 0.3, up to all of
--         it: a red rim paled toward white, the symbol kept; in the recipe since it cured the sun-bleached
--         double curves on three seeds)
--   distill  knowledge distillation (ts.train's distill): the baseline's first `teachers` seeds, an ensemble,
--         see every training batch of the student, whose loss is half the recipe's and half the divergence
--         from the teachers' mean probabilities (temperature 1); the teachers are trained first when missing
--   last  the weights the cosine schedule ends on (the run's checkpoint of its last epoch) instead of those
--         of the epoch with the best validation accuracy: no choice by validation at all, which at the
--         recipe's level tells models apart by a handful of its 4,410 images; no training of its own, the
--         baseline's runs are evaluated so
--   sqrt  square-root sampling (ts.data.samplers.sqrt): each epoch as many images as the training set, a class's
--         share proportional to the square root of its count, so that the rare classes whose test images
--         the recipe gets wrong most often (27 pedestrians, 42 end of no passing by lorries: 210 images each
--         against up to 2,010) are seen about twice as often and the commonest about 0.7 times
--   mix   MixUp and CutMix (ts.train's mix: half the batches mixed with themselves in reverse order, by MixUp
--         with lam ~ Beta(0.2, 0.2) or CutMix with a box of 1 - lam ~ Beta(1, 1) of the image, each half the
--         time; the loss mixed alike), a regularizer of the labels as well as of the images
--   shadow  cast shadows in training (ts.data.augment's shadow, probability 0.3, gain down to 0.3: a band at a
--         random angle and place, a pole's width to most of the image, darkened with soft edges), since the
--         recipe's commonest test mistakes (27 pedestrians read as 11, 42 as 6 or 41) carry shadows of poles
--         and branches across the sign
--   fine  the last stage's 8x8 maps kept for the classifier instead of max-pooled to 4x4, brought to 48 channels
--         by a 1x1 convolution so that the classifier's first Linear keeps its 3,072 inputs (ts.models.baseline's
--         fine; 9,312 more parameters): the recipe's commonest mistakes (60 read as 80 km/h, the "end of" signs
--         read as one another) differ in details a few pixels wide, which the last pooling blurs
--   gap   the last stage's 8x8 maps averaged over all places (global average pooling) for the classifier instead of
--         max-pooled to 4x4 and flattened (ts.models.baseline's gap; 192 inputs to the first Linear instead of
--         3,072, 737,280 fewer parameters): fine, with more places, learnt where details lie in the training
--         tracks and lost 0.65 points, so the recipe's 16 places may cost too
--   nocutout  the recipe WITHOUT its cutout (ts.data.augment's cutout, probability 0.25, an 8-pixel square of the image
--         blanked): MixUp and CutMix (mix) made 60 km/h read as 80 four times as often, as a box can hide the one
--         stroke that tells them apart, and cutout's box is as large as a digit's half
--   precisebn  the batch norms' running statistics recomputed with the chosen weights over the training images as
--         they are (ts.updateBatchNorm): the training leaves a moving average over augmented batches taken while
--         the weights still moved, and the test images are not augmented; no training of its own
--   average  one network whose weights are the mean of the best validation epoch's and the last epoch's (the run's
--         checkpoint), its batch norms' statistics recomputed for them as precisebn does: two points of one
--         trajectory averaged, as stochastic weight averaging does with many; no training of its own
--   swa   stochastic weight averaging (ts.train's swa): the mean of the weights the last quarter of the epochs end on
--         (epochs 19-24 of 24, as PyTorch's examples start at 75%), the schedule left as it is, then
--         batch norm statistics of its own; the training's path is the baseline's, so the same run's model.safetensors
--         is the baseline's choice (ts.models.load(run) against ts.models.load(run, {weights = 'swa'}))
--   swalr  stochastic weight averaging as Izmailov et al. run it: the same average, but from epoch 19 the rate moves
--         (a cosine over one epoch) to 0.01 and stays there instead of going on down to 0 (ts.train's swa.lr, PyTorch's
--         SWALR), so that the averaged epochs end at different points around the minimum
--   blur  a stronger Gaussian blur in training (ts.data.augment's blur at probability 0.3 and sigma up to 1.5, against
--         the recipe's 0.15 and 1.0): the one mistake every seed makes most, 60 km/h read as 80, is a blurred,
--         blue-tinted test track (its eight images wrong for four or five of five models) whose digits a
--         sharper training set does not prepare for
--   trainval  the recipe trained on the training and validation images together (ts.data.join: 39,209 images of
--         about 1,340 tracks instead of 34,799 of about 1,190), with no validation: the model is the last epoch's,
--         which `last` found as good as validation's choice, and the run has no calibration (its validation images
--         were trained on). Validation fixed the recipe; this asks whether 11% more tracks buy what the recipe's
--         own variations did not
--   tta   test-time augmentation: 8 views of each test image, their probabilities averaged; no training of
--         its own, the baseline's models are evaluated so (the number of views is fixed here, not chosen
--         on the test set)
local opt = ts.experiment.options({epochs = 24, run = 'runs/recipe', what = 'ema,tta', teachers = 3},
                                  {epochs = {1}, teachers = {1, 16}})
local g   -- the data, made once what= is checked (after the ingredients below: what=foo failed after GTSRB was read)
local recipe = {recipe = ts.experiment.baseline}
for k, v in pairs(opt) do recipe[k] = v end

local TTA_VIEWS = 8
local WIDER = {56, 112, 224}
local DEEP = {3, 3, 3}   -- convolutions per stage
local FINE = 48   -- the channels the last stage's 8x8 maps are brought to: 64 x 48 = 3,072 inputs, as the recipe's
local DISTILL = {weight = 0.5, temperature = 1}
local SHADOW = {0.3, 0.3}   -- probability, darkest gain
local BLUR = {0.3, 1.5}   -- probability, largest sigma
local MIX = {mixup = 0.2, cutmix = 1, prob = 0.5, switch = 0.5}
local swa_start = opt.epochs - math.ceil(opt.epochs / 4) + 1   -- the last quarter of the epochs averaged
local SWA_LR = 0.01   -- swalr's held rate: a little above the cosine's 0.008 where averaging starts (epoch 19 of 24)
-- The baseline's runs, each model loaded with `load` (ts.models.load's options), then given to `prepare` (when
-- given: prepare(model, preprocess, run directory)), and its test set evaluated with `tta` views (nil: the image
-- alone): an ingredient that changes how a trained model is used, not its training
local function reevaluate(base, name, load, tta, prepare)
   local out = {name = name, runs = {}, evals = {}}
   for k, final in ipairs(base.runs) do
      local model, config = ts.models.load(base.dirs[k], load)
      local pre = ts.data.preprocess(config.preprocess)
      if prepare then prepare(model, pre, base.dirs[k]) end
      local ev = ts.evaluate(model, g.test, {preprocess = pre, tta = tta})
      ev.target_y = g.test.y
      out.evals[k] = ev
      out.runs[k] = {test_accuracy = ev.accuracy, test_macro_f1 = ev.summary.macro.f1, train_seconds = final.train_seconds}
   end
   return ts.experiment.settle(out)
end
-- the batch norms' statistics recomputed over the training images as they are (precisebn, and after average)
local function precise_bn(model, pre) ts.updateBatchNorm(model, g.train, {preprocess = pre}) end

-- a variant that is the recipe without one of its parts: the conclusion reads its verdict the other way round
local function removal(variant, part)
   variant.removes = part
   return variant
end

local ingredients = {
   ema = function(base)
      return ts.experiment.variant(g, 'baseline+ema', {ema = 0.999}, recipe)
   end,
   clahe = function(base)
      local mean, std = g.train:channelStats()
      return ts.experiment.variant(g, 'baseline+clahe',
                                   {preprocess = ts.data.preprocess{equalize = 'clahe', mean = mean, std = std}}, recipe)
   end,
   stn = function(base)
      return ts.experiment.variant(g, 'baseline+stn', {model = {name = 'baseline', classes = 43, stn = true,
                                   widths = ts.experiment.baselineWidths}}, recipe)
   end,
   multiscale = function(base)
      return ts.experiment.variant(g, 'baseline+multiscale', {model = {name = 'baseline', classes = 43, multiscale = true,
                                   widths = ts.experiment.baselineWidths}}, recipe)
   end,
   narrow = function(base)
      return removal(ts.experiment.variant(g, 'baseline-narrow', {model = {name = 'baseline', classes = 43}}, recipe),
                     'the 1.5x width')
   end,
   wider = function(base)
      return ts.experiment.variant(g, 'baseline-wider', {model = {name = 'baseline', classes = 43, widths = WIDER}}, recipe)
   end,
   deep = function(base)
      return ts.experiment.variant(g, 'baseline-deep', {model = {name = 'baseline', classes = 43,
                                   widths = ts.experiment.baselineWidths, convs = DEEP}}, recipe)
   end,
   fine = function(base)
      return ts.experiment.variant(g, 'baseline+fine', {model = {name = 'baseline', classes = 43, widths = ts.experiment.baselineWidths,
                                   fine = FINE}}, recipe)
   end,
   gap = function(base)
      return ts.experiment.variant(g, 'baseline+gap', {model = {name = 'baseline', classes = 43, widths = ts.experiment.baselineWidths,
                                   gap = true}}, recipe)
   end,
   bf16 = function(base)
      return ts.experiment.variant(g, 'baseline+bf16', {precision = 'bf16'}, recipe)
   end,
   sqrt = function(base)
      return ts.experiment.variant(g, 'baseline+sqrt', {sampler = 'sqrt'}, recipe)
   end,
   mix = function(base)
      return ts.experiment.variant(g, 'baseline+mix', {mix = ts.data.mix(MIX)}, recipe)
   end,
   shadow = function(base)
      local aug = ts.experiment.with(ts.experiment.baselineAugment, {shadow = SHADOW})
      return ts.experiment.variant(g, 'baseline+shadow', {augment = ts.data.augment(aug)}, recipe)
   end,
   blur = function(base)
      local aug = ts.experiment.with(ts.experiment.baselineAugment, {blur = BLUR})
      return ts.experiment.variant(g, 'baseline+blur', {augment = ts.data.augment(aug)}, recipe)
   end,
   nocutout = function(base)
      local aug = ts.experiment.with(ts.experiment.baselineAugment, {}, {'cutout'})
      return removal(ts.experiment.variant(g, 'baseline-nocutout', {augment = ts.data.augment(aug)}, recipe), 'cutout')
   end,
   nofade = function(base)
      local aug = ts.experiment.with(ts.experiment.baselineAugment, {}, {'fade'})
      return removal(ts.experiment.variant(g, 'baseline-nofade', {augment = ts.data.augment(aug)}, recipe), 'faded red paint')
   end,
   distill = function(base)
      local teaching = {}
      for k, v in pairs(recipe) do teaching[k] = v end
      teaching.seeds = opt.teachers
      local teachers = ts.experiment.variant(g, 'baseline', {}, teaching).dirs
      return ts.experiment.variant(g, ('baseline+distill%d'):format(#teachers), {distill = {teachers = teachers,
                                   weight = DISTILL.weight, temperature = DISTILL.temperature}}, recipe)
   end,
   trainval = function(base)
      return ts.experiment.variant(g, 'baseline+trainval', {train = ts.data.join({g.train, g.valid}, 'train+valid'),
                                   valid = false}, recipe)
   end,
   tta = function(base)
      return reevaluate(base, ('baseline+tta%d'):format(TTA_VIEWS), {}, TTA_VIEWS)
   end,
   last = function(base)
      return reevaluate(base, 'baseline@last', {weights = 'last'})
   end,
   average = function(base)
      return reevaluate(base, 'baseline+average', {}, nil, function(model, pre, dir)
         local last = {}
         for _, pair in ipairs(ts.models.load(dir, {weights = 'last'}):stateDict()) do last[pair[1]] = pair[2] end
         for _, pair in ipairs(model:stateDict()) do
            if pair[2]:dtype() == 'float32' then pair[2]:add_(last[pair[1]]):mul_(0.5) end
         end
         precise_bn(model, pre)
      end)
   end,
   swa = function(base)
      return ts.experiment.variant(g, 'baseline+swa', {swa = {start = swa_start}}, recipe)
   end,
   swalr = function(base)
      return ts.experiment.variant(g, 'baseline+swalr', {swa = {start = swa_start, lr = SWA_LR, anneal = 1}}, recipe)
   end,
   precisebn = function(base)
      return reevaluate(base, 'baseline+precisebn', {}, nil, precise_bn)
   end,
}

local known = {}
for name in pairs(ingredients) do known[#known + 1] = name end
table.sort(known)
local chosen = ts.experiment.choices(opt.what, 'what', known)   -- (each once: what=ema,ema compared one run twice)
g = ts.experiment.dataset(opt)

local base = ts.experiment.variant(g, 'baseline', {}, recipe)
local variants = {base}
for _, name in ipairs(chosen) do variants[#variants + 1] = ingredients[name](base) end
local verdicts = ts.experiment.compare(variants, ('ingredients of the baseline recipe (%d epochs, %d seed(s))'):format(
   opt.epochs, opt.seeds))
-- an addition gains when it is better; a removal (the recipe without one of its parts) says that part pays when the
-- recipe without it is worse
local said = {add = {}, hurts = {}, keep = {}, drop = {}}
for k = 2, #variants do
   local variant = variants[k]
   local v = verdicts[variant.name]
   if v.significant then
      local part = variant.removes
      local list = part and (v.diff < 0 and said.keep or said.drop) or (v.diff > 0 and said.add or said.hurts)
      list[#list + 1] = part or variant.name
   end
end
local parts = {}
for _, p in ipairs({{said.add, 'worth adding: '}, {said.hurts, 'hurts: '}, {said.keep, 'the recipe\'s own parts that pay: '},
                    {said.drop, 'the recipe\'s own parts worth dropping: '}}) do
   if #p[1] > 0 then parts[#parts + 1] = p[2] .. table.concat(p[1], ', ') end
end
print(('conclusion: %s'):format(#parts > 0 and table.concat(parts, '; ')
                                or 'no ingredient changes the test accuracy significantly (McNemar and the seed spread)'))
