-- CrossEntropyLoss(opts{weight = per-class tensor, label_smoothing = 0}): from logits [N, classes] and
-- 0-based int64 targets [N] (a Lua table or any-dtype tensor is converted); mean over the batch,
-- weighted as PyTorch weighs it. forward returns the loss as a number; backward the gradient of the logits.
-- backwardInto(logits, target, loss, correct) is backward for training loops that must not wait for the
-- GPU: the loss goes into the one-element tensor loss, the count of right predictions is added to correct
-- (both on the logits' device), and self.output is not set.
local Module = require('ts.nn.module')
local T = require('ts.tensor')
local ffi = require('ffi')
local cffi = require('ts.ffi')
local C, check, ptr = cffi.C, cffi.check, cffi.ptr

local CrossEntropyLoss = Module.class('CrossEntropyLoss', Module)

function CrossEntropyLoss:__init(opts)
   opts = opts or {}
   self.weight = opts.weight and (T.isTensor(opts.weight) and opts.weight:float():contiguous() or T.tensor(opts.weight))
   self.label_smoothing = opts.label_smoothing or 0
end

-- targets as contiguous int64 (on the host or the logits' device: C checks them on the host and moves them);
-- the class weights follow the logits to their device
local function targets_of(self, logits, target)
   local device = logits:device()
   self.device = device
   if self.weight and self.weight:device() ~= device then self.weight = self.weight:to(device) end
   if not T.isTensor(target) then target = T.tensor(target, 'int64') end
   if target:dtype() ~= 'int64' then target = target:long() end
   return target:contiguous()
end

local loss_out = ffi.new('double[1]')
function CrossEntropyLoss:forward(logits, target)
   local t = targets_of(self, logits, target)
   check(C.ts_cross_entropy(loss_out, nil, logits._c, t._c, ptr(self.weight), self.label_smoothing))
   self.output = loss_out[0]
   return self.output
end
CrossEntropyLoss.updateOutput = CrossEntropyLoss.forward

function CrossEntropyLoss:backward(logits, target)
   local t = targets_of(self, logits, target)
   local g = self:buffer('gradInput', logits:size())
   check(C.ts_cross_entropy(loss_out, g._c, logits._c, t._c, ptr(self.weight), self.label_smoothing))
   self.output = loss_out[0]
   return g
end

function CrossEntropyLoss:backwardInto(logits, target, loss, correct)
   local t = targets_of(self, logits, target)
   local g = self:buffer('gradInput', logits:size())
   check(C.ts_cross_entropy_into(loss._c, ptr(correct), g._c, logits._c, t._c, ptr(self.weight), self.label_smoothing))
   return g
end

function CrossEntropyLoss:extraRepr()
   local s = {}
   if self.weight then s[#s + 1] = 'weight=[' .. self.weight:numel() .. ']' end
   if self.label_smoothing > 0 then s[#s + 1] = 'label_smoothing=' .. self.label_smoothing end
   return table.concat(s, ', ')
end

return {CrossEntropyLoss = CrossEntropyLoss}
