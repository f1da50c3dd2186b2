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

local Normalize = Module.class('Normalize', Module)
function Normalize:__init(eps) self.eps = eps or 1e-12 end
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

-- the labels as int64 on device
local function labels_on(labels, device)
   if not T.isTensor(labels) then labels = T.tensor(labels, 'int64') end
   if labels:dtype() ~= 'int64' then labels = labels:long() end
   return labels:contiguous():to(device)
end

local function number(loss) return loss:cpu():get(1) end

local TripletMarginLoss = Module.class('TripletMarginLoss', Module)
function TripletMarginLoss:__init(opts)
   opts = opts or {}
   self.margin, self.eps = opts.margin or 1.0, opts.eps or 1e-6
end

-- the triplets as int32 row indices (0-based) on x's device: mined from labels, or the given 1-based row numbers
function TripletMarginLoss:triplets(x, target)
   local device, n = x:device(), x:size(1)
   if type(target) == 'table' and target.anchors then
      local out = {}
      for k, name in ipairs({'anchors', 'positives', 'negatives'}) do
         local rows = target[name]
         if #rows ~= #target.anchors then error('TripletMarginLoss: anchors, positives and negatives must be as many', 3) end
         local t = T.zeros({#rows}, 'int32')
         for i, r in ipairs(rows) do t[i] = r - 1 end
         out[k] = t:to(device)
      end
      return out[1], out[2], out[3]
   end
   local a, p, q = T.zerosOn(device, {n}, 'int32'), T.zerosOn(device, {n}, 'int32'), T.zerosOn(device, {n}, 'int32')
   check(C.ts_triplet_mine(a._c, p._c, q._c, x._c, labels_on(target, device)._c, self.eps))
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

function TripletMarginLoss:forward(x, target) return triplet(self, x, target, nil) end
function TripletMarginLoss:backward(x, target)
   self:follow(x)
   local g = self:buffer('gradInput', x:size())
   triplet(self, x, target, g)
   return g
end
function TripletMarginLoss:extraRepr() return ('margin=%g'):format(self.margin) end

local ContrastiveLoss = Module.class('ContrastiveLoss', Module)
function ContrastiveLoss:__init(opts) self.margin = (opts or {}).margin or 1.0 end
local function contrastive(self, x, labels, grad)
   x = x:contiguous()
   local loss = T.zerosOn(x:device(), {1})
   check(C.ts_contrastive_loss(loss._c, grad and grad._c or nil, x._c, labels_on(labels, x:device())._c, self.margin))
   self.output = number(loss)
   return self.output
end
function ContrastiveLoss:forward(x, labels) return contrastive(self, x, labels, nil) end
function ContrastiveLoss:backward(x, labels)
   self:follow(x)
   local g = self:buffer('gradInput', x:size())
   contrastive(self, x, labels, g)
   return g
end
function ContrastiveLoss:extraRepr() return ('margin=%g'):format(self.margin) end

return {Normalize = Normalize, TripletMarginLoss = TripletMarginLoss, ContrastiveLoss = ContrastiveLoss}
