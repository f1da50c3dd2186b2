-- Devices and memory as far as this machine shows them: storage statistics, the memory limit that
-- makes an allocation fail as a full GPU would, out-of-memory errors that name the layer, training that
-- halves its micro-batch instead of failing, and the CPU-only answers of ts.cuda. test_cuda.lua covers
-- the GPU itself.
local nn = ts.nn

local function net()
   return nn.Sequential(nn.Conv2d(3, 16, 3, {padding = 1}), nn.ReLU(), nn.Conv2d(16, 32, 3, {padding = 1}), nn.ReLU(),
                        nn.AvgPool2d(4), nn.Flatten(), nn.Linear(32 * 8 * 8, 43))
end

-- runs fn with the host's memory limited to what is in use now plus `headroom` bytes
local function with_limit(headroom, fn)
   collectgarbage('collect')
   collectgarbage('collect')
   ts.setMemoryLimit('cpu', ts.memory('cpu').in_use + headroom)
   local ok, err = pcall(fn)
   ts.setMemoryLimit('cpu', 0)
   if not ok then error(err, 0) end
end

return function(t)
   t.test('storage statistics follow allocations; a limit fails them as out of memory', function()
      collectgarbage('collect')
      local before = ts.memory('cpu')
      local a = ts.zeros(256, 1024)   -- 1 MiB
      local during = ts.memory('cpu')
      t.truthy(during.in_use - before.in_use >= 1024 * 1024, 'in use grew by ' .. (during.in_use - before.in_use))
      t.truthy(during.peak >= during.in_use and during.allocations > before.allocations)
      a = nil
      collectgarbage('collect')
      collectgarbage('collect')
      t.truthy(ts.memory('cpu').in_use <= during.in_use - 1024 * 1024, 'freed storage leaves the count')
      with_limit(4096, function()
         t.raises(function() return ts.zeros(1024, 1024) end, 'out of memory on cpu: 4.0 MiB requested')
         t.eq(require('ts.ffi').C.ts_last_error_is_oom(), 1)
         t.truthy(ts.zeros(16) ~= nil, 'small allocations still fit')
      end)
      t.truthy(ts.memory('cpu').failures >= 1)
      t.raises(function() ts.setMemoryLimit('cpu', -1) end, 'bytes (0: no limit) must be a whole number from 0')
   end)

   t.test('the switches take true or false and the memory limit whole bytes: anything else is refused, nothing set', function()
      -- 0 and 'off' are true in Lua: ts.cuda.tf32(0) turned TF32 on; nil or a string failed in the FFI, naming
      -- cuda.lua; NaN and 1e30 read as -2^63, and 2.5 as a limit of 2 bytes
      for _, switch in ipairs({'tf32', 'deterministic', 'channelsLast', 'debug', 'strict'}) do
         t.raises(function() ts.cuda[switch](0) end, 'ts.cuda.' .. switch .. ': the setting must be true or false, got 0')
         t.raises(function() ts.cuda[switch]('off') end, 'must be true or false, got "off"')
      end
      t.eq(ts.cuda.isStrict(), false)
      for _, bytes in ipairs({'100', 0 / 0, 1e30, 2.5, -1}) do
         t.raises(function() ts.setMemoryLimit('cpu', bytes) end, 'ts.setMemoryLimit(device, bytes): bytes (0: no limit) must be a whole number')
         t.raises(function() ts.cuda.setMemoryLimit(bytes) end, 'ts.cuda.setMemoryLimit(bytes): bytes (0: no limit) must be a whole number')
      end
      t.raises(function() ts.cuda.setMemoryLimit() end, 'got nil')
      t.eq(ts.memory('cpu').limit, 0)
   end)

   t.test('running out of memory inside a network names the layer and the input', function()
      local m = net()
      local x = ts.randn(64, 3, 32, 32)
      m:forward(x)
      m:clearState()
      with_limit(3 * 1024 * 1024, function()   -- the first conv's output (4 MiB) does not fit
         t.raises(function() m:forward(x) end, '0 (Conv2d): out of memory in forward, input [64x3x32x32] on cpu: out of memory on cpu: 4.0 MiB requested')
      end)
      local seq = nn.Sequential()
      seq:add(m, 'features')
      with_limit(6 * 1024 * 1024, function()
         local ok, err = pcall(seq.forward, seq, x)
         t.truthy(not ok and err:find('features (Sequential): 1 (ReLU): out of memory in forward, input [64x16x32x32] on cpu', 1, true), err)
      end)
   end)

   t.test('the CPU kernels\' scratch memory is counted and limited: no room is an error naming the layer', function()
      -- one convolution whose output fits but whose im2col columns (2 x 27 x 4096 floats a thread) do not
      local conv = nn.Sequential(nn.Conv2d(3, 8, 3, {padding = 1}))
      local x = ts.randn(2, 3, 64, 64)
      local y = conv:forward(x)
      collectgarbage('collect')
      collectgarbage('collect')
      ts.cuda.resetPeak('cpu')
      local before = ts.memory('cpu')
      local again = conv:forward(x)
      local peak = ts.memory('cpu').peak - before.in_use
      -- at least one thread's columns (27 x 4096 floats), whatever the thread count
      t.truthy(peak >= 27 * 4096 * 4, 'the scratch is counted: peak grew by ' .. peak)
      t.truthy(again:equal(y))
      with_limit(8 * 4096 * 4 * 2 + 4096, function()   -- the output, not the columns
         local ok, err = pcall(conv.forward, conv, x)
         t.truthy(not ok and err:find('0 (Conv2d): out of memory in forward, input [2x3x64x64] on cpu', 1, true) and
                  err:find('no room for', 1, true) and err:find('scratch memory on the cpu', 1, true), err)
      end)
      t.truthy(conv:forward(x):equal(y), 'the layer works again once there is room')
   end)

   t.test('micro-batches add up to the whole batch\'s gradient', function()
      ts.manualSeed(3)
      local m, crit = net(), nn.CrossEntropyLoss{label_smoothing = 0.1}
      local x, y = ts.randn(24, 3, 32, 32), ts.tensor({}, 'int64')
      y = ts.zeros({24}, 'int64')
      for i = 1, 24 do y[i] = (i * 7) % 43 end
      -- every third label is what the untrained network predicts, so that some predictions are right
      local _, guess = m:forward(x):max(2)
      for i = 1, 24, 3 do y[i] = guess[i][1] end
      local l1, g1, c1 = t.batchGradients(m, crit, x, y, 24)
      local l2, g2, c2 = t.batchGradients(m, crit, x, y, 5)
      t.near(l2, l1, 1e-5)
      t.eq(c2, c1, 'right predictions counted over the micro-batches')
      t.truthy(c1 >= 8, 'right predictions: ' .. c1)
      -- the loss and the count are those of one forward pass over the whole batch
      local out = m:forward(x)
      t.near(l1, crit:forward(out, y), 1e-5)
      local _, arg = out:max(2)
      t.eq(c1, arg:view(-1):float():eq(y:float()):sum())
      for i = 1, #g1 do t.near(g2[i], g1[i], 1e-4, 1e-6, 'gradient ' .. i) end
   end)

   t.test('auto_microbatch: a batch that does not fit is trained in halves instead of failing', function()
      local g = ts.data.synthetic{train = 256, valid = 64, test = 64, seed = 2}
      local function run(auto, headroom)
         local result
         with_limit(headroom, function()
            result = ts.train{model = {name = 'refcnn', classes = 43}, data = {train = g.train, valid = g.valid}, epochs = 1,
                              batch = 128, lr = 0.01, quiet = true, auto_microbatch = auto}
         end)
         return result
      end
      -- measure what a batch of 128 needs, then allow a little more than a quarter of it
      collectgarbage('collect')
      collectgarbage('collect')
      ts.memory('cpu')
      require('ts.ffi').C.ts_memory_reset_peak(0)
      local base = ts.memory('cpu').in_use
      run(false, 2 ^ 40)
      local need = ts.memory('cpu').peak - base
      local ok, err = pcall(run, false, math.floor(need * 0.3))
      t.truthy(not ok and err:find('out of memory in forward', 1, true), tostring(err))
      local r = run(true, math.floor(need * 0.3))
      t.truthy(r.micro_batch < 128 and r.micro_batch >= 16, 'micro-batch ' .. tostring(r.micro_batch))
      t.eq(r.history[1].micro_batch, r.micro_batch)
      t.truthy(r.history[1].train_loss == r.history[1].train_loss and r.history[1].valid_accuracy, 'the epoch finished')
   end)

   t.test('auto_microbatch inside an accumulated update: the redone step starts from the gradients gathered before it', function()
      -- a network without batch norm, whose gradient is the same in any micro-batches; the second step of the
      -- first update (accumulate 2) runs out of memory after its backward, the worst moment: what the first
      -- step gathered must survive, and what the second added must not count twice
      local g = ts.data.synthetic{train = 128, valid = 32, test = 32, seed = 3}
      local train = require('ts.train')
      local function run(fail_at)
         ts.manualSeed(4)
         local net = ts.nn.Sequential():add(ts.nn.Flatten()):add(ts.nn.Linear(3 * 32 * 32, 43))
         local step, plain = 0, train.inStep
         train.inStep = function(device, fn, ...)
            step = step + 1
            plain(device, fn, ...)
            if step == fail_at then
               ts.setMemoryLimit('cpu', ts.memory('cpu').in_use + 1)
               local ok, err = pcall(ts.zeros, 4096)
               ts.setMemoryLimit('cpu', 0)
               error(err, 0)
            end
         end
         local ok, r = pcall(ts.train, {model = net, data = {train = g.train, valid = g.valid}, epochs = 1, batch = 32,
                                        accumulate = 2, optimizer = 'sgd', momentum = 0, lr = 0.5, quiet = true,
                                        auto_microbatch = true})
         train.inStep = plain
         if not ok then error(r, 0) end
         return r
      end
      local plain, redone = run(nil), run(2)
      t.eq(plain.micro_batch, 32)
      t.eq(redone.micro_batch, 16)
      local a, b = plain.model:parameters(), redone.model:parameters()
      for i = 1, #a do t.near(b[i], a[i], 1e-5, 1e-6, 'parameter ' .. i) end
   end)

   t.test('auto_microbatch: a batch the loader had no memory for is built again, and training ends as without it', function()
      -- the loader's iterator raises a real out-of-memory error once, at the third batch (as a worker, or the
      -- GPU's finishing of a batch, would); training releases memory, has the loader build that batch again,
      -- and gets the parameters an undisturbed run gets
      local g = ts.data.synthetic{train = 128, valid = 32, test = 32, seed = 3}
      local Loader = getmetatable(ts.data.Loader(g.train))
      local function run(fail_at, auto)
         ts.manualSeed(4)
         local net = ts.nn.Sequential():add(ts.nn.Flatten()):add(ts.nn.Linear(3 * 32 * 32, 43))
         local epoch, retry, calls, retries = Loader.epoch, Loader.retry, 0, 0
         Loader.epoch = function(self, ...)
            local it = epoch(self, ...)
            return function()
               calls = calls + 1
               if calls == fail_at then
                  collectgarbage('collect')
                  ts.setMemoryLimit('cpu', ts.memory('cpu').in_use + 1)
                  local _, err = pcall(ts.zeros, 4096)
                  ts.setMemoryLimit('cpu', 0)
                  error(err, 0)
               end
               return it()
            end
         end
         Loader.retry = function(self) retries = retries + 1; return retry(self) end
         local ok, r = pcall(ts.train, {model = net, data = {train = g.train, valid = g.valid}, epochs = 1, batch = 32,
                                        optimizer = 'sgd', momentum = 0, lr = 0.5, quiet = true, auto_microbatch = auto})
         Loader.epoch, Loader.retry = epoch, retry
         if not ok then error(r, 0) end
         return r, retries
      end
      local plain, none = run(nil, true)
      local redone, retries = run(3, true)
      t.eq(none, 0)
      t.eq(retries, 1)
      t.eq(redone.micro_batch, 32, 'the step itself was not halved')
      local a, b = plain.model:parameters(), redone.model:parameters()
      for i = 1, #a do t.near(b[i], a[i], 0, 0, 'parameter ' .. i) end
      t.raises(function() run(3, false) end, 'out of memory on cpu')
   end)

   -- The decision every Lua-level op on a device tensor takes before computing on a host copy, called here
   -- with the device code of cuda (1): this machine may have no GPU to make such a tensor.
   t.test('host round trips of tensor math: counted, refused in strict mode naming the op, none on the CPU', function()
      local C, check = require('ts.ffi').C, require('ts.ffi').check
      local before = ts.cuda.fallbacks()
      check(C.ts_math_fallback('exp', 0))
      t.eq(ts.cuda.fallbacks(), before, 'the CPU computes in place: nothing to count')
      check(C.ts_math_fallback('exp', 1))
      t.eq(ts.cuda.fallbacks(), before + 1)
      t.eq(ts.cuda.strict(true), false, 'strict returns the previous setting')
      t.truthy(ts.cuda.isStrict())
      local ok, err = pcall(check, C.ts_math_fallback('argmax', 1))
      local cpu_sum = ts.tensor{1, 2, 3}:exp():sum()   -- strict mode leaves the CPU alone
      t.eq(ts.cuda.strict(false), true)
      t.truthy(not ok and err:find('argmax: computing on a host copy of a cuda tensor, refused in strict mode', 1, true),
               tostring(err))
      t.near(cpu_sum, math.exp(1) + math.exp(2) + math.exp(3), 1e-6)
      t.eq(ts.cuda.fallbacks(), before + 1, 'a refused op is not counted, CPU math never is')
      t.truthy(not ts.cuda.isStrict())
   end)

   t.test("ts.train's step is strict on the GPU only, and leaves the setting as it found it", function()
      local train = require('ts.train')
      local seen
      local function probe() seen = ts.cuda.isStrict() end
      train.inStep('cuda', probe)
      t.eq(seen, true, 'a step on cuda runs in strict mode')
      t.truthy(not ts.cuda.isStrict(), 'and ends it')
      -- a hidden round trip inside the step is an error naming the op; the mode is restored after it
      local err = t.raises(function()
         train.inStep('cuda', function() require('ts.ffi').check(require('ts.ffi').C.ts_math_fallback('max', 1)) end)
      end, 'max: computing on a host copy')
      t.truthy(not ts.cuda.isStrict(), err)
      train.inStep('cpu', probe)
      t.eq(seen, false, 'on the CPU nothing changes')
      -- a whole CPU run: its layers see no strict mode, and nothing goes through a host copy
      local Probe = nn.Module.class('Probe', nn.Identity)
      function Probe:updateOutput(input)
         if ts.cuda.isStrict() then seen = true end
         return input
      end
      local before = ts.cuda.fallbacks()
      local g = ts.data.synthetic{train = 32, valid = 16, test = 16, seed = 2}
      local model = nn.Sequential(Probe(), nn.Flatten(), nn.Linear(3 * 32 * 32, 43))
      ts.train{model = model, data = {train = g.train}, epochs = 1, batch = 16, quiet = true, device = 'cpu'}
      t.eq(seen, false)
      t.eq(ts.cuda.fallbacks(), before)
   end)

   t.test('without a GPU, cuda says why and everything stays on the host', function()
      if ts.cuda.isAvailable() then t.skip('a GPU is present (test_cuda covers it)') end
      t.eq(ts.device(), 'cpu')
      t.raises(function() return ts.randn(2, 2):to('cuda') end, ts.cuda.isBuilt() and 'no CUDA device' or 'built without CUDA')
      t.raises(function() return ts.zerosOn('cuda', {2}) end, 'cuda')
      t.raises(function() ts.setDevice('cuda') end, 'setDevice')
      t.raises(function() ts.cuda.synchronize() end, 'cuda')
      -- named by the Lua function called (they said cuda.channels_last and cuda.sync)
      t.raises(function() ts.cuda.channelsLast(false) end, 'ts.cuda.channelsLast: ')
      t.raises(function() ts.cuda.debug(true) end, 'ts.cuda.debug: ')
      t.raises(function() require('ts.ffi').check(require('ts.ffi').C.ts_cuda_set('fp16', 1)) end,
               'cuda.set: unknown option fp16')
      local m = net()
      local w = m:get(1).weight
      m:to('cpu')
      t.truthy(m:get(1).weight == w, 'moving to the same device keeps the tensor')
      local rc, out = t.sh(('TSHOST_DEVICE=cuda %s -e "ts.train{model = {name = \'refcnn\'}, data = {train = ts.data.synthetic{train = 8}.train}}"'):format(t.tshost))
      t.truthy(rc ~= 0 and out:find('TSHOST_DEVICE=cuda', 1, true), out)
   end)
end
