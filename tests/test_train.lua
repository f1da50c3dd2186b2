-- Metrics on hand-computed cases; the trainer: convergence, gradient accumulation, resume after kill -9.
local nn = ts.nn

return function(t)
   t.test('metrics match hand-computed values on a small confusion matrix', function()
      -- targets 0 0 0 1 1 2, predictions 0 0 1 1 2 2
      local cm = ts.metrics.confusion({0, 0, 1, 1, 2, 2}, {0, 0, 0, 1, 1, 2}, 3)
      t.eq(cm[0][0], 2); t.eq(cm[0][1], 1); t.eq(cm[1][2], 1); t.eq(cm[2][2], 1)
      local m = ts.metrics.summary(cm)
      t.near(m.accuracy, 4 / 6)
      t.near(m.per_class[0].precision, 1); t.near(m.per_class[0].recall, 2 / 3); t.near(m.per_class[0].f1, 0.8)
      t.near(m.per_class[1].precision, 0.5); t.near(m.per_class[1].recall, 0.5)
      t.near(m.per_class[2].precision, 0.5); t.near(m.per_class[2].recall, 1); t.near(m.per_class[2].f1, 2 / 3)
      t.near(m.macro.f1, (0.8 + 0.5 + 2 / 3) / 3)
      t.near(m.weighted.f1, (0.8 * 3 + 0.5 * 2 + 2 / 3) / 6)
      t.near(m.macro.precision, (1 + 0.5 + 0.5) / 3)
      local top = ts.metrics.mostConfused(cm, 5)
      t.eq(#top, 2)
      t.truthy(ts.metrics.format(m, {[0] = 'a', 'b', 'c'}):find('macro average', 1, true))
      t.near(ts.metrics.topk(ts.tensor{{0.1, 0.5, 0.4}, {0.9, 0.05, 0.05}}, {2, 1}, 1), 0)
      t.near(ts.metrics.topk(ts.tensor{{0.1, 0.5, 0.4}, {0.9, 0.04, 0.06}}, {2, 1}, 2), 0.5)
   end)

   t.test('Wilson interval and McNemar test', function()
      local lo, hi = ts.metrics.interval(95, 100)
      t.near(lo, 0.8882, 1e-3); t.near(hi, 0.9785, 1e-3)
      local a, b = {}, {}
      for i = 1, 100 do a[i] = true; b[i] = i > 10 end   -- A right on 10 where B is wrong
      local nb, nc, p = ts.metrics.mcnemar(a, b)
      t.eq(nb, 10); t.eq(nc, 0)
      t.near(p, 2 * 0.5 ^ 10, 1e-9)                     -- exact binomial
      local _, _, same = ts.metrics.mcnemar(a, a)
      t.eq(same, 1)
      for i = 1, 100 do b[i] = i > 60 end
      local _, _, p2 = ts.metrics.mcnemar(a, b)
      t.truthy(p2 < 1e-8, 'chi-square tail ' .. p2)
   end)

   t.test('the trainer learns the generated signs and keeps its run directory', function()
      local g = ts.data.synthetic{train = 2000, valid = 400, test = 400, seed = 2}
      local dir = t.tmpdir() .. '/run'
      local r = ts.train{model = {name = 'refcnn', widths = {8, 16, 32}, hidden = 64}, data = {train = g.train, valid = g.valid},
                         epochs = 6, batch = 50, lr = 0.05, run = dir, quiet = true,
                         augment = ts.data.augment{rotate = 5, brightness = 0.1}}
      t.truthy(r.best.accuracy > 0.6, 'validation accuracy ' .. r.best.accuracy)
      local ev = ts.evaluate(r.model, g.test, {preprocess = r.preprocess})
      t.truthy(ev.accuracy > 0.6, 'test accuracy ' .. ev.accuracy)
      local lines = 0
      for line in io.lines(dir .. '/metrics.jsonl') do
         lines = lines + 1
         t.truthy(ts.json.decode(line).valid_accuracy)
      end
      t.eq(lines, 6)
      local model, config = ts.models.load(dir)
      t.eq(config.model.name, 'refcnn')
      t.eq(ts.evaluate(model, g.test, {preprocess = ts.data.preprocess(config.preprocess)}).accuracy, ev.accuracy)
   end)

   t.test('gradient accumulation gives the same update as one batch k times larger', function()
      local g = ts.data.synthetic{train = 256, valid = 10, test = 10, seed = 4}
      local function run(batch, k)
         ts.manualSeed(9)
         local net = nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Flatten(), nn.Linear(256, 43))
         local r = ts.train{model = net, data = {train = g.train}, epochs = 2, batch = batch, accumulate = k,
                            lr = 0.1, momentum = 0.9, weight_decay = 1e-3, schedule = 'none', seed = 9, quiet = true}
         return r.model
      end
      local big, acc = run(64, 1), run(16, 4)
      for i, pair in ipairs(big:stateDict()) do
         t.near(acc:stateDict()[i][2], pair[2], 1e-4, 1e-6, pair[1])
      end
      local other = run(16, 1)
      t.truthy(not other:get(5).weight:allclose(big:get(5).weight, 1e-4, 1e-6), 'the test must be able to fail')
   end)

   t.test('a run killed with kill -9 resumes from its checkpoint and ends as an uninterrupted run', function()
      local base = t.tmpdir()
      local script = t.dir .. '/scripts/train_small.lua'
      local rc, out = t.sh(('%s --threads 2 %s run=%s/whole'):format(t.tshost, script, base))
      t.eq(rc, 0, out)
      -- start the same run, kill it during its third epoch, then run it again
      local cmd = ('%s --threads 2 %s run=%s/killed >/dev/null 2>&1 & echo $!'):format(t.tshost, script, base)
      local p = io.popen(cmd)
      local pid = p:read('*l')
      p:close()
      local killed = false
      for _ = 1, 600 do
         local f = io.open(base .. '/killed/metrics.jsonl')
         local n = 0
         if f then for _ in f:lines() do n = n + 1 end f:close() end
         if n >= 2 then
            os.execute('sleep 0.2; kill -9 ' .. pid)
            killed = true
            break
         end
         os.execute('sleep 0.05')
      end
      t.truthy(killed, 'the run never reached its second epoch')
      os.execute('sleep 0.3')
      local lines = 0
      for _ in io.lines(base .. '/killed/metrics.jsonl') do lines = lines + 1 end
      t.truthy(lines < 5, 'the run finished before the kill; the test proves nothing')
      rc, out = t.sh(('%s --threads 2 %s run=%s/killed'):format(t.tshost, script, base))
      t.eq(rc, 0, out)
      local a = ts.load(base .. '/whole/checkpoint.safetensors')
      local b = ts.load(base .. '/killed/checkpoint.safetensors')
      for name, tensor in pairs(a) do
         t.truthy(b[name] and b[name]:equal(tensor), 'differs after resume: ' .. name)
      end
      lines = 0
      for _ in io.lines(base .. '/killed/metrics.jsonl') do lines = lines + 1 end
      t.eq(lines, 5)
   end)
end
