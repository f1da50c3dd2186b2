-- nn.Module: the Torch7 protocol every layer follows.
--   m:forward(x)              computes and returns m.output
--   m:backward(x, gradOutput) computes and returns m.gradInput, and ACCUMULATES parameter gradients
--   m:parameters()            two lists: parameters and their gradients (frozen ones left out)
--   m:training() / m:evaluate(), m:zeroGrad(), m:freeze() / m:unfreeze()
--   m:stateDict()             ordered {name, tensor} pairs named as PyTorch's state_dict()
--   m:to('cuda' | 'cpu')      moves parameters, gradients and buffers; later buffers are made there
--   m:clearState()            drops the outputs and scratch the layers keep between calls (Torch7's)
--   m:setPrecision('bf16')    mixed precision for the convolutions and linear layers (or 'fp32')
-- m.needsGradInput = false tells a layer that its gradInput is not needed (see Sequential).
-- A layer lists its parameter names in self._params (gradients in self.grad[name]) and its other
-- saved tensors in self._buffers; containers list their children in self._children.
local ts_tensor = require('ts.tensor')
local keys = require('ts.keys')
local C = require('ts.ffi').C

local Module = {}
Module.__index = Module
Module.__typename = 'Module'

-- Makes a module class: nn.class('Conv2d', Module); instances through Class(...) calling Class:__init(...)
local function class(name, parent)
   local cls = setmetatable({}, {
      __index = parent,
      __call = function(cls, ...)
         local self = setmetatable({}, cls)
         self.train = true
         self.grad = {}
         cls.__init(self, ...)
         return self
      end,
   })
   cls.__index = cls
   cls.__typename = name
   cls.__tostring = function(self) return self:describe('') end
   return cls
end
Module.class = class

function Module:__init() end

-- the size arguments of a layer (kernel, stride, padding, dilation, groups), checked when it is made (ts.keys.sizes)
Module.sizes = keys.sizes

-- whether the module holds tensors of its own (parameters, running statistics), as opposed to scratch and results
local function holds_tensors(m)
   for k, v in pairs(m) do
      if ts_tensor.isTensor(v) and not (m._scratch and m._scratch[k]) and k ~= 'output' and k ~= 'gradInput' then
         return true
      end
   end
   return false
end

-- A module without tensors of its own and without children (Normalize, ReLU, pooling, a loss) follows its input to
-- the input's device, as PyTorch's stateless modules work on any device: its scratch is made where the input is.
-- One that holds tensors stays where :to() put them, and a mismatch is an error naming both devices.
function Module:follow(input)
   local device = ts_tensor.isTensor(input) and input:device()
   if device and device ~= (self.device or 'cpu') and #self:children() == 0 and not holds_tensors(self) then
      self:clearState()
      self.device = device
   end
end

-- what a layer's forward and backward take are tensors: a Lua table ({{1, 2, 3}}) or a number reached the layer's
-- code and failed there as "attempt to call method 'dim'"
local function tensor_arg(self, pass, name, v)
   if not ts_tensor.isTensor(v) then
      error(('%s:%s(%s): %s %s'):format(self.__typename or 'module', pass, pass == 'forward' and 'input' or
            'input, gradOutput', name, v == nil and 'is nil' or 'must be a tensor, got ' .. type(v)), 3)
   end
end

-- A tensor laid out densely, as the kernels take it: a view that is not (a transpose, a slice with a step) copied,
-- as PyTorch's layers take any view (every layer refused one with "expected a contiguous tensor")
function Module.dense(v)
   return (ts_tensor.isTensor(v) and not v:isContiguous()) and v:contiguous() or v
end
local dense = Module.dense

function Module:forward(input)
   tensor_arg(self, 'forward', 'input', input)
   input = dense(input)
   self:follow(input)
   self.output = self:updateOutput(input)
   return self.output
end

-- a layer's updateGradInput also accumulates its parameters' gradients (unless frozen), in the same pass
function Module:backward(input, gradOutput)
   tensor_arg(self, 'backward', 'input', input)
   tensor_arg(self, 'backward', 'gradOutput', gradOutput)
   input, gradOutput = dense(input), dense(gradOutput)
   self:follow(input)
   self.gradInput = self:updateGradInput(input, gradOutput)
   return self.gradInput
end

-- What a backward takes from the forward before it (a ReLU's output, a max pool's indices, a dropout's seed, a
-- container's children's outputs): an error naming the module when there is none (no forward yet, or clearState
-- or :to() dropped what it kept), instead of indexing nil
function Module:fromForward(field)
   local v = self[field]
   if v == nil then
      error(('%s:backward: no forward came before it to keep its %s'):format(self.__typename or 'module', field), 0)
   end
   return v
end

-- v if it is a module (a layer or network made by calling its class), else an error "<what> must be a module, got
-- ..." at `level` as error's, counted from the caller (0: no position). A class has forward too (nn.ReLU for
-- nn.ReLU()): it passed a looser check and failed later inside the layer's code, or, as a teacher, set the mode of
-- every module made after it.
function Module.check(v, what, level)
   level = level == 0 and 0 or level + 1
   if type(v) ~= 'table' or type(v.forward) ~= 'function' then
      error(('%s must be a module, got %s'):format(what, type(v) == 'table' and 'a table that is not one' or
            keys.show(v)), level)
   end
   if rawget(v, '__typename') then
      error(('%s must be a module, got the class %s (make one: %s(...))'):format(what, v.__typename, v.__typename),
            level)
   end
   return v
