-- ts.train{...}: the training loop with its run directory; ts.evaluate(model, dataset, opts).
--
--   local result = ts.train{
--      model = {name = 'baseline', classes = 43},   -- a ts.models builder and its options (or a module)
--      data = {train = ds, valid = ds},              -- ts.data datasets
--      epochs = 20, batch = 128, accumulate = 1,     -- accumulate k: k micro-batches of `batch` per update
--      optimizer = 'sgd' | 'adam' | 'adamw', lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4,
--      schedule = 'cosine' | 'onecycle' | 'step' | 'none', warmup = 1 (epochs), step_size, gamma,
--      label_smoothing = 0, class_weights = nil | tensor | 'balanced', clip = nil (max gradient norm),
--      augment = ts.data.augment{...}, preprocess = ts.data.preprocess{...} (default: standardize with the
--      training set's statistics), sampler = 'shuffle' | 'upsample' | 'downsample',
--      early_stop = nil | patience in epochs, run = 'runs/name' (nil: no files), resume = true, seed = 1,
--      note = 'free text for comparisons', quiet = false,
--      param_groups = optimizer groups (ts.transfer.paramGroups), on_epoch = function(epoch, model, opt) end,
--      device = ts.device() ('cuda' when there is one), auto_microbatch = false,
--      workers = threads preparing batches (default 1 on the CPU, the cores but one with a GPU),
--      precision = 'fp32' | 'bf16' (mixed precision for convolutions and linear layers: model:setPrecision;
--      it stays set on the returned model, so its evaluation computes as its training did),
--   }
-- auto_microbatch: when the device runs out of memory in a step, the step is redone in micro-batches of
-- half the size whose gradients add up to the whole batch's (the loss is a mean, each part weighs its
-- share), halving again until it fits; the size that fit is kept, reported, and written to
-- metrics.jsonl; validation halves its batch the same way. Batch norm then sees the smaller micro-batches'
-- statistics, as with accumulate. An update already half-accumulated when memory runs out (accumulate > 1)
-- is applied without the lost part.
-- Every epoch: validation, metrics.jsonl, the checkpoint (model, optimizer, schedule, epoch and random
-- generator: a killed run resumes where it was and ends as an uninterrupted one would), and model.safetensors
-- when validation accuracy improves. Returns {model, history, best, run}.
local ffi = require('ffi')
local T = require('ts.tensor')
local nn = require('ts.nn')
local optim = require('ts.optim')
local data = require('ts.data')
local metrics = require('ts.metrics')
local json = require('ts.json')
local serialize = require('ts.serialize')
local cuda = require('ts.cuda')
local C = require('ts.ffi').C

local M = {}

ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } ts_timespec;
int clock_gettime(int clock, ts_timespec *t);
int isatty(int fd);
int mkdir(const char *path, unsigned int mode);
]]
local tspec = ffi.new('ts_timespec')
local function now()
   C.clock_gettime(1, tspec)
   return tonumber(tspec.tv_sec) + tonumber(tspec.tv_nsec) * 1e-9
end
M.now = now

function M.mkdirs(path)
   local at = ''
   for part in path:gmatch('[^/]+') do
      at = (at == '' and path:sub(1, 1) == '/') and '/' .. part or (at == '' and part or at .. '/' .. part)
      C.mkdir(at, 493)
   end
end

local function write_file(path, s)
   local tmp = path .. '.tmp'
   local f = assert(io.open(tmp, 'w'))
   f:write(s)
   f:close()
   assert(os.rename(tmp, path))
end
M.writeFile = write_file

local function read_file(path)
   local f = io.open(path, 'r')
   if not f then return nil end
   local s = f:read('*a')
   f:close()
   return s
end
M.readFile = read_file

-- ---- evaluation ----------------------------------------------------------------------------------------

-- after an out-of-memory error: the layers' outputs and scratch, then the allocator's cache, go back
local function release_memory(...)
   for _, m in ipairs({...}) do m:clearState() end
   collectgarbage('collect')
   collectgarbage('collect')
   cuda.emptyCache()
end

