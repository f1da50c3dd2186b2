-- make bench: throughput of the reference network (ts.models.refcnn, batch 128) for a training step
-- (forward + backward + SGD update) and for inference, next to PyTorch's on the same machine.
-- Options: batch=128 steps=10 rounds=5 threads=2 torch=true model=refcnn|baseline|recipe device=cpu|cuda cpu=avx2
-- (default: the GPU when there is one; PyTorch then runs on it too, with cuDNN's benchmark mode; the
-- GPU is synchronized before each clock reading) precision=fp32|bf16 (bf16: model:setPrecision('bf16')
-- against PyTorch's torch.autocast with bfloat16, its mixed precision) layers=false (true: a table of each
-- layer's forward and backward milliseconds in a training step, tshost's and the newest PyTorch's in its best
-- layout, timed by module hooks, so the next bottleneck shows).
-- Each figure is the median of `rounds` timings of `steps` steps; tshost's and PyTorch's rounds alternate, so
-- that the speed changes of a shared machine fall on all alike and the ratios stay meaningful.
-- PyTorch: every distinct torch among the Pythons of TSHOST_PYTHON (one, or several separated by ':'), python3
-- and /usr/bin/python3 (those whose torch imports and, on the GPU, sees it), each in both memory layouts
-- (NCHW and channels-last), the ratios taken against each torch's best layout.
-- On the CPU it also measures the processor's fp32 peak (fused multiply-adds on every thread, the CPU path in
-- use) and gives each rate as a fraction of it, counting a network's operations as direct convolutions and
-- matrix products would (Winograd's do fewer multiplications: the fraction is the step's, not the kernels').
local C = require('ts.ffi').C
local ffi = require('ffi')
local opt = ts.options({batch = 128, steps = 10, rounds = 5, threads = 2, torch = true, model = 'refcnn',
                        device = ts.device(), precision = 'fp32', layers = false, cpu = ''}, true)
-- checked before anything is built or timed (a bare word, bench.lua recipe, ran the whole default benchmark: ts.options'
-- strict refuses it);
-- batch=1.5, model=foo, device=gpu or precision=fp16 failed in a traceback, rounds=0 in one after the timings,
-- and steps=0 or -1 printed 0 or negative images/s as a result
local keys = require('ts.keys')
for _, name in ipairs({'batch', 'steps', 'rounds'}) do keys.count(opt[name], 'bench', 'option ' .. name, 1, nil, 0) end
-- (bench_torch.py takes the same names; cpu=avx2 is the one restriction PyTorch can be given too, cpu= none)
local choices = {model = {'refcnn', 'baseline', 'recipe'}, device = {'cpu', 'cuda'}, precision = {'fp32', 'bf16'},
                 cpu = {'avx2'}}
for name, known in pairs(choices) do
   local given = name == 'cpu' and opt.cpu == ''
   for _, k in ipairs(known) do given = given or opt[name] == k end
   if not given then
      local what = #known > 1 and 'one of ' .. table.concat(known, ', ') or known[1]
      error(('bench: option %s must be %s, got %s'):format(name, what, keys.show(opt[name])), 0)
   end
end
if opt.device == 'cuda' and not ts.cuda.isAvailable() then
   error('bench: device=cuda: ' .. ts.cuda.unavailableReason(), 0)
end
ts.setThreads(opt.threads)
-- cpu=avx2 on a processor with AVX-512: tshost's avx2 path against PyTorch held to AVX2 too (its ATen kernels and
-- oneDNN's), to see what a processor without AVX-512 would (the clock and the caches stay this processor's)
if opt.cpu ~= '' then require('ts.ffi').check(C.ts_cpu_select_path(opt.cpu)) end
local torch_env = opt.cpu == 'avx2' and 'ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ' or ''
ts.manualSeed(0)

local clock = ts.files.now
local gpu = opt.device == 'cuda'
local function now()
   if gpu then ts.cuda.synchronize() end
   return clock()
end

