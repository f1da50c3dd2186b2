-- ts.models: network definitions as ordinary nn containers.
local nn = require('ts.nn')

local models = {}

-- The reference network of the benchmarks (675,339 parameters for 43 classes, 32x32 input):
-- conv stages of widths {32, 64, 128} (3x3 without bias, BN, ReLU; two convs in the first two stages),
-- each followed by a 2x2 max-pool, then Flatten, Dropout, Linear(2048, 256), ReLU, Linear(256, classes).
-- opts: classes (43), channels (3 input channels), widths, hidden (256), dropout (0.5),
-- stage3 (convolutions in the third stage, 1).
function models.refcnn(opts)
   opts = opts or {}
   local classes, cin = opts.classes or 43, opts.channels or 3
   local w, hidden = opts.widths or {32, 64, 128}, opts.hidden or 256
   local net = nn.Sequential()
   local function block(a, b)
      net:add(nn.Conv2d(a, b, 3, {padding = 1, bias = false}))
      net:add(nn.BatchNorm2d(b))
      net:add(nn.ReLU())
   end
   block(cin, w[1])
   block(w[1], w[1])
   net:add(nn.MaxPool2d(2))
   block(w[1], w[2])
   block(w[2], w[2])
   net:add(nn.MaxPool2d(2))
   block(w[2], w[3])
   for _ = 2, opts.stage3 or 1 do block(w[3], w[3]) end
   net:add(nn.MaxPool2d(2))
   net:add(nn.Flatten())
   net:add(nn.Dropout(opts.dropout or 0.5))
   net:add(nn.Linear(16 * w[3], hidden))
   net:add(nn.ReLU())
   net:add(nn.Linear(hidden, classes))
   return net
end

-- The custom CNN of experiments/baseline.lua: the reference network with two convolutions in its third
-- stage (823,051 parameters for 43 classes). Same options as refcnn.
function models.baseline(opts)
   local o = {}
   for k, v in pairs(opts or {}) do o[k] = v end
   o.stage3 = o.stage3 or 2
   return models.refcnn(o)
end

for name, builder in pairs(require('ts.models.resnet')) do models[name] = builder end
for name, builder in pairs(require('ts.models.mobilenet')) do models[name] = builder end
local pretrained = require('ts.models.pretrained')
function models.pretrained(name, opts) return pretrained.pretrained(models, name, opts) end
models.catalog = pretrained.catalog

-- A model from a run directory: its builder and options from config.json, its weights from
-- model.safetensors, in the precision it was trained in; returns the model (in evaluation mode) and the
-- run's config.
function models.load(run)
   local train = require('ts.train')
   local json = require('ts.json')
   local text = train.readFile(run .. '/config.json')
   if not text then error(('ts.models.load: %s/config.json not found (is %s a run directory?)'):format(run, run), 2) end
   local config = json.decode(text)
   if type(config.model) ~= 'table' or not config.model.name then
      error(('ts.models.load: %s was trained with a model built in its script, not a ts.models builder'):format(run), 2)
   end
   local builder = models[config.model.name]
   if not builder then error('ts.models.load: no builder ts.models.' .. config.model.name, 2) end
   local model = builder(config.model)
   require('ts.serialize').load(run .. '/model.safetensors', model)
   model:setPrecision(config.precision or 'fp32')
   model:evaluate()
   return model, config
end

return models
