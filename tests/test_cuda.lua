-- The GPU path against the CPU path: every layer's forward and backward on random inputs, the loss and
-- optimizer steps, a short training run, determinism, memory statistics and out-of-memory handling.
-- Skipped, saying so, where there is no GPU. Convolutions compare in full fp32 (ts.cuda.tf32(false));
-- tolerances: 1e-4 relative + 1e-5 absolute for layers (cuDNN sums in another order than our im2col),
-- 2e-3 relative for losses after a few hundred training steps. Mixed precision (bf16) against the CPU's
-- bf16: the GPU rounds the operands the same way, but cuDNN hands back y, gx and gw in bf16 (one more
-- rounding, 2^-9 relative) and sums in another order: 1e-2 relative + 1e-2 of the largest value.
local nn = ts.nn

-- A GPU test: skipped without a GPU; run with full fp32 convolutions (tf32 off); and every switch put back to
-- its default after it, whatever happened, so that the tests after it (in this file and the next) see the
-- defaults: deterministic off, tf32 on, channels-last on, strict math off, debug as TSHOST_CUDA_SYNC says.
local defaults = {deterministic = false, tf32 = true, channelsLast = true, strict = false,
                  debug = os.getenv('TSHOST_CUDA_SYNC') == '1'}
local function gpu_test(t, name, fn)
   t.test(name, function()
      if not ts.cuda.isAvailable() then t.skip(ts.cuda.unavailableReason()) end
      ts.cuda.tf32(false)
      local ok, err = pcall(fn)
      for switch, value in pairs(defaults) do ts.cuda[switch](value) end
      if not ok then error(err, 0) end
   end)
end

-- the emulated GPU's counter `name` (make emu's build exports them) as a function read through the FFI; nil on a
-- real GPU
local function emu_counter(name)
   local ffi = require('ffi')
   pcall(ffi.cdef, ('long %s(void);'):format(name))   -- (declared once: a second declaration is refused)
   local found, f = pcall(function() return ffi.C[name] end)
   return found and f or nil
end

-- the same module twice: one stays on the CPU, the other goes to the GPU with identical tensors
local function twins(make)
   local a, b = make(), make()
   local pa, pb = a:stateDict(), b:stateDict()
   for i = 1, #pa do pb[i][2]:copy(pa[i][2]) end
   b:to('cuda')
   return a, b
end

-- one forward and backward of the same random input and output gradient through the CPU twin and the GPU
-- twin: each side's output, input gradient and parameter gradients
local function both_ways(cpu, gpu, shape)
   local x = ts.randn(shape)
   local y = cpu:forward(x)
   local gy = ts.randn(y:size())
   local c = {y = y, gx = cpu:backward(x, gy)}
   local g = {y = gpu:forward(x:cuda())}
   g.gx = gpu:backward(x:cuda(), gy:cuda())
   c.grads = select(2, cpu:parameters())
   g.grads = select(2, gpu:parameters())
   return c, g
end

local layers = {
   {'conv 3x3 pad 1', function() return nn.Conv2d(3, 8, 3, {padding = 1}) end, {4, 3, 12, 12}},
   {'conv stride 2, TensorFlow same (asymmetric)', function() return nn.Conv2d(4, 6, 3, {stride = 2, padding = 'same'}) end, {3, 4, 10, 10}},
   {'conv groups 2, dilation 2, no bias', function() return nn.Conv2d(4, 6, 3, {padding = 2, dilation = 2, groups = 2, bias = false}) end, {2, 4, 9, 9}},
   {'depthwise conv', function() return nn.Conv2d(8, 8, 3, {padding = 1, groups = 8}) end, {2, 8, 7, 7}},
   {'conv 1x1 stride 2', function() return nn.Conv2d(8, 16, 1, {stride = 2}) end, {2, 8, 8, 8}},
   {'batchnorm 2d', function() return nn.BatchNorm2d(5) end, {6, 5, 4, 4}},
   {'batchnorm 2d eps 1e-3', function() return nn.BatchNorm2d(5, {eps = 1e-3}) end, {6, 5, 4, 4}},
   {'batchnorm without affine', function() return nn.BatchNorm2d(5, {affine = false}) end, {6, 5, 4, 4}},
   {'batchnorm 1d', function() return nn.BatchNorm1d(7) end, {9, 7}},
   {'relu', function() return nn.ReLU() end, {3, 4, 5, 5}},
   {'leaky relu', function() return nn.LeakyReLU(0.1) end, {3, 4, 5, 5}},
   {'elu', function() return nn.ELU(1.0) end, {3, 4, 5, 5}},
   {'maxpool 2x2', function() return nn.MaxPool2d(2) end, {2, 3, 8, 8}},
   {'maxpool 3 stride 2 pad 1 ceil', function() return nn.MaxPool2d(3, 2, 1, {ceil_mode = true}) end, {2, 3, 9, 9}},
   {'avgpool 3 stride 2 pad 1, padding not counted', function() return nn.AvgPool2d(3, 2, 1, {count_include_pad = false}) end, {2, 3, 9, 9}},
   {'global average pool', function() return nn.GlobalAvgPool2d() end, {2, 3, 5, 5}},
   {'upsample nearest 2x3', function() return nn.Upsample2d{2, 3} end, {2, 3, 5, 4}},
   {'linear', function() return nn.Linear(20, 11) end, {6, 20}},
   {'spatial transformer, output 6x7', function()
      local linear = nn.Linear(75, 6)
      linear.bias:copy(ts.tensor({0.9, 0.15, 0.1, -0.2, 1.1, -0.05}))
      return nn.SpatialTransformer(nn.Sequential(nn.Flatten(), linear), {6, 7})
   end, {3, 3, 5, 5}},
   {'option-A shortcut', function() return nn.ZeroPadShortcut(4, 8, 2) end, {2, 4, 8, 8}},
}