-- recipe: the baseline at the widths experiments/baseline.lua trains (ts.experiment.baselineWidths)
local net = opt.model == 'recipe' and ts.models.baseline{widths = ts.experiment.baselineWidths} or ts.models[opt.model]()
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
   local sorted = {}
   for i, v in ipairs(list) do sorted[i] = v end
   table.sort(sorted)
   return sorted[math.ceil(#sorted / 2)]
end

-- Operations per image, as direct convolutions and matrix products count them: the forward pass, and a training
-- step's forward, input gradients (none for the first layer, whose input is data) and weight gradients.
-- Found by running one image through the network with its convolutions and linear layers recording their sizes.
local function operations()
   local forward, first = 0, nil
   local patched = {}
   local function walk(m)
      for _, c in ipairs(m:children()) do walk(c.module) end
      if m.__typename == 'Conv2d' or m.__typename == 'Linear' then
         local f = m.forward
         patched[#patched + 1] = {m, f}
         m.forward = function(self, input)
            local out = f(self, input)
            local per_output = self.__typename == 'Conv2d' and self.nin / self.groups * self.kh * self.kw or self.weight:size(2)
            local ops = 2 * per_output * out:numel() / out:size(1)
            forward = forward + ops
            first = first or ops
            return out
         end
      end
   end
   walk(net)
   net:evaluate()
   net:forward(ts.randn(1, 3, 32, 32):to(opt.device))
   for _, p in ipairs(patched) do p[1].forward = p[2] end
   return forward, 3 * forward - first
end
local forward_ops, train_ops = operations()

-- The Pythons whose PyTorch we compare against, one per distinct torch version: TSHOST_PYTHON's (':'-separated),
-- python3 on the PATH and Debian's /usr/bin/python3, those whose torch imports (and sees the GPU, when the bench
-- runs there). A list of {python, version}, the newest first.
local function find_pythons()
   local want_cuda = opt.device == 'cuda'
   local candidates = {}
   for py in (os.getenv('TSHOST_PYTHON') or ''):gmatch('[^:]+') do candidates[#candidates + 1] = {py, true} end
   candidates[#candidates + 1] = {'python3'}
   candidates[#candidates + 1] = {'/usr/bin/python3'}
   local found, seen = {}, {}
   for _, c in ipairs(candidates) do
      local py = c[1]
      local p = io.popen(("%s -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>/dev/null"):format(
                         ts.files.shellQuote(py)))
      local version, cuda = (p:read('*a') or ''):match('^(%S+) (%a+)')
      p:close()
      if version and (not want_cuda or cuda == 'True') then
         if not seen[version] then
            seen[version] = true
            found[#found + 1] = {python = py, version = version}
         end
      elseif c[2] then
         io.stderr:write(('bench: TSHOST_PYTHON names %s, which has no torch%s\n'):format(py, want_cuda and ' with CUDA' or ''))
      end
   end
   local function numeric(v)
      local a, b, c = v:match('^(%d+)%.(%d+)%.?(%d*)')
      return (tonumber(a) or 0) * 1e6 + (tonumber(b) or 0) * 1e3 + (tonumber(c) or 0)
   end
   table.sort(found, function(p, q) return numeric(p.version) > numeric(q.version) end)
   return found
end
local torches = opt.torch and find_pythons() or {}
local layouts = {'nchw', 'channels_last'}

-- one PyTorch round in a fresh process: its own warm-up, then `steps` steps of each kind; with layers, its table
local function torch_round(torch, layout, layers)
   local cmd = (torch_env .. "%s %s/scripts/bench_torch.py --batch %d --threads %d --steps %d --rounds 1 --model %s --device %s --precision %s --layout %s%s 2>/dev/null")
      :format(ts.files.shellQuote(torch.python), ts.files.shellQuote(ts.root), opt.batch, opt.threads, opt.steps, opt.model, opt.device, opt.precision, layout,
              layers and ' --layers' or '')
   local p = io.popen(cmd)
   local out = p:read('*a')
   p:close()
   local rows = {}
   for i, f, b in out:gmatch('layer (%d+) %S+ (%S+) (%S+)') do rows[tonumber(i) + 1] = {tonumber(f), tonumber(b)} end
   return tonumber(out:match('torch train ([%d%.]+)')), tonumber(out:match('torch infer ([%d%.]+)')), rows
end

for _ = 1, 3 do train_step() end
local r = {train = {}, infer = {}, torch = {}}
for _, t in ipairs(torches) do
   r.torch[t.version] = {}
   for _, layout in ipairs(layouts) do r.torch[t.version][layout] = {train = {}, infer = {}} end
end
for round = 1, opt.rounds do
   net:training()
   r.train[round] = time_steps(train_step)
   net:evaluate{fused = true}   -- as ts.evaluate and predict.lua run it
   r.infer[round] = time_steps(function() net:forward(x) end)
   for _, t in ipairs(torches) do
      for _, layout in ipairs(layouts) do
         local s = r.torch[t.version][layout]
         s.train[#s.train + 1], s.infer[#s.infer + 1] = torch_round(t, layout)
      end
   end
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

local function processor()
   local f = io.open('/proc/cpuinfo')
   local name = f and f:read('*a'):match('model name%s*:%s*([^\n]+)') or 'unknown processor'
   if f then f:close() end
   local about = ffi.new('char[512]')
   C.ts_device_about(0, about, 512)
   local text = ffi.string(about)
   local extensions = text:find('AVX%-512 yes') and (text:find('AVX512%-BF16 yes') and 'AVX-512 and AVX512-BF16' or 'AVX-512')
                      or 'AVX2 and FMA, no AVX-512'
   return ('%s (%s), the %s path'):format(name, extensions, text:match('the (%S+) path') or '?')
end

local peak = not gpu and C.ts_cpu_peak_flops() or nil
local function share(rate, ops) return peak and (' (%2.0f%% of peak)'):format(100 * rate * ops / peak) or '' end

print(('%s batch %d on %s, %d threads, %s, median of %d rounds%s'):format(opt.model, opt.batch,
      gpu and ts.cuda.deviceName() or 'the CPU', opt.threads, opt.precision, opt.rounds,
      torch_env ~= '' and ', tshost and PyTorch both held to AVX2' or ''))
if not gpu then
   print(('  processor: %s; fp32 peak %.0f GFLOP/s (fused multiply-adds on %d threads)'):format(processor(), peak / 1e9,
         opt.threads))
end
print(('  a training step %.1f MFLOP per image, inference %.1f (as direct convolutions and matrix products count them)')
      :format(train_ops / 1e6, forward_ops / 1e6))
local function line(name, tr, inf)
   print(('  %-34s train %8.1f images/s%s   inference %8.1f images/s%s'):format(name, tr, share(tr, train_ops), inf,
         share(inf, forward_ops)))
end
line('tshost', train, infer)
local best = {}
for _, t in ipairs(torches) do
   for _, layout in ipairs(layouts) do
      local s = r.torch[t.version][layout]
      if #s.train == opt.rounds and #s.infer == opt.rounds then
         local tt, ti = median(s.train), median(s.infer)
         line(('torch %s %s'):format(t.version, layout == 'nchw' and 'NCHW' or 'channels-last'), tt, ti)
         local b = best[t.version] or {train = 0, infer = 0}
         best[t.version] = {train = math.max(b.train, tt), infer = math.max(b.infer, ti),
                            train_layout = tt > b.train and layout or b.train_layout,
                            infer_layout = ti > b.infer and layout or b.infer_layout}
      else
         print(('  torch %s %s: its rounds failed'):format(t.version, layout))
      end
   end
end
for _, t in ipairs(torches) do
   local b = best[t.version]
   if b then
      print(('  against torch %s (%s): train %.2fx (its best layout, %s), inference %.2fx (%s)'):format(t.version,
            t.python, train / b.train, b.train_layout, infer / b.infer, b.infer_layout))
   end
end
if opt.torch and #torches == 0 then
   print('  PyTorch: not measured (no Python with torch' .. (gpu and ' and CUDA' or '') ..
         ' found: set TSHOST_PYTHON, or apt-get install python3-torch)')
end
print(('augmentation: %.0f images/s on one core (the loader worker), %.1fx what training consumes'):format(
   augmented, augmented / train))

-- Each layer's forward and backward in a training step, tshost's next to the newest torch's in its best layout
if opt.layers then
   local fwd, bwd = {}, {}
   local children = net:children()
   local originals = {}
   -- a fused group (a batch norm and its ReLU) is timed as its first layer's
   local timed = {forward = fwd, forwardFused = fwd, backward = bwd, backwardFused = bwd}
   for i, c in ipairs(children) do
      local m = c.module
      originals[i] = {}
      fwd[i], bwd[i] = 0, 0
      for name, into in pairs(timed) do
         local f = m[name]
         if f then
            originals[i][name] = rawget(m, name) or false
            m[name] = function(self, ...) local t = now(); local o = f(self, ...); into[i] = into[i] + now() - t; return o end
         end
      end
   end
   net:training()
   for _ = 1, 3 do train_step() end
   for i in ipairs(children) do fwd[i], bwd[i] = 0, 0 end
   for _ = 1, opt.steps do train_step() end
   for i, c in ipairs(children) do
      for name, f in pairs(originals[i]) do c.module[name] = f or nil end
   end
   local newest, rows = torches[1], {}
   local layout = newest and best[newest.version] and best[newest.version].train_layout or 'nchw'
   if newest then rows = select(3, torch_round(newest, layout, true)) end
   print(('\nper layer, ms per training step of %d images (forward, backward)%s'):format(opt.batch,
         newest and (': tshost, torch %s %s'):format(newest.version, layout) or ''))
   local function ms(v) return v and v == v and ('%7.2f'):format(v) or '      -' end
   local total = {0, 0, 0, 0}
   for i, c in ipairs(children) do
      local tf, tb = fwd[i] / opt.steps * 1e3, bwd[i] / opt.steps * 1e3
      local p = rows[i] or {}
      print(('  %-3s %-42s %s %s   %s %s'):format(c.name, c.module:describe(''):sub(1, 42), ms(tf), ms(tb), ms(p[1]), ms(p[2])))
      total[1], total[2] = total[1] + tf, total[2] + tb
      total[3], total[4] = total[3] + (p[1] or 0), total[4] + ((p[2] and p[2] == p[2]) and p[2] or 0)
   end
   print(('  %-46s %s %s   %s %s'):format('all layers', ms(total[1]), ms(total[2]), ms(newest and total[3]), ms(newest and total[4])))
end
