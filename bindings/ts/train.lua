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
--      training set's statistics), sampler = 'shuffle' | 'upsample' | 'downsample' | 'sqrt',
--      early_stop = nil | patience in epochs, run = 'runs/name' (nil: no files), resume = true, seed = 1,
--      ema = nil | decay (0.999: validate, keep and return the moving average of the weights),
--      swa = nil | {start = epoch, lr = nil, anneal = 0}: stochastic weight averaging (Izmailov et al. 2018; PyTorch's
--      swa_utils): the mean of the weights at the end of every epoch from `start` on; with lr, the schedule's rate
--      moves to lr (each parameter group in proportion, as schedules scale them) by a cosine over `anneal` epochs
--      from `start` and is held there (SWALR), without it the schedule is left as it is (the average then costs
--      the training nothing). After the last epoch the average gets batch norm statistics of its own
--      (ts.updateBatchNorm over the training images, preprocessed, not augmented), is validated, saved as
--      swa.safetensors (ts.models.load(run, {weights = 'swa'})) and returned as the model, with result.swa its
--      record; model.safetensors keeps the epoch validation chose,
--      mix = nil | ts.data.mix{mixup = alpha, cutmix = alpha, prob = 1, switch = 0.5} (or its settings table):
--      MixUp / CutMix of each training batch with itself reversed, the loss mixed alike (ts/mix.lua),
--      distill = nil | {teachers = {run directories or modules}, weight = 0.5, temperature = 1}: knowledge
--      distillation (nn.DistillationLoss): the teachers, an ensemble when several, see each training batch and
--      the loss is (1 - weight) of the usual one plus weight T^2 KL(teachers' softened mean || student's);
--      teachers from run directories must have been trained with the same preprocessing,
--      note = 'free text for comparisons', quiet = false,
--      param_groups = optimizer groups (ts.transfer.paramGroups), on_epoch = function(epoch, model, opt) end,
--      device = ts.device() ('cuda' when there is one), auto_microbatch = false,
--      workers = threads preparing batches (default 1 on the CPU, the cores but one with a GPU),
--      precision = 'fp32' | 'bf16' (mixed precision for convolutions and linear layers: model:setPrecision;
--      it stays set on the returned model, so its evaluation computes as its training did),
--      clean_epochs = 0: the last clean_epochs epochs train on the images without augmentation or mixing (He et
--      al. 2019, "Data augmentation revisited": heavy augmentation leaves a gap between the training images and
--      the clean ones the model is tested on, which a few epochs on the clean images at the schedule's low rates
--      close),
--   }
-- auto_microbatch: when the device runs out of memory in a step, the step is redone in micro-batches of
-- half the size whose gradients add up to the whole batch's (the loss is a mean, each part weighs its
-- share), halving again until it fits; the size that fit is kept, reported, and written to
-- metrics.jsonl; validation halves its batch the same way. Batch norm then sees the smaller micro-batches'
-- statistics, as with accumulate. With accumulate > 1 the gradients an update has gathered before the step
-- that ran out are kept, and the step is redone on top of them (the batch norms' running statistics have
-- seen part of that batch twice): each later step of an update holds a copy of the gradients for this. A batch
-- the loader runs out of memory building, or finishing on the GPU, is built again once the model's memory is
-- released (Loader:retry: the same images and draws).
-- Every epoch: validation, metrics.jsonl, the checkpoint (model, optimizer, schedule, epoch and random
-- generator: a killed run resumes where it was and ends as an uninterrupted one would), and model.safetensors
-- when validation accuracy improves (every epoch without a validation set: the model is then the last one).
-- Returns {model, history, best = {epoch, accuracy (nil without validation)}, run}.
local ffi = require('ffi')
local T = require('ts.tensor')
local keys = require('ts.keys')
local nn = require('ts.nn')
local optim = require('ts.optim')
local data = require('ts.data')
local mix = require('ts.mix')
local metrics = require('ts.metrics')
local json = require('ts.json')
local serialize = require('ts.serialize')
local cuda = require('ts.cuda')
local machine = require('ts.machine')
local models = require('ts.models')
local C = require('ts.ffi').C
local files = require('ts.files')
local tensorboard = require('ts.tensorboard')
local bnstats = require('ts.bnstats')
local now, write_file, read_file = files.now, files.writeFile, files.readFile

local M = {}
-- the clock's former home, kept because scripts outside this repository still call require('ts.train').now
M.now = files.now

-- getpid is declared by ts.files
ffi.cdef[[
int isatty(int fd);
int open(const char *path, int flags, int mode);
int close(int fd);
int flock(int fd, int operation);
int ftruncate(int fd, int64_t length);
long write(int fd, const void *buf, size_t n);
int kill(int pid, int sig);
char *strerror(int errnum);
]]

-- ---- evaluation ----------------------------------------------------------------------------------------

-- after an out-of-memory error: the layers' outputs and scratch, then the allocator's cache, go back
local function release_memory(...)
   for _, m in ipairs({...}) do m:clearState() end
   collectgarbage('collect')
   collectgarbage('collect')
   cuda.emptyCache()
end

-- The optimizer's gradients copied (a list of new tensors), or, given such a list, copied back into them
local function copy_grads(opt, from)
   local out, k = from or {}, 0
   for _, g in ipairs(opt.groups) do
      for _, grad in ipairs(g.grads) do
         k = k + 1
         if from then grad:copy(from[k]) else out[k] = grad:clone() end
      end
   end
   return out
end

local evaluate
-- Runs the model over a dataset in evaluation mode: {loss, accuracy, pred (int64 [N]), confidence (float [N],
-- the probability of the prediction), cm, summary, seconds, logits (float [N, classes], the log-probabilities,
-- when opts.logits), data and labels_crc (the dataset's fingerprint and its labels' CRC, which ts.ensemble matches)}.
-- opts: batch, preprocess (default: model.preprocess, the one ts.train trained it with or ts.models.load read from its
-- run; else none: evaluated without, a model trained on standardized images was fed others, silently), device, logits,
-- tta, auto_microbatch (an evaluation that runs out of memory starts over with half the batch), classes.
-- tta (test-time augmentation): a number of views, or {views = n, augment = ts.data.augment{...}, seed = 1}.
-- The first view is the image as it is; the others are drawn from the augmentation (by default small shifts,
-- rotations and zooms: M.ttaAugment), the same draws on every call with the same seed. The prediction is
-- the class of largest mean probability over the views.
M.ttaAugment = {rotate = 6, scale = {0.94, 1.06}, translate = 0.05}
-- the augmentation seed of view v (2..) of a tta with this seed: its images are those of a Loader epoch
-- started with it
function M.ttaViewSeed(seed, view) return seed * 1000003 + view end
local evaluate_options = {batch = 1, preprocess = 1, device = 1, logits = 1, tta = 1, auto_microbatch = 1, classes = 1}
local tta_options = {views = 1, augment = 1, seed = 1}

-- The one check of a number of test-time views (evaluate's tta, a run's final.json and calibration.json, the main job's
-- option): v, unless it is no whole number from 1 to M.MAX_VIEWS, an error "<what>: <name> must be a whole number
-- from 1 to 1024, got ..." at `level` as error's, counted from the caller (0: no position)
M.MAX_VIEWS = 1024
function M.checkViews(v, what, name, level)
   keys.count(v, what, name, 1, M.MAX_VIEWS, level == 0 and 0 or level + 1)   -- not a tail call, which drops this frame
   return v
end

-- opts.tta as {views, augment, seed}, refused when it makes no sense: an error at `level` as error's, counted from
-- the caller (checked before the evaluation, whose auto_microbatch runs it inside a pcall)
local function tta_settings(tta, level)
   if tta == nil or tta == false then return {views = 1} end
   if type(tta) == 'number' then tta = {views = tta} end
   if type(tta) ~= 'table' then error('evaluate: tta must be a number of views or {views, augment, seed}', level + 1) end
   keys.check('evaluate: tta', tta, tta_options, level + 1)   -- {view = 2} was ignored: 8 views
   local views = M.checkViews(tta.views or 8, 'evaluate', 'tta views', level + 1)
   -- a plain table of settings failed on indexing here, a number too, ts.data.preprocess{...} in the FFI
   local augment = data.checkSettings(tta.augment, 'augment', 'evaluate', level + 1, 'tta augment') or
                   data.augment(M.ttaAugment)
   if (augment.settings.flip or 0) > 0 then
      error('evaluate: tta augment cannot flip (a mirrored sign can be another class)', level + 1)
   end
   local seed = keys.count(tta.seed or 1, 'evaluate', 'tta seed', 0, 2 ^ 31 - 1, level + 1)
   return {views = views, augment = augment, seed = seed}
end

