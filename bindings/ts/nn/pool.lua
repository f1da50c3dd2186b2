-- MaxPool2d(kernel, stride = kernel, padding = 0, opts{ceil_mode}), AvgPool2d(kernel, stride, padding,
-- opts{ceil_mode, count_include_pad = true}), and GlobalAvgPool2d() = AdaptiveAvgPool2d(1): [N,C,H,W] -> [N,C,1,1].
local ffi = require('ffi')
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check
local keys = require('ts.keys')

local function pool_params(self, input)
   local p = self.params
   if self.global then
      -- an average over no pixels is no number: H or W of 0 was "kernel and stride must be >= 1", a 3-dim input
      -- "size: dim 4 out of range", neither naming the layer
      if input:dim() ~= 4 or input:size(3) == 0 or input:size(4) == 0 then
         error(('%s: expected an input [N,C,H,W] with H, W >= 1, got %s'):format(self.__typename,
               tostring(input:size())), 0)
      end
      p.kernel_h, p.kernel_w, p.stride_h, p.stride_w = input:size(3), input:size(4), 1, 1
   end
   return p
end

local max_options, avg_options = {ceil_mode = true}, {ceil_mode = true, count_include_pad = true}
local function new_pool(self, kernel, stride, padding, opts)
   if kernel == nil then error(self.__typename .. '(kernel, stride, padding): kernel size missing', 3) end
   local what = self.__typename
   -- a misspelt option (ceilmode = true) was ignored; MaxPool2d has no count_include_pad
   opts = keys.check(what, opts or {}, what == 'AvgPool2d' and avg_options or max_options, 3)
   local p = ffi.new('ts_pool2d_params')   -- (Module.sizes: a kernel of 2.5 was cut to 2; errors at the code making the layer)
   p.kernel_h, p.kernel_w = Module.sizes(kernel, what, 'kernel', 1, 2, 3)
   p.stride_h, p.stride_w = Module.sizes(stride or kernel, what, 'stride', 1, 2, 3)
   p.pad_h, p.pad_w = Module.sizes(padding or 0, what, 'padding', 0, 2, 3)
   -- switches: 0 or 'no' was true
   p.ceil_mode = keys.flag(opts.ceil_mode, what, 'ceil_mode', 3) and 1 or 0
   p.count_include_pad = keys.flag(opts.count_include_pad, what, 'count_include_pad', 3) == false and 0 or 1
   self.params = p
end

local function describe(self)
   local p = self.params
   if self.global then return '' end
   -- the stride is always shown (no default given): it defaults to the kernel, not to 1
   local s = ('kernel=%dx%d'):format(p.kernel_h, p.kernel_w) .. Module.axesRepr('stride', p.stride_h, p.stride_w) ..
             Module.axesRepr('padding', p.pad_h, p.pad_w, 0)
   if p.ceil_mode == 1 then s = s .. ', ceil_mode=true' end
   return s
end

local shape4 = ffi.new('int64_t[4]')
local function output_shape(input, p)
   check(C.ts_pool2d_output_size(input._c, p, shape4))
   return {tonumber(shape4[0]), tonumber(shape4[1]), tonumber(shape4[2]), tonumber(shape4[3])}
end

local MaxPool2d = Module.class('MaxPool2d', Module)
MaxPool2d.__init = new_pool
MaxPool2d.extraRepr = describe

function MaxPool2d:updateOutput(input)
   local shape = output_shape(input, self.params)
   local y = self:buffer('output', shape)
   local idx = self:buffer('indices', shape, 'int32')
   check(C.ts_maxpool2d_forward(y._c, idx._c, input._c, self.params))
   return y
end

function MaxPool2d:updateGradInput(input, gradOutput)
   local gx = self:buffer('gradInput', input:size())
   check(C.ts_maxpool2d_backward(gx._c, gradOutput._c, self:fromForward('indices')._c, self.params))
   return gx
end

local AvgPool2d = Module.class('AvgPool2d', Module)
AvgPool2d.__init = new_pool
AvgPool2d.extraRepr = describe

function AvgPool2d:updateOutput(input)
   local p = pool_params(self, input)
   local y = self:buffer('output', output_shape(input, p))
   check(C.ts_avgpool2d_forward(y._c, input._c, p))
   return y
end

function AvgPool2d:updateGradInput(input, gradOutput)
   local gx = self:buffer('gradInput', input:size())
   check(C.ts_avgpool2d_backward(gx._c, gradOutput._c, pool_params(self, input)))
   return gx
end

local GlobalAvgPool2d = Module.class('GlobalAvgPool2d', AvgPool2d)
function GlobalAvgPool2d:__init()
   new_pool(self, 1)
   self.global = true
end

return {MaxPool2d = MaxPool2d, AvgPool2d = AvgPool2d, GlobalAvgPool2d = GlobalAvgPool2d,
        AdaptiveAvgPool2d = function(size)
           if size ~= 1 then error('AdaptiveAvgPool2d: only output size 1 (global pooling) is supported', 2) end
           return GlobalAvgPool2d()
        end}
