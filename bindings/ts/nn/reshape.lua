-- Shape-only layers: Flatten() [N, ...] -> [N, prod(...)], View(...) with -1 allowed, Identity().
local Module = require('ts.nn.module')

-- the elements of one sample of input [N, ...]: counted from the sizes, so that an empty batch (N = 0, where a
-- -1 had nothing to divide) keeps its sample shape, [0, 90] and not [0, 0]
local function per_sample(input)
   local n = 1
   for d = 2, input:dim() do n = n * input:size(d) end
   return n
end

local Flatten = Module.class('Flatten', Module)
function Flatten:updateOutput(input)
   -- a [3] became [3, 1], three samples of one value, where PyTorch's Flatten refuses a tensor without a batch dim
   if input:dim() < 2 then error(('Flatten: input must be [N, ...], got %s'):format(tostring(input:size())), 3) end
   return input:reshape(input:size(1), per_sample(input))
end
function Flatten:updateGradInput(input, gradOutput)
   self:checkGradOutput(gradOutput, {input:size(1), per_sample(input)})   -- a [4,6] for [2,12] was reshaped as it was
   return gradOutput:reshape(input:size())
end

-- View(2048) or View(-1, 2048): sizes of one sample; the batch dim is kept
local View = Module.class('View', Module)
function View:__init(...)
   -- whole numbers >= 0 and at most one -1: View(-1, -1) gave [N,1,M], View(8, 1.5) failed in the forward, unnamed
   local sizes, free = {...}, 0
   for i = 1, select('#', ...) do
      local s = sizes[i]
      if s == -1 then free = free + 1 end
      if type(s) ~= 'number' or s % 1 ~= 0 or s < -1 or s > 2 ^ 53 or free > 1 then
         error(('View(...): sizes must be whole numbers >= 0 and at most one -1, got %s'):format(
               require('ts.keys').show({...})), 3)
      end
   end
   self.sizes = sizes
end
function View:updateOutput(input)
   -- a -1 is the sample's elements over the other sizes (read from the sample, so an empty batch keeps it)
   local sizes, known, free = {}, 1, nil
   for i, s in ipairs(self.sizes) do
      sizes[i] = s
      if s == -1 then free = i else known = known * s end
   end
   local sample = per_sample(input)
   if free and known > 0 and sample % known == 0 then sizes[free], known = sample / known, sample end
   if known ~= sample then
      error(('View(%s): the input %s holds %d elements a sample'):format(table.concat(self.sizes, ', '), tostring(input:size()),
            sample), 3)
   end
   return input:reshape(input:size(1), unpack(sizes))
end
function View:updateGradInput(input, gradOutput)
   self:checkGradOutput(gradOutput, self:fromForward('output'):size())
   return gradOutput:reshape(input:size())
end
function View:extraRepr() return table.concat(self.sizes, ', ') end

local Identity = Module.class('Identity', Module)
function Identity:updateOutput(input) return input end
function Identity:updateGradInput(input, gradOutput)
   self:checkGradOutput(gradOutput, input:size())   -- a gradient of another shape was handed on as the input's
   return gradOutput
end

return {Flatten = Flatten, View = View, Identity = Identity}
