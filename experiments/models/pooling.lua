-- The networks of experiments/pooling.lua: the reference network's conv blocks with o.down ('max', 'avg',
-- 'stride' or 'none') as the downsampling after each stage. A file of its own, so that ts.models.load can
-- run it again to rebuild the experiment's models (scripts/predict.lua on its runs).
local nn = ts.nn

ts.models.register('pooling_variant', function(o)
   local net = nn.Sequential()
   local function block(a, b, stride)
      net:add(nn.Conv2d(a, b, 3, {padding = 1, stride = stride or 1, bias = false}))
      net:add(nn.BatchNorm2d(b))
      net:add(nn.ReLU())
   end
   local function down()
      if o.down == 'max' then net:add(nn.MaxPool2d(2))
      elseif o.down == 'avg' then net:add(nn.AvgPool2d(2)) end
   end
   local strided = o.down == 'stride' and 2 or 1
   block(3, 32); block(32, 32, strided); down()
   block(32, 64); block(64, 64, strided); down()
   block(64, 128, strided); down()
   if o.down == 'none' then net:add(nn.GlobalAvgPool2d()) end
   net:add(nn.Flatten())
   net:add(nn.Dropout(0.5))
   net:add(nn.Linear(o.down == 'none' and 128 or 2048, 256))
   net:add(nn.ReLU())
   net:add(nn.Linear(256, 43))
   return net
end)
