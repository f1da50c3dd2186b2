-- ZeroPadShortcut(cin, cout, stride): the parameter-free "option A" shortcut of the CIFAR ResNets (He et
-- al. 2015): x[:, :, ::stride, ::stride] with (cout - cin) / 2 zero channels before and after.
local Module = require('ts.nn.module')

local ZeroPadShortcut = Module.class('ZeroPadShortcut', Module)

function ZeroPadShortcut:__init(cin, cout, stride)
   -- (Module.sizes: a stride of 0 or 1.5 failed in the forward as an unnamed slice or size error)
   cin = Module.sizes(cin, 'ZeroPadShortcut', 'cin', 1, 1, 3)
   cout = Module.sizes(cout, 'ZeroPadShortcut', 'cout', 1, 1, 3)
   stride = Module.sizes(stride or 2, 'ZeroPadShortcut', 'stride', 1, 1, 3)
   if (cout - cin) % 2 ~= 0 or cout < cin then error('ZeroPadShortcut: cout - cin must be even and >= 0', 3) end
   self.cin, self.cout, self.stride, self.pad = cin, cout, stride, (cout - cin) / 2
end

local function subsampled(t, s)
   return t:slice(3, 1, t:size(3), s):slice(4, 1, t:size(4), s)
end

-- an error unless input is [N,cin,H,W], at the caller of forward or backward (the backward took another one to a
-- raw "size: dim 4 out of range" or a copy of mismatched shapes)
local function check_input(self, input)
   if input:dim() ~= 4 or input:size(2) ~= self.cin then
      error(('ZeroPadShortcut: expected [N,%d,H,W], got %s'):format(self.cin, tostring(input:size())), 4)
   end
end

function ZeroPadShortcut:updateOutput(input)
   check_input(self, input)
   local s = self.stride
   local y = self:buffer('output', {input:size(1), self.cout, math.ceil(input:size(3) / s), math.ceil(input:size(4) / s)})
   y:zero()
   y:narrow(2, self.pad + 1, self.cin):copy(subsampled(input, s))
   return y
end

function ZeroPadShortcut:updateGradInput(input, gradOutput)
   check_input(self, input)
   -- (a gradient with more channels was read in part)
   self:checkGradOutput(gradOutput, {input:size(1), self.cout, math.ceil(input:size(3) / self.stride),
                                     math.ceil(input:size(4) / self.stride)})
   local gx = self:buffer('gradInput', input:size()):zero()
   subsampled(gx, self.stride):copy(gradOutput:narrow(2, self.pad + 1, self.cin))
   return gx
end

function ZeroPadShortcut:extraRepr() return ('%d, %d, stride=%d'):format(self.cin, self.cout, self.stride) end

return {ZeroPadShortcut = ZeroPadShortcut}
