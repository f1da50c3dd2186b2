-- Transfer learning from the published networks: for each pretrained model, a linear probe (frozen
-- backbone, head trained on cached features), full fine-tuning (backbone at a tenth of the head's learning
-- rate, BN statistics updated), and the same architecture trained from scratch with the fine-tuning budget;
-- plus the custom CNN of runs/baseline when it exists. One table, and what pretraining bought per class.
--   tshost experiments/transfer.lua [epochs=4] [models=resnet20,resnet8,mobilenet,resnet56] [run=runs/transfer]
local opt = ts.experiment.options{epochs = 4, models = 'resnet20,resnet8,mobilenet,resnet56', run = 'runs/transfer',
                                  probe_epochs = 30, baseline = 'runs/baseline'}
local g = ts.experiment.dataset(opt)
local rows = {}

local function add_row(name, final, seconds)
   rows[#rows + 1] = {name = name, acc = final.test_accuracy, f1 = final.test_macro_f1, params = final.parameters,
                      seconds = seconds or final.train_seconds, per_class = final.per_class}
end

for name in opt.models:gmatch('[^,]+') do
   local entry = ts.models.catalog[name] or error('unknown model ' .. name)
   local pre = ts.data.preprocess(entry.input)
   -- linear probe on cached features
   local t0 = require('ts.train').now()
   local m = ts.models.pretrained(name)
   local ftrain = ts.transfer.features(m, g.train, pre)
   local fvalid = ts.transfer.features(m, g.valid, pre)
   local ftest = ts.transfer.features(m, g.test, pre)
   local head = ts.transfer.linearProbe(ftrain, g.train.y, fvalid, g.valid.y, {epochs = opt.probe_epochs})
   local _, pred = head:forward(ftest):max(2)
   local cm = ts.metrics.confusion(pred:view(-1), g.test.y, 43)
   local s = ts.metrics.summary(cm)
   local per = {}
   for c = 0, 42 do per[c + 1] = s.per_class[c] end
   add_row(name .. ' linear probe', {test_accuracy = s.accuracy, test_macro_f1 = s.macro.f1,
                                     parameters = head:numParameters(), per_class = per}, require('ts.train').now() - t0)
   print(('%s linear probe: test accuracy %.4f'):format(name, s.accuracy))

   -- full fine-tuning with a lower backbone learning rate
   local ft = ts.models.pretrained(name)
   ts.transfer.newHead(ft, 43)
   local lr = 0.02
   local r = ts.train{model = ft, data = {train = g.train, valid = g.valid}, epochs = opt.epochs, batch = 128,
                      param_groups = ts.transfer.paramGroups(ft, {backbone_lr = lr / 10, head_lr = lr}), lr = lr,
                      momentum = 0.9, weight_decay = 5e-4, schedule = 'cosine', label_smoothing = 0.1,
                      augment = ts.data.augment{rotate = 10, scale = {0.9, 1.1}, translate = 0.08, brightness = 0.3, contrast = 0.3},
                      preprocess = pre, run = opt.run .. '/' .. name .. '-finetune', note = name .. ' fine-tuned', quiet = opt.quiet}
   local _, final = ts.experiment.finish(r, g, {note = name .. ' fine-tuned', quiet = true, no_report = true})
   add_row(name .. ' fine-tuned', final)

   -- the same architecture from scratch, same budget
   local scratch = ts.models[entry.builder]({classes = 43})
   r = ts.train{model = scratch, data = {train = g.train, valid = g.valid}, epochs = opt.epochs, batch = 128, lr = lr,
                momentum = 0.9, weight_decay = 5e-4, schedule = 'cosine', label_smoothing = 0.1,
                augment = ts.data.augment{rotate = 10, scale = {0.9, 1.1}, translate = 0.08, brightness = 0.3, contrast = 0.3},
                preprocess = pre, run = opt.run .. '/' .. name .. '-scratch', note = name .. ' from scratch', quiet = opt.quiet}
   _, final = ts.experiment.finish(r, g, {note = name .. ' from scratch', quiet = true, no_report = true})
   add_row(name .. ' from scratch', final)
end

local base = require('ts.train').readFile(opt.baseline .. '/final.json')
if base then add_row('custom CNN (' .. opt.baseline .. ')', ts.json.decode(base)) end

print(('\n%-32s %10s %9s %10s %9s'):format('model', 'accuracy', 'macro-F1', 'params', 'train s'))
for _, r in ipairs(rows) do
   print(('%-32s %9.2f%% %9.4f %10d %9.0f'):format(r.name, 100 * r.acc, r.f1, r.params, r.seconds))
end
-- what pretraining bought: fine-tuned minus from-scratch recall, per class, for the first model
for name in opt.models:gmatch('[^,]+') do
   local ft, sc
   for _, r in ipairs(rows) do
      if r.name == name .. ' fine-tuned' then ft = r end
      if r.name == name .. ' from scratch' then sc = r end
   end
   if ft and sc then
      local gains = {}
      for c = 1, #ft.per_class do gains[#gains + 1] = {c - 1, ft.per_class[c].recall - sc.per_class[c].recall} end
      table.sort(gains, function(a, b) return a[2] > b[2] end)
      local top = {}
      for k = 1, 4 do top[k] = ('%d %s (%+.3f)'):format(gains[k][1], (g.classNames[gains[k][1]] or ''):sub(1, 28), gains[k][2]) end
      print(('%s: pretraining bought %+.2f points overall; most for %s'):format(name, 100 * (ft.acc - sc.acc), table.concat(top, ', ')))
   end
end
