local nn = ts.nn
local ffi = require('ffi')
local cffi = require('ts.ffi')

-- a toy problem with learnable structure: the class is the quadrant holding a bright blob
local function blobs(n)
   local x, y = ts.randn(n, 1, 8, 8):mul_(0.3), ts.zeros({n}, 'int64')
   for i = 1, n do
      local c = ts.randint(4) - 1
      y[i] = c
      local r, q = 1 + 4 * (c % 2), 1 + 4 * math.floor(c / 2)
      x[{i, 1, {r, r + 2}, {q, q + 2}}]:add_(1.5)
   end
   return x, y
end

local function small_net()
   return nn.Sequential(nn.Conv2d(1, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 4))
end

local function train(net, opt, x, y, steps)
   local loss, losses = nn.CrossEntropyLoss(), {}
   net:training()
   for s = 1, steps do
      local i = 1 + ((s - 1) * 32) % x:size(1)
      local xb, yb = x:narrow(1, i, 32), y:narrow(1, i, 32)
      opt:zeroGrad()
      local out = net:forward(xb)
      losses[s] = loss:forward(out, yb)
      net:backward(xb, loss:backward(out, yb))
      opt:step()
   end
   return losses
end

return function(t)
   -- f must raise an error containing words, positioned at the line of this file that made the call
   local function at_caller(f, words) t.atCaller(t.raises(f, words)) end

   t.test('a small network converges on generated data (SGD+Nesterov, AdamW)', function()
      local x, y = blobs(256)
      for _, make in ipairs({
         function(net) return ts.optim.SGD(net, {lr = 0.05, momentum = 0.9, nesterov = true}) end,
         function(net) return ts.optim.AdamW(net, {lr = 0.01}) end,
      }) do
         local net = small_net()
         local losses = train(net, make(net), x, y, 60)
         t.truthy(losses[60] < 0.25 * losses[1], ('loss %.3f -> %.3f'):format(losses[1], losses[60]))
         net:evaluate()
         local _, pred = net:forward(x):max(2)
         local correct = (pred:view(-1):float():eq(y:float())):sum()
         t.truthy(correct / 256 > 0.95, 'accuracy ' .. correct / 256)
      end
   end)

   t.test('same seed and thread count give bit-identical losses', function()
      local function run()
         ts.manualSeed(5)
         local x, y = blobs(64)
         local net = small_net()
         return train(net, ts.optim.SGD(net, {lr = 0.1, momentum = 0.9}), x, y, 6)
      end
      local a, b = run(), run()
      for i = 1, #a do t.eq(a[i], b[i], 'loss ' .. i) end
   end)

   t.test('BatchNorm: batch statistics in training, running statistics in evaluation', function()
      local bn = nn.BatchNorm2d(2)
      local x = ts.randn(8, 2, 4, 4):mul_(3):add_(5)
      local y = bn:forward(x)
      t.near(y:mean(), 0, 0, 1e-4)
      t.near(bn.running_mean:mean(), 0.5, 0.05)        -- 0.1 * batch mean of about 5
      t.eq(bn.num_batches_tracked:item(), 1)
      bn:evaluate()
      local ye = bn:forward(x)
      t.truthy(ye:mean() > 3, 'evaluation mode must use the running statistics')
      t.eq(bn.num_batches_tracked:item(), 1)
      t.raises(function() bn:forward(ts.randn(2, 2)) end, 'expected a 4-dim input')
      -- one value per channel: no batch statistics to train on, but evaluation needs none (a single image)
      local bn1 = nn.BatchNorm1d(3)
      t.raises(function() bn1:forward(ts.randn(1, 3)) end, 'training needs more than one value per channel')
      bn1:evaluate()
      t.eq(bn1:forward(ts.randn(1, 3)):size(1), 1)
   end)

   t.test('a batch norm and its ReLU run fused in training, with the bits of the two run apart', function()
      local function net()
         ts.manualSeed(3)
         return nn.Sequential(nn.Conv2d(3, 8, 3, {padding = 1}), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3))
      end
      local x, g = ts.randn(4, 3, 9, 9), ts.randn(4, 4, 7, 7)
      local fused, apart = net(), net()
      local y = fused:forward(x)
      local gx = fused:backward(x, g)
      t.eq(fused:get(2).output, nil, "the fused batch norm keeps no output of its own")
      -- apart: each child's forward and backward by hand
      local outs, h = {}, x
      for i = 1, 4 do
         h = apart:get(i):forward(h)
         outs[i] = h
      end
      local gh = g
      for i = 4, 1, -1 do gh = apart:get(i):backward(i > 1 and outs[i - 1] or x, gh) end
      t.near(y, outs[4], 0, 0, 'output')
      t.near(gx, gh, 0, 0, 'input gradient')
      local pf, pa = select(2, fused:parameters()), select(2, apart:parameters())
      for i = 1, #pa do t.near(pf[i], pa[i], 0, 0, 'parameter gradient ' .. i) end
      t.near(fused:get(2).running_var, apart:get(2).running_var, 0, 0, 'running variance')
      t.near(fused:get(3).output, outs[3], 0, 0, "the ReLU's output")
      fused:evaluate()
      fused:forward(x)
      t.truthy(fused:get(2).output ~= nil, 'in evaluation each layer keeps its output (nothing is fused)')
   end)

   t.test('fused evaluation: a convolution, its batch norm and ReLU as one, the outputs equal to rounding', function()
      ts.manualSeed(4)
      local function block(bias) return nn.Sequential(nn.Conv2d(6, 16, 3, {padding = 1, bias = bias}), nn.BatchNorm2d(16), nn.ReLU(),
                                                      nn.Conv2d(16, 8, 1), nn.BatchNorm2d(8), nn.MaxPool2d(2)) end
      for _, bias in ipairs({false, true}) do
         local net = block(bias)
         -- running statistics and affine parameters away from their initial values
         net:training()
         for _ = 1, 3 do net:forward(ts.randn(5, 6, 10, 10):mul_(2):add_(1)) end
         net:get(2).weight:uniform(0.5, 1.5)
         net:get(2).bias:uniform(-0.5, 0.5)
         local x = ts.randn(5, 6, 10, 10)
         net:evaluate()
         local plain = net:forward(x):clone()
         local relu_out = net:get(3).output:clone()
         net:evaluate{fused = true}
         local fused = net:forward(x)
         t.near(fused, plain, 1e-5, 1e-5, 'output')
         t.near(net:get(3).output, relu_out, 1e-5, 1e-5, 'the ReLU ends the fused group')
         t.eq(net:get(1).output, nil, 'the convolution of a fused group keeps no output')
         t.truthy(net:get(5).output ~= nil, 'a group without its ReLU ends at the batch norm (conv 1x1 + BN)')
         t.raises(function() net:backward(x, ts.randn(fused:size())) end, 'ran fused for inference')
         net:evaluate()
         net:forward(x)
         t.truthy(net:get(1).output ~= nil, 'plain evaluation keeps every output again')
      end
   end)

   t.test('Checkpoint: the same gradients (dropout and batch norm inside) for less activation memory', function()
      local function net(checkpointed)
         ts.manualSeed(12)
         local stage = nn.Sequential(nn.Conv2d(3, 16, 3, {padding = 1}), nn.BatchNorm2d(16), nn.ReLU(),
                                     nn.Conv2d(16, 16, 3, {padding = 1}), nn.BatchNorm2d(16), nn.ReLU(), nn.Dropout(0.3))
         return nn.Sequential(checkpointed and nn.Checkpoint(stage) or stage, nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 8 * 8, 5))
      end
      local x, g = ts.randn(8, 3, 16, 16), ts.randn(8, 5)
      local results = {}
      for _, checkpointed in ipairs({false, true}) do
         local m = net(checkpointed)
         collectgarbage('collect')
         ts.cuda.resetPeak('cpu')
         local base = ts.memory('cpu').in_use
         ts.manualSeed(3)
         local y = m:forward(x)
         local after_forward = ts.memory('cpu').in_use - base
         local gx = m:backward(x, g)
         local grads = {}
         for i, p in ipairs(select(2, m:parameters())) do grads[i] = p:clone() end
         local state = {}
         for _, entry in ipairs(m:stateDict()) do state[entry[1]] = entry[2] end
         results[#results + 1] = {y = y:clone(), gx = gx:clone(), grads = grads, kept = after_forward,
                                  running = state['0.1.running_var']:clone(), names = state}
      end
      local plain, ck = results[1], results[2]
      t.near(ck.y, plain.y, 0, 0, 'output')
      t.near(ck.gx, plain.gx, 0, 0, 'input gradient')
      for i = 1, #plain.grads do t.near(ck.grads[i], plain.grads[i], 0, 0, 'parameter gradient ' .. i) end
      t.near(ck.running, plain.running, 0, 0, 'the second forward leaves the running statistics as the first did')
      for name in pairs(plain.names) do t.truthy(ck.names[name], 'the checkpointed model names ' .. name .. ' as the plain one') end
      t.truthy(ck.kept < plain.kept / 2, ('memory kept after the forward: %d bytes checkpointed, %d plain'):format(ck.kept, plain.kept))
   end)

   t.test('Dropout: scaled mask in training, identity in evaluation', function()
      local d = nn.Dropout(0.5)
      local x = ts.ones(1000)
      local y = d:forward(x)
      local zeros = (y:eq(0)):sum()
      t.truthy(zeros > 400 and zeros < 600, 'zeros: ' .. zeros)
      t.near(y:max(), 2)
      -- the backward passes the gradient through the forward's mask, which it rebuilds from the seed
      local g = ts.randn(1000)
      t.near(d:backward(x, g), g:clone():mul_(y), 0, 0)
      d:evaluate()
      t.truthy(d:forward(x):equal(x))
   end)

   t.test("Dropout's mask is Philox4x32-10 of (element / 4, seed), whatever the threads", function()
      -- an independent Philox4x32-10 in Lua, checked against Random123's published known answers
      local bit, u64 = require('bit'), ffi.typeof('uint64_t')
      local function mulhilo(a, b)
         local p = u64(a) * b
         return tonumber(p / 4294967296ULL), tonumber(p % 4294967296ULL)
      end
      local function philox(c0, c1, c2, c3, k0, k1)
         for _ = 1, 10 do
            local h0, l0 = mulhilo(0xD2511F53, c0)
            local h1, l1 = mulhilo(0xCD9E8D57, c2)
            c0, c1, c2, c3 = bit.bxor(h1, c1, k0) % 2^32, l1, bit.bxor(h0, c3, k1) % 2^32, l0
            k0, k1 = (k0 + 0x9E3779B9) % 2^32, (k1 + 0xBB67AE85) % 2^32
         end
         return {c0, c1, c2, c3}
      end
      local function words(w) return ('%08x %08x %08x %08x'):format(w[1], w[2], w[3], w[4]) end
      t.eq(words(philox(0, 0, 0, 0, 0, 0)), '6627e8d5 e169c58d bc57ac4c 9b00dbd8')
      local f = 0xffffffff
      t.eq(words(philox(f, f, f, f, f, f)), '408f276d 41c83b0e a20bc7c6 6d5451fd')
      t.eq(words(philox(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0)),
           'd16cfe09 94fdcceb 5001e420 24126ea1')
      -- the mask: element i dropped when word i % 4 of philox(i / 4, seed) < floor(p 2^32); a size past the
      -- parallel threshold that is no multiple of 4
      local n, p, seed = 70001, 0.3, 0x299f31d0a4093822ULL
      local k0, k1 = tonumber(seed % 4294967296ULL), tonumber(seed / 4294967296ULL)
      local threshold, scale = math.floor(p * 2^32), ffi.new('float[1]', 1 / (1 - p))[0]
      local x = ts.rand(n):add_(1)
      local masks = {}
      for _, threads in ipairs({1, 2}) do
         local before = ts.getThreads()
         ts.setThreads(threads)
         local y = ts.zeros(n)
         cffi.check(cffi.C.ts_dropout(y._c, x._c, p, seed))
         ts.setThreads(before)
         masks[threads] = y
      end
      t.near(masks[1], masks[2], 0, 0, 'the mask must not depend on the thread count')
      local xd, yd = ffi.cast('float *', x:data()), ffi.cast('float *', masks[2]:data())
      local wrong, dropped = 0, 0
      for q = 0, math.ceil(n / 4) - 1 do
         local words = philox(q, 0, 0, 0, k0, k1)
         for j = 0, 3 do
            local i = 4 * q + j
            if i < n then
               local want = words[j + 1] >= threshold and ffi.new('float[1]', xd[i] * scale)[0] or 0
               if yd[i] ~= want then wrong = wrong + 1 end
               if yd[i] == 0 then dropped = dropped + 1 end
            end
         end
      end
      t.eq(wrong, 0, 'elements whose mask differs from the reference Philox')
      t.truthy(math.abs(dropped / n - p) < 0.01, 'dropped fraction ' .. dropped / n)
   end)

   t.test('parameters, freezing and printing', function()
      local net = ts.models.refcnn()
      t.eq(net:numParameters(), 675339)
      local params, grads = net:parameters()
      t.eq(#params, 19)   -- 5 convs without bias, 5 BN (weight, bias), 2 linear (weight, bias)
      t.eq(#grads, #params)
      net:get(1):freeze()
      local p2 = net:parameters()
      t.eq(#p2, 18)
      local s = tostring(net)
      t.truthy(s:find('(0): Conv2d(3, 32, kernel=3x3, padding=1, bias=false)  [864 params] frozen', 1, true), s)
      t.truthy(s:find('(20): Linear(2048, 256)  [524544 params]', 1, true), s)
      -- a frozen layer accumulates no gradient
      net:unfreeze()
      net:get(1):freeze()
      net:zeroGrad()
      local x = ts.randn(2, 3, 32, 32)
      local out = net:forward(x)
      net:backward(x, ts.ones(out:size()))
      t.eq(net:get(1).grad.weight:abs():sum(), 0)
      t.truthy(net:get(4).grad.weight:abs():sum() > 0)
   end)

   t.test('printing shows each axis of strides, dilations and padding when they differ', function()
      local function repr(m) return tostring(m):match('^[^\n]*') end
      t.eq(repr(nn.Conv2d(3, 8, 3, {stride = {2, 1}, padding = {1, 2}, dilation = {1, 2}, bias = false})),
           'Conv2d(3, 8, kernel=3x3, stride=(2, 1), padding=(1, 2), dilation=(1, 2), bias=false)  [216 params]')
      t.eq(repr(nn.Conv2d(3, 8, {3, 5}, {stride = 2, padding = 1, dilation = 2})),
           'Conv2d(3, 8, kernel=3x5, stride=2, padding=1, dilation=2)  [368 params]')
      t.eq(repr(nn.Conv2d(3, 8, 3, {padding = {0, 1, 0, 1}})), 'Conv2d(3, 8, kernel=3x3, padding=(0, 1, 0, 1))  [224 params]')
      t.eq(repr(nn.Conv2d(3, 8, 3, {padding = 'same', stride = {1, 2}})),
           "Conv2d(3, 8, kernel=3x3, stride=(1, 2), padding='same')  [224 params]")
      t.eq(repr(nn.Conv2d(3, 8, 1)), 'Conv2d(3, 8, kernel=1x1)  [32 params]')
      t.eq(repr(nn.MaxPool2d({2, 3}, {2, 1}, {0, 1})), 'MaxPool2d(kernel=2x3, stride=(2, 1), padding=(0, 1))')
      t.eq(repr(nn.AvgPool2d(3, 2, 1, {ceil_mode = true})), 'AvgPool2d(kernel=3x3, stride=2, padding=1, ceil_mode=true)')
      t.eq(repr(nn.MaxPool2d(2)), 'MaxPool2d(kernel=2x2, stride=2)')
   end)

   t.test('state_dict names follow PyTorch', function()
      local net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4),
                                nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 1)), nil, {'body'}))
      local names = {}
      for _, pair in ipairs(net:stateDict()) do names[#names + 1] = pair[1] end
      t.eq(table.concat(names, ' '), '0.weight 0.bias 1.weight 1.bias 1.running_mean 1.running_var ' ..
                                      '1.num_batches_tracked 2.body.0.weight 2.body.0.bias')
   end)

   t.test('shape errors name the layer and the sizes', function()
      local net = ts.models.refcnn()
      local err = t.raises(function() net:forward(ts.randn(2, 1, 32, 32)) end,
                           'input [2,1,32,32] has 1 channels but weight [32,3,3,3] expects 3')
      t.truthy(tostring(err):find('0 (Conv2d)', 1, true), err)
      t.raises(function() net:forward(ts.randn(2, 3, 16, 16)) end, '20 (Linear): linear: input [2,512] does not fit weight [256,2048]')
      t.raises(function() nn.Conv2d(3, 4, 3, {groups = 2}) end, 'not divisible by groups=2')
      t.raises(function() nn.CrossEntropyLoss():forward(ts.randn(2, 3), {0, 5}) end,
               'target 5 of sample 2 is outside the classes 0..2')
      t.raises(function() nn.MaxPool2d(5):forward(ts.randn(1, 1, 3, 3)) end, 'larger than the input')
      -- settings that made NaN outputs, and targets that are not class ids
      t.raises(function() nn.Conv2d(3, 8, 0) end, 'Conv2d: kernel must be a whole number >= 1')
      t.raises(function() nn.Conv2d(3, 8, 3, {stride = 1.5}) end, 'stride must be a whole number >= 1')
      t.raises(function() nn.Conv2d(3, 8, 3, {padding = -1}) end, 'padding must be a whole number >= 0')
      t.raises(function() nn.Linear(2.5, 3) end, 'Linear(in, out): sizes must be whole numbers >= 0, got 2.5')
      local empty = nn.Linear(0, 2):forward(ts.zeros(1, 0))
      t.truthy(empty:get(1, 1) == 0 and empty:get(1, 2) == 0, 'Linear(0, 2) of nothing: its zero bias')
      t.raises(function() nn.CrossEntropyLoss():forward(ts.randn(2, 3), ts.tensor({0, 1.5})) end,
               'the float32 targets hold values that are not class ids')
      t.raises(function() nn.CrossEntropyLoss():forward(ts.randn(2, 3), {0, 1.5}) end, 'target 2 is 1.5, not a class id')
      -- a module at two places in one network: Sequential(A, A) computed A's second output into the buffer it
      -- read, and counted A's parameters twice
      local A = nn.Linear(4, 4)
      t.raises(function() nn.Sequential(A, A) end, 'Sequential:add: the Linear is in this network already')
      local inner = nn.Sequential(A)
      t.raises(function() nn.Sequential(inner, nn.Sequential(A)) end, 'the Linear is in this network already')
      t.raises(function() inner:add(inner) end, 'the Sequential is in this network already')
      -- an empty batch keeps its sample shape through Flatten and View (a -1 had nothing to divide: [0x0])
      t.eq(tostring(nn.Flatten():forward(ts.zeros(0, 10, 3, 3)):size()), '[0x90]')
      t.eq(tostring(nn.View(-1):forward(ts.zeros(0, 10, 3)):size()), '[0x30]')
      t.raises(function() nn.View(7, -1):forward(ts.zeros(0, 10, 3)) end, 'View(7, -1): the input [0x10x3] holds 30 elements a sample')
      t.raises(function() nn.BatchNorm2d(3):forward(ts.randn(2, 4, 3, 3)) end,
               'BatchNorm2d(3): the input [2x4x3x3] has 4 channels, the layer normalizes 3')
      t.raises(function() nn.BatchNorm1d(3):forward(ts.randn(2, 5)) end, 'BatchNorm1d(3): the input [2x5] has 5 features')
      -- batch norm's backward in training needs the statistics of a forward: before one, it gave zero gradients
      local bn = nn.BatchNorm2d(3)
      t.raises(function() bn:backward(ts.randn(2, 3, 4, 4), ts.randn(2, 3, 4, 4)) end,
               'BatchNorm2d:backward: no forward in training mode came before it')
      -- so do the layers that keep what their backward takes (they indexed nil), and the containers
      local x, gy = ts.randn(2, 4, 4, 4), ts.randn(2, 4, 2, 2)
      for _, case in ipairs({{nn.ReLU(), 'ReLU', 'output', x}, {nn.MaxPool2d(2), 'MaxPool2d', 'indices', gy},
                             {nn.Dropout(0.5), 'Dropout', 'seed', x},
                             {nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1)), 'Sequential', 'output', x},
                             {nn.Concat(2, nn.Identity(), nn.Identity()), 'Concat', 'output', ts.randn(2, 8, 4, 4)}}) do
         local m, name, field, g = case[1], case[2], case[3], case[4]
         t.raises(function() m:backward(x, g) end, ('%s:backward: no forward came before it to keep its %s'):format(name, field))
         m:forward(x)
         m:backward(x, g)   -- after a forward it runs
         m:clearState()
         t.raises(function() m:backward(x, g) end, name .. ':backward: no forward came before it', 'after clearState')
      end
      local norm, e = nn.Normalize(), ts.randn(3, 5)
      t.raises(function() norm:backward(e, e) end, 'Normalize:backward: no forward came before it to keep its output')
      -- a dropout's forward in evaluation leaves no mask for a backward in training
      local drop = nn.Dropout(0.5)
      drop:forward(x)
      drop:evaluate(); drop:forward(x); drop:training()
      t.raises(function() drop:backward(x, x) end, 'Dropout:backward: no forward came before it')
   end)

   t.test('layer options that make no sense are refused when the layer is made, naming the layer and the option', function()
      -- groups and the four paddings are whole numbers: the FFI cut 0.5 to 0, and groups of 1.5 made a weight of
      -- the wrong shape that failed only in the forward
      t.raises(function() nn.Conv2d(3, 3, 3, {groups = 1.5}) end, 'Conv2d: groups must be a whole number >= 1, got 1.5')
      t.raises(function() nn.Conv2d(3, 3, 3, {groups = -3}) end, 'Conv2d: groups must be a whole number >= 1, got -3')
      t.raises(function() nn.Conv2d(3, 4, 3, {padding = {0.5, 0, 0, 0}}) end,
               'Conv2d: padding must be a whole number >= 0 or {top, bottom, left, right} of them, got {0.5, 0, 0, 0}')
      t.raises(function() nn.Conv2d(3, 4, 3, {padding = {-1, 0, 0, 0}}) end, 'got {-1, 0, 0, 0}')
      t.raises(function() nn.Conv2d(3, 4, {3}) end, 'Conv2d: kernel must be a whole number >= 1 or {h, w} of them, got {3}')
      -- pooling sizes likewise: a kernel of 2.5 pooled 2x2 windows, a stride of 1.5 strode 1
      t.raises(function() nn.MaxPool2d(2.5) end, 'MaxPool2d: kernel must be a whole number >= 1 or {h, w} of them, got 2.5')
      t.raises(function() nn.AvgPool2d(2, 1.5) end, 'AvgPool2d: stride must be a whole number >= 1 or {h, w} of them, got 1.5')
      t.raises(function() nn.MaxPool2d({2}) end, 'MaxPool2d: kernel must be a whole number >= 1 or {h, w} of them, got {2}')
      -- a NaN slope or alpha made every negative input NaN
      t.raises(function() nn.LeakyReLU(0 / 0) end, 'LeakyReLU(negative_slope): negative_slope must be a finite number, got nan')
      t.raises(function() nn.ELU(math.huge) end, 'ELU(alpha): alpha must be a finite number, got inf')
      t.eq(nn.LeakyReLU(0.2).param, 0.2)
      t.raises(function() nn.AvgPool2d('2') end, 'AvgPool2d: kernel must be a whole number >= 1 or {h, w} of them, got "2"')
      t.eq(tostring(nn.MaxPool2d({2, 3}, 1, {1, 0}):forward(ts.randn(1, 1, 4, 4)):size()), '[1x1x5x2]')
      -- a NaN p, eps or momentum, a negative eps, a momentum above 1: NaN outputs or running statistics
      t.raises(function() nn.Dropout(0 / 0) end, 'Dropout(p): p must be in [0, 1), got nan')
      t.raises(function() nn.BatchNorm2d(3, {eps = -1}) end, 'BatchNorm2d: eps must be a finite number >= 0, got -1')
      t.raises(function() nn.BatchNorm2d(3, {momentum = 0 / 0}) end, 'BatchNorm2d: momentum must be a number from 0 to 1, got nan')
      t.raises(function() nn.BatchNorm1d(3, {momentum = 2}) end, 'BatchNorm1d: momentum must be a number from 0 to 1, got 2')
      t.raises(function() nn.BatchNorm2d(1.5) end, 'BatchNorm2d(channels): channels must be a positive whole number, got 1.5')
      -- a NaN label smoothing, and class weights that are NaN, negative or all 0: a NaN or unbounded loss
      t.raises(function() nn.CrossEntropyLoss{label_smoothing = 0 / 0} end,
               'CrossEntropyLoss: label_smoothing must be a number from 0 to 1, got nan')
      t.raises(function() nn.CrossEntropyLoss{weight = {1, 0 / 0, 1}} end, 'CrossEntropyLoss: class weight 2 (class 1) is nan')
      t.raises(function() nn.CrossEntropyLoss{weight = ts.tensor({1, -1, 1})} end, 'class weight 2 (class 1) is -1')
      t.raises(function() nn.CrossEntropyLoss{weight = {0, 0, 0}} end, 'CrossEntropyLoss: the class weights are all 0')
      t.truthy(nn.CrossEntropyLoss{weight = {0, 1, 2}}:forward(ts.randn(2, 3), {1, 2}) > 0)
      -- a class for a module (nn.ReLU for nn.ReLU()) failed only in the forward, inside the layer's code
      local err = t.raises(function() nn.Sequential(nn.Linear(2, 2), nn.ReLU) end,
                           'Sequential: argument 2 must be a module, got the class ReLU (make one: ReLU(...))')
      t.truthy(err:find('test_nn.lua:', 1, true), 'at the line that built it: ' .. err)
      t.raises(function() nn.Sequential():add('relu') end, 'Sequential:add: the child must be a module, got "relu"')
      t.raises(function() nn.Sequential{{'relu', nn.ReLU}} end, "Sequential{...}: entry 1's module must be a module, got the class ReLU")
      t.raises(function() nn.Residual(nn.Identity(), nn.Linear) end, 'Residual(block, shortcut): shortcut must be a module, got the class Linear')
      t.raises(function() nn.Concat(2, nn.Identity(), 3) end, 'Concat: argument 3 must be a module, got 3')
      t.raises(function() nn.Checkpoint(nn.ReLU) end, 'Checkpoint(module): module must be a module, got the class ReLU')
      t.raises(function() nn.SpatialTransformer(nil) end, 'SpatialTransformer(localization, size): localization must be a module, got nil')
      -- evaluate and ts.train took a class for the model (its forward failed inside)
      t.raises(function() ts.evaluate(nn.Sequential, ts.data.synthetic{train = 6, valid = 6, test = 6}.test) end,
               'evaluate(model, dataset, opts): model must be a module, got the class Sequential')
      t.raises(function() ts.train{model = nn.Sequential, data = ts.data.synthetic{train = 6, valid = 6, test = 6}, epochs = 1} end,
               'ts.train: model must be a module, got the class Sequential')
      -- a missing size was passed over by the check and failed on arithmetic inside the layer
      t.raises(function() nn.Conv2d(3, 8, nil) end, 'Conv2d: kernel must be a whole number >= 1 or {h, w} of them, got nil')
      -- a [3] became [3, 1], three samples of one value
      t.raises(function() nn.Flatten():forward(ts.tensor({1, 2, 3})) end, 'Flatten: input must be [N, ...], got [3]')
      t.eq(tostring(nn.Flatten():forward(ts.zeros(2, 3, 4)):size()), '[2x12]')
   end)

   t.test('hostile inputs to the layers and containers: a named error, no crash and no silent result', function()
      -- a Checkpoint's backward before its forward gave the generator a NULL state: the process crashed
      t.raises(function() nn.Checkpoint(nn.Linear(3, 2)):backward(ts.randn(2, 3), ts.randn(2, 2)) end,
               'Checkpoint:backward: no forward came before it to keep its rng')
      -- a table or a number where a tensor goes failed inside the layer as "attempt to call method 'dim'"
      t.raises(function() nn.Linear(3, 2):forward({{1, 2, 3}}) end, 'Linear:forward(input): input must be a tensor, got table')
      t.raises(function() nn.Linear(3, 2):backward(ts.randn(2, 3), {1}) end,
               'Linear:backward(input, gradOutput): gradOutput must be a tensor, got table')
      t.raises(function() nn.CrossEntropyLoss():forward({1, 2}, {0, 1}) end, 'CrossEntropyLoss: the logits must be a tensor')
      t.raises(function() nn.Sequential({nn.Linear(3, 2), nn.ReLU()}) end,
               "Sequential{...}: entry 1 is not a {'name', module} pair: give the modules as arguments")
      -- Concat: outputs that differ on another dim than dim were copied element by element into a wrong shape, a
      -- dim of 0 and no children indexed nil, a wider gradient was read in part
      t.raises(function() nn.Concat(2, nn.Identity(), nn.Flatten()):forward(ts.randn(2, 3, 1)) end,
               'Concat(dim=2): 1 (Flatten) gives [2x3] and the first module [2x3x1]: the outputs must differ only along dim 2')
      t.raises(function() nn.Concat(0, nn.Identity()) end, 'Concat: dim (the first argument) must be a whole number >= 1, got 0')
      t.raises(function() nn.Concat(nn.Identity()) end, 'Concat: dim (the first argument) must be a whole number >= 1, got an Identity')
      t.raises(function() nn.Concat(3, nn.Identity()):forward(ts.randn(2, 3)) end, 'Concat(dim=3): 0 (Identity) gives [2x3], which has no dim 3')
      t.raises(function() nn.Concat(2):forward(ts.randn(2, 3)) end, 'Concat: no modules to join')
      local cat = nn.Concat(2, nn.Identity(), nn.Identity())
      cat:forward(ts.randn(2, 3))
      t.raises(function() cat:backward(ts.randn(2, 3), ts.randn(2, 8)) end, 'Concat:backward: gradOutput is [2x8], the forward gave [2x6]')
      -- Residual: a shortcut of another shape was broadcast over the block's output
      t.raises(function() nn.Residual(nn.Linear(3, 4)):forward(ts.randn(2, 3)) end,
               'Residual: the block gives [2x4] and the identity shortcut (the input) [2x3]: they must have one shape')
      t.raises(function() nn.Residual(nn.Linear(3, 3), nn.Linear(3, 1)):forward(ts.randn(2, 3)) end, 'and the shortcut [2x1]')
      local res = nn.Residual(nn.Linear(3, 3))
      t.raises(function() res:backward(ts.randn(2, 3), ts.randn(2, 3)) end, 'Residual:backward: no forward came before it')
      res:forward(ts.randn(2, 3))
      t.raises(function() res:backward(ts.randn(2, 3), ts.randn(2, 4)) end, 'Residual:backward: gradOutput is [2x4], the forward gave [2x3]')
      -- reshapes: a gradient of the same count and another shape was reshaped as it was; View(-1, -1) made [N,1,M]
      local flat = nn.Flatten()
      flat:forward(ts.randn(2, 3, 4))
      t.raises(function() flat:backward(ts.randn(2, 3, 4), ts.randn(4, 6)) end, 'Flatten:backward: gradOutput is [4x6], the forward gave [2x12]')
      local view = nn.View(3, 4)
      view:forward(ts.randn(2, 12))
      t.raises(function() view:backward(ts.randn(2, 12), ts.randn(2, 4, 3)) end, 'View:backward: gradOutput is [2x4x3]')
      t.raises(function() nn.View(-1, -1) end, 'View(...): sizes must be whole numbers >= 0 and at most one -1, got {-1, -1}')
      t.raises(function() nn.View(8, 1.5) end, 'got {8, 1.5}')
      -- the shortcut: a stride of 0 failed in the forward, a gradient with more channels was read in part
      t.raises(function() nn.ZeroPadShortcut(2, 4, 0) end, 'ZeroPadShortcut: stride must be a whole number >= 1, got 0')
      local pad = nn.ZeroPadShortcut(2, 4)
      pad:forward(ts.randn(1, 2, 4, 4))
      t.raises(function() pad:backward(ts.randn(1, 2, 4, 4), ts.randn(1, 5, 2, 2)) end,
               'ZeroPadShortcut:backward: gradOutput is [1x5x2x2], the forward gave [1x4x2x2]')
      -- Upsample2d({2}) was made without a width factor; global pooling of no pixels named neither layer nor input
      t.raises(function() nn.Upsample2d({2}) end, 'Upsample2d(scale_factor): whole factors >= 1, got {2}')
      t.raises(function() nn.GlobalAvgPool2d():forward(ts.randn(2, 3, 0, 4)) end,
               'GlobalAvgPool2d: expected an input [N,C,H,W] with H, W >= 1, got [2x3x0x4]')
      t.raises(function() nn.GlobalAvgPool2d():forward(ts.randn(3, 4, 4)) end, 'got [3x4x4]')
      -- the losses' options: a misspelt one was ignored (temprature = 4 distilled at T = 1); a class as a teacher
      -- passed; teachers of other shapes failed as an unnamed copy
      t.raises(function() nn.CrossEntropyLoss{label_smothing = 0.1} end, 'CrossEntropyLoss: unknown option label_smothing')
      t.raises(function() nn.DistillationLoss{teachers = {nn.Linear(3, 4)}, temprature = 4} end,
               'DistillationLoss: unknown option temprature')
      t.raises(function() nn.DistillationLoss{teachers = {nn.Linear}} end, 'DistillationLoss: teacher 1 must be a module, got the class Linear (make one: Linear(...))')
      local d = nn.DistillationLoss{teachers = {nn.Linear(3, 4), nn.Linear(3, 5)}}
      t.raises(function() d:forward(ts.randn(2, 4), {0, 1}, ts.randn(2, 3)) end,
               "DistillationLoss: teacher 2 gives [2x5], teacher 1 [2x4]: the teachers' logits must be [N, classes]")
   end)

   t.test('more hostile inputs: stale batch norm statistics, misspelt options, metric losses, replace', function()
      -- batch norm's backward in evaluation took whatever save_invstd held: zeros before any forward (zero gradients),
      -- a training batch's statistics after one (a gradient scaled by the batch's invstd, not the running one)
      local bn = nn.BatchNorm1d(1)
      bn:evaluate()
      local x, g = ts.tensor({{1}, {3}}), ts.tensor({{1}, {1}})
      t.raises(function() bn:backward(x, g) end, 'BatchNorm1d:backward: no forward in evaluation mode came before it')
      bn:training()
      bn:forward(ts.tensor({{0}, {10}}))
      bn:evaluate()
      t.raises(function() bn:backward(x, g) end, 'no forward in evaluation mode came before it (the running statistics')
      bn:forward(x)
      t.near(bn:backward(x, g), ts.tensor({{1}, {1}}) / math.sqrt(bn.running_var:item() + 1e-5), 1e-6, 0)
      -- a misspelt option was ignored and the layer made at its default; false passed as the default eps or momentum
      t.raises(function() nn.Conv2d(3, 4, 3, {strid = 2}) end, 'Conv2d: unknown option strid (known: bias, dilation, groups')
      t.raises(function() nn.Linear(2, 3, {bais = false}) end, 'Linear: unknown option bais (known: bias)')
      t.raises(function() nn.BatchNorm2d(3, {momentun = 0.01}) end, 'BatchNorm2d: unknown option momentun')
      t.raises(function() nn.BatchNorm2d(3, {momentum = false}) end, 'BatchNorm2d: momentum must be a number from 0 to 1, got false')
      t.raises(function() nn.MaxPool2d(2, 2, 0, {ceilmode = true}) end, 'MaxPool2d: unknown option ceilmode (known: ceil_mode)')
      t.raises(function() nn.MaxPool2d(2, 2, 0, {count_include_pad = false}) end, 'MaxPool2d: unknown option count_include_pad')
      nn.AvgPool2d(2, 2, 0, {ceil_mode = true, count_include_pad = false})
      -- switches: 'no' or 0 is true in Lua, and kept the bias or the affine parameters, or turned ceil_mode on
      t.raises(function() nn.Linear(2, 3, {bias = 'no'}) end, 'Linear: bias must be true or false, got "no"')
      t.raises(function() nn.Conv2d(3, 4, 3, {bias = 0}) end, 'Conv2d: bias must be true or false, got 0')
      t.raises(function() nn.BatchNorm2d(3, {affine = 'false'}) end, 'BatchNorm2d: affine must be true or false, got "false"')
      t.raises(function() nn.MaxPool2d(2, 2, 0, {ceil_mode = 0}) end, 'MaxPool2d: ceil_mode must be true or false, got 0')
      t.raises(function() nn.AvgPool2d(2, 2, 0, {count_include_pad = 'no'}) end, 'AvgPool2d: count_include_pad must be true or false')
      t.eq(#nn.Linear(2, 3, {bias = false}):parameters(), 1)
      -- paddings near 2^30 overflowed C's int in the padded size: "kernel larger than the padded input"
      t.raises(function() nn.Conv2d(1, 1, 1, {padding = 2 ^ 30}):forward(ts.zeros(1, 1, 1, 1)) end,
               'conv2d: the output would be 2147483649x2147483649, over 2^31 rows or columns')
      -- a label smoothing of the wrong type failed in the FFI at the first forward; a missing target was "ts.tensor:
      -- expected a (nested) table of numbers, got nil"
      t.raises(function() nn.CrossEntropyLoss{label_smoothing = '0.1'} end,
               'CrossEntropyLoss: label_smoothing must be a number from 0 to 1, got "0.1"')
      t.raises(function() nn.CrossEntropyLoss{label_smoothing = 1.5} end, 'label_smoothing must be a number from 0 to 1, got 1.5')
      t.raises(function() nn.CrossEntropyLoss():forward(ts.randn(2, 3)) end,
               'CrossEntropyLoss: the targets must be a tensor or a list of class ids, got nil')
      t.near(nn.CrossEntropyLoss():forward(ts.zeros(1, 4), 2), math.log(4), 1e-6, 0, 'one sample, its class a number')
      t.raises(function() nn.CrossEntropyLoss():forward(ts.zeros(1, 4), 1.5) end, 'target 1 is 1.5, not a class id')
      -- the metric losses: a NaN margin made every loss 0, row 0 was taken as "no triplet" and row 1.5 as row 1,
      -- labels 0.5 as class 0, misspelt options were ignored, a table for the embeddings failed on indexing
      local e = ts.tensor({{0, 0}, {1, 0}, {0, 2}, {3, 3}})
      t.raises(function() nn.TripletMarginLoss{margin = 0 / 0} end, 'TripletMarginLoss: margin must be a finite number, got nan')
      t.raises(function() nn.TripletMarginLoss{margn = 2} end, 'TripletMarginLoss: unknown option margn')
      t.raises(function() nn.TripletMarginLoss():forward(e, {anchors = {0}, positives = {1}, negatives = {2}}) end,
               'TripletMarginLoss: anchors[1] (a 1-based row number) must be a whole number from 1 to 4, got 0')
      t.raises(function() nn.TripletMarginLoss():forward(e, {anchors = {1}, positives = {1.5}, negatives = {3}}) end,
               'positives[1] (a 1-based row number) must be a whole number from 1 to 4, got 1.5')
      t.raises(function() nn.TripletMarginLoss():forward(e, {anchors = {1}, positives = {2}}) end,
               'TripletMarginLoss: anchors, positives and negatives must be lists of as many row numbers')
      t.raises(function() nn.TripletMarginLoss():forward(e, {0, 0.5, 1, 1}) end, 'TripletMarginLoss: target 2 is 0.5, not a class id')
      t.raises(function() nn.TripletMarginLoss():backward({1, 2}, {0, 1}) end,
               'TripletMarginLoss: the embeddings must be a tensor [N, D], got table')
      t.raises(function() nn.ContrastiveLoss{margn = 2} end, 'ContrastiveLoss: unknown option margn')
      t.raises(function() nn.ContrastiveLoss():forward(e, ts.tensor({0, 0.5, 1, 1})) end,
               'ContrastiveLoss: the float32 targets hold values that are not class ids')
      t.raises(function() nn.Normalize(0 / 0) end, 'Normalize(eps): eps must be a finite number >= 0, got nan')
      -- NaN embeddings lost every comparison of the mining and the clamp: no triplet, a loss of 0 that the training's
      -- check of a non-finite loss never saw; PyTorch's is NaN
      local nan = ts.randn(4, 3)
      nan[2][1] = 0 / 0
      for _, loss in ipairs({nn.TripletMarginLoss(), nn.ContrastiveLoss()}) do
         local v = loss:forward(nan, {0, 0, 1, 1})
         t.truthy(v ~= v, loss.__typename .. ' of NaN embeddings: ' .. tostring(v))
      end
      local v = nn.TripletMarginLoss():forward(nan, {anchors = {1}, positives = {2}, negatives = {3}})
      t.truthy(v ~= v, 'a given triplet of a NaN row: ' .. tostring(v))
      -- replace took a number (printing the network then failed indexing it) and a module at a second place
      local lin = nn.Linear(2, 2)
      local net = nn.Sequential(lin, nn.ReLU())
      t.raises(function() net:replace('1', 5) end, 'Sequential:replace: the child must be a module, got 5')
      t.raises(function() net:replace('1', lin) end, 'Sequential:replace: the Linear is in this network already')
      net:replace('0', lin)   -- a child in its own place
      t.eq(net:get(1), lin)
      -- a gradient of another shape was handed on by Identity, and by Dropout in evaluation
      local id, drop = nn.Identity(), nn.Dropout(0.5)
      drop:evaluate()
      for _, m in ipairs({id, drop}) do
         m:forward(ts.randn(2, 3))
         t.raises(function() m:backward(ts.randn(2, 3), ts.randn(3, 2)) end,
                  m.__typename .. ':backward: gradOutput is [3x2], the forward gave [2x3]')
      end
      -- a localization Linear without a bias cannot start at the identity warp (it indexed the missing bias)
      t.raises(function() nn.SpatialTransformer.identity(nn.Linear(4, 6, {bias = false})) end,
               'SpatialTransformer.identity: the Linear needs a bias')
   end)

   t.test('layers and losses take views that are not laid out densely (a transpose), with a dense copy\'s numbers', function()
      -- every layer refused them ("expected a contiguous tensor"), where PyTorch's take any view
      local function transposed(shape)   -- a random tensor of shape whose last two dims are swapped in memory
         local s = {unpack(shape)}
         s[#s], s[#s - 1] = s[#s - 1], s[#s]
         return ts.randn(s):transpose(#s - 1, #s)
      end
      local x = transposed({2, 3, 6, 6})
      t.truthy(not x:isContiguous())
      for _, make in ipairs({
         function() return nn.Conv2d(3, 4, 3, {padding = 1}) end, function() return nn.BatchNorm2d(3) end,
         function() return nn.MaxPool2d(2) end, function() return nn.ReLU() end, function() return nn.Dropout(0.3) end,
         function() return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)) end,
         function() return nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, {padding = 1}), nn.ReLU())) end,
      }) do
         ts.manualSeed(1)
         local a = make()
         ts.manualSeed(1)
         local b = make()
         ts.manualSeed(2)
         local ya = a:forward(x)
         ts.manualSeed(2)
         local yb = b:forward(x:contiguous())
         t.near(ya, yb, 0, 0, a.__typename .. ' output')
         local g = transposed(ya:size())
         t.near(a:backward(x, g), b:backward(x:contiguous(), g:contiguous()), 0, 0, a.__typename .. ' gradInput')
         local _, ga = a:parameters()
         local _, gb = b:parameters()
         for i = 1, #ga do t.near(ga[i], gb[i], 0, 0, a.__typename .. ' parameter gradient ' .. i) end
      end
      local logits, y = transposed({4, 5}), {0, 1, 2, 3}
      local ce = nn.CrossEntropyLoss()
      t.near(ce:forward(logits, y), ce:forward(logits:contiguous(), y), 0, 0)
      t.near(ce:backward(logits, y):clone(), ce:backward(logits:contiguous(), y), 0, 0)
   end)

   t.test('errors of containers, metric losses and pretrained models point at the caller\'s line', function()
      -- raised inside a walk of the network or below a call that is a tail call in one path and not in another, they
      -- named a line of the library: containers.lua, metric.lua, or none at all
      local a = nn.Linear(2, 2)
      local s = nn.Sequential(a)
      at_caller(function() s:add(a) end, 'Sequential:add: the Linear is in this network already')
      at_caller(function() s:add(nn.Sequential(nn.Sequential(a))) end, 'the Linear is in this network already')
      at_caller(function() local n = nn.Sequential(a, a) end, 'Sequential:add: the Linear is in this network already')
      at_caller(function() local n = nn.Residual(a, a) end, 'Residual:add: the Linear is in this network already')
      at_caller(function() local n = nn.Concat(2, a, a) end, 'Concat:add: the Linear is in this network already')
      s:add(nn.ReLU())
      at_caller(function() s:replace('1', nn.Sequential(a)) end, 'Sequential:replace: the Linear is in this network already')
      local l, x = nn.TripletMarginLoss(), ts.randn(4, 2)
      for _, pass in ipairs({'forward', 'backward'}) do
         at_caller(function() local v = l[pass](l, x, {anchors = {0}, positives = {2}, negatives = {3}}) end,
                   'anchors[1] (a 1-based row number) must be a whole number from 1 to 4, got 0')
         at_caller(function() local v = l[pass](l, x, {anchors = {1}, positives = {2}}) end, 'as many row numbers')
      end
      at_caller(function() local m = ts.models.pretrained('nope') end, 'ts.models.pretrained: unknown model nope')
      at_caller(function() local m = ts.models.pretrained('resnet20', {classes = 43}) end, 'unknown option classes')
   end)

   t.test('gradient clipping scales to the requested norm', function()
      local lin = nn.Linear(3, 2)
      local opt = ts.optim.SGD(lin, {lr = 0.1})
      lin.grad.weight:fill(3)
      lin.grad.bias:fill(4)
      local norm = opt:clipGradNorm(1)
      t.near(norm, math.sqrt(6 * 9 + 2 * 16), 1e-6)
      t.near(math.sqrt(lin.grad.weight:square():sum() + lin.grad.bias:square():sum()), 1, 1e-4)
      -- under the limit: untouched; {wait = false} (ts.train's way) scales the same and reads nothing back
      local w = lin.grad.weight:clone()
      t.near(opt:clipGradNorm(2), 1, 1e-4)
      t.truthy(lin.grad.weight:equal(w))
      lin.grad.weight:fill(3)
      lin.grad.bias:fill(4)
      t.eq(opt:clipGradNorm(1, {wait = false}), nil)
      t.near(math.sqrt(lin.grad.weight:square():sum() + lin.grad.bias:square():sum()), 1, 1e-4)
   end)

   t.test('an optimizer steps all the tensors of a group in one call, as it steps them one by one', function()
      local function net() ts.manualSeed(4); return nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3), nn.Linear(3, 2)) end
      for _, make in ipairs({
         function(groups) return ts.optim.SGD(groups, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4}) end,
         function(groups) return ts.optim.SGD(groups, {lr = 0.1}) end,
         -- with dampening the first step differs (the buffer starts as the gradient, not (1 - dampening) of it)
         function(groups) return ts.optim.SGD(groups, {lr = 0.1, momentum = 0.9, dampening = 0.1}) end,
         function(groups) return ts.optim.Adam(groups, {lr = 0.01, weight_decay = 1e-4}) end,
         function(groups) return ts.optim.AdamW(groups, {lr = 0.01}) end,
      }) do
         local a, b = net(), net()
         local pb, gb = b:parameters()
         local singles = {}
         for i = 1, #pb do singles[i] = {params = {{pb[i]}, {gb[i]}}} end
         local oa, ob = make(a), make(singles)
         -- state that differs between the tensors of the group: every other tensor starts with momentum, or with
         -- Adam moments and a step count of its own (so a kernel that took tensor 1's for all would differ)
         t.seedState({oa, ob}, pb, 2)
         local pa, ga = a:parameters()
         t.stepTogether(oa, ga, ob, gb, 3)
         for i = 1, #pa do t.truthy(pa[i]:equal(pb[i]), oa.kind .. ': parameter ' .. i .. ' differs') end
      end
   end)

   t.test('an optimizer refuses a tensor listed twice and names the parameter whose gradient does not fit', function()
      local w, g = ts.randn(3, 2), ts.randn(3, 2)
      t.raises(function() ts.optim.SGD({{params = {{w, w}, {g, g}}}}, {lr = 0.1}):step() end,
               'sgd: parameters 1 and 2 (or their state) share memory')
      t.raises(function() ts.optim.Adam({{params = {{ts.randn(2), w}, {ts.randn(2), ts.randn(5)}}}}):step() end,
               'adam: gradient of parameter 2')
      -- a view of another parameter's memory is the same memory
      local flat = ts.randn(10)
      t.raises(function() ts.optim.SGD({{params = {{flat, flat:narrow(1, 4, 3)}, {ts.randn(10), ts.randn(3)}}}}, {lr = 1}):step() end,
               'share memory')
   end)

   t.test('an optimizer checks its hyperparameters as torch.optim does, in every group', function()
      local l = nn.Linear(2, 2)
      for _, case in ipairs({
         {'SGD', {momentum = -0.5}, 'SGD: momentum must be >= 0, got -0.5'},
         {'SGD', {weight_decay = -1}, 'SGD: weight_decay must be >= 0'},
         {'SGD', {lr = 0 / 0}, 'SGD: lr must be a finite number, got nan'},
         {'SGD', {dampening = 'x'}, 'SGD: dampening must be a finite number'},
         {'SGD', {nesterov = true}, 'SGD: Nesterov momentum needs a momentum above 0 and no dampening (momentum 0'},
         {'SGD', {nesterov = true, momentum = 0.9, dampening = 0.1}, 'and no dampening (momentum 0.9, dampening 0.1)'},
         {'SGD', {nesterov = 1, momentum = 0.9}, 'SGD: nesterov must be true or false, got 1'},
         {'Adam', {beta1 = 1}, 'Adam: beta1 must be in [0, 1), got 1'},
         {'AdamW', {beta2 = -0.1}, 'AdamW: beta2 must be in [0, 1)'},
         {'Adam', {eps = -1e-8}, 'Adam: eps must be >= 0'},
      }) do
         local opts = {lr = 0.1}
         for k, v in pairs(case[2]) do opts[k] = v end
         t.raises(function() ts.optim[case[1]](l, opts) end, case[3])
         local group = {params = l}
         for k, v in pairs(case[2]) do group[k] = v end
         t.raises(function() ts.optim[case[1]]({group}, {lr = 0.1}) end, case[3], 'the same in a group')
      end
      local err = t.raises(function() ts.optim.SGD({{params = l, lrr = 1}}, {lr = 0.1}) end,
                           'SGD parameter group: unknown option lrr (known: dampening, lr, momentum, nesterov, params, weight_decay)')
      t.truthy(err:find('test_nn.lua:', 1, true), "a group's errors point at the line that made the optimizer: " .. err)
      err = t.raises(function() ts.optim.SGD({{params = l, momentum = -1}}, {lr = 0.1}) end, 'SGD: momentum must be >= 0')
      t.truthy(err:find('test_nn.lua:', 1, true), err)
      -- added later (torch.optim's add_param_group): checked alike, at the line that added it; a group not a table
      -- failed with "attempt to index local 'g'"
      local opt = ts.optim.Adam(nn.Linear(2, 2), {lr = 0.1})
      err = t.raises(function() opt:addParamGroup{params = l, beta1 = 1} end, 'Adam: beta1 must be in [0, 1), got 1')
      t.truthy(err:find('test_nn.lua:', 1, true), err)
      err = t.raises(function() opt:addParamGroup(l) end, 'Adam parameter group: unknown option')
      t.truthy(err:find('test_nn.lua:', 1, true), err)
      t.raises(function() opt:addParamGroup(nil) end, 'Adam parameter group: the options must be a table, got nil')
      t.raises(function() opt:addParamGroup{params = 3} end, 'Adam: a group needs params = a module or {params, grads}')
      t.eq(#opt.groups, 1, 'a refused group is not added')
      t.eq(opt:addParamGroup{params = l, lr = 0.5}.lr, 0.5)
      t.eq(opt.groups[2].beta2, 0.999, "a group's missing options are the kind's defaults")
      -- what torch.optim takes is taken: momentum above 1, no weight decay, lr 0
      ts.optim.SGD(l, {lr = 0, momentum = 1.5, nesterov = true})
   end)

   t.test('parameter groups: own learning rates and frozen parts', function()
      local body, head = nn.Linear(4, 4), nn.Linear(4, 2)
      local opt = ts.optim.SGD({{params = body, lr = 0}, {params = head}}, {lr = 0.5})
      local before_body, before_head = body.weight:clone(), head.weight:clone()
      body.grad.weight:fill(1)
      head.grad.weight:fill(1)
      opt:step()
      t.truthy(body.weight:equal(before_body))
      t.near(head.weight, before_head - 0.5)
      local sched = ts.optim.schedule.cosine(opt, {total = 10, warmup = 2})
      t.near(opt.groups[2].lr, 0.25)
      sched:step()
      t.near(opt.groups[2].lr, 0.5)
      for _ = 1, 9 do sched:step() end   -- update 10 of 10: the end of the cosine
      t.near(opt.groups[2].lr, 0, 0, 1e-9)
   end)

   t.test('Checkpoint gives back only the tensors it made, and refuses a backward after a switch of mode', function()
      -- a module that hands its input on (Identity) returned the caller's tensor, which the next forward freed: the
      -- caller's input, and in the backward their gradOutput, were "used after :free()" from then on
      local c, x1, x2 = nn.Checkpoint(nn.Identity()), ts.tensor({{1, 2}}), ts.tensor({{3, 4}})
      c:forward(x1)
      c:forward(x2)
      t.near(x1, ts.tensor({{1, 2}}), 0, 0, 'the first input')
      local g1, g2 = ts.tensor({{5, 6}}), ts.tensor({{7, 8}})
      c:backward(x2, g1)
      c:forward(x2)
      c:backward(x2, g2)
      t.near(g1, ts.tensor({{5, 6}}), 0, 0, 'the first gradOutput')
      -- the backward runs the forward again: in the other mode it gave another function's gradients (batch norm's
      -- running statistics for the batch's), where the plain module refuses
      local m = nn.Checkpoint(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
      local x = ts.randn(5, 3)
      m:forward(x)
      m:evaluate()
      t.raises(function() m:backward(x, ts.randn(5, 4)) end,
               'Checkpoint:backward: the forward ran in training mode and the module is now in evaluation mode')
      m:forward(x)
      t.eq(tostring(m:backward(x, ts.randn(5, 4)):size()), '[5x3]', 'a forward in evaluation, then its backward')
   end)

   t.test('the rarer layers and losses: named errors at the caller\'s line for what they cannot take', function()
      -- the shortcut's backward took another input to a raw "size: dim 4 out of range" or a copy of other shapes
      local pad = nn.ZeroPadShortcut(2, 4)
      at_caller(function() pad:backward(ts.randn(2, 3, 5), ts.randn(1, 4, 2, 3)) end, 'ZeroPadShortcut: expected [N,2,H,W], got [2x3x5]')
      at_caller(function() pad:backward(ts.randn(1, 3, 4, 4), ts.randn(1, 4, 2, 2)) end, 'got [1x3x4x4]')
      -- an output past C's int was first allocated, and failed as "more elements than a 64-bit count (corrupt size
      -- field?)" or out of memory, naming neither the layer nor its factor
      local up = nn.Upsample2d(2 ^ 30)
      at_caller(function() up:forward(ts.zeros(1, 1, 2, 2)) end,
                'Upsample2d: the output would be 2147483648x2147483648 (input [1x1x2x2], scale_factor=(1073741824, 1073741824))')
      -- a given row past the batch was named 0-based by the host ("names row 4 of 4"), and on the GPU read outside
      local e, triplet = ts.randn(4, 2), nn.TripletMarginLoss()
      at_caller(function() triplet:forward(e, {anchors = {1}, positives = {5}, negatives = {3}}) end,
                'TripletMarginLoss: positives[1] (a 1-based row number) must be a whole number from 1 to 4, got 5')
      t.truthy(triplet:forward(e, {anchors = {4}, positives = {1}, negatives = {2}}) >= 0, 'row 4 of 4 is taken')
      -- distillation: false was the default temperature, the string '4' was refused as "got 4", and a missing batch
      -- or bad logits and targets were named at a line of loss.lua, the latter two as CrossEntropyLoss's
      t.raises(function() nn.DistillationLoss{teachers = {nn.Linear(3, 4)}, temperature = false} end,
               'DistillationLoss: temperature must be a finite number > 0, got false')
      t.raises(function() nn.DistillationLoss{teachers = {nn.Linear(3, 4)}, temperature = '4'} end, 'got "4"')
      local d, z, x = nn.DistillationLoss{teachers = {nn.Linear(3, 4)}}, ts.randn(2, 4), ts.randn(2, 3)
      for _, pass in ipairs({'forward', 'backward'}) do
         at_caller(function() local v = d[pass](d, z, {0, 1}) end, "DistillationLoss: the batch's input images are needed")
         at_caller(function() local v = d[pass](d, {1, 2}, {0, 1}, x) end, 'DistillationLoss: the logits must be a tensor [N, classes], got {1, 2}')
         at_caller(function() local v = d[pass](d, z, {0.5, 1}, x) end, 'DistillationLoss: target 1 is 0.5, not a class id')
      end
      -- updateBatchNorm took batch = false as the default 128
      local ds = ts.data.synthetic{train = 4, valid = 1, test = 1, seed = 2}.train
      t.raises(function() ts.updateBatchNorm(nn.Sequential(nn.BatchNorm2d(3)), ds, {batch = false}) end,
               'updateBatchNorm: batch must be a whole number from 1 to 2^24, got false')
   end)

   t.test('SpatialTransformer matches grid_sample by hand: a zoom by 2 reads between the pixel centres', function()
      -- theta = diag(0.5, 0.5): output pixel centres at +-0.25, read at pixel coordinates 0.25 and 0.75 (align_corners
      -- false), so output (1, 1) = 0.75 (0.75 * 1 + 0.25 * 2) + 0.25 (0.75 * 3 + 0.25 * 4) = 1.75
      local linear = nn.Linear(4, 6)
      linear.weight:zero()
      linear.bias:copy(ts.tensor({0.5, 0, 0, 0, 0.5, 0}))
      local stn = nn.SpatialTransformer(nn.Sequential(nn.Flatten(), linear))
      t.near(stn:forward(ts.tensor({{{{1, 2}, {3, 4}}}})), ts.tensor({{{{1.75, 2.25}, {2.75, 3.25}}}}), 1e-6, 1e-6)
   end)
end
