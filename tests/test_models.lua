-- Model builders and the pretrained networks (these need TSHOST_MODELS), and the quirks they depend on,
-- checked here against values computed independently.
local nn = ts.nn

return function(t)
   t.test('builders: parameter counts and checkpoint names', function()
      local cases = {{'refcnn', 675339}, {'baseline', 823051}, {'resnet20', 269722}, {'resnet56', 853018},
                     {'resnet8', 78186}, {'mobilenet_v1_025', 216322}}
      for _, c in ipairs(cases) do t.eq(ts.models[c[1]]():numParameters(), c[2], c[1]) end
      -- the spatial transformer in front of the baseline: its localization's 47,270 more, starting at the
      -- identity warp, so the untrained network computes what the plain one would
      local stn, plain = ts.models.baseline{stn = true}, ts.models.baseline()
      t.eq(stn:numParameters(), 823051 + 47270)
      t.eq(stn:stateDict()[1][1], 'stn.localization.1.weight')
      local sd = stn:stateDict()
      for i, pair in ipairs(plain:stateDict()) do sd[#sd - #plain:stateDict() + i][2]:copy(pair[2]) end
      stn:evaluate(); plain:evaluate()
      local x = ts.randn(2, 3, 32, 32)
      t.near(stn:forward(x), plain:forward(x), 1e-5, 1e-5)
      -- multi-scale: the first stage's 32 maps pooled to 4x4 join the 2,048 features, 512 more inputs to the Linear
      local ms = ts.models.baseline{multiscale = true}
      t.eq(ms:numParameters(), 823051 + 512 * 256)
      local names = {}
      for _, pair in ipairs(ms:stateDict()) do names[pair[1]] = tostring(pair[2]:size()) end
      t.eq(names['scales.0.0.weight'], '[64x32x3x3]')
      t.eq(names['9.weight'], '[256x2560]')
      -- the joined features: the deep ones first, then the first stage's, its pooled maps channel by channel
      ms:evaluate()
      local x = ts.randn(2, 3, 32, 32)
      ms:forward(x)
      local joined, first = ms:get(8).output, ms:get(7).output
      t.eq(tostring(joined:size()), '[2x2560]')
      t.near(joined:narrow(2, 2049, 512):contiguous():view(2, 32, 4, 4):narrow(3, 2, 1):narrow(4, 3, 1):contiguous():view(2, 32),
             first:narrow(3, 5, 4):narrow(4, 9, 4):contiguous():view(2, 32, 16):max(3):contiguous():view(2, 32), 1e-6, 1e-6)
      -- fine: the last stage's 8x8 maps unpooled, a 1x1 convolution to 32 channels (4,096 weights, BN 64), the
      -- Linear's inputs 64 x 32 = 2,048 as before; its features are that convolution's maps through BN and ReLU
      local fine = ts.models.baseline{fine = 32}
      t.eq(fine:numParameters(), 823051 + 128 * 32 + 2 * 32)
      fine:evaluate()
      fine:forward(x)
      t.eq(tostring(fine:get(23).output:size()), '[2x32x8x8]')
      t.eq(tostring(fine:get(24).output:size()), '[2x2048]')
      t.near(fine:get(24).output, fine:get(23).output:contiguous():view(2, 2048), 0, 0)
      -- gap: the last stage's 128 maps averaged over their 8x8 places, 128 inputs to the first Linear instead of 2,048
      local gap = ts.models.baseline{gap = true}
      t.eq(gap:numParameters(), 823051 - (2048 - 128) * 256)
      gap:evaluate()
      gap:forward(x)
      t.eq(tostring(gap:get(22).output:size()), '[2x128]')
      t.near(gap:get(22).output, gap:get(20).output:contiguous():view(2, 128, 64):mean(3):contiguous():view(2, 128), 1e-6, 1e-6)
      t.raises(function() ts.models.baseline{gap = true, fine = 32} end, 'fine and gap')
      names = {}
      for _, pair in ipairs(ts.models.resnet20():stateDict()) do names[pair[1]] = true end
      for _, n in ipairs({'conv1.weight', 'bn1.running_var', 'layer1.0.conv1.weight', 'layer2.0.bn2.bias',
                          'layer3.2.conv2.weight', 'linear.weight', 'linear.bias'}) do
         t.truthy(names[n], 'resnet20 lacks ' .. n)
      end
      names = {}
      for _, pair in ipairs(ts.models.resnet8():stateDict()) do names[pair[1]] = true end
      t.truthy(names['stage2.shortcut.weight'] and names['stage3.conv1.bias'] and names['fc.weight'])
      names = {}
      for _, pair in ipairs(ts.models.mobilenet_v1_025():stateDict()) do names[pair[1]] = true end
      t.truthy(names['blocks.0.dw.weight'] and names['blocks.12.pw_bn.running_mean'] and names['fc.bias'])
   end)

   t.test('option-A shortcut: subsample by 2 and pad channels on both sides', function()
      local x = ts.randn(2, 4, 6, 6)
      local s = nn.ZeroPadShortcut(4, 8, 2)
      local y = s:forward(x)
      t.eq(tostring(y:size()), '[2x8x3x3]')
      for n = 1, 2 do
         for c = 1, 8 do
            for i = 1, 3 do
               for j = 1, 3 do
                  local want = (c > 2 and c <= 6) and x:get(n, c - 2, 2 * i - 1, 2 * j - 1) or 0
                  t.eq(y:get(n, c, i, j), want)
               end
            end
         end
      end
      local g = s:backward(x, ts.ones(2, 8, 3, 3))
      t.eq(g:sum(), 2 * 4 * 9)
      t.eq(g:get(1, 1, 2, 1), 0)
      t.eq(g:get(1, 1, 3, 3), 1)
   end)

   t.test("TensorFlow 'same' padding is the explicit asymmetric padding", function()
      local a = nn.Conv2d(3, 4, 3, {stride = 2, padding = 'same'})
      local b = nn.Conv2d(3, 4, 3, {stride = 2, padding = {0, 1, 0, 1}})
      b.weight:copy(a.weight)
      b.bias:copy(a.bias)
      for _, size in ipairs({8, 16, 32}) do
         local x = ts.randn(2, 3, size, size)
         t.truthy(a:forward(x):equal(b:forward(x)), 'size ' .. size)
      end
      -- odd sizes pad 1 on each side: out = ceil(7 / 2) = 4
      t.eq(a:forward(ts.randn(1, 3, 7, 7)):size(3), 4)
   end)

   t.test('a new head, a frozen backbone and parameter groups', function()
      local m = ts.models.resnet20()
      local head = ts.transfer.newHead(m, 43)
      t.eq(head.nout, 43)
      t.eq(m:forward(ts.randn(2, 3, 32, 32)):size(2), 43)
      ts.transfer.freezeBackbone(m, {bn_eval = true})
      local p = m:parameters()
      t.eq(#p, 2)
      m:training()
      local rm = m.bn1.running_mean:clone()
      m:forward(ts.randn(4, 3, 32, 32))
      t.truthy(m.bn1.running_mean:equal(rm), 'a frozen BN with bn_eval keeps its statistics')
      m:unfreeze()
      local groups = ts.transfer.paramGroups(m, {backbone_lr = 0.001, head_lr = 0.01})
      t.eq(#groups[1].params[1], #m:parameters() - 2)
      local opt = ts.optim.SGD(groups, {lr = 0.1, momentum = 0.9})
      t.eq(opt.groups[1].lr, 0.001)
      t.eq(opt.groups[2].lr, 0.01)
   end)

   t.test('ts.transfer refuses a missing model, a missing or misspelt option (freezeBackbone, paramGroups, gradualUnfreeze)', function()
      local m = ts.models.resnet8()
      t.raises(function() ts.transfer.freezeBackbone() end,
               'ts.transfer.freezeBackbone(model [, opts]): model must be a module, got nil')
      t.raises(function() ts.transfer.freezeBackbone(m, {bn_evel = true}) end, 'ts.transfer.freezeBackbone: unknown option bn_evel (known: bn_eval)')
      t.raises(function() ts.transfer.freezeBackbone(m, {bn_eval = 1}) end, 'ts.transfer.freezeBackbone: bn_eval must be true or false, got 1')
      t.raises(function() ts.transfer.freezeBackbone(m, true) end, 'ts.transfer.freezeBackbone(model [, opts]): opts must be a table, got true')
      -- a class passed for the model, and a lone layer froze nothing without a word
      t.raises(function() ts.transfer.freezeBackbone(nn.Sequential) end,
               'model must be a module, got the class Sequential (make one: Sequential(...))')
      t.raises(function() ts.transfer.paramGroups(nn.ReLU(), {}) end,
               'ts.transfer.paramGroups(model, o): model must be a network of a backbone and a head, got ReLU with 0 children')
      t.eq(#m:parameters(), #ts.models.resnet8():parameters(), 'nothing frozen by a refused call')
      t.raises(function() ts.transfer.paramGroups(m) end,
               'ts.transfer.paramGroups(model, o): o must be a table {backbone_lr, head_lr}, got nil')
      t.raises(function() ts.transfer.paramGroups(nil, {}) end, 'ts.transfer.paramGroups(model, o): model must be a module, got nil')
      t.raises(function() ts.transfer.paramGroups(m, {backbone_lr = 0.01, head_rl = 0.1}) end,
               'ts.transfer.paramGroups: unknown option head_rl (known: backbone_lr, head_lr)')
      t.raises(function() ts.transfer.paramGroups(m, {backbone_lr = -1}) end, 'ts.transfer.paramGroups: backbone_lr must be a finite number >= 0, got -1')
      t.raises(function() ts.transfer.gradualUnfreeze(m, {backbone_rl = 0.01}) end,
               'ts.transfer.gradualUnfreeze: unknown option backbone_rl (known: backbone_lr, head_lr, stages)')
      t.raises(function() ts.transfer.gradualUnfreeze(nil, {}) end, 'ts.transfer.gradualUnfreeze(model [, o]): model must be a module, got nil')
      -- nil learning rates are the optimizer's own, as before
      local groups = ts.transfer.paramGroups(m, {head_lr = 0.1})
      local opt = ts.optim.SGD(groups, {lr = 0.05})
      t.eq(opt.groups[1].lr, 0.05)
      t.eq(opt.groups[2].lr, 0.1)
   end)

   t.test('gradual unfreezing: the head first, then one stage per epoch from the top down', function()
      local m = ts.models.resnet20()
      ts.transfer.newHead(m, 43)
      local groups, on_epoch, stages = ts.transfer.gradualUnfreeze(m, {backbone_lr = 0.01, head_lr = 0.1, stages = 3})
      t.eq(#stages, 3)
      t.truthy(stages[1][#stages[1]] == m.layer3, 'the first stage ends at the top of the backbone')
      t.truthy(stages[3][1] == m.conv1, 'the last stage starts at the stem')
      local opt = ts.optim.SGD(groups, {lr = 0.1, momentum = 0.9})
      t.eq(#m:parameters(), 2)
      m:training()
      local x, total = ts.randn(2, 3, 32, 32), #ts.models.resnet20():parameters()
      local w
      m.layer3:apply(function(x) w = w or x.weight end)
      local before = w:clone()
      local rm = m.bn1.running_mean:clone()
      m:forward(x)
      t.truthy(m.bn1.running_mean:equal(rm), 'frozen BN keeps its statistics')
      local counts = {}
      for epoch = 1, 3 do
         on_epoch(epoch, m, opt)
         counts[epoch] = #m:parameters()
         t.eq(#opt.groups, epoch + 1)
         t.eq(opt.groups[epoch + 1].lr, 0.01)
      end
      t.truthy(counts[1] > 2 and counts[1] < counts[2] and counts[2] < counts[3], table.concat(counts, ' '))
      t.eq(counts[3], total)
      m:forward(x)
      t.truthy(not m.bn1.running_mean:equal(rm), 'unfrozen BN updates its statistics again')
      -- the unfrozen layers learn
      local crit = ts.nn.CrossEntropyLoss()
      local y = ts.tensor({1, 2}, 'int64')
      opt:zeroGrad()
      local out = m:forward(x)
      crit:forward(out, y)
      m:backward(x, crit:backward(out, y))
      opt:step()
      t.truthy(not w:equal(before), 'layer3 moved after it was unfrozen')
   end)

   t.test('folding the input scale into the first convolution changes nothing but the convention', function()
      local a = ts.models.resnet8({classes = 10})
      a:evaluate()
      a.inputConvention = {mean = {0, 0, 0}, std = {1 / 255, 1 / 127.5, 1 / 64}, size = 32}
      local b = ts.models.resnet8({classes = 10})
      b:evaluate()
      local pa = a:parameters()
      local pb = b:parameters()
      for i = 1, #pa do pb[i]:copy(pa[i]) end
      b.inputConvention = a.inputConvention
      for _, name in ipairs({'running_mean', 'running_var'}) do
         local ba, bb = {}, {}
         a:apply(function(m) if m[name] then ba[#ba + 1] = m[name] end end)
         b:apply(function(m) if m[name] then bb[#bb + 1] = m[name] end end)
         for i = 1, #ba do bb[i]:copy(ba[i]) end
      end
      ts.transfer.foldInputScale(b)
      t.eq(b.inputConvention.std[2], 1)
      local x = ts.rand(2, 3, 32, 32)
      local xa = x:clone()
      for c = 1, 3 do xa:narrow(2, c, 1):mul_(1 / a.inputConvention.std[c]) end
      local want, got = a:forward(xa), b:forward(x)
      t.truthy(got:maxAbsDiff(want) <= 1e-4 * want:abs():max(), 'difference ' .. got:maxAbsDiff(want))
   end)

   t.test('a linear probe learns from tiny, offset features, and its head takes them raw', function()
      local z = ts.randn(200, 8)
      local y = ts.zeros({200}, 'int64')
      for i = 1, 200 do y[i] = z:get(i, 1) + 0.5 * z:get(i, 2) > 0 and 1 or 0 end
      local f = z * 0.001 + 3   -- the scale of sparse, small backbone features
      local head, history = ts.transfer.linearProbe(f, y, f, y, {epochs = 150, classes = 2, batch = 32})
      t.eq(head.nout, 2)
      t.truthy(history[150] > 0.95, 'probe accuracy ' .. history[150])
      local _, pred = head:forward(f):max(2)
      local raw = pred:view(-1):float():eq(y:float()):sum() / 200
      t.near(raw, history[150], 0, 0.011, 'the folded head on raw features')
   end)

   t.test('ts.transfer: newHead checks its classes, gradualUnfreeze unfreezes a backbone frozen before, linearProbe checks its data', function()
      local m = ts.models.resnet8()
      t.raises(function() ts.transfer.newHead(m, 0) end, 'ts.transfer.newHead(model, classes): classes must be a whole number >= 1, got 0')
      t.raises(function() ts.transfer.newHead(nil, 10) end, 'ts.transfer.newHead(model, classes): model must be a module, got nil')
      -- a backbone frozen first (the linear probe's recipe) made no stage at all: it stayed frozen for good
      local total = #m:parameters()
      ts.transfer.freezeBackbone(m)
      local groups, on_epoch, stages = ts.transfer.gradualUnfreeze(m, {stages = 2})
      t.eq(#stages, 2)
      local opt = ts.optim.SGD(groups, {lr = 0.1})
      on_epoch(1, m, opt)
      on_epoch(2, m, opt)
      t.eq(#m:parameters(), total, 'every parameter learns after the last stage')
      -- no rows gave a head of NaN weights; fractional labels were cut to classes, a short list of them read past
      -- its end, and validation labels fewer than the validation rows were broadcast into an accuracy
      local f, y = ts.randn(6, 3), ts.tensor({0, 1, 0, 1, 0, 1}, 'int64')
      local o = {classes = 2, epochs = 1}
      t.raises(function() ts.transfer.linearProbe(ts.zeros(0, 3), ts.zeros({0}, 'int64'), nil, nil, o) end,
               'ts.transfer.linearProbe: features must be [N, F] with N and F >= 1, got [0x3]')
      t.raises(function() ts.transfer.linearProbe(ts.zeros(6, 0), y, nil, nil, o) end, 'with N and F >= 1, got [6x0]')
      t.raises(function() ts.transfer.linearProbe(f, ts.full({6}, 0.5), nil, nil, o) end,
               'ts.transfer.linearProbe: labels: the float32 targets hold values that are not class ids')
      t.raises(function() ts.transfer.linearProbe(f, ts.zeros({9}, 'int64'), nil, nil, o) end,
               'ts.transfer.linearProbe: 6 rows of features but 9 labels')
      t.raises(function() ts.transfer.linearProbe(f, y, f, ts.zeros({1}, 'int64'), o) end,
               'ts.transfer.linearProbe: 6 rows of valid_features but 1 valid_labels')
      t.raises(function() ts.transfer.linearProbe(f, y, ts.randn(6, 4), y, o) end,
               'ts.transfer.linearProbe: valid_features must be [M, 3] as the features are, got a tensor [6x4]')
      local head, history = ts.transfer.linearProbe(f, {0, 1, 0, 1, 0, 1}, f, y, o)
      t.eq(head.nout, 2)
      t.truthy(history[1] >= 0 and history[1] <= 1)
   end)

   t.test('a run whose training was cut off before its last epoch is named so', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/config.json', ts.json.encode{epochs = 6})
      t.eq(ts.models.unfinished(dir), nil, 'weights without their record')
      t.writefile(dir .. '/metrics.jsonl', '{"epoch":1}\n')
      local why = ts.models.unfinished(dir)
      t.truthy(why and why:find('stopped after 1 of its 6 epochs', 1, true), tostring(why))
      t.writefile(dir .. '/metrics.jsonl', ('{"epoch":1}\n'):rep(6))
      t.eq(ts.models.unfinished(dir), nil)
      -- early stopping ends a run before its last epoch on purpose
      t.writefile(dir .. '/config.json', ts.json.encode{epochs = 6, early_stop = 2})
      t.writefile(dir .. '/metrics.jsonl', '{"epoch":1}\n{"epoch":2}\n')
      t.eq(ts.models.unfinished(dir), nil)
   end)

   t.test('a registered builder: ts.train records its file, another process rebuilds the run from it', function()
      local dir = t.tmpdir()
      local at = ts.files.realpath(dir)
      t.writefile(dir .. '/net.lua', [[
ts.models.register('tiny_registered', function(o)
   local nn = ts.nn
   return nn.Sequential(nn.Conv2d(3, 4, 3, {stride = 4, padding = 1}), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, o.classes))
end)
]])
      t.writefile(dir .. '/train.lua', ([[
dofile('%s/net.lua')
local g = ts.data.synthetic{train = 64, valid = 32, test = 16, seed = 1}
ts.train{model = {name = 'tiny_registered', classes = 43}, data = {train = g.train, valid = g.valid}, epochs = 1,
         batch = 32, run = '%s/run', quiet = true}
]]):format(dir, dir))
      local rc, out = t.sh(('cd %s && %s train.lua'):format(dir, t.tshost))
      t.eq(rc, 0, out)
      local config = ts.json.decode(t.readfile(dir .. '/run/config.json'))
      t.eq(config.model.name, 'tiny_registered')
      -- outside the tshost root, paths are kept absolute (experiments/pooling.lua's are relative to the root)
      t.eq(config.model_source.file, at .. '/net.lua')
      t.eq(config.model_source.script, at .. '/train.lua')
      rc, out = t.sh(('%s -e "print(ts.models.load(\'%s/run\'):numParameters())"'):format(t.tshost, dir))
      t.eq(rc, 0, out)
      t.eq(tonumber(out:match('^(%d+)')), 4 * 3 * 9 + 4 + 4 * 8 * 8 * 43 + 43, out)
      ts.image.save(dir .. '/sign.png', ts.data.synthetic{train = 1, valid = 1, test = 1}.train.x[1])
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/run %s/sign.png --json --whole'):format(t.tshost, ts.root, dir, dir))
      t.eq(rc, 0, out)
      t.eq(#ts.json.decode(out:match('^[^\n]*'))[1].top5, 5, out)
      -- class names given as a list (a JSON array, as Python writes one) name classes from 0, not from 1
      local config_text = t.readfile(dir .. '/run/config.json')
      local listed = ts.json.decode(config_text)
      listed.class_names = {}
      for c = 0, 42 do listed.class_names[c + 1] = 'class ' .. c end
      t.writefile(dir .. '/run/config.json', ts.json.encode(listed))
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/run %s/sign.png --json --whole'):format(t.tshost, ts.root, dir, dir))
      for _, top in ipairs(ts.json.decode(out:match('^[^\n]*'))[1].top5) do t.eq(top.name, 'class ' .. top.class, out) end
      -- a damaged config.json is named; so are weights holding a NaN, whose answers would read as confident
      t.writefile(dir .. '/run/config.json', config_text:sub(1, 40))
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/run %s/sign.png'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 1 and out:find(dir .. '/run/config.json: json: unterminated string', 1, true)
               and not out:find('traceback', 1, true), out)
      t.writefile(dir .. '/run/config.json', config_text)
      local weights = ts.load(dir .. '/run/model.safetensors')
      local good = weights['3.bias']:clone()
      weights['3.bias'][7] = 0 / 0
      ts.save(dir .. '/run/model.safetensors', weights)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/run %s/sign.png --abstain 0.9'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 1 and out:find('model.safetensors: 3.bias holds NaN or infinite values', 1, true), out)
      weights['3.bias'] = good
      ts.save(dir .. '/run/model.safetensors', weights)
      -- here too, where nothing registered it: the model is the run's, weights included
      local m = ts.models.load(dir .. '/run')
      t.truthy(m:get(1).weight:equal(ts.load(dir .. '/run/model.safetensors')['0.weight']))
      -- the last epoch's weights come from the checkpoint the run ended on
      local last = ts.models.load(dir .. '/run', {weights = 'last'})
      t.truthy(last:get(1).weight:equal(ts.load(dir .. '/run/checkpoint.safetensors')['model.0.weight']))
      t.raises(function() ts.models.load(dir .. '/run', {weights = 'first'}) end, "weights must be 'best', 'last' or 'swa'")
      os.remove(dir .. '/run/checkpoint.safetensors')
      t.raises(function() ts.models.load(dir .. '/run', {weights = 'last'}) end, 'has no checkpoint of its last epoch')
      -- a config.json without the normalization the model learnt with, or with a broken one, is named (predict fed
      -- such a run unnormalized images, silently)
      local good = t.readfile(dir .. '/run/config.json')
      local config = ts.json.decode(good)
      config.preprocess = nil
      t.writefile(dir .. '/run/config.json', ts.json.encode(config))
      t.raises(function() ts.models.load(dir .. '/run') end, dir .. '/run/config.json: no preprocess settings')
      config.preprocess = {mean = 'abc'}
      t.writefile(dir .. '/run/config.json', ts.json.encode(config))
      t.raises(function() ts.models.load(dir .. '/run') end, 'config.json: preprocess: mean must be a list of 1 or 3 numbers')
      t.writefile(dir .. '/run/config.json', good)
      -- a builder file that is gone, or no longer registers the name, is named
      ts.files.mkdirs(dir .. '/gone')
      t.writefile(dir .. '/gone/config.json', ts.json.encode{model = {name = 'tiny_gone'},
                                                             model_source = {file = at .. '/gone.lua'}})
      t.raises(function() ts.models.load(dir .. '/gone') end, 'from ' .. at .. '/gone.lua, which is gone')
      t.writefile(dir .. '/gone/config.json', ts.json.encode{model = {name = 'tiny_renamed'},
                                                             model_source = {file = at .. '/net.lua'}})
      t.raises(function() ts.models.load(dir .. '/gone') end, 'no longer registers the builder tiny_renamed')
   end)

   t.test('ts.models.register refuses builders it could not run again, and names taken', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/inline.lua', "ts.models.register('tiny_inline', function() return ts.nn.Identity() end)")
      local rc, out = t.sh(('%s %s/inline.lua'):format(t.tshost, dir))
      t.truthy(rc ~= 0 and out:find('the builder tiny_inline is defined in ' .. dir .. '/inline.lua; define it in a ' ..
                                    'file of its own', 1, true), out)
      rc, out = t.sh(('%s -e "ts.models.register(\'tiny_e\', function() end)"'):format(t.tshost))
      t.truthy(rc ~= 0 and out:find('defined in code that is not a file', 1, true), out)
      t.raises(function() ts.models.register('refcnn', function() end) end, 'ts.models.refcnn exists already')
      t.raises(function() ts.models.register('x', 'not a function') end, 'a name and a function')
   end)

   t.test('builders refuse options they do not take and sizes of nothing', function()
      t.raises(function() ts.models.refcnn{widths = {4, 8, 16}, widht = {1}} end,
               'ts.models.refcnn: unknown option widht (known: channels, classes, convs, dropout, fine, gap, hidden')
      -- (baseline's errors named refcnn, a function the caller had not called)
      t.raises(function() ts.models.baseline{hidden = 0} end, 'ts.models.baseline: hidden must be a whole number >= 1, got 0')
      t.raises(function() ts.models.refcnn{widths = {4, 8}} end, 'widths must be three whole numbers >= 1, one per stage, got {4, 8}')
      t.raises(function() ts.models.refcnn{dropout = 1} end, 'dropout must be in [0, 1), got 1')
      t.raises(function() ts.models.resnet8{classes = 0} end, 'ts.models.resnet8: classes must be a whole number >= 1')
      t.raises(function() ts.models.resnet20{clases = 3} end, 'ts.models.resnet20: unknown option clases (known: channels, classes, name)')
      t.raises(function() ts.models.mobilenet_v1_025{channel = 1} end, 'ts.models.mobilenet_v1_025: unknown option channel')
      -- a spec names a builder, not another of ts.models' functions (name = 'load' called ts.models.load)
      t.eq(ts.models.builder('load'), nil); t.eq(ts.models.builder('source'), nil); t.eq(ts.models.builder(5), nil)
      t.eq(ts.models.builder('resnet8'), ts.models.resnet8)
      local g = ts.data.synthetic{train = 8, valid = 8, test = 8, seed = 1}
      t.raises(function() ts.train{model = {name = 'unfinished'}, data = {train = g.train}, quiet = true} end,
               'ts.train: no model builder ts.models.unfinished')
      -- a spec reaches its builder with its name, which is no option
      t.eq(ts.models.refcnn{name = 'refcnn', widths = {4, 8, 16}, hidden = 8, classes = 43}:numParameters(), 4791)
   end)

   t.test('ts.models.pretrained checks its options before it looks for the weights', function()
      -- a number failed indexing it; classes = 43 (a new head is ts.transfer's) and a misspelt strict were ignored
      t.raises(function() ts.models.pretrained('resnet20', 5) end, 'ts.models.pretrained: the options must be a table, got number')
      t.raises(function() ts.models.pretrained('resnet20', {classes = 43, dir = '/nonexistent'}) end,
               'ts.models.pretrained: unknown option classes (known: dir, strict)')
      t.raises(function() ts.models.pretrained('resnet20', {strikt = false, dir = '/nonexistent'}) end, 'unknown option strikt')
   end)

   t.test('builders refuse switches that are not true or false, and baseline options that are no table', function()
      -- any value but nil and false was true: multiscale = "false" built the multi-scale network, stn = 0 the transformer
      t.raises(function() ts.models.refcnn{multiscale = 'false'} end, 'ts.models.refcnn: multiscale must be true or false, got "false"')
      t.raises(function() ts.models.baseline{stn = 0} end, 'ts.models.baseline: stn must be true or false, got 0')
      t.raises(function() ts.models.refcnn{gap = 'yes'} end, 'gap must be true or false, got "yes"')
      -- failed in pairs, a Lua error
      t.raises(function() ts.models.baseline(5) end, 'ts.models.baseline: the options must be a table, got number')
      t.raises(function() ts.models.baseline{widht = {1}} end, 'ts.models.baseline: unknown option widht')
      -- widths of strings, as a damaged config.json holds them, were shown as {48, 96, 192}, which reads as right
      t.raises(function() ts.models.refcnn{widths = {'48', '96', '192'}} end, 'got {"48", "96", "192"}')
      t.raises(function() ts.models.refcnn{dropout = '0.5'} end, 'dropout must be in [0, 1), got "0.5"')
      t.eq(ts.models.refcnn{widths = {4, 8, 8}, hidden = 8, stn = false, multiscale = false, gap = false}:numParameters(),
           ts.models.refcnn{widths = {4, 8, 8}, hidden = 8}:numParameters())
   end)

   t.test('ts.models.load: a damaged run is named by its file, in one line, and opts are checked', function()
      local dir = t.tmpdir()
      local run = dir .. '/run'
      ts.files.mkdirs(run)
      local spec = {name = 'refcnn', widths = {4, 8, 8}, hidden = 8, classes = 43}
      local config = {model = spec, epochs = 1, preprocess = {mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25}}}
      local function write_config(c) t.writefile(run .. '/config.json', ts.json.encode(c)) end
      write_config(config)
      local net = ts.models.refcnn(spec)
      ts.save(run .. '/model.safetensors', net)
      t.eq(ts.models.load(run):numParameters(), net:numParameters())
      -- the options: a string or a misspelt key loaded the best weights without a word, a number failed indexing it
      t.raises(function() ts.models.load(run, 'last') end, 'ts.models.load: the options must be a table, got string')
      t.raises(function() ts.models.load(run, {weight = 'last'}) end, 'ts.models.load: unknown option weight (known: weights)')
      t.raises(function() ts.models.load(run, 5) end, 'ts.models.load: the options must be a table, got number')
      t.raises(function() ts.models.load('') end, "run must be a run directory's path, got \"\"")
      -- an error for the user has no position (the script runner then shows it without a traceback)
      local function refused(plain)
         local err = t.raises(function() ts.models.load(run) end, plain)
         t.truthy(not tostring(err):find('^[^:]*:%d+:'), 'a position in: ' .. tostring(err))
      end
      -- a precision of nothing it knows failed in setPrecision, with a traceback into the library
      local c = {}
      for k, v in pairs(config) do c[k] = v end
      c.precision = 'fp8'
      write_config(c)
      refused(run .. "/config.json: precision must be 'fp32' or 'bf16', got \"fp8\"")
      -- a model record that is no builder's spec was called "a model built in its script"; null was "not found"
      c.precision, c.model = nil, 5
      write_config(c)
      refused(run .. '/config.json: model must be a builder\'s spec {"name": ..., its options}, got 5')
      c.model = {classes = 43}
      write_config(c)
      refused('model must be a builder\'s spec {"name": ..., its options}, got {"classes":43}')
      c.model = {module = 'Sequential'}
      write_config(c)
      refused(run .. ' was trained with a model built in its script')
      t.writefile(run .. '/config.json', 'null')
      refused(run .. '/config.json is not a JSON object')
      -- a builder file that does not run is named as the run's (a syntax error came with a traceback through load)
      t.writefile(dir .. '/broken.lua', 'this is not lua')
      c.model, c.model_source = {name = 'tiny_broken'}, {file = dir .. '/broken.lua'}
      write_config(c)
      refused(run .. '/config.json: model_source ' .. dir .. '/broken.lua, the file of the builder tiny_broken, does not run: ')
      write_config(config)
      -- weights holding a NaN: one line naming the file (it came at the caller's level, with a traceback)
      local weights, last = ts.load(run .. '/model.safetensors'), net:stateDict()[#net:stateDict()][1]
      weights[last][2] = 0 / 0
      ts.save(run .. '/model.safetensors', weights)
      refused('ts.models.load: ' .. run .. '/model.safetensors: ' .. last .. ' holds NaN or infinite values')
      os.remove(run .. '/model.safetensors')
      refused('ts.models.load: ' .. run .. '/model.safetensors not found (the run saved no model')
      -- ts.models.unfinished of a config.json that is no object: a Lua error indexing it
      t.writefile(run .. '/config.json', '5')
      t.raises(function() ts.models.unfinished(run) end, 'ts.models.unfinished: ' .. run .. '/config.json is not a JSON object')
   end)

   t.test('ts.models.pretrained: a missing folder, a file of another network, a mis-shaped or damaged tensor, named', function()
      -- tiny stand-ins for the published files: each folder holds what another builder saved
      local dir = t.tmpdir()
      local function holds(folder, model)
         ts.files.mkdirs(dir .. '/' .. folder)
         ts.save(dir .. '/' .. folder .. '/model.safetensors', model)
         return dir .. '/' .. folder .. '/model.safetensors'
      end
      -- dir = true failed in a concatenation; strict = 'no' was strict; a folder not there was "cannot open" of a file
      t.raises(function() ts.models.pretrained('resnet8', {dir = true}) end,
               "ts.models.pretrained: dir must be a folder's path, got true")
      t.raises(function() ts.models.pretrained('resnet8', {dir = ''}) end, "dir must be a folder's path, got \"\"")
      t.raises(function() ts.models.pretrained('resnet8', {dir = dir, strict = 'no'}) end,
               'ts.models.pretrained: strict must be true or false, got "no"')
      t.raises(function() ts.models.pretrained('resnet8', {dir = dir .. '/nowhere'}) end,
               'ts.models.pretrained: the pretrained models folder ' .. dir .. '/nowhere does not exist (dir)')
      -- an empty TSHOST_MODELS, as a shell leaves an unset one, looked in the root folder
      local rc, out = t.sh(("TSHOST_MODELS= %s -e \"ts.models.pretrained('resnet8')\""):format(t.tshost))
      t.truthy(rc ~= 0 and out:find('set TSHOST_MODELS to the pretrained models folder', 1, true), out)
      local path = holds('resnet20-cifar10', ts.models.resnet8())
      t.raises(function() ts.models.pretrained('resnet20', {dir = dir}) end, path .. ' does not fit the model: missing layer1.0.conv1.weight')
      path = holds('resnet8-cifar10', ts.models.resnet8{classes = 7})
      t.raises(function() ts.models.pretrained('resnet8', {dir = dir}) end, 'fc.weight has shape [7x64] in the file, [10x64] in the model')
      -- a NaN in the weights loaded without a word, and every answer was NaN
      local damaged = ts.models.resnet8()
      damaged.fc.bias:fill(0 / 0)
      holds('resnet8-cifar10', damaged)
      t.raises(function() ts.models.pretrained('resnet8', {dir = dir}) end,
               'ts.models.pretrained: ' .. path .. ': fc.bias holds NaN or infinite values')
      local good = ts.models.resnet8()
      holds('resnet8-cifar10', good)
      local m = ts.models.pretrained('resnet8', {dir = dir, strict = true})
      t.truthy(m.fc.weight:equal(good.fc.weight) and m.headName == 'fc', 'the weights of the file')
   end)

   t.test('baseline and localization errors name the call; transfer refuses a headName of no child', function()
      t.raises(function() ts.models.baseline{widths = {4, 8}} end, 'ts.models.baseline: widths must be three whole numbers')
      t.raises(function() ts.models.baseline{convs = {2, 2, 'x'}} end, 'ts.models.baseline: convs must be whole numbers from 1 to 64, got "x"')
      t.raises(function() ts.models.localization() end, 'ts.models.localization(channels): channels must be a whole number >= 1, got nil')
      -- a headName naming no child froze the whole network, head and all, and gave the head's group no parameters
      local m = ts.models.resnet8()
      m.headName = 'classifier'
      for _, call in ipairs({function() ts.transfer.freezeBackbone(m) end, function() ts.transfer.paramGroups(m, {}) end,
                             function() ts.transfer.gradualUnfreeze(m) end}) do
         t.raises(call, 'model.headName "classifier" names no child of the model (children: conv1, bn1, relu, stage1')
      end
      t.eq(#m:parameters(), #ts.models.resnet8():parameters(), 'nothing frozen by a refused call')
   end)

   t.test('foldInputScale: a grouped first convolution, and input that goes elsewhere first, are not scaled wrongly', function()
      t.raises(function() ts.transfer.foldInputScale(nil) end, 'ts.transfer.foldInputScale(model): model must be a module, got nil')
      -- a depthwise first layer had every channel divided by std[1]; grouped, each group's columns by the first stds
      local std = {0.5, 0.25, 2, 4}
      for _, groups in ipairs({4, 2}) do
         local m = nn.Sequential(nn.Dropout(0.2), nn.Sequential(nn.Conv2d(4, 4, 3, {padding = 1, groups = groups})), nn.Flatten())
         m:evaluate()
         m.inputConvention = {mean = {0, 0, 0, 0}, std = std}
         local x = ts.rand(2, 4, 5, 5)
         local scaled = x:clone()
         for c = 1, 4 do scaled:narrow(2, c, 1):mul_(1 / std[c]) end
         local want = m:forward(scaled):clone()
         ts.transfer.foldInputScale(m)
         t.near(m:forward(x), want, 1e-5, 1e-5, groups .. ' groups')
      end
      -- the images go to a spatial transformer (its localization's convolution was scaled, the images not) or a
      -- batch norm first
      local stn = ts.models.refcnn{widths = {4, 4, 4}, hidden = 8, stn = true}
      stn.inputConvention = {mean = {0, 0, 0}, std = {2, 2, 2}}
      t.raises(function() ts.transfer.foldInputScale(stn) end, 'its input goes to SpatialTransformer first')
      local bn = nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 1), nn.Flatten())
      bn.inputConvention = {mean = {0, 0, 0}, std = {2, 2, 2}}
      t.raises(function() ts.transfer.foldInputScale(bn) end, 'its input goes to BatchNorm2d first')
   end)

   t.test('linearProbe: labels outside the head, NaN validation features, float64 features; features of no images', function()
      local f, y = ts.randn(6, 3), ts.tensor({0, 1, 0, 1, 0, 1}, 'int64')
      local o = {classes = 2, epochs = 1}
      -- a label the head has no output for failed inside cross_entropy; in validation it was counted wrong, silently
      t.raises(function() ts.transfer.linearProbe(f, ts.tensor({0, 1, 0, 1, 0, 5}, 'int64'), nil, nil, o) end,
               'ts.transfer.linearProbe: labels hold class 5, outside 0..1 of the head (o.classes = 2')
      t.raises(function() ts.transfer.linearProbe(f, y, f, ts.tensor({0, 1, 0, 1, 0, -1}, 'int64'), o) end,
               'ts.transfer.linearProbe: valid_labels hold class -1, outside 0..1')
      -- a NaN validation row was predicted as class 0 (NaN wins argmax): an accuracy of 1 here
      local bad = ts.full({3, 3}, 0 / 0)
      t.raises(function() ts.transfer.linearProbe(f, y, bad, {0, 0, 0}, o) end, 'ts.transfer.linearProbe: 9 valid_features are NaN or infinite')
      -- float64 features (numpy's) failed in the arithmetic
      local head, history = ts.transfer.linearProbe(f:double(), y, f:double(), y, o)
      t.eq(head.nout, 2)
      t.truthy(history[1] >= 0 and history[1] <= 1)
      -- no images gave nil for the features, and a bad batch was refused at a line of the library
      local empty = ts.data.Dataset(ts.zeros({0, 8, 8, 3}, 'uint8'), ts.zeros({0}, 'int64'))
      local pre = ts.data.preprocess{}
      t.raises(function() ts.transfer.features(ts.models.resnet8(), empty, pre) end, 'transfer.features(model, ds, preprocess, batch): ds holds no images')
      local two = ts.data.Dataset(ts.zeros({2, 8, 8, 3}, 'uint8'), ts.zeros({2}, 'int64'))
      local err = t.raises(function() ts.transfer.features(ts.models.resnet8(), two, pre, 0) end, 'batch must be a whole number from 1 to 2^24, got 0')
      t.truthy(err:find('test_models.lua', 1, true), 'at the caller: ' .. err)
   end)

   t.test('the four pretrained networks reproduce their published outputs (eval mode, 1e-4 relative)', function()
      local dir = os.getenv('TSHOST_MODELS')
      if not dir then t.skip('TSHOST_MODELS is not set (point it at the pretrained models folder)') end
      for name, e in pairs(ts.models.catalog) do
         local m = ts.models.pretrained(name)
         local ref = dir .. '/' .. e.folder .. '/reference/'
         local x = t.readFloats(ref .. 'input.bin', {4, 3, e.input.size, e.input.size})
         local logits = m:forward(x)
         local want = t.readFloats(ref .. 'logits.bin', {4, e.classes})
         local feats = t.readFloats(ref .. 'features.bin', {4, e.features})
         t.truthy(logits:maxAbsDiff(want) <= 1e-4 * want:abs():max(), name .. ' logits: ' .. logits:maxAbsDiff(want))
         t.truthy(m.flatten.output:maxAbsDiff(feats) <= 1e-4 * feats:abs():max(), name .. ' features')
         -- each model's convention is its own copy: changing it changed the catalog, so every later load
         m.inputConvention.std[1] = 5
         t.eq(ts.models.pretrained(name).inputConvention.std[1], e.input.std[1], name .. ': the catalog untouched')
      end
   end)

   t.test('a checkpoint that does not fit names the tensor', function()
      local dir = os.getenv('TSHOST_MODELS')
      if not dir then t.skip('TSHOST_MODELS is not set') end
      local err = t.raises(function() ts.models.pretrained('nope') end, 'unknown model nope')
      t.truthy(err:find('resnet20', 1, true))
      local m = ts.models.resnet20()
      t.raises(function() ts.load(dir .. '/resnet8-cifar10/model.safetensors', m) end, 'does not fit the model')
   end)
end
