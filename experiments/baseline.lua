-- The custom CNN pushed as far as the CPU budget allows: ts.models.baseline (three conv stages with batch
-- norm) at widths 48, 96, 192 (1.44M parameters), label-aware augmentation, label smoothing, SGD with Nesterov momentum and a
-- cosine schedule with warmup (the recipe is ts.experiment.baseline). The model is chosen on validation;
-- the test set is evaluated once at the end. Then the sign detector that lets scripts/predict.lua find the
-- sign in a photo where it is a small part of the scene (ts.detect.train), and the threshold below which
-- the search says "no sign" (ts.detect.fitRun, on validation scenes; experiments/scenes.lua measures both).
-- trainval=true trains on the training and validation images together (ts.data.join: about 12% more tracks), with
-- no validation: the model is the last epoch's (which validation's choice did not beat, ingredients.lua's last), and
-- nothing held out is left for the temperature or the detector's threshold: the run has neither (predict then
-- uses the softmax as it is and the threshold 0.5, and says so). ingredients.lua's trainval measures what it buys.
--   tshost experiments/baseline.lua [epochs=24] [lr=0.05] [batch=128] [run=runs/baseline] [synthetic=false]
--                                  [detector=true] [detector_scenes=3000] [fit_scenes=150] [trainval=false]
local opt = ts.experiment.options{epochs = 24, lr = 0.05, batch = 128, run = 'runs/baseline', label_smoothing = 0.1,
                                  weight_decay = 5e-4, warmup = 1, detector = true, detector_scenes = 3000,
                                  fit_scenes = 150, trainval = false}
local g = ts.experiment.dataset(opt)

local mean, std = g.train:channelStats()
local cfg = ts.experiment.baseline(opt)
cfg.data = opt.trainval and {train = ts.data.join({g.train, g.valid}, 'train+valid')} or {train = g.train, valid = g.valid}
cfg.seed, cfg.run, cfg.quiet = opt.seed, opt.run, opt.quiet
cfg.preprocess = ts.data.preprocess{mean = mean, std = std}
cfg.note = 'custom CNN (baseline): augmentation, label smoothing, SGD+Nesterov, cosine'
local result = ts.train(cfg)
local held_out = opt.trainval and 'the validation images were part of the training' or nil
ts.experiment.finish(result, g, {note = 'baseline custom CNN', quiet = opt.quiet, no_calibration = held_out})

-- the sign detector predict.lua searches photos with (runs/baseline/detector; detector=false leaves it out)
if opt.detector ~= false then
   local det = ts.detect.train(g, {run = opt.run .. '/detector', scenes = opt.detector_scenes, seed = opt.seed,
                                   quiet = opt.quiet})
   print(('sign detector: validation accuracy %.2f%% (sign or no sign, windows of generated scenes), %.0f s'):format(
      100 * det.best.accuracy, det.train_seconds))
   if held_out then print(('sign detector: no threshold fitted (%s)'):format(held_out))
   else print(ts.detect.describeFit(opt.run, ts.detect.fitRun(opt.run, g, {scenes = opt.fit_scenes}))) end
end