end

-- whether tensor t has the shape `shape` (a size table), compared as numbers: Residual asks it on every forward
function Module.hasShape(t, shape)
   if t:dim() ~= #shape then return false end
   for i = 1, #shape do if t:size(i) ~= shape[i] then return false end end
   return true
end

-- An error naming the module unless gradOutput has the shape of what its forward gave (shape, a size table): the
-- layers written in Lua (reshapes, containers, the shortcut) read a gradient of another shape with the same count
-- of elements, or a wider one in part, without a word
function Module:checkGradOutput(gradOutput, shape)
   if not Module.hasShape(gradOutput, shape) then
      error(('%s:backward: gradOutput is %s, the forward gave %s'):format(self.__typename or 'module',
            tostring(gradOutput:size()), '[' .. table.concat(shape, 'x') .. ']'), 0)
   end
end

-- whether a caught error is the device running out of memory (the C side's flag, and its message: the flag
-- stays set until the next C error, so a later Lua error must not pass for one)
function Module.isOutOfMemory(err)
   return C.ts_last_error_is_oom() == 1 and type(err) == 'string' and err:find('out of memory', 1, true) ~= nil
end

-- An out-of-memory error from the innermost layer, with what it was given; the containers around it
-- add the layer's name and place (Sequential prefixes "name (Type): ").
function Module.describeError(err, input, pass)
   if not Module.isOutOfMemory(err) or err:find('out of memory in ', 1, true) then return err end
   local shape = type(input) == 'table' and input.size and tostring(input:size()) or '?'
   local device = type(input) == 'table' and input.device and input:device() or '?'
   return ('out of memory in %s, input %s on %s: %s'):format(pass, shape, device, err)
end

-- Reuses self[field] when it already has `shape` (a size table), else allocates zeros of that shape on
-- the module's device. clearState drops these.
function Module:buffer(field, shape, dtype)
   local t = self[field]
   if t ~= nil and t:dim() == #shape and t:dtype() == (dtype or 'float32') and t:device() == (self.device or 'cpu') then
      local same = true
      for i = 1, #shape do same = same and t:size(i) == shape[i] end
      if same then return t end
   end
   self[field] = nil   -- the old buffer may go before the new one is made
   t = ts_tensor.zerosOn(self.device or 'cpu', shape, dtype or 'float32')
   self[field] = t
   self._scratch = self._scratch or {}
   self._scratch[field] = true
   return t
end

function Module:clearState()
   return self:apply(function(m)
      for field in pairs(m._scratch or {}) do m[field] = nil end
      m.output, m.gradInput = nil, nil
   end)
end

-- Moves every tensor the modules hold (parameters, gradients, statistics; scratch is dropped and made
-- again where it is needed) to device, in place: a tensor object keeps its identity and now holds data
-- on the device, so optimizer groups and references made before the move stay valid. Fields in
-- _hostOnly stay on the host (counters read every step).
-- A move that fails (the device's memory full) names the call and marks no module as moved: every tensor moves first,
-- then every module is marked (a container, marked before its children moved, passed for a model on the device, and
-- a layer of it failed later as a mix of devices); calling to again goes on with the tensors left.
function Module:to(device)
   self:clearState()
   local ok, err = pcall(self.apply, self, function(m)
      for k, v in pairs(m) do
         if ts_tensor.isTensor(v) and not (m._hostOnly and m._hostOnly[k]) then v:moveTo(device) end
      end
      for _, v in pairs(m.grad or {}) do v:moveTo(device) end
   end)
   if not ok then
      error(('%s:to(%s): %s%s'):format(self.__typename or 'module', keys.show(device),
            tostring(err):gsub('^[^:]*:%d+: ', ''), Module.isOutOfMemory(err) and
            ' (some tensors are moved, none of the modules marked: free memory and call to again)' or ''), 2)
   end
   self:apply(function(m) m.device = device end)
   return self
end

-- a learnable tensor self[name] of the given shape, with its gradient self.grad[name]
function Module:addParameter(name, ...)
   self[name] = ts_tensor.zeros(...)
   self.grad[name] = ts_tensor.zeros(...)
   return self[name]
end

-- PyTorch's default initialization of convolutions and linear layers (kaiming_uniform with a = sqrt(5)):
-- weight and bias uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]
function Module:resetUniform(fan_in)
   -- no inputs (Linear(0, n)): nothing to scale by, so zeros, as PyTorch's bias bound is then (1/sqrt(0) made NaN)
   local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
   self.weight:uniform(-bound, bound)
   if self.bias then self.bias:uniform(-bound, bound) end
   return self
