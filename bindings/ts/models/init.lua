-- ts.models: network definitions as ordinary nn containers, and the builders scripts register.
local nn = require('ts.nn')
local files = require('ts.files')
local json = require('ts.json')
local serialize = require('ts.serialize')
local root = require('ts.ffi').root
local options = require('ts.models.options')
local keys = require('ts.keys')

local models = {}

-- The reference network of the benchmarks (675,339 parameters for 43 classes, 32x32 input):
-- conv stages of widths {32, 64, 128} (3x3 without bias, BN, ReLU; two convs in the first two stages),
-- each followed by a 2x2 max-pool, then Flatten, Dropout, Linear(2048, 256), ReLU, Linear(256, classes).
-- opts: classes (43), channels (3 input channels), widths, hidden (256), dropout (0.5),
-- stage3 (convolutions in the third stage, 1), convs ({2, 2, stage3}: convolutions in each of the three stages,
-- a deeper network at the same widths), stn (a spatial transformer in front: models.localization's
-- network predicts an affine warp of the input, which the rest then sees; false), multiscale (false: true
-- feeds the classifier the first stage's features too, as Sermanet & LeCun's multi-scale network does: the
-- pooled 16x16 maps pooled again by 4 to 4x4, 16 w1 features joined to the last stage's 16 w3, so the
-- classifier sees the coarse layout and the fine shapes; 131,072 more weights in the first Linear), fine (nil: the
-- third stage pooled to 4x4 as the others are; k: its 8x8 maps kept whole and brought to k channels by a 1x1
-- convolution with BN and ReLU, so that the classifier sees 64 places of k features where a 2x2 max-pool would
-- have kept the largest of each window: the digits of the speed limits and the small symbols of the "end of"
-- signs live at that scale; with k = w3 / 4 the first Linear keeps its size), gap (false: true averages the
-- third stage's 8x8 maps over all their places, global average pooling, so that the classifier sees w3 features
-- that say what is there and not where: fine's 64 places overfitted to where details lie in the training tracks,
-- and 16 places may too; the first Linear shrinks from 16 w3 to w3 inputs).
local REFCNN_OPTIONS = {classes = 1, channels = 1, widths = 1, hidden = 1, dropout = 1, stage3 = 1, convs = 1, stn = 1,
                        multiscale = 1, fine = 1, gap = 1}
-- what: the builder called, which its errors name (baseline's were refcnn's, a function the caller had not called)
local function refcnn(what, opts)
   opts = options.check(what, opts, REFCNN_OPTIONS, {'classes', 'channels', 'hidden', 'fine', 'stage3'})
   what = 'ts.models.' .. what
   if opts.widths ~= nil then
      local w = opts.widths
      local ok = type(w) == 'table' and #w == 3
      for i = 1, 3 do ok = ok and type(w[i]) == 'number' and w[i] % 1 == 0 and w[i] >= 1 end
      -- keys.show quotes strings: widths {"48", "96", "192"} from a config.json read as {48, 96, 192}, which looks right
      if not ok then
         error(('%s: widths must be three whole numbers >= 1, one per stage, got %s'):format(what, keys.show(w)), 0)
      end
   end
   if opts.dropout ~= nil and not (type(opts.dropout) == 'number' and opts.dropout >= 0 and opts.dropout < 1) then
      error(('%s: dropout must be in [0, 1), got %s'):format(what, keys.show(opts.dropout)), 0)
   end
   -- the switches are true or false: any other value was true, so multiscale = "false" or stn = 0 (a hand-edited
   -- config.json, a value from the command line) built the network they turn on, and its weights then did not fit
   for _, k in ipairs({'stn', 'multiscale', 'gap'}) do keys.flag(opts[k], what, k, 0) end
   local classes, cin = opts.classes or 43, opts.channels or 3
   local w, hidden = opts.widths or {32, 64, 128}, opts.hidden or 256
   local net = nn.Sequential()
   if opts.stn then net:add(nn.SpatialTransformer(models.localization(cin)), 'stn') end
   local function block(into, a, b)
      into:add(nn.Conv2d(a, b, 3, {padding = 1, bias = false}))
      into:add(nn.BatchNorm2d(b))
      into:add(nn.ReLU())
   end
   if opts.convs and opts.stage3 then error(what .. ': convs and stage3 both set the third stage; give one', 0) end
   local convs = opts.convs or {2, 2, opts.stage3 or 1}
   if type(convs) ~= 'table' or #convs ~= 3 then error(what .. ': convs must be three counts, one per stage', 0) end
   for _, n in ipairs(convs) do
      if type(n) ~= 'number' or n % 1 ~= 0 or n < 1 or n > 64 then
         error(('%s: convs must be whole numbers from 1 to 64, got %s'):format(what, keys.show(n)), 0)
      end
   end
   local function stage(into, a, b, n)
      block(into, a, b)
      for _ = 2, n do block(into, b, b) end
   end
   stage(net, cin, w[1], convs[1])
   net:add(nn.MaxPool2d(2))
   -- stages 2 and 3: [N, w1, 16, 16] -> [N, 16 w3]
   local deep = opts.multiscale and nn.Sequential() or net
   stage(deep, w[1], w[2], convs[2])
   deep:add(nn.MaxPool2d(2))
   stage(deep, w[2], w[3], convs[3])
   if opts.fine and opts.gap then error(what .. ': fine and gap are two ways to end the third stage; give one', 0) end
   if opts.fine then
      deep:add(nn.Conv2d(w[3], opts.fine, 1, {bias = false}))
      deep:add(nn.BatchNorm2d(opts.fine))
      deep:add(nn.ReLU())
   elseif opts.gap then
      deep:add(nn.GlobalAvgPool2d())
   else
      deep:add(nn.MaxPool2d(2))
   end
   deep:add(nn.Flatten())
   local features = opts.fine and 64 * opts.fine or opts.gap and w[3] or 16 * w[3]
   if opts.multiscale then
      net:add(nn.Concat(2, deep, nn.Sequential(nn.MaxPool2d(4), nn.Flatten())), 'scales')
      features = features + 16 * w[1]
   end
   net:add(nn.Dropout(opts.dropout or 0.5))
   net:add(nn.Linear(features, hidden))
   net:add(nn.ReLU())
   net:add(nn.Linear(hidden, classes))
   return net
