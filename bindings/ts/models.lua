-- ts.models: network definitions as ordinary nn containers.
local nn = require('ts.nn')

local models = {}

-- The reference network of the benchmarks (675,339 parameters for 43 classes, 32x32 input):
-- conv stages of widths {32, 64, 128} (3x3 without bias, BN, ReLU; two convs in the first two stages),
-- each followed by a 2x2 max-pool, then Flatten, Dropout, Linear(2048, 256), ReLU, Linear(256, classes).
-- opts: classes (43), channels (3 input channels), widths, hidden (256), dropout (0.5).
function models.refcnn(opts)
   opts = opts or {}
   local classes, cin = opts.classes or 43, opts.channels or 3
   local w, hidden = opts.widths or {32, 64, 128}, opts.hidden or 256
   local net = nn.Sequential()
   local function block(a, b)
      net:add(nn.Conv2d(a, b, 3, {padding = 1, bias = false}))
      net:add(nn.BatchNorm2d(b))
      net:add(nn.ReLU())
   end
   block(cin, w[1])
   block(w[1], w[1])
   net:add(nn.MaxPool2d(2))
   block(w[1], w[2])
   block(w[2], w[2])
   net:add(nn.MaxPool2d(2))
   block(w[2], w[3])
   net:add(nn.MaxPool2d(2))
   net:add(nn.Flatten())
   net:add(nn.Dropout(opts.dropout or 0.5))
   net:add(nn.Linear(16 * w[3], hidden))
   net:add(nn.ReLU())
   net:add(nn.Linear(hidden, classes))
   return net
end

return models
