-- ReLU, LeakyReLU(negative_slope = 0.01), ELU(alpha = 1): elementwise, see kernels/cpu/activation.c.
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check

local function activation(name, kind, param_name, default)
   local cls = Module.class(name, Module)
   function cls:__init(param)
      self.param = param or default
      -- a NaN or infinite slope or alpha passed to C and made every negative input NaN
      if param_name and not (type(self.param) == 'number' and self.param == self.param and math.abs(self.param) < math.huge) then
         error(('%s(%s): %s must be a finite number, got %s'):format(name, param_name, param_name, tostring(self.param)), 3)
      end
   end
   function cls:updateOutput(input)
      local y = self:buffer('output', input:size())
      check(C.ts_activation_forward(y._c, input._c, kind, self.param))
      return y
   end
   function cls:updateGradInput(input, gradOutput)
      local gx = self:buffer('gradInput', input:size())
      check(C.ts_activation_backward(gx._c, gradOutput._c, input._c, self:fromForward('output')._c, kind, self.param))
      return gx
   end
   function cls:extraRepr()
      return param_name and (param_name .. '=' .. self.param) or ''
   end
   return cls
end

return {
   ReLU = activation('ReLU', C.TS_RELU, nil, 0),
   LeakyReLU = activation('LeakyReLU', C.TS_LEAKY_RELU, 'negative_slope', 0.01),
   ELU = activation('ELU', C.TS_ELU, 'alpha', 1.0),
}