end
function models.refcnn(opts) return refcnn('refcnn', opts) end

-- The spatial transformer's localization network for 32x32 inputs (in the manner of Arcos-Garcia et al.
-- 2018, smaller): 2x2 max-pool to 16x16, conv 5x5 to 16 channels, ReLU, pool, conv 5x5 to 32, ReLU, pool to
-- 4x4, Linear(512, 64), ReLU, Linear(64, 6) starting at the identity warp; 47,270 parameters for 3 channels.
function models.localization(channels)
   keys.count(channels, 'ts.models.localization(channels)', 'channels', 1, nil, 2)   -- (nil failed in Conv2d's arithmetic)
   return nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(channels, 16, 5, {padding = 2}), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 5, {padding = 2}), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(512, 64), nn.ReLU(), nn.SpatialTransformer.identity(nn.Linear(64, 6)))
end

-- The custom CNN of experiments/baseline.lua: the reference network with two convolutions in its third
-- stage (823,051 parameters for 43 classes; the main job's recipe, ts.experiment.baseline, takes it with
-- widths {48, 96, 192}: 1,443,195). Same options as refcnn.
function models.baseline(opts)
   local o = {}
   -- checked as its own: baseline(5) failed in pairs
   for k, v in pairs(options.check('baseline', opts, REFCNN_OPTIONS)) do o[k] = v end
   if not o.convs then o.stage3 = o.stage3 or 2 end
   return refcnn('baseline', o)
end

-- the networks a spec ({name = ...}) can name: these and the registered ones, not ts.models' other functions (a spec
-- named 'load' or 'source' called them)
local builtin = {refcnn = true, baseline = true}
for _, family in ipairs({require('ts.models.resnet'), require('ts.models.mobilenet')}) do
   for name, builder in pairs(family) do models[name], builtin[name] = builder, true end
end
local pretrained = require('ts.models.pretrained')
function models.pretrained(name, opts)
   local m = pretrained.pretrained(models, name, opts)   -- not a tail call: its errors count this frame
   return m
end
models.catalog = pretrained.catalog

