-- Conv2d(in, out, kernel, opts) with opts (or positional stride, padding):
--   stride, padding (n, {h, w}, {top, bottom, left, right}, or 'same' as TensorFlow pads: the extra
--   pixel after), dilation, groups (in = groups: depthwise), bias (default true).
-- weight [out, in/groups, kh, kw], bias [out]; PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
local ffi = require('ffi')
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check, ptr = cffi.C, cffi.check, cffi.ptr
local keys = require('ts.keys')

local Conv2d = Module.class('Conv2d', Module)
Conv2d._params = {'weight', 'bias'}

local conv_options = {stride = true, padding = true, dilation = true, groups = true, bias = true}
function Conv2d:__init(nin, nout, kernel, opts, padding)
   if type(opts) == 'number' then opts = {stride = opts, padding = padding} end
   -- a misspelt option (strid = 2, paddding = 1) was ignored: the layer was made at the default
   opts = keys.check('Conv2d', opts or {}, conv_options, 3)
   for _, v in ipairs({nin, nout}) do
      if type(v) ~= 'number' or v < 1 or v % 1 ~= 0 then
         error('Conv2d(in, out, kernel, opts): channel counts must be positive whole numbers', 3)
      end
   end
   self.nin, self.nout = nin, nout
   -- the sizes checked (Module.sizes), errors at the code that made the layer (3 levels up: __init, the class's call)
   self.kh, self.kw = Module.sizes(kernel, 'Conv2d', 'kernel', 1, 2, 3)
   self.sh, self.sw = Module.sizes(opts.stride or 1, 'Conv2d', 'stride', 1, 2, 3)
   self.dh, self.dw = Module.sizes(opts.dilation or 1, 'Conv2d', 'dilation', 1, 2, 3)
   self.groups = Module.sizes(opts.groups or 1, 'Conv2d', 'groups', 1, 1, 3)
   if nin % self.groups ~= 0 or nout % self.groups ~= 0 then
      error(('Conv2d: %d in and %d out channels are not divisible by groups=%d'):format(nin, nout, self.groups), 3)
   end
   local p = opts.padding or 0
   if p == 'same' then self.same = true
   elseif type(p) == 'table' and #p == 4 then self.pad = {Module.sizes(p, 'Conv2d', 'padding', 0, 4, 3)}
   else
      local ph, pw = Module.sizes(p, 'Conv2d', 'padding', 0, 2, 3)
      self.pad = {ph, ph, pw, pw}
   end
   self.params = ffi.new('ts_conv2d_params')
   self:addParameter('weight', nout, nin / self.groups, self.kh, self.kw)
   if keys.flag(opts.bias, 'Conv2d', 'bias', 3) ~= false then self:addParameter('bias', nout) end   -- ('no' kept it)
   self:reset()
end

function Conv2d:reset() return self:resetUniform(self.nin / self.groups * self.kh * self.kw) end

-- TensorFlow 'same': out = ceil(n / s), total = max((out - 1) s + k_eff - n, 0), before = floor(total / 2)
local function same_pad(n, k, s, d)
   local out = math.ceil(n / s)
   local total = math.max((out - 1) * s + (k - 1) * d + 1 - n, 0)
   local before = math.floor(total / 2)
   return before, total - before
end

function Conv2d:setup(input)
   local p = self.params
   p.stride_h, p.stride_w, p.dilation_h, p.dilation_w, p.groups = self.sh, self.sw, self.dh, self.dw, self.groups
   p.math = self:mathCode()
   if self.same then
      p.pad_top, p.pad_bottom = same_pad(input:size(3), self.kh, self.sh, self.dh)
      p.pad_left, p.pad_right = same_pad(input:size(4), self.kw, self.sw, self.dw)
   else
      p.pad_top, p.pad_bottom, p.pad_left, p.pad_right = self.pad[1], self.pad[2], self.pad[3], self.pad[4]
   end
   return p
end

local shape4 = ffi.new('int64_t[4]')
function Conv2d:updateOutput(input)
   local p = self:setup(input)
   check(C.ts_conv2d_output_size(input._c, self.weight._c, p, shape4))
   local y = self:buffer('output', {tonumber(shape4[0]), tonumber(shape4[1]), tonumber(shape4[2]), tonumber(shape4[3])})
   check(C.ts_conv2d_forward(y._c, input._c, self.weight._c, ptr(self.bias), p))
   return y
end

-- The fusion protocol (Module): in fused evaluation, the batch norm after this convolution (using its running
-- statistics), and a ReLU after that, join the forward: the batch norm is folded into the weights and bias
-- (ts_batchnorm_fold) and the ReLU into the convolution's output
function Conv2d:fuses(bn, relu)
   if not self.fuseInference or self.train or not bn or bn.__typename ~= 'BatchNorm2d' or bn:usesBatchStats() then return 0 end
   return relu and relu.__typename == 'ReLU' and 2 or 1
end

function Conv2d:forwardFused(input, count, bn, relu)
   local w, b = self:buffer('foldedWeight', self.weight:size()), self:buffer('foldedBias', {self.nout})
   check(C.ts_batchnorm_fold(w._c, b._c, self.weight._c, ptr(self.bias), ptr(bn.weight), ptr(bn.bias), bn.running_mean._c,
                             bn.running_var._c, bn.eps))
   local p = self:setup(input)
   check(C.ts_conv2d_output_size(input._c, w._c, p, shape4))
   local last = count == 2 and relu or bn
   local y = last:buffer('output', {tonumber(shape4[0]), tonumber(shape4[1]), tonumber(shape4[2]), tonumber(shape4[3])})
   p.relu = count == 2 and 1 or 0
   local ok, err = pcall(check, C.ts_conv2d_forward(y._c, input._c, w._c, b._c, p))
   p.relu = 0
   if not ok then error(err, 0) end
   self.output = nil
   if count == 2 then bn.output = nil end   -- else y is the batch norm's output (its buffer)
   return y
end

function Conv2d:updateGradInput(input, gradOutput)
   local gx = self:gradInputBuffer(input)
   local frozen = self.frozen
   check(C.ts_conv2d_backward(ptr(gx), not frozen and ptr(self.grad.weight) or nil,
                              not frozen and ptr(self.grad.bias) or nil, gradOutput._c, input._c, self.weight._c,
                              self:setup(input)))
   return gx
end

function Conv2d:extraRepr()
   local s = ('%d, %d, kernel=%dx%d'):format(self.nin, self.nout, self.kh, self.kw) ..
             Module.axesRepr('stride', self.sh, self.sw, 1)
   local p = self.pad
   if self.same then s = s .. ", padding='same'"
   elseif p[1] == p[2] and p[3] == p[4] then s = s .. Module.axesRepr('padding', p[1], p[3], 0)
   else s = s .. (', padding=(%d, %d, %d, %d)'):format(p[1], p[2], p[3], p[4]) end   -- top, bottom, left, right
   s = s .. Module.axesRepr('dilation', self.dh, self.dw, 1)
   if self.groups ~= 1 then s = s .. (', groups=%d'):format(self.groups) end
   if not self.bias then s = s .. ', bias=false' end
   if self.precision then s = s .. ', ' .. self.precision end
   return s
end

return {Conv2d = Conv2d}
