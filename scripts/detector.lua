-- tshost scripts/detector.lua RUN_DIR [scenes=3000] [epochs=6] [data=DIR] [synthetic_train=N] [fit_scenes=150]
--                             [fit_only=false]
-- Trains the sign detector scripts/predict.lua searches photos with (ts.detect.train: a small network that
-- tells a window holding a sign, framed as the GTSRB crops are, from one that does not, learned from
-- generated street scenes of the run's training crops) and saves it in RUN_DIR/detector, replacing one
-- that is there. Prints its validation accuracy (windows of scenes made from the validation crops). Then it
-- fits the "no sign" threshold predict uses (ts.detect.fitRun: searches of fit_scenes scenes of the validation
-- images the run did not train on, with a sign, and half as many without) into RUN_DIR/search.json; fit_only=true fits it for the detector
-- that is there without training a new one.
local run = ts.experiment.runArgument('RUN_DIR [scenes=3000] [epochs=6] [data=DIR] [synthetic_train=N] [fit_scenes=150] [fit_only=false]')
-- (and the data options of the run's experiment); the counts checked before anything is made or removed: an inf
-- scene count generated scenes until memory ran out
local opt = ts.experiment.options({scenes = 3000, epochs = 6, fit_scenes = 150, fit_only = false},
                                  {scenes = {10, 1e6}, epochs = {1, 1000}, fit_scenes = {2, 1e5}})
if not ts.files.exists(run .. '/model.safetensors') then
   io.stderr:write(('detector: %s has no model.safetensors (is it a finished run?)\n'):format(run))
   os.exit(1)
end
-- the classifier and its calibration the fit reads, loaded before the detector's minutes of training and before the
-- one there is replaced: damaged weights or a config.json that builds no model failed only at the fit, after both
ts.models.load(run)
ts.experiment.readCalibration(run)
local final = ts.json.readFile(run .. '/final.json') or {}
local g = ts.experiment.runData(run, final, opt)
-- refused before the detector's minutes of training; a trainval run's detector validates on the tracks it kept
local _, _, kept = ts.experiment.heldOut(run, final, g, 'the "no sign" threshold')
if opt.fit_only ~= true then
   os.remove(run .. '/detector/checkpoint.safetensors')   -- a new detector, not the old one resumed
   local result = ts.detect.train(g, {run = run .. '/detector', scenes = opt.scenes, epochs = opt.epochs, seed = opt.seed,
                                      quiet = opt.quiet, valid = kept})
   print(('%s/detector: validation accuracy %.2f%% (sign or no sign, %d scenes, %d epochs, %.0f s)'):format(
      run, 100 * result.best.accuracy, opt.scenes, opt.epochs, result.train_seconds or 0))
elseif not ts.files.exists(run .. '/detector/model.safetensors') then
   io.stderr:write(('detector: fit_only=true, but %s has no detector/model.safetensors\n'):format(run))
   os.exit(1)
end
print(ts.detect.describeFit(run, ts.detect.fitRun(run, g, {scenes = opt.fit_scenes})))
