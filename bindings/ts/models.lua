-- ts.models: network definitions as ordinary nn containers.
local nn = require('ts.nn')

local models = {}

-- The reference network of the benchmarks (675,339 parameters for 43 classes):
-- three conv stages (32, 64, 128 channels; 3x3, BN, ReLU; max-pool 2) and a 2048-256-classes head.
function models.refcnn(opts)
   opts = opts or {}
   local classes, cin = opts.classes or 43, opts.channels or 3
   local function block(a, b) return nn.Conv2d(a, b, 3, {padding = 1, bias = false}), nn.BatchNorm2d(b), nn.ReLU() end
   local net = nn.Sequential()
   for _, m in ipairs({block(cin, 32)}) do net:add(m) end
   for _, m in ipairs({block(32, 32)}) do net:add(m) end
   net:add(nn.MaxPool2d(2))
   for _, m in ipairs({block(32, 64)}) do net:add(m) end
   for _, m in ipairs({block(64, 64)}) do net:add(m) end
   net:add(nn.MaxPool2d(2))
   for _, m in ipairs({block(64, 128)}) do net:add(m) end
   net:add(nn.MaxPool2d(2))
   net:add(nn.Flatten())
   net:add(nn.Dropout(opts.dropout or 0.5))
   net:add(nn.Linear(2048, 256))
   net:add(nn.ReLU())
   net:add(nn.Linear(256, classes))
   return net
end

return models
