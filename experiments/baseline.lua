-- The custom CNN pushed as far as the CPU budget allows: ts.models.baseline (three conv stages with batch
-- norm) at widths 48, 96, 192 (1.44M parameters), label-aware augmentation, label smoothing, SGD with Nesterov
-- momentum and a cosine schedule with warmup (the recipe is ts.experiment.baseline, which validation fixed).
-- It trains on the training images and on the validation images but a held-out share of their tracks (held_out=0.1:
-- every tenth track, whole, Dataset:splitTracks; ts.data.join: about 10% more tracks, the largest gain measured,
-- ingredients.lua's trainval), with no validation: the model is the last epoch's, which validation's choice did not
-- beat (ingredients.lua's last). The test set is evaluated once at the end; the temperature (calibration.json, for
-- predict's --abstain) is fitted on the held-out tracks. tta=n evaluates both with n views of each image (the image
-- and n - 1 small shifts, turns and zooms, ts.evaluate's tta; predict then uses as many): not the default, since on
-- validation, the set that chooses, eight views cost the recipe 0.09-0.18 points (experiments/README, tta). Then the sign detector that lets scripts/predict.lua find
-- the sign in a photo where it is a small part of the scene (ts.detect.train), and the threshold below which the
-- search says "no sign" (ts.detect.fitRun, on scenes of the held-out tracks; experiments/scenes.lua measures both).
-- trainval=false trains the recipe on the training images alone and chooses its epoch on validation; held_out=0
-- trains on every validation image and leaves the run without a temperature or a threshold (predict then uses the
-- softmax as it is and the threshold 0.5, and says so).
--   tshost experiments/baseline.lua [epochs=24] [lr=0.05] [batch=128] [run=runs/baseline] [synthetic=false]
--                                  [detector=true] [detector_scenes=3000] [fit_scenes=150] [trainval=true]
--                                  [held_out=0.1] [tta=1] [clean=0] [convs=2] [stn=false] [shadow=0]
-- clean=k: the last k epochs train on the images without augmentation (ts.train's clean_epochs; an experiment, not
-- the default). convs=n: n convolutions in every stage instead of two; stn=true: a spatial transformer in front
-- (ts.models.baseline's convs and stn; other networks for an ensemble's members, ensemble.lua). shadow=p: cast shadows
-- on a share p of the training images (ts.data.augment's shadow, darkest gain 0.3, as ingredients.lua's shadow)
local opt = ts.experiment.options({epochs = 24, lr = 0.05, batch = 128, run = 'runs/baseline', label_smoothing = 0.1,
                                   weight_decay = 5e-4, warmup = 1, detector = true, detector_scenes = 3000,
                                   fit_scenes = 150, trainval = true, held_out = 0.1, tta = 1, clean = 0,
                                   convs = 2, stn = false, shadow = 0},
                                  {epochs = {1}, batch = {1}, detector_scenes = {1}, fit_scenes = {1}, clean = {0},
                                   convs = {1, 64}})
if opt.clean > opt.epochs then
   error(('baseline.lua: clean=%d is more than epochs=%d'):format(opt.clean, opt.epochs), 0)
end
if type(opt.held_out) ~= 'number' or not (opt.held_out >= 0 and opt.held_out < 1) then
   error(('baseline.lua: held_out must be a share of the validation tracks from 0 to below 1, got %s'):format(
         tostring(opt.held_out)), 0)
end
require('ts.keys').probability(opt.shadow, 'baseline.lua', 'option shadow', 0)   -- (refused after the data was made)
-- checked before the training, not after it
require('ts.train').checkViews(opt.tta, 'baseline.lua', 'tta', 0)
local g = ts.experiment.dataset(opt)

local mean, std = g.train:channelStats()
local cfg = ts.experiment.baseline(opt)
if opt.shadow ~= 0 then
   cfg.augment = ts.data.augment(ts.experiment.with(ts.experiment.baselineAugment, {shadow = {opt.shadow, 0.3}}))
end
cfg.model.convs = opt.convs ~= 2 and {opt.convs, opt.convs, opt.convs} or nil
cfg.model.stn = opt.stn or nil
-- the network in the run's note, so that compare.lua and ensemble.lua tell the members apart
local network = ('baseline custom CNN%s%s%s'):format(opt.convs ~= 2 and (', %d convolutions a stage'):format(opt.convs) or '',
                                                     opt.stn and ', spatial transformer' or '',
                                                     opt.shadow ~= 0 and (', shadows %g'):format(opt.shadow) or '')
local held   -- {set, record}: the validation tracks a trainval run keeps out of its training
local kept   -- the validation tracks it trains on
if opt.trainval then
   kept = g.valid
   if opt.held_out ~= 0 then
      local ok, set, record
      ok, kept, set, record = pcall(g.valid.splitTracks, g.valid, {share = opt.held_out})
      if not ok then   -- too few tracks for that share
         error(('baseline.lua: held_out=%g: %s (give a larger held_out, held_out=0 or trainval=false)'):format(
               opt.held_out, tostring(kept):gsub('^splitTracks: ', '')), 0)
      end
      held = {set = set, record = record}
   end
   cfg.data = {train = ts.data.join({g.train, kept}, 'train+valid')}
else
   cfg.data = {train = g.train, valid = g.valid}
end
cfg.seed, cfg.run, cfg.quiet, cfg.clean_epochs = opt.seed, opt.run, opt.quiet, opt.clean
cfg.preprocess = ts.data.preprocess{mean = mean, std = std}
cfg.note = 'custom CNN (baseline): augmentation, label smoothing, SGD+Nesterov, cosine'
local result = ts.train(cfg)
local no_calibration = opt.trainval and not held and 'every validation image was part of the training' or nil
ts.experiment.finish(result, g, {note = network, quiet = opt.quiet, held_out = held,
                                 no_calibration = no_calibration, tta = opt.tta})

-- the sign detector predict.lua searches photos with (runs/baseline/detector; detector=false leaves it out)
if opt.detector ~= false then
   -- validated on scenes of the kept tracks: the held-out ones, where its threshold is fitted, choose nothing before
   local det = ts.detect.train(g, {run = opt.run .. '/detector', scenes = opt.detector_scenes, seed = opt.seed,
                                   quiet = opt.quiet, valid = held and kept or nil})
   print(('sign detector: validation accuracy %.2f%% (sign or no sign, windows of generated scenes), %.0f s'):format(
      100 * det.best.accuracy, det.train_seconds))
   if no_calibration then   -- (and no search.json of an earlier run in this folder left to speak for this one)
      os.remove(opt.run .. '/search.json')
      print(('sign detector: no threshold fitted (%s)'):format(no_calibration))
   else print(ts.detect.describeFit(opt.run, ts.detect.fitRun(opt.run, g, {scenes = opt.fit_scenes}))) end
end
