-- Upsample2d(scale_factor, mode = 'nearest'): [N,C,H,W] -> [N,C,H*sh,W*sw], as PyTorch's
-- nn.Upsample(scale_factor=..., mode='nearest') for whole factors (e.g. a decoder, or a small input brought
-- up to a pretrained network's size). scale_factor: a whole number, or {sh, sw}.
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check

local Upsample2d = Module.class('Upsample2d', Module)

function Upsample2d:__init(scale, mode)
   local sh, sw = scale, scale
   if type(scale) == 'table' then sh, sw = scale[1], scale[2] end
   -- both checked, sw too when it is nil: a list {2} passed with no width factor, and the forward failed on nil
   for _, s in ipairs({sh or false, sw or false}) do
      if type(s) ~= 'number' or s < 1 or s % 1 ~= 0 or s > 2 ^ 30 then
         error('Upsample2d(scale_factor): whole factors >= 1, got ' .. require('ts.keys').show(scale), 3)
      end
   end
   if (mode or 'nearest') ~= 'nearest' then error("Upsample2d: only mode = 'nearest' is available, got " .. tostring(mode), 3) end
   self.sh, self.sw = sh, sw
end

function Upsample2d:updateOutput(input)
   if input:dim() ~= 4 then error(('Upsample2d: expected an input [N,C,H,W], got %s'):format(tostring(input:size())), 3) end
   local oh, ow = input:size(3) * self.sh, input:size(4) * self.sw
   -- checked before the output is made: the C side's limit came after an allocation that failed first, as "out of
   -- memory" or "more elements than a 64-bit count (corrupt size field?)", naming neither the layer nor its factor
   if oh > 2 ^ 31 - 1 or ow > 2 ^ 31 - 1 then
      error(('Upsample2d: the output would be %.0fx%.0f (input %s, scale_factor=(%d, %d)), over 2^31 rows or columns')
            :format(oh, ow, tostring(input:size()), self.sh, self.sw), 3)
   end
   local y = self:buffer('output', {input:size(1), input:size(2), oh, ow})
   check(C.ts_upsample2d_forward(y._c, input._c, self.sh, self.sw))
   return y
end

function Upsample2d:updateGradInput(input, gradOutput)
   local gx = self:buffer('gradInput', input:size())
   check(C.ts_upsample2d_backward(gx._c, gradOutput._c, self.sh, self.sw))
   return gx
end

function Upsample2d:extraRepr() return ('scale_factor=(%d, %d), mode=nearest'):format(self.sh, self.sw) end

return {Upsample2d = Upsample2d}