local evaluate
-- Runs the model over a dataset in evaluation mode: {loss, accuracy, pred (int64 [N]), confidence (float [N],
-- the softmax probability of the prediction), cm, summary, seconds}. opts: batch, preprocess, device,
-- auto_microbatch (an evaluation that runs out of memory starts over with half the batch).
function M.evaluate(model, ds, opts)
   opts = opts or {}
   if not opts.auto_microbatch then return evaluate(model, ds, opts) end
   local o = {}
   for k, v in pairs(opts) do o[k] = v end
   o.batch = o.batch or 256
   local was_training = model.train
   while true do
      local ok, result = pcall(evaluate, model, ds, o)
      if ok then
         if was_training then model:training() end
         return result
      end
      if not nn.Module.isOutOfMemory(result) or o.batch == 1 then error(result, 0) end
      o.batch = math.ceil(o.batch / 2)
      release_memory(model)
   end
end

function evaluate(model, ds, opts)
   local was_training = model.train
   local device = opts.device or model.device or 'cpu'
   model:evaluate()
   local loader = data.Loader(ds, {batch = opts.batch or 256, sampler = 'sequential', preprocess = opts.preprocess,
                                   device = device})
   local crit = nn.CrossEntropyLoss()
   local n = ds:size()
   local pred, conf = T.zeros({n}, 'int64'), T.zeros(n)
   local pp, cp = ffi.cast('int64_t *', pred:data()), ffi.cast('float *', conf:data())
   local loss_sum, at, start = 0, 0, now()
   for x, y in loader:epoch() do
      local out = model:forward(x)   -- the loader delivers it on the device
      loss_sum = loss_sum + crit:forward(out, y) * x:size(1)
      local o = out:cpu():contiguous()
      local op = ffi.cast('float *', o:data())
      local classes = o:size(2)
      for i = 0, x:size(1) - 1 do
         local best, arg = -math.huge, 0
         for c = 0, classes - 1 do
            if op[i * classes + c] > best then best, arg = op[i * classes + c], c end
         end
         local z = 0
         for c = 0, classes - 1 do z = z + math.exp(op[i * classes + c] - best) end
         pp[at + i], cp[at + i] = arg, 1 / z
      end
      at = at + x:size(1)
   end
   if was_training then model:training() end
   local cm = metrics.confusion(pred, ds.y, math.max(ds:numClasses(), opts.classes or 0))
   local summary = metrics.summary(cm)
   return {loss = loss_sum / math.max(n, 1), accuracy = summary.accuracy, pred = pred, confidence = conf, cm = cm,
           summary = summary, seconds = now() - start}
end

-- ---- the progress line -----------------------------------------------------------------------------------

local tty = C.isatty(1) == 1
local function progress(cfg, epoch, step, steps, loss, acc, rate, eta, final)
   if cfg.quiet then return end
   local line = ('epoch %d/%d  step %d/%d  loss %.4f  acc %.4f  %.0f img/s  ETA %s'):format(
      epoch, cfg.epochs, step, steps, loss, acc, rate, eta >= 3600 and ('%dh%02dm'):format(eta / 3600, eta % 3600 / 60)
                                                       or ('%dm%02ds'):format(eta / 60, eta % 60))
   if tty then
      io.write('\r' .. line .. (final and '\n' or '   '))
      io.flush()
   elseif final or step % 50 == 0 then
      print(line)
   end
end

-- ---- checkpoints -----------------------------------------------------------------------------------------

local function save_checkpoint(path, model, opt, state)
   local tensors = {}
   for _, pair in ipairs(model:stateDict()) do tensors['model.' .. pair[1]] = pair[2] end
   local steps = {}
   for i, st in ipairs(opt.state) do
      for k, v in pairs(st) do
         if T.isTensor(v) then tensors[('optim.%d.%s'):format(i, k)] = v end
      end
      steps[i] = st.step or 0
   end
   local rng = ffi.new('uint64_t[4]')
   C.ts_rng_get_state(rng)
   local r = T.zeros({4}, 'int64')
   ffi.copy(r:data(), rng, 32)
   tensors.rng = r
   state.optim_steps = steps
   serialize.save(path, tensors, {state = json.encode(state)})
end

