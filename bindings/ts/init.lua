-- The `ts` module: tensors, nn, optim, checkpoints, models, and the run-time settings.
local ffi = require('ffi')
local cffi = require('ts.ffi')
local T = require('ts.tensor')
local C = cffi.C

local ts = {
   nn = require('ts.nn'),
   optim = require('ts.optim'),
   models = require('ts.models'),
   json = require('ts.json'),
   files = require('ts.files'),
   data = require('ts.data'),
   image = require('ts.image'),
   metrics = require('ts.metrics'),
   repl = require('ts.repl'),
   Tensor = T.Tensor,
   root = cffi.root,
   -- the command that starts this same tshost again (the release's launcher, else this executable)
   program = rawget(_G, '_TSHOST_PROGRAM') or cffi.root .. '/tshost',
   args = {},
}

for _, name in ipairs({'tensor', 'zeros', 'ones', 'full', 'empty', 'rand', 'randn', 'arange', 'isTensor', 'randint', 'randperm',
                        'cat', 'stack'}) do
   ts[name] = T[name]
end
local serialize = require('ts.serialize')
ts.save, ts.load = serialize.save, serialize.load
local train = require('ts.train')
ts.train, ts.evaluate, ts.ensemble = train.train, train.evaluate, train.ensemble
ts.updateBatchNorm = require('ts.bnstats').update
ts.experiment = require('ts.experiment')
ts.report = require('ts.report')
ts.tensorboard = require('ts.tensorboard')
ts.onnx = require('ts.onnx')
ts.transfer = require('ts.transfer')
ts.cuda = require('ts.cuda')
ts.scene = require('ts.scene')
ts.detect = require('ts.detect')
ts.device, ts.setDevice = ts.cuda.device, ts.cuda.setDevice
ts.memory, ts.setMemoryLimit = ts.cuda.memoryOf, ts.cuda.setMemoryLimitOf
ts.zerosOn = T.zerosOn

-- One seed fixes weight init, dropout, shuffling and augmentation (all draw from the C generator).
function ts.manualSeed(seed)
   -- a whole number a uint64 holds exactly: 1.5 was seed 1 and NaN some seed, each silently
   local keys = require('ts.keys')
   keys.count(seed, 'ts.manualSeed(seed)', 'seed', 0, keys.MAX_SEED, 2)
   C.ts_manual_seed(seed)
   math.randomseed(seed)
end

function ts.setThreads(n) cffi.check(C.ts_set_threads(n)) end
function ts.getThreads() return C.ts_get_threads() end
-- ts.cpuWinograd(how): 3x3 stride-1 convolutions on the CPU by Winograd's F(m x m, 3x3) with the tile size m chosen per
-- shape (true, the default: F(4x4), but F(2x2) in bf16 and on maps of 1, 2, 5 or 6 where its tiles waste less), with
-- m = 2 or 4 forced (2, 4), or by im2col (false), to compare them
function ts.cpuWinograd(how)
   local value = ({[false] = 0, [true] = 1, [2] = 2, [4] = 4})[how == nil and true or how]
   if not value then error(('ts.cpuWinograd: expected true, false, 2 or 4, got %s'):format(tostring(how)), 2) end
   cffi.check(C.ts_cpu_set('winograd', value))
end
-- the CPU path in use (avx2, avx512, avx512bf16, amx: TSHOST_CPU, else the best this processor runs); bf16 layers
-- compute in bf16 only on avx512bf16 and amx (AMX tiles for the convolutions' products), in fp32 elsewhere
function ts.cpuPath() return ffi.string(C.ts_cpu_path()) end
-- what a run's bits depend on besides its settings: threads, CPU path, processor, device, the code's commit (ts.machine)
ts.machine = require('ts.machine').describe

-- key=value arguments after the script become ts.args (strings); the rest stay in arg
function ts.parse_args(argv)
   local out = {}
   for i = 1, #(argv or {}) do
      local k, v = argv[i]:match('^([%w_%.]+)=(.*)$')
      if k then out[k] = v end
   end
   return out
end

-- ts.options{lr = 0.01, epochs = 10, name = 'run'}: the defaults overridden by ts.args, each converted to
-- the type of its default; an unknown key in ts.args is an error (a typo in a sweep should not pass silently).
-- strict (true, or the key=value the errors give as an example): every argument must be a key=value; a bare word
-- (`bench.lua recipe`, meant as model=recipe) was dropped and the script ran on its defaults. Without it, bare words
-- stay in arg for a script that takes them (files, a run directory). The errors are the command line's: one line
-- naming the script, without a position in it (which drew a traceback).
function ts.options(defaults, strict)
   local keys = require('ts.keys')
   local function fail(msg) error(('%s: %s'):format(arg and arg[0] or 'ts.options', msg), 0) end
   local names = {}
   for name in pairs(defaults) do names[#names + 1] = name end
   table.sort(names)
   local example = type(strict) == 'string' and strict or keys.example(defaults)
   -- an argument that looks like an option but is no key=value (--epochs=1, =5) would be dropped, and the
   -- script run with its defaults: refused
   -- a key given twice (lr=1 lr=2) ran with the last value alone, as scripts/sweep.lua refuses it too
   local given = {}
   for _, a in ipairs(arg or {}) do
      if type(a) == 'string' and (a:sub(1, 1) == '-' or (a:find('=', 1, true) and not a:match('^[%w_%.]+='))) then
         fail(('option %s: options are key=value, as %s'):format(a, example))
      end
      if strict and not (type(a) == 'string' and a:match('^[%w_%.]+=')) then
         fail(('%s is no option: options are key=value, as %s'):format(tostring(a), example))
      end
      local k = type(a) == 'string' and a:match('^([%w_%.]+)=')
      if k and given[k] then fail(('option %s given twice (%s and %s): give it once'):format(k, given[k], a)) end
      if k then given[k] = a end
   end
   local out = {}
   for k, v in pairs(defaults) do out[k] = v end
   for k, v in pairs(ts.args) do
      local d = defaults[k]
      if d == nil then
         fail(('unknown option %s=%s (known: %s)'):format(k, v, table.concat(names, ', ')))
      elseif type(d) == 'number' then
         -- nan, inf and 1e400 read as numbers: a learning rate of NaN trained without a word (a default that is
         -- itself infinite takes them)
         local n = tonumber(v)
         if not n or n ~= n or ((n == math.huge or n == -math.huge) and d ~= math.huge and d ~= -math.huge) then
            fail(('option %s: expected a %snumber, got %q'):format(k, n and 'finite ' or '', v))
         end
         out[k] = n
      elseif type(d) == 'boolean' then
         local b = ({['true'] = true, ['1'] = true, yes = true, ['false'] = false, ['0'] = false, no = false})[v]
         if b == nil then fail(('option %s: expected true or false, got %q'):format(k, v)) end
         out[k] = b
      elseif type(d) == 'string' then
         out[k] = v
      else   -- a table default ({32, 48}) was replaced by the string "64"
         fail(('option %s: its default is a %s, which key=value cannot give'):format(k, type(d)))
      end
   end
   return out
end

function ts.help()
   return [[
ts — tensors: ts.tensor{...}, ts.zeros(n, ...), ts.randn, ts.arange; t:size(), t[i], t[{{1,3}, 2}], t:view(...),
     arithmetic (+ - * / with broadcasting), t:sum(d), t:max(d), t:mm(b), t:float(), t:totable()
ts.nn — Conv2d, BatchNorm2d/1d, ReLU, LeakyReLU, ELU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Linear,
     Dropout, Flatten, View, Identity, Sequential, Residual, Concat, CrossEntropyLoss;
     m:forward(x), m:backward(x, g), m:parameters(), m:training(), m:evaluate(), m:zeroGrad(), m:freeze()
ts.optim — SGD, Adam, AdamW (param groups), schedule.step/cosine/onecycle, opt:clipGradNorm(n)
ts.save(path, model|table), ts.load(path [, model]) — safetensors with PyTorch names
ts.data — gtsrb(), synthetic{}, readPickle, imageFolder, imageCSV, augment{}, preprocess{}, Loader(ds, opts), batch
ts.train{...}, ts.evaluate(model, ds), ts.metrics, ts.report.write(run, ...), ts.image (load, resize, save, grid)
ts.models — refcnn, baseline, resnet20/56, resnet8, mobilenet_v1_025, pretrained(name), load(run),
     register(name, builder); ts.transfer
ts.files — mkdirs, readFile, writeFile (atomic), appendFile, now, realpath
ts.cuda — isAvailable, memory, fallbacks (math on host copies), strict(true) (such math fails), deterministic
ts.manualSeed(n), ts.setThreads(n), ts.options({...}, strict) (script options from key=value arguments)]]
end

return ts
