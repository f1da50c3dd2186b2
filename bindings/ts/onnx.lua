-- ts.onnx: a network as an ONNX model (https://onnx.ai; the messages of onnx/onnx.proto3, written by ts.protobuf),
-- for onnxruntime, TensorRT, OpenCV's dnn and the rest of the ecosystem.
--   ts.onnx.export(model, path, {input = {1, 3, 32, 32}, opset = 17, preprocess = ts.data.preprocess{...} or its
--                  settings, classes = {[0] = 'name', ...}})
-- The batch dimension is dynamic (named N); the others are opts.input's (by default {1, 3, 32, 32}, or the size
-- preprocess resizes to). The model is exported as it evaluates (batch norm with its running statistics, dropout
-- left out). With opts.preprocess the model takes images in 0..1 at the loader's size and does the preprocessing
-- itself (grayscale of RGB, then (x - mean) / std with the loader's numbers), as tshost's loader does before the
-- network; without it, the network's own input. The class names, when given, are in the model's metadata
-- (class_names, a JSON list in class order). Every layer tshost has is exported: Conv2d (any padding, groups, dilation), BatchNorm2d/1d,
-- ReLU, LeakyReLU, ELU, MaxPool2d, AvgPool2d, GlobalAvgPool2d, Linear, Flatten, View, Dropout, Identity, Upsample2d,
-- Sequential, Checkpoint, Residual, Concat, ZeroPadShortcut, Normalize; anything else is an error naming it.
local ffi = require('ffi')
local pb = require('ts.protobuf')
local T = require('ts.tensor')
local json = require('ts.json')
local files = require('ts.files')
local keys = require('ts.keys')
local cffi = require('ts.ffi')
local Module = require('ts.nn.module')

local M = {}

local FLOAT, INT64 = 1, 7                             -- TensorProto.DataType
local A_FLOAT, A_INT, A_STRING, A_INTS = 1, 2, 3, 7   -- AttributeProto.AttributeType

-- The graph being built: nodes, initializers (weights and constants) and fresh names
local Graph = {}
Graph.__index = Graph

-- (path: the names of the layers being emitted, from the model down)
local function new_graph(opset)
   return setmetatable({nodes = {}, initializers = {}, count = 0, opset = opset, path = {}}, Graph)
end

function Graph:name(prefix)
   self.count = self.count + 1
   return ('%s_%d'):format(prefix, self.count)
end

-- a float32 or int64 initializer from a tensor (raw little-endian data), named
function Graph:constant(prefix, t)
   local name = self:name(prefix)
   t = t:contiguous()
   local m = pb.message()
   for i = 1, t:dim() do m:varint(1, t:size(i)) end
   local int64 = t:dtype() == 'int64'
   m:varint(2, int64 and INT64 or FLOAT):string(8, name)
   if not int64 then t = t:float() end
   m:bytes(9, ffi.string(t:cpu():contiguous():data(), t:numel() * (int64 and 8 or 4)))
   self.initializers[#self.initializers + 1] = m
   return name
end

function Graph:ints(prefix, list)
   local t = T.zeros({#list}, 'int64')
   for i, v in ipairs(list) do t[i] = v end
   return self:constant(prefix, t)
end

function Graph:floats(prefix, shape, list)
   local t = T.zeros(shape)
   local p = ffi.cast('float *', t:data())
   for i, v in ipairs(list) do p[i - 1] = v end
   return self:constant(prefix, t)
end

-- an attribute message: a list of whole numbers (ints), a string, {float = v}, or a whole number (int)
local function attribute(name, v)
   local a = pb.message():string(1, name)
   if type(v) == 'string' then return a:bytes(4, v):varint(20, A_STRING) end
   if type(v) == 'table' and v.float then return a:float(2, v.float):varint(20, A_FLOAT) end
   if type(v) == 'table' then
      for _, x in ipairs(v) do a:varint(8, x) end
      return a:varint(20, A_INTS)
   end
   return a:varint(3, v):varint(20, A_INT)
end

-- a node op(inputs) -> its output, named `out` or a fresh name; attrs: name -> value (see attribute)
function Graph:node(op, inputs, attrs, out)
   out = out or self:name(op:lower())
   local n = pb.message()
   for _, i in ipairs(inputs) do n:string(1, i) end
   n:string(2, out):string(3, out):string(4, op)
   local names = {}
   for k in pairs(attrs or {}) do names[#names + 1] = k end
   table.sort(names)
   for _, k in ipairs(names) do n:message(5, attribute(k, attrs[k])) end
   self.nodes[#self.nodes + 1] = n
   return out
end

-- ---- the layers: emit[typename](graph, module, input name) -> output name ---------------------------------------

local emit = {}

local function chain(g, m, x)
   for _, c in ipairs(m:children()) do x = M.emit(g, c.module, x, c.name) end
   return x
end
emit.Sequential, emit.Checkpoint = chain, chain
emit.Dropout = function(g, m, x) return x end
emit.Identity = emit.Dropout

function emit.Conv2d(g, m, x)
   local p = m.params   -- as the forward set it (TensorFlow 'same' padding from the input's size)
   local inputs = {x, g:constant('weight', m.weight)}
   if m.bias then inputs[3] = g:constant('bias', m.bias) end
   return g:node('Conv', inputs, {kernel_shape = {m.kh, m.kw}, strides = {p.stride_h, p.stride_w},
                                  dilations = {p.dilation_h, p.dilation_w}, group = p.groups,
                                  pads = {p.pad_top, p.pad_left, p.pad_bottom, p.pad_right}})
end

local function batchnorm(g, m, x)
   local c = m.channels
   return g:node('BatchNormalization', {x, g:constant('scale', m.weight or T.ones(c)), g:constant('shift', m.bias or T.zeros(c)),
                                         g:constant('mean', m.running_mean), g:constant('var', m.running_var)},
                 {epsilon = {float = m.eps}})
end
emit.BatchNorm2d, emit.BatchNorm1d = batchnorm, batchnorm

emit.ReLU = function(g, m, x) return g:node('Relu', {x}) end
emit.LeakyReLU = function(g, m, x) return g:node('LeakyRelu', {x}, {alpha = {float = m.param}}) end
emit.ELU = function(g, m, x) return g:node('Elu', {x}, {alpha = {float = m.param}}) end

local function pool(op, extra)
   return function(g, m, x)
      local p = m.params
      local attrs = {kernel_shape = {p.kernel_h, p.kernel_w}, strides = {p.stride_h, p.stride_w},
                     pads = {p.pad_h, p.pad_w, p.pad_h, p.pad_w}, ceil_mode = p.ceil_mode}
      if extra then extra(attrs, p) end
      return g:node(op, {x}, attrs)
   end
end
emit.MaxPool2d = pool('MaxPool')
emit.AvgPool2d = pool('AveragePool', function(attrs, p) attrs.count_include_pad = p.count_include_pad end)
emit.GlobalAvgPool2d = function(g, m, x) return g:node('GlobalAveragePool', {x}) end

emit.Linear = function(g, m, x)
   local inputs = {x, g:constant('weight', m.weight)}
   if m.bias then inputs[3] = g:constant('bias', m.bias) end
   return g:node('Gemm', inputs, {transB = 1})
end
emit.Flatten = function(g, m, x) return g:node('Flatten', {x}, {axis = 1}) end
emit.View = function(g, m, x)
   local shape = {0}   -- 0: the batch dimension as it is
   for _, s in ipairs(m.sizes) do shape[#shape + 1] = s end
   return g:node('Reshape', {x, g:ints('shape', shape)})
end

emit.Upsample2d = function(g, m, x)
   return g:node('Resize', {x, '', g:floats('scales', {4}, {1, 1, m.sh, m.sw})},
                 {mode = 'nearest', coordinate_transformation_mode = 'asymmetric', nearest_mode = 'floor'})
end

emit.Residual = function(g, m, x)
   local children = m:children()
   local a = M.emit(g, children[1].module, x, children[1].name)
   local b = children[2] and M.emit(g, children[2].module, x, children[2].name) or x
   return g:node('Add', {a, b})
end

emit.Concat = function(g, m, x)
   local outs = {}
   for i, c in ipairs(m:children()) do outs[i] = M.emit(g, c.module, x, c.name) end
   return g:node('Concat', outs, {axis = m.dim - 1})
end

-- x[:, :, ::s, ::s] with (cout - cin) / 2 zero channels before and after
emit.ZeroPadShortcut = function(g, m, x)
   local big = 2 ^ 53
   local sub = g:node('Slice', {x, g:ints('starts', {0, 0}), g:ints('ends', {big, big}), g:ints('axes', {2, 3}),
                                g:ints('steps', {m.stride, m.stride})})
   return g:node('Pad', {sub, g:ints('pads', {0, m.pad, 0, 0, 0, m.pad, 0, 0})}, {mode = 'constant'})
end

-- y = x / max(||x||, eps) along dim 2; from opset 18 ReduceL2 takes its axes as an input (the attribute of the
-- older forms made a model that onnx's checker and onnxruntime refuse)
emit.Normalize = function(g, m, x)
   local norm = g.opset >= 18 and g:node('ReduceL2', {x, g:ints('axes', {1})}, {keepdims = 1})
                or g:node('ReduceL2', {x}, {axes = {1}, keepdims = 1})
   local floor = g:node('Max', {norm, g:floats('eps', {1}, {m.eps})})
   return g:node('Div', {x, floor})
end

-- m's nodes on x; name: m's name in its parent, which an error joins to the path from the model down (the whole
-- description of the layer, a container's over many lines, did not say which of a network's layers it was)
function M.emit(g, m, x, name)
   g.path[#g.path + 1] = name or ''
   local f = emit[m.__typename]
   if not f then
      local named = {}   -- (the model itself, and a Residual's block, have no name of their own)
      for _, n in ipairs(g.path) do if n ~= '' then named[#named + 1] = n end end
      local shown = m:describe('')   -- (a container's over many lines is left out: its children say what it is)
      error(('ts.onnx.export: no ONNX form for %s (%s%s)'):format(m.__typename, shown:find('\n') and '' or shown .. ', ',
            #named > 0 and 'the model\'s child ' .. table.concat(named, '.') or 'the model itself'), 0)
   end
   local y = f(g, m, x)
   g.path[#g.path] = nil
   return y
end

-- the preprocessing a loader applies (settings of ts.data.preprocess: grayscale, mean, std; pre: what
-- ts.data.preprocess made of them, whose values the loader uses), as nodes on x in 0..1
local function preprocess(g, settings, pre, x, channels)
   if settings.equalize and settings.equalize ~= 'none' then
      error('ts.onnx.export: histogram equalization and CLAHE have no ONNX form: export without the preprocessing ' ..
            'and equalize the images before the model', 0)
   end
   if settings.grayscale then   -- images of one channel are gray already: the loader takes them as they are
      if channels == 3 then
         x = g:node('Conv', {x, g:floats('luma', {1, 3, 1, 1}, {0.299, 0.587, 0.114})}, {kernel_shape = {1, 1}})
      end
      channels = 1
   end
   -- the loader's numbers: a list with a hole, mean = {0.5, nil, 0.2}, is 0.5 for the second channel there (the
   -- first value stands for a missing one), and was 0 here; one value stands for all channels
   local mean, std = {}, {}
   for c = 1, channels do
      mean[c] = pre.c.mean[c <= 3 and c - 1 or 0]
      std[c] = pre.c.std[c <= 3 and c - 1 or 0]
   end
   x = g:node('Sub', {x, g:floats('mean', {1, channels, 1, 1}, mean)})
   return g:node('Div', {x, g:floats('std', {1, channels, 1, 1}, std)}), channels
end

-- a graph input or output, float [N, dims[2], ...]: the first dimension the dynamic batch N, or with batch false
-- a dimension of no known size (a model that joins along the batch gives 2N rows, which N would misstate)
local function value_info(name, dims, batch)
   local shape = pb.message()
   for i, d in ipairs(dims) do
      local dim = i > 1 and pb.message():varint(1, d) or batch ~= false and pb.message():string(2, 'N') or pb.message()
      shape:message(1, dim)
   end
   local tensor = pb.message():varint(1, FLOAT):message(2, shape)
   return pb.message():string(1, name):message(2, pb.message():message(1, tensor))
end

local export_options = {input = 1, opset = 1, preprocess = 1, classes = 1, ir_version = 1}

-- the model in a few words, for the file's doc string and export.lua's line: its kind and size (the first line of its
-- printed form, "Sequential(  [1443195 params]", left a bracket open)
function M.describe(model)
   return ('%s of %d parameters'):format(model.__typename or 'a model', model:numParameters())
end

function M.export(model, path, opts)
   -- a misspelt option (inputs = {1, 3, 48, 48}) was ignored: the model was exported for 32x32 images
   opts = keys.check('ts.onnx.export', opts or {}, export_options, 2)
   Module.check(model, 'ts.onnx.export(model, path, opts): model', 2)
   -- a table with a forward alone passed the check above and failed inside as "attempt to call method 'evaluate'"
   if type(model.evaluate) ~= 'function' or type(model.__typename) ~= 'string' then
      error('ts.onnx.export(model, path, opts): model must be a network of ts.nn layers, got a table with a forward', 2)
   end
   -- checked before the work: a path with a NUL failed at the end, in ts.files.writeFile, at a line of this file
   cffi.path(path, 'ts.onnx.export(model, path, opts)')
   if path == '' then error('ts.onnx.export(model, path, opts): path must be a file\'s path, got an empty string', 2) end
   -- the settings table (a ts.data.preprocess carries its own): a preprocess of true or 5 was indexed as a table
   local pp = opts.preprocess
   local settings = type(pp) == 'table' and (pp.settings or pp) or pp or nil   -- (false: none)
   if settings ~= nil and type(settings) ~= 'table' then
      error('ts.onnx.export: preprocess must be a ts.data.preprocess or its settings, got ' .. keys.show(pp), 2)
   end
   -- the loader's size: the images it gives the network are out_h x out_w, and the graph takes what the network takes
   local valid, pre = pcall(require('ts.data').preprocess, settings)
   local size = settings and valid and pre.c.out_h > 0 and {pre.c.out_h, pre.c.out_w} or nil
   local input = opts.input or {1, 3, size and size[1] or 32, size and size[2] or 32}
   local opset = opts.opset or 17
   -- what the graph would carry wrong: an input of another rank, an opset older than the forms the operators are
   -- written in (13: Pad, Slice and Resize taking their settings as inputs), a standardization dividing by zero,
   -- class ids no list holds
   local ok_input = type(input) == 'table' and #input == 4
   for i = 1, 4 do
      if ok_input and not (type(input[i]) == 'number' and input[i] % 1 == 0 and input[i] >= 1 and input[i] <= 65536) then
         ok_input = false
      end
   end
   if not ok_input then error('ts.onnx.export: input must be {N, C, H, W}, four whole numbers >= 1', 2) end
   keys.count(opset, 'ts.onnx.export', 'opset', 13, 21, 2)
   -- (IR version 3 has initializers listed among the graph's inputs, as this writer does not: onnx's checker refused
   -- the file that was written)
   local ir_version = keys.count(opts.ir_version or 8, 'ts.onnx.export', 'ir_version', 4, 11, 2)
   for _, key in ipairs({'mean', 'std'}) do
      local list = settings and settings[key]
      for i, v in ipairs(type(list) == 'table' and list or {}) do
         if not T.isFinite(v) or (key == 'std' and v == 0) then
            error(('ts.onnx.export: preprocess %s[%d] must be a finite number%s, got %s'):format(key, i,
                  key == 'std' and ' other than 0' or '', tostring(v)), 2)
         end
      end
      -- one value for all channels or one per channel: a mean of 3 values for 4 channels subtracted 0 from the fourth
      local channels = settings and settings.grayscale and 1 or input[2]
      if type(list) == 'table' and #list ~= 1 and #list < channels then
         error(('ts.onnx.export: preprocess %s has %d values for %d channels: give 1, or one per channel, got %s')
               :format(key, #list, channels, keys.show(list)), 2)
      end
   end
   -- the rest as ts.data.preprocess checks them (a misspelt setting, meen = {...}, was left out of the graph)
   if settings and not valid then error('ts.onnx.export: ' .. tostring(pre):gsub('^[^:]*:%d+: ', ''), 2) end
   -- what the loader does that the graph would not: images resized to another size than the input's (the graph took
   -- 32x32 images where the network had learnt on the 48x48 the loader made), grayscale of other than RGB (the
   -- luma convolution of 3 channels was written for a 1-channel input, and onnxruntime refused the model)
   if size and (input[3] ~= size[1] or input[4] ~= size[2]) then
      error(('ts.onnx.export: input is %dx%d, and preprocess resizes the images to %dx%d: give input = {N, C, %d, %d}')
            :format(input[3], input[4], size[1], size[2], size[1], size[2]), 2)
   end
   if settings and settings.grayscale and input[2] ~= 1 and input[2] ~= 3 then
      error(('ts.onnx.export: preprocess grayscale takes RGB images (3 channels, or 1 already gray), and input has %d')
            :format(input[2]), 2)
   end
   local named, classes = pcall(require('ts.data').classNamesById, opts.classes, 'ts.onnx.export: classes')
   if not named then error(tostring(classes):gsub('^[^:]*:%d+: ', ''), 2) end
   local was_training, was_fused = model.train, model.fuseInference
   model:evaluate()
   -- one forward in plain evaluation: every layer sets its parameters for this input size ('same' padding) and
   -- its output, whose size the graph's output takes
   local channels_in = input[2]
   local net_channels = settings and settings.grayscale and 1 or channels_in
   local probe = {input[1], net_channels, input[3], input[4]}
   local built, out, g = pcall(function()
      local ran, out = pcall(model.forward, model, T.zeros(probe):to(model.device or 'cpu'))
      -- (a network that does not take the input, one too small for its pooling above all, failed naming a layer alone)
      if not ran then
         error(('ts.onnx.export: the model does not take the input {%s} (opts.input%s): %s'):format(
               table.concat(probe, ', '), settings and ', through preprocess' or '', tostring(out)), 0)
      end
      local g = new_graph(opset)
      local x = 'images'
      if settings then x = preprocess(g, settings, pre, x, channels_in) end
      g:node('Identity', {M.emit(g, model, x)}, nil, 'logits')   -- the output's own name, whatever the last layer was
      return out, g
   end)
   -- the mode the model came in, also when the export failed (a layer without an ONNX form, an input of the wrong
   -- channels): a training loop that went on after a failed export trained in evaluation mode, dropout off and batch
   -- norm on its running statistics
   if was_training then model:training() elseif was_fused then model:evaluate{fused = was_fused} end
   if not built then error(out, 0) end

   local graph = pb.message()
   for _, n in ipairs(g.nodes) do graph:message(1, n) end
   graph:string(2, 'tshost')
   for _, init in ipairs(g.initializers) do graph:message(5, init) end
   local out_dims = {input[1]}
   for i = 2, out:dim() do out_dims[i] = out:size(i) end
   graph:message(11, value_info('images', input))
   graph:message(12, value_info('logits', out_dims, out:size(1) == input[1]))

   local model_proto = pb.message():varint(1, ir_version):string(2, 'tshost'):string(3, '1')
   model_proto:message(7, graph):message(8, pb.message():string(1, ''):varint(2, opset))
   local doc = 'exported by tshost from a ' .. M.describe(model)
   model_proto:string(6, doc)
   if next(classes) then
      local names = {}
      local n = 0
      for c in pairs(classes) do if c + 1 > n then n = c + 1 end end
      for c = 0, n - 1 do names[c + 1] = classes[c] or tostring(c) end
      model_proto:message(14, pb.message():string(1, 'class_names'):string(2, json.encode(names)))
   end
   if settings then
      model_proto:message(14, pb.message():string(1, 'input'):string(2, 'images in 0..1, RGB, channels first; preprocessing inside'))
   end
   -- (a folder not there or not writable was "<path>: cannot write ...", which did not name the call)
   local written, why = pcall(files.writeFile, path, model_proto:encode())
   if not written then error('ts.onnx.export: ' .. tostring(why):gsub('^[^:]*:%d+: ', ''), 2) end
   return path
end

return M
