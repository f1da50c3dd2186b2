-- CIFAR-style ResNets as ordinary tshost networks, with the tensor names of the published checkpoints.
--   resnet20 / resnet56{classes = 10}: He et al.'s CIFAR ResNet (akamaster's PyTorch code): 3x3 convs
--     without bias, BN eps 1e-5, option-A shortcuts (ZeroPadShortcut); heads named `linear`.
--   resnet8{classes = 10}: the MLPerf Tiny Keras ResNet-8: conv biases, BN eps 1e-3, TensorFlow 'same'
--     padding (0 before, 1 after at stride 2), 1x1 convolution shortcuts; head named `fc`.
-- Every network is a Sequential whose child `flatten` outputs the penultimate features.
local nn = require('ts.nn')
local options = require('ts.models.options')

local M = {}

-- relu(body(x) + shortcut(x)), the body's tensors named as the block's own (conv1, bn1, ...)
local function basic_block(cin, cout, stride, o)
   local body = nn.Sequential()
   body:add(nn.Conv2d(cin, cout, 3, {stride = stride, padding = o.padding, bias = o.bias}), 'conv1')
   body:add(nn.BatchNorm2d(cout, {eps = o.eps}), 'bn1')
   body:add(nn.ReLU(), 'relu1')
   body:add(nn.Conv2d(cout, cout, 3, {padding = o.padding == 'same' and 'same' or 1, bias = o.bias}), 'conv2')
   body:add(nn.BatchNorm2d(cout, {eps = o.eps}), 'bn2')
   local shortcut
   if stride ~= 1 or cin ~= cout then shortcut = o.shortcut(cin, cout, stride) end
   local block = nn.Sequential()
   block:add(nn.Residual(body, shortcut, {'', 'shortcut'}), '')
   block:add(nn.ReLU(), 'relu')
   return block
end

local RESNET_OPTIONS = {classes = 1, channels = 1}
local function cifar_resnet(name, blocks, opts)
   opts = options.check(name, opts, RESNET_OPTIONS, {'classes', 'channels'})
   local o = {padding = 1, bias = false, eps = 1e-5,
              shortcut = function(cin, cout, stride) return nn.ZeroPadShortcut(cin, cout, stride) end}
   local net = nn.Sequential()
   net:add(nn.Conv2d(opts.channels or 3, 16, 3, {padding = 1, bias = false}), 'conv1')
   net:add(nn.BatchNorm2d(16), 'bn1')
   net:add(nn.ReLU(), 'relu')
   local cin = 16
   for stage, width in ipairs({16, 32, 64}) do
      local layer = nn.Sequential()
      for b = 1, blocks do
         layer:add(basic_block(cin, width, (b == 1 and stage > 1) and 2 or 1, o))
         cin = width
      end
      net:add(layer, 'layer' .. stage)
   end
   net:add(nn.GlobalAvgPool2d(), 'pool')
   net:add(nn.Flatten(), 'flatten')
   net:add(nn.Linear(64, opts.classes or 10), 'linear')
   return net
end

function M.resnet20(opts) return cifar_resnet('resnet20', 3, opts) end
function M.resnet56(opts) return cifar_resnet('resnet56', 9, opts) end

function M.resnet8(opts)
   opts = options.check('resnet8', opts, RESNET_OPTIONS, {'classes', 'channels'})
   local o = {padding = 'same', bias = true, eps = 1e-3,
              shortcut = function(cin, cout, stride) return nn.Conv2d(cin, cout, 1, {stride = stride}) end}
   local net = nn.Sequential()
   net:add(nn.Conv2d(opts.channels or 3, 16, 3, {padding = 1}), 'conv1')
   net:add(nn.BatchNorm2d(16, {eps = 1e-3}), 'bn1')
   net:add(nn.ReLU(), 'relu')
   local cin = 16
   for stage, width in ipairs({16, 32, 64}) do
      net:add(basic_block(cin, width, stage > 1 and 2 or 1, o), 'stage' .. stage)
      cin = width
   end
   net:add(nn.GlobalAvgPool2d(), 'pool')
   net:add(nn.Flatten(), 'flatten')
   net:add(nn.Linear(64, opts.classes or 10), 'fc')
   return net
end

return M
