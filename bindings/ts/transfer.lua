-- ts.transfer: fine-tuning pretrained networks in a few lines.
--   local m = ts.models.pretrained('resnet20')
--   ts.transfer.newHead(m, 43)                        -- a fresh Linear(features, 43) in place of the head
--   ts.transfer.freezeBackbone(m, {bn_eval = true})   -- linear probe: only the head learns; BN keeps its stats
--   local groups = ts.transfer.paramGroups(m, {backbone_lr = 0.005, head_lr = 0.05})   -- full fine-tuning
--   local f = ts.transfer.features(m, dataset, preprocess)   -- cached penultimate features [N, F]
--   local head, history = ts.transfer.linearProbe(train_f, train_y, valid_f, valid_y, {epochs = 30})
--   -- (history: the validation accuracy after each epoch, a list; history[#history] is the last)
--   local groups, on_epoch = ts.transfer.gradualUnfreeze(m, {backbone_lr = 0.01, head_lr = 0.05, stages = 3})
--   ts.train{model = m, param_groups = groups, on_epoch = on_epoch, ...}   -- one more stage after each epoch
--   ts.transfer.foldInputScale(m)   -- a 0..255 convention becomes 0..1, the scale moved into the first conv
local T = require('ts.tensor')
local keys = require('ts.keys')
local Module = require('ts.nn.module')
local nn = require('ts.nn')
local optim = require('ts.optim')
local data = require('ts.data')

local M = {}

local function head_name(model)
   local children = model:children()
   return model.headName or (children[#children] and children[#children].name)
end

function M.newHead(model, classes)
   -- a nil model failed indexing it, nil classes inside the tensor code and 0 classes made a head of no outputs
   Module.check(model, 'ts.transfer.newHead(model, classes): model', 2)
   keys.count(classes, 'ts.transfer.newHead(model, classes)', 'classes', 1, nil, 2)
   local name = head_name(model)
   local old = model[name]
   if not old or not old.nin then error('ts.transfer.newHead: the model has no Linear head named ' .. tostring(name), 2) end
   model:replace(name, nn.Linear(old.nin, classes))
   return model[name]
end

-- every child but the head
local function backbone_children(model)
   local name, out = head_name(model), {}
   for _, c in ipairs(model:children()) do
      if c.name ~= name then out[#out + 1] = c.module end
   end
   return out
end

-- the model argument, or an error naming the call: a nil model failed on indexing it, deep inside, and a class
-- (nn.Sequential for nn.Sequential()) passed
local function check_model(model, call)
   Module.check(model, call .. ': model', 3)
   if #model:children() < 2 then   -- a lone layer (nn.ReLU()) has no backbone and no head: nothing was frozen
      error(('%s: model must be a network of a backbone and a head, got %s with %d children'):format(call,
            model.__typename, #model:children()), 3)
   end
   -- a headName that names no child (a typo, or a model rebuilt with other names) froze the head with the backbone,
   -- and gave the head's group no parameters, without a word
   local name, names = head_name(model), {}
   for _, c in ipairs(model:children()) do
      if c.name == name then return end
      names[#names + 1] = c.name
   end
   error(('%s: model.headName %s names no child of the model (children: %s)'):format(call, keys.show(name),
         table.concat(names, ', ')), 3)
end

-- the options table o of function `name` (nil gives {}), its keys checked against `known` (a misspelt bn_evel left
-- the BN statistics updating); call: the name with its arguments, what: o's name among them
local function options(o, name, call, what, known)
   if o == nil then return {} end
   if type(o) ~= 'table' then error(('%s: %s must be a table, got %s'):format(call, what, tostring(o)), 3) end
   keys.check(name, o, known, 3)   -- not a tail call, which drops this frame from the count
   return o
end

-- learning rates given: finite and >= 0 (nil: the optimizer's own lr)
local function check_lrs(o, name)
   for _, k in ipairs({'backbone_lr', 'head_lr'}) do
      local v = o[k]
      if v ~= nil and not (T.isFinite(v) and v >= 0) then
         error(('%s: %s must be a finite number >= 0, got %s'):format(name, k, tostring(v)), 3)
      end
   end
end

local freeze_options = {bn_eval = 1}
function M.freezeBackbone(model, opts)
   check_model(model, 'ts.transfer.freezeBackbone(model [, opts])')
   opts = options(opts, 'ts.transfer.freezeBackbone', 'ts.transfer.freezeBackbone(model [, opts])', 'opts', freeze_options)
   keys.flag(opts.bn_eval, 'ts.transfer.freezeBackbone', 'bn_eval', 2)
   for _, m in ipairs(backbone_children(model)) do
      m:freeze()
      if opts.bn_eval then m:apply(function(x) x.freezeStats = true end) end
   end
   return model
end

local function params_of(modules)
   local ps, gs = {}, {}
   for _, m in ipairs(modules) do
      local p, g = m:parameters()
      for i = 1, #p do ps[#ps + 1], gs[#gs + 1] = p[i], g[i] end
   end
   return {ps, gs}
end

-- two optimizer groups: the backbone at backbone_lr, the head at head_lr (either nil: the optimizer's lr)
local group_options = {backbone_lr = 1, head_lr = 1}
function M.paramGroups(model, o)
   check_model(model, 'ts.transfer.paramGroups(model, o)')
   if type(o) ~= 'table' then
      error(('ts.transfer.paramGroups(model, o): o must be a table {backbone_lr, head_lr}, got %s'):format(tostring(o)), 2)
   end
   keys.check('ts.transfer.paramGroups', o, group_options, 2)
   check_lrs(o, 'ts.transfer.paramGroups')
   return {{params = params_of(backbone_children(model)), lr = o.backbone_lr},
           {params = params_of({model[head_name(model)]}), lr = o.head_lr}}
end

-- Gradual unfreezing (ULMFiT's recipe): first only the head learns, the backbone frozen with its BN
-- statistics kept; after each epoch the next stage from the top down is unfrozen and joins the optimizer at
-- backbone_lr. The backbone's children with parameters are split into o.stages stages (default: as many
-- as there are such children). Returns the head's parameter group list and the on_epoch hook for ts.train.
-- A run that changes its groups this way cannot be resumed from a checkpoint taken mid-way.
local unfreeze_options = {backbone_lr = 1, head_lr = 1, stages = 1}
function M.gradualUnfreeze(model, o)
   check_model(model, 'ts.transfer.gradualUnfreeze(model [, o])')
   o = options(o, 'ts.transfer.gradualUnfreeze', 'ts.transfer.gradualUnfreeze(model [, o])', 'o', unfreeze_options)
   check_lrs(o, 'ts.transfer.gradualUnfreeze')
   -- children with parameters, frozen ones too: parameters() leaves those out, so a backbone frozen before (by
   -- freezeBackbone, a linear probe's recipe, or a first gradualUnfreeze) made no stage and stayed frozen for good
   local learnable = {}
   for _, m in ipairs(backbone_children(model)) do
      local has = false
      m:apply(function(x) for _, name in ipairs(x._params or {}) do has = has or x[name] ~= nil end end)
      if has then learnable[#learnable + 1] = m end
   end
   -- 1.5 or 0 stages left part of the backbone frozen for good
   if o.stages ~= nil then keys.count(o.stages, 'ts.transfer.gradualUnfreeze', 'stages', 1, nil, 2) end
   M.freezeBackbone(model, {bn_eval = true})
   local n = math.min(o.stages or #learnable, #learnable)
   local stages = {}
   for k = 1, n do
      -- stage 1 is the top of the network; sizes differ by at most one child
      local first = math.floor((k - 1) * #learnable / n)
      local last = math.floor(k * #learnable / n)
      stages[k] = {}
      for i = #learnable - last + 1, #learnable - first do stages[k][#stages[k] + 1] = learnable[i] end
   end
   local groups = {{params = params_of({model[head_name(model)]}), lr = o.head_lr}}
   local function on_epoch(epoch, _, opt)
      local stage = stages[epoch]
      if not stage then return end
      for _, m in ipairs(stage) do
         m:unfreeze()
         m:apply(function(x) x.freezeStats = nil end)
      end
      opt:addParamGroup{params = params_of(stage), lr = o.backbone_lr}
   end
   return groups, on_epoch, stages
end

-- layers that act on each channel alone and linearly, so that a scale of the input passes through them unchanged
local scale_commutes = {Identity = true, Dropout = true, AvgPool2d = true, Upsample2d = true}

-- the convolution the model's input reaches first, inside Sequentials and Checkpoints and past the layers above; else
-- nil and the layer in the way (nil, nil: m is all such layers). The first convolution of apply's walk was scaled
-- wherever it was: a spatial transformer's localization network, which left the path of the images unscaled, or one
-- behind a batch norm.
local function input_conv(m)
   local kind = m.__typename
   if kind == 'Conv2d' then return m end
   if scale_commutes[kind] then return nil end
   if kind ~= 'Sequential' and kind ~= 'Checkpoint' then return nil, m end
   for _, c in ipairs(m:children()) do
      local conv, blocker = input_conv(c.module)
      if conv or blocker then return conv, blocker end
   end
end

-- Moves a per-channel input scale into the first convolution: a model fed (x - mean) / std becomes one fed
-- x - mean, with W'[:, c] = W[:, c] / std[c]. Exact (zero padding commutes with scaling), and it matters for
-- SGD: a network trained on 0..255 inputs otherwise takes first-layer steps 255^2 times too large.
function M.foldInputScale(model)
   Module.check(model, 'ts.transfer.foldInputScale(model): model', 2)   -- (nil failed indexing it)
   local conv, blocker = input_conv(model)
   local conv_input = model.inputConvention
   if not conv or not conv_input then
      error(('ts.transfer.foldInputScale: the model needs a convolution that takes its input, and an inputConvention%s')
            :format(blocker and (', and its input goes to %s first'):format(blocker.__typename) or ''), 2)
   end
   local std = conv_input.std
   -- one finite, non-zero std per input channel: a 0 made the weights infinite, a short list a nil in arithmetic
   for c = 1, conv.nin do
      local v = type(std) == 'table' and std[c]
      if not (T.isFinite(v) and v ~= 0) then
         error(('ts.transfer.foldInputScale: inputConvention.std[%d] must be a finite number other than 0, got %s'):format(
               c, tostring(v)), 2)
      end
   end
   -- input channel c reaches the output channels of its group alone, as column k of the weight [out, in / groups, ...]
   -- (the columns of a grouped or depthwise convolution were scaled as if each were one input channel: a depthwise
   -- first layer had every channel divided by std[1])
   local per_in, per_out = conv.nin / conv.groups, conv.nout / conv.groups
   for c = 1, conv.nin do
      local group, k = math.floor((c - 1) / per_in), (c - 1) % per_in + 1
      conv.weight:narrow(1, group * per_out + 1, per_out):narrow(2, k, 1):mul_(1 / std[c])
   end
   local folded = {mean = conv_input.mean, std = {}, size = conv_input.size}
   for c = 1, #std do folded.std[c] = 1 end
   model.inputConvention = folded
   return model
end

-- the penultimate features (the output of the model's `flatten` child) of every image, in order
function M.features(model, ds, preprocess, batch)
   -- (a bad one was refused by the loader, named so and at a line of this file)
   Module.check(model, 'transfer.features(model, ds, preprocess, batch): model', 2)
   data.checkDataset(ds, 'transfer.features(model, ds, preprocess, batch)', 'ds', 2)
   data.checkSettings(preprocess, 'preprocess', 'transfer.features', 2)
   -- (the loader refused a bad batch at a line of this file; a dataset of no images gave nil, no [0, F] of features)
   if batch ~= nil then data.checkBatch(batch, 'transfer.features(model, ds, preprocess, batch)', 'batch', 2) end
   if ds:size() == 0 then error('transfer.features(model, ds, preprocess, batch): ds holds no images', 2) end
   model:evaluate{fused = true}   -- the flatten child is never inside a fused group
   local flatten = model.flatten or error('transfer.features: the model has no child named flatten', 2)
   local loader = data.Loader(ds, {batch = batch or 256, sampler = 'sequential', preprocess = preprocess,
                                   device = model.device})
   local out, at = nil, 0
   for x in loader:epoch() do
      model:forward(x)
      local f = flatten.output
      out = out or T.zeros(ds:size(), f:size(2))
      out:narrow(1, at + 1, f:size(1)):copy(f)
      at = at + f:size(1)
   end
   loader:close()
   return out
end

-- Trains a Linear head on cached features with AdamW; returns the head and its validation accuracy per
-- epoch. The features are standardized for training (a backbone's features can be tiny and sparse, as
-- MobileNet's are, which stalls the optimizer) and the standardization is folded into the head at the
-- end, W' = W / sd, b' = b - W' mean, so the head takes the raw features the backbone gives.
local probe_options = {classes = 1, lr = 1, weight_decay = 1, label_smoothing = 1, batch = 1, epochs = 1}
function M.linearProbe(features, labels, valid_features, valid_labels, o)
   o = o or {}
   keys.check('ts.transfer.linearProbe', o, probe_options, 2)
   for _, k in ipairs({'classes', 'batch', 'epochs'}) do   -- batch = -1 ran no step and returned an untrained head
      if o[k] ~= nil then keys.count(o[k], 'ts.transfer.linearProbe', k, 1, nil, 2) end
   end
   if not T.isTensor(features) or features:dim() ~= 2 then
      error('ts.transfer.linearProbe(features, labels, ...): features must be [N, F] (the model is not an argument)', 2)
   end
   -- (float64 features, as numpy gives them, or bytes failed in the arithmetic: "float32 tensors expected")
   features = features:float()
   local n, f = features:size(1), features:size(2)
   -- no rows gave a head of NaN weights (the mean of nothing), no columns a head that sees nothing
   if n == 0 or f == 0 then
      error(('ts.transfer.linearProbe: features must be [N, F] with N and F >= 1, got %s'):format(tostring(features:size())), 2)
   end
   local _, _, nonfinite = T.survey(features)
   if nonfinite > 0 then error(('ts.transfer.linearProbe: %d features are NaN or infinite'):format(nonfinite), 2) end
   -- labels as class ids, one per row: 0.7 was cut to class 0, a list failed indexing it, extra labels were ignored
   -- and a short validation list was broadcast against the predictions into a wrong accuracy
   local ids = require('ts.nn.loss').CrossEntropyLoss.classIds
   labels = ids(labels, 'ts.transfer.linearProbe: labels', 2)
   if labels:numel() ~= n then
      error(('ts.transfer.linearProbe: %d rows of features but %d labels'):format(n, labels:numel()), 2)
   end
   if valid_features ~= nil or valid_labels ~= nil then
      if not T.isTensor(valid_features) or valid_features:dim() ~= 2 or valid_features:size(2) ~= f then
         error(('ts.transfer.linearProbe: valid_features must be [M, %d] as the features are, got %s'):format(f,
               keys.show(valid_features)), 2)
      end
      valid_features = valid_features:float()
      -- (a NaN row was predicted as class 0, NaN winning argmax: an accuracy of nothing the head had done)
      local _, _, bad = T.survey(valid_features)
      if bad > 0 then error(('ts.transfer.linearProbe: %d valid_features are NaN or infinite'):format(bad), 2) end
      valid_labels = ids(valid_labels, 'ts.transfer.linearProbe: valid_labels', 2)
      if valid_labels:numel() ~= valid_features:size(1) or valid_labels:numel() == 0 then
         error(('ts.transfer.linearProbe: %d rows of valid_features but %d valid_labels'):format(valid_features:size(1),
               valid_labels:numel()), 2)
      end
   end
   local classes = o.classes or 43
   -- a label the head has no output for failed in the training's cross_entropy, which named neither this call nor
   -- classes; a validation label so counted as wrong without a word
   for name, l in pairs({labels = labels, valid_labels = valid_labels}) do
      local lo, hi = l:min(), l:max()
      if lo < 0 or hi >= classes then
         error(('ts.transfer.linearProbe: %s hold class %d, outside 0..%d of the head (o.classes = %d, 43 by default)')
               :format(name, lo < 0 and lo or hi, classes - 1, classes), 2)
      end
   end
   local mean = features:mean(1)
   local sd = (features - mean):square():mean(1):sqrt():clamp(1e-6)
   local train_z = (features - mean) / sd
   local valid_z = valid_features and (valid_features - mean) / sd
   local head = nn.Linear(f, classes)
   local opt = optim.AdamW(head, {lr = o.lr or 3e-3, weight_decay = o.weight_decay or 1e-4})
   local crit = nn.CrossEntropyLoss{label_smoothing = o.label_smoothing or 0}
   local batch, history = o.batch or 256, {}
   for epoch = 1, o.epochs or 30 do
      local order = T.randperm(n)
      for s = 1, n, batch do
         local b = math.min(batch, n - s + 1)
         local xb, yb = T.zeros(b, f), T.zeros({b}, 'int64')
         for k = 1, b do
            xb[k] = train_z[order[s + k - 1]]
            yb[k] = labels:get(order[s + k - 1])
         end
         opt:zeroGrad()
         local out = head:forward(xb)
         head:backward(xb, crit:backward(out, yb))
         opt:step()
      end
      if valid_z then
         local _, pred = head:forward(valid_z):max(2)
         history[epoch] = pred:view(-1):float():eq(valid_labels:float()):sum() / valid_labels:numel()
      end
   end
   head.weight:copy(head.weight / sd)
   head.bias:copy(head.bias - (head.weight * mean):sum(2):view(-1))
   return head, history
end

return M
