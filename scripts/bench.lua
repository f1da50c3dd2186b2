-- make bench: throughput of the reference network (ts.models.refcnn, batch 128) for a training step
-- (forward + backward + SGD update) and for inference, next to PyTorch's on the same machine.
-- Options: batch=128 steps=10 rounds=5 threads=2 torch=true. Each figure is the median of `rounds`
-- timings of `steps` steps (this machine's neighbours make single timings noisy).
local opt = ts.options{batch = 128, steps = 10, rounds = 5, threads = 2, torch = true}
ts.setThreads(opt.threads)
ts.manualSeed(0)

local function now()
   local f = io.popen('date +%s.%N')
   local t = tonumber(f:read('*l'))
   f:close()
   return t
end

local net = ts.models.refcnn()
local loss = ts.nn.CrossEntropyLoss()
local sgd = ts.optim.SGD(net, {lr = 0.01, momentum = 0.9})
local x = ts.randn(opt.batch, 3, 32, 32)
local y = ts.zeros({opt.batch}, 'int64')
for i = 1, opt.batch do y[i] = (i * 7) % 43 end

local function train_step()
   sgd:zeroGrad()
   local out = net:forward(x)
   loss:forward(out, y)
   net:backward(x, loss:backward(out, y))
   sgd:step()
end

local function rate(fn)
   for _ = 1, 3 do fn() end
   local rates = {}
   for r = 1, opt.rounds do
      local t = now()
      for _ = 1, opt.steps do fn() end
      rates[r] = opt.batch * opt.steps / (now() - t)
   end
   table.sort(rates)
   return rates[math.ceil(#rates / 2)]
end

net:training()
local train = rate(train_step)
net:evaluate()
local infer = rate(function() net:forward(x) end)

print(('refcnn batch %d, %d threads'):format(opt.batch, opt.threads))
print(('  tshost  train %8.1f images/s   inference %8.1f images/s'):format(train, infer))
if opt.torch then
   local cmd = ('/usr/bin/python3 %s/scripts/bench_torch.py --batch %d --threads %d --steps %d --rounds %d 2>/dev/null')
      :format(ts.root, opt.batch, opt.threads, opt.steps, opt.rounds)
   local p = io.popen(cmd)
   local out = p:read('*a')
   p:close()
   local tt, ti = out:match('torch train ([%d%.]+)'), out:match('torch infer ([%d%.]+)')
   if tt then
      tt, ti = tonumber(tt), tonumber(ti)
      print(('  PyTorch train %8.1f images/s   inference %8.1f images/s'):format(tt, ti))
      print(('  ratio   train %8.2fx            inference %8.2fx'):format(train / tt, infer / ti))
   else
      print('  PyTorch: not measured (install python3-torch: apt-get install python3-torch)')
   end
end
