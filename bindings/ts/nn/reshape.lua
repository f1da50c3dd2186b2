-- Shape-only layers: Flatten() [N, ...] -> [N, prod(...)], View(...) with -1 allowed, Identity().
local Module = require('ts.nn.module')

local Flatten = Module.class('Flatten', Module)
function Flatten:updateOutput(input) return input:reshape(input:size(1), -1) end
function Flatten:updateGradInput(input, gradOutput) return gradOutput:reshape(input:size()) end

-- View(2048) or View(-1, 2048): sizes of one sample; the batch dim is kept
local View = Module.class('View', Module)
function View:__init(...) self.sizes = {...} end
function View:updateOutput(input)
   return input:reshape(input:size(1), unpack(self.sizes))
end
function View:updateGradInput(input, gradOutput) return gradOutput:reshape(input:size()) end
function View:extraRepr() return table.concat(self.sizes, ', ') end

local Identity = Module.class('Identity', Module)
function Identity:updateOutput(input) return input end
function Identity:updateGradInput(input, gradOutput) return gradOutput end

return {Flatten = Flatten, View = View, Identity = Identity}
