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
local keys = require('ts.keys')

local CrossEntropyLoss = Module.class('CrossEntropyLoss', Module)

-- Class weights are shares: a NaN, or weights that are all 0, made every loss NaN, and a negative weight a loss that
-- training drives down without end by getting that class wrong. w a tensor or a list; what names the caller in the
-- error, at `level` as error's counted from the caller. ts.train checks its class_weights here too, before a run.
function CrossEntropyLoss.checkWeights(w, what, level)
   local ok, t = pcall(function() return T.isTensor(w) and w or T.tensor(w) end)
   if not ok or t:numel() == 0 then
      error(('%s: class weights must be a tensor or a list of numbers, got %s'):format(what, tostring(w)), level + 1)
   end
   local values = t:contiguous():view(-1):totable()
   local positive = 0
   for i, v in ipairs(values) do
      if not (T.isFinite(v) and v >= 0) then
         error(('%s: class weight %d (class %d) is %s: weights must be finite numbers >= 0'):format(what, i, i - 1,
               tostring(v)), level + 1)
      end
      if v > 0 then positive = positive + 1 end
   end
   if positive == 0 then error(('%s: the class weights are all 0'):format(what), level + 1) end
end

local ce_options = {weight = 1, label_smoothing = 1}
function CrossEntropyLoss:__init(opts)
   opts = keys.check('CrossEntropyLoss', opts or {}, ce_options, 3)   -- label_smothing = 0.1 was ignored
   if opts.weight then CrossEntropyLoss.checkWeights(opts.weight, 'CrossEntropyLoss', 3) end
   self.weight = opts.weight and (T.isTensor(opts.weight) and opts.weight:float():contiguous() or T.tensor(opts.weight))
   self.label_smoothing = opts.label_smoothing or 0
   -- checked here: a string failed in the FFI at the first forward ("cannot convert 'string' to 'double'"), and 1.5 was
   -- refused only there
   keys.fraction(self.label_smoothing, 'CrossEntropyLoss', 'label_smoothing', 3)
end

-- Class ids as a contiguous int64 tensor, from a tensor of any dtype or a Lua list; an error naming `what` (at `level`
-- as error's, counted from the caller; 0: no position) when a value is not a whole number: a float target of 1.5 (a
-- probability or a mistake) must not pass as class 1. The metric losses' labels are taken alike.
function CrossEntropyLoss.classIds(target, what, level)
   level = level == 0 and 0 or level + 1
   if type(target) == 'number' then target = {target} end   -- one sample's class (1.5 was cut to 1 as a tensor)
   if not T.isTensor(target) then
      if type(target) ~= 'table' then   -- nil failed as "ts.tensor: expected a (nested) table of numbers, got nil"
         error(('%s: the targets must be a tensor or a list of class ids, got %s'):format(what, keys.show(target)), level)
      end
      for i, v in ipairs(target) do
         if type(v) ~= 'number' or v % 1 ~= 0 then
            error(('%s: target %d is %s, not a class id (a whole number)'):format(what, i, tostring(v)), level)
         end
      end
      target = T.tensor(target, 'int64')
   end
   if target:dtype() == 'float32' or target:dtype() == 'float64' then
      local _, _, nonfinite, fractional = T.survey(target)
      if nonfinite + fractional > 0 then
         error(('%s: the %s targets hold values that are not class ids (whole numbers); class ids are ' ..
                'int64, and probabilities as targets are not supported'):format(what, target:dtype()), level)
      end
   end
   if target:dtype() ~= 'int64' then target = target:long() end
   return target:contiguous()
end

-- the logits laid out densely, and the targets as contiguous int64 (on the host or the logits' device: C checks them
-- on the host and moves them); the class weights follow the logits to their device
local function targets_of(self, logits, target)
   if not T.isTensor(logits) then
      error(('%s: the logits must be a tensor [N, classes], got %s'):format(self.__typename, type(logits)), 3)
   end
   local device = logits:device()
   self.device = device
   if self.weight and self.weight:device() ~= device then self.weight = self.weight:to(device) end
   return Module.dense(logits), CrossEntropyLoss.classIds(target, 'CrossEntropyLoss', 3)
end

local loss_out = ffi.new('double[1]')
function CrossEntropyLoss:forward(logits, target)
   local t
   logits, t = targets_of(self, logits, target)
   check(C.ts_cross_entropy(loss_out, nil, logits._c, t._c, ptr(self.weight), self.label_smoothing))
   self.output = loss_out[0]
   return self.output
end
CrossEntropyLoss.updateOutput = CrossEntropyLoss.forward

function CrossEntropyLoss:backward(logits, target)
   local t
   logits, t = targets_of(self, logits, target)
   local g = self:buffer('gradInput', logits:size())
   check(C.ts_cross_entropy(loss_out, g._c, logits._c, t._c, ptr(self.weight), self.label_smoothing))
   self.output = loss_out[0]
   return g
end

function CrossEntropyLoss:backwardInto(logits, target, loss, correct)
   local t
   logits, t = targets_of(self, logits, target)
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

