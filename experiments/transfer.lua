-- Transfer learning from the published networks. For each pretrained model, up to four recipes, each a run
-- folder <run>/<model>-<recipe> with final.json, predictions and model.safetensors (PyTorch names):
--   probe     the backbone frozen, a Linear head trained on its cached features (AdamW)
--   finetune  everything trains: the new head at lr, the backbone at backbone_lr (lower), BN statistics updated
--   unfreeze  gradual unfreezing: the head alone first, then one backbone stage more per epoch
--   scratch   the same architecture from random weights, the same epochs, schedule and pipeline
-- A model fed 0..255 (ResNet-8) has that scale folded into its first convolution first, so SGD sees 0..1.
-- The table lists every run found under <run> (earlier invocations with other models or budgets too) and
-- the custom CNN of runs/baseline, then what pretraining bought per class.
--   tshost experiments/transfer.lua [epochs=4] [models=resnet20,resnet8,mobilenet,resnet56]
--                                   [recipes=probe,finetune,unfreeze,scratch] [lr=0.05] [backbone_lr=0.02]
local opt = ts.experiment.options({epochs = 4, models = 'resnet20,resnet8,mobilenet,resnet56', run = 'runs/transfer',
                                   recipes = 'probe,finetune,unfreeze,scratch', lr = 0.05, backbone_lr = 0.02,
                                   probe_epochs = 30, baseline = 'runs/baseline'}, {epochs = {1}, probe_epochs = {1}})
local recipe_names = {'probe', 'finetune', 'unfreeze', 'scratch'}
local recipe_labels = {probe = 'linear probe', finetune = 'fine-tuned', unfreeze = 'gradual unfreezing',
                       scratch = 'from scratch'}
