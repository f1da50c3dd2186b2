-- ts.experiment: what every experiment script shares: the data it runs on, and the end of a run
-- (test evaluation, final.json, the predictions a report needs, the printed summary).
local data = require('ts.data')
local metrics = require('ts.metrics')
local json = require('ts.json')
local train = require('ts.train')
local serialize = require('ts.serialize')

local M = {}

-- The real GTSRB when it can be found (opt.data, TSHOST_DATA, data/), else the generated stand-in,
-- saying which. opt.synthetic = true forces the generated data.
function M.dataset(opt)
   local dir = (opt.data and opt.data ~= '') and opt.data or os.getenv('TSHOST_DATA') or 'data'
   if not opt.synthetic then
      local ok, g = pcall(data.gtsrb, dir)
      if ok then
         print(('data: GTSRB from %s (%d train, %d valid, %d test)'):format(dir, g.train:size(), g.valid:size(), g.test:size()))
         return g
      end
      print('data: GTSRB not found (' .. tostring(g):match('^[^.]*') .. '); using the generated traffic signs instead')
   end
   local g = data.synthetic{train = opt.synthetic_train or 6000, valid = 1000, test = 2000, seed = opt.seed or 1}
   print(('data: generated traffic signs (%d train, %d valid, %d test)'):format(g.train:size(), g.valid:size(), g.test:size()))
   return g
end

-- Evaluates the chosen model on the test set once, writes final.json and test_predictions.safetensors
-- into the run, prints the per-class table and the most confused pairs; returns the evaluation.
function M.finish(result, g, opt)
   opt = opt or {}
   local run = result.run
   local ev = train.evaluate(result.model, g.test, {preprocess = result.preprocess})
   local s = ev.summary
   local lo, hi = metrics.interval(s.correct, s.total)
   local final = {
      test_accuracy = s.accuracy, test_accuracy_ci95 = {lo, hi}, test_macro_f1 = s.macro.f1,
      test_weighted_f1 = s.weighted.f1, test_loss = ev.loss, test_images = s.total,
      best_epoch = result.best.epoch, best_valid_accuracy = result.best.accuracy,
      train_seconds = result.train_seconds, parameters = result.model:numParameters(),
      images_per_second = #result.history > 0 and result.history[#result.history].images_per_second or 0,
      note = opt.note, synthetic = g.synthetic or false,
      per_class = {}, most_confused = {},
   }
   for c = 0, s.classes - 1 do final.per_class[c + 1] = s.per_class[c] end
   for _, cell in ipairs(metrics.mostConfused(ev.cm, 15)) do
      final.most_confused[#final.most_confused + 1] = {true_class = cell[1], predicted = cell[2], count = cell[3]}
   end
   if run then
      train.writeFile(run .. '/final.json', json.encode(final))
      serialize.save(run .. '/test_predictions.safetensors', {pred = ev.pred, confidence = ev.confidence, target = g.test.y})
      local path = require('ts.report').write(run, {model = result.model, data = g, preprocess = result.preprocess})
      if not opt.quiet then print('report: ' .. path) end
   end
   if not opt.quiet then
      print(metrics.format(s, g.classNames))
      print('most confused (true -> predicted: count):')
      for _, m in ipairs(final.most_confused) do
         if _ > 8 then break end
         print(('  %2d %-40s -> %2d %-40s %d'):format(m.true_class, g.classNames[m.true_class] or '', m.predicted,
                                                    g.classNames[m.predicted] or '', m.count))
      end
      print(('test accuracy %.4f (95%% CI %.4f-%.4f), macro-F1 %.4f, %d parameters, trained %.0f s'):format(
         s.accuracy, lo, hi, s.macro.f1, final.parameters, result.train_seconds))
   end
   return ev, final
end

return M