function M.evaluate(model, ds, opts)
   opts = opts or {}
   keys.check('evaluate', opts, evaluate_options, 2)   -- temprature = 2 was ignored, and the evaluation ran without it
   nn.Module.check(model, 'evaluate(model, dataset, opts): model', 2)
   -- (a table with x and y but without a dataset's methods failed inside)
   data.checkDataset(ds, 'evaluate(model, dataset, opts)', 'dataset', 2)
   -- no images have no accuracy: it failed in the confusion matrix, or, with class names, came out as 0
   if ds:size() == 0 then error('evaluate: the dataset has no images to evaluate', 2) end
   if opts.batch ~= nil then data.checkBatch(opts.batch, 'evaluate', 'batch', 2) end
   if opts.classes ~= nil then keys.count(opts.classes, 'evaluate', 'classes', 1, metrics.MAX_CLASSES, 2) end
   -- checked here, not by the loader: a plain table of settings evaluated unnormalized images without a word
   data.checkSettings(opts.preprocess, 'preprocess', 'evaluate', 2)
   data.checkDevice(opts.device, 'evaluate', 2)
   -- the batches go to opts.device and meet the model there: a model on the other one failed in its first layer, with
   -- a message that named neither evaluate nor its device option (evaluate moves no model: ts.train does, for its own)
   if opts.device and opts.device ~= (model.device or 'cpu') then
      error(("evaluate: device is '%s' but the model is on %s: move it first (model:to('%s'))"):format(opts.device,
            model.device or 'cpu', opts.device), 2)
   end
   for _, k in ipairs({'logits', 'auto_microbatch'}) do keys.flag(opts[k], 'evaluate', k, 2) end
   local tta = tta_settings(opts.tta, 2)
   if not opts.auto_microbatch then
      local out = evaluate(model, ds, opts, tta, 0)   -- not a tail call: its errors' levels count this call
      return out
   end
   local o = {}
   for k, v in pairs(opts) do o[k] = v end
   o.batch = o.batch or 256
   local was_training = model.train
   while true do
      local ok, result = pcall(evaluate, model, ds, o, tta, 1)
      if ok then
         if was_training then model:training() end
         return result
      end
      if not nn.Module.isOutOfMemory(result) or o.batch == 1 then error(result, 0) end
      o.batch = math.ceil(o.batch / 2)
      release_memory(model)
   end
end

-- The mean of several predictions' probabilities (views of an image, members of an ensemble), kept as
-- lp[i * classes + c] = log sum over the predictions so far of image i's probability of class c: each
-- prediction's log-softmax is added by log-sum-exp, so no probability underflows to a log of zero.
local function mean_probability(n, classes)
   return {n = n, classes = classes, count = 0, lp = ffi.new('double[?]', math.max(n * classes, 1))}
end

-- adds rows (float* to [rows, classes] scores, logits or log-probabilities) for images first .. first + rows - 1
-- (0-based) of prediction number `which` (1 for the first)
-- scores as float32, which add_scores reads (float64 rounded; integer scores are no scores: refused, as they were
-- read as floats, past their end for uint8)
local function float_scores(o, what, level)
   if o:dtype() == 'float32' then return o end
   if o:dtype() ~= 'float64' then
      error(('%s %s scores; float scores are needed'):format(what, o:dtype()), level and level + 1 or 0)
   end
   return o:float()
end

local function add_scores(m, which, first, rows, scores)
   local classes = m.classes
   for i = 0, rows - 1 do
      local row, acc = scores + i * classes, m.lp + (first + i) * classes
      local best = -math.huge
      for c = 0, classes - 1 do if row[c] > best then best = row[c] end end
      local z = 0
      for c = 0, classes - 1 do z = z + math.exp(row[c] - best) end
      -- (row - best) - log z, not row - (best + log z): at scores of 1e17, best + log z is best, and 43 equal
      -- scores read as a certainty
      local log_z = math.log(z)
      for c = 0, classes - 1 do
         local v = (row[c] - best) - log_z
         if which == 1 then acc[c] = v
         else   -- log(exp(a) + exp(v)), the larger one factored out
            -- (two -inf are -inf: -inf - -inf made NaN, a mean probability of 0 read as no number)
            local hi, lo = math.max(acc[c], v), math.min(acc[c], v)
            acc[c] = hi == -math.huge and hi or hi + math.log(1 + math.exp(lo - hi))
         end
      end
   end
   m.count = math.max(m.count, which)
end

-- evaluate's result from the mean probabilities: pred, confidence, loss (the mean negative log of the mean
-- probability of the label), cm, summary, logits (log mean probabilities, when want_logits); a label outside the
-- classes is an error naming `where` at `level` as error's, counted from the caller
local function scores_result(m, y, want_logits, at_least_classes, where, level)
   local n, classes = m.n, m.classes
   local pred, conf = T.zeros({n}, 'int64'), T.zeros(n)
   local pp, cp = ffi.cast('int64_t *', pred:data()), ffi.cast('float *', conf:data())
   -- the labels on the host, held in a local while read through their pointer (a device tensor's address was read)
   local labels = y:cpu():long():contiguous()
   local yp, logits = ffi.cast('int64_t *', labels:data()), want_logits and n > 0 and T.zeros(n, classes)
   local lgp = logits and ffi.cast('float *', logits:data())
   local log_count, loss_sum = math.log(math.max(m.count, 1)), 0
   for i = 0, n - 1 do
      local acc = m.lp + i * classes
      local best, arg = -math.huge, 0
      for c = 0, classes - 1 do
         if acc[c] > best then best, arg = acc[c], c end
         if lgp then lgp[i * classes + c] = acc[c] - log_count end
      end
      pp[i], cp[i] = arg, math.exp(best - log_count)
      local label = tonumber(yp[i])
      if label >= 0 and label < classes then loss_sum = loss_sum + log_count - acc[label]
      else error(('%s: label %d of image %d is outside the model\'s %d classes'):format(where, label, i + 1, classes), level + 1) end
   end
   -- (a model of more classes than a confusion matrix holds failed inside, naming the matrix and a line of this file)
   if math.max(at_least_classes, classes) > metrics.MAX_CLASSES then
      error(('%s: the model scores %d classes, more than the %d a confusion matrix holds'):format(where,
            math.max(at_least_classes, classes), metrics.MAX_CLASSES), level + 1)
   end
   local cm = metrics.confusion(pred, labels, math.max(at_least_classes, classes))
   local summary = metrics.summary(cm)
   return {loss = loss_sum / math.max(n, 1), accuracy = summary.accuracy, pred = pred, confidence = conf, cm = cm,
           summary = summary, logits = logits or nil}
end

-- tta: what tta_settings made of opts.tta; depth: the calls between M.evaluate and this one beyond a direct call (1
-- through pcall), for the errors that point at M.evaluate's caller
function evaluate(model, ds, opts, tta, depth)
   local was_training = model.train
   local device = opts.device or model.device or 'cpu'
   model:evaluate{fused = true}   -- only the logits are read: convolutions run with their batch norms folded in
   local n, start = ds:size(), now()
   local mean
   for view = 1, tta.views do
      local loader = data.Loader(ds, {batch = opts.batch or 256, sampler = 'sequential',
                                      preprocess = opts.preprocess or model.preprocess,
                                      device = device, augment = view > 1 and tta.augment or nil})
      local at = 0
      for x in loader:epoch(1, view > 1 and M.ttaViewSeed(tta.seed, view) or nil) do
         local o = model:forward(x):cpu():contiguous()   -- the loader delivers x on the device
         -- scores [N, classes]: a model ending in maps (a convolution) was read as the first N x C floats of them
         if o:dim() ~= 2 or o:size(1) ~= x:size(1) then
            error(('evaluate: the model gives %s for %d images; scores [N, classes] are needed (a Flatten and a Linear ' ..
                   'at its end?)'):format(tostring(o:size()), x:size(1)), 0)
         end
         o = float_scores(o, 'evaluate: the model gives')
         mean = mean or mean_probability(n, o:size(2))
         add_scores(mean, view, at, x:size(1), ffi.cast('float *', o:data()))
         at = at + x:size(1)
      end
      loader:close()
   end
   if was_training then model:training() end
   local out = scores_result(mean or mean_probability(n, 0), ds.y, opts.logits,
                             math.max(ds:numClasses(), opts.classes or 0), 'evaluate', 3 + depth)
   -- a NaN or an infinite score makes the loss NaN, and every such image class 0: an accuracy would mislead
   if out.loss ~= out.loss then
      error('evaluate: the model\'s scores hold NaN or infinities (a diverged or damaged model)', 0)
   end
   out.seconds = now() - start
   -- which images and labels, for ts.ensemble to match its members and labels by
   out.data = ds:fingerprint()
   out.labels_crc = data.fingerprintLabels(out.data)
   return out
end

-- An ensemble's evaluation from its members' evaluations of the same images (each with logits): the mean
-- of their probabilities, as evaluate's result (loss, accuracy, pred, confidence, cm, summary, logits).
-- Members that ts.evaluate made carry their dataset's fingerprint (data): those of other images, or labels y of other
-- images, are refused, as other sizes and class counts are (of the same size they were averaged without a word).
function M.ensemble(evals, y)
   if type(evals) ~= 'table' or #evals == 0 then error('ensemble: no member evaluations', 2) end
   for k = 1, table.maxn(evals) do
      if type(evals[k]) ~= 'table' then error(('ensemble: member %d is missing'):format(k), 2) end
   end
   -- each member's scores [N, classes] as float32 (a table or a 1-d tensor failed on a method or a size inside)
   local scores = {}
   for k, ev in ipairs(evals) do
      local l = ev.logits
      if l == nil then error(('ensemble: member %d was evaluated without logits = true'):format(k), 2) end
      if not T.isTensor(l) or l:dim() ~= 2 then
         error(('ensemble: member %d\'s logits must be [N, classes], got %s'):format(k,
               T.isTensor(l) and tostring(l:size()) or keys.show(l)), 2)
      end
      scores[k] = float_scores(l, ('ensemble: member %d has'):format(k), 2):cpu():contiguous()
   end
   local n, classes = scores[1]:size(1), scores[1]:size(2)
   for k, l in ipairs(scores) do
      if l:size(1) ~= n or l:size(2) ~= classes then
         error(('ensemble: member %d scored %dx%d, member 1 %dx%d (the same images and classes are needed)'):format(
            k, l:size(1), l:size(2), n, classes), 2)
      end
   end
   if n == 0 then error('ensemble: the members scored no images', 2) end
   -- the labels are read through a pointer, one per image, as whole numbers: 1.7 was read as class 1, and refused
   -- later by the confusion matrix under its own name
   if not T.isTensor(y) or y:numel() ~= n then
      error(('ensemble: %d images but %s labels'):format(n, T.isTensor(y) and y:numel() or type(y)), 2)
   end
   local yd = y:cpu():double():contiguous()
   local yp = ffi.cast('double *', yd:data())
   for i = 0, n - 1 do
      if yp[i] % 1 ~= 0 then
         error(('ensemble: label %d is %s; labels are class ids, whole numbers'):format(i + 1, tostring(yp[i])), 2)
      end
   end
   -- the members' images and y, where ts.evaluate recorded them (the dataset's fingerprint and its labels' CRC)
   local first_data
   for k, ev in ipairs(evals) do
      if type(ev.data) == 'string' then
         first_data = first_data or {k = k, data = ev.data, labels_crc = ev.labels_crc}
         if ev.data ~= first_data.data then
            error(('ensemble: member %d evaluated other images than member %d (%s, not %s)'):format(k, first_data.k,
                  ev.data, first_data.data), 2)
         end
      end
   end
   if first_data and first_data.labels_crc and data.labelsCrc(y) ~= first_data.labels_crc then
      error(('ensemble: y are not the labels of the images the members evaluated (member %d: %s)'):format(
            first_data.k, first_data.data), 2)
   end
   local mean = mean_probability(n, classes)
   for k, l in ipairs(scores) do add_scores(mean, k, 0, n, ffi.cast('float *', l:data())) end
   local out = scores_result(mean, y, true, 0, 'ensemble', 2)
   if out.loss ~= out.loss then error('ensemble: a member\'s logits hold NaN or infinities', 2) end
   out.data, out.labels_crc = first_data and first_data.data, first_data and first_data.labels_crc
   return out
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

local function rng_tensor()
   local rng = ffi.new('uint64_t[4]')
   C.ts_rng_get_state(rng)
   local r = T.zeros({4}, 'int64')
   ffi.copy(r:data(), rng, 32)
   return r
end

-- r, if it is the generator's 32-byte state as rng_tensor makes it, else an error naming it as `what` (a checkpoint's
-- file and key): set_rng copied 32 bytes from whatever a checkpoint's tensor held, past the end of a shorter one
local function check_rng(r, what)
   if not (T.isTensor(r) and r:dtype() == 'int64' and r:numel() == 4 and r:isContiguous() and r:device() == 'cpu') then
      error(('%s must be the generator\'s state, 4 int64 values, got %s'):format(what, keys.show(r)), 0)
   end
   return r