local function load_checkpoint(path, model, opt, device)
   local tensors, meta = serialize.load(path)
   local state = json.decode(meta.state)
   for _, pair in ipairs(model:stateDict()) do
      local t = tensors['model.' .. pair[1]]
      if not t then error(path .. ': checkpoint lacks model.' .. pair[1], 0) end
      pair[2]:copy(t)
   end
   for i, st in ipairs(opt.state) do
      for k, v in pairs(tensors) do
         local idx, field = k:match('^optim%.(%d+)%.(.+)$')
         if tonumber(idx) == i then st[field] = v:to(device) end
      end
      if state.optim_steps[i] and state.optim_steps[i] > 0 then st.step = state.optim_steps[i] end
   end
   C.ts_rng_set_state(ffi.cast('uint64_t *', tensors.rng:data()))
   return state
end

-- ---- the loop --------------------------------------------------------------------------------------------

local defaults = {epochs = 10, batch = 128, accumulate = 1, optimizer = 'sgd', lr = 0.05, momentum = 0.9,
                  nesterov = true, weight_decay = 5e-4, schedule = 'cosine', warmup = 0, label_smoothing = 0,
                  sampler = 'shuffle', resume = true, seed = 1, step_size = 10, gamma = 0.1, auto_microbatch = false,
                  precision = 'fp32'}