-- DistillationLoss(opts{teachers = {modules}, weight = 0.5, temperature = 1, label_smoothing, class weight}):
-- knowledge distillation (Hinton et al. 2015) from one teacher or an ensemble. The teachers see the same
-- batch as the student (the same augmented images: a consistent teacher, as Beyer et al. 2022 found best)
-- and teach the mean of their softened probabilities p = mean_j softmax(t_j / T):
--   loss = (1 - weight) CE(logits, target) + weight T^2 KL(p || softmax(logits / T))
-- CE is CrossEntropyLoss with the label smoothing and class weights given. The teachers run in evaluation
-- mode with their batch norms folded, on the logits' device (they are moved there). forward, backward and
-- backwardInto take the batch's input images as their last argument; backwardInto's count of right
-- predictions is the student's.
local DistillationLoss = Module.class('DistillationLoss', Module)

local MAX_TEACHERS = 16   -- kernels/pointwise.h's TSK_DISTILL_MAX_TEACHERS

local finite = T.isFinite

local distill_options = {teachers = 1, weight = 1, temperature = 1, label_smoothing = 1, class_weight = 1}
function DistillationLoss:__init(opts)
   -- temprature = 4 was ignored: the loss distilled at T = 1
   opts = keys.check('DistillationLoss', opts or {}, distill_options, 3)
   local teachers = opts.teachers
   if type(teachers) ~= 'table' or #teachers < 1 or #teachers > MAX_TEACHERS then
      error(('DistillationLoss: teachers must be a list of 1 to %d modules'):format(MAX_TEACHERS), 3)
   end
   for j, t in ipairs(teachers) do
      Module.check(t, ('DistillationLoss: teacher %d'):format(j), 3)
   end
   -- (false was taken as the default temperature, and the string '4' was refused as "got 4")
   self.weight = opts.weight == nil and 0.5 or opts.weight
   self.temperature = opts.temperature == nil and 1 or opts.temperature
   keys.fraction(self.weight, 'DistillationLoss', "weight (the distillation term's share)", 3)
   if not (finite(self.temperature) and self.temperature > 0) then
      error('DistillationLoss: temperature must be a finite number > 0, got ' .. keys.show(self.temperature), 3)
   end
   self.teachers = teachers
   self.hard = CrossEntropyLoss{weight = opts.class_weight, label_smoothing = opts.label_smoothing}
   for _, t in ipairs(teachers) do t:evaluate{fused = true} end
end

-- The arguments of forward, backward and backwardInto, checked where the caller gave them: checked further in, a
-- missing batch was named at a line of this file, and bad logits or targets as CrossEntropyLoss's
local function check_args(logits, target, x)
   if not T.isTensor(logits) then
      error(('DistillationLoss: the logits must be a tensor [N, classes], got %s'):format(keys.show(logits)), 3)
   end
   CrossEntropyLoss.classIds(target, 'DistillationLoss', 3)
   if not T.isTensor(x) then
      error('DistillationLoss: the batch\'s input images are needed as the last argument (the teachers see them)', 3)
   end
end

-- the teachers' logits for the batch x, stacked [teachers, N, classes] on x's device
function DistillationLoss:teach(x)
   local device = x:device()
   self.device = device
   local stack
   for j, t in ipairs(self.teachers) do
      if (t.device or 'cpu') ~= device then
         t:to(device)
         t:evaluate{fused = true}
      end
      local out = t:forward(x)
      -- every teacher gives logits [N, classes] of one shape (another failed as an unnamed copy or size error)
      if out:dim() ~= 2 or (stack and (out:size(1) ~= stack:size(2) or out:size(2) ~= stack:size(3))) then
         error(('DistillationLoss: teacher %d gives %s%s: the teachers\' logits must be [N, classes], one shape for all')
               :format(j, tostring(out:size()), stack and (', teacher 1 [%dx%d]'):format(stack:size(2), stack:size(3)) or ''), 0)
      end
      stack = stack or self:buffer('teacherLogits', {#self.teachers, out:size(1), out:size(2)})
      stack:select(1, j):copy(out)
   end
   return stack
end

-- the mixed loss into loss (one float on the device) and its gradient into g
function DistillationLoss:mix(logits, target, loss, correct, x)
   logits = Module.dense(logits)
   local stack = self:teach(x)
   local g = self.hard:backwardInto(logits, target, loss, correct)
   if self.weight ~= 0 then
      if self.weight ~= 1 then
         g:mul_(1 - self.weight)
         loss:mul_(1 - self.weight)
      else
         g:zero()
         loss:zero()
      end
      check(C.ts_distill_into(loss._c, g._c, logits._c, stack._c, self.temperature, self.weight))
   end
   return g
end

function DistillationLoss:backwardInto(logits, target, loss, correct, x)
   check_args(logits, target, x)
   return self:mix(logits, target, loss, correct, x)
end

function DistillationLoss:backward(logits, target, x)
   check_args(logits, target, x)
   self:follow(logits)
   local loss = self:buffer('lossOut', {1})
   local g = self:mix(logits, target, loss, nil, x)
   self.output = loss:get(1)
   self.gradInput = g
   return g
end

function DistillationLoss:forward(logits, target, x)
   check_args(logits, target, x)
   self:backward(logits, target, x)
   return self.output
end
DistillationLoss.updateOutput = DistillationLoss.forward

function DistillationLoss:extraRepr()
   local hard = self.hard:extraRepr()
   return ('%d teacher(s), weight=%g, temperature=%g%s'):format(#self.teachers, self.weight, self.temperature,
                                                               hard ~= '' and ', ' .. hard or '')
end

return {CrossEntropyLoss = CrossEntropyLoss, DistillationLoss = DistillationLoss}
