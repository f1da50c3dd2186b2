-- An ensemble of finished runs: the mean of their probabilities (ts.ensemble), on the validation and the
-- test set, against each member and, with McNemar's test, against the member that validation would choose.
-- The budget is the sum of the members' training times. The result goes to `run` as a run of its own
-- (final.json, test_predictions.safetensors, calibration.json), for scripts/compare.lua.
--   tshost experiments/ensemble.lua [runs=A,B,...] [tta=1] [run=runs/ensemble]
-- runs: comma-separated run directories (default: the baseline recipe's three seeds in runs/recipe, made by
-- experiments/exposure.lua seeds=3); tta: views per image for every member (1: none).
local opt = ts.experiment.options({runs = 'runs/recipe/baseline-s1,runs/recipe/baseline-s2,runs/recipe/baseline-s3',
                                   tta = 1, run = 'runs/ensemble'})
local members = {}
for dir in opt.runs:gmatch('[^,]+') do members[#members + 1] = {run = dir} end
if #members < 2 then error('ensemble.lua: runs= needs at least two run directories, got ' .. opt.runs, 0) end
for _, m in ipairs(members) do
   m.final = ts.json.readFile(m.run .. '/final.json') or error(m.run .. '/final.json not found (did the run finish?)', 0)
end
-- checked before any member is evaluated: tta=0 failed in evaluate, named as its option, after the data was made
require('ts.train').checkViews(opt.tta, 'ensemble.lua', 'tta', 0)
-- the ensemble's own folder (a folder, ts.experiment.options checks): never a member or another trained run
-- (run=runs/a replaced that run's final.json and predictions with the ensemble's)
local out_at = ts.files.realpath(opt.run)
for _, m in ipairs(members) do
   if out_at and out_at == ts.files.realpath(m.run) then
      error(('ensemble.lua: run=%s is the member %s, whose record it would replace: write the ensemble elsewhere')
            :format(opt.run, m.run), 0)
   end
end
if ts.files.exists(opt.run .. '/model.safetensors') or ts.files.exists(opt.run .. '/config.json') then
   error(('ensemble.lua: run=%s holds a trained run, whose record it would replace: write the ensemble elsewhere')
         :format(opt.run), 0)
end
-- the first member's data, which every other member must have been trained and tested on too
local g = ts.experiment.runData(members[1].run, members[1].final, opt)
for k = 2, #members do ts.experiment.checkRunData(members[k].run, members[k].final, g) end

-- the validation images no member trained on (experiment.heldOut): all of them, or the tracks trainval members held
-- out (the same share for every such member), which choose the reference member and fit the ensemble's temperature.
-- With a member trained on every validation image, or members that held out different tracks, there are none: the
-- first member is the reference, and the ensemble has no calibration
local unseen, why = g.valid, nil
for _, m in ipairs(members) do
   local own, because = ts.experiment.heldOut(m.run, m.final, g)
   if not own then unseen, why = nil, because break end
   if own ~= g.valid then
      if unseen ~= g.valid and unseen:fingerprint() ~= own:fingerprint() then
         unseen, why = nil, ('%s held out other validation tracks than another member'):format(m.run) break
      end
      unseen = own
   end
end
local validated = unseen ~= nil
local valid_evals, test_evals, parameters, seconds = {}, {}, 0, 0
print(('\n%-36s %10s %10s %10s %9s'):format('member', 'valid', 'test', 'params', 'train s'))
for k, m in ipairs(members) do
   local model, config = ts.models.load(m.run)
   local pre = ts.data.preprocess(config.preprocess)
   valid_evals[k] = ts.evaluate(model, unseen or g.valid, {preprocess = pre, logits = true, tta = opt.tta})
   test_evals[k] = ts.evaluate(model, g.test, {preprocess = pre, logits = true, tta = opt.tta})
   -- members of other class counts: ts.ensemble refused them with a traceback, naming neither run
   local classes, first = test_evals[k].logits:size(2), test_evals[1].logits:size(2)
   if classes ~= first then
      error(('ensemble.lua: %s scores %d classes, and %s %d: an ensemble needs members of the same classes'):format(
            m.run, classes, members[1].run, first), 0)
   end
   parameters, seconds = parameters + model:numParameters(), seconds + (m.final.train_seconds or 0)
   print(('%-36s %9.2f%% %9.2f%% %10d %9.0f'):format(m.run, 100 * valid_evals[k].accuracy, 100 * test_evals[k].accuracy,
                                                   model:numParameters(), m.final.train_seconds or 0))
end
local valid = ts.ensemble(valid_evals, (unseen or g.valid).y)
local test = ts.ensemble(test_evals, g.test.y)
print(('%-36s %9.2f%% %9.2f%% %10d %9.0f'):format(('ensemble of %d'):format(#members), 100 * valid.accuracy,
                                                100 * test.accuracy, parameters, seconds))

-- the member validation picks (the first, when validation cannot pick), against the ensemble
local chosen = 1
for k = 2, validated and #members or 1 do if valid_evals[k].accuracy > valid_evals[chosen].accuracy then chosen = k end end
local picked = validated and 'the one validation chooses' or ('the first (unchosen: %s)'):format(why)
local b, c, p = ts.metrics.mcnemar(ts.metrics.correct(test_evals[chosen].pred, g.test.y), ts.metrics.correct(test.pred, g.test.y))
local accuracies = {}
for k, ev in ipairs(test_evals) do accuracies[k] = ev.accuracy end
local mean, sd = ts.metrics.meanSd(accuracies)
print(('members: mean test accuracy %.2f%% (sd %.2f%%); %s: %s, %.2f%%'):format(
   100 * mean, 100 * sd, picked, members[chosen].run, 100 * test_evals[chosen].accuracy))
print(('McNemar, chosen member vs ensemble: %d right only for the member, %d only for the ensemble, p = %.3g'):format(b, c, p))

-- the ensemble as a run of its own
ts.files.mkdirs(opt.run)
local s = test.summary
local lo, hi = ts.metrics.interval(s.correct, s.total)
local cal
if validated then cal, why = ts.experiment.fitCalibration(valid.logits, unseen.y, nil, nil, opt.tta) end
local temperature = cal and cal.temperature
local final = {test_accuracy = s.accuracy, test_accuracy_ci95 = {lo, hi}, test_macro_f1 = s.macro.f1,
               test_weighted_f1 = s.weighted.f1, test_loss = test.loss, test_images = s.total,
               best_valid_accuracy = validated and valid.accuracy or nil, train_seconds = seconds, parameters = parameters,
               images_per_second = 0, members = {}, tta = opt.tta, temperature = temperature,
               note = ('ensemble of %d (mean probability)'):format(#members), synthetic = g.synthetic or false,
               -- the members' data (checked alike above), by which compare.lua tells test sets apart
               data = members[1].final.data}
for k, m in ipairs(members) do final.members[k] = m.run end
ts.files.writeFile(opt.run .. '/final.json', ts.json.encode(final))
ts.save(opt.run .. '/test_predictions.safetensors', {pred = test.pred, confidence = test.confidence, target = g.test.y})
-- (a calibration.json of an earlier ensemble in this folder would otherwise speak for this one)
if cal then ts.files.writeFile(opt.run .. '/calibration.json', ts.json.encode(cal)) else os.remove(opt.run .. '/calibration.json') end
print(('wrote %s (final.json, test_predictions.safetensors%s)'):format(opt.run, temperature and ', calibration.json' or
      '; no calibration.json: ' .. tostring(why)))
print(('conclusion: the ensemble of %d gives %.2f%% on test, %+.2f points over %s (%s)'):format(
   #members, 100 * test.accuracy, 100 * (test.accuracy - test_evals[chosen].accuracy), validated and
   'the member validation chooses' or 'its first member',
   p < 0.05 and 'significant, McNemar p < 0.05' or 'not significant'))
