-- The networks of experiments/pooling.lua: the reference network's conv blocks with o.down ('max', 'avg',
-- 'stride' or 'none') as the downsampling after each stage, on the first o.pools stages (1 to 3; all 3 when not
-- given), the head's input as large as the last stage's map. A file of its own, so that ts.models.load can
-- run it again to rebuild the experiment's models (scripts/predict.lua on its runs).
local nn = ts.nn

ts.models.register('pooling_variant', function(o)
   local net = nn.Sequential()
   local function block(a, b, stride)
      net:add(nn.Conv2d(a, b, 3, {padding = 1, stride = stride or 1, bias = false}))
      net:add(nn.BatchNorm2d(b))
      net:add(nn.ReLU())
   end
   local pools, side = o.pools or 3, 32
   local function down(stage)
      if stage > pools then return end
      if o.down == 'max' then net:add(nn.MaxPool2d(2))
      elseif o.down == 'avg' then net:add(nn.AvgPool2d(2)) end
      if o.down ~= 'none' then side = side / 2 end
   end
   local function strided(stage) return o.down == 'stride' and stage <= pools and 2 or 1 end
   block(3, 32); block(32, 32, strided(1)); down(1)
   block(32, 64); block(64, 64, strided(2)); down(2)
   block(64, 128, strided(3)); down(3)
   if o.down == 'none' then net:add(nn.GlobalAvgPool2d()) side = 1 end
   net:add(nn.Flatten())
   net:add(nn.Dropout(0.5))
   net:add(nn.Linear(128 * side * side, 256))
   net:add(nn.ReLU())
   net:add(nn.Linear(256, 43))
   return net
end)
