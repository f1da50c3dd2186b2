-- tshost scripts/calibrate.lua RUN_DIR [tta=run] [data=DIR] [synthetic_train=N]
-- Fits the temperature of a finished run on the validation images it did not train on (all of them, or the share
-- of their tracks a trainval run held out; temperature scaling: runs that finish do this themselves) and writes
-- RUN_DIR/calibration.json, which predict.lua uses; tta=n fits it for predictions averaged over n views (predict
-- then uses n views), tta=run (the default) for as many as the run's test evaluation had (final.json's tta: 8 for
-- baseline.lua tta=8, 1 for runs without it). Prints the NLL and expected calibration error before and after on those
-- images. The test set is not touched.
local run = ts.experiment.runArgument('RUN_DIR [tta=run] [data=DIR] [synthetic_train=N]')
local opt = ts.experiment.options{tta = 'run'}   -- and the data options of the experiment that made the run
local final = ts.json.readFile(run .. '/final.json') or {}
-- (its default a string, tta=3 came as the string '3', which evaluate refused after the data was made)
local check = require('ts.train').checkViews
local views = opt.tta == 'run' and check(final.tta or 1, run .. '/final.json', 'tta', 0) or
              check(tonumber(opt.tta) or opt.tta, 'calibrate.lua', 'tta', 0)
local model, config = ts.models.load(run)
local g = ts.experiment.runData(run, final, opt)
local unseen = ts.experiment.heldOut(run, final, g, 'a temperature')   -- a trainval run: the tracks it held out
local cal, unfit = ts.experiment.calibrate(model, {valid = unseen}, ts.data.preprocess(config.preprocess), nil, views)
if not cal then error(('%s: no temperature fitted: %s'):format(run, unfit), 0) end
ts.files.writeFile(run .. '/calibration.json', ts.json.encode(cal))
print(('%s: temperature %.3f (%d view%s, %d validation images); NLL %.4f -> %.4f, ECE %.4f -> %.4f; wrote %s/calibration.json'):format(
   run, cal.temperature, cal.tta, cal.tta > 1 and 's' or '', cal.valid_images, cal.valid.before.nll, cal.valid.after.nll, cal.valid.before.ece, cal.valid.after.ece, run))