return function(t)
   gpu_test(t, 'the metrics take GPU tensors as their CPU copies (data() of one failed inside metrics.lua)', function()
      local p, y = ts.tensor({0, 1, 1}, 'int64'), ts.tensor({0, 1, 0}, 'int64')
      local l = ts.tensor{{2, 1}, {0, 3}, {1, 0}}
      local cm, cm_gpu = ts.metrics.confusion(p, y, 2), ts.metrics.confusion(p:to('cuda'), y:to('cuda'), 2)
      t.eq(ts.json.encode(cm_gpu), ts.json.encode(cm))
      t.eq(ts.metrics.calibration(l:to('cuda'), y:to('cuda')).nll, ts.metrics.calibration(l, y).nll)
   end)

   gpu_test(t, 'every layer forward and backward on the GPU matches the CPU (training and eval)', function()
      for k, case in ipairs(layers) do
         for _, mode in ipairs({'training', 'evaluate'}) do
            ts.manualSeed(k)
            local cpu, gpu = twins(case[2])
            cpu[mode](cpu)
            gpu[mode](gpu)
            local c, g = both_ways(cpu, gpu, case[3])
            local what = case[1] .. ' (' .. mode .. ')'
            t.eq(g.y:device(), 'cuda', what)
            t.near(g.y:cpu(), c.y, 1e-4, 1e-5, what .. ' output')
            t.near(g.gx:cpu(), c.gx, 1e-4, 1e-5, what .. ' gradInput')
            for i = 1, #c.grads do t.near(g.grads[i]:cpu(), c.grads[i], 1e-4, 1e-5, what .. ' parameter gradient ' .. i) end
            local s1, s2 = cpu:stateDict(), gpu:stateDict()
            for i = 1, #s1 do t.near(s2[i][2]:cpu():float(), s1[i][2]:float(), 1e-5, 1e-6, what .. ' ' .. s1[i][1]) end
         end
      end
   end)

   -- Shapes cuDNN's symmetric padding cannot give, which go through an explicitly padded copy: padding
   -- {top 1, bottom 0} at stride 2 leaves the input's last row and column out of every window (their gradient
   -- is 0 and must still be written, over whatever the buffer held), and TensorFlow's 'same' for a 2x2 kernel
   -- at stride 2 on a 1x1 map pads only after it, so the kernel is longer than cuDNN's own padded input.
   -- Run in debug mode (every op checked as it ends), which must not change a result.
   gpu_test(t, 'convolutions through an explicitly padded copy write every input gradient (debug mode on)', function()
      ts.cuda.debug(true)
      local cases = {
         {'padding {1, 0, 1, 0}, stride 2', function() return nn.Conv2d(2, 3, 3, {stride = 2, padding = {1, 0, 1, 0}}) end, {2, 2, 5, 5}},
         {'2x2 kernel, stride 2, same, on 1x1', function() return nn.Conv2d(2, 3, 2, {stride = 2, padding = 'same'}) end, {2, 2, 1, 1}},
      }
      for k, case in ipairs(cases) do
         ts.manualSeed(k)
         local cpu, gpu = twins(case[2])
         local c, g = both_ways(cpu, gpu, case[3])
         t.near(g.y:cpu(), c.y, 1e-4, 1e-5, case[1] .. ' output')
         t.near(g.gx:cpu(), c.gx, 1e-4, 1e-5, case[1] .. ' gradInput')
         -- the same backward into a buffer full of another value: nothing of it may be left
         local x, gy = ts.randn(case[3]), ts.randn(c.y:size())
         local want = cpu:backward(x, gy)
         g.gx:fill(7)
         t.near(gpu:backward(x:cuda(), gy:cuda()):cpu(), want, 1e-4, 1e-5, case[1] .. ' gradInput over a used buffer')
      end
   end)

   gpu_test(t, 'bf16 convolutions (channels-last and NCHW) and linear layers on the GPU match the CPU\'s bf16', function()
      for _, channels_last in ipairs({true, false}) do
         ts.cuda.channelsLast(channels_last)
         for k, case in ipairs(layers) do
            local probe = case[2]()
            if probe.__typename == 'Conv2d' or probe.__typename == 'Linear' then
               ts.manualSeed(k)
               local cpu, gpu = twins(case[2])
               cpu:setPrecision('bf16')
               gpu:setPrecision('bf16')
               local c, g = both_ways(cpu, gpu, case[3])
               local what = ('%s bf16 (%s)'):format(case[1], channels_last and 'NHWC' or 'NCHW')
               local function close(a, b, name) t.near(a:cpu(), b, 1e-2, 1e-2 * b:abs():max(), what .. name) end
               close(g.y, c.y, ' output')
               close(g.gx, c.gx, ' gradInput')
               for i = 1, #c.grads do close(g.grads[i], c.grads[i], ' parameter gradient ' .. i) end
            end
         end
      end
   end)

   gpu_test(t, 'dropout draws the same mask on both devices for a seed', function()
      -- a size that is no multiple of 4, and one past the CPU's parallel threshold
      for _, shape in ipairs({{7, 53}, {300, 301}}) do
         local cpu, gpu = twins(function() return nn.Dropout(0.3) end)
         local x, g = ts.randn(unpack(shape)), ts.randn(unpack(shape))
         ts.manualSeed(4)
         local a = cpu:forward(x)
         ts.manualSeed(4)
         local b = gpu:forward(x:cuda())
         t.near(b:cpu(), a, 0, 0)
         t.near(gpu:backward(x:cuda(), g:cuda()):cpu(), cpu:backward(x, g), 0, 0)
      end
   end)

   gpu_test(t, 'the embedding head and the metric losses match the CPU', function()
      ts.manualSeed(6)
      local x, labels = ts.randn(40, 16), {}
      for i = 1, 40 do labels[i] = i % 7 end
      local cpu, gpu = nn.Normalize(), nn.Normalize()
      local g = ts.randn(40, 16)
      t.near(gpu:forward(x:cuda()):cpu(), cpu:forward(x), 1e-6, 1e-7, 'normalize')
      t.near(gpu:backward(x:cuda(), g:cuda()):cpu(), cpu:backward(x, g), 1e-5, 1e-7, 'normalize backward')
      local e = cpu.output
      for _, loss in ipairs({nn.TripletMarginLoss{margin = 0.5}, nn.ContrastiveLoss{margin = 1.5}}) do
         local a = loss:forward(e, labels)
         local ga = loss:backward(e, labels):clone()
         local b = loss:forward(e:cuda(), labels)
         local gb = loss:backward(e:cuda(), labels):cpu()
         t.near(b, a, 1e-5, 1e-7, loss.__typename .. ' loss')
         t.near(gb, ga, 1e-4, 1e-6, loss.__typename .. ' gradient')
      end
   end)

   gpu_test(t, 'the distillation loss from an ensemble of teachers matches the CPU', function()
      local x, logits, target = ts.randn(16, 10), ts.randn(16, 43), ts.zeros({16}, 'int64')
      for i = 1, 16 do target[i] = (i * 5) % 43 end
      for _, o in ipairs({{weight = 0.5, temperature = 1}, {weight = 1, temperature = 4, label_smoothing = 0.1}}) do
         local cpu1, gpu1 = twins(function() return nn.Linear(10, 43) end)
         local cpu2, gpu2 = twins(function() return nn.Linear(10, 43) end)
         local a = nn.DistillationLoss{teachers = {cpu1, cpu2}, weight = o.weight, temperature = o.temperature,
                                       label_smoothing = o.label_smoothing}
         local b = nn.DistillationLoss{teachers = {gpu1, gpu2}, weight = o.weight, temperature = o.temperature,
                                       label_smoothing = o.label_smoothing}
         local ga = a:backward(logits, target, x)
         local gb = b:backward(logits:cuda(), target, x:cuda())
         t.near(b.output, a.output, 1e-5, 1e-7, 'loss')
         t.near(gb:cpu(), ga, 1e-5, 1e-7, 'gradient')
      end
   end)

   gpu_test(t, 'the sign search\'s scan and scorer with a detector on the GPU give the CPU\'s P(sign)', function()
      -- the scan cuts each window's block out of the trunk's map on the host: a detector trained on the GPU (as
      -- make run trains it there) must have its map brought back, not read through a device pointer
      ts.manualSeed(6)
      local cpu, gpu = twins(function()
         return nn.Sequential(nn.Conv2d(3, 6, 3, {padding = 1}), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(6, 8, 1), nn.ReLU(), nn.MaxPool2d(2), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(8 * 16, 10), nn.ReLU(), nn.Linear(10, 2))
      end)
      cpu:evaluate()
      gpu:evaluate()
      local pre = ts.data.preprocess{mean = {0.4, 0.5, 0.45}, std = {0.25, 0.2, 0.3}}
      local img = ts.scene.background(ts.scene.Random(4), 90, 130)
      local wins, grids = ts.detect.windows(90, 130, {min = 24})
      local a, b = ts.detect.signScanner(cpu, pre)(img, grids), ts.detect.signScanner(gpu, pre)(img, grids)
      local crops = ts.detect.crops(img, wins)
      local ca, cb = ts.detect.signScorer(cpu, pre)(crops), ts.detect.signScorer(gpu, pre)(crops)
      for k = 2, #wins do
         t.near(b[k], a[k], 1e-4, 1e-6, 'scan, window ' .. k)
         t.near(cb[k], ca[k], 1e-4, 1e-6, 'scorer, window ' .. k)
      end
      t.eq(gpu.device, 'cuda')
   end)

   gpu_test(t, 'the pretrained networks on the GPU reproduce their published outputs, as on the CPU', function()
      local dir = os.getenv('TSHOST_MODELS')
      if not dir then t.skip('TSHOST_MODELS is not set (point it at the pretrained models folder)') end
      for name, e in pairs(ts.models.catalog) do
         local m = ts.models.pretrained(name):to('cuda')
         m:evaluate()
         local ref = dir .. '/' .. e.folder .. '/reference/'
         local x = t.readFloats(ref .. 'input.bin', {4, 3, e.input.size, e.input.size})
         local logits = m:forward(x:cuda()):cpu()
         local want = t.readFloats(ref .. 'logits.bin', {4, e.classes})
         local feats = t.readFloats(ref .. 'features.bin', {4, e.features})
         t.truthy(logits:maxAbsDiff(want) <= 1e-4 * want:abs():max(), name .. ' logits: ' .. logits:maxAbsDiff(want))
         t.truthy(m.flatten.output:cpu():maxAbsDiff(feats) <= 1e-4 * feats:abs():max(), name .. ' features')
      end
   end)

   gpu_test(t, 'updateBatchNorm on the GPU gathers the statistics the CPU gathers, and writes them on the device', function()
      local g = ts.data.synthetic{train = 45, valid = 8, test = 8, seed = 7}
      local cpu, gpu = twins(function()
         return nn.Sequential(nn.Conv2d(3, 6, 3, {padding = 1}), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                              nn.Linear(6 * 16 * 16, 5), nn.BatchNorm1d(5))
      end)
      -- batches of 11 leave one image for the last, which the BatchNorm1d could not take statistics of
      for _, batch in ipairs({16, 11}) do
         t.eq(ts.updateBatchNorm(cpu, g.train, {batch = batch}), 2)
         t.eq(ts.updateBatchNorm(gpu, g.train, {batch = batch}), 2)
         local pc, pg = cpu:stateDict(), gpu:stateDict()
         for i = 1, #pc do
            if pc[i][1]:find('running_') then
               t.eq(pg[i][2]:device(), 'cuda', pc[i][1] .. ' stays on the device')
               t.near(pg[i][2]:cpu(), pc[i][2], 1e-4, 1e-5, pc[i][1])
            end
         end
      end
   end)

   gpu_test(t, 'evaluate on the GPU gives the CPU\'s predictions, and ensemble reads logits and labels left on the device', function()
      local g = ts.data.synthetic{train = 12, valid = 8, test = 23, seed = 8}
      local cpu, gpu = twins(function()
         return nn.Sequential(nn.Conv2d(3, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                              nn.Linear(4 * 8 * 8, 43))
      end)
      local ec = ts.evaluate(cpu, g.test, {logits = true, batch = 10})
      local eg = ts.evaluate(gpu, g.test, {logits = true, batch = 10})
      t.near(eg.logits:cpu(), ec.logits, 1e-4, 1e-5, 'logits')
      -- members made by hand, their logits and the labels on the device: read through host pointers, they were
      -- read from device addresses
      local shifted = ec.logits:clone():mul(0.5)
      local want = ts.ensemble({ec, {logits = shifted}}, g.test.y)
      local got = ts.ensemble({eg, {logits = shifted:cuda()}}, g.test.y:cuda())
      t.truthy(got.pred:equal(want.pred), "the ensemble's predictions")
      t.near(got.logits:cpu(), want.logits, 1e-4, 1e-5, 'ensemble logits')
      -- a model on the other device than evaluate's device option failed in its first layer, naming neither
      t.raises(function() local e = ts.evaluate(cpu, g.test, {device = 'cuda'}) end,
               "evaluate: device is 'cuda' but the model is on cpu: move it first (model:to('cuda'))")
      t.raises(function() local e = ts.evaluate(gpu, g.test, {device = 'cpu'}) end, "device is 'cpu' but the model is on cuda")
      t.near(ts.evaluate(gpu, g.test, {logits = true, batch = 10, device = 'cuda'}).logits:cpu(), ec.logits, 1e-4, 1e-5)
   end)

   -- a move that ran out of memory marked every module as moved before its tensors were, and named no call
   gpu_test(t, 'a move to the GPU that runs out of memory names the call, and a second move completes it', function()
      local m = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 100000))
      ts.cuda.emptyCache()   -- (blocks cached by earlier tests would serve the large layer)
      ts.cuda.setMemoryLimit(ts.cuda.memory().in_use + 65536)   -- room for the small layer, not for the large one
      local ok, err = pcall(function() m:to('cuda') end)
      ts.cuda.setMemoryLimit(0)
      t.truthy(not ok and tostring(err):find('Sequential:to("cuda"): ', 1, true), tostring(err))
      t.truthy(m.device == nil and m:get(1).device == nil and m:get(2).device == nil, 'no module is marked as moved')
      t.raises(function() ts.evaluate(m, ts.data.synthetic{train = 4, valid = 2, test = 2}.test, {device = 'cuda'}) end,
               "evaluate: device is 'cuda' but the model is on cpu")
      m:to('cuda')
      t.eq(m:get(2).weight:device(), 'cuda')
      t.eq(m:forward(ts.randn(2, 8):cuda()):size(2), 100000)
   end)

   gpu_test(t, 'cross entropy and optimizer steps match the CPU', function()
      local logits, target = ts.randn(16, 43), ts.zeros({16}, 'int64')
      for i = 1, 16 do target[i] = (i * 5) % 43 end
      local w = ts.rand(43):add_(0.5)
      for _, opts in ipairs({{}, {label_smoothing = 0.1}, {weight = w, label_smoothing = 0.2}}) do
         local a, b = nn.CrossEntropyLoss(opts), nn.CrossEntropyLoss(opts)
         local ga = a:backward(logits, target)
         local gb = b:backward(logits:cuda(), target)
         t.near(b.output, a.output, 1e-5)
         t.near(gb:cpu(), ga, 1e-5, 1e-7)
      end
      for _, make in ipairs({
         function(m) return ts.optim.SGD(m, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4}) end,
         function(m) return ts.optim.Adam(m, {lr = 0.01, weight_decay = 1e-4}) end,
         function(m) return ts.optim.AdamW(m, {lr = 0.01, weight_decay = 0.05}) end,
      }) do
         local cpu, gpu = twins(function() return nn.Linear(30, 7) end)
         local oa, ob = make(cpu), make(gpu)
         local _, ga = cpu:parameters()
         local _, gb = gpu:parameters()
         t.stepTogether(oa, ga, ob, gb, 3)
         t.near(gpu.weight:cpu(), cpu.weight, 1e-5, 1e-6, oa.kind)
         t.near(oa:clipGradNorm(1e9), ob:clipGradNorm(1e9), 1e-5)
         -- clipping that bites, the GPU's without reading the norm back (as ts.train clips)
         local norm = oa:clipGradNorm(0.5)
         t.truthy(norm > 0.5, norm)
         t.eq(ob:clipGradNorm(0.5, {wait = false}), nil)
         t.near(gpu.grad.weight:cpu(), cpu.grad.weight, 1e-5, 1e-7, oa.kind .. ' clipped')
         t.near(ob:clipGradNorm(1e9), 0.5, 1e-5)
      end
   end)

   -- Clipping multiplies by max_norm / (norm + 1e-6) in double and rounds each product once, on both devices.
   -- Gradients of multiples of 1/64 have sums of squares that are exact in any order, so the norms agree to the
   -- bit and the clipped gradients must too (a factor rounded to float first changed a quarter of them).
   gpu_test(t, 'clipping by the gradient norm gives the CPU\'s bits', function()
      local cpu, gpu = twins(function() return nn.Linear(30, 7) end)
      local oa, ob = ts.optim.SGD(cpu, {lr = 0.1}), ts.optim.SGD(gpu, {lr = 0.1})
      local _, ga = cpu:parameters()
      local _, gb = gpu:parameters()
      for i = 1, #ga do
         local flat = ga[i]:view(ga[i]:numel())
         for j = 1, flat:size(1) do flat[j] = ((j * 37) % 1001 - 500) / 64 end
         gb[i]:copy(ga[i]:cuda())
      end
      t.eq(ob:clipGradNorm(0.5), oa:clipGradNorm(0.5), 'the norm')
      for i = 1, #ga do t.truthy(gb[i]:cpu():equal(ga[i]), 'clipped gradient ' .. i) end
   end)

   -- A batch-narrowed view whose images are not a multiple of 16 bytes (3x5x5 floats: 300 bytes) starts off a 16-byte
   -- boundary; cuDNN's plans are timed on aligned buffers, so fp32 operands as the host keeps them are staged when
   -- they are off one (the emulator refuses them; bf16 operands are always staged)
   gpu_test(t, 'a convolution of a batch view off a 16-byte boundary gives the CPU\'s numbers', function()
      local cpu, gpu = twins(function() return nn.Conv2d(3, 5, 3, {padding = 1}) end)
      local all, go = ts.randn(4, 3, 5, 5), ts.randn(4, 5, 5, 5)
      local gall, ggo = all:cuda(), go:cuda()
      local x, gx = all:narrow(1, 2, 3), gall:narrow(1, 2, 3)   -- images 2..4: 300 bytes in
      t.near(gpu:forward(gx):cpu(), cpu:forward(x), 1e-4, 1e-4, 'output')
      local dx, gdx = cpu:backward(x, go:narrow(1, 2, 3)), gpu:backward(gx, ggo:narrow(1, 2, 3))
      t.near(gdx:cpu(), dx, 1e-4, 1e-4, 'gradInput')
      local _, ga = cpu:parameters()
      local _, gb = gpu:parameters()
      for i = 1, #ga do t.near(gb[i]:cpu(), ga[i], 1e-4, 1e-4, 'parameter gradient ' .. i) end
   end)

   -- cuDNN refuses a dimension of 0: an empty batch must not reach it
   gpu_test(t, 'an empty batch goes through a convolution on the GPU as on the CPU', function()
      for _, bf16 in ipairs({false, true}) do
         local cpu, gpu = twins(function() return nn.Conv2d(3, 4, 3, {padding = 1}) end)
         if bf16 then cpu:setPrecision('bf16'); gpu:setPrecision('bf16') end
         local c, g = both_ways(cpu, gpu, {0, 3, 8, 8})
         t.eq(tostring(g.y:size()), tostring(c.y:size()), 'output')
         t.eq(tostring(g.gx:size()), tostring(c.gx:size()), 'gradInput')
         for i = 1, #c.grads do t.near(g.grads[i]:cpu(), c.grads[i], 0, 0, 'parameter gradient ' .. i) end
      end
   end)

   gpu_test(t, 'an optimizer step over a group of 42 tensors matches the CPU and launches a kernel per 32', function()
      -- 21 Linear layers of different sizes (42 tensors, from 1 to 108 elements): past one launch's 32 tensors, so the
      -- joined index range of each launch and the search for a tensor in it are both crossed
      local function net()
         local s = nn.Sequential()
         for i = 1, 21 do s:add(nn.Linear(i % 9 + 1, (i * 5) % 12 + 1)) end
         return s
      end
      local launches = emu_counter('tsk_emu_launches')
      for _, make in ipairs({
         function(m) return ts.optim.SGD(m, {lr = 0.1, momentum = 0.9, dampening = 0.1, weight_decay = 5e-4}) end,
         function(m) return ts.optim.AdamW(m, {lr = 0.01, weight_decay = 0.05}) end,
      }) do
         local cpu, gpu = twins(net)
         local oa, ob = make(cpu), make(gpu)
         local _, ga = cpu:parameters()
         local pb, gb = gpu:parameters()
         t.eq(#pb, 42)
         t.seedState({oa, ob}, pb, 3)   -- state of its own for every third tensor
         t.stepTogether(oa, ga, ob, gb, 3, function(o, step)
            local before = launches and launches()
            o:step()
            if launches and step > 1 then   -- the first step also makes the state
               t.eq(tonumber(launches() - before), 2, oa.kind .. ': launches for 42 tensors')
            end
         end)
         local pa = cpu:parameters()
         for i = 1, #pa do t.near(pb[i]:cpu(), pa[i], 1e-5, 1e-6, oa.kind .. ' parameter ' .. i) end
      end
   end)

   gpu_test(t, 'a training step never waits for the GPU: an epoch of 16 steps waits no more often than one of 8', function()
      -- the emulation counts the host's waits for the whole queue (stream synchronizations, cudaFree); a real GPU
      -- cannot count them this way. Every training feature that runs each step is on: augmentation finished on the
      -- GPU, MixUp/CutMix, dropout, label smoothing and class weights, accumulation, clipping, AdamW with a
      -- one-cycle schedule, the moving average. (max_nonfinite = k waits each step by design: it must see a step's
      -- loss before its update.)
      local host_waits = emu_counter('tsk_emu_host_waits')
      if not host_waits then t.skip('counts the host\'s waits on make emu\'s emulated GPU only') end
      local waits = {}
      for _, n in ipairs({256, 512}) do
         local g = ts.data.synthetic{train = n, valid = 64, test = 8, seed = 5}
         local before = host_waits()
         ts.train{model = {name = 'baseline', classes = 43, widths = {8, 16, 16}}, data = {train = g.train}, epochs = 1,
                  batch = 32, quiet = true, device = 'cuda', seed = 9, clip = 1, ema = 0.99, accumulate = 2,
                  augment = ts.data.augment{rotate = 10, brightness = 0.2, cutout = {0.5, 8}, scale = {0.9, 1.1}},
                  mix = {mixup = 0.4, cutmix = 1}, label_smoothing = 0.1, class_weights = 'balanced',
                  optimizer = 'adamw', lr = 1e-3, schedule = 'onecycle'}
         waits[#waits + 1] = tonumber(host_waits() - before)
      end
      t.truthy(waits[1] > 0, 'the count must be able to fail: the epoch\'s end reads its sums')
      t.eq(waits[2], waits[1], 'waits in an epoch of 16 steps against one of 8')
   end)

   gpu_test(t, 'Lua math on a cuda tensor: a counted host round trip, refused in strict mode', function()
      local x, before = ts.randn(8, 8):cuda(), ts.cuda.fallbacks()
      x:exp(); x:sum()
      x:mul_(2); x:add_(x)            -- the layers' whole-tensor cases stay on the device
      t.eq(ts.cuda.fallbacks(), before + 2)
      ts.cuda.strict(true)
      local ok, err = pcall(function() return x:max(1) end)
      t.truthy(not ok and err:find('max: computing on a host copy of a cuda tensor', 1, true), tostring(err))
   end)

   gpu_test(t, 'a short training run on the GPU tracks the CPU run, and repeats itself exactly', function()
      local g = ts.data.synthetic{train = 1024, valid = 256, test = 256, seed = 5}
      local function run(device)
         ts.cuda.deterministic(true)
         return ts.train{model = {name = 'refcnn', classes = 43}, data = {train = g.train, valid = g.valid}, epochs = 2,
                         batch = 64, lr = 0.02, quiet = true, device = device, seed = 9}
      end
      local cpu, gpu, again = run('cpu'), run('cuda'), run('cuda')
      -- 1e-2: at this rate a rounding's difference grows over the steps; the CPU alone, at 1 and at 2 threads, ends
      -- the two epochs 1.4e-3 and 3.8e-3 apart (relative)
      for e = 1, 2 do
         t.near(gpu.history[e].train_loss, cpu.history[e].train_loss, 1e-2, 0, 'epoch ' .. e .. ' loss')
         t.eq(again.history[e].train_loss, gpu.history[e].train_loss, 'deterministic mode, epoch ' .. e)
      end
      -- the validation loss is as smooth as the training loss; the accuracy (256 images, near 20% after two epochs, the
      -- steep part of the curve) is not: the CPU alone ends at 19.1% on 1 thread and 21.5% on 2, so it gets twice that
      t.near(gpu.history[2].valid_loss, cpu.history[2].valid_loss, 1e-2, 0, 'validation loss')
      t.truthy(math.abs(gpu.history[2].valid_accuracy - cpu.history[2].valid_accuracy) < 0.05,
               ('valid accuracy %.4f on the GPU, %.4f on the CPU'):format(gpu.history[2].valid_accuracy, cpu.history[2].valid_accuracy))
      local ev = ts.evaluate(gpu.model, g.test, {preprocess = gpu.preprocess})
      t.truthy(ev.accuracy > 0 and ev.pred:device() == 'cpu')
   end)

   gpu_test(t, 'stochastic weight averaging on the GPU: the average and its batch norm statistics track the CPU run\'s', function()
      local g = ts.data.synthetic{train = 512, valid = 128, test = 64, seed = 6}
      local function run(device)
         ts.cuda.deterministic(true)
         return ts.train{model = {name = 'baseline', classes = 43, widths = {8, 16, 16}}, data = {train = g.train, valid = g.valid},
                         epochs = 3, batch = 64, lr = 0.02, quiet = true, device = device, seed = 4,
                         swa = {start = 2, lr = 0.01}}
      end
      local cpu, gpu = run('cpu'), run('cuda')
      t.eq(gpu.swa.epochs, 2)
      t.truthy(math.abs(gpu.swa.valid_accuracy - cpu.swa.valid_accuracy) < 0.03,
               ('valid accuracy %.4f on the GPU, %.4f on the CPU'):format(gpu.swa.valid_accuracy, cpu.swa.valid_accuracy))
      -- the tolerance is twice the CPU's own spread: the same run at 1 and at 2 threads ends up to 0.0625 + 2e-2 |x|
      -- apart (a late batch norm's running mean), as a rounding's difference grows over three epochs at this rate
      local pc, pg = cpu.model:stateDict(), gpu.model:stateDict()
      -- (batch norm's num_batches_tracked, an int64 counter bumped every step, is kept on the host by design)
      for i = 1, #pc do
         if pc[i][2]:dtype() == 'float32' then
            t.eq(pg[i][2]:device(), 'cuda', pc[i][1] .. ' stays on the device')
            t.near(pg[i][2]:cpu(), pc[i][2], 4e-2, 0.125, pc[i][1])
         end
      end
   end)

   gpu_test(t, 'MixUp and CutMix mix a batch on the GPU as on the CPU, and a mixed training run tracks the CPU run', function()
      ts.manualSeed(8)
      local x, y = ts.randn(16, 3, 32, 32), ts.zeros({16}, 'int64')
      for i = 1, 16 do y[i] = i % 5 end
      local m = ts.data.mix{mixup = 0.4, cutmix = 1}
      for _, d in ipairs({{lam = 0.3}, {lam = 0.75, box = {5, 9, 16, 16}}}) do
         local a, ya = m:apply(x, y, d)
         a = a:clone()
         local b, yb = m:apply(x:cuda(), y, d)
         t.near(b:cpu(), a, 1e-6, 1e-7, d.box and 'cutmix' or 'mixup')
         t.truthy(yb:equal(ya))
      end
      local g = ts.data.synthetic{train = 512, valid = 128, test = 16, seed = 5}
      local function run(device)
         ts.cuda.deterministic(true)
         return ts.train{model = {name = 'refcnn', classes = 43}, data = {train = g.train, valid = g.valid}, epochs = 1,
                         batch = 64, lr = 0.02, quiet = true, device = device, seed = 9, mix = {mixup = 0.4, cutmix = 1}}
      end
      local cpu, gpu = run('cpu'), run('cuda')
      t.near(gpu.history[1].train_loss, cpu.history[1].train_loss, 2e-3, 0, 'the mixed loss')
   end)

   gpu_test(t, 'deterministic mode gives the same bits in two processes (the algorithms are not chosen by timing)', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/run.lua', [[
ts.cuda.deterministic(true)
local g = ts.data.synthetic{train = 512, valid = 64, test = 64, seed = 5}
local r = ts.train{model = {name = 'refcnn', classes = 43}, data = {train = g.train}, epochs = 1, batch = 64,
                   quiet = true, device = 'cuda', seed = 9}
print(('%.17g'):format(r.history[1].train_loss))]])
      -- the second process runs the emulated GPU's threads and blocks last first (make emu's build; a real GPU ignores
      -- the variable): CUDA promises no order, so a kernel with a race gives other bits there
      local outs = {}
      for i, order in ipairs({'forward', 'reverse'}) do
         local rc, out = t.sh(('TSHOST_DEVICE=cuda TSHOST_EMU_ORDER=%s %s %s/run.lua'):format(order, t.tshost, dir))
         t.eq(rc, 0, out)
         outs[i] = out
      end
      t.eq(outs[2], outs[1], 'the second process (threads in reverse order under emulation)')
   end)

   gpu_test(t, 'a short bf16 training run on the GPU tracks the CPU\'s bf16 run', function()
      local g = ts.data.synthetic{train = 1024, valid = 256, test = 8, seed = 6}
      local function run(device)
         return ts.train{model = {name = 'refcnn', classes = 43}, data = {train = g.train, valid = g.valid}, epochs = 2,
                         batch = 64, lr = 0.02, quiet = true, device = device, seed = 9, precision = 'bf16'}
      end
      local cpu, gpu = run('cpu'), run('cuda')
      for e = 1, 2 do t.near(gpu.history[e].train_loss, cpu.history[e].train_loss, 3e-2, 0, 'epoch ' .. e .. ' loss') end
      -- as in the fp32 run, the loss is the measure; the accuracy after two epochs moves by whole images (the CPU's bf16
      -- run alone: 25.0% on 1 thread, 23.4% on 2; the emulated GPU 26.2%)
      t.near(gpu.history[2].valid_loss, cpu.history[2].valid_loss, 3e-2, 0, 'validation loss')
      t.truthy(math.abs(gpu.history[2].valid_accuracy - cpu.history[2].valid_accuracy) < 0.08,
               ('valid accuracy %.4f on the GPU, %.4f on the CPU'):format(gpu.history[2].valid_accuracy, cpu.history[2].valid_accuracy))
   end)

   gpu_test(t, 'batches finished on the GPU are the CPU\'s batches; the rest are built on the CPU and copied', function()
      local g = ts.data.synthetic{train = 520, valid = 8, test = 8}   -- 9 batches: each device buffer used 4 or 5 times
      local pre = ts.data.preprocess{mean = {0.5, 0.4, 0.3}, std = {0.25, 0.2, 0.2}}
      local on_gpu = ts.data.augment{rotate = 12, scale = {0.9, 1.1}, translate = 0.08, shear = 6, perspective = 0.03,
                                     brightness = 0.35, contrast = 0.35, saturation = 0.3, hue = 0.02, gamma = {0.7, 1.4},
                                     exposure = {0.3, 3}, washout = {0.3, 3}, fade = {0.5, 1}, shadow = {0.5, 0.3}, cutout = {0.5, 8}, flip = 0.5}
      local cpu_only = ts.data.augment{rotate = 10, blur = {0.5, 1.0}, noise = 0.02}
      for _, case in ipairs({{on_gpu, pre}, {cpu_only, pre}, {nil, ts.data.preprocess{mean = {0.5}, std = {0.25}, grayscale = true, size = 48}}}) do
         local function batches(device)
            ts.manualSeed(11)
            local loader = ts.data.Loader(g.train, {batch = 64, augment = case[1], preprocess = case[2], device = device, workers = 3})
            local xs, ys = {}, {}
            for x, y in loader:epoch() do
               t.eq(x:device(), device)
               xs[#xs + 1], ys[#ys + 1] = x, y   -- nothing waits for the GPU: the uploads beside the queue race ahead
            end
            for i = 1, #xs do xs[i] = xs[i]:cpu() end
            return xs, ys
         end
         local xc, yc = batches('cpu')
         local xg, yg = batches('cuda')
         t.eq(#xg, #xc)
         for i = 1, #xc do
            t.truthy(yg[i]:equal(yc[i]), 'labels (flips relabel) of batch ' .. i)
            t.near(xg[i], xc[i], 1e-4, 1e-4, 'images of batch ' .. i)
         end
      end
   end)

   gpu_test(t, 'a batch the GPU had no room to finish is finished again after retry: the epoch is the undisturbed one', function()
      local g = ts.data.synthetic{train = 320, valid = 8, test = 8}
      local aug = ts.data.augment{rotate = 12, brightness = 0.3, cutout = {0.5, 8}, flip = 0.5}
      local function loader()
         ts.manualSeed(12)
         return ts.data.Loader(g.train, {batch = 64, augment = aug, device = 'cuda', workers = 2})
      end
      local whole = {}
      for x in loader():epoch(1, 5) do whole[#whole + 1] = x:cpu() end
      local l = loader()
      local batches, got = l:epoch(1, 5), {}
      got[1] = batches():cpu()
      collectgarbage('collect')
      collectgarbage('collect')
      ts.cuda.emptyCache()
      ts.cuda.setMemoryLimit(ts.cuda.memory().in_use + 4096)   -- no room for the next batch's images
      local ok, err = pcall(batches)
      ts.cuda.setMemoryLimit(0)
      t.truthy(not ok and tostring(err):find('out of memory on cuda', 1, true), tostring(err))
      t.eq(require('ts.ffi').C.ts_last_error_is_oom(), 1)
      t.raises(batches, 'out of memory on cuda')   -- nothing more until retry
      l:retry()
      for x in batches do got[#got + 1] = x:cpu() end
      t.eq(#got, #whole)
      for i = 1, #whole do t.near(got[i], whole[i], 0, 0, 'batch ' .. i) end
   end)

   gpu_test(t, 'cuDNN\'s timed search, which allocates for itself, finds room the host\'s cache held (make emu\'s GPU)', function()
      if not emu_counter('tsk_emu_launches') then
         t.skip('fills the emulated GPU\'s memory (make emu); a real one would have to be filled to its last bytes')
      end
      -- a 6 MiB device: blocks of 1 MiB, then smaller ones, until it is full, given back to the cache; then a layer
      -- never planned. Find found no room and the layer failed as out of memory while the cache held the device
      local script = [[
local x, conv = ts.randn(1, 2, 8, 8):cuda(), ts.nn.Conv2d(2, 3, 3):to('cuda')
local held = {}
for _, n in ipairs({262144, 65536, 16384, 4096}) do
   while pcall(function() held[#held + 1] = ts.zeros(n):cuda() end) do end
end
held = nil
collectgarbage()
local cached = ts.cuda.memory().cached
print(cached > 5 * 2 ^ 20, conv:forward(x):size(2))]]
      local path = t.tmpdir() .. '/fill.lua'
      t.writefile(path, script)
      local rc, out = t.sh(('TSHOST_EMU_MEMORY=%d %s %s'):format(6 * 2 ^ 20, t.tshost, path))
      t.truthy(rc == 0 and out:find('true\t3', 1, true), out)
   end)

   gpu_test(t, 'the triplet loss checks GPU row indices on the host, as the CPU\'s (they were read out of bounds)', function()
      local cffi = require('ts.ffi')
      local x, loss = ts.randn(4, 3):cuda(), ts.zeros(1):cuda()
      local function rows(r) return ts.tensor(r, 'int32'):cuda() end
      for _, bad in ipairs({{0, 1, 4}, {0, 1, -2}}) do   -- (-1 marks an anchor left out: allowed)
         local a, p, q = rows({bad[1]}), rows({bad[2]}), rows({bad[3]})
         t.raises(function() cffi.check(cffi.C.ts_triplet_loss(loss._c, nil, x._c, a._c, p._c, q._c, 1, 1e-6)) end,
                  ('triplet loss: triplet 1 names row %d of 4 embeddings'):format(bad[3]))
      end
      local a, p, q = rows({0}), rows({1}), rows({2})
      cffi.check(cffi.C.ts_triplet_loss(loss._c, nil, x._c, a._c, p._c, q._c, 1, 1e-6))
      local h = ts.zeros(1)
      cffi.check(cffi.C.ts_triplet_loss(h._c, nil, x:cpu()._c, a:cpu()._c, p:cpu()._c, q:cpu()._c, 1, 1e-6))
      t.near(loss:cpu()[1], h[1], 1e-5)
   end)

   gpu_test(t, 'memory: statistics, the caching allocator, out of memory named by layer, auto_microbatch', function()
      -- from an empty cache: the earlier tests' blocks and the convolutions' workspace all given back (the
      -- workspace is released into the cache, so it must go first for the cache to end empty)
      collectgarbage('collect')
      collectgarbage('collect')
      ts.cuda.emptyCache()
      ts.cuda.resetPeak()
      local before = ts.cuda.memory()
      t.eq(before.cached, 0, 'emptyCache leaves nothing cached, the workspace included')
      local a = ts.zerosOn('cuda', {1024, 1024})
      t.truthy(ts.cuda.memory().in_use >= before.in_use + 4 * 1024 * 1024)
      a = nil
      collectgarbage('collect')
      collectgarbage('collect')
      local after = ts.cuda.memory()
      t.truthy(after.cached >= 4 * 1024 * 1024, 'freed blocks are kept for reuse')
      local hits = after.cache_hits
      local b = ts.zerosOn('cuda', {1024, 1024})
      t.truthy(ts.cuda.memory().cache_hits == hits + 1, 'the same size comes from the cache')
      b = nil
      ts.cuda.emptyCache()
      local m = ts.models.refcnn({classes = 43}):to('cuda')
      local x = ts.randn(256, 3, 32, 32):cuda()
      collectgarbage('collect')
      ts.cuda.setMemoryLimit(ts.cuda.memory().in_use + 2 * 1024 * 1024)
      local ok, err = pcall(m.forward, m, x)
      ts.cuda.setMemoryLimit(0)
      t.truthy(not ok and err:find('out of memory in forward, input [256x', 1, true) and err:find('on cuda', 1, true), tostring(err))
      local g = ts.data.synthetic{train = 512, valid = 128, test = 64, seed = 1}
      collectgarbage('collect')
      ts.cuda.emptyCache()
      ts.cuda.setMemoryLimit(ts.cuda.memory().in_use + 24 * 1024 * 1024)
      local ok2, r = pcall(ts.train, {model = {name = 'refcnn', classes = 43}, data = {train = g.train, valid = g.valid},
                                      epochs = 1, batch = 512, quiet = true, device = 'cuda', auto_microbatch = true})
      ts.cuda.setMemoryLimit(0)
      t.truthy(ok2, tostring(r))
      t.truthy(r.micro_batch < 512, 'micro-batch ' .. tostring(r.micro_batch))
   end)
end
