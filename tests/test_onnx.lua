-- ONNX export: the exported networks pass onnx's checker and give tshost's logits under onnxruntime (1e-4 of the
-- largest logit) at another batch size than the one exported (the batch dimension is dynamic): every layer kind,
-- the baseline and the reference network, the four pretrained networks (TSHOST_MODELS), a trained run through
-- scripts/export.lua with its preprocessing baked in. Skipped, saying so, without onnx and onnxruntime.
local ffi = require('ffi')
local nn = ts.nn

return function(t)
   local function write_f32(path, x)
      x = x:contiguous()
      t.writefile(path, ffi.string(x:data(), x:numel() * 4))
   end

   -- exports (or takes) model.onnx, runs both on x [N, C, H, W], returns onnxruntime's verdict
   local function check(py, dir, name, model, x, exported, expected)
      local path = dir .. '/' .. name .. '.onnx'
      if not exported then ts.onnx.export(model, path, {input = {1, x:size(2), x:size(3), x:size(4)}}) end
      if not expected then
         model:evaluate()
         expected = model:forward(x):clone()
      end
      write_f32(dir .. '/x.f32', x)
      write_f32(dir .. '/y.f32', expected)
      local rc, out = t.sh(("'%s' %s/scripts/check_onnx.py '%s' %s/x.f32 %s/y.f32 %d %d %d %d"):format(py, t.dir, exported or path,
                           dir, dir, x:size(1), x:size(2), x:size(3), x:size(4)))
      t.eq(rc, 0, name .. ': ' .. out)
      local r = ts.json.decode(out:match('{.*}'))
      t.truthy(r.relative <= 1e-4, ('%s: onnxruntime differs by %.3g of the largest logit'):format(name, r.relative))
      print(('        onnx %s: onnxruntime within %.2g of the largest logit (opset %d)'):format(name, r.relative, r.opset))
      return r
   end

   t.test('every layer kind, the baseline and the reference network: onnx checker and onnxruntime agree', function()
      local py, why = t.python({'onnx', 'onnxruntime', 'numpy'})
      if not py then t.skip(why) end
      local dir = t.tmpdir()
      ts.manualSeed(2)
      local layers = nn.Sequential(
         nn.Conv2d(3, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU(),
         nn.Conv2d(8, 8, 3, {stride = 2, padding = 'same', groups = 2, bias = false}), nn.LeakyReLU(0.1),
         nn.Conv2d(8, 8, 3, {padding = 2, dilation = 2}), nn.ELU(0.7),
         nn.Residual(nn.Sequential(nn.Conv2d(8, 8, 3, {padding = 1}), nn.BatchNorm2d(8))),
         nn.Residual(nn.Conv2d(8, 12, 3, {stride = 2, padding = 1}), nn.ZeroPadShortcut(8, 12, 2)),
         nn.Concat(2, nn.Conv2d(12, 4, 1), nn.Identity()), nn.Upsample2d(2),
         nn.MaxPool2d(3, 2, 1, {ceil_mode = false}), nn.AvgPool2d(2, 1, 1, {count_include_pad = false}),
         nn.Checkpoint(nn.Sequential(nn.Conv2d(16, 16, 1), nn.ReLU())),
         nn.GlobalAvgPool2d(), nn.Flatten(), nn.Dropout(0.3), nn.Linear(16, 24), nn.View(4, 6), nn.Flatten(),
         nn.BatchNorm1d(24), nn.Linear(24, 10), nn.Normalize())
      layers:training()
      for _ = 1, 2 do layers:forward(ts.randn(6, 3, 16, 16)) end   -- running statistics away from 0 and 1
      check(py, dir, 'layers', layers, ts.randn(3, 3, 16, 16))
      check(py, dir, 'baseline', ts.models.baseline(), ts.randn(2, 3, 32, 32))
      check(py, dir, 'refcnn', ts.models.refcnn(), ts.randn(2, 3, 32, 32))
   end)

   t.test('the four pretrained networks export and run in onnxruntime with their logits', function()
      local py, why = t.python({'onnx', 'onnxruntime', 'numpy'})
      if not py then t.skip(why) end
      if not os.getenv('TSHOST_MODELS') then t.skip('TSHOST_MODELS is not set (point it at the pretrained models folder)') end
      local dir = t.tmpdir()
      for _, name in ipairs({'resnet8', 'resnet20', 'resnet56', 'mobilenet'}) do
         ts.manualSeed(3)
         local m = ts.models.pretrained(name)
         local size = m.inputConvention.size
         check(py, dir, name, m, ts.randn(2, 3, size, size))
      end
   end)

   t.test('scripts/export.lua: a trained run with its preprocessing inside, its class names in the metadata', function()
      local py, why = t.python({'onnx', 'onnxruntime', 'numpy'})
      if not py then t.skip(why) end
      local dir = t.tmpdir()
      local g = ts.data.synthetic{train = 200, valid = 40, test = 40, seed = 4}
      ts.train{model = {name = 'refcnn', widths = {4, 8, 8}, hidden = 16}, data = {train = g.train, valid = g.valid},
               epochs = 2, batch = 50, run = dir .. '/run', quiet = true,
               preprocess = ts.data.preprocess{mean = {0.4, 0.5, 0.6}, std = {0.2, 0.25, 0.3}}}
      local rc, out = t.sh(('%s %s/scripts/export.lua %s/run %s/run.onnx'):format(t.tshost, ts.root, dir, dir))
      t.eq(rc, 0, out)
      -- tshost: the run's own preprocessing, then the model; onnxruntime: the raw images in 0..1
      local model, config = ts.models.load(dir .. '/run')
      local picks = {1, 7, 13}
      local expected = model:forward((ts.data.batch(g.test, picks, {preprocess = ts.data.preprocess(config.preprocess)})))
      local raw = ts.data.batch(g.test, picks)   -- no preprocessing: x / 255
      local r = check(py, dir, 'run', model, raw, dir .. '/run.onnx', expected:clone())
      local names = ts.json.decode(r.metadata.class_names)
      t.eq(#names, 43)
      t.eq(names[1], g.train.classNames[0])
      rc, out = t.sh(('%s %s/scripts/export.lua %s/run'):format(t.tshost, ts.root, dir))
      t.eq(rc, 2, 'no output named: ' .. out)
   end)


   t.test('export refuses what the graph would carry wrong, naming it', function()
      local m, path = ts.models.refcnn{widths = {4, 8, 8}}, t.tmpdir() .. '/m.onnx'
      for opts, words in pairs({
         [{input = {1, 3, 32, 32, 1}}] = 'input must be {N, C, H, W}, four whole numbers >= 1',
         [{opset = 0}] = 'opset must be a whole number from 13 to 21, got 0',
         [{preprocess = {std = {0, 1, 1}}}] = 'preprocess std[1] must be a finite number other than 0, got 0',
         [{classes = {[0] = 'a', [1e9] = 'b'}}] = 'classes: class names must map a class id from 0 to 9999',
      }) do
         t.raises(function() ts.onnx.export(m, path, opts) end, 'ts.onnx.export: ' .. words)
      end
      t.truthy(not ts.files.exists(path), 'a refused export wrote its file')
   end)

   t.test('export: a misspelt option or setting, a preprocessing short of channels, a class for the model are refused; a failed export keeps the mode', function()
      local m, path = ts.models.refcnn{widths = {4, 8, 8}}, t.tmpdir() .. '/m.onnx'
      for opts, words in pairs({
         -- inputs = {...} was ignored and the model exported for 32x32; meen was left out of the graph
         [{inputs = {1, 3, 48, 48}}] = 'unknown option inputs',
         [{preprocess = {meen = {0.5}}}] = 'preprocess: unknown setting meen',
         -- a mean of 2 values for 3 channels subtracted 0 from the third
         [{preprocess = {mean = {0.5, 0.5}}}] = 'preprocess mean has 2 values for 3 channels',
         [{ir_version = 'x'}] = 'ir_version must be a whole number from 4 to 11, got "x"',
      }) do
         t.raises(function() ts.onnx.export(m, path, opts) end, 'ts.onnx.export: ' .. words)
      end
      t.raises(function() ts.onnx.export(nn.Linear, path) end, 'ts.onnx.export(model, path, opts): model must be a module, got the class Linear')
      t.truthy(not ts.files.exists(path), 'a refused export wrote its file')
      -- a layer without an ONNX form, or an input the network does not take: the model was left in evaluation mode,
      -- and the training that went on had dropout off and batch norm on its running statistics
      local st = nn.Sequential(nn.SpatialTransformer(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 6))), nn.Dropout(0.5))
      st:training()
      t.raises(function() ts.onnx.export(st, path, {input = {1, 3, 8, 8}}) end, 'no ONNX form for SpatialTransformer')
      t.truthy(st.train and st:get(2).train, 'the model is in training mode again')
      m:training()
      t.raises(function() ts.onnx.export(m, path, {input = {1, 1, 32, 32}}) end, 'has 1 channels')
      t.truthy(m.train, 'the model is in training mode again')
      m:evaluate{fused = true}
      ts.onnx.export(m, path)
      t.truthy(not m.train and m.fuseInference, 'a model in fused evaluation stays in it')
   end)
   -- a run directory made by hand (no training): a refcnn with global average pooling, any input size, its
   -- preprocess settings and its input channels
   local function hand_run(dir, pre, channels)
      ts.files.mkdirs(dir)
      local spec = {name = 'refcnn', widths = {4, 8, 8}, hidden = 16, classes = 5, gap = true, channels = channels}
      local m = ts.models.refcnn(spec)
      m:training()
      m:forward(ts.rand(4, channels or 3, 16, 16))   -- running statistics away from 0 and 1
      ts.save(dir .. '/model.safetensors', m)
      ts.files.writeFile(dir .. '/config.json', ts.json.encode({model = spec, preprocess = pre, class_names = {['0'] = 'a'}}))
   end

   t.test('export refuses hostile arguments before any work, naming them at the caller, and writes nothing', function()
      local dir = t.tmpdir()
      local m, path = ts.models.refcnn{widths = {4, 8, 8}}, dir .. '/m.onnx'
      local function refused(opts, words, p, model)
         local err = t.raises(function() ts.onnx.export(model or m, p or path, opts) end, words)
         t.truthy(err:find('test_onnx.lua', 1, true), 'at the caller: ' .. err)
      end
      -- these failed inside the library: a preprocess of true or 5 indexed, a NUL path in ts.files.writeFile after the
      -- whole forward, a table with a forward alone as "attempt to call method 'evaluate'"
      refused({preprocess = 5}, 'ts.onnx.export: preprocess must be a ts.data.preprocess or its settings, got 5')
      refused({preprocess = true}, 'preprocess must be a ts.data.preprocess or its settings, got true')
      refused({}, 'ts.onnx.export(model, path, opts): the path', dir .. '/a\0b.onnx')
      refused({}, 'ts.onnx.export(model, path, opts): path must be a file\'s path, got an empty string', '')
      refused({}, 'model must be a network of ts.nn layers', nil, {forward = function(_, x) return x end})
      -- IR version 3 lists the initializers among the inputs, as this writer does not: onnx's checker refused the file
      refused({ir_version = 3}, 'ir_version must be a whole number from 4 to 11, got 3')
      -- a loader that resizes to 48x48 where the graph took the default 32x32; grayscale of 4 channels (a luma
      -- convolution of 3 written for it)
      refused({input = {1, 3, 32, 32}, preprocess = {size = 48}}, 'input is 32x32, and preprocess resizes the images to 48x48')
      refused({input = {1, 4, 32, 32}, preprocess = {grayscale = true}}, 'preprocess grayscale takes RGB images (3 channels, or 1 already gray), and input has 4')
      t.eq(ts.files.exists(path), false, 'a refused export wrote its file')
      -- scripts/export.lua: a word after the option was ignored; a run of gray images (model.channels = 1) exported
      -- without its preprocessing was given 3 channels and failed
      hand_run(dir .. '/gray', {grayscale = true, mean = {0.4}, std = {0.2}}, 1)
      local rc, out = t.sh(('%s %s/scripts/export.lua %s/gray %s/g.onnx --no-preprocess %s/h.onnx'):format(t.tshost, ts.root, dir, dir, dir))
      t.eq(rc, 2, out)
      t.truthy(out:find('unknown option', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/export.lua %s/gray %s/g.onnx --no-preprocess'):format(t.tshost, ts.root, dir, dir))
      t.eq(rc, 0, out)
   end)

   t.test('export names the layer it cannot write by its place, the input a network does not take, the path it cannot write', function()
      local dir = t.tmpdir()
      -- the whole description of the layer, a container's over many lines, did not say which of the network's it was
      local stn = ts.models.refcnn{widths = {4, 4, 4}, hidden = 8, stn = true}
      local err = t.raises(function() ts.onnx.export(stn, dir .. '/stn.onnx') end,
                           "ts.onnx.export: no ONNX form for SpatialTransformer (the model's child stn)")
      t.truthy(not err:find('\n'), 'one line: ' .. err)
      local Module = require('ts.nn.module')
      local Odd = Module.class('OddLayer', Module)
      function Odd:updateOutput(x) return x end
      local nested = nn.Sequential(nn.Conv2d(3, 2, 1), nn.Residual(nn.Sequential(nn.ReLU(), Odd())), nn.Flatten())
      t.raises(function() ts.onnx.export(nested, dir .. '/odd.onnx', {input = {1, 3, 4, 4}}) end,
               "no ONNX form for OddLayer (OddLayer(), the model's child 1.block.1)")
      -- an input too small for the pooling failed naming a layer alone, not the export or its input
      local m = ts.models.refcnn{widths = {4, 4, 4}, hidden = 8}
      t.raises(function() ts.onnx.export(m, dir .. '/small.onnx', {input = {1, 3, 4, 4}}) end,
               'ts.onnx.export: the model does not take the input {1, 3, 4, 4} (opts.input): ')
      -- a folder that is not there: "<path>: cannot write", neither the call nor its line
      err = t.raises(function() ts.onnx.export(m, dir .. '/nowhere/m.onnx') end, 'ts.onnx.export: ' .. dir .. '/nowhere/m.onnx: cannot write')
      t.truthy(err:find('test_onnx.lua', 1, true), 'at the caller: ' .. err)
      t.eq(ts.files.exists(dir .. '/stn.onnx') or ts.files.exists(dir .. '/small.onnx'), false, 'a refused export wrote its file')
   end)

   t.test('export computes what the loader and the network do: holes in mean and std, gray images, a resize, opset 18+', function()
      local py, why = t.python({'onnx', 'onnxruntime', 'numpy'})
      if not py then t.skip(why) end
      local dir = t.tmpdir()
      ts.manualSeed(7)
      local nn = ts.nn
      local function images(n, c) return ts.data.Dataset((ts.rand(n, 8, 8, c) * 255):byte(), ts.zeros({n}, 'int64')) end
      local rgb, gray, picks = images(3, 3), images(3, 1), {1, 2, 3}
      local function net(c) return nn.Sequential(nn.Conv2d(c, 4, 3, {padding = 1}), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(4, 5)) end
      -- tshost: the loader's batch, then the network; onnxruntime: the images in 0..1 (or as the loader resized them)
      local function against_loader(name, model, ds, pre, opts, raw)
         local path = dir .. '/' .. name .. '.onnx'
         opts.preprocess = pre
         ts.onnx.export(model, path, opts)
         model:evaluate()
         local expected = model:forward((ts.data.batch(ds, picks, {preprocess = ts.data.preprocess(pre)}))):clone()
         check(py, dir, name, model, raw or ts.data.batch(ds, picks), path, expected)
      end
      -- a hole: the loader takes the first value for the second channel, the graph took 0 and 1
      against_loader('holes', net(3), rgb, {mean = {0.5, nil, 0.2}, std = {0.25, nil, 0.5}}, {input = {1, 3, 8, 8}})
      -- gray images are taken as they are: the graph had a luma convolution of 3 channels, which onnxruntime refused
      against_loader('gray', net(1), gray, {grayscale = true, mean = {0.4}, std = {0.2}}, {input = {1, 1, 8, 8}})
      -- a resize: the input is the loader's size (it was 32x32, which onnxruntime refused for 6x10 images)
      against_loader('resize', net(3), rgb, {size = {6, 10}}, {},
                     ts.data.batch(rgb, picks, {preprocess = ts.data.preprocess{size = {6, 10}}}))
      -- Normalize from opset 18, where ReduceL2 takes its axes as an input: the attribute made a model the checker refused
      local embed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(4, 6), nn.Normalize())
      for _, opset in ipairs({18, 21}) do
         local path = dir .. '/normalize' .. opset .. '.onnx'
         ts.onnx.export(embed, path, {input = {1, 3, 8, 8}, opset = opset})
         local r = check(py, dir, 'normalize' .. opset, embed, ts.randn(2, 3, 8, 8), path)
         t.eq(r.opset, opset)
      end
      -- a join along the batch gives 2N rows: the output's first dimension is left unnamed, not said to be N
      local twice = nn.Concat(1, nn.Identity(), nn.Identity())
      ts.onnx.export(twice, dir .. '/twice.onnx', {input = {1, 3, 4, 4}})
      local rc, out = t.sh(("'%s' -c \"import onnx; d = onnx.load('%s/twice.onnx').graph.output[0].type.tensor_type.shape.dim; " ..
                            "print(repr(d[0].dim_param), d[0].dim_value)\""):format(py, dir))
      t.eq(rc, 0, out)
      t.eq(out:match('[^\n]*'), "'' 0", 'the first dimension of the output')
      -- scripts/export.lua: a run resized to {24, 40} was exported for 24x24 images
      hand_run(dir .. '/wide', {size = {24, 40}, mean = {0.5}, std = {0.25}})
      rc, out = t.sh(('%s %s/scripts/export.lua %s/wide %s/wide.onnx'):format(t.tshost, ts.root, dir, dir))
      t.eq(rc, 0, out)
      local model = ts.models.load(dir .. '/wide')
      local x = ts.rand(2, 3, 24, 40)
      check(py, dir, 'wide', model, x, dir .. '/wide.onnx', model:forward((x - 0.5) / 0.25):clone())
   end)
end