-- Running sums of a training loop, kept on the device so that a step never waits for the GPU: loss (the
-- sum over images of their loss), correct (right predictions) and last (the last micro-batch's mean loss).
-- They are read (:get(1), which waits) only when a progress line or the epoch's record needs them.
function M.sums(device)
   return {loss = T.zerosOn(device, {1}), correct = T.zerosOn(device, {1}), last = T.zerosOn(device, {1})}
end

-- Forward and backward of one batch in micro-batches of `micro` images, each gradient scaled by its share
-- of the batch and by 1/accumulate; the batch's summed loss and right predictions are added to sums.
-- The labels y stay on the host: the loss checks them there and copies them to the device.
local function forward_backward(model, crit, x, y, micro, accumulate, sums)
   local n = x:size(1)
   for s = 1, n, micro do
      local b = math.min(micro, n - s + 1)
      local xs, ys = x, y
      if b < n then xs, ys = x:narrow(1, s, b), y:narrow(1, s, b) end
      local out = model:forward(xs)
      local g = crit:backwardInto(out, ys, sums.last, sums.correct)
      local share = b / n / accumulate
      if share ~= 1 then g:mul_(share) end
      model:backward(xs, g)
      sums.loss:axpy_(b, sums.last)
   end
end

M.forwardBackward = forward_backward

local function build_model(spec)
   if type(spec) == 'table' and spec.forward then return spec, nil end
   if type(spec) ~= 'table' or not spec.name then error('ts.train: model must be a module or {name = builder, ...}', 3) end
   local models = require('ts.models')
   local builder = models[spec.name]
   if type(builder) ~= 'function' then error('ts.train: no model builder ts.models.' .. tostring(spec.name), 3) end
   return builder(spec), spec
end

local function make_optimizer(cfg, model)
   if type(cfg.optimizer) == 'table' then return cfg.optimizer end
   local o = {lr = cfg.lr, weight_decay = cfg.weight_decay}
   if cfg.optimizer == 'sgd' then
      o.momentum, o.nesterov = cfg.momentum, cfg.nesterov and cfg.momentum > 0
      return optim.SGD(cfg.param_groups or model, o)
   elseif cfg.optimizer == 'adam' then return optim.Adam(cfg.param_groups or model, o)
   elseif cfg.optimizer == 'adamw' then return optim.AdamW(cfg.param_groups or model, o) end
   error('ts.train: unknown optimizer ' .. tostring(cfg.optimizer), 3)
end

local function make_schedule(cfg, opt, updates_per_epoch)
   local total = cfg.epochs * updates_per_epoch
   if cfg.schedule == 'cosine' then
      return optim.schedule.cosine(opt, {total = total, warmup = math.min(math.floor(cfg.warmup * updates_per_epoch), total - 1)})
   elseif cfg.schedule == 'onecycle' then
      return optim.schedule.onecycle(opt, {total = total})
   elseif cfg.schedule == 'step' then
      return optim.schedule.step(opt, {step_size = cfg.step_size * updates_per_epoch, gamma = cfg.gamma})
   elseif cfg.schedule == 'none' or cfg.schedule == nil then
      return nil
   end
   error('ts.train: unknown schedule ' .. tostring(cfg.schedule), 3)
end

-- a config's plain values, for config.json
local function plain(cfg)
   local out = {}
   for k, v in pairs(cfg) do
      local t = type(v)
      if t == 'number' or t == 'string' or t == 'boolean' then out[k] = v
      elseif t == 'table' and v.settings then out[k] = v.settings
      elseif t == 'table' and k == 'model' and not v.forward then out[k] = v end
   end
   return out
end

function M.train(user)
   local cfg = {}
   for k, v in pairs(defaults) do cfg[k] = v end
   for k, v in pairs(user) do cfg[k] = v end
   if not cfg.data or not cfg.data.train then error('ts.train: data = {train = dataset, valid = dataset} is required', 2) end
   C.ts_manual_seed(cfg.seed)
   local train_ds, valid_ds = cfg.data.train, cfg.data.valid
   local model, spec = build_model(cfg.model)
   local device = cfg.device or cuda.device()
   model:to(device)
   model:setPrecision(cfg.precision)
   model.needsGradInput = false
   if not cfg.preprocess then
      local mean, std = train_ds:channelStats()
      cfg.preprocess = data.preprocess{mean = mean, std = std}
   end
   local class_weights = cfg.class_weights
   if class_weights == 'balanced' then class_weights = train_ds:classWeights() end
   local crit = nn.CrossEntropyLoss{weight = class_weights, label_smoothing = cfg.label_smoothing}
   -- on the GPU the host's cores are free to prepare batches; on the CPU the kernels use them
   local workers = cfg.workers or (device == 'cuda' and math.max(1, math.min(C.ts_get_threads() - 1, 16)) or 1)
   local loader = data.Loader(train_ds, {batch = cfg.batch, augment = cfg.augment, preprocess = cfg.preprocess,
                                         sampler = cfg.sampler, workers = workers, device = device})
   local opt = make_optimizer(cfg, model)
   local micro_per_epoch = math.ceil(loader:epochSize() / cfg.batch)
   local updates_per_epoch = math.ceil(micro_per_epoch / cfg.accumulate)
   local sched = make_schedule(cfg, opt, updates_per_epoch)

   local run = cfg.run
   local history, best, start_epoch, elapsed = {}, {accuracy = -1, epoch = 0}, 1, 0
   if run then
      M.mkdirs(run)
      local ckpt = run .. '/checkpoint.safetensors'
      if cfg.resume and read_file(ckpt) then
         local state = load_checkpoint(ckpt, model, opt, device)
         start_epoch, history, best, elapsed = state.epoch + 1, state.history, state.best, state.elapsed or 0
         if sched then
            sched.count = state.schedule_count
            sched:apply()
         end
         if not cfg.quiet then print(('resuming %s after epoch %d'):format(run, state.epoch)) end
      else
         local f = io.open(run .. '/metrics.jsonl', 'w')
         if f then f:close() end
      end
      local conf = plain(cfg)
      conf.model = spec or {module = tostring(model):match('^[^\n]*')}
      conf.parameters = model:numParameters()
      conf.class_names = train_ds.classNames
      conf.preprocess = cfg.preprocess.settings
      conf.architecture = tostring(model)
      conf.device = device == 'cuda' and cuda.deviceName() or 'cpu'
      write_file(run .. '/config.json', json.encode(conf))
   end

   local micro = 0
   local micro_batch = cfg.batch   -- lowered by auto_microbatch
   local bad_epochs = 0
   for epoch = start_epoch, cfg.epochs do
      if cfg.on_epoch then cfg.on_epoch(epoch, model, opt) end
      model:training()
      local t0, seen, shown = now(), 0, now()
      local epoch_sums, batch_sums = M.sums(device), M.sums(device)
      local step = 0
      opt:zeroGrad()
      for x, y in loader:epoch() do
         step = step + 1
         -- the images come on the device from the loader, the labels stay on the host (the loss moves them)
         local ok, err
         while true do
            batch_sums.loss:zero()
            batch_sums.correct:zero()
            ok, err = pcall(forward_backward, model, crit, x, y, micro_batch, cfg.accumulate, batch_sums)
            if ok then break end
            if not (cfg.auto_microbatch and nn.Module.isOutOfMemory(err) and micro_batch > 1) then error(err, 0) end
            micro_batch = math.ceil(micro_batch / 2)
            opt:zeroGrad()
            release_memory(model, crit)
            if not cfg.quiet then
               print(('out of memory at batch %d: continuing in micro-batches of %d (%s)'):format(cfg.batch, micro_batch,
                                                                                                   err:match('^[^:]*')))
            end
         end
         micro = micro + 1
         if step % cfg.accumulate == 0 or step == micro_per_epoch then
            if cfg.clip then opt:clipGradNorm(cfg.clip) end
            opt:step()
            opt:zeroGrad()
            if sched then sched:step() end
         end
         epoch_sums.loss:axpy_(1, batch_sums.loss)
         epoch_sums.correct:axpy_(1, batch_sums.correct)
         seen = seen + x:size(1)
         -- a progress line reads the sums back (waiting for the GPU): every 50 steps, or 4 times a second on a terminal
         if not cfg.quiet and (step % 50 == 0 or (tty and now() - shown > 0.25)) then
            shown = now()
            local rate = seen / (shown - t0)
            local eta = (micro_per_epoch - step) * cfg.batch / rate +
                        (cfg.epochs - epoch) * micro_per_epoch * cfg.batch / rate
            progress(cfg, epoch, step, micro_per_epoch, epoch_sums.loss:get(1) / seen, epoch_sums.correct:get(1) / seen,
                     rate, eta, false)
         end
      end
      local train_time = now() - t0
      elapsed = elapsed + train_time
      local record = {epoch = epoch, train_loss = epoch_sums.loss:get(1) / seen,
                      train_accuracy = epoch_sums.correct:get(1) / seen, lr = opt:lr(), seconds = train_time,
                      images_per_second = seen / train_time}
      if micro_batch < cfg.batch then record.micro_batch = micro_batch end
      if device == 'cuda' then record.cuda_peak_bytes = cuda.memory().peak end
      if valid_ds then
         local v = M.evaluate(model, valid_ds, {preprocess = cfg.preprocess, device = device,
                                                auto_microbatch = cfg.auto_microbatch})
         record.valid_loss, record.valid_accuracy, record.valid_macro_f1 = v.loss, v.accuracy, v.summary.macro.f1
      end
      progress(cfg, epoch, micro_per_epoch, micro_per_epoch, record.train_loss, record.train_accuracy,
               record.images_per_second, (cfg.epochs - epoch) * train_time, true)
      if not cfg.quiet and valid_ds then
         print(('  valid loss %.4f  accuracy %.4f  macro-F1 %.4f  (lr %.3g, %.0fs)'):format(record.valid_loss,
               record.valid_accuracy, record.valid_macro_f1, record.lr, train_time))
      end
      history[#history + 1] = record
      local score = record.valid_accuracy or -record.train_loss
      local improved = score > best.accuracy
      if improved then
         best = {accuracy = score, epoch = epoch}
         bad_epochs = 0
      else
         bad_epochs = bad_epochs + 1
      end
      if run then
         local f = io.open(run .. '/metrics.jsonl', 'a')
         f:write(json.encode(record), '\n')
         f:close()
         if improved then serialize.save(run .. '/model.safetensors', model, {epoch = tostring(epoch)}) end
         save_checkpoint(run .. '/checkpoint.safetensors', model, opt,
                         {epoch = epoch, history = history, best = best, elapsed = elapsed,
                          schedule_count = sched and sched.count or 0})
      end
      if cfg.early_stop and bad_epochs >= cfg.early_stop then
         if not cfg.quiet then print(('early stop: no improvement for %d epochs'):format(bad_epochs)) end
         break
      end
   end
   if run and valid_ds and best.epoch > 0 then
      serialize.load(run .. '/model.safetensors', model)   -- the model chosen on validation
   end
   return {model = model, history = history, best = best, run = run, preprocess = cfg.preprocess,
           train_seconds = elapsed, config = cfg, micro_batch = micro_batch, device = device}
end

return M
