-- make bench: throughput of the reference network (ts.models.refcnn, batch 128) for a training step
-- (forward + backward + SGD update) and for inference, next to PyTorch's on the same machine.
-- Options: batch=128 steps=10 rounds=5 threads=2 torch=true model=refcnn|baseline device=cpu|cuda
-- (default: the GPU when there is one; PyTorch then runs on it too, with cuDNN's benchmark mode; the
-- GPU is synchronized before each clock reading) precision=fp32|bf16 (bf16: model:setPrecision('bf16')
-- against PyTorch's torch.autocast with bfloat16, its mixed precision). Each figure is the median of `rounds`
-- timings of `steps` steps; tshost's and PyTorch's rounds alternate, so that the speed changes of a
-- shared machine fall on both alike and the ratio stays meaningful. PyTorch is the one of TSHOST_PYTHON, else of
-- python3 or /usr/bin/python3 (the first whose torch imports and, on the GPU, sees it); its version is printed.
local opt = ts.options{batch = 128, steps = 10, rounds = 5, threads = 2, torch = true, model = 'refcnn', device = ts.device(),
                        precision = 'fp32'}
ts.setThreads(opt.threads)
ts.manualSeed(0)

local clock = ts.files.now
local gpu = opt.device == 'cuda'
local function now()
   if gpu then ts.cuda.synchronize() end
   return clock()
end

local net = ts.models[opt.model]()
net:to(opt.device)
net:setPrecision(opt.precision)
net.needsGradInput = false   -- as in PyTorch, where the input batch does not require a gradient
local loss = ts.nn.CrossEntropyLoss()
local sgd = ts.optim.SGD(net, {lr = 0.01, momentum = 0.9})
local x = ts.randn(opt.batch, 3, 32, 32):to(opt.device)
local y = ts.zeros({opt.batch}, 'int64')
for i = 1, opt.batch do y[i] = (i * 7) % 43 end   -- labels stay on the host, as ts.train keeps them

local sums = require('ts.train').sums(opt.device)
local function train_step()
   sgd:zeroGrad()
   local out = net:forward(x)
   -- the loss and its gradient in one pass, the loss left on the device as ts.train leaves it
   net:backward(x, loss:backwardInto(out, y, sums.last))
   sgd:step()
end

local function time_steps(fn)
   local t = now()
   for _ = 1, opt.steps do fn() end
   return opt.batch * opt.steps / (now() - t)
end

local function median(list)
   table.sort(list)
   return list[math.ceil(#list / 2)]
end

-- The Python whose PyTorch we compare against: TSHOST_PYTHON when set, else the first of python3 on the PATH
-- and Debian's /usr/bin/python3 whose torch imports (and sees the GPU, when the bench runs there). Returns the
-- interpreter and its torch version, or nil.
local function find_python()
   local want_cuda = opt.device == 'cuda'
   local candidates = {os.getenv('TSHOST_PYTHON'), 'python3', '/usr/bin/python3'}
   for i = 1, 3 do
      local py = candidates[i]
      if py and py ~= '' then
         local p = io.popen(("'%s' -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>/dev/null")
                               :format(py))
         local version, cuda = (p:read('*a') or ''):match('^(%S+) (%a+)')
         p:close()
         if version and (not want_cuda or cuda == 'True') then return py, version end
         if i == 1 then
            io.stderr:write(('bench: TSHOST_PYTHON=%s has no torch%s\n'):format(py, want_cuda and ' with CUDA' or ''))
         end
      end
   end
end
local python, torch_version = nil, nil
if opt.torch then python, torch_version = find_python() end

-- one PyTorch round in a fresh process: its own warm-up, then `steps` steps of each kind
local function torch_round()
   if not python then return nil end
   local cmd = ("'%s' %s/scripts/bench_torch.py --batch %d --threads %d --steps %d --rounds 1 --model %s --device %s --precision %s 2>/dev/null")
      :format(python, ts.root, opt.batch, opt.threads, opt.steps, opt.model, opt.device, opt.precision)
   local p = io.popen(cmd)
   local out = p:read('*a')
   p:close()
   return tonumber(out:match('torch train ([%d%.]+)')), tonumber(out:match('torch infer ([%d%.]+)'))
end

for _ = 1, 3 do train_step() end
local r = {train = {}, infer = {}, ttrain = {}, tinfer = {}}
for round = 1, opt.rounds do
   net:training()
   r.train[round] = time_steps(train_step)
   net:evaluate()
   r.infer[round] = time_steps(function() net:forward(x) end)
   if opt.torch then r.ttrain[round], r.tinfer[round] = torch_round() end
end
local train, infer = median(r.train), median(r.infer)

-- the data side: augmented images per second from the loader's one worker thread (one core), the full
-- augmentation of experiments/baseline.lua
local g = ts.data.synthetic{train = 4096, valid = 8, test = 8}
local loader = ts.data.Loader(g.train, {batch = opt.batch, preprocess = ts.data.preprocess{mean = {0.5}, std = {0.25}},
   augment = ts.data.augment{rotate = 12, scale = {0.9, 1.1}, translate = 0.08, shear = 6, perspective = 0.03,
                             brightness = 0.35, contrast = 0.35, saturation = 0.3, hue = 0.02, gamma = {0.7, 1.4},
                             blur = {0.15, 1.0}, noise = 0.02, cutout = {0.25, 8}, flip = 0.5}})
local t0, images = now(), 0
for xb in loader:epoch() do images = images + xb:size(1) end
local augmented = images / (now() - t0)

print(('%s batch %d on %s, %d threads, %s, median of %d rounds'):format(opt.model, opt.batch,
      gpu and ts.cuda.deviceName() or 'the CPU', opt.threads, opt.precision, opt.rounds))
print(('  tshost  train %8.1f images/s   inference %8.1f images/s'):format(train, infer))
if opt.torch then
   if #r.ttrain == opt.rounds then
      local tt, ti = median(r.ttrain), median(r.tinfer)
      print(('  PyTorch train %8.1f images/s   inference %8.1f images/s   (torch %s from %s, %s)'):format(tt, ti,
            torch_version, python, gpu and 'CUDA, cuDNN benchmark mode' or 'CPU'))
      print(('  ratio   train %8.2fx            inference %8.2fx'):format(train / tt, infer / ti))
   else
      print(('  PyTorch: not measured (%s)'):format(python and 'its rounds failed' or
            'no Python with torch' .. (gpu and ' and CUDA' or '') .. ' found: set TSHOST_PYTHON, or apt-get install python3-torch'))
   end
end
print(('augmentation: %.0f images/s on one core (the loader worker), %.1fx what training consumes'):format(
   augmented, augmented / train))
