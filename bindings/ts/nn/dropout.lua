-- Dropout(p = 0.5): in training, zeroes each element with probability p and scales the rest by 1/(1-p);
-- the identity in evaluation mode. Each forward draws one seed from the global generator; the mask is a
-- function of that seed and the element's index (a counter-based generator, the same on the CPU and the GPU),
-- so the backward applies the same mask from the seed and nothing the size of the input is kept.
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check

local Dropout = Module.class('Dropout', Module)

function Dropout:__init(p)
   self.p = p or 0.5
   -- written so that NaN fails too: it passed, and was an identity in evaluation until training's forward refused it
   if type(self.p) ~= 'number' or not (self.p >= 0 and self.p < 1) then
      error('Dropout(p): p must be in [0, 1), got ' .. tostring(self.p), 3)
   end
end

function Dropout:updateOutput(input)
   if not self.train or self.p == 0 then
      self.seed = nil   -- a backward in training after this forward has no mask to take
      return input
   end
   self.seed = C.ts_rng_u64()
   self._scratch = self._scratch or {}
   self._scratch.seed = true   -- kept for the backward only: clearState drops it with the buffers
   local y = self:buffer('output', input:size())
   check(C.ts_dropout(y._c, input._c, self.p, self.seed))
   return y
end

function Dropout:updateGradInput(input, gradOutput)
   -- a gradient of another shape was handed on as the input's in evaluation, and in training refused as "dropout:
   -- output: expected shape" of the gradient's own shape
   self:checkGradOutput(gradOutput, input:size())
   if not self.train or self.p == 0 then return gradOutput end
   local g = self:buffer('gradInput', input:size())
   check(C.ts_dropout(g._c, gradOutput:contiguous()._c, self.p, self:fromForward('seed')))
   return g
end

function Dropout:extraRepr() return 'p=' .. self.p end

return {Dropout = Dropout}
