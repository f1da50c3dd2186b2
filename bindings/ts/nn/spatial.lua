-- SpatialTransformer(localization [, size]): a learned affine warp in front of a network (Jaderberg et al.
-- 2015), as PyTorch's affine_grid + grid_sample (bilinear, zero padding, align_corners = false):
--   theta = localization(x) viewed [N,2,3]     (the localization network ends in 6 outputs)
--   grid  = affine_grid(theta, size)           [N,H,W,2], grid(i, j) = theta (x_j, y_i, 1), centres in -1..1
--   y     = grid_sample(x, grid)               [N,C,H,W] (size = {H, W}: the input's own by default)
-- The backward: gy gives the input's gradient through the sampling and ggrid, ggrid gives gtheta, and the
-- localization network's gradInput for gtheta is added to the input's (x feeds both). The localization's last
-- Linear should start at the identity warp (SpatialTransformer.identity(linear): zero weights, bias 1 0 0 0 1 0)
-- so that training starts from the plain network. Its child is named 'localization'.
local Module = require('ts.nn.module')
local Container = require('ts.nn.containers').Container
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check

local SpatialTransformer = Module.class('SpatialTransformer', Container)

function SpatialTransformer:__init(localization, size)
   self._children = {}
   self:add(Module.check(localization, 'SpatialTransformer(localization, size): localization', 3), 'localization', 3)
   if size ~= nil then   -- {'a', 'b'} failed comparing a string with a number
      self.out_size = {Module.sizes(size, 'SpatialTransformer(localization, size)', 'size', 1, 2, 3)}
   end
end

-- a Linear(in, 6) made to output the identity warp whatever its input
function SpatialTransformer.identity(linear)
   if linear.nout ~= 6 then error('SpatialTransformer.identity: the localization ends in 6 outputs, this Linear has ' .. tostring(linear.nout), 2) end
   -- without a bias it cannot give the identity warp (it indexed the missing bias)
   if not linear.bias then error('SpatialTransformer.identity: the Linear needs a bias (made with bias = false)', 2) end
   linear.weight:zero()
   linear.bias:copy(require('ts.tensor').tensor({1, 0, 0, 0, 1, 0}))
   return linear
end

function SpatialTransformer:updateOutput(input)
   if input:dim() ~= 4 then error(('SpatialTransformer: expected an input [N,C,H,W], got %s'):format(tostring(input:size())), 3) end
   local n = input:size(1)
   local h, w = self.out_size and self.out_size[1] or input:size(3), self.out_size and self.out_size[2] or input:size(4)
   local out = self._children[1].module:forward(input)
   if out:numel() ~= n * 6 then
      error(('SpatialTransformer: the localization network gave %s for %d images, 6 numbers each are needed'):format(
         tostring(out:size()), n), 3)
   end
   self.theta = out:contiguous():view(n, 2, 3)
   self.grid = self:buffer('grid', {n, h, w, 2})
   check(C.ts_affine_grid_forward(self.grid._c, self.theta._c))
   local y = self:buffer('output', {n, input:size(2), h, w})
   check(C.ts_grid_sample_forward(y._c, input._c, self.grid._c))
   return y
end

function SpatialTransformer:backward(input, gradOutput)
   input, gradOutput = Module.dense(input), Module.dense(gradOutput)
   local loc = self._children[1].module
   local gx = self:buffer('gradInput', input:size())
   local ggrid = self:buffer('gradGrid', self:fromForward('grid'):size())
   check(C.ts_grid_sample_backward(gx._c, ggrid._c, input._c, self.grid._c, gradOutput:contiguous()._c))
   local gtheta = self:buffer('gradTheta', {input:size(1), 2, 3})
   check(C.ts_affine_grid_backward(gtheta._c, ggrid._c))
   gx:add_(loc:backward(input, gtheta:view(loc.output:size())))
   return gx
end

function SpatialTransformer:describe(indent)
   indent = indent or ''
   local size = self.out_size and (', size=(%d, %d)'):format(self.out_size[1], self.out_size[2]) or ''
   return ('SpatialTransformer(%s  [%d params]\n%s  (localization): %s\n%s)'):format(size:sub(3), self:numParameters(),
      indent, self._children[1].module:describe(indent .. '  '), indent)
end

return {SpatialTransformer = SpatialTransformer}