end

-- the gradInput buffer shaped like input, or nil when needsGradInput is false (Conv2d, Linear)
function Module:gradInputBuffer(input)
   if self.needsGradInput == false then return nil end
   return self:buffer('gradInput', input:size())
end

function Module:children() return self._children or {} end

-- for extraRepr: ', name=v', or ', name=(h, w)' when the two axes differ; '' when both are the default
function Module.axesRepr(name, h, w, default)
   if h == default and w == default then return '' end
   return h == w and (', %s=%d'):format(name, h) or (', %s=(%d, %d)'):format(name, h, w)
end

function Module:apply(fn)
   fn(self)
   for _, c in ipairs(self:children()) do c.module:apply(fn) end
   return self
end

-- Mixed precision: 'bf16' rounds the operands of every convolution's and linear layer's products to
-- bfloat16 and sums them in fp32 (twice the multiply-adds per instruction on processors with AVX512-BF16,
-- tensor cores on the GPU); 'fp32' (the default) computes in full precision. Parameters, gradients,
-- every other layer, the loss and the optimizer stay fp32. bf16 has fp32's exponent range, so no loss
-- scaling is needed.
Module.precisions = {fp32 = C.TS_MATH_FP32, bf16 = C.TS_MATH_BF16}

function Module:setPrecision(precision)
   if not Module.precisions[precision] then
      error(("setPrecision: precision must be 'fp32' or 'bf16', got %s"):format(tostring(precision)), 2)
   end
   return self:apply(function(m) m.precision = precision ~= 'fp32' and precision or nil end)
end

-- the TS_MATH_* code of this module's precision, for the C layers
function Module:mathCode() return Module.precisions[self.precision or 'fp32'] end

-- training() and evaluate() set the mode of every module. evaluate{fused = true} also lets a Sequential run a
-- convolution, its batch norm and ReLU as one convolution with the batch norm folded into it (inference: fewer
-- passes over memory, outputs equal to float rounding); the layers inside such a group then keep no outputs of
-- their own and take no gradients, so activation maps and saliency want plain evaluate().
--
-- The fusion protocol a module may follow, for the Sequential that holds it: m:fuses(a, b) says how many of
-- the modules after it (a, then b) its forward takes in (0: none); m:forwardFused(x, count, a, b) runs them as
-- one and returns (and sets as its output) the last one's output; m:backwardFused(x, g), when present, is the
-- group's backward from the last one's output gradient.
function Module:training() return self:apply(function(m) m.train, m.fuseInference = true, nil end) end
function Module:evaluate(opts)
   local fused = opts and opts.fused or nil
   return self:apply(function(m) m.train, m.fuseInference = false, fused end)
end
function Module:freeze() return self:apply(function(m) m.frozen = true end) end
function Module:unfreeze() return self:apply(function(m) m.frozen = nil end) end

function Module:parameters()
   local params, grads = {}, {}
   self:apply(function(m)
      if m.frozen then return end
      for _, name in ipairs(m._params or {}) do
         if m[name] then
            params[#params + 1] = m[name]
            grads[#grads + 1] = m.grad[name]
         end
      end
   end)
   return params, grads
end

function Module:zeroGrad()
   self:apply(function(m)
      for _, g in pairs(m.grad) do g:zero() end
   end)
   return self
end

-- Every tensor of the state, named as PyTorch names it: children by their names (a Sequential's are
-- 0, 1, 2, ...), then weight, bias, running_mean, ... A third field marks buffers a checkpoint may lack
-- (num_batches_tracked, which Keras-converted and older PyTorch checkpoints do not have).
function Module:stateDict(prefix, out)
   prefix, out = prefix or '', out or {}
   for _, name in ipairs(self._params or {}) do
      if self[name] then out[#out + 1] = {prefix .. name, self[name]} end
   end
   for _, name in ipairs(self._buffers or {}) do
      if self[name] then out[#out + 1] = {prefix .. name, self[name], (self._optional or {})[name]} end
   end
   for _, c in ipairs(self:children()) do c.module:stateDict(c.name == '' and prefix or prefix .. c.name .. '.', out) end
   return out
end

function Module:numParameters()
   local n = 0
   self:apply(function(m)
      for _, name in ipairs(m._params or {}) do
         if m[name] then n = n + m[name]:numel() end
      end
   end)
   return n
end

-- The one-line description of this layer (its constructor arguments)
function Module:extraRepr() return '' end

function Module:describe(indent)
   local own = 0
   for _, name in ipairs(self._params or {}) do
      if self[name] then own = own + self[name]:numel() end
   end
   local s = self.__typename .. '(' .. self:extraRepr() .. ')'
   if own > 0 then s = s .. ('  [%d params]'):format(own) end
   if self.frozen then s = s .. ' frozen' end
   return s
end

return Module
