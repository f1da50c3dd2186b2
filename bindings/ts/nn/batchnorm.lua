-- BatchNorm2d(C, opts) over [N,C,H,W] and BatchNorm1d(C, opts) over [N,C], with PyTorch's semantics:
-- eps 1e-5, momentum 0.1 (running = (1-m) running + m batch; the variance kept unbiased), affine=true.
-- In evaluation mode, or when frozen with opts.freeze_stats, the running statistics normalize.
-- In training, a Sequential fuses a ReLU that follows into the batch norm (Module's fusion protocol): relu(bn(x))
-- is written straight into the ReLU's output and the backward takes the gradient through it, so the normalized
-- values and their gradient never go through memory; the batch norm's own output is then not kept (nil).
local ffi = require('ffi')
local Module = require('ts.nn.module')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local C, check, ptr = cffi.C, cffi.check, cffi.ptr
local keys = require('ts.keys')

local BatchNorm = Module.class('BatchNorm', Module)
BatchNorm._params = {'weight', 'bias'}
BatchNorm._buffers = {'running_mean', 'running_var', 'num_batches_tracked'}
BatchNorm._hostOnly = {num_batches_tracked = true}   -- a counter bumped every step: no device round trip
BatchNorm._optional = {num_batches_tracked = true}

local bn_options = {eps = true, momentum = true, affine = true}
function BatchNorm:__init(channels, opts)
   -- a misspelt option (momentun = 0.01) was ignored: the layer kept the default
   opts = keys.check(self.__typename, opts or {}, bn_options, 3)
   if type(channels) ~= 'number' or not (channels >= 1 and channels % 1 == 0) then
      error(self.__typename .. '(channels): channels must be a positive whole number, got ' .. tostring(channels), 3)
   end
   self.channels = channels
   -- (nil is the default; false, which `or` took for it, is checked and refused)
   self.eps = opts.eps == nil and 1e-5 or opts.eps
   self.momentum = opts.momentum == nil and 0.1 or opts.momentum
   -- checked here, not at the first forward: a negative or NaN eps made every output NaN, and a momentum outside
   -- [0, 1] (or NaN) turned the running statistics, which evaluation and the saved model use, into nonsense
   if not (T.isFinite(self.eps) and self.eps >= 0) then
      error(('%s: eps must be a finite number >= 0, got %s'):format(self.__typename, tostring(self.eps)), 3)
   end
   keys.fraction(self.momentum, self.__typename, 'momentum', 3)
   if keys.flag(opts.affine, self.__typename, 'affine', 3) ~= false then   -- ('no' kept the affine parameters)
      self.weight = T.ones(channels)
      self.bias = T.zeros(channels)
      self.grad.weight = T.zeros(channels)
      self.grad.bias = T.zeros(channels)
   end
   self.running_mean = T.zeros(channels)
   self.running_var = T.ones(channels)
   self.num_batches_tracked = T.zeros({1}, 'int64'):view({})
   self.save_mean = T.zeros(channels)
   self.save_invstd = T.zeros(channels)
end

function BatchNorm:checkInput(input)
   local want = self.__typename == 'BatchNorm1d' and 2 or 4
   if input:dim() ~= want then
      error(('%s: expected a %d-dim input, got %s'):format(self.__typename, want, tostring(input:size())), 3)
   end
   if input:size(2) ~= self.channels then
      error(('%s(%d): the input %s has %d %s, the layer normalizes %d'):format(self.__typename, self.channels,
            tostring(input:size()), input:size(2), want == 2 and 'features' or 'channels', self.channels), 3)
   end
end

-- Batch statistics are used in training mode, unless the module was frozen and asked to keep its stats
function BatchNorm:usesBatchStats() return self.train and not (self.frozen and self.freezeStats) end

-- Gathering the statistics of the input over many batches (ts.updateBatchNorm), between startGathering and
-- finishGathering: every batch normalized with its own statistics adds them, in doubles, by Chan's pairwise
-- combination of (count, mean, sum of squared deviations), so the result is the mean and variance of all the
-- batches' values together, whatever the batches' sizes, not a mean of batch means. The kernel hands a batch's mean
-- and unbiased variance over in the running statistics, which momentum 1 sets to them alone.
function BatchNorm:startGathering()
   self.gathering = {count = 0, mean = ffi.new('double[?]', self.channels), m2 = ffi.new('double[?]', self.channels),
                     momentum = self.momentum, running_mean = self.running_mean:clone(), running_var = self.running_var:clone(),
                     num_batches_tracked = self.num_batches_tracked:clone()}
   self.momentum = 1
end

-- adds the batch just normalized (m values a channel) to the gathered statistics
local function gather(self, input)
   local g, m = self.gathering, input:numel() / self.channels
   local bm, bv = self.running_mean:cpu():contiguous(), self.running_var:cpu():contiguous()
   local pm, pv = ffi.cast('float *', bm:data()), ffi.cast('float *', bv:data())
   local n = g.count + m
   for c = 0, self.channels - 1 do
      local d = pm[c] - g.mean[c]
      g.mean[c] = g.mean[c] + d * m / n
      g.m2[c] = g.m2[c] + pv[c] * (m - 1) + d * d * g.count * m / n
   end
   g.count = n
end

-- Ends the gathering: with keep, the running statistics become the gathered mean and unbiased variance (left as they
-- were when no batch was gathered); without it, they are restored to what they were before it began. The count of
-- batches trained on is not changed by the gathering. Returns the number of values a channel gathered.
function BatchNorm:finishGathering(keep)
   local g = self.gathering
   if not g then return 0 end
   self.gathering, self.momentum = nil, g.momentum
   self.num_batches_tracked:copy(g.num_batches_tracked)
   if keep and g.count > 0 then
      local mean, var = T.zeros(self.channels), T.zeros(self.channels)
      local pm, pv = ffi.cast('float *', mean:data()), ffi.cast('float *', var:data())
      for c = 0, self.channels - 1 do
         pm[c], pv[c] = g.mean[c], g.m2[c] / math.max(g.count - 1, 1)
      end
      self.running_mean:copy(mean)
      self.running_var:copy(var)
   else
      self.running_mean:copy(g.running_mean)
      self.running_var:copy(g.running_var)
   end
   return g.count
end

-- y = bn(x), or relu(bn(x)) when relu
local function normalize(self, input, y, relu)
   self:checkInput(input)
   local batch = self:usesBatchStats()
   check(C.ts_batchnorm_forward(y._c, input._c, ptr(self.weight), ptr(self.bias), self.running_mean._c,
                                self.running_var._c, self.save_mean._c, self.save_invstd._c, batch and 1 or 0,
                                relu and 1 or 0, self.momentum, self.eps))
   if batch then self.num_batches_tracked:fill(self.num_batches_tracked:item() + 1) end
   -- save_mean and save_invstd now hold this batch's statistics, or the running ones
   self.saved_stats = batch and 'batch' or 'running'
   if batch and self.gathering then gather(self, input) end
   return y
end

-- the input gradient from gradOutput, which is the fused ReLU's output's gradient when relu_output is given
local function gradient(self, input, gradOutput, relu_output)
   -- the gradient takes the statistics the forward saved: in training the batch's, in evaluation the running ones.
   -- Before any forward they were zeros (an evaluation's backward gave zero gradients without a word), and after a
   -- forward in the other mode they were the other statistics (an evaluation's gradient scaled by a batch's invstd)
   local want = self:usesBatchStats() and 'batch' or 'running'
   if self.saved_stats ~= want then
      error(('%s:backward: no forward in %s mode came before it (the %s statistics are needed)'):format(self.__typename,
            want == 'batch' and 'training' or 'evaluation', want), 3)
   end
   local gx = self:buffer('gradInput', input:size())
   local frozen = self.frozen
   check(C.ts_batchnorm_backward(gx._c, not frozen and ptr(self.grad.weight) or nil,
                                 not frozen and ptr(self.grad.bias) or nil, gradOutput._c, ptr(relu_output), input._c,
                                 ptr(self.weight), self.save_mean._c, self.save_invstd._c,
                                 self:usesBatchStats() and 1 or 0))
   return gx
end

function BatchNorm:updateOutput(input)
   return normalize(self, input, self:buffer('output', input:size()), false)
end

function BatchNorm:updateGradInput(input, gradOutput) return gradient(self, input, gradOutput, nil) end

-- The fusion protocol (Module): in training, a plain ReLU after this batch norm joins its forward
function BatchNorm:fuses(next) return self.train and next ~= nil and next.__typename == 'ReLU' and 1 or 0 end

-- relu(bn(x)) into the ReLU's output, in one pass; this module's own output is not kept (nil) until an unfused forward
function BatchNorm:forwardFused(input, count, relu)
   self.output, self.fusedReLU = nil, relu
   relu.output = normalize(self, input, relu:buffer('output', input:size()), true)
   return relu.output
end

-- the backward of the pair from the gradient of the ReLU's output
function BatchNorm:backwardFused(input, gradOutput)
   self.gradInput = gradient(self, input, gradOutput, self.fusedReLU.output)
   self.fusedReLU.gradInput = nil
   return self.gradInput
end

function BatchNorm:extraRepr()
   local s = ('%d'):format(self.channels)
   if self.eps ~= 1e-5 then s = s .. (', eps=%g'):format(self.eps) end
   if self.momentum ~= 0.1 then s = s .. (', momentum=%g'):format(self.momentum) end
   if not self.weight then s = s .. ', affine=false' end
   return s
end

local BatchNorm2d = Module.class('BatchNorm2d', BatchNorm)
local BatchNorm1d = Module.class('BatchNorm1d', BatchNorm)
return {BatchNorm2d = BatchNorm2d, BatchNorm1d = BatchNorm1d}
