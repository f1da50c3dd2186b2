-- MobileNetV1 with width 0.25 as in the MLPerf Tiny visual-wake-words model: 3x3 stem with stride 2, then
-- 13 depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU), global average
-- pooling and `fc`. Keras conventions: every conv has a bias, BN eps 1e-3, 'same' padding. Runs at any
-- input size (96x96 natively); `flatten` outputs the 256 features.
local nn = require('ts.nn')
local options = require('ts.models.options')

local M = {}

function M.mobilenet_v1_025(opts)
   opts = options.check('mobilenet_v1_025', opts, {classes = 1, channels = 1}, {'classes', 'channels'})
   local net = nn.Sequential()
   net:add(nn.Conv2d(opts.channels or 3, 8, 3, {stride = 2, padding = 'same'}), 'conv1')
   net:add(nn.BatchNorm2d(8, {eps = 1e-3}), 'bn1')
   net:add(nn.ReLU(), 'relu')
   local strides = {1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1}
   local widths = {16, 32, 32, 64, 64, 128, 128, 128, 128, 128, 128, 256, 256}
   local blocks, cin = nn.Sequential(), 8
   for b = 1, 13 do
      local block = nn.Sequential()
      block:add(nn.Conv2d(cin, cin, 3, {stride = strides[b], padding = 'same', groups = cin}), 'dw')
      block:add(nn.BatchNorm2d(cin, {eps = 1e-3}), 'dw_bn')
      block:add(nn.ReLU(), 'dw_relu')
      block:add(nn.Conv2d(cin, widths[b], 1), 'pw')
      block:add(nn.BatchNorm2d(widths[b], {eps = 1e-3}), 'pw_bn')
      block:add(nn.ReLU(), 'pw_relu')
      blocks:add(block)
      cin = widths[b]
   end
   net:add(blocks, 'blocks')
   net:add(nn.GlobalAvgPool2d(), 'pool')
   net:add(nn.Flatten(), 'flatten')
   net:add(nn.Linear(256, opts.classes or 2), 'fc')
   return net
end

return M