end

local function set_rng(r) C.ts_rng_set_state(ffi.cast('uint64_t *', r:data())) end

-- state: everything that decides the run's future besides the tensors (epoch, history, best, the early-stop
-- counter, the schedule, the micro-batch size, an interrupted epoch's progress); epoch_rng: the generator
-- at the start of an interrupted epoch, from which its order and augmentation seed are drawn again
-- averages: {ema = average or nil, swa = average or nil}, kept as their tensors under 'ema.' and 'swa.' and their
-- counts of updates in the state
-- the model's name of each tensor the optimizer updates, in its state's order (optim.<i> in a checkpoint)
local function optimized_names(model, opt)
   local by_tensor = {}
   for _, pair in ipairs(model:stateDict()) do by_tensor[pair[2]] = pair[1] end
   local names = {}
   opt:each(function(_, p) names[#names + 1] = by_tensor[p] or '?' end)
   return names
end

local function save_checkpoint(path, model, opt, state, epoch_rng, averages)
   local tensors = {}
   for _, pair in ipairs(model:stateDict()) do tensors['model.' .. pair[1]] = pair[2] end
   for kind, avg in pairs(averages) do
      for _, p in ipairs(avg.pairs) do tensors[kind .. '.' .. p.name] = p.shadow end
      state[kind .. '_updates'] = avg.updates
   end
   local steps = {}
   for i, st in ipairs(opt.state) do
      for k, v in pairs(st) do
         if T.isTensor(v) then tensors[('optim.%d.%s'):format(i, k)] = v end
      end
      steps[i] = st.step or 0
   end
   tensors.rng = rng_tensor()
   tensors.epoch_rng = epoch_rng
   state.optim_steps = steps
   state.optim_params = optimized_names(model, opt)
   serialize.save(path, tensors, {state = json.encode(state)})
end

-- run's config.json as a table ({} when there is none): another JSON value (a damaged file) failed on an index
local function recorded_config(run)
   local conf = json.readFile(run .. '/config.json')
   if conf ~= nil and type(conf) ~= 'table' then
      error(('ts.train: %s/config.json: not a run\'s record (a JSON object), got %s'):format(run, keys.show(conf)), 0)
   end
   return conf or {}
end

-- A run directory is resumed only by the network it was started with: config.json's architecture (config is the
-- run's recorded_config; the printed network, every layer's shape) must be the model's; the training settings may
-- change (more epochs).
-- Otherwise a changed recipe would resume an old run under its name, or fail later on a tensor of another
-- size; the error names the first layer that differs.
local function check_same_network(run, config, model)
   local recorded = config.architecture
   if not recorded then return end
   if type(recorded) ~= 'string' then   -- (it failed in gmatch)
      error(('ts.train: %s/config.json: architecture must be the printed network, got %s'):format(run,
            keys.show(recorded)), 0)
   end
   -- the layers, without whether they are frozen (a transfer recipe unfreezes as it goes), and containers'
   -- headers without their count of parameters (it differs whenever a layer inside does, which is named then)
   local function layers(text)
      local out = {}
      for line in text:gmatch('[^\n]+') do
         out[#out + 1] = line:gsub(' frozen$', ''):gsub('%(  %[%d+ params%]$', '(')
      end
      return out
   end
   local now_lines, old_lines = layers(tostring(model)), layers(recorded)
   for k = 1, math.max(#now_lines, #old_lines) do
      if now_lines[k] ~= old_lines[k] then
         error(('ts.train: %s holds a run of another network (its config.json has %s where this model has %s): ' ..
                'give this training another run= directory, or remove that one to start it again'):format(
                run, (old_lines[k] or 'no more layers'):match('^%s*(.-)%s*$'),
                (now_lines[k] or 'no more layers'):match('^%s*(.-)%s*$')), 0)
      end
   end
end

-- A run directory is resumed only on the data it was started with: config.json's data (config's; each split's
-- Dataset:fingerprint) must be the data given now. Otherwise a run trained on GTSRB and resumed where GTSRB
-- is not found would go on, or be tested, on the generated signs, and its files would be overwritten with the
-- other data's numbers. Runs from before config.json kept the data are not checked.
local function check_same_data(run, config, fingerprints)
   local recorded = config.data
   if not recorded then return end
   data.checkFingerprints('ts.train: ' .. run, 'was started on', 'config.json', recorded, fingerprints,
                          'give it the data it was started with, or give this training another run= directory')
end

local function load_checkpoint(path, model, opt, device, averages)
   -- the weights with ts.load's checks (each present, of its shape and kind of number), the rest as read;
   -- called through pcall, ts.load's message carries no place in this file
   local ok, err, meta, tensors = pcall(serialize.load, path, model, {prefix = 'model.'})
   if not ok then error(err, 0) end
   -- a safetensors file that is no checkpoint (model.safetensors given as one, another tool's) failed inside
   local decoded, state = pcall(json.decode, meta.state)
   if not (decoded and type(state) == 'table' and type(state.optim_steps) == 'table') then
      error(('%s: its metadata holds no training state (not a checkpoint ts.train wrote)'):format(path), 0)
   end
   -- the optimizer's state is by position: a resume with a layer frozen or unfrozen gave one layer's momentum to
   -- another of its shape, or failed at its first step after the run's files were rewritten
   local recorded, now = state.optim_params, optimized_names(model, opt)
   if recorded then
      for k = 1, math.max(#recorded, #now) do
         if recorded[k] ~= now[k] then
            error(('%s: the optimizer state is for other trainable parameters (%d of them; %d now, the first that ' ..
                   'differs: %s in the checkpoint, %s now): a layer was frozen or unfrozen since; restore that, or ' ..
                   'start a new run'):format(path, #recorded, #now, tostring(recorded[k] or 'none'), tostring(now[k] or 'none')), 0)
         end
      end
   end
   for kind, avg in pairs(averages) do
      for _, p in ipairs(avg.pairs) do
         local t = tensors[kind .. '.' .. p.name]
         if not t then
            error(('%s: checkpoint lacks %s.%s (the run was started without %s: resume it without, or start a ' ..
                   'new run)'):format(path, kind, p.name, kind), 0)
         end
         p.shadow:copy(t)
      end
      avg.updates = state[kind .. '_updates'] or 0
   end
   -- each optimizer buffer (momentum, moments) has its parameter's shape: one of another went into the update as is
   local params = {}
   opt:each(function(_, p) params[#params + 1] = p end)
   for i, st in ipairs(opt.state) do
      for k, v in pairs(tensors) do
         local idx, field = k:match('^optim%.(%d+)%.(.+)$')
         if tonumber(idx) == i then
            if tostring(v:size()) ~= tostring(params[i]:size()) or v:dtype() ~= params[i]:dtype() then
               error(('%s: %s is %s %s, but its parameter is %s %s'):format(path, k, v:dtype(), tostring(v:size()),
                     params[i]:dtype(), tostring(params[i]:size())), 0)
            end
            st[field] = v:to(device)
         end
      end
      if state.optim_steps[i] and state.optim_steps[i] > 0 then st.step = state.optim_steps[i] end
   end
   set_rng(check_rng(tensors.rng, path .. ': rng'))
   if tensors.epoch_rng ~= nil then check_rng(tensors.epoch_rng, path .. ': epoch_rng') end
   return state, tensors.epoch_rng
end

-- ---- the run directory: one writer at a time, nothing left behind ----------------------------------------

local O_RDWR, O_CREAT, LOCK_EX, LOCK_NB, ESRCH = 2, 64, 2, 4, 3

local function errno_text() return ffi.string(C.strerror(ffi.errno())) end

-- Locks run/.lock for this process with flock (the kernel releases it when the process ends, kill -9
-- included) and writes the process id there, so that a second run on the same directory can say who holds
-- it instead of interleaving its metrics and checkpoints with the first's. Returns the release function.
local function lock_run(run)
   local path = run .. '/.lock'
   local fd = C.open(path, O_RDWR + O_CREAT, 420)
   if fd < 0 then error(('cannot write %s: %s'):format(path, errno_text()), 0) end
   if C.flock(fd, LOCK_EX + LOCK_NB) ~= 0 then
      C.close(fd)
      local holder = (read_file(path) or ''):match('%d+')
      error(('ts.train: the run %s is in use by %s (it holds %s): wait for it to end, or choose another run'):format(
         run, holder and 'process ' .. holder or 'another process', path), 0)
   end
   local pid = C.getpid() .. '\n'
   if C.ftruncate(fd, 0) ~= 0 or C.write(fd, pid, #pid) ~= #pid then
      local err = errno_text()
      C.close(fd)
      error(('cannot write %s: %s'):format(path, err), 0)
   end
   return function() C.close(fd) end
end

-- The temporary files that writes killed half-way left in the run (name.tmp<pid>, their process gone or
-- this one, which holds the run's lock); returns how many were removed.
local function remove_abandoned(run)
   local stale, me = {}, C.getpid()
   for _, name in ipairs(files.list(run) or {}) do
      local pid = tonumber(name:match('%.tmp(%d+)$'))
      if pid and (pid == me or (C.kill(pid, 0) ~= 0 and ffi.errno() == ESRCH)) then stale[#stale + 1] = name end
   end
   for _, name in ipairs(stale) do os.remove(run .. '/' .. name) end
   return #stale
end

-- ---- the options -----------------------------------------------------------------------------------------

local defaults = {epochs = 10, batch = 128, accumulate = 1, optimizer = 'sgd', lr = 0.05, momentum = 0.9,
                  nesterov = true, weight_decay = 5e-4, schedule = 'cosine', warmup = 0, label_smoothing = 0,
                  sampler = 'shuffle', resume = true, seed = 1, step_size = 10, gamma = 0.1, auto_microbatch = false,
                  precision = 'fp32', max_nonfinite = 0, clean_epochs = 0}
-- the keys without a default; anything else given to ts.train is a typo and refused
local optional = {model = 1, data = 1, augment = 1, preprocess = 1, class_weights = 1, clip = 1, early_stop = 1, run = 1,
                  note = 1, quiet = 1, param_groups = 1, on_epoch = 1, device = 1, workers = 1, ema = 1,
                  distill = 1, mix = 1, swa = 1}

local is_finite = T.isFinite

-- the numeric options' ranges: {key, lowest, whole number?, lowest excluded?}
local known_options = {}
for k in pairs(defaults) do known_options[k] = 1 end
for k in pairs(optional) do known_options[k] = 1 end
-- the numbers: {key, least, open (> least, not >=)}, and the counts {key, least, most}
local ranges = {{'lr', 0}, {'momentum', 0}, {'weight_decay', 0}, {'warmup', 0}, {'label_smoothing', 0},
                {'step_size', 0, true}, {'gamma', 0, true}, {'clip', 0, true}}
local counts = {{'epochs', 1, 2 ^ 31}, {'batch', 1, data.MAX_BATCH}, {'accumulate', 1, 2 ^ 24}, {'seed', 0, keys.MAX_SEED},
                {'max_nonfinite', 0}, {'early_stop', 1}, {'workers', 1, C.TS_LOADER_MAX_WORKERS},
                {'clean_epochs', 0, 2 ^ 31}}

-- swa = {start, lr, anneal} checked, as {start, lr, anneal, settings} (settings: what config.json records)
local function swa_settings(o, epochs)
   if type(o) ~= 'table' then error('ts.train: swa must be a table {start = epoch, lr = nil, anneal = 0}', 4) end
   for k in pairs(o) do
      if k ~= 'start' and k ~= 'lr' and k ~= 'anneal' and k ~= 'settings' then
         error(('ts.train: swa has no option %s (start, lr, anneal)'):format(tostring(k)), 4)
      end
   end
   local start, lr, anneal = o.start, o.lr, o.anneal or 0
   if not (is_finite(start) and start % 1 == 0 and start >= 1 and start <= epochs) then
      error(('ts.train: swa.start must be an epoch from 1 to epochs (%d), got %s'):format(epochs, tostring(start)), 4)
   end
   if lr ~= nil and not (is_finite(lr) and lr > 0) then
      error(('ts.train: swa.lr must be a learning rate > 0 (or nil: the schedule as it is), got %s'):format(tostring(lr)), 4)
   end
   if not (is_finite(anneal) and anneal >= 0) then
      error(('ts.train: swa.anneal must be a number of epochs >= 0, got %s'):format(tostring(anneal)), 4)
   end
   return {start = start, lr = lr, anneal = anneal, settings = {start = start, lr = lr, anneal = anneal}}
end

local optimizers = {sgd = optim.SGD, adam = optim.Adam, adamw = optim.AdamW}
local schedules = {cosine = true, onecycle = true, step = true, none = true}

local function check_options(cfg)
   for _, r in ipairs(ranges) do
      local key, lo, open = r[1], r[2], r[3]
      local v = cfg[key]
      if v ~= nil and (not is_finite(v) or v < lo or (open and v == lo)) then
         error(('ts.train: %s must be a finite number %s %g, got %s'):format(key, open and '>' or '>=', lo, keys.show(v)), 3)
      end
   end
   for _, r in ipairs(counts) do
      if cfg[r[1]] ~= nil then keys.count(cfg[r[1]], 'ts.train', r[1], r[2], r[3], 3) end
   end
   if cfg.label_smoothing >= 1 then error('ts.train: label_smoothing must be below 1, got ' .. cfg.label_smoothing, 3) end
   -- the options that were only checked where they are used, after the run directory had been written
   if cfg.warmup > cfg.epochs then
      error(('ts.train: warmup (%g epochs) is longer than the training (%d epochs)'):format(cfg.warmup, cfg.epochs), 3)
   end
   if cfg.clean_epochs > cfg.epochs then
      error(('ts.train: clean_epochs (%d) is more than the training\'s %d epochs'):format(cfg.clean_epochs, cfg.epochs), 3)
   end
   for _, key in ipairs({'nesterov', 'resume', 'quiet', 'auto_microbatch'}) do keys.flag(cfg[key], 'ts.train', key, 3) end
   -- (an unknown name was refused once the run directory had been made)
   local o = cfg.optimizer
   if not (optimizers[o] or (type(o) == 'table' and type(o.step) == 'function' and type(o.groups) == 'table')) then
      error(("ts.train: optimizer must be 'sgd', 'adam', 'adamw' or an optimizer (ts.optim.SGD(model, {...})), got %s"):format(
            keys.show(o)), 3)
   end
   if not schedules[cfg.schedule] then
      error(("ts.train: schedule must be 'cosine', 'onecycle', 'step' or 'none', got %s"):format(keys.show(cfg.schedule)), 3)
   end
   data.checkSampler(cfg.sampler, 'ts.train', 3)
   if cfg.precision ~= 'fp32' and cfg.precision ~= 'bf16' then
      error(("ts.train: precision must be 'fp32' or 'bf16', got %s"):format(tostring(cfg.precision)), 3)
   end
   data.checkDevice(cfg.device, 'ts.train', 3)
   -- the loader's check, before the run directory is made
   data.checkSettings(cfg.augment, 'augment', 'ts.train', 3)
   data.checkSettings(cfg.preprocess, 'preprocess', 'ts.train', 3)
   if cfg.on_epoch ~= nil and type(cfg.on_epoch) ~= 'function' then
      error('ts.train: on_epoch must be a function(epoch, model, optimizer), got ' .. type(cfg.on_epoch), 3)
   end
   if cfg.run ~= nil and (type(cfg.run) ~= 'string' or cfg.run == '') then
      error('ts.train: run must be a folder\'s path, got ' .. tostring(cfg.run), 3)
   end
   local w = cfg.class_weights
   if w ~= nil and w ~= 'balanced' then
      if not (T.isTensor(w) or type(w) == 'table') then
         error("ts.train: class_weights must be 'balanced', a tensor or a list of numbers, got " .. tostring(w), 3)
      end
      nn.CrossEntropyLoss.checkWeights(w, 'ts.train: class_weights', 3)
   end
   if cfg.ema ~= nil and not (is_finite(cfg.ema) and cfg.ema > 0 and cfg.ema < 1) then
      error('ts.train: ema must be a decay between 0 and 1 (0.999 is usual), got ' .. tostring(cfg.ema), 3)
   end
   if cfg.swa ~= nil then cfg.swa = swa_settings(cfg.swa, cfg.epochs) end
   if cfg.mix ~= nil and not (type(cfg.mix) == 'table' and cfg.mix.draw) then
      local ok, m = pcall(mix.new, cfg.mix)
      if not ok then error('ts.train: ' .. tostring(m):gsub('^[^:]*:%d+: ', ''), 3) end
      cfg.mix = m
   end
   if cfg.mix and cfg.distill then error('ts.train: mix and distill together are not supported (the teachers would see mixed images)', 3) end
   if type(cfg.data) ~= 'table' or not cfg.data.train then
      error('ts.train: data = {train = dataset, valid = dataset} is required', 3)
   end
   -- (a table that is no dataset failed inside, on a method it lacks)
   data.checkDataset(cfg.data.train, 'ts.train', 'data.train', 3)
   if cfg.data.valid then data.checkDataset(cfg.data.valid, 'ts.train', 'data.valid', 3) end
   if cfg.data.train:size() == 0 then error('ts.train: the training set has no images', 3) end
   if cfg.data.valid and cfg.data.valid:size() == 0 then error('ts.train: the validation set has no images', 3) end
   if cfg.early_stop and not cfg.data.valid then
      error('ts.train: early_stop needs a validation set (data.valid) to tell when the model stops improving', 3)
   end
   -- images of another size or channel count would fail inside a layer, after a whole epoch of training
   if cfg.data.valid and cfg.data.valid:imageShape() ~= cfg.data.train:imageShape() then
      error(('ts.train: the validation images %s are not of the training images\' size %s'):format(
            tostring(cfg.data.valid.x:size()), tostring(cfg.data.train.x:size())), 3)
   end
end

-- ---- averages of the weights: exponential (ema) and stochastic weight averaging (swa) ----------------------

-- An average keeps a shadow of each float tensor of the model's state (parameters, and batch norm's running
-- statistics), `updates` counting what it has taken in; training goes on with the live weights.
-- ema = d (Polyak averaging as in timm's ModelEma): after every update the shadow moves towards the live
-- weights, shadow <- decay shadow + (1 - decay) live, with decay = min(d, (1 + n) / (10 + n)) after n updates so
-- that the first updates are not tied to the initial weights; validation, the saved best model and the final
-- model are the shadow's.
-- swa: at the end of an epoch, shadow <- the mean of the n + 1 epochs' weights (n/(n+1) shadow + live/(n+1)).
local function average_new(model)
   local e = {updates = 0, pairs = {}}
   for _, pair in ipairs(model:stateDict()) do
      if pair[2]:dtype() == 'float32' then
         e.pairs[#e.pairs + 1] = {name = pair[1], live = pair[2], shadow = pair[2]:clone()}
      end
   end
   return e
end

local function ema_update(e, d)
   local decay = math.min(d, (1 + e.updates) / (10 + e.updates))
   e.updates = e.updates + 1
   for _, p in ipairs(e.pairs) do p.shadow:mul_(decay):axpy_(1 - decay, p.live) end
end

local function swa_update(e)
   local n = e.updates
   e.updates = n + 1
   for _, p in ipairs(e.pairs) do
      if n == 0 then p.shadow:copy(p.live) else p.shadow:mul_(n / (n + 1)):axpy_(1 / (n + 1), p.live) end
   end
end

-- runs fn() with the shadow weights in the model, then puts the live ones back (kept meanwhile in a spare
-- tensor, made at the first call: swa, which never validates its shadow during the training, needs none)
local function with_shadow(e, fn)
   for _, p in ipairs(e.pairs) do
      if p.spare then p.spare:copy(p.live) else p.spare = p.live:clone() end
      p.live:copy(p.shadow)
   end
   local ok, err = pcall(fn)
   for _, p in ipairs(e.pairs) do p.live:copy(p.spare) end
   if not ok then error(err, 0) end
end

-- ---- the loop --------------------------------------------------------------------------------------------

-- Running sums of a training loop, kept on the device so that a step never waits for the GPU: loss (the
-- sum over images of their loss), correct (right predictions) and last (the last micro-batch's mean loss).
-- They are read (:get(1), which waits) only when a progress line or the epoch's record needs them.
function M.sums(device)
   return {loss = T.zerosOn(device, {1}), correct = T.zerosOn(device, {1}), last = T.zerosOn(device, {1})}
end

-- A mixed batch's loss lam L(out, ya) + (1 - lam) L(out, yb) into sums.last and its gradient (returned):
-- the lighter label's part first, kept aside; the heavier label's call counts the right predictions
local function mixed_backward(crit, out, ya, yb, lam, sums)
   local light, heavy, w = yb, ya, 1 - lam
   if lam < 0.5 then light, heavy, w = ya, yb, lam end
   local g_light = crit:backwardInto(out, light, sums.last, nil):clone()
   local l_light = sums.last:clone()
   local g = crit:backwardInto(out, heavy, sums.last, sums.correct)
   g:mul_(1 - w):axpy_(w, g_light)
   sums.last:mul_(1 - w):axpy_(w, l_light)
   return g
end

-- Forward and backward of one batch in micro-batches of `micro` images, each gradient scaled by its share of
-- the update's `images` (the batch's size, or the sum of the sizes of the batches an update accumulates): the
-- update's gradient is the mean over its images, as one batch of them all would give. The batch's summed loss
-- and right predictions are added to sums. The labels y stay on the host: the loss checks them there and copies
-- them to the device. mixed: a ts.data.mix batch's {y = the partners' labels, lam} (x is then the mixed batch).
local function forward_backward(model, crit, x, y, micro, images, sums, mixed)
   local n = x:size(1)
   for s = 1, n, micro do
      local b = math.min(micro, n - s + 1)
      local xs, ys, y2 = x, y, mixed and mixed.y
      if b < n then xs, ys, y2 = x:narrow(1, s, b), y:narrow(1, s, b), y2 and y2:narrow(1, s, b) end
      local out = model:forward(xs)
      local g = mixed and mixed_backward(crit, out, ys, y2, mixed.lam, sums) or
                crit:backwardInto(out, ys, sums.last, sums.correct, xs)   -- xs: a distillation's teachers see it
      local share = b / images
      if share ~= 1 then g:mul_(share) end
      model:backward(xs, g)
      sums.loss:axpy_(b, sums.last)
   end
end

M.forwardBackward = forward_backward

-- The images of the update that the epoch's micro-batch `step` (from 1) belongs to: `accumulate` batches, fewer in
-- the epoch's last update, whose last batch holds what is left of the epoch's images. Each batch's gradient is
-- weighed by its share of them, so that accumulating k batches of B is one batch of kB to float rounding, the
-- epoch's last, shorter update included (a fixed 1/k would weigh that one's images more than the others').
local function update_images(step, batch, accumulate, epoch_images, micro_per_epoch)
   local first = step - (step - 1) % accumulate
   local last = math.min(first + accumulate - 1, micro_per_epoch)
   return math.min(last * batch, epoch_images) - (first - 1) * batch
end

-- fn(...) as a part of a training step on device. On the GPU it runs in strict mode (ts.cuda.strict): Lua
-- code in a layer or the update that computes on a host copy of a device tensor, a round trip that would
-- stall every step, fails naming its op. On the CPU nothing changes.
function M.inStep(device, fn, ...)
   if device ~= 'cuda' then
      fn(...)
      return
   end
   local was = cuda.strict(true)
   local ok, err = pcall(fn, ...)
   cuda.strict(was)
   if not ok then error(err, 0) end
end

local function update(opt, clip)
   if clip then opt:clipGradNorm(clip, {wait = false}) end
   opt:step()
end

local function build_model(spec)
   if type(spec) == 'table' and spec.forward then return nn.Module.check(spec, 'ts.train: model', 0), nil end
   if type(spec) ~= 'table' or not spec.name then error('ts.train: model must be a module or {name = builder, ...}', 0) end
   local builder = models.builder(spec.name)
   if not builder then
      error(('ts.train: no model builder ts.models.%s (a network of your own: ts.models.register)'):format(
            tostring(spec.name)), 0)
   end
   return builder(spec), spec
end

-- The optimizer (cfg.optimizer, or one made over cfg.param_groups or the model), made before the run directory is:
-- groups it refuses leave none made. Its errors are ts.train's, at the caller of ts.train (make_optimizer's caller's
-- caller). Every tensor it updates must be the model's: an optimizer or groups made for another model (another
-- instance of the same builder) trained that one, and this one came back as it was, without a word.
local function make_optimizer(cfg, model)
   local opt = cfg.optimizer
   if type(opt) ~= 'table' then
      local o = {lr = cfg.lr, weight_decay = cfg.weight_decay}
      if opt == 'sgd' then o.momentum, o.nesterov = cfg.momentum, cfg.nesterov and cfg.momentum > 0 end
      local ok, made = pcall(optimizers[opt], cfg.param_groups or model, o)
      if not ok then
         error((cfg.param_groups and 'ts.train: param_groups: ' or 'ts.train: ') .. tostring(made):gsub('^[^:]*:%d+: ', ''), 3)
      end
      opt = made
   end
   for i, name in ipairs(optimized_names(model, opt)) do
      if name == '?' then
         error(('ts.train: tensor %d that the %s updates is not the model\'s: it was made for another model, which the ' ..
                'training would update in this one\'s place'):format(i, type(cfg.optimizer) == 'table' and 'optimizer' or
                'param_groups'), 3)
      end
   end
   return opt
end

local function make_schedule(cfg, opt, updates_per_epoch)
   local total = cfg.epochs * updates_per_epoch
   if cfg.schedule == 'cosine' then
      return optim.schedule.cosine(opt, {total = total, warmup = math.min(math.floor(cfg.warmup * updates_per_epoch), total - 1)})
   elseif cfg.schedule == 'onecycle' then
      -- (the schedule's own error named a total the caller never gave, at a line of this file)
      if total < 2 then
         error(("ts.train: schedule 'onecycle' needs 2 updates or more, and %d epoch(s) of %d update(s) are %d: give " ..
                "more epochs, a smaller batch, or another schedule"):format(cfg.epochs, updates_per_epoch, total), 0)
      end
      return optim.schedule.onecycle(opt, {total = total})
   elseif cfg.schedule == 'step' then
      return optim.schedule.step(opt, {step_size = cfg.step_size * updates_per_epoch, gamma = cfg.gamma})
   end
   return nil   -- 'none' (check_options refused any other name)
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

-- The hyperparameters TensorBoard's HParams dashboard shows for a run: the settings that are single values
-- (numbers, strings, booleans), the model's name and whether augmentation was on
local function hparams_of(cfg)
   local out = {}
   for k, v in pairs(plain(cfg)) do
      if type(v) ~= 'table' and k ~= 'run' and k ~= 'quiet' then out[k] = v end
   end
   out.model = type(cfg.model) == 'table' and cfg.model.name or type(cfg.model) == 'string' and cfg.model or 'custom'
   out.augment = cfg.augment ~= nil
   return out
end

-- the first model tensor (parameter or buffer) holding a NaN or an infinity, or nil when all are finite: its
-- sum of squares, in double on the tensor's device, is finite exactly when every element is
local function nonfinite_tensor(model)
   for _, pair in ipairs(model:stateDict()) do
      if pair[2]:dtype() == 'float32' and not is_finite(C.ts_tensor_sumsq(pair[2]._c)) then return pair[1] end
   end
end

-- The run stops on a Ctrl-C (deferred while training): `where` it stopped, and how to resume.
local function interrupted(where, run)
   error(('ts.train: interrupted %s%s'):format(where, run and ('; the checkpoint is in %s: run the same command again ' ..
         'to resume there (resume = true, the default)'):format(run) or ' (no run directory: nothing was saved)'), 0)
end

-- The run stops on a non-finite loss: nothing of this epoch is saved, the last checkpoint and best model stay.
local function diverged(run, epoch, where, what, lr, completed)
   error(('ts.train: the loss became %s at epoch %d, %s (lr %.3g): training diverged and stopped. %s Lower the ' ..
          'learning rate, add warmup or clip, or let up to k such steps be skipped with max_nonfinite = k.'):format(
          what, epoch, where, lr, run and ('The checkpoint of epoch %d and the best model so far are kept in %s.'):format(
          completed, run) or 'Nothing was saved (no run directory).'), 0)
end

-- whether two ts.data.preprocess settings prepare an image alike (the means and deviations a run's config.json
-- recorded are equal up to their printed digits)
local function same_preprocess(a, b)
   local x, y = a.c, b.c
   if x.grayscale ~= y.grayscale or x.equalize ~= y.equalize or x.out_h ~= y.out_h or x.out_w ~= y.out_w or
      math.abs(x.clahe_tiles - y.clahe_tiles) > 0 or math.abs(x.clahe_clip - y.clahe_clip) > 1e-6 then
      return false
   end
   for i = 0, 2 do
      if math.abs(x.mean[i] - y.mean[i]) > 1e-6 or math.abs(x.std[i] - y.std[i]) > 1e-6 then return false end
   end
   return true
end

-- The criterion of distill = {teachers, weight, temperature} (nil without it): run directories are loaded
-- (ts.models.load) and must share the student's preprocessing, since the teachers see the student's batches.
-- cfg.distill gets the settings config.json records.
local function distillation(cfg, class_weights, device)
   local d = cfg.distill
   if d == nil then return nil end
   if type(d) ~= 'table' or type(d.teachers) ~= 'table' or #d.teachers == 0 then
      error('ts.train: distill must be {teachers = {run directories or modules}, weight = 0.5, temperature = 1}', 0)
   end
   for k in pairs(d) do
      if k ~= 'teachers' and k ~= 'weight' and k ~= 'temperature' and k ~= 'settings' then
         error(('ts.train: distill has no option %s (teachers, weight, temperature)'):format(tostring(k)), 0)
      end
   end
   local teachers, names, want = {}, {}, cfg.preprocess.settings
   for j, t in ipairs(d.teachers) do
      if type(t) == 'string' then
         local model, config = models.load(t)
         if not same_preprocess(data.preprocess(config.preprocess), cfg.preprocess) then
            error(('ts.train: distill: teacher %s was trained with the preprocessing %s, the student has %s: the ' ..
                   'teachers see the student\'s batches, so they must be the same'):format(t, json.encode(config.preprocess),
                   json.encode(want)), 0)
         end
         teachers[j], names[j] = model, t
      elseif type(t) == 'table' and t.forward then
         teachers[j], names[j] = t, 'module: ' .. tostring(t):match('^[^\n]*')
      else
         error(('ts.train: distill: teacher %d must be a run directory or a module, got %s'):format(j, type(t)), 0)
      end
   end
   -- on the training device before the first step: a step moves nothing there (on the GPU it may not)
   for _, t in ipairs(teachers) do t:to(device) end
   local crit = nn.DistillationLoss{teachers = teachers, weight = d.weight, temperature = d.temperature,
                                    class_weight = class_weights, label_smoothing = cfg.label_smoothing}
   cfg.distill = {teachers = d.teachers, weight = d.weight, temperature = d.temperature,
                  settings = {teachers = names, weight = crit.weight, temperature = crit.temperature}}
   return crit
end

-- the model's validation loss, accuracy and macro-F1 into record's valid_* fields
local function validate_into(record, model, cfg, device)
   local v = M.evaluate(model, cfg.data.valid, {preprocess = cfg.preprocess, device = device,
                                                auto_microbatch = cfg.auto_microbatch})
   record.valid_loss, record.valid_accuracy, record.valid_macro_f1 = v.loss, v.accuracy, v.summary.macro.f1
end

-- The end of stochastic weight averaging: the average into the model, its batch norm statistics taken over the
-- training images (each epoch's running statistics belong to that epoch's weights; their mean fits none), then
-- validated and saved as swa.safetensors. Returns its record {first_epoch, last_epoch, epochs, valid_*}, or nil
-- when the training stopped before the first epoch averaged (said so).
local function swa_finish(cfg, model, swa, st, device)
   if swa.updates == 0 then
      if not cfg.quiet then
         print(('swa: the training stopped after epoch %d, before swa.start (%d): no average; the model is the ' ..
                'run\'s as without swa'):format(st.epoch, cfg.swa.start))
      end
      return nil
   end
   for _, p in ipairs(swa.pairs) do p.live:copy(p.shadow) end
   bnstats.update(model, cfg.data.train, {preprocess = cfg.preprocess, batch = cfg.batch, device = device})
   local rec = {first_epoch = cfg.swa.start, last_epoch = cfg.swa.start + swa.updates - 1, epochs = swa.updates}
   if cfg.data.valid then validate_into(rec, model, cfg, device) end
   if cfg.run then
      local meta = {epochs = ('%d-%d'):format(rec.first_epoch, rec.last_epoch)}
      if rec.valid_accuracy then meta.valid_accuracy = ('%.6f'):format(rec.valid_accuracy) end
      serialize.save(cfg.run .. '/swa.safetensors', model, meta)
   end
   if not cfg.quiet then
      print(('swa: the mean of the weights of epochs %d-%d%s'):format(rec.first_epoch, rec.last_epoch,
            rec.valid_accuracy and ('  valid loss %.4f  accuracy %.4f  macro-F1 %.4f (the epoch validation chose: %.4f)'):format(
               rec.valid_loss, rec.valid_accuracy, rec.valid_macro_f1, st.best.accuracy) or ''))
   end
   return rec
end

local function train(cfg, spec, model, opt)
   local train_ds, valid_ds = cfg.data.train, cfg.data.valid
   local device = cfg.device or cuda.device()
   model:to(device)
   model:setPrecision(cfg.precision)
   model.needsGradInput = false
   if not cfg.preprocess then
      local mean, std = train_ds:channelStats()
      cfg.preprocess = data.preprocess{mean = mean, std = std}
   end
   model.preprocess = cfg.preprocess   -- what ts.evaluate feeds the model when given no preprocess
   local class_weights = cfg.class_weights
   if class_weights == 'balanced' then class_weights = train_ds:classWeights() end
   local crit = distillation(cfg, class_weights, device) or
                nn.CrossEntropyLoss{weight = class_weights, label_smoothing = cfg.label_smoothing}
   -- on the GPU the host's cores are free to prepare batches; on the CPU the kernels use them
   local workers = cfg.workers or (device == 'cuda' and math.max(1, math.min(C.ts_get_threads() - 1, 16)) or 1)
   -- the training images as the epoch takes them: augmented, but in the last clean_epochs as they are
   local function is_clean(epoch) return epoch > cfg.epochs - cfg.clean_epochs end
   local function loader_for(epoch)
      local clean = is_clean(epoch)
      return data.Loader(train_ds, {batch = cfg.batch, augment = not clean and cfg.augment or nil,
                                    preprocess = cfg.preprocess, sampler = cfg.sampler, workers = workers,
                                    device = device}), clean
   end
   local loader, clean = loader_for(1)
   local epoch_images = loader:epochSize()
   local micro_per_epoch = math.ceil(epoch_images / cfg.batch)
   if micro_per_epoch == 0 then error('ts.train: the sampler gives no images for an epoch', 0) end
   local updates_per_epoch = math.ceil(micro_per_epoch / cfg.accumulate)
   local sched = make_schedule(cfg, opt, updates_per_epoch)
   local ema = cfg.ema and average_new(model)
   local swa = cfg.swa and average_new(model)
   if swa and cfg.swa.lr then
      -- its rate is a share of the first group's: of an lr of 0 an infinite one, which the schedule refuses unnamed
      if not (opt.groups[1].initial_lr > 0) then
         error(('ts.train: swa.lr = %g is a rate to move to, and the first parameter group\'s lr is 0'):format(cfg.swa.lr), 0)
      end
      sched = optim.schedule.swa(opt, {base = sched, start = (cfg.swa.start - 1) * updates_per_epoch,
                                       anneal = math.floor(cfg.swa.anneal * updates_per_epoch + 0.5),
                                       factor = cfg.swa.lr / opt.groups[1].initial_lr})
   end
   local averages = {ema = ema, swa = swa}

   local run = cfg.run
   -- the state a checkpoint carries; partial: the progress of an epoch interrupted in its middle
   local st = {epoch = 0, history = {}, best = {accuracy = -1, epoch = 0}, elapsed = 0, bad_epochs = 0,
               micro_batch = cfg.batch, nonfinite_steps = 0}
   local epoch_rng, tb, fingerprints
   if run then
      local removed = remove_abandoned(run)
      if removed > 0 and not cfg.quiet then
         print(('%s: removed %d temporary file(s) left by writes that were killed'):format(run, removed))
      end
      local ckpt = run .. '/checkpoint.safetensors'
      fingerprints = data.fingerprints(cfg.data, {'train', 'valid'})
      -- (read_file took a checkpoint it could not read, a folder, for none: the run started again over its files)
      if cfg.resume and files.exists(ckpt) then
         local config = recorded_config(run)   -- (read once for both checks)
         check_same_network(run, config, model)
         check_same_data(run, config, fingerprints)
         st, epoch_rng = load_checkpoint(ckpt, model, opt, device, averages)
         if st.partial and not epoch_rng then error(ckpt .. ': an interrupted epoch without its epoch_rng', 0) end
         st.bad_epochs, st.micro_batch, st.nonfinite_steps = st.bad_epochs or 0, st.micro_batch or cfg.batch,
                                                            st.nonfinite_steps or 0
         if sched then
            sched.count = st.schedule_count
            sched:apply()
         end
         -- fewer epochs than the run has trained (or begun): none ran, and it came back with more than asked for
         local least = st.partial and st.epoch + 1 or st.epoch
         if cfg.epochs < least then
            error(('ts.train: %s has trained %d epochs%s, more than epochs = %d: give epochs = %d or more to resume ' ..
                   'it, or another run= directory'):format(run, st.epoch, st.partial and
                   (' and part of epoch %d'):format(st.epoch + 1) or '', cfg.epochs, least), 0)
         end
         if not cfg.quiet then
            print(st.partial and ('resuming %s in epoch %d after step %d'):format(run, st.epoch + 1, st.partial.step)
                  or ('resuming %s after epoch %d'):format(run, st.epoch))
         end
      end
      -- metrics.jsonl holds exactly the checkpoint's epochs: a kill between the two writes leaves no extra record
      local lines = {}
      for _, record in ipairs(st.history) do lines[#lines + 1] = json.encode(record) .. '\n' end
      write_file(run .. '/metrics.jsonl', table.concat(lines))
      -- TensorBoard: a fresh event file holding the same epochs (an earlier one may hold epochs the checkpoint
      -- does not), with the hyperparameters
      for _, old in ipairs(tensorboard.files(run)) do os.remove(old) end
      tb = tensorboard.writer(run)
      tb:hparams(hparams_of(cfg), {'accuracy/valid', 'loss/valid', 'accuracy/train', 'loss/train'})
      for _, record in ipairs(st.history) do tb:epoch(record) end
   end
   -- config.json, written with the first checkpoint: a run that fails before it (a resume refused by its first
   -- step, class weights that do not fit the model) leaves the record of the run as it was
   local config_written = false
   local function write_config()
      if config_written or not run then return end
      config_written = true
      local conf = plain(cfg)
      conf.model = spec or {module = tostring(model):match('^[^\n]*')}
      conf.model_source = spec and models.source(spec.name)   -- a registered builder's file
      conf.parameters = model:numParameters()
      -- keyed by strings, so that JSON writes an object whatever the ids (names for 1..n alone would be an array)
      conf.class_names = {}
      for id, name in pairs(train_ds.classNames) do conf.class_names[tostring(id)] = name end
      conf.preprocess = cfg.preprocess.settings
      conf.architecture = tostring(model)
      conf.data = fingerprints
      -- what else the bits depend on (threads, CPU path, processor, code), as the process that writes this found it
      conf.machine = machine.describe(device)
      conf.device = conf.machine.device   -- 'cpu' or the GPU's name
      write_file(run .. '/config.json', json.encode(conf))
   end

   local function checkpoint(partial, rng_at_start)
      write_config()
      st.partial = partial
      st.schedule_count = sched and sched.count or 0
      save_checkpoint(run .. '/checkpoint.safetensors', model, opt, st, rng_at_start, averages)
   end

   -- a step's loss is read on the host to catch a divergence before its update: free on the CPU; on the GPU
   -- (a wait per step) only when steps may be skipped, else the running sums are checked when they are read
   local check_each_step = device ~= 'cuda' or cfg.max_nonfinite > 0
   -- a run early stopping ended stays ended (the same command again trained one more epoch each time), unless it is
   -- given more patience; one trained without early stopping goes on whatever its count of bad epochs
   local last_epoch = cfg.epochs
   if st.early_stopped and cfg.early_stop and st.bad_epochs >= cfg.early_stop then
      last_epoch = st.epoch
      if not cfg.quiet then print(('early stop: the run had stopped after epoch %d'):format(st.epoch)) end
   end
   for epoch = st.epoch + 1, last_epoch do
      if cfg.on_epoch then cfg.on_epoch(epoch, model, opt) end
      model:training()
      local partial = st.partial
      st.partial = nil
      -- an interrupted epoch draws its order and seed again from the generator it started with, then goes on
      -- with the generator as it was when it stopped
      local now_rng = partial and rng_tensor()
      if partial then set_rng(epoch_rng) end
      local epoch_start_rng = rng_tensor()
      if not clean and is_clean(epoch) and (cfg.augment or cfg.mix) then
         loader:close()
         loader, clean = loader_for(epoch)
         if not cfg.quiet then print(('epoch %d: the training images without augmentation or mixing from here on'):format(epoch)) end
      end
      local epoch_batches = loader:epoch(partial and partial.step + 1 or 1)
      -- the updates, the schedule and each batch's share of its update are counted from the epoch's images
      if loader.epoch_images ~= epoch_images then
         error(('ts.train: the sampler gave %d images for epoch %d and %d before: every epoch must have as many (the ' ..
                'updates, the schedule and the gradient accumulation are counted from them)'):format(loader.epoch_images,
                epoch, epoch_images), 0)
      end
      -- the loader's next batch; with auto_microbatch, one it could not build or finish on the device for want of
      -- memory is built again (the same images and draws) once the model's memory is released
      local function batches()
         local ok, x, y = pcall(epoch_batches)
         if ok then return x, y end
         if not (cfg.auto_microbatch and nn.Module.isOutOfMemory(x)) then error(x, 0) end
         release_memory(model, crit)
         if not cfg.quiet then print(('out of memory in the loader: batch built again (%s)'):format(x:match('^[^\n]*'))) end
         loader:retry()
         return epoch_batches()
      end
      if partial then set_rng(now_rng) end
      local t0, shown = now() - (partial and partial.seconds or 0), now()
      local seen, skipped = partial and partial.seen or 0, partial and partial.skipped or 0
      local epoch_sums, batch_sums = M.sums(device), M.sums(device)
      if partial then
         epoch_sums.loss:fill(partial.loss)
         epoch_sums.correct:fill(partial.correct)
      end
      local step, checked, skip_update = partial and partial.step or 0, partial and partial.step or 0, false
      opt:zeroGrad()
      for x, y in batches do
         step = step + 1
         -- the images come on the device from the loader, the labels stay on the host (the loss moves them)
         local ok, err
         local xin, mixed = x, nil
         local d = cfg.mix and not clean and cfg.mix:draw(x:size(3), x:size(4))
         if d then
            local y2, lam
            xin, y2, lam = cfg.mix:apply(x, y, d)
            mixed = {y = y2, lam = lam}
         end
         -- a step that may be redone in smaller micro-batches, inside an update that has gathered gradients
         -- already (accumulate > 1): those are kept aside, so that the redo starts from them, not from zero
         -- (a copy that does not fit itself leaves the old way: the redo starts from zero, said so)
         local before
         if cfg.auto_microbatch and (step - 1) % cfg.accumulate ~= 0 then
            local copied, c = pcall(copy_grads, opt)
            if copied then before = c
            elseif not nn.Module.isOutOfMemory(c) then error(c, 0)
            else
               release_memory(model, crit)   -- the part copied
               if not cfg.quiet then
                  print(('step %d: no room to keep the update\'s gradients aside; a redo would lose them'):format(step))
               end
            end
         end
         while true do
            batch_sums.loss:zero()
            batch_sums.correct:zero()
            ok, err = pcall(M.inStep, device, forward_backward, model, crit, xin, y, st.micro_batch,
                            update_images(step, cfg.batch, cfg.accumulate, epoch_images, micro_per_epoch),
                            batch_sums, mixed)
            if ok then break end
            if not (cfg.auto_microbatch and nn.Module.isOutOfMemory(err) and st.micro_batch > 1) then error(err, 0) end
            st.micro_batch = math.ceil(st.micro_batch / 2)
            if before then copy_grads(opt, before) else opt:zeroGrad() end
            release_memory(model, crit)
            if not cfg.quiet then
               print(('out of memory at batch %d: continuing in micro-batches of %d (%s)'):format(cfg.batch,
                     st.micro_batch, err:match('^[^:]*')))
            end
         end
         if before then for _, g in ipairs(before) do g:free() end end
         local finite = true
         if check_each_step then
            local l = batch_sums.loss:get(1)
            finite = is_finite(l)
            if not finite then
               st.nonfinite_steps = st.nonfinite_steps + 1
               if st.nonfinite_steps > cfg.max_nonfinite then
                  diverged(run, epoch, 'step ' .. step, tostring(l / x:size(1)), opt:lr(), st.epoch)
               end
               skip_update, skipped = true, skipped + x:size(1)
               if not cfg.quiet then
                  print(('epoch %d step %d: non-finite loss, update skipped (%d of %d allowed)'):format(epoch, step,
                        st.nonfinite_steps, cfg.max_nonfinite))
               end
            end
         end
         if finite then
            epoch_sums.loss:axpy_(1, batch_sums.loss)
            epoch_sums.correct:axpy_(1, batch_sums.correct)
         end
         seen = seen + x:size(1)
         if step % cfg.accumulate == 0 or step == micro_per_epoch then
            if not skip_update then
               M.inStep(device, update, opt, cfg.clip)
               if ema then ema_update(ema, cfg.ema) end
            end
            opt:zeroGrad()
            skip_update = false
            if sched then sched:step() end
            -- Ctrl-C (deferred while training): the update is complete, so the epoch can stop here and resume
            if C.ts_interrupt_pending() > 0 then
               if run then
                  checkpoint({step = step, seen = seen, skipped = skipped, seconds = now() - t0,
                              loss = epoch_sums.loss:get(1), correct = epoch_sums.correct:get(1)}, epoch_start_rng)
               end
               interrupted(('at epoch %d, step %d of %d'):format(epoch, step, micro_per_epoch), run)
            end
         end
         -- a progress line reads the sums back (waiting for the GPU): every 50 steps, or 4 times a second on a terminal
         if not cfg.quiet and (step % 50 == 0 or (tty and now() - shown > 0.25)) then
            local loss_sum = epoch_sums.loss:get(1)
            if not check_each_step and not is_finite(loss_sum) then
               diverged(run, epoch, ('between step %d and %d'):format(checked + 1, step), tostring(loss_sum), opt:lr(),
                        st.epoch)
            end
            checked = step
            shown = now()
            local rate = seen / (shown - t0)
            local eta = (micro_per_epoch - step) * cfg.batch / rate +
                        (cfg.epochs - epoch) * micro_per_epoch * cfg.batch / rate
            progress(cfg, epoch, step, micro_per_epoch, loss_sum / math.max(seen - skipped, 1),
                     epoch_sums.correct:get(1) / math.max(seen - skipped, 1), rate, eta, false)
         end
      end
      local train_time = now() - t0
      st.elapsed = st.elapsed + train_time   -- an interrupted epoch's earlier part included: it was never added
      local counted = math.max(seen - skipped, 1)
      local record = {epoch = epoch, train_loss = epoch_sums.loss:get(1) / counted,
                      train_accuracy = epoch_sums.correct:get(1) / counted, lr = opt:lr(), seconds = train_time,
                      images_per_second = seen / train_time}
      if not is_finite(record.train_loss) then
         diverged(run, epoch, ('between step %d and %d'):format(checked + 1, step), tostring(record.train_loss), opt:lr(),
                  st.epoch)
      end
      local bad = nonfinite_tensor(model)
      if bad then
         error(('ts.train: %s holds NaN or infinite values after epoch %d (lr %.3g): training diverged and stopped; ' ..
                'the last checkpoint and best model are kept'):format(bad, epoch, opt:lr()), 0)
      end
      if swa and epoch >= cfg.swa.start then swa_update(swa) end
      if skipped > 0 then record.skipped_images = skipped end
      if st.micro_batch < cfg.batch then record.micro_batch = st.micro_batch end
      if device == 'cuda' then record.cuda_peak_bytes = cuda.memory().peak end
      if valid_ds then
         local function validate() validate_into(record, model, cfg, device) end
         if ema then with_shadow(ema, validate) else validate() end
      end
      progress(cfg, epoch, micro_per_epoch, micro_per_epoch, record.train_loss, record.train_accuracy,
               record.images_per_second, (cfg.epochs - epoch) * train_time, true)
      if not cfg.quiet and valid_ds then
         print(('  valid loss %.4f  accuracy %.4f  macro-F1 %.4f  (lr %.3g, %.0fs)'):format(record.valid_loss,
               record.valid_accuracy, record.valid_macro_f1, record.lr, train_time))
      end
      st.history[#st.history + 1] = record
      st.epoch = epoch
      -- without a validation set nothing chooses among the epochs: the model is the one the training has reached
      local improved = not valid_ds or record.valid_accuracy > st.best.accuracy
      if improved then
         st.best = {accuracy = record.valid_accuracy, epoch = epoch}
         st.bad_epochs = 0
      else
         st.bad_epochs = st.bad_epochs + 1
      end
      local stop = cfg.early_stop and st.bad_epochs >= cfg.early_stop
      st.early_stopped = stop or nil   -- (in the checkpoint: a resume knows the run ended so)
      if run then
         if improved then
            local function save() serialize.save(run .. '/model.safetensors', model, {epoch = tostring(epoch)}) end
            if ema then with_shadow(ema, save) else save() end
         end
         checkpoint(nil, nil)
         files.appendFile(run .. '/metrics.jsonl', json.encode(record) .. '\n')
         tb:epoch(record)
      end
      if stop then
         if not cfg.quiet then print(('early stop: no improvement for %d epochs'):format(st.bad_epochs)) end
         break
      end
      if C.ts_interrupt_pending() > 0 then interrupted(('after epoch %d'):format(epoch), run) end
   end
   loader:close()
   -- with swa the model is the average (model.safetensors keeps the epoch validation chose)
   local swa_record = swa and swa_finish(cfg, model, swa, st, device)
   if not swa_record then
      if run and valid_ds and st.best.epoch > 0 then
         serialize.load(run .. '/model.safetensors', model)   -- the model chosen on validation
      elseif ema then
         for _, p in ipairs(ema.pairs) do p.live:copy(p.shadow) end   -- no choice made: the average is the model
      end
   end
   if tb then
      tb:sessionEnd(true)
      tb:close()
   end
   return {model = model, history = st.history, best = st.best, run = run, preprocess = cfg.preprocess,
           train_seconds = st.elapsed, config = cfg, micro_batch = st.micro_batch, device = device, swa = swa_record}
end

function M.train(user)
   keys.check('ts.train', user, known_options, 2)   -- (ts.train(nil) failed inside pairs)
   local cfg = {}
   for k, v in pairs(defaults) do cfg[k] = v end
   for k, v in pairs(user) do cfg[k] = v end
   check_options(cfg)
   C.ts_manual_seed(cfg.seed)
   local model, spec = build_model(cfg.model)
   local opt = make_optimizer(cfg, model)
   local release = function() end
   if cfg.run then
      -- (its error pointed at this line)
      local ok, err = pcall(files.mkdirs, cfg.run)
      if not ok then error('ts.train: ' .. err, 2) end
      release = lock_run(cfg.run)
   end
   -- Ctrl-C finishes the current update, then the loop checkpoints and stops; a second Ctrl-C exits at once
   C.ts_interrupt_defer(1)
   local ok, result = pcall(train, cfg, spec, model, opt)
   C.ts_interrupt_defer(0)
   release()
   if not ok then error(result, 0) end
   return result
end

return M
