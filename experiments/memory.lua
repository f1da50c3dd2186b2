-- The course's Exercise 1, "if your GPU runs out of memory while training a CNN, what can you do?", as measured
-- remedies: the baseline network's peak memory and training speed at several batch sizes, plain and with each
-- remedy: a smaller batch with gradient accumulation (the same update), mixed precision (bf16), activation
-- checkpointing (each convolution stage an nn.Checkpoint), and auto_microbatch under a memory limit that the batch
-- does not fit (the step is redone in halved micro-batches). Measured on the device the script runs on
-- (ts.memory(device).peak: tensors, the kernels' scratch, cached blocks on a GPU).
--   tshost experiments/memory.lua [batches=64,128,256] [steps=6]
local nn = ts.nn
local opt = ts.experiment.options({batches = '64,128,256', steps = 6, k = 4}, {steps = {1}, k = {1}})
-- each a whole number that k divides (batches=1.5,abc was read as 1 and 5; k=3 split 64 into micro-batches of 21.3)
local batches = {}
for b in (opt.batches .. ','):gmatch('([^,]*),') do
   local n = require('ts.keys').count(tonumber(b) or b, 'memory.lua', 'each of batches=' .. opt.batches, 1, nil, 0)
   if n % opt.k ~= 0 then error(('memory.lua: k=%d does not divide the batch %d into micro-batches of one size'):format(opt.k, n), 0) end
   batches[#batches + 1] = n
end
local g = ts.experiment.dataset(opt)
for _, b in ipairs(batches) do   -- (a batch past the training set failed in ts.data.batch, with a traceback)
   if b > g.train:size() then
      error(('memory.lua: the batch %d is larger than the training set (%d images)'):format(b, g.train:size()), 0)
   end
end
local device = ts.device()

-- the baseline, its convolution stages (the layers between the poolings) checkpointed when asked. Not each block:
-- with batch norm and ReLU fused in training a block keeps two tensors, its input and its output, which a
-- checkpoint around it keeps as well; a stage of several blocks is where checkpointing saves memory
local function model(checkpointed)
   ts.manualSeed(opt.seed)
   local net = ts.models.baseline{classes = 43}
   if not checkpointed then return net end
   local out, stage = nn.Sequential(), nil
   for _, c in ipairs(net:children()) do
      local m = c.module
      if m.__typename == 'Conv2d' or m.__typename == 'BatchNorm2d' or m.__typename == 'ReLU' and stage then
         stage = stage or nn.Sequential()
         stage:add(m)
      else
         if stage then out:add(nn.Checkpoint(stage)) stage = nil end
         out:add(m)
      end
   end
   return out
end

-- the bytes a training step of `batch` images takes at its peak (the model, the optimizer's state, the
-- activations and their gradients, the kernels' scratch: the peak above what was in use before), and images/s,
-- over `steps` steps in micro-batches of batch / k
local function measure(net, batch, k, precision)
   collectgarbage('collect')
   local base = ts.memory(device).in_use
   net:to(device)
   net:setPrecision(precision or 'fp32')
   net:training()
   local crit, sgd = nn.CrossEntropyLoss(), ts.optim.SGD(net, {lr = 0.01, momentum = 0.9})
   local positions = {}
   for i = 1, batch do positions[i] = i end
   local x, y = ts.data.batch(g.train, positions)
   x = x:to(device)
   local function step()
      sgd:zeroGrad()
      local micro = batch / k
      for s = 1, batch, micro do
         local xs, ys = x:narrow(1, s, micro), y:narrow(1, s, micro)
         local out = net:forward(xs)
         net:backward(xs, crit:backward(out, ys):mul_(1 / k))
      end
      sgd:step()
   end
   step()
   step()
   collectgarbage('collect')
   ts.cuda.resetPeak(device)
   local t = ts.files.now()
   for _ = 1, opt.steps do step() end
   if device == 'cuda' then ts.cuda.synchronize() end
   local rate = batch * opt.steps / (ts.files.now() - t)
   local peak = ts.memory(device).peak - base
   net:clearState()
   collectgarbage('collect')
   return peak, rate
end

-- auto_microbatch: ts.train under a memory limit of `limit` bytes; the micro-batch it settled on and its peak
local function auto(batch, limit)
   ts.manualSeed(opt.seed)
   local positions = {}
   for i = 1, batch * 3 do positions[i] = i end
   local ds = g.train:subset(positions)
   collectgarbage('collect')
   ts.cuda.resetPeak(device)
   local base = ts.memory(device).in_use
   ts.setMemoryLimit(device, base + limit)
   local ok, r = pcall(ts.train, {model = {name = 'baseline', classes = 43}, data = {train = ds}, epochs = 1,
                                  batch = batch, lr = 0.01, auto_microbatch = true, quiet = true, device = device})
   local peak = ts.memory(device).peak
   ts.setMemoryLimit(device, 0)
   if not ok then return nil, tostring(r) end
   return r.history[1].micro_batch or batch, peak - base
end

local function mib(bytes) return bytes / 1048576 end
print(('baseline network on %s, %d steps each; peak memory in MiB and images/s'):format(device, opt.steps))
print(('%-6s %-44s %10s %10s'):format('batch', 'remedy', 'peak MiB', 'images/s'))
local plain_peak, last = {}, {}   -- last: each remedy's {name, peak, rate} at the largest batch
for _, b in ipairs(batches) do
   local rows = {
      {'plain', model(false), 1},
      {('accumulation: %d micro-batches of %d'):format(opt.k, b / opt.k), model(false), opt.k},
      {'bf16 mixed precision', model(false), 1, 'bf16'},
      {'activation checkpointing (each conv stage)', model(true), 1},
   }
   for i, r in ipairs(rows) do
      local peak, rate = measure(r[2], b, r[3], r[4])
      if i == 1 then plain_peak[b] = peak end
      last[i] = {name = r[1]:match('^[^:(]*'):gsub(' $', ''), peak = peak, rate = rate}
      print(('%-6d %-44s %10.1f %10.1f'):format(b, r[1], mib(peak), rate))
   end
end
-- auto_microbatch: a limit of 60% of the largest batch's plain peak
local b = batches[#batches]
local limit = math.floor(plain_peak[b] * 0.6)
local micro, peak = auto(b, limit)
if micro then
   print(('%-6d %-44s %10.1f %10s'):format(b, ('auto_microbatch under a %.0f MiB limit: micro-batches of %d'):format(
      mib(limit), micro), mib(peak), '-'))
else
   print('auto_microbatch: ' .. peak)
end

-- the conclusion, as the numbers have it: how the plain peak grows, then each remedy against plain at the largest batch
local first = batches[1]
local parts = {('the plain step\'s peak goes from %.1f MiB at batch %d to %.1f MiB at batch %d (%.1fx for %.0fx the images)'):format(
   mib(plain_peak[first]), first, mib(plain_peak[b]), b, plain_peak[b] / plain_peak[first], b / first)}
local function versus(x, base, more, less)   -- a ratio as words, 10% either way counting as the same
   local r = x / base
   return r < 0.9 and ('%.0f%% %s'):format(100 * (1 - r), less) or r > 1.1 and ('%.0f%% %s'):format(100 * (r - 1), more) or 'about the same'
end
for i = 2, #last do
   local r = last[i]
   parts[#parts + 1] = ('%s: memory %s, speed %s'):format(r.name, versus(r.peak, last[1].peak, 'more', 'less'),
                                                         versus(r.rate, last[1].rate, 'faster', 'slower'))
end
if micro then
   parts[#parts + 1] = ('auto_microbatch %s (micro-batches of %d, peak %.1f MiB under a %.1f MiB limit)'):format(
      micro < b and 'found a micro-batch that fits by itself' or 'did not need to split the batch', micro, mib(peak), mib(limit))
else
   parts[#parts + 1] = 'auto_microbatch did not find a micro-batch that fits'
end
print(('conclusion, at batch %d: %s'):format(b, table.concat(parts, '; ')))