-- ---- builders registered by scripts ----------------------------------------------------------------------
-- ts.models.register(name, builder): an experiment's own network, which ts.train{model = {name = name, ...}}
-- then builds like the ones above. ts.train records in config.json where the builder came from (model_source:
-- its file, and the script that trained), so that ts.models.load, and with it scripts/predict.lua, can run
-- that file again to rebuild the model in another process. The builder must therefore live in a file of its
-- own whose running only registers (experiments/models/*.lua): running the training script again would train.
local registered = {}   -- name -> {file, script}

-- a path as config.json keeps it: relative to the tshost root when inside it (the run survives the checkout
-- moving), else absolute
local function recorded(path)
   local abs, top = files.realpath(path), files.realpath(root)
   if not abs then return path end
   if top and abs:sub(1, #top + 1) == top .. '/' then return abs:sub(#top + 2) end
   return abs
end

local function resolved(path) return path:sub(1, 1) == '/' and path or root .. '/' .. path end

function models.register(name, builder)
   if type(name) ~= 'string' or type(builder) ~= 'function' then
      error('ts.models.register(name, builder): a name and a function', 2)
   end
   if models[name] ~= nil and not registered[name] then error('ts.models.register: ts.models.' .. name .. ' exists already', 2) end
   local file = debug.getinfo(builder, 'S').source:match('^@(.+)$')
   local script = arg and arg[0]
   if not file or (script and files.realpath(script) == files.realpath(file)) then
      error(('ts.models.register: the builder %s is defined in %s; define it in a file of its own that registers it ' ..
             '(experiments/models/*.lua), which ts.models.load can run again to rebuild the model'):format(
             name, file or 'code that is not a file'), 2)
   end
   registered[name] = {file = recorded(file), script = script and recorded(script)}
   models[name] = builder
end

-- the builder a spec's name stands for, or nil
function models.builder(name)
   return type(name) == 'string' and (builtin[name] or registered[name]) and models[name] or nil
end

-- where a registered builder came from ({file, script}, as config.json records it), or nil for a built-in one
function models.source(name)
   local r = registered[name]
   return r and {file = r.file, script = r.script}
end

-- the builder config.json names, its file run again when the run's builder is not the one registered here
local function builder_of(run, config)
   local name, source = config.model.name, config.model_source
   if source ~= nil and (type(source) ~= 'table' or type(source.file) ~= 'string') then
      error(('ts.models.load: %s/config.json: model_source must be {file = path}, got %s'):format(run, json.encode(source)), 0)
   end
   if source and not (registered[name] and registered[name].file == source.file) then
      local path = resolved(source.file)
      if not files.realpath(path) then
         error(('ts.models.load: %s was trained with the builder %s from %s, which is gone'):format(run, name, path), 0)
      end
      -- a file that fails (a syntax error, an error of its own, a folder) is named as the run's builder file
      local ran, why = pcall(dofile, path)
      if not ran then
         error(('ts.models.load: %s/config.json: model_source %s, the file of the builder %s, does not run: %s'):format(
               run, path, tostring(name), tostring(why)), 0)
      end
      if not registered[name] then
         error(('ts.models.load: %s no longer registers the builder %s that %s was trained with'):format(path, name, run), 0)
      end
   end
   return models.builder(name) or error(('ts.models.load: %s/config.json: no builder ts.models.%s'):format(run, tostring(name)), 0)
end

-- A model from a run directory: its builder and options from config.json, its weights from
-- model.safetensors (the model chosen on validation), with opts.weights = 'last' from the checkpoint
-- the run ended on (checkpoint.safetensors: the weights of its last epoch), with 'swa' from swa.safetensors (the
-- average of ts.train's swa, with its batch norm statistics), in the precision it was trained
-- in, model.preprocess the images' preprocessing it was trained with (ts.evaluate's default for it); returns the
-- model (in evaluation mode) and the run's config. A run whose training was cut off before
-- its last epoch is said so on stderr (models.unfinished), whatever script loads it.
function models.load(run, opts)
   -- opts a table of known keys: load(run, 'last') and load(run, {weight = 'last'}) loaded the best weights, without
   -- a word, and load(run, 5) failed indexing it
   if opts ~= nil then keys.check('ts.models.load', opts, {weights = true}, 2) end
   local weights = opts and opts.weights or 'best'
   if weights ~= 'best' and weights ~= 'last' and weights ~= 'swa' then
      error(("ts.models.load: weights must be 'best', 'last' or 'swa', got %s"):format(keys.show(weights)), 2)
   end
   if type(run) ~= 'string' or run == '' then
      error('ts.models.load(run): run must be a run directory\'s path, got ' .. keys.show(run), 2)
   end
   local ok, config = pcall(json.readFile, run .. '/config.json')
   if not ok then error('ts.models.load: ' .. tostring(config), 0) end
   -- (a file holding null reads as nil too: it is there, and no object)
   if not config and not files.exists(run .. '/config.json') then
      error(('ts.models.load: %s/config.json not found (is %s a run directory?)'):format(run, run), 0)
   end
   if type(config) ~= 'table' then error(('ts.models.load: %s/config.json is not a JSON object'):format(run), 0) end
   -- a model built in its script is recorded as {module = ...} (ts.train); anything else without a builder's name is
   -- a damaged record, not such a model
   local spec = config.model
   if type(spec) == 'table' and spec.name == nil and spec.module ~= nil then
      error(('ts.models.load: %s was trained with a model built in its script, not a ts.models builder'):format(run), 0)
   end
   if type(spec) ~= 'table' or type(spec.name) ~= 'string' then
      error(('ts.models.load: %s/config.json: model must be a builder\'s spec {"name": ..., its options}, got %s'):format(
            run, type(spec) == 'table' and json.encode(spec) or keys.show(spec)), 0)
   end
   -- checked before the weights are read: a bad one failed in setPrecision, with a traceback into the library
   if config.precision ~= nil and config.precision ~= 'fp32' and config.precision ~= 'bf16' then
      error(("ts.models.load: %s/config.json: precision must be 'fp32' or 'bf16', got %s"):format(run,
            keys.show(config.precision)), 0)
   end
   local built, model = pcall(builder_of(run, config), config.model)
   if not built then
      error(('ts.models.load: %s/config.json: its model %s does not build: %s'):format(run, tostring(config.model.name),
            tostring(model)), 0)
   end
   -- the images' normalization the model was trained with: ts.train records it always, so a run without a valid one
   -- would be fed other numbers than it learnt on, silently
   local pre_ok, pre = pcall(require('ts.loader').preprocess, config.preprocess)
   if type(config.preprocess) ~= 'table' or not pre_ok then
      error(('ts.models.load: %s/config.json: %s'):format(run, type(config.preprocess) ~= 'table'
            and 'no preprocess settings (the normalization the model was trained with)' or tostring(pre)), 0)
   end
   local path = run .. '/model.safetensors'
   if weights == 'best' then
      if not files.exists(path) then
         error(('ts.models.load: %s not found (the run saved no model: it stopped before its first epoch ended?)'):format(
               path), 0)
      end
      serialize.load(path, model)
   elseif weights == 'swa' then
      path = run .. '/swa.safetensors'
      if not files.exists(path) then
         error(('ts.models.load: %s not found (the run was trained without swa, or stopped before its end)'):format(path), 0)
      end
      serialize.load(path, model)
   else
      path = run .. '/checkpoint.safetensors'
      if not files.exists(path) then
         error(('ts.models.load: %s not found (the run has no checkpoint of its last epoch)'):format(path), 0)
      end
      serialize.load(path, model, {prefix = 'model.'})
   end
   pretrained.checkFinite(model, 'ts.models.load', path)
   model:setPrecision(config.precision or 'fp32')
   model:evaluate()
   model.preprocess = pre   -- what ts.evaluate feeds it when given no preprocess
   local why = models.unfinished(run, config)
   if why then io.stderr:write(('ts.models.load: note: %s\n'):format(why)) end
   return model, config
end

-- A sentence when a run's training stopped before its last epoch (killed or interrupted, without early
-- stopping: its metrics.jsonl holds fewer epochs than config.json asks for), else nil. Its model.safetensors is
-- then the best of the epochs it had, not what its recipe makes: a search with a sign detector cut off after
-- one of its epochs read 12 in 200 street scenes fewer right. config: the run's config.json when it is read
-- already.
function models.unfinished(run, config)
   config = config or json.readFile(run .. '/config.json') or {}
   if type(config) ~= 'table' then error(('ts.models.unfinished: %s/config.json is not a JSON object'):format(run), 0) end
   local planned = tonumber(config.epochs)
   if not planned or config.early_stop then return nil end
   local text = files.readFile(run .. '/metrics.jsonl')
   if not text then return nil end   -- weights copied without their record: nothing to tell
   local done = 0
   for _ in text:gmatch('[^\n]+') do done = done + 1 end
   if done >= planned then return nil end
   return ('%s stopped after %d of its %d epochs: its training was cut off, and its model is not what its '
           .. 'recipe makes'):format(run, done, planned)
end

return models
