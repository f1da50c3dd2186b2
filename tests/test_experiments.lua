-- Every experiment script runs end to end on a few generated images and prints its conclusion.
return function(t)
   local function run(script, args)
      -- 300 images unless args give their own size (ts.options refuses a key given twice)
      args = args or ''
      local size = (' ' .. args):find(' synthetic_train=', 1, true) and '' or 'synthetic_train=300 '
      local cmd = ('%s --threads 2 %s/experiments/%s synthetic=true %squiet=true %s'):format(
         t.tshost, ts.root, script, size, args)
      local rc, out = t.sh(cmd)
      t.eq(rc, 0, script .. ':\n' .. out)
      return out
   end

   t.test('compare.lua: McNemar only on one test set; damaged run files are named', function()
      local dir = t.tmpdir()
      for seed = 1, 2 do
         run('baseline.lua', ('synthetic_train=60 epochs=1 trainval=false detector=false seed=%d run=%s/s%d'):format(seed,
             dir, seed))
      end
      -- each run records what its bits depend on besides its settings (run() trains with --threads 2)
      local machine = ts.json.readFile(dir .. '/s1/config.json').machine
      local device = ts.device() == 'cuda' and ts.cuda.deviceName() or 'cpu'   -- (TSHOST_TEST_DEVICE=cuda: the GPU)
      t.truthy(machine and machine.threads == 2 and machine.cpu_path == ts.cpuPath() and machine.device == device and
               machine.blas == ts.machine().blas, 'config.json machine: ' .. ts.json.encode(machine or {}))
      local function compare(args) return t.sh(('%s %s/scripts/compare.lua %s'):format(t.tshost, ts.root, args)) end
      -- two generated test sets of one size: other images, so no paired test (it once said "not distinguishable")
      local rc, out = compare(('%s/s1 %s/s2'):format(dir, dir))
      t.truthy(rc == 0 and out:find('different test sets, not compared', 1, true) and not out:find('b=', 1, true), out)
      -- a copy of a run (the same run twice is refused) on its own test set: paired, and the page written
      t.sh(('cp -r %s/s1 %s/s1copy'):format(dir, dir))
      rc, out = compare(('%s/s1 %s/s1copy --html %s/c.html'):format(dir, dir, dir))
      t.truthy(rc == 0 and out:find('b=   0 c=   0 p=1', 1, true) and io.open(dir .. '/c.html'), out)
      rc, out = compare(('%s/s1 --html'):format(dir))
      t.eq(rc, 2, '--html without a file: ' .. out)
      -- the page never goes into a compared run (runs/a/report.html replaced the run's report)
      local report = t.readfile(dir .. '/s1/report.html')
      rc, out = compare(('%s/s1 %s/s2 --html %s/s1/report.html'):format(dir, dir, dir))
      t.truthy(rc == 1 and out:find('is inside the run ' .. dir .. '/s1', 1, true), out)
      t.eq(t.readfile(dir .. '/s1/report.html'), report, 'the run\'s report kept')
      -- predictions of the wrong dtype or length are named (a float pred was read 8 bytes at a time past its end)
      local preds = ts.load(dir .. '/s2/test_predictions.safetensors')
      ts.save(dir .. '/s2/test_predictions.safetensors', {pred = preds.pred:float(), target = preds.target,
                                                          confidence = preds.confidence})
      rc, out = compare(('%s/s1 %s/s2'):format(dir, dir))
      t.truthy(rc == 1 and out:find('test_predictions.safetensors: expected pred as int64 [N], got float32', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/report.lua %s/s2'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 1 and out:find('expected pred as int64 [N], got float32', 1, true), out)
      ts.save(dir .. '/s2/test_predictions.safetensors', {pred = preds.pred:narrow(1, 1, 3), target = preds.target:narrow(1, 1, 3),
                                                          confidence = preds.confidence:narrow(1, 1, 3)})
      rc, out = t.sh(('%s %s/scripts/report.lua %s/s2'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 1 and out:find('3 predictions for ', 1, true), out)
      -- a record without the optional fields (parameters, times) shows them as '?' instead of a Lua error
      local f1 = ts.json.readFile(dir .. '/s1/final.json')
      f1.parameters, f1.train_seconds = nil, nil
      ts.files.writeFile(dir .. '/s1/final.json', ts.json.encode(f1))
      rc, out = compare(('%s/s1 --html %s/c2.html'):format(dir, dir))
      t.truthy(rc == 0 and out:find('          ?         ?', 1, true), out)
      t.writefile(dir .. '/s2/final.json', '[1, 2, 3]')
      rc, out = compare(('%s/s1 %s/s2'):format(dir, dir))
      t.truthy(rc == 1 and out:find(dir .. "/s2/final.json: not a finished run's record", 1, true), out)
   end)

   t.test('compare.lua --versus: two recipes over paired runs, McNemar on each pair, the t-test and the sign-flip test', function()
      local dir = t.tmpdir()
      -- a finished run's record and predictions on 20 test images (classes 0..9 twice, or 0..classes-1 in turn), the first
      -- `wrong` of them wrong
      local function run_with(name, wrong, classes)
         local at = dir .. '/' .. name
         ts.files.mkdirs(at)
         local target, pred = {}, {}
         classes = classes or 10
         for i = 1, 20 do target[i] = (i - 1) % classes; pred[i] = i <= wrong and (target[i] + 1) % classes or target[i] end
         ts.save(at .. '/test_predictions.safetensors', {pred = ts.tensor(pred, 'int64'), target = ts.tensor(target, 'int64'),
                                                         confidence = ts.ones(20)})
         local acc = (20 - wrong) / 20
         ts.files.writeFile(at .. '/final.json', ts.json.encode({test_accuracy = acc, test_accuracy_ci95 = {acc, acc},
                                                                 test_macro_f1 = acc}))
         return at
      end
      local a = {run_with('a1', 2), run_with('a2', 3), run_with('a3', 1)}
      local b = {run_with('b1', 1), run_with('b2', 1), run_with('b3', 0)}
      local function compare(args) return t.sh(('%s %s/scripts/compare.lua %s'):format(t.tshost, ts.root, args)) end
      local rc, out = compare(('%s --versus %s'):format(table.concat(a, ' '), table.concat(b, ' ')))
      t.eq(rc, 0, out)
      -- McNemar on the three pairs only, A's k-th against B's k-th (not on all fifteen pairs of six runs)
      local _, tests = out:gsub(' b=', '')
      t.eq(tests, 3, out)
      t.truthy(out:find(('%-28s vs %-28s b=   0 c=   2'):format(a[2], b[2]), 1, true), out)
      -- the numbers scipy gives for these accuracies (stats.ttest_rel, stats.t.interval(0.95, 2, ...)): t = 4, p = 0.0572,
      -- the interval -0.0050 to 0.1384; every difference positive, so 2 of the 8 sign patterns are as far from 0
      t.truthy(out:find('A, the runs before --versus: mean 90.00% (sd 5.00) over 3 runs', 1, true), out)
      t.truthy(out:find('B, the runs after it: mean 96.67% (sd 2.89)', 1, true), out)
      t.truthy(out:find('B - A: +6.67 points, 95% interval -0.50 to +13.84; B ahead on 3 of 3 pairs, behind on 0', 1, true), out)
      t.truthy(out:find('paired t-test p = 0.0572; exact sign-flip test p = 0.25 (8 sign patterns)', 1, true), out)
      -- one pair: McNemar only
      rc, out = compare(('%s --versus %s --html %s/page.html'):format(a[1], b[1], dir))
      t.truthy(rc == 0 and out:find('one pair: no test over pairs', 1, true), out)
      t.truthy(t.readfile(dir .. '/page.html'):find('The two recipes over the pairs', 1, true), 'the page has the comparison')
      -- runs that do not pair, and --versus twice or with nothing before it
      for _, args in ipairs({('%s %s --versus %s'):format(a[1], a[2], b[1]), ('--versus %s'):format(b[1]),
                             ('%s --versus %s --versus %s'):format(a[1], b[1], b[2])}) do
         rc, out = compare(args)
         t.truthy(rc == 2 and out:find('usage: tshost scripts/compare.lua RUN [RUN ...] [--versus RUN ...]', 1, true), out)
      end
      t.truthy(select(2, compare(('%s %s --versus %s'):format(a[1], a[2], b[1]))):find('2 before, 1 after', 1, true))
      -- a pair trained with other arithmetic (config.json's machine) is said to hold rounding as well as recipe
      ts.files.writeFile(a[2] .. '/config.json', ts.json.encode({machine = {threads = 1, cpu_path = 'avx2', device = 'cpu'}}))
      ts.files.writeFile(b[2] .. '/config.json', ts.json.encode({machine = {threads = 2, cpu_path = 'avx2', device = 'cpu'}}))
      rc, out = compare(('%s --versus %s'):format(table.concat(a, ' '), table.concat(b, ' ')))
      t.truthy(rc == 0 and out:find('pair 2 was trained with other arithmetic (threads 1 against 2)', 1, true) and
               not out:find('pair 1 was', 1, true), out)
      -- pairs of two seeds are said (config.json's seed), and differences all alike get no t-test
      ts.files.writeFile(a[1] .. '/config.json', ts.json.encode({seed = 1}))
      ts.files.writeFile(b[1] .. '/config.json', ts.json.encode({seed = 2}))
      rc, out = compare(('%s %s --versus %s %s'):format(a[1], a[3], b[1], b[3]))
      t.truthy(rc == 0 and out:find('pair 1 pairs seed 1 with seed 2', 1, true), out)
      t.truthy(out:find('every pair differs by the same +5.00 points: no spread for a t-test or an interval; exact ' ..
                        'sign-flip test p = 0.5 (4 sign patterns)', 1, true) and not out:find('t-test p =', 1, true), out)
      -- a pair on two test sets (other labels): no McNemar for it, and the summary says its difference is not the recipes'
      rc, out = compare(('%s %s --versus %s %s'):format(a[1], a[2], b[1], run_with('other', 0, 7)))
      t.truthy(rc == 0 and out:find('different test sets, not compared', 1, true) and
               out:find('1 of the 2 pairs were tested on different test sets', 1, true), out)
   end)

   t.test('the report\'s learning curves put each value at its own epoch: a NaN loss or a missing one leaves a gap', function()
      -- values were packed into a list (a NaN loss, stored as null, moved every later epoch one place left), and an
      -- infinite one made NaN coordinates
      local svg = require('ts.report').lineChart('loss', {{'train', '#000', {1, nil, 3, 1 / 0, 5}}}, 5)
      t.eq(svg:match('points="([^"]*)"'), '50.0,224.0 200.0,126.0 350.0,28.0')
      t.eq(require('ts.report').lineChart('loss', {{'train', '#000', {0 / 0}}}, 1), '', 'no finite value, no chart')
   end)

   t.test('damaged or mismatched run folders: the run readers name the file, and never write over a run', function()
      local dir = t.tmpdir()
      -- two members of one data set (seed 1) and two recipes
      local function script(name, args) return t.sh(('%s %s/%s %s'):format(t.tshost, ts.root, name, args)) end
      for _, member in ipairs({'a', 'b lr=0.2'}) do
         local rc, o = script('experiments/baseline.lua', ('synthetic=true synthetic_train=60 epochs=1 trainval=false ' ..
                                                           'detector=false quiet=true run=%s/%s'):format(dir, member))
         t.eq(rc, 0, o)
      end
      local record = t.readfile(dir .. '/a/final.json')
      -- the ensemble's run= a member (or a trained run): its final.json and predictions were replaced by the ensemble's
      for _, out in ipairs({dir .. '/a', dir .. '/a/', dir .. '/b'}) do
         local rc, o = script('experiments/ensemble.lua', ('runs=%s/a,%s/b run=%s'):format(dir, dir, out))
         t.truthy(rc == 1 and o:find('whose record it would replace', 1, true), o)
      end
      t.eq(t.readfile(dir .. '/a/final.json'), record, "the member's record kept")
      t.writefile(dir .. '/file', 'x')
      local rc, o = script('experiments/ensemble.lua', ('runs=%s/a,%s/b run=%s/file'):format(dir, dir, dir))
      t.truthy(rc == 1 and o:find('option run=' .. dir .. '/file is a file, not a folder', 1, true) and not o:find('traceback'), o)
      rc, o = script('experiments/ensemble.lua', ('runs=%s/a,%s/b tta=0'):format(dir, dir))
      t.truthy(rc == 1 and o:find('ensemble.lua: tta must be a whole number', 1, true) and not o:find('member '), o)
      -- an earlier ensemble's calibration.json in the folder does not speak for one that fitted none
      ts.files.mkdirs(dir .. '/ens')
      t.writefile(dir .. '/ens/calibration.json', '{"temperature": 2.5, "tta": 1}')
      rc, o = script('experiments/ensemble.lua', ('runs=%s/a,%s/b run=%s/ens'):format(dir, dir, dir))
      t.eq(rc, 0, o)
      local fitted = ts.json.decode(t.readfile(dir .. '/ens/final.json')).temperature
      t.truthy(fitted == nil and io.open(dir .. '/ens/calibration.json') == nil or fitted ~= 2.5,
               'a stale calibration.json: ' .. tostring(fitted))
      -- a member of another class count is named (ts.ensemble refused it with a traceback)
      t.sh(('cp -r %s/b %s/c50'):format(dir, dir))
      local config = ts.json.decode(t.readfile(dir .. '/c50/config.json'))
      config.model.classes = 50
      ts.files.writeFile(dir .. '/c50/config.json', ts.json.encode(config))
      ts.save(dir .. '/c50/model.safetensors', ts.models.baseline{classes = 50, widths = config.model.widths})
      rc, o = script('experiments/ensemble.lua', ('runs=%s/a,%s/c50 run=%s/ens'):format(dir, dir, dir))
      t.truthy(rc == 1 and o:find(dir .. '/c50 scores 50 classes, and ' .. dir .. '/a 43', 1, true), o)
      -- compare --html through a link into a run wrote over what the link points at
      os.execute(('ln -s %s/a/final.json %s/page.html'):format(dir, dir))
      rc, o = script('scripts/compare.lua', ('%s/a %s/b --html %s/page.html'):format(dir, dir, dir))
      t.truthy(rc == 1 and o:find('is inside the run', 1, true), o)
      t.eq(t.readfile(dir .. '/a/final.json'), record, 'the record behind the link kept')
      -- predictions of another run (here: every one right, of a run that got some wrong) in a run's folder were shown
      -- under its record's numbers
      t.sh(('cp -r %s/a %s/mixed'):format(dir, dir))
      local preds = ts.load(dir .. '/a/test_predictions.safetensors')
      t.truthy(ts.json.decode(record).test_accuracy < 1, record)
      ts.save(dir .. '/mixed/test_predictions.safetensors', {pred = preds.target:clone(), target = preds.target,
                                                             confidence = preds.confidence})
      rc, o = script('scripts/report.lua', dir .. '/mixed')
      t.truthy(rc == 1 and o:find('the files are not of one run', 1, true), o)
      -- damaged fields of final.json and metrics.jsonl: one line naming the file, no traceback
      local function damaged(file, change, says)
         t.sh(('rm -rf %s/d && cp -r %s/a %s/d'):format(dir, dir, dir))
         if file == 'final.json' then
            local f = ts.json.decode(record)
            change(f)
            ts.files.writeFile(dir .. '/d/final.json', ts.json.encode(f))
         else
            t.writefile(dir .. '/d/' .. file, change)
         end
         local rc2, o2 = script('scripts/report.lua', dir .. '/d')
         t.truthy(rc2 == 1 and o2:find(says, 1, true) and not o2:find('traceback', 1, true), o2)
      end
      damaged('final.json', function(f) f.test_accuracy_ci95 = 'x' end, "d/final.json: not a finished run's record")
      damaged('final.json', function(f) f.synthetic.train = 1e12 end, 'd/final.json: synthetic: ts.data.synthetic: train')
      damaged('final.json', function(f) f.test_images = '20' end, 'd/final.json: test_images must be a number, got "20"')
      -- data recorded as no table skipped the fingerprint check
      damaged('final.json', function(f) f.data = 'x' end, 'its final.json records its data as "x", not as the fingerprints')
      -- a temperature given as text was read as a number
      t.sh(('rm -rf %s/d && cp -r %s/a %s/d'):format(dir, dir, dir))
      t.writefile(dir .. '/d/calibration.json', '{"temperature": "2", "tta": 1}')
      ts.image.save(dir .. '/sign.png', ts.zeros({32, 32, 3}, 'uint8'))
      rc, o = script('scripts/predict.lua', ('%s/d %s/sign.png --whole'):format(dir, dir))
      t.truthy(rc ~= 0 and o:find('d/calibration.json has no valid temperature', 1, true), o)
      damaged('metrics.jsonl', '5\n', 'd/metrics.jsonl, line 1: not an epoch\'s record')
      damaged('metrics.jsonl', '{"train_loss": "x"}\n', 'd/metrics.jsonl, line 1: train_loss is no number')
      -- optional fields of another type are left out of the page, not a Lua error
      t.sh(('rm -rf %s/d && cp -r %s/a %s/d'):format(dir, dir, dir))
      local f = ts.json.decode(record)
      f.train_seconds, f.best_valid_accuracy = 'x', 'y'
      ts.files.writeFile(dir .. '/d/final.json', ts.json.encode(f))
      rc, o = script('scripts/report.lua', dir .. '/d')
      t.eq(rc, 0, o)
   end)

   t.test('a run\'s generated signs are made again from its final.json; data of other sizes or kind is refused', function()
      local g = ts.experiment.dataset{synthetic = true, synthetic_train = 60, seed = 3}
      local final = ts.json.decode(ts.json.encode({synthetic = g.synthetic, test_images = g.test:size(), test_accuracy = 0.5}))
      -- other command-line sizes and seed than the run's do not matter: the record decides
      local again = ts.experiment.runData('runs/x', final, {synthetic_train = 300, seed = 1})
      t.eq(again.test:size(), 20)
      t.truthy(again.test.x:equal(g.test.x) and again.train.y:equal(g.train.y), 'other images than the run\'s')
      t.truthy(not ts.experiment.dataset{synthetic = true, synthetic_train = 60, seed = 1}.test.x:equal(g.test.x),
               'the test must be able to fail: another seed makes other images')
      -- a run recorded before the settings were kept: the command line's size, checked against the run's count
      t.raises(function() ts.experiment.runData('runs/x', {synthetic = true, test_images = 20, test_accuracy = 0.5},
                                                {synthetic_train = 300}) end,
               'runs/x was trained on 20 test images, and the data here has 100')
      -- a record of another shape was read as a GTSRB run's, and refused as trained on other data
      t.raises(function() ts.experiment.runData('runs/x', {foo = 1}, {}) end,
               "runs/x/final.json is no run's record (it has no test_accuracy): is runs/x a finished run?")
      -- every split the run kept is checked, and the kind of data
      t.raises(function() ts.experiment.checkRunData('runs/x', {synthetic = g.synthetic, valid_images = 11}, g) end,
               'runs/x was trained on 11 valid images, and the data here has 10')
      t.raises(function() ts.experiment.checkRunData('runs/x', {synthetic = false}, g) end,
               'runs/x was trained on GTSRB, and the data here is generated signs')
      t.eq(ts.experiment.checkRunData('runs/x', {synthetic = g.synthetic, train_images = 60, valid_images = 10,
                                                 test_images = 20}, g), g)
   end)

   t.test('ts.experiment.options: counts, bare words, and the folders run and out are checked before anything runs', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/file', 'x')
      -- the command line as the host gives it: arg and the key=value arguments in ts.args
      local function options(words, defaults, counts)
         local saved_arg, saved_args = arg, ts.args
         arg = {[0] = 'x.lua'}
         for i, w in ipairs(words) do arg[i] = w end
         ts.args = ts.parse_args(arg)
         local ok, v = pcall(ts.experiment.options, defaults, counts)
         arg, ts.args = saved_arg, saved_args
         if not ok then error(v, 0) end
         return v
      end
      local defaults = {epochs = 6, run = dir .. '/runs'}
      -- seeds=0 failed in a traceback after the data was made, seeds=1.5 ran one seed; epochs=0 failed in ts.train
      for word, says in pairs({['seeds=0'] = 'x.lua: option seeds must be a whole number >= 1, got 0',
                               ['seeds=1.5'] = 'option seeds must be a whole number >= 1, got 1.5',
                               ['seed=-1'] = 'option seed must be a whole number from 0 to 2^31, got -1',
                               ['synthetic_train=0'] = 'option synthetic_train must be a whole number from 1 to 10000000',
                               ['epochs=0'] = 'x.lua: option epochs must be a whole number >= 1, got 0',
                               ['epochs=2.5'] = 'option epochs must be a whole number >= 1, got 2.5',
                               -- run= wrote every variant's run at the root of the file system
                               ['run='] = 'x.lua: option run= is empty: give a folder',
                               ['run=' .. dir .. '/file'] = ('option run=%s/file is a file, not a folder'):format(dir),
                               -- a bare word (meant as run=) was dropped and the script ran on its defaults
                               [dir] = ('x.lua: %s is no option: options are key=value'):format(dir)}) do
         t.raises(function() options({'quiet=true', word}, defaults, {epochs = {1}}) end, says)
      end
      t.raises(function() options({'out='}, {out = 'runs/o'}, {}) end, 'option out= is empty')
      local opt = options({'epochs=3', 'seeds=2', 'run=' .. dir .. '/new'}, defaults, {epochs = {1}})
      t.truthy(opt.epochs == 3 and opt.seeds == 2 and opt.run == dir .. '/new', 'the options as given')
      -- without counts too (calibrate and detector take their run out of arg first: ts.experiment.runArgument)
      t.raises(function() options({dir, 'epochs=2'}, {epochs = 6}) end, ('x.lua: %s is no option'):format(dir))
   end)

   t.test('ts.experiment.choices: a comma-separated option names known choices, each once', function()
      local known = {'down', 'stages'}
      t.eq(table.concat(ts.experiment.choices('stages, down', 'what', known), ' '), 'stages down')
      -- pooling.lua what=pools ran nothing, and said nothing
      t.raises(function() ts.experiment.choices('pools', 'what', known) end,
               'option what=pools: unknown name pools (known: down, stages)')
      t.raises(function() ts.experiment.choices('down,down', 'what', known) end, 'what=down,down: down given twice')
      t.raises(function() ts.experiment.choices('down,', 'what', known) end, 'what=down,: an empty name')
      t.raises(function() ts.experiment.choices('', 'what', known) end, 'an empty name')
   end)

   t.test('the REPL takes =expr as the lua and th prompts do, an unfinished one continued on the next line', function()
      local repl = require('ts.repl')
      local printed, saved = {}, print
      print = function(...) printed[#printed + 1] = table.concat({...}, '\t') end   -- luacheck: ignore
      local ok = {repl.eval('=1 + 1'), repl.eval(' = 2, nil'), repl.eval('=1 +\n2')}
      print = saved   -- luacheck: ignore
      t.truthy(ok[1] and ok[2] and ok[3], table.concat(printed, '\n'))
      t.eq(table.concat(printed, '\n'), '2\n2\tnil\n3')
      t.truthy(repl.incomplete('=1 +') and not repl.incomplete('=1'), 'an unfinished =expr continues')
   end)

   t.test('the comparison\'s verdict: significant only when McNemar\'s seed 1 and the mean over seeds agree', function()
      -- 100 test images; the reference gets the first 90 right; each variant's seed-1 predictions and mean are set
      local y = ts.zeros({100}, 'int64')
      local function eval(right)   -- predictions right exactly at the listed positions
         local pred = ts.full({100}, 1):long()
         for _, i in ipairs(right) do pred[i] = 0 end
         return {pred = pred, target_y = y}
      end
      local function range(a, b) local r = {} for i = a, b do r[#r + 1] = i end return r end
      local function variant(name, right, mean)
         return {name = name, mean = mean, runs = {{test_macro_f1 = 0, train_seconds = 0}}, evals = {eval(right)}}
      end
      local ref = variant('baseline', range(1, 90), 0.90)
      local better = variant('baseline+good', range(1, 100), 0.95)        -- 10 more right on seed 1, p ~ 0.002
      local against = variant('baseline+odd', range(1, 100), 0.85)        -- seed 1 better, the mean worse
      local worse = variant('baseline-part', range(1, 75), 0.75)          -- 15 fewer right
      local v = ts.experiment.compare({ref, better, against, worse}, 'test')
      t.truthy(v['baseline+good'].significant and v['baseline+good'].diff > 0)
      t.truthy(not v['baseline+odd'].significant, 'seed 1 and the mean disagree')
      t.truthy(v['baseline-part'].significant and v['baseline-part'].diff < 0)
      -- the best, and whether it is ahead of the runner-up
      local best, said = ts.experiment.best({ref, better, worse})
      t.eq(best.name, 'baseline+good')
      t.truthy(said:find('significantly ahead of baseline (90.00%', 1, true), said)
      local tie = variant('baseline+tie', range(2, 91), 0.905)   -- one image changes places
      best, said = ts.experiment.best({ref, tie})
      t.eq(best.name, 'baseline+tie')
      t.truthy(said:find('not significantly ahead of baseline', 1, true), said)
   end)

   t.test('the comparison adds the tests over the seeds where both variants ran as many', function()
      local y = ts.zeros({10}, 'int64')
      local function variant(name, accuracies)
         local runs = {}
         for k, a in ipairs(accuracies) do runs[k] = {test_accuracy = a, test_macro_f1 = 0, train_seconds = 0} end
         return ts.experiment.settle({name = name, runs = runs, evals = {{pred = ts.zeros({10}):long(), target_y = y}}})
      end
      local printed, saved = {}, print
      print = function(...) printed[#printed + 1] = table.concat({...}, '\t') end   -- luacheck: ignore
      -- (b - a: 0.01 five times and 0.015, as test_train's {1..6} against {2..6, 7.5} scaled: the same t and p)
      local ok, err = pcall(ts.experiment.compare, {variant('a', {0.980, 0.981, 0.982, 0.983, 0.984, 0.985}),
                                                   variant('b', {0.990, 0.991, 0.992, 0.993, 0.994, 1.000}),
                                                   variant('c', {0.99, 0.98})}, 'seeds')
      print = saved   -- luacheck: ignore
      t.truthy(ok, err)
      local out = table.concat(printed, '\n')
      -- b against a: the paired test of the six seeds (test_train's paired test has scipy's numbers); c ran two seeds
      t.truthy(out:find('over the 6 seeds: ahead on 6, behind on 0; paired t-test p = 4.8e-05; exact sign-flip test p = 0.0313',
               1, true), out)
      local _, lines = out:gsub('over the ', '')
      t.eq(lines, 1, out)
   end)

   t.test('baseline trainval=true: trained on train and valid but a held-out share of the tracks, which the temperature '
          .. 'and the threshold are fitted on; held_out=0: neither', function()
      local dir = t.tmpdir()
      -- half the tracks held out (25 images): a one-epoch network gets some of them right and some wrong, so that they
      -- fit a temperature (a tenth, 5 images, might all be wrong)
      run('baseline.lua', ('epochs=1 trainval=true held_out=0.5 detector_scenes=60 fit_scenes=4 tta=8 run=%s/tv'):format(dir))
      local final = ts.json.decode(t.readfile(dir .. '/tv/final.json'))
      local g = ts.data.synthetic(final.synthetic)
      local kept, held, record = g.valid:splitTracks{share = 0.5}
      t.eq(final.trained_on.train_images, g.train:size() + kept:size())
      t.eq(final.trained_on.train, ts.data.join({g.train, kept}):fingerprint())
      t.eq(final.trained_on.valid, 'none'); t.eq(final.best_epoch, 1)
      t.eq(final.trained_on.held_out.fingerprint, record.fingerprint); t.eq(final.trained_on.held_out.images, held:size())
      t.eq(ts.experiment.heldOut(dir .. '/tv', final, g):fingerprint(), held:fingerprint(), 'readers rebuild it')
      -- and the tracks it kept, which the detector's epoch is chosen on: the held-out ones choose nothing before the
      -- threshold is fitted on them (ts.detect.train's valid; an empty set shows it is the one scenes are made of)
      t.eq(select(3, ts.experiment.heldOut(dir .. '/tv', final, g)):fingerprint(), kept:fingerprint())
      t.raises(function() ts.detect.train(g, {scenes = 10, valid = g.valid:subset({}, 'no tracks')}) end,
               'ts.detect.train(g, opts): valid must hold at least one image [N, h, w, C], got none')
      t.raises(function() ts.detect.train(g, {scenes = 10, sceens = 3}) end, 'ts.detect.train: unknown option sceens')
      local cal = ts.json.decode(t.readfile(dir .. '/tv/calibration.json'))
      t.eq(cal.valid_images, held:size())
      -- tta=8: the test set and the temperature with eight views of each image (ts.evaluate's tta): the predictions
      -- are those of that evaluation, and predict reads the views from calibration.json
      t.eq(final.tta, 8); t.eq(cal.tta, 8)
      local model, config = ts.models.load(dir .. '/tv')
      local ev = ts.evaluate(model, g.test, {preprocess = ts.data.preprocess(config.preprocess), tta = 8})
      t.truthy(ts.experiment.readPredictions(dir .. '/tv', g.test:size()).pred:equal(ev.pred), 'the views predictions')
      t.eq(final.test_accuracy, ev.accuracy)
      t.eq(select(2, ts.experiment.readCalibration(dir .. '/tv')), 8)
      t.truthy(t.readfile(dir .. '/tv/report.html'):find('; 8 views of each image', 1, true), 'the report says so')
      t.raises(function() ts.experiment.finish({}, g, {tta = 1.5}) end,
               'ts.experiment.finish: tta must be a whole number from 1 to 1024, got 1.5')
      -- a number given on the command line (the default is the word run), and a bad one refused in one line
      local rc, o = t.sh(('%s %s/scripts/calibrate.lua %s/tv tta=2 synthetic_train=300'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 0 and o:find('(2 views, ', 1, true), o)
      rc, o = t.sh(('%s %s/scripts/calibrate.lua %s/tv tta=x'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 1 and o:find('calibrate.lua: tta must be a whole number from 1 to 1024, got "x"\n', 1, true), o)
      rc, o = t.sh(('%s %s/experiments/baseline.lua tta=0 synthetic_train=60'):format(t.tshost, ts.root))
      t.truthy(rc ~= 0 and o:find('baseline.lua: tta must be a whole number from 1 to 1024, got 0', 1, true) and
               not o:find('epoch 1', 1, true), 'refused before the training: ' .. o)
      t.raises(function() ts.experiment.finish({}, g, {views = 8}) end, 'ts.experiment.finish: unknown option views')
      -- the report's class histogram counts the images trained on, not the training set alone
      local html = t.readfile(dir .. '/tv/report.html')
      t.truthy(html:find('Class distribution (training set and the validation tracks trained on)', 1, true), 'histogram title')
      local imb = ts.data.join({g.train, kept}):imbalance()
      t.truthy(html:find(('smallest %d (%d images)'):format(imb.smallest_class, imb.smallest), 1, true), 'histogram counts')
      t.truthy(ts.json.decode(t.readfile(dir .. '/tv/search.json')).threshold, 'a threshold fitted on held-out scenes')
      -- scripts/calibrate.lua refits on the same images; a run whose record names other images is refused
      rc, o = t.sh(('%s %s/scripts/calibrate.lua %s/tv synthetic_train=300'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 0 and o:find(('(8 views, %d validation images)'):format(held:size()), 1, true), 'the run\'s views: ' .. o)
      -- a word that is no key=value was ignored: `calibrate.lua RUN 8` fitted one view
      rc, o = t.sh(('%s %s/scripts/calibrate.lua %s/tv 8'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 1 and o:find('calibrate.lua: 8 is no option: options are key=value', 1, true), o)
      final.trained_on.held_out.share = 0.25
      t.raises(function() ts.experiment.heldOut(dir .. '/tv', final, g) end,
               'tv/final.json: the held-out validation images were')
      final.trained_on.held_out = {share = 2}
      t.raises(function() ts.experiment.heldOut(dir .. '/tv', final, g) end,
               'tv/final.json: trained_on.held_out: splitTracks: share must be')

      local out = run('baseline.lua', ('synthetic_train=60 epochs=1 trainval=true held_out=0 detector_scenes=60 run=%s/all')
                                :format(dir))
      final = ts.json.decode(t.readfile(dir .. '/all/final.json'))
      g = ts.data.synthetic(final.synthetic)
      t.eq(final.trained_on.train_images, g.train:size() + g.valid:size())
      t.eq(io.open(dir .. '/all/calibration.json'), nil, 'no temperature fitted on trained-on images')
      t.truthy(t.readfile(dir .. '/all/report.html'):find('Class distribution (training and validation sets, all trained on)',
                                                        1, true), 'histogram title')
      t.eq(io.open(dir .. '/all/search.json'), nil, 'no threshold fitted on scenes of trained-on images')
      t.truthy(out:find('no threshold fitted (every validation image was part of the training)', 1, true), out)
      t.eq(select(2, ts.experiment.heldOut(dir .. '/all', final, g)), dir .. '/all trained on every validation image')
      rc, o = t.sh(('%s %s/scripts/calibrate.lua %s/all synthetic_train=60'):format(t.tshost, ts.root, dir))
      t.truthy(rc ~= 0 and o:find('trained on every validation image: no validation images left to fit a temperature on',
                                  1, true), o)
      t.raises(function() ts.detect.fitRun(dir .. '/all', g) end, 'no validation images left to fit the "no sign" threshold on')
      rc, o = t.sh(('%s %s/experiments/baseline.lua held_out=1 synthetic_train=60'):format(t.tshost, ts.root))
      t.truthy(rc ~= 0 and o:find('held_out must be a share of the validation tracks from 0 to below 1, got 1', 1, true), o)
      -- a share too small for the tracks there are: said before any training, with what to do
      rc, o = t.sh(('%s %s/experiments/baseline.lua held_out=0.01 synthetic=true synthetic_train=60'):format(t.tshost, ts.root))
      t.truthy(rc ~= 0 and o:find('baseline.lua: held_out=0.01: valid has 10 tracks of up to 30 images; a share of 0.01 '
                                  .. 'holds out 0 of them: nothing to hold out (give a larger held_out, held_out=0 or '
                                  .. 'trainval=false)', 1, true), o)
   end)

   t.test('baseline, then mispredict, layers and units on its run directory', function()
      local dir = t.tmpdir()
      -- the main job as make run runs it, but for half the validation tracks held out (so that a one-epoch network
      -- gets some of them wrong: they fit the temperature)
      run('baseline.lua', ('epochs=1 held_out=0.5 run=%s/base detector_scenes=60 fit_scenes=4'):format(dir))
      local final = ts.json.decode(t.readfile(dir .. '/base/final.json'))
      t.truthy(final.test_accuracy and final.test_macro_f1 and #final.per_class == 43)
      -- the recipe's network: the baseline at widths 48, 96, 192
      t.eq(ts.json.decode(t.readfile(dir .. '/base/config.json')).parameters, 1443195)
      for _, f in ipairs({'config.json', 'metrics.jsonl', 'model.safetensors', 'checkpoint.safetensors', 'final.json',
                          'report.html', 'test_predictions.safetensors'}) do
         t.truthy(io.open(dir .. '/base/' .. f), 'missing ' .. f)
      end
      -- the report references only files that exist
      local html = t.readfile(dir .. '/base/report.html')
      local refs = 0
      for src in html:gmatch('src="([^"]+)"') do
         refs = refs + 1
         t.truthy(io.open(dir .. '/base/' .. src), 'report references a missing file: ' .. src)
      end
      t.truthy(refs > 5, 'the report shows pictures')
      t.truthy(html:find('</html>', 1, true) and html:find('<svg', 1, true))
      for _, script in ipairs({'mispredict.lua', 'layers.lua', 'units.lua'}) do
         local out = run(script, ('run=%s/base'):format(dir))
         t.truthy(out:find('conclusion', 1, true), script .. ': ' .. out)
      end
      local out = select(2, t.sh(('%s %s/scripts/predict.lua %s/base %s/base/report_files/wrong_01.png --json'):format(
         t.tshost, ts.root, dir, dir)))
      t.truthy(out:find('"top5"', 1, true), out)
      -- one unreadable image among good ones: the good ones are reported, the bad one gets an error entry
      t.writefile(dir .. '/broken.png', 'not an image')
      local rc
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s/base/report_files/wrong_01.png %s/broken.png --json'):format(
         t.tshost, ts.root, dir, dir, dir))
      t.eq(rc, 1, out)
      local results = ts.json.decode(out:match('^[^\n]*'))
      t.eq(#results, 2, out)
      t.truthy(results[1].top5 and #results[1].top5 == 5, out)
      t.truthy(results[2].error and results[2].error:find(dir .. '/broken.png', 1, true), out)
      -- calibrated probabilities: the temperature fitted on validation divides the logits, so the log-ratio
      -- of two classes' probabilities is the raw one over T; --abstain p says "not sure" below p (the whole
      -- crop classified: the one-epoch detector's search is tested below)
      local cal = ts.json.decode(t.readfile(dir .. '/base/calibration.json'))
      t.truthy(cal.temperature > 0 and cal.valid.after.nll <= cal.valid.before.nll + 1e-9, t.readfile(dir .. '/base/calibration.json'))
      t.eq(final.temperature, cal.temperature)
      local image = dir .. '/base/report_files/wrong_01.png'
      local function predict(extra)
         local rc2, o = t.sh(('%s %s/scripts/predict.lua %s/base %s --json --whole %s'):format(t.tshost, ts.root, dir, image, extra or ''))
         t.eq(rc2, 0, o)
         return ts.json.decode(o:match('^[^\n]*'))[1]
      end
      local calibrated = predict()
      os.rename(dir .. '/base/calibration.json', dir .. '/base/calibration.saved')
      local raw = predict()
      -- calibrate.lua fits the same temperature again from the validation set
      local rc3, o3 = t.sh(('%s %s/scripts/calibrate.lua %s/base synthetic_train=300'):format(t.tshost, ts.root, dir))
      t.eq(rc3, 0, o3)
      t.near(ts.json.decode(t.readfile(dir .. '/base/calibration.json')).temperature, cal.temperature, 1e-9)
      os.remove(dir .. '/base/calibration.saved')
      local function ratio(r) return math.log(r.top5[1].probability / r.top5[2].probability) end
      t.eq(raw.top5[1].class, calibrated.top5[1].class)
      t.near(ratio(calibrated), ratio(raw) / cal.temperature, 1e-4)
      local top1 = calibrated.top5[1].probability
      t.truthy(predict(('--abstain %.6f'):format((top1 + 1) / 2)).not_sure == true)
      t.truthy(predict(('--abstain %.6f'):format(top1 / 2)).not_sure == nil)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --abstain 2'):format(t.tshost, ts.root, dir, image))
      t.eq(rc, 2, out)
      t.truthy(out:find('--abstain needs a probability between 0 and 1, got 2', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --tta 0'):format(t.tshost, ts.root, dir, image))
      t.eq(rc, 2, out)
      t.truthy(out:find('--tta needs a number of views 1..1024, got 0', 1, true), out)
      -- a temperature fitted for 3 views: predict then averages 3 views, and says so when told otherwise
      rc, out = t.sh(('%s %s/scripts/calibrate.lua %s/base tta=3 synthetic_train=300'):format(t.tshost, ts.root, dir))
      t.eq(rc, 0, out)
      t.eq(ts.json.decode(t.readfile(dir .. '/base/calibration.json')).tta, 3)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --tta 2'):format(t.tshost, ts.root, dir, image))
      t.truthy(rc == 0 and out:find('the temperature was fitted with 3 view(s), these predictions use 2', 1, true), out)

      -- the main job trained the sign detector and fitted its "no sign" threshold on 4 + 2 validation scenes
      -- (at the one-view temperature; the run is now calibrated for 3 views, so that threshold no longer
      -- holds): scenes.lua measures the search on generated scenes, and predict searches one of them, prints
      -- the box and draws it
      t.truthy(io.open(dir .. '/base/detector/model.safetensors'), 'the main job trains the sign detector')
      local fit = ts.json.decode(t.readfile(dir .. '/base/search.json'))
      t.truthy(fit.threshold > 0 and fit.threshold < 1 and fit.scenes == 4 and fit.empty == 2 and fit.views == 1,
               t.readfile(dir .. '/base/search.json'))
      t.near(fit.temperature, cal.temperature, 1e-12)
      out = run('scenes.lua', ('run=%s/base scenes=4 out=%s/scenes'):format(dir, dir))
      t.truthy(out:find('was fitted at temperature', 1, true) and out:find('>= 0.500', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/detector.lua %s/base fit_only=true fit_scenes=4 synthetic=true synthetic_train=300'):format(
         t.tshost, ts.root, dir))
      t.truthy(rc == 0 and out:find('search.json: "no sign" below', 1, true), out)
      fit = ts.json.decode(t.readfile(dir .. '/base/search.json'))
      t.eq(fit.views, 3)
      out = run('scenes.lua', ('run=%s/base scenes=4 out=%s/scenes'):format(dir, dir))
      t.truthy(out:find(('>= %.3f'):format(fit.threshold), 1, true) and not out:find('was fitted at', 1, true)
               and out:find('at 0.5 instead: scenes of test crops: found', 1, true), out)
      t.truthy(out:find('scenes of test crops', 1, true) and out:find('conclusion', 1, true), out)
      -- a threshold of one's own, from the command line
      out = run('scenes.lua', ('run=%s/base scenes=2 out=%s/scenes-own threshold=0.25'):format(dir, dir))
      t.truthy(out:find('>= 0.250', 1, true), out)
      rc, out = t.sh(('%s %s/experiments/scenes.lua run=%s/base threshold=2'):format(t.tshost, ts.root, dir))
      t.truthy(rc ~= 0 and out:find('threshold=2: give a number between 0 and 1', 1, true), out)
      local measured = ts.json.decode(t.readfile(dir .. '/scenes/results.json'))
      t.eq(measured.sets[1].images, 4)
      t.truthy(measured.sets[1].search_top1 >= 0 and measured.sets[1].whole_top1 >= 0 and measured.empty.images == 1, t.readfile(dir .. '/scenes/results.json'))
      local scene_file = dir .. '/scenes/images/1_0001.png'
      local labels = ts.data.readCSV(dir .. '/scenes/images/labels.csv')
      t.eq(#labels, 10)   -- the 4 scenes, 2 large photos with small signs, and the 4 scenes' close-ups
      t.eq(labels[1].file, '1_0001.png')
      t.eq(labels[5].file, '2_0001.png')
      t.eq(labels[5].Width .. 'x' .. labels[5].Height, '960x720')
      t.eq(labels[7].file, 'close_0001.png')
      -- a close-up: the sign's box inside the photo and at least 60% of its short side (a pixel of rounding)
      local cut, roi = ts.image.load(dir .. '/scenes/images/close_0001.png'), {}
      for _, k in ipairs({'Roi.X1', 'Roi.Y1', 'Roi.X2', 'Roi.Y2'}) do roi[#roi + 1] = tonumber(labels[7][k]) end
      local side = math.max(roi[3] - roi[1], roi[4] - roi[2]) + 1
      t.truthy(side >= 0.6 * math.min(cut:size(1), cut:size(2)) - 1 and roi[1] >= 0 and roi[2] >= 0 and
               roi[3] < cut:size(2) and roi[4] < cut:size(1), t.readfile(dir .. '/scenes/images/labels.csv'))
      t.eq(#measured.sets, 3)
      t.eq(measured.sets[2].set, 'small signs in 960x720 photos')
      t.eq(measured.sets[3].set, 'close-ups of test crops')
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --json --draw %s/drawn.png'):format(t.tshost, ts.root, dir, scene_file, dir))
      t.eq(rc, 0, out)
      local found = ts.json.decode(out:match('^[^\n]*'))[1]
      t.truthy((found.box and #found.box == 4 and not found.best_window)
               or (found.no_sign and #found.best_window == 4 and not found.box), out)
      t.eq(found.threshold, fit.threshold)
      t.eq(found.no_sign == true, found.score < fit.threshold)
      -- a threshold no window reaches: "no sign found", with the best window's box and reading all the same
      local fitted = t.readfile(dir .. '/base/search.json')
      local strict = ts.json.decode(fitted)
      strict.threshold = 1 - 1e-15
      t.writefile(dir .. '/base/search.json', ts.json.encode(strict))
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --json'):format(t.tshost, ts.root, dir, scene_file))
      local none = ts.json.decode(out:match('^[^\n]*'))[1]
      t.truthy(rc == 0 and none.no_sign and not none.box and #none.best_window == 4, out)
      t.eq(none.top5[1].class, found.top5[1].class)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s'):format(t.tshost, ts.root, dir, scene_file))
      t.truthy(rc == 0 and out:find(': no sign found %(the best window, %d+,%d+%-%d+,%d+: P%(sign%) [%d.]+ x P%(class%) [%d.]+ is below 1.00%); that window reads'), out)
      t.writefile(dir .. '/base/search.json', fitted)
      -- views other than those it was fitted with: the threshold does not hold, predict says so
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --tta 2'):format(t.tshost, ts.root, dir, scene_file))
      t.truthy(rc == 0 and out:find('search.json was fitted with 3 view(s), the search now uses 2', 1, true), out)
      -- a threshold fitted for an earlier search does not hold for this one
      local old = ts.json.decode(fitted)
      old.search = nil
      t.writefile(dir .. '/base/search.json', ts.json.encode(old))
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s'):format(t.tshost, ts.root, dir, scene_file))
      t.truthy(rc == 0 and out:find('search.json was fitted for an earlier search', 1, true), out)
      t.writefile(dir .. '/base/search.json', fitted)
      t.truthy(found.sign >= 0 and found.sign <= 1 and found.windows > 1000 and #found.top5 == 5, out)
      local drawn, original = ts.image.load(dir .. '/drawn.png'), ts.image.load(scene_file)
      t.eq(drawn:size(1), original:size(1))
      t.truthy((drawn:float() - original:float()):abs():max() > 0, 'the box is drawn')
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s'):format(t.tshost, ts.root, dir, scene_file))
      t.truthy(rc == 0 and (out:find(': sign at %d+,%d+%-%d+,%d+ %(P%(sign%)') or out:find('no sign found', 1, true)), out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --json --whole'):format(t.tshost, ts.root, dir, scene_file))
      local plain = ts.json.decode(out:match('^[^\n]*'))[1]
      t.truthy(rc == 0 and not plain.box and not plain.windows and #plain.top5 == 5, out)
      -- --max-side: a 960x720 photo searched shrunk to 480 pixels looks at fewer windows than at its own size
      local function windows_at(extra)
         local code, o = t.sh(('%s %s/scripts/predict.lua %s/base %s/scenes/images/2_0001.png --json %s'):format(
            t.tshost, ts.root, dir, dir, extra))
         t.eq(code, 0, o)
         return ts.json.decode(o:match('^[^\n]*'))[1].windows
      end
      local few, many = windows_at('--max-side 480'), windows_at('')
      t.truthy(few > 1000 and few * 3 < many, few .. ' against ' .. many)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --max-side 10'):format(t.tshost, ts.root, dir, scene_file))
      t.truthy(rc == 2 and out:find('--max-side needs a whole number of pixels 32..16384, got 10', 1, true), out)
      -- another detector than the run's own (a copy elsewhere): the fitted threshold is not its, and predict
      -- says so; the run's own, however spelled, keeps it
      t.eq((t.sh(('cp -r %s/base/detector %s/other_detector'):format(dir, dir))), 0)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --json --detector %s/other_detector'):format(t.tshost, ts.root, dir,
         scene_file, dir))
      t.truthy(rc == 0 and out:find('holds the threshold of its own detector', 1, true)
               and ts.json.decode(out:match('(%[[^\n]*)'))[1].threshold == 0.5, out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --json --detector %s/base/detector/.'):format(t.tshost, ts.root, dir,
         scene_file, dir))
      t.truthy(rc == 0 and ts.json.decode(out:match('(%[[^\n]*)'))[1].threshold == fit.threshold, out)
      -- a classifier given as the detector: its P(class 1) would pass for P(sign)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --detector %s/base'):format(t.tshost, ts.root, dir, scene_file, dir))
      t.truthy(rc == 1 and out:find('base is not a sign detector: its model has 43 classes', 1, true), out)
      -- drawings into the inputs' own folder: two inputs of one name (a.png, a.jpg) get a-2.png and a-3.png,
      -- the input a.png is left as it was; --draw naming an input, or a folder that cannot be made, is refused
      -- before any search
      ts.files.mkdirs(dir .. '/in')
      t.writefile(dir .. '/in/a.png', t.readfile(scene_file))
      ts.image.save(dir .. '/in/a.jpg', ts.image.load(scene_file))
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s/in/a.png %s/in/a.jpg --whole --json --draw %s/in'):format(
         t.tshost, ts.root, dir, dir, dir, dir))
      local two = ts.json.decode(out:match('(%[[^\n]*)'))
      t.truthy(rc == 0 and two[1].drawn == dir .. '/in/a-2.png' and two[2].drawn == dir .. '/in/a-3.png', out)
      t.truthy(t.readfile(dir .. '/in/a.png') == t.readfile(scene_file), 'the input image is left as it was')
      -- again: the drawings already there are files of the user's now, kept as they are
      local earlier = t.readfile(dir .. '/in/a-2.png')
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s/in/a.jpg %s/in/a.png --whole --json --draw %s/in'):format(
         t.tshost, ts.root, dir, dir, dir, dir))
      two = ts.json.decode(out:match('(%[[^\n]*)'))
      t.truthy(rc == 0 and two[1].drawn == dir .. '/in/a-4.png' and two[2].drawn == dir .. '/in/a-5.png', out)
      t.truthy(t.readfile(dir .. '/in/a-2.png') == earlier, 'an earlier drawing was replaced')
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s/in/a.png --whole --draw %s/nowhere/out.png'):format(t.tshost, ts.root,
         dir, dir, dir))
      t.truthy(rc == 1 and out:find('--draw ' .. dir .. '/nowhere/out.png: ' .. dir .. '/nowhere does not exist', 1, true)
               and not out:find('(%d+x%d+)'), out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s/in/a.png --whole --draw %s/in/a.png'):format(t.tshost, ts.root, dir, dir, dir))
      t.truthy(rc == 1 and out:find('in/a.png is the input image: it would be overwritten', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s/in/a.png --whole --draw %s/in/a.png/boxes'):format(t.tshost, ts.root, dir, dir, dir))
      t.truthy(rc == 1 and out:find('a.png/boxes: cannot make the folder ' .. dir .. '/in/a.png/boxes: ' .. dir ..
                                    '/in/a.png: a file of that name is in the way', 1, true), out)
      t.truthy(t.readfile(dir .. '/in/a.png') == t.readfile(scene_file), 'the input image is left as it was')
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --detector %s/nowhere'):format(t.tshost, ts.root, dir, scene_file, dir))
      t.truthy(rc == 1 and out:find('--detector ' .. dir .. '/nowhere: no model.safetensors there', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/base %s --draw'):format(t.tshost, ts.root, dir, scene_file))
      t.truthy(rc == 2 and out:find('--draw needs a path', 1, true), out)
   end)

   t.test('comparison experiments: grayscale, balance, illumination, pooling, precision, exposure, accumulate', function()
      local dir = t.tmpdir()
      for _, script in ipairs({'grayscale.lua', 'balance.lua', 'illumination.lua', 'pooling.lua', 'precision.lua',
                                 'exposure.lua'}) do
         local out = run(script, ('epochs=1 run=%s/%s'):format(dir, script))
         t.truthy(out:find('conclusion', 1, true), script .. ': ' .. out)
         if script == 'balance.lua' then
            t.truthy(out:find('sqrt sampling', 1, true), 'the square-root sampler: ' .. out)
         end
         if script == 'exposure.lua' then
            t.truthy(out:find('conclusion: washout against no-exposure', 1, true), 'the washout variant: ' .. out)
         end
         -- the conclusions say their test (McNemar's p), not only the verdict
         if script == 'grayscale.lua' or script == 'exposure.lua' then
            t.truthy(out:find('conclusion: [^\n]*McNemar p = '), script .. ': ' .. out)
         end
      end
      local rc, out = t.sh(('%s %s/experiments/exposure.lua synthetic=true synthetic_train=300 epochs=1 variants=baseline,glare run=%s/x'):format(
         t.tshost, ts.root, dir))
      t.truthy(rc ~= 0 and out:find('variants=baseline,glare: unknown name glare', 1, true), out)
      -- pooling's runs reload in another process: their builder registers from a file of its own
      local pooled = dir .. '/pooling.lua/downsample stride-s1'
      local config = ts.json.decode(t.readfile(pooled .. '/config.json'))
      t.eq(config.model_source.file, 'experiments/models/pooling.lua')
      t.eq(config.model_source.script, 'experiments/pooling.lua')
      ts.image.save(dir .. '/sign.png', ts.data.synthetic{train = 1, valid = 1, test = 1}.train.x[1])
      rc, out = t.sh(("%s %s/scripts/predict.lua '%s' %s/sign.png --json --whole"):format(t.tshost, ts.root, pooled, dir))
      t.eq(rc, 0, out)
      t.eq(#ts.json.decode(out:match('^[^\n]*'))[1].top5, 5, out)
      -- every ingredient against the baseline recipe, the baseline's runs shared with exposure's
      out = run('ingredients.lua', ('epochs=1 what=ema,tta,last,precisebn,average,swa,swalr,blur,stn,clahe,multiscale,nofade,nocutout,narrow,wider,fine,gap,bf16,sqrt,shadow,mix,distill,trainval teachers=2 run=%s/exposure.lua'):format(dir))
      for _, row in ipairs({'baseline+ema', 'baseline+tta8', 'baseline@last', 'baseline+precisebn',
                            'baseline+average', 'baseline+swa', 'baseline+swalr', 'baseline+stn', 'baseline+clahe', 'baseline+multiscale', 'baseline-nofade',
                            'baseline-nocutout', 'baseline-narrow', 'baseline-wider', 'baseline+fine', 'baseline+gap', 'baseline+bf16', 'baseline+sqrt', 'baseline+shadow', 'baseline+mix', 'baseline+distill2', 'baseline+trainval', 'conclusion'}) do
         t.truthy(out:find(row, 1, true), row .. ' missing:\n' .. out)
      end
      -- the student was taught by the recipe's first two seeds (the second trained for it)
      local taught = ts.json.decode(t.readfile(dir .. '/exposure.lua/baseline+distill2-s1/config.json')).distill
      t.eq(taught.teachers[2], dir .. '/exposure.lua/baseline-s2')
      t.eq(taught.weight, 0.5)
      -- an ensemble of exposure's two runs, written as a run of its own; a run twice over is that run
      local a, b = dir .. '/exposure.lua/baseline-s1', dir .. '/exposure.lua/no-exposure-s1'
      out = run('ensemble.lua', ('runs=%s,%s run=%s/ens'):format(a, b, dir))
      t.truthy(out:find('ensemble of 2', 1, true) and out:find('conclusion', 1, true), out)
      local ens = ts.json.decode(t.readfile(dir .. '/ens/final.json'))
      t.eq(#ens.members, 2)
      t.eq(ens.data.test, ts.json.decode(t.readfile(a .. '/final.json')).data.test, "the members' test set, for compare.lua")
      t.truthy(ens.temperature > 0 and ens.test_accuracy >= 0, t.readfile(dir .. '/ens/final.json'))
      out = run('ensemble.lua', ('runs=%s,%s run=%s/twice'):format(a, a, dir))
      t.near(ts.json.decode(t.readfile(dir .. '/twice/final.json')).test_accuracy,
             ts.json.decode(t.readfile(a .. '/final.json')).test_accuracy, 1e-12)
      -- with a member trained on the validation images too, validation chooses nothing and fits no temperature
      out = run('ensemble.lua', ('runs=%s,%s/exposure.lua/baseline+trainval-s1 run=%s/ens-tv'):format(a, dir, dir))
      t.truthy(out:find('over its first member', 1, true) and out:find('no calibration.json', 1, true), out)
      t.eq(ts.json.decode(t.readfile(dir .. '/ens-tv/final.json')).temperature, nil)
      t.eq(io.open(dir .. '/ens-tv/calibration.json'), nil)
      -- with a member that held out a share of the validation tracks, that share (unseen by every member) chooses the
      -- reference and fits the temperature
      run('baseline.lua', ('epochs=1 held_out=0.5 detector=false run=%s/tvheld'):format(dir))
      out = run('ensemble.lua', ('runs=%s,%s/tvheld run=%s/ens-held'):format(a, dir, dir))
      local record = ts.json.decode(t.readfile(dir .. '/tvheld/final.json')).trained_on.held_out
      t.truthy(out:find('over the member validation chooses', 1, true), out)
      t.eq(ts.json.decode(t.readfile(dir .. '/ens-held/calibration.json')).valid_images, record.images)
      t.truthy(ts.json.decode(t.readfile(dir .. '/ens-held/final.json')).temperature > 0)
      rc, out = t.sh(('%s %s/experiments/ensemble.lua runs=%s'):format(t.tshost, ts.root, a))
      t.truthy(rc ~= 0 and out:find('needs at least two run directories', 1, true), out)
      -- a member tested on other data than the first is refused, named
      t.sh(('cp -r %s %s/other'):format(b, dir))
      local other = ts.json.decode(t.readfile(dir .. '/other/final.json'))
      other.test_images = other.test_images + 1
      ts.files.writeFile(dir .. '/other/final.json', ts.json.encode(other))
      rc, out = t.sh(('%s %s/experiments/ensemble.lua runs=%s,%s/other synthetic=true synthetic_train=300'):format(
         t.tshost, ts.root, a, dir))
      t.truthy(rc ~= 0 and out:find(('%s/other was trained on %d test images'):format(dir, other.test_images), 1, true), out)
      -- ... and so is one whose test images are others of the same number (its final.json's fingerprint)
      other.test_images = other.test_images - 1
      other.data.test = other.data.test:gsub('crc32c %x+,', 'crc32c 00000000,', 1)
      ts.files.writeFile(dir .. '/other/final.json', ts.json.encode(other))
      rc, out = t.sh(('%s %s/experiments/ensemble.lua runs=%s,%s/other synthetic=true synthetic_train=300'):format(
         t.tshost, ts.root, a, dir))
      t.truthy(rc ~= 0 and out:find(('%s/other was trained and tested on other test data (its final.json has %s, the ' ..
                                     'data here is '):format(dir, other.data.test), 1, true), out)
      out = run('accumulate.lua', 'images=256')
      local diff = tonumber(out:match('largest weight difference after %d+ updates: ([%d%.e%-]+)'))
      t.truthy(diff and diff < 1e-5, out)
   end)

   t.test('mispredict, layers and units on a tiny run: classes without test images, no correct image, names as printed', function()
      local dir = t.tmpdir()
      run('baseline.lua', ('synthetic_train=60 epochs=1 trainval=false detector=false run=%s/b'):format(dir))
      -- every test image wrong: the statistics had no correct images to compare with (they printed nan) and a mistake whose
      -- class no test image was read as stood beside itself in the gallery
      local preds = ts.load(dir .. '/b/test_predictions.safetensors')
      local n = preds.target:numel()
      local wrong = {}
      for i = 1, n do wrong[i] = (preds.target[i] + 1) % 43 end
      ts.save(dir .. '/b/test_predictions.safetensors', {pred = ts.tensor(wrong, 'int64'), target = preds.target,
                                                          confidence = preds.confidence})
      local out = run('mispredict.lua', ('synthetic_train=60 run=%s/b'):format(dir))
      -- 20 test images of 43 classes: the classes without any were listed as the lowest recall, "0.0000 of 0"
      t.truthy(not out:find(' of 0\n', 1, true) and not out:find('nan', 1, true), out)
      t.truthy(out:find('conclusion: every test image is mispredicted, so no correct prediction to compare', 1, true), out)
      t.truthy(out:find('else a training image', 1, true) and io.open(dir .. '/b/mispredicted_pairs.png'), out)
      -- the pictures carry the number the table gives the layer (00 for layer 0; they were numbered from 1)
      out = run('layers.lua', ('synthetic_train=60 run=%s/b'):format(dir))
      t.truthy(out:find('\n0    Conv2d', 1, true) and io.open(dir .. '/b/layers/00_Conv2d.png') and
               io.open(dir .. '/b/layers/02_ReLU.png') and not io.open(dir .. '/b/layers/01_Conv2d.png'), out)
      -- the conclusion says depths, the table's second column ("layer 7" was depth 7, the first column's layer 24)
      out = run('units.lua', ('synthetic_train=60 run=%s/b'):format(dir))
      t.truthy(out:find('mean selectivity is [%d.]+ at depth 1 and [%d.]+ at the last'), out)
   end)

   t.test('a data folder given by data= or TSHOST_DATA that holds no GTSRB is an error, not generated signs', function()
      local dir = t.tmpdir()
      -- the experiment ran on generated signs after one printed line, and its numbers read as GTSRB's
      for _, env_and_arg in ipairs({{'', 'data=' .. dir}, {'TSHOST_DATA=' .. dir .. ' ', ''}}) do
         local rc, out = t.sh(('%s%s %s/experiments/baseline.lua epochs=1 detector=false %s run=%s/r'):format(env_and_arg[1],
                              t.tshost, ts.root, env_and_arg[2], dir))
         local named = env_and_arg[2] ~= '' and env_and_arg[2] or 'TSHOST_DATA=' .. dir
         t.truthy(rc == 1 and out:find(named .. ': GTSRB: train.pickle not found in ' .. dir, 1, true) and
                  not out:find('data: generated', 1, true), out)
         t.truthy(not ts.files.exists(dir .. '/r/config.json'), 'nothing trained')
      end
      -- why it looked there: data=data was "neither an argument nor TSHOST_DATA was given"; an empty TSHOST_DATA is
      -- none (it looked in '' and never in data/)
      local rc, out = t.sh(('cd %s && %s %s/experiments/baseline.lua epochs=1 data=data run=%s/r'):format(dir, t.tshost,
                           ts.root, dir))
      t.truthy(rc == 1 and out:find('data=data: GTSRB: train.pickle not found in data (looked there because it was given)',
               1, true), out)
      rc, out = t.sh(('cd %s && TSHOST_DATA= %s %s/experiments/grayscale.lua epochs=1 synthetic_train=30 run=%s/g'):format(
                     dir, t.tshost, ts.root, dir))
      t.truthy(rc == 0 and out:find('train.pickle not found in data (looked there because neither an argument nor ' ..
                                    'TSHOST_DATA was given)', 1, true), out)
   end)

   t.test('illumination on fewer than 32 images; ingredients checks what= before the data', function()
      local dir = t.tmpdir()
      -- 10 images: the contrast's 5% quantile looked up element 0 and the 16 darkest and 16 brightest past the end
      local out = run('illumination.lua', ('synthetic_train=10 epochs=1 run=%s/ill'):format(dir))
      t.truthy(out:find('contrast (luminance standard deviation): 5%', 1, true) and out:find('conclusion', 1, true), out)
      t.eq(ts.image.load(dir .. '/ill/darkest_brightest_clahe.png'):size(2), ts.image.load(dir .. '/ill/darkest_brightest_none.png'):size(2))
      -- an unknown or repeated ingredient was refused only once the data was made (GTSRB read, or 6,000 signs made)
      for arg, says in pairs({['what=foo'] = 'option what=foo: unknown name foo (known: average,',
                              ['what=ema,ema'] = 'option what=ema,ema: ema given twice'}) do
         local rc, o = t.sh(('%s %s/experiments/ingredients.lua synthetic=true %s run=%s/r'):format(t.tshost, ts.root, arg, dir))
         t.truthy(rc ~= 0 and o:find(says, 1, true) and not o:find('data:', 1, true), o)
      end
   end)

   t.test('balance: the rare classes\' recall is the mean over the seeds, and the best accuracy is said with its test', function()
      local dir = t.tmpdir()
      local out = run('balance.lua', ('synthetic_train=60 epochs=1 seeds=2 run=%s'):format(dir))
      local rare = {}
      for c in out:match('rare classes %(under half the median of %d+%): ([%d ]*)'):gmatch('%d+') do rare[#rare + 1] = tonumber(c) end
      -- seed 1's recall and macro-F1 were printed beside the mean accuracy of both seeds
      -- At this budget the rare classes' recall is 0 on every seed (one epoch learns none of them), so the macro-F1, which
      -- the same loop over the seeds averages, is what tells seed 1 from the mean: it must differ somewhere
      local seeds_differ = false
      for _, name in ipairs({'none', 'upsample+augment', 'sqrt sampling', 'synthesize', 'downsample', 'class weights'}) do
         local recall, f1, first_f1 = 0, 0, nil
         for seed = 1, 2 do
            local final = ts.json.decode(t.readfile(('%s/%s-s%d/final.json'):format(dir, name, seed)))
            for _, c in ipairs(rare) do recall = recall + final.per_class[c + 1].recall / #rare / 2 end
            first_f1 = first_f1 or final.test_macro_f1
            f1 = f1 + final.test_macro_f1 / 2
         end
         seeds_differ = seeds_differ or ('%.4f'):format(first_f1) ~= ('%.4f'):format(f1)
         t.truthy(out:find(('  %-20s mean rare-class recall %.4f   macro-F1 %.4f'):format(name, recall, f1), 1, true), name .. ': ' .. out)
      end
      t.truthy(seeds_differ, "seed 1's macro-F1 is the mean's for every variant: the test cannot tell them apart: " .. out)
      t.truthy(out:find('conclusion: best rare%-class recall with .*; .* gives the best test accuracy .*McNemar p = '), out)
   end)

   t.test('transfer learning from every pretrained network', function()
      if not os.getenv('TSHOST_MODELS') then t.skip('TSHOST_MODELS is not set') end
      local dir = t.tmpdir()
      local out = run('transfer.lua', ('epochs=1 probe_epochs=2 models=resnet8,mobilenet run=%s'):format(dir))
      for _, row in ipairs({'resnet8 linear probe', 'resnet8 fine-tuned', 'resnet8 gradual unfreezing',
                            'mobilenet from scratch', 'mobilenet linear probe'}) do
         t.truthy(out:find(row, 1, true), row .. ' missing:\n' .. out)
      end
      t.truthy(out:find('resnet8: pretraining [bc]o[us]g?h?t [%d.]+ points %(.-McNemar p = '), out)
      -- every recipe leaves a model that loads back into its architecture
      for _, recipe in ipairs({'probe', 'finetune', 'unfreeze', 'scratch'}) do
         local m = ts.models.resnet8({classes = 43})
         ts.load(dir .. '/resnet8-' .. recipe .. '/model.safetensors', m)
      end
   end)

   t.test('transfer: runs found on other data are left out of the table and of the tests', function()
      if not os.getenv('TSHOST_MODELS') then t.skip('TSHOST_MODELS is not set') end
      local dir = t.tmpdir()
      -- an earlier invocation's run on 90 generated signs (30 test images) beside this one's on 60 (20): McNemar paired
      -- the two and failed on their lengths, after the training
      run('baseline.lua', ('synthetic_train=90 epochs=1 trainval=false detector=false run=%s/t/resnet8-scratch'):format(dir))
      local out = run('transfer.lua', ('synthetic_train=60 epochs=1 models=resnet8 recipes=finetune baseline=%s/none run=%s/t'):format(
         dir, dir))
      t.truthy(out:find(('(left out: %s/t/resnet8-scratch was trained on 90 train images, and the data here has 60'):format(dir), 1, true), out)
      t.truthy(out:find('resnet8 fine-tuned', 1, true) and not out:find('pretraining', 1, true), out)
   end)

   t.test("the course's questions as experiments: verification and recognition by triplet embeddings, memory remedies", function()
      local out = run('verification.lua', 'steps=4 images=300 subsets=2 batch=32 per_class=4')
      t.truthy(out:find('one image per identity', 1, true) and out:find('conclusion', 1, true), out)
      -- one picture per identity: no anchor finds a positive, so no triplet is valid
      t.truthy(out:match('one image per identity %(each image its own class%)%s+[%d.]+%s+[%d.]+%%%s+[%d.]+%s+0%%'), out)
      out = run('memory.lua', 'steps=1 batches=16,32')
      t.truthy(out:find('activation checkpointing', 1, true) and out:find('auto_microbatch under', 1, true), out)
   end)

   -- a run folder made by hand (no training): four 8x8 test images of three classes, two predicted right
   t.test('the report escapes the record\'s fields, cuts long class names whole, and shows classes predicted beyond the test set\'s', function()
      local dir = t.tmpdir()
      local long = string.rep('\195\156berholverbot ', 8)   -- "Überholverbot", 104 characters in all
      local ds = ts.data.Dataset(ts.zeros(4, 8, 8, 3, 'uint8'), ts.tensor({0, 1, 2, 1}, 'int64'),
                                 {[0] = '<script>x</script>', [1] = 'a & "b"', [2] = long})
      local function report(pred, confidence)
         ts.files.writeFile(dir .. '/config.json', '{}')
         ts.files.writeFile(dir .. '/final.json', ts.json.encode({test_accuracy = 0.5, test_accuracy_ci95 = {0.1, 0.9},
            test_macro_f1 = 0.4, parameters = '<script>p</script>', best_epoch = '<img src=x onerror=alert(1)>',
            trained_on = {train = 'x', train_images = '<script>n</script>'}}))
         ts.files.writeFile(dir .. '/metrics.jsonl', '{"train_loss": 1, "train_accuracy": 0.5}\n')
         ts.save(dir .. '/test_predictions.safetensors', {pred = ts.tensor(pred, 'int64'), target = ds.y,
                                                          confidence = ts.tensor(confidence or {0.9, 0.8, 0.7, 0.6})})
         ts.report.write(dir, {data = {train = ds, test = ds, classNames = ds.classNames}})
         return t.readfile(dir .. '/report.html')
      end
      local html = report({0, 1, 1, 2})
      -- final.json's parameters and best epoch went into the page as markup
      t.truthy(not html:find('<script>', 1, true) and not html:find('<img src=x', 1, true), 'markup from the run files')
      t.truthy(html:find('<b>&lt;script&gt;p&lt;/script&gt;</b>', 1, true) and html:find('&lt;script&gt;x&lt;/script&gt;', 1, true))
      -- a long name ran off the chart's left edge: cut to 45 characters, whole ones, and whole in the tooltip
      local cut = html:match('text%-anchor="end">(2 \195\156[^<]*)<')
      t.eq(cut, '2 ' .. long:sub(1, 45) .. '\226\128\166')   -- 42 characters of the name (45 bytes)
      t.truthy(html:find('<title>2 ' .. long .. ': precision', 1, true), 'the whole name in the tooltip')
      t.eq(ts.report.clip('\195\156\195\156\195\156', 2), '\195\156\226\128\166')
      t.eq(ts.report.clip(7, 2), '7')   -- a number label failed on gmatch
      -- a prediction of a class the test set lacks (a model of 61 classes) failed in the confusion matrix
      html = report({0, 60, 2, 2})
      t.truthy(html:find('<tr><td>60</td>', 1, true), 'class 60 in the per-class table')
      t.raises(function() report({0, -1, 2, 2}) end, 'test_predictions.safetensors: pred holds classes from -1 to 2; class ids lie in 0..9999')
      -- (compare.lua reads the predictions through the same check)
      t.raises(function() report({0, 1, 1, 2}, {0.9, 1.5, 0.7, 0.6}) end, 'confidence holds values outside [0, 1]')
      -- the most confident mistakes first, one of NaN confidence last (a NaN broke the sort's order)
      html = report({0, 1, 1, 2}, {0.9, 0.8, 0 / 0, 0.6})
      local order = {}
      for i, conf in html:gmatch('<figcaption>#(%d+)<br>.-%((.-)%)</figcaption>') do order[#order + 1] = i .. ' ' .. conf end
      t.eq(table.concat(order, ', '), '4 60%, 3 confidence NaN')
      -- an empty run argument (an unset variable) failed with a traceback
      local rc, out = t.sh(('%s %s/scripts/report.lua ""'):format(t.tshost, ts.root))
      t.truthy(rc == 2 and out:find('usage: tshost scripts/report.lua RUN', 1, true), out)
   end)

end
