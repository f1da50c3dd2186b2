-- Metrics on hand-computed cases; the trainer: convergence, gradient accumulation, resume after kill -9.
local nn = ts.nn

-- a copy of every tensor of a model's state, by name
local function snapshot(m)
   local out = {}
   for _, pair in ipairs(m:stateDict()) do out[pair[1]] = pair[2]:clone() end
   return out
end

-- train(dir, epochs) into dir/whole for `epochs`, and into dir/parts for `first` epochs, then resumed to `epochs`:
-- the run's `file` must come out the same to the bit
local function same_after_resume(t, dir, first, epochs, file, train)
   train(dir .. '/whole', epochs)
   train(dir .. '/parts', first)
   train(dir .. '/parts', epochs)
   local a, b = ts.load(dir .. '/whole/' .. file), ts.load(dir .. '/parts/' .. file)
   for name, v in pairs(a) do t.near(b[name], v, 0, 0, name) end
end

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
      -- ties go as argmax breaks them (the lowest id first): a constant model is right only for class 0
      local y4 = ts.tensor({0, 1, 2, 3}, 'int64')
      t.near(ts.metrics.topk(ts.zeros(4, 10), y4, 1), 0.25)
      t.near(ts.metrics.topk(ts.zeros(4, 10), y4, 2), 0.5)
      t.raises(function() ts.metrics.topk(ts.full({4, 10}, 0 / 0), y4, 1) end, 'topk: row 1 holds NaN')
      t.raises(function() ts.metrics.topk(ts.zeros(4, 10), y4) end, 'topk: k (of 10 classes) must be a whole number from 1 to 10, got nil')
   end)

   t.test('Wilson interval and McNemar test', function()
      t.raises(function() ts.metrics.interval(101, 100) end, 'expected 0 <= k <= n, got 101 of 100')
      t.raises(function() ts.metrics.mcnemar({1, 0, 1}, {0, 0, 0}) end, 'result 1 is not true or false')
      t.raises(function() ts.metrics.mcnemar({true}, {true, false}) end, '1 results against 2')
      t.raises(function() ts.metrics.mcnemar(nil, {true}) end, 'mcnemar: expected two lists of booleans (metrics.correct), got nil and table')
      t.raises(function() ts.metrics.summary() end, 'summary: expected a confusion matrix (ts.metrics.confusion), got nil')
      -- an empty list gave a NaN mean; a word in the list an error from inside the sum
      t.raises(function() ts.metrics.meanSd({}) end, 'meanSd: expected a list of at least one number, got {}')
      t.raises(function() ts.metrics.meanSd({0.99, '0.98'}) end, 'meanSd: item 2 is "0.98", not a number')
      local mean, sd = ts.metrics.meanSd({0.9})
      t.eq(mean, 0.9); t.eq(sd, nil)
      mean, sd = ts.metrics.meanSd({1, 3})
      t.eq(mean, 2); t.near(sd, math.sqrt(2), 1e-12)
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
      -- 26 against 25: chi-square 0, where the approximation of erfc gave a p of 1.00000003
      local c, d = {}, {}
      for i = 1, 51 do c[i], d[i] = i <= 26, i > 26 end
      local _, _, p3 = ts.metrics.mcnemar(c, d)
      t.truthy(p3 <= 1 and p3 > 0.99, 'p ' .. p3)
   end)

   t.test('calibration: NLL and ECE by hand; temperature scaling recovers the temperature of over-confident logits', function()
      local l3 = math.log(3)   -- softmax {ln 3, 0} = {0.75, 0.25}
      local logits = ts.tensor{{l3, 0}, {l3, 0}, {l3, 0}, {l3, 0}}
      local c = ts.metrics.calibration(logits, {0, 0, 0, 1})
      t.near(c.accuracy, 0.75); t.near(c.confidence, 0.75); t.near(c.ece, 0, 0, 1e-6)
      t.near(c.nll, -(3 * math.log(0.75) + math.log(0.25)) / 4, 1e-6)
      c = ts.metrics.calibration(logits, {0, 1, 1, 1})
      t.near(c.ece, 0.5, 1e-6)
      t.near(ts.metrics.calibration(logits, {0, 1, 1, 1}, 2).confidence, math.sqrt(3) / (math.sqrt(3) + 1), 1e-6)
      t.raises(function() ts.metrics.calibration(logits, {0, 1, 2, 1}) end, 'target 3 is 2, outside the classes 0..1')
      -- reads past the logits once: a target beyond the classes, more targets than rows; a temperature that is none
      t.raises(function() ts.metrics.topk(logits, {0, 1, 1e9, 1}, 1) end, 'topk: target 3 is 1000000000, outside')
      t.raises(function() ts.metrics.topk(logits, ts.zeros({2000000}, 'int64'), 1) end, 'topk: 4 rows of logits but 2000000 targets')
      t.raises(function() ts.metrics.calibration(logits, {0, 1}) end, 'calibration: 4 rows of logits but 2 targets')
      t.raises(function() ts.metrics.calibration(logits, {0, 1, 1, 1}, -1) end, 'the temperature must be a finite number > 0')
      t.raises(function() ts.metrics.softmax(ts.tensor{1, 2}, 0) end, 'the temperature must be a finite number > 0, got 0')
      t.raises(function() ts.metrics.calibration(ts.tensor{{0 / 0, 0}}, {0}) end, 'the logits hold NaN or infinities')
      -- a NaN or +inf logit made every probability NaN (predict printed nan%); -inf is a probability of 0
      t.raises(function() ts.metrics.softmax(ts.tensor{1, 0 / 0, 2}) end, 'softmax: logit 2 is nan')
      t.raises(function() ts.metrics.softmax(ts.tensor{1, 1 / 0}) end, 'softmax: logit 2 is inf')
      t.raises(function() ts.metrics.softmax(ts.tensor{-1 / 0, -1 / 0}) end, 'softmax: every logit is -inf')
      t.eq(ts.metrics.softmax(ts.tensor{0, -1 / 0})[2], 0)
      -- labels drawn from softmax(a); the model reports 2.5 a: the fitted temperature is 2.5
      math.randomseed(5)
      local n, k = 20000, 4
      local z, y = ts.zeros(n, k), ts.zeros({n}, 'int64')
      for i = 1, n do
         local a, total = {}, 0
         for j = 1, k do
            a[j] = 1.5 * math.sqrt(-2 * math.log(1 - math.random())) * math.cos(2 * math.pi * math.random())
            total = total + math.exp(a[j])
         end
         local u, pick = math.random() * total, k
         for j = 1, k do
            u = u - math.exp(a[j])
            if u <= 0 then pick = j break end
         end
         for j = 1, k do z[{i, j}] = 2.5 * a[j] end
         y[i] = pick - 1
      end
      local temperature = ts.metrics.temperature(z, y)
      t.near(temperature, 2.5, 0.05)
      local before, after = ts.metrics.calibration(z, y), ts.metrics.calibration(z, y, temperature)
      t.truthy(after.nll < before.nll and after.ece < 0.02 and before.ece > 0.1,
               ('NLL %.4f -> %.4f, ECE %.4f -> %.4f'):format(before.nll, after.nll, before.ece, after.ece))
      t.eq(after.accuracy, before.accuracy, 'the predictions do not change')
      t.eq(select(2, ts.metrics.temperature(z, y)), 'likeliest')
      -- images with no mistake have no likeliest temperature (the surer the better): the one whose mean confidence is
      -- the rule of succession's accuracy, (n+1)/(n+2); a list of targets is taken as a tensor is
      local right = ts.tensor({{3, 0, 0}, {0, 2, 0}}, 'float32')
      local succession, how = ts.metrics.temperature(right, {0, 1})
      t.eq(how, 'succession')
      t.near(ts.metrics.calibration(right, {0, 1}, succession).confidence, 3 / 4, 1e-4)
      -- every image wrong, the right class the least likely: the NLL falls as T grows, to the range's edge: none
      local none, why = ts.metrics.temperature(right, ts.tensor({2, 2}, 'int64'))
      t.eq(none, nil)
      t.eq(why, '2 images, 0.00% of them predicted right, leave no temperature from 0.01 to 100 to fit')
      -- every image wrong, the right class the second: a likeliest T inside the range all the same
      t.truthy(ts.metrics.temperature(ts.tensor({{3, 2, -10}, {-10, 3, 2}}, 'float32'), {1, 2}))
   end)

   t.test('topk and calibration read float64 logits as they are, not cut to float32 ties', function()
      -- argmax in float64 is class 1 in both rows; in float32 each row is a tie, which went to class 0
      local l = ts.tensor({{1, 1 + 1e-9}, {1e8, 1e8 + 1}}, 'float64')
      t.eq(ts.metrics.topk(l, {0, 0}, 1), 0)
      local c = ts.metrics.calibration(l, {0, 0})
      t.eq(c.accuracy, 0)
      t.near(c.nll, (math.log(1 + math.exp(1e-9)) + math.log(1 + math.exp(1))) / 2, 1e-9)
   end)

   t.test('metrics refuse lists with holes, arguments of the wrong kind and hand-made matrices, naming the call', function()
      -- a hole in a list: its length left the samples after it out of the matrix, or a run out of the mean
      t.raises(function() ts.metrics.confusion({0, nil, 1}, {0, nil, 1}, 2) end,
               'confusion: the predictions must be a list {a, b, ...} without holes')
      local runs = {0.9, 0.7}
      runs[4] = 0.1
      t.raises(function() ts.metrics.meanSd(runs) end,
               'meanSd: the numbers must be a list {a, b, ...} without holes, got 1 nil among its 4 items')
      t.raises(function() ts.metrics.mcnemar({true, nil, true}, {true, nil, false}) end, 'mcnemar: the first list must be a list')
      t.raises(function() ts.metrics.confusion({[0] = 1, 0}, {[0] = 1, 0}, 2) end, 'got the key 0 beside positions 1 .. 1')
      -- no predictions were an accuracy of 0; 100,000 classes asked for a table of 10^10 cells
      t.raises(function() ts.metrics.summary(ts.metrics.confusion({}, {}, 3)) end, 'summary: the confusion matrix counts no predictions')
      t.raises(function() ts.metrics.correct({1.5, 2}, {1.5, 2}) end, 'correct: prediction 1 is 1.5 and its target 1.5: class ids are whole numbers')
      t.raises(function() ts.metrics.confusion({0}, {0}, 100000) end, 'confusion: classes must be a whole number from 1 to 10000')
      -- no list or tensor at all, or a row that is no 1-D tensor: errors from inside the library
      local err = t.raises(function() ts.metrics.correct(nil, {1}) end, 'correct: the predictions must be a tensor or a list, got nil')
      t.truthy(err:find('test_train.lua', 1, true), 'the error points at the caller: ' .. err)
      t.raises(function() ts.metrics.topk(ts.zeros(2, 3), nil, 1) end, 'topk: the targets must be a tensor or a list, got nil')
      t.raises(function() ts.metrics.softmax({1, 2}) end, 'softmax: row must be a 1-D tensor of logits, got {1, 2}')
      t.raises(function() ts.metrics.softmax(ts.zeros(1, 3)) end, 'softmax: row must be a 1-D tensor of logits, got [1x3]')
      -- temperature's errors were calibration's, raised inside temperature; a nil target failed inside it
      t.raises(function() ts.metrics.temperature(ts.zeros(2, 3), nil) end, 'temperature: the targets must be a tensor or a list, got nil')
      err = t.raises(function() ts.metrics.temperature(ts.tensor{{0 / 0, 1}}, {0}) end, 'temperature: the logits hold NaN or infinities')
      t.truthy(err:find('test_train.lua', 1, true), 'the error points at the caller: ' .. err)
      -- hand-made confusion matrices and summaries: refused by name, not read as far as a missing row
      t.raises(function() ts.metrics.summary({classes = 2}) end,
               'summary: expected a confusion matrix (ts.metrics.confusion), got a table that is not one')
      t.raises(function() ts.metrics.summary({classes = 0}) end, 'summary: expected a confusion matrix')
      t.raises(function() ts.metrics.mostConfused({classes = 2.5, [0] = {[0] = 0}}) end, 'mostConfused: expected a confusion matrix')
      local cm = ts.metrics.confusion({0, 1}, {1, 0}, 2)
      t.raises(function() ts.metrics.mostConfused(cm, 1.5) end, 'mostConfused: n must be a whole number >= 0, got 1.5')
      t.eq(#ts.metrics.mostConfused(cm, 1), 1)
      t.raises(function() ts.metrics.format(cm) end, 'format: expected a summary (ts.metrics.summary), got a table that is not one')
   end)

   t.test('metrics agree with scikit-learn, statsmodels and scipy (their numbers written here)', function()
      -- class 3 never predicted, 4 only predicted, 5 in neither: left out of the macro average, as scikit-learn does
      local m = ts.metrics.summary(ts.metrics.confusion({0, 2, 1, 1, 4, 0, 2, 2}, {0, 1, 1, 2, 3, 0, 2, 0}, 6))
      t.near(m.macro.precision, 0.36666666666666664, 1e-12); t.near(m.macro.recall, 0.3333333333333333, 1e-12)
      t.near(m.macro.f1, 0.34, 1e-12)
      t.near(m.weighted.precision, 0.5833333333333334, 1e-12); t.near(m.weighted.recall, 0.5, 1e-12)
      t.near(m.weighted.f1, 0.525, 1e-12)
      t.near(m.per_class[2].f1, 0.4, 1e-12); t.eq(m.per_class[3].f1, 0); t.eq(m.per_class[4].precision, 0)
      -- Wilson (proportion_confint): the normal quantile to full precision put the bounds 4e-9 off
      for _, case in ipairs({{0, 4, 0, 0.4898908364545974}, {4, 4, 0.5101091635454025, 1},
                             {95, 100, 0.8882495307680808, 0.9784563208456319}}) do
         local lo, hi = ts.metrics.interval(case[1], case[2])
         t.near(lo, case[3], 1e-12, 1e-15, 'low bound'); t.near(hi, case[4], 1e-12, 1e-15, 'high bound')
      end
      -- McNemar: exact to 50 disagreements, then chi-square with continuity correction (an approximation of erfc put
      -- p 1.1e-7 off, relatively); b = c above 50 gives p < 1 as statsmodels' exact=False does
      local function p(b, c)
         local x, y = {}, {}
         for i = 1, b + c do x[i], y[i] = i <= b, i > b end
         return select(3, ts.metrics.mcnemar(x, y))
      end
      t.near(p(21, 14), 0.31050465907901537, 1e-12)
      t.near(p(40, 11), 8.826126346812178e-05, 1e-12)
      t.near(p(60, 60), 0.9272644735252321, 1e-12)
      t.near(p(1000, 0), 4.8840137355217796e-219, 1e-12, 0)
      -- temperature: scipy's minimize_scalar of the NLL, and for the rows predicted right the temperature whose mean
      -- confidence is 5/6 (brentq), both to the documented 1e-4
      local l = ts.tensor({{2, 0.5, -1}, {0.3, 0.2, 0.1}, {-1, 3, 0.5}, {1, 1.5, 0}, {0, 0, 4}, {2.5, -0.5, 0.4},
                           {0.1, 0.9, 0.3}, {1.2, 1.1, -2}}, 'float64')
      local temperature, how = ts.metrics.temperature(l, {0, 1, 1, 0, 2, 0, 2, 1})
      t.eq(how, 'likeliest'); t.near(temperature, 0.7575192568554983, 1e-4, 0)
      t.near(ts.metrics.calibration(l, {0, 1, 1, 0, 2, 0, 2, 1}, temperature).nll, 0.5866399889461189, 1e-8)
      temperature, how = ts.metrics.temperature(ts.tensor({{2, 0.5, -1}, {-1, 3, 0.5}, {0, 0, 4}, {2.5, -0.5, 0.4}}), {0, 1, 2, 0})
      t.eq(how, 'succession'); t.near(temperature, 1.188094209588765, 1e-4, 0)
      -- ECE's bins are [lo, hi): a tie of two classes (0.5) falls in the upper of 2 bins, with a right one at 0.75
      t.near(ts.metrics.calibration(ts.tensor({{0, 0}, {math.log(3), 0}}, 'float64'), {1, 0}, 1, 2).ece, 0.125, 1e-12)
   end)

   t.test('paired: two recipes over pairs of runs, as scipy gives them (ttest_rel, t.interval, permutation_test)', function()
      local m = ts.metrics
      -- six pairs, every difference positive: t = 13 on 5 degrees of freedom; 2 of the 64 sign patterns as far from 0
      local r = m.paired({1, 2, 3, 4, 5, 6}, {2, 3, 4, 5, 6, 7.5})
      t.near(r.p_t, 4.802202801017837e-05, 1e-9)
      t.near(r.ci95[1], 0.8691181803636403, 1e-9); t.near(r.ci95[2], 1.2975484863030262, 1e-9)
      t.eq(r.p_flip, 2 / 64); t.eq(('%d %d %d'):format(r.n, r.ahead, r.behind), '6 6 0'); t.near(r.diff, 13 / 12, 1e-12)
      -- seven pairs of both signs and a tie; scipy's permutation_test over the sign flips: 0.40625
      r = m.paired({5, 3, 8, 1, 9, 2, 7}, {6, 2, 9, 3, 9, 4, 6})
      t.near(r.p_t, 0.27965829090465777, 1e-9); t.eq(r.p_flip, 0.40625)
      t.near(r.ci95[1], -0.6053618249702573, 1e-9); t.near(r.ci95[2], 1.7482189678274, 1e-9)
      t.eq(('%d %d'):format(r.ahead, r.behind), '4 2')
      -- two pairs: one degree of freedom, the interval 12.7 standard errors each way
      r = m.paired({0, 0}, {1, 3})
      t.near(r.p_t, 0.2951672353008665, 1e-9); t.near(r.ci95[1], -10.706204736174694, 1e-9); t.eq(r.p_flip, 0.5)
      -- one pair: no spread, so no t-test or interval; differences all alike: no doubt either way
      r = m.paired({0.99}, {0.995})
      t.truthy(r.sd == nil and r.ci95 == nil and r.p_t == nil and r.p_flip == 1, 'one pair')
      t.eq(m.paired({1, 2}, {1, 2}).p_t, 1); t.eq(m.paired({1, 2, 3}, {2, 3, 4}).p_t, 0)
      -- accuracies alike in exact numbers but not in their last bits: no spread (it made p = 0 out of rounding)
      t.eq(m.paired({0.90, 0.95, 0.85}, {0.95, 1.0, 0.90}).sd, 0)
      t.raises(function() m.paired({1, 2}, {1}) end, 'paired: 2 numbers against 1')
      t.raises(function() m.paired({}, {}) end, 'paired: 0 numbers against 0')
      t.raises(function() m.paired({1, 0 / 0}, {1, 2}) end, 'paired: pair 2 is nan and 2, not two finite numbers')
      t.raises(function() m.paired({1, nil, 3}, {1, 2, 3}) end, 'paired: the first list')
   end)

   t.test('evaluation with test-time augmentation: the mean probability over the views, reproducible by seed', function()
      local function softmax(z)   -- rows of z [N, C], in double
         local out = ts.zeros(z:size(1), z:size(2))
         for i = 1, z:size(1) do
            local m, total = -math.huge, 0
            for c = 1, z:size(2) do m = math.max(m, z:get(i, c)) end
            for c = 1, z:size(2) do total = total + math.exp(z:get(i, c) - m) end
            for c = 1, z:size(2) do out[{i, c}] = math.exp(z:get(i, c) - m) / total end
         end
         return out
      end
      local g = ts.data.synthetic{train = 8, valid = 8, test = 40, seed = 3}
      ts.manualSeed(4)
      local net = nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(4 * 8 * 8, 43))
      local pre = ts.data.preprocess{mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25}}
      local plain = ts.evaluate(net, g.test, {preprocess = pre, logits = true})
      -- one view is the plain evaluation; its logits are log-probabilities
      local one = ts.evaluate(net, g.test, {preprocess = pre, logits = true, tta = 1})
      t.near(one.logits, plain.logits, 0, 0)
      local out = net:forward(ts.data.batch(g.test, (function() local p = {} for i = 1, 40 do p[i] = i end return p end)(),
                                            {preprocess = pre}))
      t.near(plain.logits:exp(), softmax(out), 1e-5, 1e-7)
      -- four views: view 1 plain, views 2..4 the Loader epochs of the documented seeds; probabilities averaged
      local aug = ts.data.augment{rotate = 20, translate = 0.1}
      local tta = ts.evaluate(net, g.test, {preprocess = pre, logits = true, tta = {views = 4, augment = aug, seed = 9}})
      local mean = plain.logits:exp()
      for v = 2, 4 do
         local loader = ts.data.Loader(g.test, {batch = 256, sampler = 'sequential', preprocess = pre, augment = aug})
         for x in loader:epoch(1, require('ts.train').ttaViewSeed(9, v)) do mean = mean + softmax(net:forward(x)) end
      end
      mean = mean / 4
      t.near(tta.logits:exp(), mean, 1e-5, 1e-7)
      t.truthy(not tta.logits:allclose(plain.logits, 1e-3, 1e-3), 'the views differ from the plain image')
      local expect_loss = 0
      for i = 1, 40 do
         local arg = 1
         for c = 2, 43 do if mean:get(i, c) > mean:get(i, arg) then arg = c end end
         t.eq(tta.pred[i], arg - 1)
         t.near(tta.confidence[i], mean:get(i, arg), 1e-5)
         expect_loss = expect_loss - math.log(mean:get(i, g.test.y[i] + 1))
      end
      t.near(tta.loss, expect_loss / 40, 1e-5)
      -- the same seed, the same answer; another seed, other views
      t.near(ts.evaluate(net, g.test, {preprocess = pre, logits = true, tta = {views = 4, augment = aug, seed = 9}}).logits, tta.logits, 0, 0)
      t.truthy(not ts.evaluate(net, g.test, {preprocess = pre, logits = true, tta = {views = 4, augment = aug, seed = 10}}).logits:allclose(tta.logits, 1e-4, 1e-4))
      t.raises(function() ts.evaluate(net, g.test, {tta = 0}) end, 'evaluate: tta views must be a whole number from 1 to 1024, got 0')
      t.raises(function() ts.evaluate(net, g.test, {tta = {augment = ts.data.augment{flip = 0.5}}}) end, 'tta augment cannot flip')
      t.raises(function() ts.evaluate(net, g.test, {tta = 'yes'}) end, 'tta must be a number of views')
   end)

   t.test('an ensemble predicts the class of largest mean probability over its members', function()
      local a = {logits = ts.tensor{{math.log(0.9), math.log(0.1)}, {math.log(0.3), math.log(0.7)}}}
      local b = {logits = ts.tensor{{0, math.log(4)}, {5, 5}}}   -- raw logits: softmax {0.2, 0.8}, {0.5, 0.5}
      local y = ts.tensor({1, 1}, 'int64')
      local e = ts.ensemble({a, b}, y)
      t.eq(e.pred[1], 0); t.eq(e.pred[2], 1)   -- {0.55, 0.45} and {0.4, 0.6}
      t.near(e.confidence[1], 0.55, 1e-6); t.near(e.confidence[2], 0.6, 1e-6)
      t.near(e.logits, ts.tensor{{math.log(0.55), math.log(0.45)}, {math.log(0.4), math.log(0.6)}}, 1e-6, 1e-7)
      t.near(e.loss, -(math.log(0.45) + math.log(0.6)) / 2, 1e-6)
      t.near(e.accuracy, 0.5)
      t.raises(function() ts.ensemble({a, {logits = ts.zeros(3, 2)}}, y) end, 'member 2 scored 3x2, member 1 2x2')
      t.raises(function() ts.ensemble({a, {}}, y) end, 'member 2 was evaluated without logits = true')
      -- two members certain a class is not: its mean probability is 0, its log -inf (it was NaN)
      local sure = {logits = ts.tensor{{0, -math.huge}, {1, 0}}}
      t.eq(ts.ensemble({sure, sure}, ts.tensor({0, 0}, 'int64')).logits:get(1, 2), -math.huge)
   end)

   t.test('ema: the model is the moving average of the weights after each update; a resumed run keeps it', function()
      local g = ts.data.synthetic{train = 32, valid = 16, test = 8, seed = 2}
      local function net()
         ts.manualSeed(3)
         return nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(4 * 8 * 8, 43))
      end
      -- one update per epoch; the weights at the start of each epoch are those after the update before; the
      -- fourth epoch's update has lr 0, so its weights are the third's
      local snaps = {}
      local result = ts.train{model = net(), data = {train = g.train}, epochs = 4, batch = 32, lr = 0.5, momentum = 0,
                              weight_decay = 0, schedule = 'none', ema = 0.2, quiet = true,
                              on_epoch = function(epoch, m, opt)
                                 snaps[epoch] = snapshot(m)
                                 if epoch == 4 then opt.groups[1].lr = 0 end
                              end}
      local weights = {snaps[1], snaps[2], snaps[3], snaps[4], snaps[4]}
      for _, pair in ipairs(result.model:stateDict()) do
         local shadow = weights[1][pair[1]]:clone()
         for k = 1, 4 do
            local decay = math.min(0.2, k / (9 + k))   -- the warm-up of the decay, capped at 0.2
            shadow = shadow * decay + weights[k + 1][pair[1]] * (1 - decay)
         end
         t.near(pair[2], shadow, 1e-5, 1e-7, pair[1])
         t.truthy(not pair[2]:allclose(snaps[4][pair[1]], 1e-4, 1e-6), pair[1] .. ' is not simply the live weights')
      end
      -- interrupted after epoch 1 and resumed: the same saved model as one run of 2 epochs
      local dir = t.tmpdir()
      same_after_resume(t, dir, 1, 2, 'model.safetensors', function(where, epochs)
         ts.train{model = net(), data = {train = g.train, valid = g.valid}, epochs = epochs, batch = 8,
                  schedule = 'none', ema = 0.5, run = where, quiet = true}
      end)
      -- a checkpoint without the average cannot be resumed with ema
      ts.train{model = net(), data = {train = g.train}, epochs = 1, batch = 16, run = dir .. '/plain', quiet = true}
      t.raises(function()
         ts.train{model = net(), data = {train = g.train}, epochs = 2, batch = 16, ema = 0.9, run = dir .. '/plain', quiet = true}
      end, 'checkpoint lacks ema.')
      t.raises(function() ts.train{model = net(), data = {train = g.train}, ema = 1} end, 'ema must be a decay between 0 and 1')
   end)

   t.test('evaluate reads float64 scores as numbers, refuses integer ones, and keeps 43 equal huge scores uncertain', function()
      local g = ts.data.synthetic{train = 8, valid = 8, test = 32, seed = 1}
      ts.manualSeed(2)
      local m = nn.Sequential(nn.Flatten(), nn.Linear(3072, 43))
      local plain = ts.evaluate(m, g.test)
      local forward = m.forward
      m.forward = function(self, x) return forward(self, x):double() end
      local wide = ts.evaluate(m, g.test)
      t.near(wide.loss, plain.loss, 1e-6)
      t.truthy(wide.pred:equal(plain.pred), 'the same predictions')
      m.forward = function(_, x) return ts.zeros(x:size(1), 43, 'uint8') end
      t.raises(function() ts.evaluate(m, g.test) end, 'evaluate: the model gives uint8 scores; float scores are needed')
      m.forward = function(_, x) return ts.full({x:size(1), 43}, 1e17) end
      local flat = ts.evaluate(m, g.test)
      t.near(flat.loss, math.log(43), 1e-6, 0, 'log 43, not 0')
      t.near(flat.confidence[1], 1 / 43, 1e-6)
   end)

   t.test('without a validation set the model is the last epoch\'s, on disk as returned; early_stop needs validation', function()
      local g = ts.data.synthetic{train = 32, valid = 16, test = 8, seed = 2}
      ts.manualSeed(3)
      local net = nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(4 * 8 * 8, 43))
      -- one update an epoch; epoch 3's at a rate that wrecks the weights, so epoch 4's training loss (taken before
      -- its update, at lr 0) is the worst: choosing by training loss would keep an earlier epoch
      local dir = t.tmpdir()
      local result = ts.train{model = net, data = {train = g.train}, epochs = 4, batch = 32, lr = 0.1, momentum = 0,
                              weight_decay = 0, schedule = 'none', run = dir, quiet = true,
                              on_epoch = function(epoch, m, opt) opt.groups[1].lr = ({0.1, 0.1, 200, 0})[epoch] end}
      local losses = {}
      for k, rec in ipairs(result.history) do losses[k] = rec.train_loss end
      t.truthy(losses[4] > math.min(losses[1], losses[2], losses[3]), 'the last epoch is not the lowest loss: ' ..
               table.concat(losses, ', '))
      t.eq(result.best.epoch, 4)
      t.eq(result.best.accuracy, nil, 'no validation accuracy to report')
      local saved = ts.load(dir .. '/model.safetensors')
      for _, pair in ipairs(result.model:stateDict()) do t.near(saved[pair[1]], pair[2], 0, 0, pair[1]) end
      t.raises(function() ts.train{model = net, data = {train = g.train}, epochs = 2, early_stop = 1, quiet = true} end,
               'early_stop needs a validation set')
   end)

   t.test('a resume with other trainable parameters is refused before the run is touched', function()
      local g = ts.data.synthetic{train = 32, valid = 16, test = 8, seed = 1}
      local dir = t.tmpdir() .. '/run'
      local function train(frozen, epochs)
         ts.manualSeed(1)
         local m = nn.Sequential(nn.Flatten(), nn.Linear(3072, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8),
                                 nn.ReLU(), nn.Linear(8, 43))
         m:get(frozen):freeze()
         return ts.train{model = m, data = {train = g.train, valid = g.valid}, epochs = epochs, batch = 16, run = dir,
                         quiet = true}
      end
      train(4, 1)
      local metrics = t.readfile(dir .. '/metrics.jsonl')
      local events = ts.tensorboard.files(dir)[1]
      -- the other 8x8 layer frozen: the same shapes, so position by position the momentum went to the wrong layer
      t.raises(function() train(6, 2) end, 'checkpoint.safetensors: the optimizer state is for other trainable ' ..
               'parameters (6 of them; 6 now, the first that differs: 5.weight in the checkpoint, 3.weight now)')
      t.eq(t.readfile(dir .. '/metrics.jsonl'), metrics)
      t.eq(ts.tensorboard.files(dir)[1], events, 'the event file kept')
      t.eq(#train(4, 2).history, 2, 'the same parameters resume')
   end)

   t.test('a variant trained on train and valid joined records what it trained on, and has no calibration', function()
      local g = ts.data.synthetic{train = 64, valid = 32, test = 32, seed = 2}
      local dir = t.tmpdir()
      local opt = {run = dir, quiet = true, recipe = function()
         return {model = {name = 'refcnn', widths = {4, 8, 16}, hidden = 16, classes = 43}, epochs = 2, batch = 32, lr = 0.05}
      end}
      local joined = ts.experiment.variant(g, 'joined', {train = ts.data.join({g.train, g.valid}), valid = false}, opt)
      local plain = ts.experiment.variant(g, 'plain', {}, opt)
      local final = ts.json.readFile(dir .. '/joined-s1/final.json')
      -- what it trained on is said apart; the data its readers rebuild (g) is recorded as for any run
      t.eq(final.trained_on.train_images, 96); t.eq(final.trained_on.valid, 'none')
      t.eq(final.trained_on.train, ts.data.join({g.train, g.valid}):fingerprint())
      t.eq(final.best_valid_accuracy, nil)
      t.eq(final.best_epoch, 2, 'the last epoch')
      t.eq(final.temperature, nil)
      t.eq(ts.json.readFile(dir .. '/joined-s1/calibration.json'), nil, 'no temperature fitted on images it trained on')
      t.truthy(t.readfile(dir .. '/joined-s1/report.html'):find('the last: no validation', 1, true))
      t.near(joined.mean, final.test_accuracy, 0)
      t.eq(ts.experiment.checkRunData(dir .. '/joined-s1', final, g), g, 'its readers take it')
      local rc, out = t.sh(('%s %s/scripts/report.lua %s/joined-s1'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 0, out)
      local p = ts.json.readFile(dir .. '/plain-s1/final.json')
      t.eq(p.train_images, 64); t.eq(p.valid_images, 32); t.eq(p.data.train, g.train:fingerprint()); t.eq(p.trained_on, nil)
      t.truthy(ts.json.readFile(dir .. '/plain-s1/calibration.json').temperature > 0)
      t.near(plain.mean, p.test_accuracy, 0)
   end)

   t.test('swa: the model is the mean of the weights of the last epochs, with batch norm statistics of its own', function()
      local g = ts.data.synthetic{train = 32, valid = 16, test = 8, seed = 2}
      local spec = {name = 'baseline', classes = 43, widths = {4, 8, 8}}
      local snaps = {}
      -- one update per epoch; the weights at the start of each epoch are those the epoch before ended on; the
      -- fourth epoch's update has lr 0, so it ends on the third's weights: swa from epoch 2 averages the weights
      -- epochs 2, 3 and 3 ended on
      local dir = t.tmpdir()
      local result = ts.train{model = spec, data = {train = g.train, valid = g.valid}, epochs = 4, batch = 32, lr = 0.2,
                              momentum = 0, weight_decay = 0, schedule = 'none', swa = {start = 2}, quiet = true,
                              run = dir .. '/whole', on_epoch = function(epoch, m, opt)
                                 snaps[epoch] = snapshot(m)
                                 if epoch == 4 then opt.groups[1].lr = 0 end
                              end}
      t.eq(result.swa.first_epoch, 2); t.eq(result.swa.last_epoch, 4); t.eq(result.swa.epochs, 3)
      -- the expected model: the mean of the parameters, then its batch norms' statistics over the training images
      local expect = ts.models.baseline(spec)
      local want = {}
      for _, pair in ipairs(expect:stateDict()) do
         local name = pair[1]
         if pair[2]:dtype() == 'float32' then
            pair[2]:copy((snaps[3][name] + snaps[4][name] * 2) / 3)
         else
            pair[2]:fill(snaps[4][name]:item() + 1)   -- num_batches_tracked: the live count, after epoch 4's batch
         end
         want[name] = pair[2]
      end
      ts.updateBatchNorm(expect, g.train, {preprocess = result.preprocess, batch = 32})
      local running = 0
      for _, pair in ipairs(result.model:stateDict()) do
         t.near(pair[2], want[pair[1]], 1e-5, 1e-6, pair[1])
         if pair[1]:match('running_mean$') then
            running = running + 1
            local avg = (snaps[3][pair[1]] + snaps[4][pair[1]] * 2) / 3
            t.truthy(not pair[2]:allclose(avg, 1e-4, 1e-6), pair[1] .. ' is taken again, not averaged')
         end
      end
      t.truthy(running >= 3, 'the network has batch norms')
      -- validated and saved; model.safetensors keeps the epoch validation chose
      local ev = ts.evaluate(result.model, g.valid, {preprocess = result.preprocess})
      t.near(result.swa.valid_accuracy, ev.accuracy, 0)
      local swa_model = ts.models.load(dir .. '/whole', {weights = 'swa'})
      for _, pair in ipairs(swa_model:stateDict()) do t.near(pair[2], want[pair[1]], 1e-5, 1e-6, pair[1]) end
      local best = ts.models.load(dir .. '/whole')
      t.truthy(not best:stateDict()[1][2]:allclose(swa_model:stateDict()[1][2], 1e-6, 1e-8), 'the best epoch is kept apart')
      -- stopped after epoch 3 and resumed: the same average as one run of 4 epochs
      same_after_resume(t, dir .. '/resumed', 3, 4, 'swa.safetensors', function(where, epochs)
         ts.train{model = spec, data = {train = g.train, valid = g.valid}, epochs = epochs, batch = 8,
                  schedule = 'none', swa = {start = 2}, run = where, quiet = true}
      end)
      t.raises(function() ts.models.load(dir .. '/whole', {weights = 'average'}) end, "weights must be 'best', 'last' or 'swa'")
      -- a run without swa has no average to load, nor to resume with
      ts.train{model = spec, data = {train = g.train}, epochs = 1, batch = 16, run = dir .. '/plain', quiet = true}
      t.raises(function() ts.models.load(dir .. '/plain', {weights = 'swa'}) end, 'swa.safetensors not found')
      t.raises(function()
         ts.train{model = spec, data = {train = g.train}, epochs = 2, batch = 16, swa = {start = 1}, run = dir .. '/plain',
                  quiet = true}
      end, 'checkpoint lacks swa.')
      local function bad(swa) return function() ts.train{model = spec, data = {train = g.train}, epochs = 4, swa = swa} end end
      t.raises(bad({start = 0}), 'swa.start must be an epoch from 1 to epochs (4), got 0')
      t.raises(bad({start = 5}), 'swa.start must be an epoch from 1 to epochs (4), got 5')
      t.raises(bad({start = 2.5}), 'swa.start must be an epoch')
      t.raises(bad({start = 2, lr = 0}), 'swa.lr must be a learning rate > 0')
      t.raises(bad({start = 2, anneal = -1}), 'swa.anneal must be a number of epochs >= 0')
      t.raises(bad({start = 2, every = 2}), 'swa has no option every')
      -- a rate to move to from a first group's lr of 0 was an infinite share of it
      t.raises(function() ts.train{model = spec, data = {train = g.train}, epochs = 4, lr = 0, swa = {start = 2, lr = 0.01}} end,
               "ts.train: swa.lr = 0.01 is a rate to move to, and the first parameter group's lr is 0")
      t.raises(bad(3), 'swa must be a table')
   end)

   t.test('swa.lr: the schedule until swa.start, then a cosine to swa.lr over swa.anneal epochs, then held (SWALR)', function()
      local g = ts.data.synthetic{train = 32, valid = 8, test = 8, seed = 2}
      local spec = {name = 'baseline', classes = 43, widths = {4, 8, 8}}
      local function lrs(swa)
         local r = ts.train{model = spec, data = {train = g.train}, epochs = 6, batch = 8, lr = 0.1, schedule = 'cosine',
                            warmup = 1, swa = swa, quiet = true}
         local out = {}
         for k, rec in ipairs(r.history) do out[k] = rec.lr end
         return out
      end
      local plain, held = lrs(nil), lrs({start = 3, lr = 0.02})
      -- record k's lr is the one for the update after epoch k's last (the schedule's count 4k): epochs 1 and 2
      -- train on the cosine, epoch 3 on is at swa.lr
      t.near(held[1], plain[1], 0)
      t.truthy(math.abs(plain[2] - 0.02) > 0.01, 'the cosine is elsewhere')
      for k = 2, 6 do t.near(held[k], 0.02, 1e-12) end
      -- the schedule alone: cosine from the base's factor at `start` to `factor` over `anneal` updates
      local opt = ts.optim.SGD(nn.Linear(2, 2), {lr = 1})
      local base = ts.optim.schedule.cosine(opt, {total = 100})
      local s = ts.optim.schedule.swa(opt, {base = base, start = 40, anneal = 10, factor = 0.05})
      t.near(s.factor(39), base.factor(39), 0)
      t.near(s.factor(40), base.factor(40), 1e-12)
      t.near(s.factor(45), (base.factor(40) + 0.05) / 2, 1e-12)
      t.near(s.factor(50), 0.05, 0); t.near(s.factor(99), 0.05, 0)
      local none = ts.optim.schedule.swa(opt, {start = 5, factor = 0.5})
      t.near(none.factor(4), 1, 0); t.near(none.factor(5), 0.5, 0)
   end)

   -- hostile arguments to the optimizers and schedules: refused by name, never a NaN, negative or doubled update
   t.test('optimizers refuse a tensor in two groups, eps 0, a bad max_norm and options that are no table', function()
      local l, head = nn.Linear(2, 2), nn.Linear(2, 2)
      -- a parameter in two groups was updated twice a step
      t.raises(function() ts.optim.SGD({{params = l}, {params = l}}, {lr = 1}) end,
               'SGD: parameter 1 of group 2 is parameter 1 of group 1: list each tensor once')
      local opt = ts.optim.SGD(l, {lr = 1})
      t.raises(function() opt:addParamGroup({params = {{head.weight, l.bias}, {head.grad.weight, l.grad.bias}}}) end,
               'parameter 2 of group 2 is parameter 2 of group 1')
      t.eq(#opt.groups, 1)
      t.eq(#ts.optim.SGD({{params = l}, {params = head}}, {lr = 1}).groups, 2)   -- two modules: two groups
      -- eps 0 gave NaN weights wherever a gradient was 0
      t.raises(function() ts.optim.Adam(l, {eps = 0}) end, 'Adam: eps must be above 0')
      t.raises(function() ts.optim.AdamW({{params = l, eps = 0}}) end, 'AdamW: eps must be above 0')
      -- so did one the kernels' float32 takes as 0
      t.raises(function() ts.optim.Adam(l, {eps = 1e-50}) end, 'Adam: eps must be above 0 in float32 (0 makes NaN weights where a gradient is 0), got 1e-50')
      -- what is no table, or no tensor, failed inside with "attempt to index ..."
      t.raises(function() ts.optim.SGD(l, 0.1) end, 'SGD: the options must be a table, got number')
      for _, case in ipairs({{function() ts.optim.SGD(l, {lr = 1, momentun = 0.9}) end, 'SGD: unknown option momentun (known: dampening, lr,'},
                             {function() ts.optim.Adam(nil) end, 'Adam: the parameters must be a module or a list of groups, got nil'},
                             {function() ts.optim.AdamW(l, {bet1 = 0.9}) end, 'AdamW: unknown option bet1'}}) do
         local err = t.raises(case[1], case[2])
         t.truthy(err:find('test_train.lua:', 1, true), 'at the caller: ' .. err)
      end
      t.raises(function() ts.optim.SGD({{params = {{1}, {2}}}}, {lr = 1}) end, 'SGD: parameter 1 of a group must be a tensor, got number')
      t.raises(function() ts.optim.SGD({{lr = 1}}, {lr = 1}) end, 'SGD: a group needs params')
      -- clipGradNorm: NaN clipped nothing, a negative max_norm turned the gradients around, {wiat = false} waited
      l.grad.weight:fill(1)
      for _, bad in ipairs({0 / 0, -1, '1'}) do
         local err = t.raises(function() opt:clipGradNorm(bad) end, 'clipGradNorm: max_norm must be a number >= 0, got ')
         t.truthy(err:find('test_train.lua:', 1, true), 'at the caller: ' .. err)
      end
      t.eq(l.grad.weight:min(), 1, 'the gradients untouched')
      t.raises(function() opt:clipGradNorm(1, {wiat = false}) end, 'clipGradNorm: unknown option wiat (known: wait)')
      t.near(opt:clipGradNorm(math.huge), 2, 1e-6)
   end)

   t.test('schedules refuse settings that give NaN, infinite, negative or above-peak learning rates, and misspelt ones', function()
      local opt = ts.optim.SGD(nn.Linear(2, 2), {lr = 1})
      local S = ts.optim.schedule
      for _, case in ipairs({
         {S.step, {step_size = 0}, 'step schedule: step_size must be a number above 0, got 0'},
         {S.step, {}, 'step schedule: step_size must be a number above 0, got nil'},
         {S.step, {step_size = 0 / 0}, 'step_size must be a number above 0, got nan'},
         {S.step, {step_size = 2, gamma = -1}, 'step schedule: gamma must be a number >= 0, got -1'},
         {S.step, {step_size = 2, gama = 0.5}, 'step schedule: unknown option gama (known: gamma, step_size)'},
         {S.cosine, {total = 0 / 0}, 'cosine schedule: total (number of updates) must be a whole number >= 1, got nan'},
         {S.cosine, {total = 10, warmup = 1.5}, 'cosine schedule: warmup must be a whole number >= 0, got 1.5'},
         {S.cosine, {total = 10, min_factor = -1}, 'cosine schedule: min_factor must be a number from 0 to 1, got -1'},
         {S.cosine, {total = 10, warmpu = 2}, 'cosine schedule: unknown option warmpu'},
         {S.cosine, {total = 2, warmup = 2}, 'cosine schedule: total (number of updates) must exceed warmup'},
         {S.onecycle, {total = 10, final_div_factor = 0}, 'onecycle schedule: final_div_factor must be a number above 0, got 0'},
         {S.onecycle, {total = 10, div_factor = -1}, 'div_factor must be a number above 0'},
         {S.onecycle, {total = 10, pct_start = 0 / 0}, 'onecycle schedule: pct_start must be a number from 0 to 1, got nan'},
         {S.onecycle, {total = 1}, 'onecycle schedule: total (number of updates) must be a whole number >= 2, got 1'},
         {S.onecycle, {total = 10, max_lr = 3}, 'onecycle schedule: unknown option max_lr'},
         {S.swa, {start = 1, factor = math.huge}, 'swa schedule: factor must be a number >= 0, got inf'},
         {S.swa, {start = 1, factor = 0.5, anneal = 0 / 0}, 'swa schedule: anneal must be a whole number >= 0, got nan'},
         {S.swa, {start = 1, factor = 0.5, base = 3}, 'swa schedule: base must be a schedule, got number'},
         {S.swa, {start = 1}, 'swa schedule: factor must be a number >= 0, got nil'},
      }) do
         local err = t.raises(function() local s = case[1](opt, case[2]) end, case[3])
         t.truthy(err:find('test_train.lua:', 1, true), 'at the caller: ' .. err)
         t.eq(opt:lr(), 1, 'the lr untouched: ' .. case[3])
      end
      t.raises(function() local s = S.cosine(opt) end, 'cosine schedule: the options must be a table, got nil')
      t.raises(function() local s = S.cosine(nil, {total = 3}) end, 'cosine schedule: the first argument must be an optimizer, got nil')
      -- what ts.train gives is taken: a fractional step_size (epochs times updates), gamma 0, warmup 0
      local s = S.step(opt, {step_size = 1.5, gamma = 0})
      s:step(); s:step()
      t.eq(opt:lr(), 0)
      S.cosine(opt, {total = 1, warmup = 0})
      t.eq(opt:lr(), 1)
   end)

   t.test('optimizers refuse parameters that would train nothing: no groups, modules or tensors for groups, options among them', function()
      local l = nn.Linear(2, 2)
      for _, case in ipairs({
         -- each made an optimizer over nothing (or nothing of a group) that trained nothing, or failed at opt:lr()
         {{}, 'SGD: no parameter groups (an empty list)'},
         {{l, nn.Linear(2, 2)}, 'SGD: group 1 must be a table {params = ..., lr = ...}, got a Linear'},
         {{l.weight, l.bias}, 'SGD: group 1 must be a table {params = ..., lr = ...}, got a tensor [2x2]'},
         {{{params = {l.weight, l.bias}}}, 'SGD: a group needs params = a module or {params, grads} (two lists of tensors), got a list of tensors'},
         {{{params = {{}, {l.grad.weight}}}}, "SGD: a group's {params, grads} holds 0 parameters and 1 gradients"},
         {{params = l, lr = 0.5}, 'SGD: a single group must be in a list, {{params = ..., lr = ...}}'},
         -- the lr in the wrong table, and a group after a hole, were skipped
         {{{params = l}, lr = 0.5}, 'SGD: the list of groups holds the key lr; options go in the second argument'},
         {{{params = l}, nil, {params = nn.Linear(2, 2)}}, 'SGD: group 2 must be a table {params = ..., lr = ...}, got nil'},
         {{{params = l, lr = '0.1'}}, 'SGD: lr must be a finite number, got "0.1"'},
      }) do
         local err = t.raises(function() ts.optim.SGD(case[1], {lr = 1}) end, case[2])
         t.truthy(err:find('test_train.lua:', 1, true), 'at the caller: ' .. err)
      end
      -- what is a group stays one: {params, grads} given alone or in a group, and a group of no parameters
      t.eq(#ts.optim.SGD({{l.weight}, {l.grad.weight}}, {lr = 1}).groups[1].params, 1)
      t.eq(#ts.optim.SGD({{params = {{}, {}}}}, {lr = 1}).groups[1].params, 0)
   end)

   t.test('onecycle: a first phase of one update ends at the peak (0 / 0 made the lr NaN)', function()
      local opt = ts.optim.SGD(nn.Linear(2, 2), {lr = 2})
      local s = ts.optim.schedule.onecycle(opt, {total = 10, pct_start = 0.1, div_factor = 4})
      t.eq(opt:lr(), 2)
      s:step()
      t.truthy(opt:lr() < 2 and opt:lr() > 0, 'lr ' .. opt:lr())
      opt = ts.optim.SGD(nn.Linear(2, 2), {lr = 2})
      s = ts.optim.schedule.onecycle(opt, {total = 2, pct_start = 0.5})
      t.eq(opt:lr(), 2)
   end)

   t.test('updateBatchNorm: the running statistics become the exact mean and variance of the input over a dataset', function()
      local g = ts.data.synthetic{train = 37, valid = 8, test = 8, seed = 5}
      local pre = ts.data.preprocess{mean = {0.4, 0.4, 0.4}, std = {0.3, 0.3, 0.3}}
      ts.manualSeed(4)
      local conv, bn2 = nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4)
      local linear, bn1 = nn.Linear(4 * 16 * 16, 6), nn.BatchNorm1d(6)
      local net = nn.Sequential(conv, bn2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), linear, bn1)
      -- every image at once, as the loader gives them: the reference statistics of each batch norm's input
      local loader = ts.data.Loader(g.train, {batch = 37, sampler = 'sequential', preprocess = pre})
      local x
      for b in loader:epoch(1) do x = b end
      loader:close()
      local function stats(v, channels)   -- v [N, C, ...]: the per-channel mean and unbiased variance, in doubles
         local per = v:transpose(1, 2):contiguous():view(channels, -1)
         local mean, var = {}, {}
         for c = 1, channels do
            local row, s, q = per[c], 0, 0
            local m = row:numel()
            for i = 1, m do s = s + row[i] end
            mean[c] = s / m
            for i = 1, m do q = q + (row[i] - mean[c]) ^ 2 end
            var[c] = q / (m - 1)
         end
         return ts.tensor(mean), ts.tensor(var)
      end
      local m2, v2 = stats(conv:forward(x), 4)
      net:training()
      local weights = linear.weight:clone()
      -- batches of 8, 8, 8, 8 and 5: not a mean of batch means, which would weigh the last 5 images as 8
      t.eq(ts.updateBatchNorm(net, g.train, {batch = 8, preprocess = pre}), 2)
      t.near(bn2.running_mean, m2, 1e-4, 1e-5, 'BatchNorm2d mean')
      t.near(bn2.running_var, v2, 1e-4, 1e-5, 'BatchNorm2d variance')
      t.truthy(net.train, 'a model in training is left in training')
      t.near(linear.weight, weights, 0, 0, 'the weights are untouched')
      t.eq(bn2.num_batches_tracked:item(), 0, 'no batch counted as trained on')
      -- the Linear's input as the pass saw it: the first batch norm normalizing each batch by its own statistics
      -- (dropout off); the second batch norm's statistics are those of all 37 rows of the Linear's output
      local rows = ts.zeros(37, 6)
      net:evaluate()
      for _, first in ipairs({1, 9, 17, 25, 33}) do
         local xb = x:narrow(1, first, math.min(8, 38 - first))
         local m, v = stats(conv:forward(xb), 4)
         local h = (conv.output - m:view(1, 4, 1, 1)) / (v:view(1, 4, 1, 1) * (xb:size(1) * 256 - 1) / (xb:size(1) * 256) + 1e-5):sqrt()
         h = h * bn2.weight:view(1, 4, 1, 1) + bn2.bias:view(1, 4, 1, 1)
         rows:narrow(1, first, xb:size(1)):copy(linear:forward(nn.MaxPool2d(2):forward(h:clamp(0, math.huge)):contiguous():view(xb:size(1), -1)))
      end
      local m1, v1 = stats(rows, 6)
      t.near(bn1.running_mean, m1, 1e-4, 1e-4, 'BatchNorm1d mean')
      t.near(bn1.running_var, v1, 1e-4, 1e-4, 'BatchNorm1d variance')
      -- an error in the pass (a 3-channel dataset into a 1-channel network) gives back the statistics it had
      local gray_first, gray_bn = nn.BatchNorm2d(3), nn.BatchNorm2d(2)
      local gray = nn.Sequential(gray_first, nn.Conv2d(1, 2, 3), gray_bn)
      gray_bn.running_mean:fill(0.25)
      t.raises(function() ts.updateBatchNorm(gray, g.train) end, 'Conv2d')
      t.near(gray_bn.running_mean, ts.full({2}, 0.25), 0, 0, 'restored after the error')
      t.eq(gray_bn.momentum, 0.1, 'momentum restored')
      t.near(gray_first.running_mean, ts.zeros(3), 0, 0, 'a batch norm before the error restored too')
      t.raises(function() ts.updateBatchNorm(net, g.train:subset({}, 'empty')) end, 'the dataset is empty')
      t.raises(function() ts.updateBatchNorm(net, g.train, {batch = 0}) end, 'batch must be a whole number from 1 to 2^24, got 0')
   end)

   t.test('updateBatchNorm refuses a class for the model, a tensor for the dataset and a seed that is no whole number', function()
      local g = ts.data.synthetic{train = 8, valid = 2, test = 2, seed = 3}
      local net = nn.Sequential(nn.BatchNorm2d(3))
      t.raises(function() ts.updateBatchNorm(nn.Sequential, g.train) end, 'updateBatchNorm: model must be a module, got the class Sequential')
      t.raises(function() ts.updateBatchNorm(net, g.train.x) end, 'updateBatchNorm(model, ds, opts): ds must be a dataset (ts.data.Dataset), got a table that is not one')
      t.raises(function() ts.updateBatchNorm(net, g.train, {preprocess = {mean = {0.5}}}) end,
               'updateBatchNorm: preprocess must be the settings ts.data.preprocess{...} makes, got a table it did not make')
      -- the seed went to C as a uint64: 1.5 drew as 1, -1 and NaN as 2^63, a string failed in the FFI
      for _, bad in ipairs({{1.5, '1.5'}, {-1, '-1'}, {0 / 0, 'nan'}, {'x', '"x"'}}) do
         t.raises(function() ts.updateBatchNorm(net, g.train, {seed = bad[1]}) end,
                  'updateBatchNorm: seed must be a whole number from 0 to 2^53, got ' .. bad[2])
      end
      t.eq(ts.updateBatchNorm(net, g.train, {seed = 7}), 1)
      -- 9 images in batches of 4 left one image for the last batch, which a BatchNorm1d cannot take statistics of (and
      -- 7 in 3, 13 in 4, 9 in 2, where the next smaller batch leaves one too); the statistics are those of all at once
      local function stats(ds, batch)
         ts.manualSeed(5)
         local bn = nn.BatchNorm1d(4)
         ts.updateBatchNorm(nn.Sequential(nn.Flatten(), nn.Linear(32 * 32 * 3, 4), bn), ds, {batch = batch})
         return bn.running_mean, bn.running_var
      end
      for _, case in ipairs({{9, 4}, {7, 3}, {13, 4}, {9, 2}}) do
         local ds = ts.data.synthetic{train = case[1], valid = 2, test = 2, seed = 4}.train
         local mean_all, var_all = stats(ds, case[1])
         local mean, var = stats(ds, case[2])
         t.truthy(mean:allclose(mean_all, 1e-5, 1e-6) and var:allclose(var_all, 1e-5, 1e-6),
                  ('%d images in batches of %d: the statistics of all at once'):format(case[1], case[2]))
      end
      -- a loader that cannot be made (device 'gpu') left every batch norm gathering, in training mode
      local bn = nn.BatchNorm2d(3)
      local err = t.raises(function() ts.updateBatchNorm(nn.Sequential(bn), g.train, {device = 'gpu'}) end,
                           "updateBatchNorm: device must be 'cpu' or 'cuda', got \"gpu\"")
      t.truthy(err:find('test_train.lua:', 1, true), err)
      t.eq(bn.train, true, 'a fresh module trains'); t.eq(bn.gathering, nil); t.eq(bn.momentum, 0.1)
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

   t.test('gradient accumulation gives the same update as one batch k times larger, the epoch\'s short last one too', function()
      -- 256 images: four whole updates; 230: the last update is 38 images, micro-batches of 16, 16 and 6, each
      -- weighed by its share of the 38 as one batch of 38 weighs them
      for _, n in ipairs({256, 230}) do
         local g = ts.data.synthetic{train = n, valid = 10, test = 10, seed = 4}
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
            t.near(acc:stateDict()[i][2], pair[2], 1e-4, 1e-6, n .. ' images: ' .. pair[1])
         end
         local other = run(16, 1)
         t.truthy(not other:get(5).weight:allclose(big:get(5).weight, 1e-4, 1e-6), 'the test must be able to fail')
      end
   end)

   local function small_data(n)
      return ts.data.synthetic{train = n or 200, valid = 50, test = 10, seed = 6}
   end
   local function tiny_net()
      return nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                           nn.Linear(256, 43))
   end

   t.test('options that make no sense are refused, naming the option and the value', function()
      local g = small_data()
      local function bad(opts, plain)
         opts.model, opts.data, opts.quiet = opts.model or tiny_net(), opts.data or {train = g.train}, true
         t.raises(function() ts.train(opts) end, plain)
      end
      bad({lr = 0 / 0}, 'lr must be a finite number >= 0, got nan')
      bad({lr = math.huge}, 'lr must be a finite number >= 0, got inf')
      bad({epochs = -1}, 'epochs must be a whole number from 1 to 2^31, got -1')
      bad({epochs = 2.5}, 'epochs must be a whole number from 1 to 2^31, got 2.5')
      bad({epochs = 0}, 'epochs must be a whole number from 1 to 2^31, got 0')
      bad({weight_decay = -1}, 'weight_decay must be a finite number >= 0, got -1')
      bad({batch = 0}, 'batch must be a whole number from 1 to 2^24, got 0')
      bad({accumulate = 1.5}, 'accumulate must be a whole number from 1 to 2^24, got 1.5')
      -- above what C's int takes: refused as the training's option, not by the loader it makes
      bad({batch = 2 ^ 25}, 'ts.train: batch must be a whole number from 1 to 2^24, got 33554432')
      bad({seed = 2 ^ 60}, 'ts.train: seed must be a whole number from 0 to 2^53')
      bad({early_stop = 0}, 'early_stop must be a whole number >= 1, got 0')
      bad({clip = 0}, 'clip must be a finite number > 0, got 0')
      bad({label_smoothing = 1}, 'label_smoothing must be below 1')
      bad({warmpu = 2}, 'unknown option warmpu (known: ')
      local empty = ts.data.Dataset(ts.zeros({0, 32, 32, 3}, 'uint8'), ts.zeros({0}, 'int64'))
      bad({data = {train = empty}}, 'the training set has no images')
      bad({data = {train = g.train, valid = empty}}, 'the validation set has no images')
      local small = ts.data.Dataset(ts.zeros({4, 16, 16, 3}, 'uint8'), ts.zeros({4}, 'int64'))
      bad({data = {train = g.train, valid = small}}, "the validation images [4x16x16x3] are not of the training images' size")
      bad({sampler = function() return {} end}, 'the sampler gives no images for an epoch')
      bad({sampler = function() return {0, 1, nil, 3} end}, 'the sampler returned a list with holes (position 3 of 4 is nil)')
      bad({sampler = function() return {0, 1.5} end}, "the sampler's position 2 holds 1.5")
      -- a sampler whose epochs differ in size: the counts of updates and of each batch's share would be wrong
      local calls = 0
      local function growing()
         calls = calls + 1
         local order = {}
         for i = 1, 40 * calls do order[i] = (i - 1) % g.train:size() end
         return order
      end
      bad({sampler = growing, epochs = 2, batch = 16}, 'the sampler gave 80 images for epoch 1 and 40 before')
      -- options once checked only where they were used, after the run directory had been written: refused first,
      -- and the run directory is left as it was (not made)
      local dir = t.tmpdir() .. '/never'
      for opts, words in pairs({
         [{sampler = 'bogus'}] = 'sampler must be one of downsample, sequential, shuffle, sqrt, upsample',
         [{precision = 'fp16'}] = "precision must be 'fp32' or 'bf16', got fp16",
         [{device = 'gpu'}] = "device must be 'cpu' or 'cuda', got \"gpu\"",
         [{augment = 5}] = 'augment must be the settings ts.data.augment{...} makes, got number 5',
         [{preprocess = 'x'}] = 'preprocess must be the settings ts.data.preprocess{...} makes, got string "x"',
         [{workers = 100000}] = 'workers must be a whole number from 1 to 32, got 100000',
         [{nesterov = 'false'}] = 'nesterov must be true or false, got "false"',
         [{warmup = 5, epochs = 1}] = 'warmup (5 epochs) is longer than the training (1 epochs)',
         [{class_weights = {1, -1}}] = 'ts.train: class_weights: class weight 2 (class 1) is -1',
         [{class_weights = ts.zeros(43)}] = 'ts.train: class_weights: the class weights are all 0',
         [{on_epoch = 5}] = 'on_epoch must be a function(epoch, model, optimizer), got number',
         -- a workers count the loader refuses (33 to 63) failed there, after the run directory was made
         [{workers = 40}] = 'workers must be a whole number from 1 to 32, got 40',
         [{preprocess = {mean = {0.5}}}] = 'preprocess must be the settings ts.data.preprocess{...} makes, got a table it did not make',
         [{augment = ts.data.preprocess{}}] = 'augment must be the settings ts.data.augment{...} makes, got the settings ts.data.preprocess',
         [{data = {train = {x = 1}}}] = 'ts.train: data.train must be a dataset (ts.data.Dataset), got a table that is not one',
      }) do
         opts.run = dir
         bad(opts, words)
         t.truthy(not ts.files.exists(dir), 'the run directory was made for a refused option: ' .. words)
      end
      -- the script options: a boolean that is not one is refused as a number that is not one is
      local rc, out = t.sh(t.tshost .. " -e 'ts.args = {quiet = \"maybe\"} ts.options{quiet = false}'")
      t.truthy(rc ~= 0 and out:find('option quiet: expected true or false, got "maybe"', 1, true), out)
   end)

   -- n random images of three classes, a training of them takes milliseconds
   local function few_images(n)
      local y = ts.zeros({n}, 'int64')
      for i = 1, n do y[i] = (i - 1) % 3 end
      return ts.data.Dataset(ts.randn(n, 32, 32, 3):mul(40):add(128):byte(), y)
   end

   t.test('ts.train refuses an optimizer, a schedule or groups it cannot use before the run directory is made', function()
      local ds, dir = few_images(8), t.tmpdir() .. '/never'
      local function bad(opts, plain)
         opts.model, opts.data, opts.quiet, opts.batch = opts.model or tiny_net(), {train = ds}, true, 4
         local err = t.raises(function() ts.train(opts) end, plain)
         t.truthy(err:find('test_train.lua:', 1, true), 'at the caller: ' .. err)
         t.truthy(not ts.files.exists(dir), 'the run directory was made for: ' .. plain)
      end
      -- unknown names were refused once the run directory had been made
      bad({optimizer = 'sgdd', run = dir}, "ts.train: optimizer must be 'sgd', 'adam', 'adamw' or an optimizer")
      bad({schedule = 'cosin', run = dir}, "ts.train: schedule must be 'cosine', 'onecycle', 'step' or 'none', got \"cosin\"")
      bad({param_groups = {}, run = dir}, 'ts.train: param_groups: SGD: no parameter groups')   -- failed at opt:lr()
      bad({param_groups = {{params = tiny_net(), lr = -1}}, run = dir}, 'ts.train: param_groups: SGD: lr must be >= 0')
      -- groups or an optimizer of another model trained that one: this one came back untrained, without a word
      bad({param_groups = {{params = tiny_net()}}, run = dir}, "ts.train: tensor 1 that the param_groups updates is not the model's")
      bad({optimizer = ts.optim.SGD(tiny_net(), {lr = 0.1}), run = dir}, "tensor 1 that the optimizer updates is not the model's")
      bad({lr = '0.1'}, 'ts.train: lr must be a finite number >= 0, got "0.1"')
      t.raises(function() ts.train() end, 'ts.train: the options must be a table, got nil')   -- failed inside pairs
      t.writefile(dir, 'a file')
      local err = t.raises(function() ts.train{model = tiny_net(), data = {train = ds}, quiet = true, run = dir} end,
                           'ts.train: cannot make the folder ' .. dir .. ': ' .. dir .. ': a file of that name is in the way')
      t.truthy(err:find('test_train.lua:', 1, true), 'at the caller: ' .. err)
      -- one update in all: the schedule's own error named a total the caller never gave, at a line of train.lua
      t.raises(function() ts.train{model = tiny_net(), data = {train = ds}, quiet = true, batch = 8, epochs = 1,
                                   schedule = 'onecycle'} end,
               "ts.train: schedule 'onecycle' needs 2 updates or more, and 1 epoch(s) of 1 update(s) are 1")
   end)

   t.test('a run is resumed only to as many epochs as it has or more; one that early stopping ended stays ended', function()
      local ds, dir = few_images(8), t.tmpdir()
      local function run(name, o)
         o.model, o.data, o.quiet, o.batch, o.run = tiny_net(), o.data or {train = ds}, true, 4, dir .. '/' .. name
         return ts.train(o)
      end
      local function lines(name)
         local n = 0
         for _ in io.lines(dir .. '/' .. name .. '/metrics.jsonl') do n = n + 1 end
         return n
      end
      run('a', {epochs = 3})
      -- it ran no epoch and returned the run of 3 as a training of 2
      t.raises(function() run('a', {epochs = 2}) end, 'has trained 3 epochs, more than epochs = 2: give epochs = 3 or more')
      t.eq(#run('a', {epochs = 3}).history, 3, 'the same command again: the run as it is')
      -- a checkpoint it cannot read was taken for none: the run started again, over its metrics
      local ckpt = dir .. '/a/checkpoint.safetensors'
      os.rename(ckpt, ckpt .. '.kept')
      ts.files.mkdirs(ckpt)
      t.raises(function() run('a', {epochs = 4}) end, ckpt .. ': is a directory')
      t.eq(lines('a'), 3, 'metrics.jsonl kept')
      -- lr 0: epoch 1 is the best, early_stop = 1 ends the run after epoch 2; each run again trained one more epoch
      local early = {epochs = 6, lr = 0, schedule = 'none', early_stop = 1, data = {train = ds, valid = few_images(6)}}
      run('b', early)
      t.eq(lines('b'), 2)
      local weights = ts.load(dir .. '/b/checkpoint.safetensors')
      t.eq(#run('b', early).history, 2)
      t.eq(lines('b'), 2, 'the ended run was trained further')
      local again = ts.load(dir .. '/b/checkpoint.safetensors')
      for name, v in pairs(weights) do t.near(again[name], v, 0, 0, name) end
      -- more patience goes on; a run trained without early stopping is no run it ended, whatever its bad epochs
      t.eq(#run('b', {epochs = 3, lr = 0, schedule = 'none', early_stop = 2, data = early.data}).history, 3)
      local plain = {epochs = 2, lr = 0, schedule = 'none', data = early.data}
      run('c', plain)
      plain.epochs, plain.early_stop = 3, 1
      t.eq(#run('c', plain).history, 3, 'a run without early stopping said it had stopped')
      -- a config.json that is no JSON object failed on an index
      t.writefile(dir .. '/b/config.json', '5')
      t.raises(function() run('b', early) end, 'ts.train: ' .. dir .. '/b/config.json: not a run\'s record (a JSON object), got 5')
   end)

   t.test('evaluate refuses scores that are no [N, classes] or not finite, rather than give an accuracy of them', function()
      local g = small_data()
      t.raises(function() ts.evaluate(ts.nn.Sequential(ts.nn.Conv2d(3, 4, 3, {padding = 1})), g.train) end,
               'evaluate: the model gives [')
      local net = tiny_net()
      for _, p in ipairs(net:parameters()) do p:fill(0 / 0) end
      t.raises(function() ts.evaluate(net, g.train) end, "evaluate: the model's scores hold NaN or infinities")
      t.raises(function() ts.evaluate(tiny_net(), g.train, {temprature = 2}) end, 'evaluate: unknown option temprature')
      t.raises(function() ts.evaluate(tiny_net(), g.train, {batch = 2.5}) end, 'evaluate: batch must be a whole number from 1 to 2^24, got 2.5')
      t.raises(function() ts.evaluate(tiny_net(), g.train, {classes = -5}) end, 'evaluate: classes must be a whole number from 1 to 10000, got -5')
      -- more classes than a confusion matrix holds failed inside it, naming a line of train.lua
      local wide = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10001))
      local err = t.raises(function() local e = ts.evaluate(wide, g.train) end,
                           'evaluate: the model scores 10001 classes, more than the 10000 a confusion matrix holds')
      t.truthy(err:find('test_train.lua:%d+: ') ~= nil, 'not at the caller: ' .. err)
      t.raises(function() ts.evaluate(tiny_net(), g.train, {tta = {views = 2, seed = 'x'}}) end, 'tta seed must be a whole number')
      -- the confusion matrix takes class ids: a fraction (0.9 as a float tensor read as class 0), a NaN or no class
      -- count is refused by name
      t.raises(function() ts.metrics.confusion({0.5, 1}, {0, 1}, 3) end, 'confusion: prediction 1 is 0.5, not a class id in 0..2')
      t.raises(function() ts.metrics.confusion(ts.tensor({0, 1.7}), ts.tensor({0, 1}), 3) end, 'prediction 2 is 1.70000')
      t.raises(function() ts.metrics.confusion({0}, {0 / 0}, 3) end, 'confusion: target 1 is nan')
      t.raises(function() ts.metrics.confusion({0}, {0}) end, 'confusion: classes must be a whole number from 1')
      t.raises(function() ts.metrics.mostConfused({classes = 2}) end, 'mostConfused: expected a confusion matrix')
   end)

   -- an error of a check here names the call and points at the line that called it (this file), not inside the library
   local function at_caller(err) return err:find('test_train.lua:%d+: ') ~= nil end

   t.test('the loader refuses what is no dataset, settings ts.data did not make, and workers, flips, drop_last, device it cannot take', function()
      local g = small_data(20)
      local function bad(ds, opts, words)
         local err = t.raises(function() local l = ts.data.Loader(ds, opts) end, words)
         t.truthy(at_caller(err), 'not at the caller: ' .. err)
      end
      -- no dataset: indexed inside
      bad(nil, {}, 'Loader(ds, opts): ds must be a dataset (ts.data.Dataset), got nil')
      bad({x = g.train.x}, {}, 'ds must be a dataset (ts.data.Dataset), got a table that is not one')
      -- settings tables not made by ts.data: a plain preprocess reached C as none (unnormalized images, no word), a plain
      -- augment or a number failed on indexing, the one kind for the other in the FFI
      bad(g.train, {preprocess = {mean = {0.5, 0.5, 0.5}, std = {0.1, 0.1, 0.1}}},
          'Loader: preprocess must be the settings ts.data.preprocess{...} makes, got a table it did not make')
      bad(g.train, {augment = {rotate = 10}}, 'Loader: augment must be the settings ts.data.augment{...} makes')
      bad(g.train, {augment = 5}, 'augment must be the settings ts.data.augment{...} makes, got number 5')
      bad(g.train, {augment = ts.data.preprocess{}}, 'got the settings ts.data.preprocess{...} makes')
      bad(g.train, {preprocess = ts.data.augment{}}, 'got the settings ts.data.augment{...} makes')
      -- workers cut from 2.5 to 2, or reaching C as a depth of -2^31; drop_last = 0 true in Lua
      bad(g.train, {workers = 2.5}, 'Loader: workers must be a whole number from 1 to 32, got 2.5')
      bad(g.train, {workers = 2 ^ 40}, 'got 1099511627776')
      bad(g.train, {workers = 'x'}, 'got "x"')
      bad(g.train, {drop_last = 0}, 'Loader: drop_last must be true or false, got 0')
      bad(g.train, {device = 'gpu'}, "Loader: device must be 'cpu' or 'cuda', got \"gpu\"")
      bad(g.train, {sampler = {}}, 'Loader: sampler must be one of downsample, sequential, shuffle, sqrt, upsample or a function')
      -- flip maps: a number failed on indexing, a class of 1.5 was cut to 1, one of 1000 labelled mirrored images 1000
      local flip = ts.data.augment{flip = 1}
      bad(g.train, {augment = flip, flips = 5}, 'Loader: flips must be a table {[class] = class of its mirror image}, got 5')
      bad(g.train, {augment = flip, flips = {[1] = 1.5}}, 'Loader: flips maps 1 to 1.5; both must be class ids')
      bad(g.train, {augment = flip, flips = {[0] = 1000}}, 'flips maps 0 to 1000')
      bad(g.train, {augment = flip, flips = {['11'] = 11}}, 'flips maps "11" to 11')
      -- what it takes still goes
      local l = ts.data.Loader(g.train, {batch = 8, drop_last = true, workers = 2, augment = flip, flips = {[3] = 3},
                                         preprocess = ts.data.preprocess{mean = {0.5}, std = {0.25}}, device = 'cpu'})
      local n = 0
      for x in l:epoch() do n = n + x:size(1) end
      t.eq(n, 16)
      -- ts.data.batch takes the same checks
      t.raises(function() ts.data.batch(g.train, {1}, {preprocess = {mean = {0.5}}}) end,
               'ts.data.batch: preprocess must be the settings ts.data.preprocess{...} makes')
      t.raises(function() ts.data.batch(nil, {1}) end, 'ts.data.batch(ds, positions, opts): ds must be a dataset')
   end)

   t.test('Loader:epoch refuses a first batch or seed that is no whole number, and an iterator a later epoch stopped', function()
      local g = small_data(20)
      local aug = ts.data.augment{rotate = 20, noise = 0.1}
      local l = ts.data.Loader(g.train, {batch = 4, sampler = 'sequential', augment = aug})
      -- seeds go to C as a uint64: 1.5 drew seed 1's images, -0.5 seed 0's, NaN and 1e30 those of 2^63
      for _, seed in ipairs({1.5, -0.5, 0 / 0, 1e30, '5'}) do
         local err = t.raises(function() local it = l:epoch(1, seed) end, 'Loader:epoch(first, seed): seed must be a whole number from 0 to 2^53')
         t.truthy(at_caller(err), err)
      end
      t.raises(function() ts.data.batch(g.train, {1}, {augment = aug, seed = 1.5}) end, 'ts.data.batch: seed must be a whole number')
      -- a first batch of 1.5 started at batch 1, NaN reached C as -2^31
      for _, first in ipairs({1.5, 0, 0 / 0, '2'}) do
         t.raises(function() local it = l:epoch(first) end, 'Loader:epoch(first, seed): first (a batch) must be a whole number from 1 to 2^31')
      end
      -- whole seeds give their draws, the same each time
      local a = l:epoch(2, 7)()
      t.near(l:epoch(2, 7)(), a, 0, 0)
      t.truthy(not l:epoch(2, 8)():equal(a), 'another seed, other draws')
      -- two epochs at once: the first one's iterator went on with the second's batches without a word
      local first_epoch = l:epoch(1, 3)
      first_epoch()
      local second = l:epoch(3, 3)
      t.raises(first_epoch, 'Loader: this epoch was stopped by a later loader:epoch() (a loader runs one epoch at a time)')
      local _, y = second()
      t.eq(y[1], g.train.y[9], 'the later epoch goes on from its own start')
      l:close()
   end)

   t.test('evaluate refuses a dataset, preprocess, tta or option it cannot use, at the caller, before evaluating', function()
      local g = small_data(20)
      local net = tiny_net()
      local function bad(ds, opts, words)
         local err = t.raises(function() local e = ts.evaluate(net, ds, opts) end, words)
         t.truthy(at_caller(err), 'not at the caller: ' .. err)
      end
      bad({x = g.test.x, y = g.test.y}, {}, 'evaluate(model, dataset, opts): dataset must be a dataset (ts.data.Dataset), got a table that is not one')
      -- no images: refused by the confusion matrix under its name (and with class names an accuracy of 0)
      bad(ts.data.Dataset(ts.zeros({0, 32, 32, 3}, 'uint8'), ts.zeros({0}, 'int64'), {[0] = 'a'}), {},
          'evaluate: the dataset has no images to evaluate')
      -- a plain table as preprocess evaluated the images unnormalized, without a word
      bad(g.test, {preprocess = {mean = {0.5, 0.5, 0.5}, std = {0.1, 0.1, 0.1}}},
          'evaluate: preprocess must be the settings ts.data.preprocess{...} makes, got a table it did not make')
      bad(g.test, {preprocess = ts.data.augment{}}, 'got the settings ts.data.augment{...} makes')
      bad(g.test, {device = 'gpu'}, "evaluate: device must be 'cpu' or 'cuda', got \"gpu\"")
      bad(g.test, {logits = 'no'}, 'evaluate: logits must be true or false, got "no"')
      bad(g.test, {auto_microbatch = 1}, 'evaluate: auto_microbatch must be true or false, got 1')
      -- the shared count checks, called in tail position, lost their own frame and pointed one level too high
      bad(g.test, {batch = 0}, 'evaluate: batch must be a whole number from 1 to 2^24, got 0')
      bad(g.test, {tta = 0}, 'evaluate: tta views must be a whole number from 1 to 1024, got 0')
      local err = t.raises(function() local l = ts.data.Loader(g.test, {batch = 0}) end, 'Loader: batch must be')
      t.truthy(at_caller(err), 'not at the caller: ' .. err)
      err = t.raises(function() local n = ts.updateBatchNorm(net, g.test, {batch = 2.5}) end, 'updateBatchNorm: batch must be')
      t.truthy(at_caller(err), 'not at the caller: ' .. err)
      -- tta: {view = 2} evaluated 8 views; a plain augment failed on indexing inside
      bad(g.test, {tta = {view = 2}}, 'evaluate: tta: unknown option view (known: augment, seed, views)')
      bad(g.test, {tta = {views = 2, augment = {rotate = 5}}}, 'evaluate: tta augment must be the settings ts.data.augment{...} makes')
      bad(g.test, {tta = {views = 2, augment = ts.data.preprocess{}}}, 'got the settings ts.data.preprocess{...} makes')
      -- with auto_microbatch (the evaluation inside a pcall) the errors point at the caller too
      bad(g.test, {auto_microbatch = true, tta = {views = 2, seed = 1.5}}, 'evaluate: tta seed must be a whole number')
      local few = nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(256, 2))
      for _, opts in ipairs({{}, {auto_microbatch = true}}) do
         local err = t.raises(function() local e = ts.evaluate(few, g.test, opts) end, 'is outside the model\'s 2 classes')
         t.truthy(at_caller(err), 'not at the caller: ' .. err)
      end
   end)

   t.test('ensemble refuses members of other images, labels of other images or not whole, and logits that are no [N, classes]', function()
      local g = ts.data.synthetic{train = 8, valid = 10, test = 10, seed = 6}
      ts.manualSeed(2)
      local net, net2 = tiny_net(), tiny_net()
      local a, b = ts.evaluate(net, g.test, {logits = true}), ts.evaluate(net2, g.test, {logits = true, tta = 2})
      t.eq(a.data, g.test:fingerprint())
      local e = ts.ensemble({a, b}, g.test.y)
      t.eq(e.data, a.data)
      t.eq(e.pred:numel(), 10)
      -- evaluations of as many other images, or the labels of other images, were averaged without a word
      local other = ts.evaluate(net2, g.valid, {logits = true})
      local function bad(evals, y, words)
         local err = t.raises(function() local r = ts.ensemble(evals, y) end, words)
         t.truthy(at_caller(err), 'not at the caller: ' .. err)
      end
      bad({a, other}, g.test.y, 'ensemble: member 2 evaluated other images than member 1')
      bad({a, b}, g.valid.y, 'ensemble: y are not the labels of the images the members evaluated')
      -- labels read through a pointer as int64: 1.5 was class 1, then refused by the confusion matrix under its name
      bad({a, b}, g.test.y:float():add(0.5), 'ensemble: label 1 is ')
      bad({a, b}, ts.full({10}, 0 / 0), 'is nan; labels are class ids, whole numbers')
      -- a member's logits as a table or 1-d failed inside, on a method or a size
      bad({a, {logits = {{1, 2}}}}, g.test.y, "ensemble: member 2's logits must be [N, classes], got {")
      bad({a, {logits = ts.zeros(10)}}, g.test.y, "ensemble: member 2's logits must be [N, classes], got [10]")
      bad({a, {logits = ts.zeros({10, 43}, 'int64')}}, g.test.y, 'ensemble: member 2 has int64 scores; float scores are needed')
      bad({{logits = ts.zeros(0, 3)}}, ts.zeros({0}, 'int64'), 'ensemble: the members scored no images')
      -- a label outside the classes pointed at the caller's caller
      bad({{logits = ts.zeros(2, 2)}}, ts.tensor({0, 2}, 'int64'), "ensemble: label 2 of image 2 is outside the model's 2 classes")
   end)

   t.test('a resume that fails at its first step leaves the run\'s config.json as it was', function()
      local g = small_data()
      local dir = t.tmpdir() .. '/run'
      ts.train{model = tiny_net(), data = {train = g.train}, epochs = 1, batch = 16, run = dir, quiet = true}
      local before = t.readfile(dir .. '/config.json')
      -- more epochs at another rate, with class weights that do not fit the model: refused by the loss
      t.raises(function()
         ts.train{model = tiny_net(), data = {train = g.train}, epochs = 3, lr = 0.3, batch = 16, run = dir, quiet = true,
                  class_weights = ts.ones(10)}
      end, 'class weights: expected shape')
      t.eq(t.readfile(dir .. '/config.json'), before, 'config.json now records a training that never ran')
   end)

   -- the mixed distillation loss computed here in double from the teachers' outputs, as the kernel's comment
   -- states it: (1 - w) CE + w T^2 / N sum_i KL(mean_j softmax(t_j / T) || softmax(z / T))
   local function distill_by_hand(z, teacher_logits, target, w, temperature, smoothing)
      local n, c = z:size(1), z:size(2)
      local function softmax(row, s)
         local m, out, sum = -math.huge, {}, 0
         for k = 1, c do m = math.max(m, row[k]) end
         for k = 1, c do out[k] = math.exp((row[k] - m) * s); sum = sum + out[k] end
         for k = 1, c do out[k] = out[k] / sum end
         return out
      end
      local ce, kl = 0, 0
      for i = 1, n do
         local zi = {}
         for k = 1, c do zi[k] = z[i][k] end
         local p1 = softmax(zi, 1)
         local y = target[i] + 1
         ce = ce + (1 - smoothing) * -math.log(p1[y])
         for k = 1, c do ce = ce + smoothing / c * -math.log(p1[k]) end
         local q, p = softmax(zi, 1 / temperature), {}
         for k = 1, c do p[k] = 0 end
         for _, tl in ipairs(teacher_logits) do
            local row = {}
            for k = 1, c do row[k] = tl[i][k] end
            local pt = softmax(row, 1 / temperature)
            for k = 1, c do p[k] = p[k] + pt[k] / #teacher_logits end
         end
         for k = 1, c do kl = kl + p[k] * (math.log(p[k]) - math.log(q[k])) end
      end
      return (1 - w) * ce / n + w * temperature ^ 2 * kl / n
   end

   t.test('mix: MixUp blends each image with its partner in reverse order, CutMix pastes one box, lam from Beta', function()
      ts.manualSeed(4)
      local x, y = ts.randn(6, 2, 4, 5), ts.tensor({0, 1, 2, 3, 4, 5}, 'int64')
      local up = ts.data.mix{mixup = 0.4}
      local d = up:draw(4, 5)
      t.truthy(d.lam > 0 and d.lam < 1 and not d.box, 'a mixup draw: ' .. tostring(d.lam))
      local out, y2, lam = up:apply(x, y, d)
      t.eq(lam, d.lam)
      for i = 1, 6 do
         t.eq(y2:get(i), 6 - i, 'the partner of image i is image 7 - i')
         t.near(out[i], x[i] * lam + x[7 - i] * (1 - lam), 1e-6, 1e-7, 'image ' .. i)
      end
      -- CutMix: inside the box the partner, outside the image itself; lam is the share left outside
      local cut = ts.data.mix{cutmix = 1}
      local boxes = 0
      for _ = 1, 20 do
         local c = cut:draw(4, 5)
         if c.box then
            boxes = boxes + 1
            local b = c.box
            local o = cut:apply(x, y, c)
            t.near(c.lam, 1 - b[3] * b[4] / 20, 1e-12)
            t.truthy(b[1] >= 1 and b[2] >= 1 and b[1] + b[3] - 1 <= 4 and b[2] + b[4] - 1 <= 5, 'the box lies in the image')
            for i = 1, 6 do
               for r = 1, 4 do
                  for q = 1, 5 do
                     local inside = r >= b[1] and r < b[1] + b[3] and q >= b[2] and q < b[2] + b[4]
                     local from = inside and x[7 - i] or x[i]
                     t.eq(o:get(i, 2, r, q), from:get(2, r, q), ('image %d pixel %d,%d'):format(i, r, q))
                  end
               end
            end
         else
            t.eq(c.lam, 1, 'a box clipped to nothing leaves the images as they are')
         end
      end
      t.truthy(boxes >= 10, 'most cutmix draws cut a box: ' .. boxes)
      -- Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1)); prob: the share of mixed batches
      local mix = require('ts.mix')
      for _, a in ipairs({0.4, 2}) do
         local n, sum, sq = 4000, 0, 0
         for _ = 1, n do
            local v = mix.beta(a)
            t.truthy(v >= 0 and v <= 1)
            sum, sq = sum + v, sq + v * v
         end
         local mean = sum / n
         t.near(mean, 0.5, 0, 0.03, 'Beta mean for a = ' .. a)
         t.near(sq / n - mean * mean, 1 / (4 * (2 * a + 1)), 0, 0.012, 'Beta variance for a = ' .. a)
      end
      local some, hits = ts.data.mix{mixup = 1, cutmix = 1, prob = 0.3, switch = 0}, 0
      for _ = 1, 1000 do
         local e = some:draw(4, 5)
         if e then
            hits = hits + 1
            t.truthy(not e.box, 'switch 0: mixup only')
         end
      end
      t.truthy(hits > 250 and hits < 350, ('prob 0.3: %d of 1000 batches mixed'):format(hits))
      -- settings that make no sense are refused, in ts.data.mix and in ts.train
      t.raises(function() ts.data.mix{} end, 'mix: give mixup or cutmix an alpha above 0')
      t.raises(function() ts.data.mix{mixup = -1} end, 'mix: mixup must be a Beta parameter alpha >= 0')
      t.raises(function() ts.data.mix{cutmix = 0 / 0} end, 'mix: cutmix must be a Beta parameter alpha >= 0')
      t.raises(function() ts.data.mix{mixup = 1, prob = 1.5} end, 'mix: prob must be a probability in [0, 1]')
      t.raises(function() ts.data.mix{mixup = 1, alpha = 1} end, 'mix: unknown setting alpha')
      local g = ts.data.synthetic{train = 16, valid = 8, test = 8, seed = 2}
      t.raises(function() ts.train{model = tiny_net(), data = {train = g.train}, mix = {mixup = 1, prob = -1}, quiet = true} end,
               'ts.train: mix: prob must be a probability in [0, 1], got -1')
      t.raises(function() ts.train{model = tiny_net(), data = {train = g.train}, mix = {mixup = 1}, quiet = true,
                                   distill = {teachers = {tiny_net()}}} end, 'mix and distill together are not supported')
   end)

   t.test('mix: a CutMix draw for other images, or a lam that is not its box\'s share, is refused by apply', function()
      ts.manualSeed(6)
      local cut, y = ts.data.mix{cutmix = 1}, ts.tensor({0, 1}, 'int64')
      local d
      repeat d = cut:draw(8, 8) until d.box
      -- drawn for 8x8, applied to 16x16: the box covers a quarter of the share its lam says was pasted
      t.raises(function() cut:apply(ts.randn(2, 1, 16, 16), y, d) end, 'd.lam is ' .. tostring(d.lam) .. ' but its box leaves')
      -- a box beyond the images failed in narrow, without naming the call
      t.raises(function() cut:apply(ts.randn(2, 1, 4, 4), y, {lam = 0.75, box = {3, 3, 4, 4}}) end,
               'mix:apply(x, y, d): d.box must be {y, x, h, w} inside the 4x4 images, got {3, 3, 4, 4}')
      t.raises(function() cut:apply(ts.randn(2, 1, 4, 4), y, {lam = 0.9, box = {1, 1, 4, 4}}) end,
               'd.lam is 0.9 but its box leaves 0 of the 4x4 images')
      local _, _, lam = cut:apply(ts.randn(2, 1, 4, 4), y, {lam = 0.75, box = {2, 2, 2, 2}})
      t.eq(lam, 0.75)
      t.raises(function() ts.data.mix{mixup = 1}:apply(ts.zeros({2, 1, 2, 2}, 'uint8'), y, {lam = 0.5}) end,
               'mix:apply(x, y, d): mixup blends float32 images, got uint8 ones')
   end)

   t.test('mix: the loss and gradient of a mixed batch are lam L(y) + (1 - lam) L(y reversed), in micro-batches too', function()
      ts.manualSeed(5)
      local m, crit = tiny_net(), nn.CrossEntropyLoss{label_smoothing = 0.1}
      local x, y = ts.randn(10, 3, 32, 32), ts.zeros({10}, 'int64')
      for i = 1, 10 do y[i] = (i * 5) % 43 end
      local mixer = ts.data.mix{mixup = 1}
      local xm, y2, lam = mixer:apply(x, y, {lam = 0.3})
      local l1, g1, c1 = t.batchGradients(m, crit, xm, y, 10, {y = y2, lam = lam})
      local l2, g2, c2 = t.batchGradients(m, crit, xm, y, 3, {y = y2, lam = lam})
      -- by hand: the two criteria on the mixed batch's output, the gradient mixed alike
      m:zeroGrad()
      local out = m:forward(xm)
      t.near(l1, 0.3 * crit:forward(out, y) + 0.7 * crit:forward(out, y2), 1e-5, 1e-7)
      t.near(l2, l1, 1e-5, 1e-7, 'micro-batches')
      local g = crit:backward(out, y):clone():mul_(0.3):axpy_(0.7, crit:backward(out, y2))
      m:backward(xm, g)
      local _, want = m:parameters()
      for i = 1, #want do
         t.near(g1[i], want[i], 1e-4, 1e-6, 'gradient ' .. i)
         t.near(g2[i], want[i], 1e-4, 1e-6, 'micro-batched gradient ' .. i)
      end
      -- right predictions are counted against the heavier label (here the partner's, 0.7)
      local _, arg = out:max(2)
      t.eq(c1, arg:view(-1):float():eq(y2:float()):sum())
      t.eq(c2, c1)
   end)

   t.test('mix: draw refuses sizes that are no whole numbers, apply a lam outside [0, 1] and labels that are not int64', function()
      -- a huge alpha: the two gammas' sum overflowed, and every lam was 0 (the distribution is 0.5 there)
      for _ = 1, 20 do t.near(require('ts.mix').beta(1.5e308), 0.5, 1e-12, 0) end
      local cut = ts.data.mix{cutmix = 1}
      -- a box of a fractional image gave a lam that was not its share, a NaN size a lam of NaN, nil an error inside
      t.raises(function() cut:draw(4.5, 5) end, 'mix:draw(h, w): h must be a whole number >= 1, got 4.5')
      t.raises(function() cut:draw(4, 0 / 0) end, 'mix:draw(h, w): w must be a whole number >= 1, got nan')
      t.raises(function() cut:draw() end, 'mix:draw(h, w): h must be a whole number >= 1, got nil')
      local x, y = ts.randn(2, 1, 4, 5), ts.tensor({0, 1}, 'int64')
      t.raises(function() cut:apply(x, y, {lam = 0 / 0}) end, 'mix:apply(x, y, d): d must be a draw of mix:draw(), its lam in [0, 1], got lam nan')
      t.raises(function() cut:apply(x, y, {lam = 2}) end, 'its lam in [0, 1], got lam 2')
      t.raises(function() cut:apply(x, ts.tensor{0.5, 1.7}, {lam = 0.5}) end, 'mix:apply(x, y, d): y must be int64 labels, got float32')
      -- the buffers follow x's dtype: float64 images after float32 ones came back as float32
      cut:apply(x, y, {lam = 0.5})
      t.eq(cut:apply(x:double(), y, {lam = 0.9, box = {1, 1, 1, 2}}):dtype(), 'float64')
   end)

   t.test('evaluate without a preprocess feeds a trained model the images as it was trained on them', function()
      local g = ts.data.synthetic{train = 200, valid = 60, test = 10, seed = 8}
      local dir = t.tmpdir()
      ts.manualSeed(2)
      local r = ts.train{model = {name = 'refcnn', classes = 43, widths = {4, 4, 4}, hidden = 8}, data = {train = g.train},
                         epochs = 1, batch = 40, run = dir .. '/r', quiet = true}
      local with = ts.evaluate(r.model, g.valid, {preprocess = r.preprocess, logits = true})
      -- (the identity was used: a model trained on standardized images was fed others, without a word)
      local plain = ts.evaluate(r.model, g.valid, {logits = true})
      t.near(plain.logits, with.logits, 0, 0, 'ts.train\'s model')
      local loaded = ts.models.load(dir .. '/r')
      t.near(ts.evaluate(loaded, g.valid, {logits = true}).logits, with.logits, 1e-6, 1e-6, 'ts.models.load\'s model')
      -- a preprocess given still wins
      local other = ts.evaluate(r.model, g.valid, {preprocess = ts.data.preprocess(), logits = true})
      t.truthy(not other.logits:allclose(with.logits, 1e-3, 1e-3), 'the identity given')
   end)

   t.test('clean_epochs: the last epochs see the images as they are; a resume across the switch ends as an uninterrupted run', function()
      local g = ts.data.synthetic{train = 400, valid = 100, test = 10, seed = 7}
      local aug = ts.data.augment{rotate = 15, brightness = 0.5, noise = 0.05}
      local dir = t.tmpdir()
      local function run(where, epochs, clean, augment)
         ts.manualSeed(3)
         ts.train{model = tiny_net(), data = {train = g.train, valid = g.valid}, epochs = epochs, batch = 40, lr = 0.05,
                  schedule = 'none', run = dir .. '/' .. where, quiet = true, augment = augment, clean_epochs = clean}
         return ts.load(dir .. '/' .. where .. '/checkpoint.safetensors')
      end
      local function same(a, b) for name, v in pairs(a) do t.near(b[name], v, 0, 0, name) end end
      local function losses(where)
         local out = {}
         for line in io.lines(dir .. '/' .. where .. '/metrics.jsonl') do out[#out + 1] = ts.json.decode(line).train_loss end
         return out
      end
      -- every epoch clean is the training without augmentation, to the bit
      same(run('all', 3, 3, aug), run('none', 3, 0, nil))
      -- one clean epoch: the first two are the augmented run's, the third is not
      local last = run('last', 3, 1, aug)
      run('augmented', 3, 0, aug)
      local a, b = losses('last'), losses('augmented')
      t.eq(a[1], b[1], 'epoch 1 augmented in both')
      t.eq(a[2], b[2], 'epoch 2 augmented in both')
      t.truthy(a[3] ~= b[3], 'epoch 3 clean in one only')
      -- two augmented epochs, then resumed with the last clean: as the run that was never interrupted
      run('parts', 2, 0, aug)
      same(last, run('parts', 3, 1, aug))
      t.raises(function() run('many', 3, 4, aug) end, 'clean_epochs (4) is more than the training\'s 3 epochs')
      t.raises(function() run('frac', 3, 1.5, aug) end, 'clean_epochs')
   end)

   t.test('mix in training: it learns, it changes the run, and a resumed run ends as an uninterrupted one', function()
      local g = ts.data.synthetic{train = 1000, valid = 200, test = 10, seed = 6}
      local dir = t.tmpdir()
      local function run(where, epochs, mix)
         ts.manualSeed(3)
         return ts.train{model = tiny_net(), data = {train = g.train, valid = g.valid}, epochs = epochs, batch = 40,
                         lr = 0.05, schedule = 'none', run = where, quiet = true, mix = mix}
      end
      local both = {mixup = 0.4, cutmix = 1, prob = 0.8}
      local whole = run(dir .. '/whole', 6, both)
      run(dir .. '/parts', 2, both)
      run(dir .. '/parts', 6, both)
      local a, b = ts.load(dir .. '/whole/model.safetensors'), ts.load(dir .. '/parts/model.safetensors')
      for name, v in pairs(a) do t.near(b[name], v, 0, 0, name) end
      t.truthy(whole.best.accuracy > 0.3, 'validation accuracy with mix (chance: 0.023): ' .. whole.best.accuracy)
      run(dir .. '/plain', 6)
      local plain = ts.load(dir .. '/plain/model.safetensors')
      local differs = false
      for name, v in pairs(a) do if not v:allclose(plain[name], 1e-4, 1e-6) then differs = true end end
      t.truthy(differs, 'mix changes the training')
      local config = ts.json.decode(t.readfile(dir .. '/whole/config.json'))
      t.eq(config.mix.cutmix, 1, 'the run directory records the mix')
   end)

   t.test('distillation: the loss is the hard loss mixed with the softened teachers\' divergence, as computed by hand', function()
      ts.manualSeed(21)
      local x = ts.randn(6, 5)
      local teachers = {nn.Linear(5, 4), nn.Linear(5, 4)}
      local z = ts.randn(6, 4):mul_(2)
      local target = ts.tensor({0, 3, 1, 1, 2, 0}, 'int64')
      local outs = {teachers[1]:forward(x):clone(), teachers[2]:forward(x):clone()}
      for _, case in ipairs({{w = 0.5, T = 1, e = 0}, {w = 0.3, T = 4, e = 0.1}, {w = 1, T = 2, e = 0.1}}) do
         local d = nn.DistillationLoss{teachers = teachers, weight = case.w, temperature = case.T, label_smoothing = case.e}
         t.near(d:forward(z, target, x), distill_by_hand(z, outs, target, case.w, case.T, case.e), 1e-5, 1e-6,
                ('weight %g, T %g'):format(case.w, case.T))
      end
      -- a teacher whose logit is NaN makes the loss NaN, as PyTorch's KLDivLoss (its term was skipped: a finite loss
      -- beside NaN gradients, which the training's check of the loss could not see)
      local nan_teacher = nn.Linear(5, 4)
      nan_teacher.bias:fill(0 / 0)
      local dn = nn.DistillationLoss{teachers = {nan_teacher}, weight = 0.5, temperature = 2}
      local loss_nan = dn:forward(z, target, x)
      t.truthy(loss_nan ~= loss_nan, 'a NaN teacher gave the loss ' .. tostring(loss_nan))
      -- weight 0 is the cross entropy itself, loss and gradient
      local d0 = nn.DistillationLoss{teachers = teachers, weight = 0, label_smoothing = 0.1}
      local ce = nn.CrossEntropyLoss{label_smoothing = 0.1}
      t.near(d0:forward(z, target, x), ce:forward(z, target), 1e-6)
      t.near(d0:backward(z, target, x), ce:backward(z, target), 1e-6, 1e-7)
      -- a student that already answers as its one teacher has nothing to learn from it: only the hard share is left
      local same = nn.DistillationLoss{teachers = {teachers[1]}, weight = 0.4, temperature = 3}
      local g = same:backward(outs[1], target, x):clone()
      t.near(g, nn.CrossEntropyLoss():backward(outs[1], target):mul_(0.6), 1e-5, 1e-7)
      t.near(same.output, 0.6 * nn.CrossEntropyLoss():forward(outs[1], target), 1e-5, 1e-7)
      -- the training loop's call: the loss left in a one-element tensor, the student's right predictions counted
      local loss, correct = ts.zeros(1), ts.zeros(1)
      nn.DistillationLoss{teachers = teachers, weight = 0.5, temperature = 4}:backwardInto(z, target, loss, correct, x)
      t.near(loss:get(1), distill_by_hand(z, outs, target, 0.5, 4, 0), 1e-5, 1e-6)
      local right = 0
      for i = 1, 6 do
         local best = 1
         for k = 2, 4 do if z[i][k] > z[i][best] then best = k end end
         if best - 1 == target[i] then right = right + 1 end
      end
      t.eq(correct:get(1), right)
   end)

   t.test('distillation: settings that make no sense are refused, naming them', function()
      local teacher = nn.Linear(5, 4)
      t.raises(function() nn.DistillationLoss{teachers = {}} end, 'teachers must be a list of 1 to 16 modules')
      local many = {}
      for j = 1, 17 do many[j] = teacher end
      t.raises(function() nn.DistillationLoss{teachers = many} end, 'teachers must be a list of 1 to 16 modules')
      t.raises(function() nn.DistillationLoss{teachers = {teacher, 'runs/a'}} end, 'teacher 2 must be a module, got "runs/a"')
      t.raises(function() nn.DistillationLoss{teachers = {teacher}, weight = 1.5} end, "weight (the distillation term's share) must be a number from 0 to 1")
      t.raises(function() nn.DistillationLoss{teachers = {teacher}, temperature = 0} end, 'temperature must be a finite number > 0')
      t.raises(function() nn.DistillationLoss{teachers = {teacher}, temperature = 0 / 0} end, 'temperature must be a finite number > 0')
      local d = nn.DistillationLoss{teachers = {teacher}}
      t.raises(function() d:forward(ts.randn(3, 4), {0, 1, 2}) end, "the batch's input images are needed")
      -- a teacher of other classes than the student's
      t.raises(function() d:forward(ts.randn(3, 7), {0, 1, 2}, ts.randn(3, 5)) end, 'distill: teacher logits: expected shape [1,3,7], got [1,3,4]')
      local g = small_data()
      local function bad(distill, plain, preprocess)
         t.raises(function()
            ts.train{model = tiny_net(), data = {train = g.train}, quiet = true, distill = distill, preprocess = preprocess}
         end, plain)
      end
      bad({teachers = {}}, 'distill must be {teachers = {run directories or modules}')
      bad({teachers = {teacher}, weigth = 1}, 'distill has no option weigth')
      bad({teachers = {42}}, 'teacher 1 must be a run directory or a module, got number')
      bad({teachers = {t.tmpdir() .. '/none'}}, 'config.json not found')
      bad({teachers = {teacher}, weight = -1}, "weight (the distillation term's share) must be a number from 0 to 1")
      -- a teacher run that prepared its images otherwise than the student
      local dir = t.tmpdir() .. '/teacher'
      ts.train{model = {name = 'refcnn', widths = {4, 4, 4}, hidden = 8}, data = {train = g.train, valid = g.valid}, epochs = 1,
               run = dir, quiet = true}
      bad({teachers = {dir}}, 'was trained with the preprocessing', ts.data.preprocess{mean = {0.5}, std = {0.25}})
   end)

   t.test('distillation in training: a student taught by the teacher alone (weight 1, no labels) learns the signs', function()
      local g = ts.data.synthetic{train = 2000, valid = 400, test = 400, seed = 2}
      local dir = t.tmpdir()
      local teacher = ts.train{model = {name = 'refcnn', widths = {8, 16, 32}, hidden = 64}, data = {train = g.train, valid = g.valid},
                               epochs = 10, batch = 50, lr = 0.05, run = dir .. '/teacher', quiet = true}
      t.truthy(teacher.best.accuracy > 0.75, 'teacher validation accuracy ' .. teacher.best.accuracy)
      -- the labels weigh nothing: what the student learns it learns from the teacher's probabilities
      local student = ts.train{model = {name = 'refcnn', widths = {8, 16, 32}, hidden = 64}, data = {train = g.train, valid = g.valid},
                               epochs = 10, batch = 50, lr = 0.05, run = dir .. '/student', quiet = true, seed = 5,
                               distill = {teachers = {dir .. '/teacher'}, weight = 1, temperature = 2}}
      -- 6 epochs were too few for this network, with or without a teacher (0.59-0.67 by seed): at 10 the
      -- student and a network of the labels both reach about 0.85 here
      t.truthy(student.best.accuracy > 0.7, 'student validation accuracy ' .. student.best.accuracy)
      -- the labels scrambled: a student of the teacher still learns the signs, one of the labels cannot
      local shuffled = ts.data.Dataset(g.train.x, g.train.y:clone())
      for i = 1, shuffled.y:numel() do shuffled.y[i] = (i * 7) % 43 end
      local scrambled = ts.train{model = {name = 'refcnn', widths = {8, 16, 32}, hidden = 64},
                                 data = {train = shuffled, valid = g.valid}, epochs = 6, batch = 50, lr = 0.05,
                                 quiet = true, seed = 5, preprocess = teacher.preprocess,
                                 distill = {teachers = {dir .. '/teacher'}, weight = 1, temperature = 2}}
      t.truthy(scrambled.best.accuracy > 0.6, 'student of scrambled labels ' .. scrambled.best.accuracy)
      local config = ts.json.decode(ts.files.readFile(dir .. '/student/config.json'))
      t.eq(config.distill.teachers[1], dir .. '/teacher')
      t.eq(config.distill.weight, 1)
      t.eq(config.distill.temperature, 2)
   end)

   t.test('a diverging run stops at the step, says where, keeps its last good files and never saves NaN weights', function()
      local g = small_data()
      local dir = t.tmpdir() .. '/run'
      -- three good epochs, then the same run continued with a learning rate that blows up
      ts.train{model = tiny_net(), data = {train = g.train, valid = g.valid}, epochs = 3, batch = 50, lr = 0.01,
               schedule = 'none', run = dir, quiet = true}
      local before = ts.load(dir .. '/model.safetensors')
      local err = t.raises(function()
         ts.train{model = tiny_net(), data = {train = g.train, valid = g.valid}, epochs = 6, batch = 50, lr = 1e6,
                  schedule = 'none', run = dir, quiet = true}
      end, 'training diverged and stopped')
      -- the CPU reads each step's loss; the GPU does not wait for it, and names the steps since the last reading
      t.truthy(tostring(err):find(ts.device() == 'cuda' and 'at epoch 4, between step %d+ and %d+' or 'at epoch 4, step %d'), err)
      t.truthy(tostring(err):find('The checkpoint of epoch 3', 1, true), err)
      local after = ts.load(dir .. '/model.safetensors')
      for name, w in pairs(before) do t.truthy(after[name]:equal(w), 'the best model changed: ' .. name) end
      local lines = 0
      for line in io.lines(dir .. '/metrics.jsonl') do
         lines = lines + 1
         local r = ts.json.decode(line)
         t.truthy(r.train_loss == r.train_loss and r.train_loss < math.huge)
      end
      t.eq(lines, 3)
      for name, w in pairs(ts.load(dir .. '/checkpoint.safetensors')) do
         if w:dtype() == 'float32' then t.truthy(w:sum() == w:sum() and math.abs(w:sum()) < math.huge, name) end
      end
   end)

   t.test('max_nonfinite = k skips up to k steps whose loss is not finite, and stops at the next', function()
      local g = small_data()
      local function run(allowed, poisoned)
         local net, calls = tiny_net(), 0
         local forward = net.forward
         net.forward = function(self, x)
            local y = forward(self, x)
            calls = calls + 1
            if poisoned[calls] then y:fill(0 / 0) end
            return y
         end
         return ts.train{model = net, data = {train = g.train}, epochs = 2, batch = 50, lr = 0.01, quiet = true,
                         max_nonfinite = allowed}
      end
      local r = run(1, {[3] = true})
      t.eq(r.history[1].skipped_images, 50)
      t.truthy(r.history[1].train_loss < math.huge and r.history[1].train_loss == r.history[1].train_loss)
      for _, p in ipairs(r.model:parameters()) do t.truthy(p:sum() == p:sum(), 'NaN weights after a skipped step') end
      t.raises(function() run(1, {[3] = true, [6] = true}) end, 'the loss became nan at epoch 2, step 2')
      -- with none allowed, the GPU does not read each step's loss (it names the steps since its last reading)
      t.raises(function() run(0, {[3] = true}) end, ts.device() == 'cuda' and 'the loss became nan at epoch 1, between step 1 and 4'
                                                    or 'the loss became nan at epoch 1, step 3')
   end)

   t.test('early stopping counts its bad epochs across a resume', function()
      -- lr = 0: epoch 1 sets the best score, no later epoch beats it; early_stop = 2 stops after epoch 3
      local script = t.dir .. '/scripts/train_small.lua'
      local base = t.tmpdir()
      local common = 'train=200 lr=0 schedule=none early_stop=2'
      local rc, out = t.sh(('%s %s %s epochs=6 run=%s/whole'):format(t.tshost, script, common, base))
      t.eq(rc, 0, out)
      rc, out = t.sh(('%s %s %s epochs=2 run=%s/parts && %s %s %s epochs=6 run=%s/parts'):format(
         t.tshost, script, common, base, t.tshost, script, common, base))
      t.eq(rc, 0, out)
      local function epochs(run)
         local n = 0
         for _ in io.lines(base .. '/' .. run .. '/metrics.jsonl') do n = n + 1 end
         return n
      end
      t.eq(epochs('whole'), 3)
      t.eq(epochs('parts'), 3, 'the resumed run forgot its bad epochs')
   end)

   t.test('one run directory, one writer: a second run names the process that holds it', function()
      local g = small_data()
      local dir = t.tmpdir() .. '/run'
      os.execute('mkdir -p ' .. dir)
      -- another process holds the run's lock (as a training run does) and has written its process id there
      os.execute(("flock -n %s/.lock -c 'echo 4242 > %s/.lock; sleep 20' >/dev/null 2>&1 &"):format(dir, dir))
      for _ = 1, 200 do
         if (io.open(dir .. '/.lock') or io.open('/dev/null')):read('*a'):find('4242') then break end
         os.execute('sleep 0.02')
      end
      t.raises(function()
         ts.train{model = tiny_net(), data = {train = g.train}, epochs = 1, run = dir, quiet = true}
      end, 'the run ' .. dir .. ' is in use by process 4242')
      os.execute(('pkill -f "echo 4242 > %s/.lock"'):format(dir))
      t.truthy(not io.open(dir .. '/metrics.jsonl'), 'the refused run wrote into the directory')
   end)

   t.test('a run directory is resumed only by its own network; more epochs are a resume, a wider layer is refused', function()
      local g = small_data(40)
      local dir = t.tmpdir() .. '/run'
      local function net(width)
         return nn.Sequential(nn.Conv2d(3, width, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(64 * width, 43))
      end
      ts.train{model = net(4), data = {train = g.train}, epochs = 1, batch = 20, run = dir, quiet = true}
      ts.train{model = net(4), data = {train = g.train}, epochs = 2, batch = 20, run = dir, quiet = true}
      local epochs = 0
      for _ in io.lines(dir .. '/metrics.jsonl') do epochs = epochs + 1 end
      t.eq(epochs, 2, 'the same network resumes and trains on')
      local before = t.readfile(dir .. '/checkpoint.safetensors')
      t.raises(function()
         ts.train{model = net(6), data = {train = g.train}, epochs = 3, batch = 20, run = dir, quiet = true}
      end, dir .. ' holds a run of another network (its config.json has (0): Conv2d(3, 4, kernel=3x3, stride=2, ' ..
           'padding=1)  [112 params] where this model has (0): Conv2d(3, 6,')
      t.eq(t.readfile(dir .. '/checkpoint.safetensors') == before, true, 'the refused run touched the checkpoint')
   end)

   t.test('a run directory is resumed only on its own data: one changed pixel or label, or another validation set, is refused', function()
      local g = small_data(40)
      local dir = t.tmpdir() .. '/run'
      local function go(train, valid, epochs)
         ts.train{model = tiny_net(), data = {train = train, valid = valid}, epochs = epochs, batch = 20, run = dir, quiet = true}
      end
      go(g.train, g.valid, 1)
      local recorded = ts.json.decode(t.readfile(dir .. '/config.json')).data
      t.eq(recorded.train, g.train:fingerprint())
      t.truthy(recorded.train:find('^40 images 32x32x3, crc32c %x%x%x%x%x%x%x%x, labels crc32c %x%x%x%x%x%x%x%x$'), recorded.train)
      go(g.train, g.valid, 2)   -- the same data: resumed
      local before = t.readfile(dir .. '/checkpoint.safetensors')
      local function copy(ds)   -- the same images and labels in new tensors
         local all = {}
         for i = 1, ds:size() do all[i] = i end
         return ds:subset(all)
      end
      local pixel = copy(g.train)
      local px = require('ffi').cast('uint8_t *', pixel.x:data())
      px[777] = (px[777] + 1) % 256
      t.raises(function() go(pixel, g.valid, 3) end,
               dir .. ' was started on other train data (its config.json has ' .. g.train:fingerprint() .. ', the data here is ' ..
               pixel:fingerprint() .. '): give it the data it was started with')
      t.eq(copy(g.train):fingerprint(), g.train:fingerprint())
      local label = copy(g.train)
      local py = require('ffi').cast('int64_t *', label.y:data())
      py[5] = (py[5] + 1) % 43
      t.raises(function() go(label, g.valid, 3) end, 'was started on other train data')
      t.raises(function() go(g.train, nil, 3) end, 'was started on other valid data (its config.json has 50 images')
      t.raises(function() go(g.train, g.train, 3) end, 'was started on other valid data')
      t.eq(t.readfile(dir .. '/checkpoint.safetensors') == before, true, 'a refused run touched the checkpoint')
      t.eq(ts.json.decode(t.readfile(dir .. '/config.json')).data.train, g.train:fingerprint(), 'a refused run rewrote config.json')
   end)

   t.test('a checkpoint whose weights do not fit the network is refused by name and shape, and left as it was', function()
      local g = small_data(40)
      local dir = t.tmpdir() .. '/run'
      local function net()
         return nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(256, 43))
      end
      ts.train{model = net(), data = {train = g.train}, epochs = 1, batch = 20, run = dir, quiet = true}
      -- the same network's description in config.json, but the first convolution's weights cut to 3 filters
      local ckpt = dir .. '/checkpoint.safetensors'
      local tensors, meta = ts.load(ckpt)
      local good = tensors['model.0.weight']
      tensors['model.0.weight'] = ts.zeros(3, 3, 3, 3)
      ts.save(ckpt, tensors, meta)
      local before = t.readfile(ckpt)
      local err = t.raises(function()
         ts.train{model = net(), data = {train = g.train}, epochs = 2, batch = 20, run = dir, quiet = true}
      end, 'ts.load: ' .. ckpt .. ' does not fit the model: model.0.weight has shape [3x3x3x3] in the file, [4x3x3x3] in the model')
      t.eq(err:sub(1, 9), 'ts.load: ', 'the message begins with a place in the code')
      t.eq(t.readfile(ckpt) == before, true, 'the refused run touched the checkpoint')
      -- the rest of a checkpoint, trusted as read: a short generator state was read past its end, an optimizer
      -- buffer of another shape went into the update, a file without the training state failed inside
      tensors['model.0.weight'] = good
      local function refused(change, words)
         local copy = {}
         for k, v in pairs(tensors) do copy[k] = v end
         local m = {state = meta.state}
         change(copy, m)
         ts.save(ckpt, copy, m)
         t.raises(function()
            ts.train{model = net(), data = {train = g.train}, epochs = 2, batch = 20, run = dir, quiet = true}
         end, words)
      end
      refused(function(c) c.rng = ts.zeros({1}, 'int64') end, ckpt .. ': rng must be the generator\'s state, 4 int64 values, got a tensor [1]')
      refused(function(c) c.rng = ts.zeros(4) end, 'rng must be the generator\'s state')
      refused(function(c) c.rng = nil end, 'rng must be the generator\'s state, 4 int64 values, got nil')
      local buffer
      for k in pairs(tensors) do if k:match('^optim%.1%.') then buffer = k end end
      refused(function(c) c[buffer] = ts.zeros(7) end, ckpt .. ': ' .. buffer .. ' is float32 [7], but its parameter is float32 [4x3x3x3]')
      refused(function(_, m) m.state = nil end, ckpt .. ': its metadata holds no training state')
   end)

   t.test('temporary files of writes that were killed are removed when the run starts again', function()
      local g = small_data()
      local dir = t.tmpdir() .. '/run'
      os.execute('mkdir -p ' .. dir)
      -- a process id that is not running (the highest one the kernel can give, plus one)
      local dead = tonumber(t.readfile('/proc/sys/kernel/pid_max')) + 1
      for _, name in ipairs({'model.safetensors.tmp' .. dead, 'checkpoint.safetensors.tmp' .. dead,
                             'config.json.tmp' .. dead}) do
         t.writefile(dir .. '/' .. name, 'half a file')
      end
      ts.train{model = tiny_net(), data = {train = g.train}, epochs = 1, run = dir, quiet = true}
      local p = io.popen('ls -a ' .. dir)
      local listing = p:read('*a')
      p:close()
      t.truthy(not listing:find('%.tmp%d'), 'left behind:\n' .. listing)
   end)

   t.test('a write that fails names the file and the reason', function()
      local g = small_data()
      local dir = t.tmpdir() .. '/run'
      os.execute('mkdir -p ' .. dir .. '/metrics.jsonl')   -- a directory where the run writes a file
      t.raises(function()
         ts.train{model = tiny_net(), data = {train = g.train}, epochs = 1, run = dir, quiet = true}
      end, dir .. '/metrics.jsonl: write failed: Is a directory')
      t.raises(function() ts.files.writeFile(dir .. '/no/such/dir/f.json', '{}') end,
               dir .. '/no/such/dir/f.json.tmp')
   end)

   -- the records of a run without their timings, which differ between any two runs, and without the GPU's peak
   -- memory, which depends on the process's history (a resumed run starts with an empty cache and its garbage is
   -- collected at other moments)
   local function records(path)
      local out = {}
      for line in io.lines(path) do
         local r = ts.json.decode(line)
         r.seconds, r.images_per_second, r.cuda_peak_bytes = nil, nil, nil
         out[#out + 1] = ts.json.encode(r)
      end
      return table.concat(out, '\n')
   end
   local function same_run(t, whole, other)
      local a, b = ts.load(whole .. '/checkpoint.safetensors'), ts.load(other .. '/checkpoint.safetensors')
      for name, tensor in pairs(a) do
         t.truthy(b[name] and b[name]:equal(tensor), 'differs after resume: ' .. name)
      end
      local ma, mb = ts.load(whole .. '/model.safetensors'), ts.load(other .. '/model.safetensors')
      for name, tensor in pairs(ma) do t.truthy(mb[name]:equal(tensor), 'best model differs: ' .. name) end
      t.eq(records(other .. '/metrics.jsonl'), records(whole .. '/metrics.jsonl'))
      local p = io.popen('ls -a ' .. other)
      local listing = p:read('*a')
      p:close()
      t.truthy(not listing:find('%.tmp'), 'temporary files left:\n' .. listing)
   end

   t.test('a run killed with kill -9 at random moments and during its file writes ends as an uninterrupted run', function()
      local base = t.tmpdir()
      local script = t.dir .. '/scripts/train_small.lua'
      local args = 'train=300 epochs=12 hidden=16384'   -- 40 MB checkpoints: writes that last tens of milliseconds
      local rc, out = t.sh(('%s --threads 2 %s %s run=%s/whole'):format(t.tshost, script, args, base))
      t.eq(rc, 0, out)
      -- start the run, kill it, start it again, ... until 6 kills, 3 of them inside a write, have happened;
      -- then let it run to its end. Every other start is killed the moment a model or checkpoint is being
      -- written (its temporary file appears: bash polls without forking), the others after a random time.
      math.randomseed(7)
      local run, kills, during_writes, finished = base .. '/killed', 0, 0, false
      os.execute('mkdir -p ' .. run)
      for start = 1, 60 do
         local enough = kills >= 6 and during_writes >= 3
         local p = io.popen(('%s --threads 2 %s %s run=%s >%s/out 2>&1 & echo $!'):format(t.tshost, script, args, run,
                                                                                       base))
         local pid = p:read('*l')
         p:close()
         if enough then
            -- no more kills: the last start runs to the end
         elseif start % 2 == 0 then
            os.execute(('bash -c \'for i in $(seq 200000); do compgen -G "%s/*.safetensors.tmp*" >/dev/null && break; done; ' ..
                        'kill -9 %s\' 2>/dev/null'):format(run, pid))
         else
            os.execute(('sleep %.2f; kill -9 %s 2>/dev/null'):format(0.2 + 0.8 * math.random(), pid))
         end
         while io.open('/proc/' .. pid .. '/stat') do os.execute('sleep 0.01') end
         if t.readfile(base .. '/out'):find('done', 1, true) then finished = true break end
         kills = kills + 1
         local ls = io.popen('ls -a ' .. run)
         if ls:read('*a'):find('%.tmp%d') then during_writes = during_writes + 1 end
         ls:close()
      end
      t.truthy(finished, 'the run never finished')
      print(('        %d kills, %d of them during a file write'):format(kills, during_writes))
      t.truthy(kills >= 6 and during_writes >= 3, ('the run ended before enough kills: %d (%d in writes)'):format(kills,
                                                                                                     during_writes))
      same_run(t, base .. '/whole', run)
   end)

   t.test('Ctrl-C in training: the step ends, a checkpoint is written in mid-epoch, and the resumed run ends as an uninterrupted one', function()
      local base = t.tmpdir()
      local script = t.dir .. '/scripts/train_small.lua'
      local args = 'train=1500 epochs=3'   -- 30 steps an epoch: a wide window for the Ctrl-C
      local rc, out = t.sh(('%s --threads 2 %s %s run=%s/whole'):format(t.tshost, script, args, base))
      t.eq(rc, 0, out)
      local p = io.popen(('%s --threads 2 %s %s run=%s/stopped >%s/out 2>&1 & echo $!'):format(t.tshost, script, args,
                                                                                            base, base))
      local pid = p:read('*l')
      p:close()
      -- in the second epoch: as soon as the first record is written
      for _ = 1, 600 do
         local f = io.open(base .. '/stopped/metrics.jsonl')
         local n = f and #f:read('*a') or 0
         if f then f:close() end
         if n > 0 then break end
         os.execute('sleep 0.02')
      end
      os.execute('kill -INT ' .. pid)
      for _ = 1, 600 do
         if not io.open('/proc/' .. pid .. '/stat') then break end
         os.execute('sleep 0.02')
      end
      out = t.readfile(base .. '/out')
      t.truthy(out:find('interrupted at epoch 2, step %d+ of 30; the checkpoint is in'), out)
      t.truthy(out:find('run the same command again to resume', 1, true), out)
      rc, out = t.sh(('%s --threads 2 %s %s run=%s/stopped'):format(t.tshost, script, args, base))
      t.eq(rc, 0, out)
      same_run(t, base .. '/whole', base .. '/stopped')
   end)

   t.test('calibration at a temperature so small that its inverse is inf: the limit, every probability on the best logit', function()
      -- row 1 right and sure, row 2 wrong and sure: its label's probability 0; one bin of confidence 1 holding 1 hit of 2
      local c = ts.metrics.calibration(ts.tensor{{0, 1}, {2, 0}}, {1, 1}, 1e-320)
      t.eq(c.nll, math.huge)
      t.near(c.ece, 0.5, 1e-12); t.near(c.accuracy, 0.5, 1e-12); t.near(c.confidence, 1, 1e-12)
      -- a tie stays a tie (its gap 0 divided, not multiplied by inf), and matches softmax at that temperature
      c = ts.metrics.calibration(ts.tensor{{3, 3, 1}}, {1}, 1e-320)
      t.near(c.confidence, ts.metrics.softmax(ts.tensor{3, 3, 1}, 1e-320)[1], 1e-12)
      t.near(c.nll, math.log(2), 1e-12)
   end)
end
