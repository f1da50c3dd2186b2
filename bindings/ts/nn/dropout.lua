-- Dropout(p = 0.5): in training, zeroes each element with probability p and scales the rest by 1/(1-p);
-- the identity in evaluation mode.
local Module = require('ts.nn.module')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check

local Dropout = Module.class('Dropout', Module)

function Dropout:__init(p)
   self.p = p or 0.5
   if type(self.p) ~= 'number' or self.p < 0 or self.p >= 1 then error('Dropout(p): p must be in [0, 1)', 3) end
end

function Dropout:updateOutput(input)
   if not self.train or self.p == 0 then return input end
   local y = self:buffer('output', input:size())
   check(C.ts_dropout_forward(y._c, self:buffer('mask', input:size())._c, input._c, self.p))
   return y
end

function Dropout:updateGradInput(input, gradOutput)
   if not self.train or self.p == 0 then return gradOutput end
   return self:buffer('gradInput', input:size()):copy(gradOutput):mul_(self.mask)
end

function Dropout:extraRepr() return 'p=' .. self.p end

return {Dropout = Dropout}
