-- Linear(in, out, opts{bias = true}): y = x W^T + b, W [out, in]; PyTorch's default init.
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check, ptr = cffi.C, cffi.check, cffi.ptr
local keys = require('ts.keys')

local Linear = Module.class('Linear', Module)
Linear._params = {'weight', 'bias'}

function Linear:__init(nin, nout, opts)
   for _, v in ipairs({nin, nout}) do
      if type(v) ~= 'number' or v < 0 or v % 1 ~= 0 or v >= 2 ^ 31 then
         error(('Linear(in, out): sizes must be whole numbers >= 0, got %s'):format(tostring(v)), 3)
      end
   end
   opts = keys.check('Linear', opts or {}, {bias = true}, 3)   -- Linear(2, 3, {bais = false}) kept its bias
   self.nin, self.nout = nin, nout
   self:addParameter('weight', nout, nin)
   if keys.flag(opts.bias, 'Linear', 'bias', 3) ~= false then self:addParameter('bias', nout) end   -- ('no' kept it)
   self:reset()
end

function Linear:reset() return self:resetUniform(self.nin) end

function Linear:updateOutput(input)
   if input:dim() ~= 2 then
      error(('Linear: expected input [N,%d], got %s (add nn.Flatten() before it?)'):format(self.nin, tostring(input:size())), 3)
   end
   local y = self:buffer('output', {input:size(1), self.nout})
   check(C.ts_linear_forward(y._c, input._c, self.weight._c, ptr(self.bias), self:mathCode()))
   return y
end

function Linear:updateGradInput(input, gradOutput)
   local gx = self:gradInputBuffer(input)
   local frozen = self.frozen
   check(C.ts_linear_backward(ptr(gx), not frozen and ptr(self.grad.weight) or nil,
                              not frozen and ptr(self.grad.bias) or nil, gradOutput._c, input._c, self.weight._c,
                              self:mathCode()))
   return gx
end

function Linear:extraRepr()
   return ('%d, %d%s%s'):format(self.nin, self.nout, self.bias and '' or ', bias=false',
                                self.precision and ', ' .. self.precision or '')
end

return {Linear = Linear}
