-- Metric learning: embeddings whose distances say "same or not" (face verification's way, here signs).
--   Normalize(eps = 1e-12): each row of [N, D] scaled to unit length (F.normalize), an embedding head's last layer.
--   TripletMarginLoss{margin = 1, eps = 1e-6}: PyTorch's TripletMarginLoss (p = 2): the mean over triplets of
--     max(d(a, p) - d(a, n) + margin, 0), d(u, v) = ||u - v + eps||. forward(x, labels) mines one triplet per
--     anchor in the batch ("batch hard": its farthest positive, its nearest negative; anchors without either are
--     left out); forward(x, {anchors = {...}, positives = {...}, negatives = {...}}) takes them given (row numbers,
--     1-based). backward(x, target) returns the gradient of the embeddings.
--   ContrastiveLoss{margin = 1}: over every pair of the batch, (d^2 for one class, max(margin - d, 0)^2 for two) / 2,
--     averaged; forward(x, labels), backward(x, labels).
-- labels: the batch's class ids (a Lua table or a tensor), as CrossEntropyLoss takes them. The rules are in
-- kernels/pointwise.h, the same on the CPU and the GPU; the loss stays on the device until it is read.
local Module = require('ts.nn.module')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check
local keys = require('ts.keys')

-- v unless it is not a finite number (>= 0 when nonnegative): a NaN margin made every triplet's loss 0 without a word,
-- a NaN or negative eps every output of Normalize NaN, and a string failed in the FFI
local function setting(v, what, name, nonnegative)
   if not (T.isFinite(v) and (not nonnegative or v >= 0)) then
      error(('%s: %s must be a finite number%s, got %s'):format(what, name, nonnegative and ' >= 0' or '', keys.show(v)), 4)
   end
   return v
end

-- the embeddings a loss takes: a table or nil failed inside as "attempt to call method 'contiguous'"
local function embeddings(self, x)
   if not T.isTensor(x) then
      error(('%s: the embeddings must be a tensor [N, D], got %s'):format(self.__typename, type(x)), 3)
   end
   return Module.dense(x)
end

local Normalize = Module.class('Normalize', Module)
function Normalize:__init(eps)
   self.eps = eps == nil and 1e-12 or setting(eps, 'Normalize(eps)', 'eps', true)
end
function Normalize:updateOutput(input)
   local y = self:buffer('output', input:size())
   check(C.ts_normalize_rows(y._c, input:contiguous()._c, self.eps))
   return y
end
function Normalize:updateGradInput(input, gradOutput)
   local gx = self:buffer('gradInput', input:size())
   check(C.ts_normalize_rows_backward(gx._c, gradOutput:contiguous()._c, input:contiguous()._c, self:fromForward('output')._c, self.eps))
   return gx
end

-- the labels as int64 on device, checked as CrossEntropyLoss checks its targets (0.5 was cut to class 0, nil failed
-- in ts.tensor without a name); what: the loss's name, for its errors
local function labels_on(labels, device, what)
   return require('ts.nn.loss').CrossEntropyLoss.classIds(labels, what, 0):to(device)
end

local function number(loss) return loss:cpu():get(1) end

local TripletMarginLoss = Module.class('TripletMarginLoss', Module)
function TripletMarginLoss:__init(opts)
   opts = keys.check('TripletMarginLoss', opts or {}, {margin = true, eps = true}, 3)   -- margn = 2 was ignored
   self.margin = opts.margin == nil and 1.0 or setting(opts.margin, 'TripletMarginLoss', 'margin')
   self.eps = opts.eps == nil and 1e-6 or setting(opts.eps, 'TripletMarginLoss', 'eps', true)
end

-- the triplets as int32 row indices (0-based) on x's device: mined from labels, or the given 1-based row numbers;
-- errors at the line that called forward or backward (this, triplet, forward or backward, the caller: level 4)
function TripletMarginLoss:triplets(x, target)
   local device, n = x:device(), x:size(1)
   if type(target) == 'table' and target.anchors then
      local out = {}
      for k, name in ipairs({'anchors', 'positives', 'negatives'}) do
         local rows = target[name]
         if type(rows) ~= 'table' or #rows ~= #target.anchors then
            error('TripletMarginLoss: anchors, positives and negatives must be lists of as many row numbers', 4)
         end
         local t = T.zeros({#rows}, 'int32')
         for i, r in ipairs(rows) do
            -- row 0 became -1, the mark of an anchor left out (the triplet gave no loss), and 1.5 was cut to row 1; a
            -- row past the batch was named 0-based by the host's check, and on the GPU read outside the embeddings
            t[i] = keys.count(r, 'TripletMarginLoss', ('%s[%d] (a 1-based row number)'):format(name, i), 1, n, 4) - 1
         end
         out[k] = t:to(device)
      end
      return out[1], out[2], out[3]
   end
   local a, p, q = T.zerosOn(device, {n}, 'int32'), T.zerosOn(device, {n}, 'int32'), T.zerosOn(device, {n}, 'int32')
   check(C.ts_triplet_mine(a._c, p._c, q._c, x._c, labels_on(target, device, 'TripletMarginLoss')._c, self.eps))
   return a, p, q
end

local function triplet(self, x, target, grad)
   x = x:contiguous()
   local a, p, q = self:triplets(x, target)
   local loss = T.zerosOn(x:device(), {1})
   check(C.ts_triplet_loss(loss._c, grad and grad._c or nil, x._c, a._c, p._c, q._c, self.margin, self.eps))
   self.output = number(loss)
   return self.output
end

function TripletMarginLoss:forward(x, target)
   local loss = triplet(self, embeddings(self, x), target, nil)   -- not a tail call: triplets counts this frame
   return loss
end
function TripletMarginLoss:backward(x, target)
   x = embeddings(self, x)
   self:follow(x)
   local g = self:buffer('gradInput', x:size())
   triplet(self, x, target, g)
   return g
end
function TripletMarginLoss:extraRepr() return ('margin=%g'):format(self.margin) end

local ContrastiveLoss = Module.class('ContrastiveLoss', Module)
function ContrastiveLoss:__init(opts)
   opts = keys.check('ContrastiveLoss', opts or {}, {margin = true}, 3)   -- margn = 2 was ignored
   self.margin = opts.margin == nil and 1.0 or setting(opts.margin, 'ContrastiveLoss', 'margin', true)
end
local function contrastive(self, x, labels, grad)
   x = x:contiguous()
   local loss = T.zerosOn(x:device(), {1})
   check(C.ts_contrastive_loss(loss._c, grad and grad._c or nil, x._c, labels_on(labels, x:device(), 'ContrastiveLoss')._c, self.margin))
   self.output = number(loss)
   return self.output
end
function ContrastiveLoss:forward(x, labels) return contrastive(self, embeddings(self, x), labels, nil) end
function ContrastiveLoss:backward(x, labels)
   x = embeddings(self, x)
   self:follow(x)
   local g = self:buffer('gradInput', x:size())
   contrastive(self, x, labels, g)
   return g
end
function ContrastiveLoss:extraRepr() return ('margin=%g'):format(self.margin) end

return {Normalize = Normalize, TripletMarginLoss = TripletMarginLoss, ContrastiveLoss = ContrastiveLoss}
