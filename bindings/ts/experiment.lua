-- ts.experiment: what every experiment script shares: the data it runs on, and the end of a run
-- (test evaluation, final.json, the predictions a report needs, the printed summary).
local data = require('ts.data')
local metrics = require('ts.metrics')
local json = require('ts.json')
local train = require('ts.train')
local files = require('ts.files')
local serialize = require('ts.serialize')
local keys = require('ts.keys')

local M = {}

-- ts.options with the keys every experiment shares: data (the GTSRB folder), synthetic (use the generated
-- signs), synthetic_train (their training-set size), seed, seeds (runs per variant), quiet. Checked before anything
-- runs, the errors naming the script and the option: the shared whole numbers (SHARED_COUNTS), the script's own
-- (`counts`, {name = {lo [, hi]}}), and the folder options run and out, which must name a folder (run= wrote every
-- variant's run at the root of the file system, out= its images). Unchecked, seeds=0 failed in a traceback after the
-- data was made and seeds=1.5 ran one seed; epochs=0 or images=-1 failed in the library after minutes of work.
-- Every argument must be a key=value (ts.options' strict): a bare word (mispredict.lua runs/x, meant as
-- run=runs/x) was dropped and the script ran on its default run; a script that takes a run directory first takes
-- it out of arg before (M.runArgument).
local SHARED_COUNTS = {seeds = {1}, synthetic_train = {1, 1e7}, seed = {0, 2 ^ 31}}   -- (ts.data.synthetic's bounds)
function M.options(defaults, counts)
   local script = arg and arg[0] or 'ts.experiment.options'
   local all = {data = '', synthetic = false, synthetic_train = 6000, seed = 1, seeds = 1, quiet = false}
   for k, v in pairs(defaults) do all[k] = v end
   local opt = require('ts').options(all, keys.example(defaults))   -- (an example of the script's own options)
   for _, set in ipairs({SHARED_COUNTS, counts or {}}) do
      for name, range in pairs(set) do keys.count(opt[name], script, 'option ' .. name, range[1], range[2], 0) end
   end
   for _, name in ipairs({'run', 'out'}) do
      local dir = type(defaults[name]) == 'string' and opt[name]
      if dir == '' then error(('%s: option %s= is empty: give a folder'):format(script, name), 0) end
      if dir and files.exists(dir) and not files.isDir(dir) then
         error(('%s: option %s=%s is a file, not a folder'):format(script, name, dir), 0)
      end
   end
   return opt
end

-- The run directory a hand-run script takes first (`tshost scripts/calibrate.lua RUN_DIR [key=value ...]`), taken
-- out of arg so that M.options sees the options alone (a path with = in it, runs/lr=0.1, as run= names one, is no
-- malformed option there). No run, an empty word (read as the folder ""), a flag, or an option where the run belongs
-- (`detector.lua fit_only=true runs/x`, which took the option for the run) print the usage and exit 2. usage: the
-- arguments after the script's name, for the usage line.
function M.runArgument(usage)
   local script = (arg and arg[0] or 'script'):match('[^/]*$')
   local run = arg and arg[1]
   local option_first = run and run:match('^[%w_%.]+=') ~= nil
   if not run or run == '' or run:sub(1, 1) == '-' or option_first then
      if option_first then
         io.stderr:write(('%s: %s is an option: the run comes first (a folder of that name: ./%s)\n'):format(script, run, run))
      end
      io.stderr:write(('usage: tshost scripts/%s %s\n'):format(script, usage))
      os.exit(2)
   end
   table.remove(arg, 1)
   return run
end

-- The names of a comma-separated option (what=down,stages, models=resnet20,resnet8), in order: each one of `known`
-- (a list) and given once, at least one; else an error naming the script, the option and the known names. An
-- unknown name was dropped without a word (pooling.lua what=pools ran nothing) or failed after the runs before it.
function M.choices(value, name, known)
   local script, allowed, out, seen = arg and arg[0] or 'ts.experiment.choices', {}, {}, {}
   for _, k in ipairs(known) do allowed[k] = true end
   for x in (value .. ','):gmatch('%s*([^,]-)%s*,') do
      if not allowed[x] or seen[x] then
         local why = seen[x] and x .. ' given twice' or x == '' and 'an empty name' or 'unknown name ' .. x
         error(('%s: option %s=%s: %s (known: %s)'):format(script, name, value, why, table.concat(known, ', ')), 0)
      end
      out[#out + 1], seen[x] = x, true
   end
   return out
end

-- The real GTSRB when it can be found (opt.data, TSHOST_DATA, data/), else the generated stand-in,
-- saying which. opt.synthetic = true forces the generated data (opt.synthetic_train images, opt.seed);
-- a table, as a run's final.json records it (ts.data.synthetic's settings), makes exactly those images.
function M.dataset(opt)
   local given = (opt.data and opt.data ~= '') and opt.data or nil
   local dir, how = data.gtsrbFolder(given)
   if type(opt.synthetic) == 'table' then
      -- settings a damaged record gives (train 1e12, seed "x") are named with it, not a traceback into this file
      local ok, g = pcall(data.synthetic, opt.synthetic)
      if not ok then
         error(('%s: synthetic: %s'):format(opt.record or 'the run\'s record', tostring(g):gsub('^[^:]*:%d+: ', '')), 0)
      end
      print(('data: generated traffic signs as the run had them (%d train, %d valid, %d test, seed %d)'):format(
         g.train:size(), g.valid:size(), g.test:size(), g.synthetic.seed))
      return g
   end
   if not opt.synthetic then
      local ok, g = pcall(data.gtsrb, given)
      if ok then
         print(('data: GTSRB from %s (%d train, %d valid, %d test)'):format(dir, g.train:size(), g.valid:size(), g.test:size()))
         return g
      end
      -- a folder the user named (data= or TSHOST_DATA) that does not hold GTSRB is an error: the experiment ran on
      -- generated signs after one printed line, its numbers read as GTSRB's. Only the default data/ falls back
      local why = tostring(g):gsub('^[^:]*:%d+: ', '')
      if how ~= 'default' then
         error(('%s=%s: %s (or synthetic=true: generated signs)'):format(how == 'argument' and 'data' or how, dir, why), 0)
      end
      -- its first sentence ("train.pickle not found in data ...": cut at the first dot, it said "GTSRB: train")
      print('data: GTSRB not found (' .. (why:match('^(.-)%.%s') or why) .. '); using the generated traffic signs instead')
   end
   local n = opt.synthetic_train or 6000
   local g = data.synthetic{train = n, valid = math.ceil(n / 6), test = math.ceil(n / 3), seed = opt.seed or 1}
   print(('data: generated traffic signs (%d train, %d valid, %d test)'):format(g.train:size(), g.valid:size(), g.test:size()))
   return g
end

-- The data a finished run was trained and tested on, for the scripts that study it (mispredict, layers, units,
-- scenes, report, ensemble, calibrate, detector): its generated signs made again from final.json, or GTSRB from
-- opt.data / TSHOST_DATA, checked against the run by M.checkRunData.
function M.runData(run, final, opt)
   -- before any data is made: without its final.json a run cannot say what it was trained on
   if type(final) ~= 'table' or next(final) == nil then
      error(('%s/final.json is missing or empty: is %s a finished run?'):format(run, run), 0)
   end
   -- a record of another shape ([1], {"foo": 1}) was read as a GTSRB run's, and refused as trained on other data
   if type(final.test_accuracy) ~= 'number' then
      error(('%s/final.json is no run\'s record (it has no test_accuracy): is %s a finished run?'):format(run, run), 0)
   end
   local g = M.dataset({data = opt.data, synthetic = final.synthetic or opt.synthetic,
                        synthetic_train = opt.synthetic_train, seed = opt.seed, record = run .. '/final.json'})
   return M.checkRunData(run, final, g)
end

-- g, when it is the data of the run whose final.json is `final`; otherwise an error naming both. A split of
-- another size than the run's is refused (its test_predictions would be read against other images, its
-- temperature fitted on another validation set), and so are generated signs for a run of GTSRB or the reverse,
-- and any split whose images or labels differ from those the run recorded (final.json's data, each split's
-- Dataset:fingerprint). Runs from before final.json kept these are checked on what they kept.
local DATA_ADVICE = 'give the data it was trained on (data=, TSHOST_DATA, or for the generated signs synthetic_train= and seed=)'
function M.checkRunData(run, final, g)
   if not final.synthetic ~= not g.synthetic then
      error(('%s was trained on %s, and the data here is %s'):format(run,
            final.synthetic and 'generated signs' or 'GTSRB', g.synthetic and 'generated signs' or 'GTSRB'), 0)
   end
   for _, split in ipairs{'train', 'valid', 'test'} do
      local n = final[split .. '_images']
      -- (a count given as a string, "20", was refused as "trained on 20 test images, and the data here has 20")
      if n ~= nil and type(n) ~= 'number' then
         error(('%s/final.json: %s_images must be a number, got %s'):format(run, split, keys.show(n)), 0)
      end
      if n and g[split]:size() ~= n then
         error(('%s was trained on %d %s images, and the data here has %d: %s'):format(run, n, split, g[split]:size(),
               DATA_ADVICE), 0)
      end
   end
   if final.data ~= nil then   -- (records from before fingerprints were kept have none)
      data.checkFingerprints(run, 'was trained and tested on', 'final.json', final.data,
                             data.fingerprints(g, {'train', 'valid', 'test'}), DATA_ADVICE)
   end
   return g
end

-- Temperature scaling fitted on held-out logits [N, C] and labels y (metrics.temperature), with the NLL and
-- calibration error before and after on them and, when given, on test logits and labels (of the same number of
-- views, tta): {temperature, fit (how: metrics.temperature's), tta, valid_images, valid = {before, after}, test =
-- {before, after}}, each a metrics.calibration table; nil and why when those images fit no temperature.
function M.fitCalibration(logits, y, test_logits, test_y, tta)
   local temperature, how = metrics.temperature(logits, y)
   if not temperature then return nil, how end
   local function both(z, labels)
      return {before = metrics.calibration(z, labels), after = metrics.calibration(z, labels, temperature)}
   end
   return {temperature = temperature, fit = how, tta = tta or 1, valid_images = y:numel(), valid = both(logits, y),
           test = test_logits and both(test_logits, test_y) or nil}
end

-- A model's calibration (M.fitCalibration) on g.valid, whatever set the network has not trained on (M.heldOut),
-- and, when given, on the test evaluation `ev` (with its logits, and the same tta) of g.test
function M.calibrate(model, g, preprocess, ev, tta)
   local val = train.evaluate(model, g.valid, {preprocess = preprocess, logits = true, tta = tta})
   return M.fitCalibration(val.logits, g.valid.y, ev and ev.logits, ev and g.test.y, tta)
end

-- The validation images a finished run (its final.json, `final`) did not train on, for what must be fitted on images
-- the network has not seen (the temperature, the detector's "no sign" threshold): all of g.valid for a run that
-- validated on it; the share of the tracks a trainval run held out (trained_on.held_out, Dataset:splitTracks's
-- record), split again and checked against its fingerprint; nil and why for a run that trained on every one, or,
-- when `need` names what is to be fitted on them ('a temperature'), an error saying so. A trainval run's kept tracks
-- (the validation images it trained on) come third: what chooses anything else (the detector's epoch) takes them.
function M.heldOut(run, final, g, need)
   local on = type(final) == 'table' and final.trained_on
   if type(on) ~= 'table' or on.valid ~= 'none' then return g.valid end
   local r = on.held_out
   if r == nil then
      local why = ('%s trained on every validation image'):format(run)
      if need then error(('%s: no validation images left to fit %s on'):format(why, need), 0) end
      return nil, why
   end
   local ok, kept, held = pcall(g.valid.splitTracks, g.valid, type(r) == 'table' and {share = r.share, track = r.track} or r)
   if not ok then error(('%s/final.json: trained_on.held_out: %s'):format(run, tostring(kept):gsub('^[^:]*:%d+: ', '')), 0) end
   if held:fingerprint() ~= r.fingerprint then
      error(('%s/final.json: the held-out validation images were %s, and the same share of the validation here is %s: %s')
            :format(run, tostring(r.fingerprint), held:fingerprint(), DATA_ADVICE), 0)
   end
   return held, nil, kept
end

-- A run's calibration as predict and the window search use it: the temperature and the number of views it
-- was fitted with, and whether the run has a calibration.json (without one: 1, 1, false). A calibration.json
-- without a valid temperature is an error naming the file.
function M.readCalibration(run)
   local cal = json.readFile(run .. '/calibration.json')
   if not cal then return 1, 1, false end
   -- a number, as calibrate.lua and finish write it ("2", a hand edit, was read as one)
   local temperature = type(cal) == 'table' and type(cal.temperature) == 'number' and cal.temperature or nil
   if not temperature or not (temperature > 0 and temperature < math.huge) then
      error(('%s/calibration.json has no valid temperature'):format(run), 0)
   end
   local views = train.checkViews(cal.tta == nil and 1 or cal.tta, run .. '/calibration.json', 'tta', 0)
   return temperature, views, true
end

-- The fields of a finished run's final.json that its readers show (test_accuracy, its test_accuracy_ci95 and
-- test_macro_f1), each a share from 0 to 1 and the interval low to high; final, or an error naming the file.
-- A damaged record failed in a format or an arithmetic with a traceback, 7 was shown as 700.00%, 1e999 as inf%.
function M.checkRecord(run, final)
   local ci = type(final) == 'table' and final.test_accuracy_ci95
   if type(final) ~= 'table' or type(final.test_accuracy) ~= 'number' or type(ci) ~= 'table' or type(ci[1]) ~= 'number'
      or type(ci[2]) ~= 'number' or type(final.test_macro_f1) ~= 'number' then
      error(run .. '/final.json: not a finished run\'s record (test_accuracy, test_accuracy_ci95, test_macro_f1)', 0)
   end
   local function share(v) return v >= 0 and v <= 1 end
   if not (share(final.test_accuracy) and share(ci[1]) and share(ci[2]) and share(final.test_macro_f1) and
           ci[1] <= ci[2]) then
      error(('%s/final.json: test_accuracy %s, test_accuracy_ci95 {%s, %s}, test_macro_f1 %s: not shares from 0 to 1 ' ..
             '(the interval low to high)'):format(run, tostring(final.test_accuracy), tostring(ci[1]), tostring(ci[2]),
             tostring(final.test_macro_f1)), 0)
   end
   return final
end

-- A run's test_predictions.safetensors, checked: pred and target int64 [N], confidence float32 [N], and N the
-- test set's size when `n` is given. Readers cast these to C pointers: a float pred was read 8 bytes at a time
-- past its end. With the run's final.json (`final`), the predictions must be right as often as its test_accuracy
-- says, and with the test labels `y`, their targets must be those: the predictions of another run (a folder reused,
-- a file copied) were paired, tabled and shown against this run's record and images. An error names the file otherwise.
-- preds.correct: whether each prediction is right (metrics.correct), for the check and for the callers that pair runs.
function M.readPredictions(run, n, final, y)
   local path = run .. '/test_predictions.safetensors'
   local preds = serialize.load(path)
   local want = {pred = 'int64', target = 'int64', confidence = 'float32'}
   local count
   for _, name in ipairs({'pred', 'target', 'confidence'}) do
      local t = preds[name]
      if not t or t:dtype() ~= want[name] or t:dim() ~= 1 then
         error(('%s: expected %s as %s [N], got %s'):format(path, name, want[name],
               t and ('%s %s'):format(t:dtype(), tostring(t:size())) or 'none'), 0)
      end
      count = count or t:numel()
      if t:numel() ~= count then error(('%s: pred, target and confidence differ in length'):format(path), 0) end
   end
   if n and count ~= n then error(('%s: %d predictions for %d test images'):format(path, count, n), 0) end
   -- class ids a confusion matrix holds, and confidences that are probabilities (NaN for a network that gave NaN): a
   -- damaged file failed in the report's confusion matrix, and compare paired it as it was
   for _, name in ipairs(count > 0 and {'pred', 'target'} or {}) do
      local lo, hi = preds[name]:min(), preds[name]:max()
      if lo < 0 or hi >= metrics.MAX_CLASSES then
         error(('%s: %s holds classes from %d to %d; class ids lie in 0..%d'):format(path, name, lo, hi,
               metrics.MAX_CLASSES - 1), 0)
      end
   end
   local c = preds.confidence   -- (a NaN is neither below 0 nor above 1)
   if count > 0 and (c:lt(0):sum() > 0 or c:gt(1):sum() > 0) then
      error(('%s: confidence holds values outside [0, 1]: not probabilities'):format(path), 0)
   end
   if y and not (y:numel() == count and preds.target:equal(y)) then
      error(('%s: its targets are not the labels of the test set here: the predictions of another test set'):format(path), 0)
   end
   preds.correct = metrics.correct(preds.pred, preds.target)
   if type(final) == 'table' and type(final.test_accuracy) == 'number' and count > 0 then
      local right = 0
      for _, ok in ipairs(preds.correct) do right = right + (ok and 1 or 0) end
      if math.abs(right / count - final.test_accuracy) > 1e-9 then
         error(('%s: right on %d of %d test images (%.2f%%), and %s/final.json says test_accuracy %.2f%%: the files are ' ..
                'not of one run'):format(path, right, count, 100 * right / count, run, 100 * final.test_accuracy), 0)
      end
   end
   return preds
end

-- Evaluates the chosen model on the test set once, fits the temperature on the validation images it did not train
-- on (calibration.json: predict uses it), writes final.json and test_predictions.safetensors into the run, prints the per-class
-- table and the most confused pairs; returns the evaluation. opt.tta: test-time views (train.evaluate's tta) for the
-- test set and the temperature alike, recorded in final.json and calibration.json (predict then uses as many)
function M.finish(result, g, opt)
   opt = keys.check('ts.experiment.finish', opt or {}, {note = true, quiet = true, held_out = true, no_calibration = true,
                                                        no_report = true, tta = true}, 2)
   -- a number of views, as calibration.json records them ({views, augment} would be written there as a table)
   if opt.tta ~= nil then train.checkViews(opt.tta, 'ts.experiment.finish', 'tta', 2) end
   local run = result.run
   local ev = train.evaluate(result.model, g.test, {preprocess = result.preprocess, logits = true, tta = opt.tta})
   ev.target_y = g.test.y
   -- train_images, valid_images and data describe g, which the run's readers rebuild and check (checkRunData); a
   -- variant that trained on other images (changes.train) or without validation says so in trained_on.
   -- opt.held_out = {set, record} (Dataset:splitTracks's held part and record): the validation images a trainval
   -- run kept out of its training, which the temperature is fitted on instead of g.valid. opt.no_calibration (a
   -- reason): no temperature, as when every validation image was part of the training
   local used = result.config and result.config.data or g
   local validated = used.valid ~= nil
   local held = opt.held_out
   local cal, no_calibration = nil, opt.no_calibration
   if not no_calibration then
      cal, no_calibration = M.calibrate(result.model, held and {valid = held.set, test = g.test} or g, result.preprocess, ev,
                                        opt.tta)
   end
   local s = ev.summary
   local lo, hi = metrics.interval(s.correct, s.total)
   local final = {
      test_accuracy = s.accuracy, test_accuracy_ci95 = {lo, hi}, test_macro_f1 = s.macro.f1,
      test_weighted_f1 = s.weighted.f1, test_loss = ev.loss, test_images = s.total,
      train_images = g.train:size(), valid_images = g.valid:size(),
      best_epoch = result.best.epoch, best_valid_accuracy = validated and result.best.accuracy or nil,
      train_seconds = result.train_seconds, parameters = result.model:numParameters(),
      images_per_second = #result.history > 0 and result.history[#result.history].images_per_second or 0,
      note = opt.note, synthetic = g.synthetic or false, tta = opt.tta or 1,
      data = data.fingerprints(g, {'train', 'valid', 'test'}),
      trained_on = (used.train ~= g.train or used.valid ~= g.valid) and {train_images = used.train:size(),
         train = used.train:fingerprint(), valid = validated and used.valid:fingerprint() or 'none',
         held_out = held and held.record} or nil,
      temperature = cal and cal.temperature, test_ece = cal and cal.test.before.ece,
      test_ece_calibrated = cal and cal.test.after.ece,
      per_class = {}, most_confused = json.array(),   -- [] when nothing is confused, not {}
   }
   for c = 0, s.classes - 1 do final.per_class[c + 1] = s.per_class[c] end
   for _, cell in ipairs(metrics.mostConfused(ev.cm, 15)) do
      final.most_confused[#final.most_confused + 1] = {true_class = cell[1], predicted = cell[2], count = cell[3]}
   end
   if run then
      files.writeFile(run .. '/final.json', json.encode(final))
      -- (a calibration.json of an earlier run in this folder would otherwise speak for this one)
      if cal then files.writeFile(run .. '/calibration.json', json.encode(cal)) else os.remove(run .. '/calibration.json') end
      serialize.save(run .. '/test_predictions.safetensors', {pred = ev.pred, confidence = ev.confidence, target = g.test.y})
      if not opt.no_report then
         local path = require('ts.report').write(run, {model = result.model, data = g, preprocess = result.preprocess})
         if not opt.quiet then print('report: ' .. path) end
      end
      M.tensorboardPictures(run, ev, g, result.best.epoch)
   end
   if not opt.quiet then
      print(metrics.format(s, g.classNames))
      print('most confused (true -> predicted: count):')
      for _, m in ipairs(final.most_confused) do
         if _ > 8 then break end
         print(('  %2d %-40s -> %2d %-40s %d'):format(m.true_class, g.classNames[m.true_class] or '', m.predicted,
                                                    g.classNames[m.predicted] or '', m.count))
      end
      if cal then
         print(('calibration: temperature %.3f fitted on %s; test NLL %.4f -> %.4f, ECE %.4f -> %.4f'):format(
            cal.temperature, held and ('the %d held-out validation images'):format(held.set:size()) or 'validation',
            cal.test.before.nll, cal.test.after.nll, cal.test.before.ece, cal.test.after.ece))
      else
         print(('calibration: none (%s)'):format(no_calibration))
      end
      print(('test accuracy %.4f (95%% CI %.4f-%.4f)%s, macro-F1 %.4f, %d parameters, trained %.0f s'):format(
         s.accuracy, lo, hi, final.tta > 1 and (' with %d views of each image'):format(final.tta) or '', s.macro.f1,
         final.parameters, result.train_seconds))
   end
   return ev, final
end

-- Adds the test set's confusion matrix and its most confident mispredictions (up to 8) to the run's TensorBoard
-- event file, at the step of the chosen epoch
function M.tensorboardPictures(run, ev, g, step)
   local tensorboard, image = require('ts.tensorboard'), require('ts.image')
   local tb = tensorboard.writer(run, {append = true})
   tb:image('test/confusion_matrix', tensorboard.confusionImage(ev.cm, ev.summary.classes), step)
   local wrong = {}
   for i = 1, ev.pred:numel() do
      if ev.pred[i] ~= g.test.y[i] then wrong[#wrong + 1] = {i = i, conf = ev.confidence[i]} end
   end
   table.sort(wrong, function(a, b) return a.conf > b.conf or (a.conf == b.conf and a.i < b.i) end)
   for k = 1, math.min(8, #wrong) do
      local i = wrong[k].i
      tb:image(('test/mispredicted/%d: %d as %d'):format(k, g.test.y[i], ev.pred[i]), image.resize(g.test.x[i], 96, 96), step)
   end
   tb:close()
end

-- The comparison recipe: a shorter training than the baseline's, the same for every variant, so that the
-- differences come from the setting compared. opt: epochs, batch, seed, run (a folder for the runs).
function M.recipe(opt)
   return {
      model = {name = 'refcnn', classes = 43},
      epochs = opt.epochs or 6, batch = opt.batch or 128, lr = opt.lr or 0.05, optimizer = 'sgd', momentum = 0.9,
      nesterov = true, weight_decay = 5e-4, schedule = 'cosine', warmup = 0.5, label_smoothing = 0.1,
      augment = data.augment{rotate = 10, scale = {0.9, 1.1}, translate = 0.08, brightness = 0.3, contrast = 0.3,
                             saturation = 0.2, blur = {0.1, 1.0}},
   }
end

-- The main job's recipe (experiments/baseline.lua): ts.models.baseline 1.5 times as wide as its default
-- (M.baselineWidths: 1,443,195 parameters; the default 32-64-128 network lost 0.38 points on test, measured
-- in experiments/ingredients.lua), label-aware augmentation (M.baselineAugment, the settings, so that an
-- experiment can change one; overexposure measured in experiments/exposure.lua, faded red paint in
-- experiments/ingredients.lua), label smoothing, SGD with Nesterov momentum, a cosine schedule with warmup.
-- opt: epochs (24), lr, batch, label_smoothing, weight_decay, warmup.
M.baselineAugment = {rotate = 12, scale = {0.9, 1.1}, translate = 0.08, shear = 6, perspective = 0.03,
                     brightness = 0.35, contrast = 0.35, saturation = 0.3, hue = 0.02, gamma = {0.7, 1.4},
                     exposure = {0.3, 3}, fade = {0.3, 1}, blur = {0.15, 1.0}, noise = 0.02, cutout = {0.25, 8},
                     flip = 0.5}
M.baselineWidths = {48, 96, 192}
function M.baseline(opt)
   return {
      model = {name = 'baseline', classes = 43, widths = M.baselineWidths},
      epochs = opt.epochs or 24, batch = opt.batch or 128, lr = opt.lr or 0.05,
      optimizer = 'sgd', momentum = 0.9, nesterov = true, weight_decay = opt.weight_decay or 5e-4,
      schedule = 'cosine', warmup = opt.warmup or 1, label_smoothing = opt.label_smoothing or 0.1,
      augment = data.augment(M.baselineAugment),
   }
end

-- settings with some changed and some removed (a list of keys): a new table, the original untouched
function M.with(settings, changes, removed)
   local out = {}
   for k, v in pairs(settings) do out[k] = v end
   for k, v in pairs(changes) do out[k] = v end
   for _, k in ipairs(removed or {}) do out[k] = nil end
   return out
end

-- Trains one variant per seed (the recipe, M.recipe or opt.recipe, overridden by `changes`), evaluates each on the test set once,
-- and returns {name, runs = {final...}, dirs = {run directory...}, mean, sd, evals} (M.settle). Runs go to
-- <opt.run>/<name>-s<seed> (dirs is empty without opt.run).
function M.variant(g, name, changes, opt)
   local out = {name = name, runs = {}, dirs = {}, evals = {}}
   for k = 1, opt.seeds or 1 do
      local cfg = (opt.recipe or M.recipe)(opt)
      for key, v in pairs(changes) do cfg[key] = v end
      -- changes.train: other training images; changes.valid = false: no validation during training (the validation
      -- images are in changes.train), so the model is the one the training ends with
      cfg.data = {train = changes.train or g.train, valid = changes.valid ~= false and g.valid or nil}
      cfg.train, cfg.valid = nil, nil
      cfg.seed = (opt.seed or 1) + k - 1
      cfg.run = opt.run and ('%s/%s-s%d'):format(opt.run, name, cfg.seed)
      cfg.note = name
      cfg.quiet = opt.quiet
      if not cfg.preprocess then
         local mean, std = g.train:channelStats()
         cfg.preprocess = data.preprocess{mean = mean, std = std}
      end
      if not opt.quiet then print(('== %s (seed %d)'):format(name, cfg.seed)) end
      local result = train.train(cfg)
      local ev, final = M.finish(result, g, {note = name, quiet = true, no_report = opt.no_report,
                                 no_calibration = changes.valid == false and 'the validation images were part of the training' or nil})
      out.runs[k], out.dirs[k], out.evals[k] = final, cfg.run, ev
   end
   return M.settle(out)
end

-- a variant's mean test accuracy over its runs and the seed-to-seed spread (sample sd; nil for one run),
-- into out.mean and out.sd; returns out
function M.settle(out)
   local accuracies = {}
   for k, f in ipairs(out.runs) do accuracies[k] = f.test_accuracy end
   out.mean, out.sd = metrics.meanSd(accuracies)
   return out
end

-- v against ref: the difference of the mean test accuracies, McNemar's p on the first seed, and whether it is
-- significant: p < 0.05, seed 1 pointing the way of the mean (else its p says nothing about that difference) and,
-- when both ran several seeds, beyond twice the larger seed-to-seed spread; with the verdict in words
local function versus(ref, v)
   local a, b = ref.evals[1], v.evals[1]
   local only_ref, only_v, p = metrics.mcnemar(metrics.correct(a.pred, a.target_y), metrics.correct(b.pred, b.target_y))
   local diff = v.mean - ref.mean
   local agrees, against = (only_v - only_ref) * diff > 0, (only_v - only_ref) * diff < 0
   local spread = (ref.sd and v.sd) and math.max(ref.sd, v.sd) or nil
   local words = p < 0.05 and 'significant (McNemar p < 0.05)' or 'not significant (McNemar p >= 0.05)'
   if p < 0.05 and against then words = 'not significant (McNemar\'s seed 1 points the other way from the mean)' end
   if p < 0.05 and diff == 0 then words = 'not significant (the means over the seeds are equal)' end
   local spread_words = spread and (math.abs(diff) > 2 * spread and ', beyond twice the seed spread' or ', within the seed spread') or ''
   return {diff = diff, p = p, significant = p < 0.05 and agrees and (not spread or math.abs(diff) > 2 * spread),
           words = words .. spread_words,
           detail = ('McNemar p = %.3g%s%s'):format(p, against and ' on seed 1, which points the other way' or '', spread_words)}
end

-- Prints the variants side by side and says, for each against the first, whether the difference exceeds
-- the seed-to-seed spread (when several seeds ran) and what McNemar's paired test says on the first seed; with as many
-- seeds on both sides, the paired tests over the seeds too (ts.metrics.paired). The verdict stays versus's.
function M.compare(variants, title)
   print(('\n%s'):format(title or 'comparison'))
   print(('%-28s %10s %8s %9s %9s'):format('variant', 'accuracy', 'sd', 'macro-F1', 'train s'))
   for _, v in ipairs(variants) do
      local f = v.runs[1]
      print(('%-28s %9.2f%% %8s %9.4f %9.0f'):format(v.name, 100 * v.mean, v.sd and ('%.2f%%'):format(100 * v.sd) or '-',
                                                   f.test_macro_f1, f.train_seconds))
   end
   local ref, verdicts = variants[1], {}
   for k = 2, #variants do
      local v = variants[k]
      local r = versus(ref, v)
      print(('  %s vs %s: %+.2f points, p = %.3g: %s'):format(v.name, ref.name, 100 * r.diff, r.p, r.words))
      -- over the seeds as well, where both ran the same several: the seed-level tests compare.lua --versus gives
      if #ref.runs > 1 and #ref.runs == #v.runs then
         local a, b = {}, {}
         for k = 1, #v.runs do a[k], b[k] = ref.runs[k].test_accuracy, v.runs[k].test_accuracy end
         local s = metrics.paired(a, b)
         print(('    over the %d seeds: ahead on %d, behind on %d; %s'):format(s.n, s.ahead, s.behind, metrics.describePaired(s)))
      end
      verdicts[v.name] = r
   end
   return verdicts
end

-- The variant with the best mean test accuracy, and a sentence that says whether it is significantly ahead of the
-- runner-up (versus: McNemar on seed 1 and the seed spread), so that "the best" is not read into a tie
function M.best(variants)
   if #variants == 0 then error('ts.experiment.best: no variants', 2) end
   local order = {}
   for k, v in ipairs(variants) do order[k] = v end
   table.sort(order, function(a, b) return a.mean > b.mean end)
   local best, second = order[1], order[2]
   if not second then return best, ('%s (%.2f%%)'):format(best.name, 100 * best.mean) end
   local r = versus(second, best)
   return best, ('%s gives the best test accuracy (%.2f%%), %s ahead of %s (%.2f%%; %s)'):format(best.name,
      100 * best.mean, r.significant and 'significantly' or 'not significantly', second.name, 100 * second.mean, r.detail)
end

return M