-- both lists checked before any data is made: an unknown model failed after the models before it had trained
local wanted = {}
for _, r in ipairs(ts.experiment.choices(opt.recipes, 'recipes', recipe_names)) do wanted[r] = true end
local catalog = {}
for name in pairs(ts.models.catalog) do catalog[#catalog + 1] = name end
table.sort(catalog)
local models = ts.experiment.choices(opt.models, 'models', catalog)
local g = ts.experiment.dataset(opt)

local function pretrained(name)
   local m = ts.models.pretrained(name)
   if m.inputConvention.std[1] < 0.1 then ts.transfer.foldInputScale(m) end
   return m
end

local augment = ts.data.augment{rotate = 10, scale = {0.9, 1.1}, translate = 0.08, brightness = 0.3, contrast = 0.3}
local function fit(model, name, recipe, extra)
   local cfg = {model = model, data = {train = g.train, valid = g.valid}, epochs = opt.epochs, batch = 128, lr = opt.lr,
                momentum = 0.9, weight_decay = 5e-4, schedule = 'cosine', warmup = 0.25, label_smoothing = 0.1,
                augment = augment, preprocess = ts.data.preprocess(model.inputConvention),
                run = opt.run .. '/' .. name .. '-' .. recipe, note = name .. ' ' .. recipe_labels[recipe], quiet = opt.quiet}
   for k, v in pairs(extra or {}) do cfg[k] = v end
   local r = ts.train(cfg)
   ts.experiment.finish(r, g, {note = cfg.note, quiet = true, no_report = true})
end

local recipes = {}

function recipes.probe(name)
   local t0 = ts.files.now()
   local m = pretrained(name)
   local pre = ts.data.preprocess(m.inputConvention)
   local ftrain, fvalid = ts.transfer.features(m, g.train, pre), ts.transfer.features(m, g.valid, pre)
   local head, history = ts.transfer.linearProbe(ftrain, g.train.y, fvalid, g.valid.y, {epochs = opt.probe_epochs})
   local new = ts.transfer.newHead(m, 43)
   new.weight:copy(head.weight)
   new.bias:copy(head.bias)
   local run = opt.run .. '/' .. name .. '-probe'
   ts.files.mkdirs(run)
   ts.save(run .. '/model.safetensors', m)
   local result = {run = run, model = m, preprocess = pre, history = {}, train_seconds = ts.files.now() - t0,
                   best = {epoch = opt.probe_epochs, accuracy = history[#history]}}
   ts.experiment.finish(result, g, {note = name .. ' linear probe', quiet = true, no_report = true})
end

function recipes.finetune(name)
   local m = pretrained(name)
   ts.transfer.newHead(m, 43)
   fit(m, name, 'finetune', {param_groups = ts.transfer.paramGroups(m, {backbone_lr = opt.backbone_lr, head_lr = opt.lr})})
end

function recipes.unfreeze(name)
   local m = pretrained(name)
   ts.transfer.newHead(m, 43)
   local groups, on_epoch = ts.transfer.gradualUnfreeze(m, {backbone_lr = opt.backbone_lr, head_lr = opt.lr,
                                                            stages = math.max(1, opt.epochs - 1)})
   fit(m, name, 'unfreeze', {param_groups = groups, on_epoch = on_epoch, resume = false})
end

function recipes.scratch(name)
   local entry = ts.models.catalog[name]
   local m = ts.models[entry.builder]({classes = 43})
   -- the pretrained twin's pipeline, so that only the starting weights differ
   m.inputConvention = pretrained(name).inputConvention
   fit(m, name, 'scratch')
end

for _, name in ipairs(models) do
   for _, recipe in ipairs(recipe_names) do
      if wanted[recipe] then
         recipes[recipe](name)
         print(('%s %s: done'):format(name, recipe_labels[recipe]))
      end
   end
end

-- the table: every run of this experiment found on disk, then the baseline
local rows, names = {}, {}
for name in pairs(ts.models.catalog) do names[#names + 1] = name end
table.sort(names)
local function add_row(label, path)
   local final = ts.json.readFile(path .. '/final.json')
   if not final then return end
   -- runs on other data (generated signs vs GTSRB, or generated signs of another size or seed) do not belong in the
   -- table: with only the kind checked, an earlier invocation's run on another test set was compared by McNemar
   local same, why = pcall(ts.experiment.checkRunData, path, final, g)
   if same then rows[#rows + 1] = {name = label, final = final, path = path}
   else print(('(left out: %s)'):format(tostring(why))) end
end
for _, name in ipairs(names) do
   for _, recipe in ipairs(recipe_names) do
      add_row(name .. ' ' .. recipe_labels[recipe], opt.run .. '/' .. name .. '-' .. recipe)
   end
end
-- the main job's run trains on part of the validation images too (trainval): its row says how many more it saw
local on = (ts.json.readFile(opt.baseline .. '/final.json') or {}).trained_on
local more = type(on) == 'table' and tonumber(on.train_images) and on.train_images - g.train:size() or 0
add_row(('custom CNN (%s%s)'):format(opt.baseline, more > 0 and (', +%d valid images'):format(more) or ''), opt.baseline)

print(('\n%-30s %10s %9s %10s %9s %9s'):format('model', 'accuracy', 'macro-F1', 'params', 'train s', 'best ep'))
local by_name = {}
for _, r in ipairs(rows) do
   local f = r.final
   by_name[r.name] = r
   print(('%-30s %9.2f%% %9.4f %10d %9.0f %9s'):format(r.name, 100 * f.test_accuracy, f.test_macro_f1, f.parameters,
                                                     f.train_seconds, tostring(f.best_epoch or '-')))
end
-- which test images a run got right
local function correctness(path)
   local p = ts.experiment.readPredictions(path)
   return ts.metrics.correct(p.pred, p.target)
end
for _, name in ipairs(names) do
   local sc = by_name[name .. ' from scratch']
   -- the pretrained recipe validation prefers (the test set would favour itself)
   local best
   for _, recipe in ipairs({'finetune', 'unfreeze'}) do
      local r = by_name[name .. ' ' .. recipe_labels[recipe]]
      if r and (not best or r.final.best_valid_accuracy > best.final.best_valid_accuracy) then best = r end
   end
   if best and sc then
      local diff = best.final.test_accuracy - sc.final.test_accuracy
      local only_sc, only_best, p = ts.metrics.mcnemar(correctness(sc.path), correctness(best.path))
      local significant = p < 0.05 and (only_best - only_sc) * diff > 0
      local gains = {}
      for c = 1, #best.final.per_class do
         gains[c] = {c - 1, best.final.per_class[c].recall - sc.final.per_class[c].recall}
      end
      table.sort(gains, function(a, b) return a[2] > b[2] end)
      local top = {}
      for k = 1, 4 do
         if gains[k][2] > 0 then
            top[#top + 1] = ('%d %s (%+.3f)'):format(gains[k][1], (g.classNames[gains[k][1]] or ''):sub(1, 28), gains[k][2])
         end
      end
      print(('%s: pretraining %s %.2f points (%s, chosen on validation, against from scratch; McNemar p = %.3g: %s); %s'):format(
         name, diff >= 0 and 'bought' or 'cost', math.abs(100 * diff), best.final.note, p,
         significant and 'significant' or 'not significant',
         #top > 0 and 'recall gained most for ' .. table.concat(top, ', ') or 'no class gained recall'))
   end
end
