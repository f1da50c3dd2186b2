-- Model builders and the pretrained networks (these need TSHOST_MODELS), and the quirks they depend on,
-- checked here against values computed independently.
local ffi = require('ffi')
local nn = ts.nn

local function readbin(path, shape)
   local f = assert(io.open(path, 'rb'))
   local s = f:read('*a')
   f:close()
   local t = ts.zeros(shape)
   assert(#s == t:numel() * 4, path .. ': unexpected size')
   ffi.copy(t:data(), s, #s)
   return t
end

return function(t)
   t.test('builders: parameter counts and checkpoint names', function()
      local cases = {{'refcnn', 675339}, {'baseline', 823051}, {'resnet20', 269722}, {'resnet56', 853018},
                     {'resnet8', 78186}, {'mobilenet_v1_025', 216322}}
      for _, c in ipairs(cases) do t.eq(ts.models[c[1]]():numParameters(), c[2], c[1]) end
      local names = {}
      for _, pair in ipairs(ts.models.resnet20():stateDict()) do names[pair[1]] = true end
      for _, n in ipairs({'conv1.weight', 'bn1.running_var', 'layer1.0.conv1.weight', 'layer2.0.bn2.bias',
                          'layer3.2.conv2.weight', 'linear.weight', 'linear.bias'}) do
         t.truthy(names[n], 'resnet20 lacks ' .. n)
      end
      names = {}
      for _, pair in ipairs(ts.models.resnet8():stateDict()) do names[pair[1]] = true end
      t.truthy(names['stage2.shortcut.weight'] and names['stage3.conv1.bias'] and names['fc.weight'])
      names = {}
      for _, pair in ipairs(ts.models.mobilenet_v1_025():stateDict()) do names[pair[1]] = true end
      t.truthy(names['blocks.0.dw.weight'] and names['blocks.12.pw_bn.running_mean'] and names['fc.bias'])
   end)

   t.test('option-A shortcut: subsample by 2 and pad channels on both sides', function()
      local x = ts.randn(2, 4, 6, 6)
      local s = nn.ZeroPadShortcut(4, 8, 2)
      local y = s:forward(x)
      t.eq(tostring(y:size()), '[2x8x3x3]')
      for n = 1, 2 do
         for c = 1, 8 do
            for i = 1, 3 do
               for j = 1, 3 do
                  local want = (c > 2 and c <= 6) and x:get(n, c - 2, 2 * i - 1, 2 * j - 1) or 0
                  t.eq(y:get(n, c, i, j), want)
               end
            end
         end
      end
      local g = s:backward(x, ts.ones(2, 8, 3, 3))
      t.eq(g:sum(), 2 * 4 * 9)
      t.eq(g:get(1, 1, 2, 1), 0)
      t.eq(g:get(1, 1, 3, 3), 1)
   end)

   t.test("TensorFlow 'same' padding is the explicit asymmetric padding", function()
      local a = nn.Conv2d(3, 4, 3, {stride = 2, padding = 'same'})
      local b = nn.Conv2d(3, 4, 3, {stride = 2, padding = {0, 1, 0, 1}})
      b.weight:copy(a.weight)
      b.bias:copy(a.bias)
      for _, size in ipairs({8, 16, 32}) do
         local x = ts.randn(2, 3, size, size)
         t.truthy(a:forward(x):equal(b:forward(x)), 'size ' .. size)
      end
      -- odd sizes pad 1 on each side: out = ceil(7 / 2) = 4
      t.eq(a:forward(ts.randn(1, 3, 7, 7)):size(3), 4)
   end)

   t.test('a new head, a frozen backbone and parameter groups', function()
      local m = ts.models.resnet20()
      local head = ts.transfer.newHead(m, 43)
      t.eq(head.nout, 43)
      t.eq(m:forward(ts.randn(2, 3, 32, 32)):size(2), 43)
      ts.transfer.freezeBackbone(m, {bn_eval = true})
      local p = m:parameters()
      t.eq(#p, 2)
      m:training()
      local rm = m.bn1.running_mean:clone()
      m:forward(ts.randn(4, 3, 32, 32))
      t.truthy(m.bn1.running_mean:equal(rm), 'a frozen BN with bn_eval keeps its statistics')
      m:unfreeze()
      local groups = ts.transfer.paramGroups(m, {backbone_lr = 0.001, head_lr = 0.01})
      t.eq(#groups[1].params[1], #m:parameters() - 2)
      local opt = ts.optim.SGD(groups, {lr = 0.1, momentum = 0.9})
      t.eq(opt.groups[1].lr, 0.001)
      t.eq(opt.groups[2].lr, 0.01)
   end)

   t.test('a linear probe learns a linearly separable problem from cached features', function()
      local f = ts.randn(200, 8)
      local y = ts.zeros({200}, 'int64')
      for i = 1, 200 do y[i] = f:get(i, 1) + 0.5 * f:get(i, 2) > 0 and 1 or 0 end
      local head, history = ts.transfer.linearProbe(f, y, f, y, {epochs = 150, classes = 2, batch = 32})
      t.eq(head.nout, 2)
      t.truthy(history[150] > 0.95, 'probe accuracy ' .. history[150])
   end)

   t.test('the four pretrained networks reproduce their published outputs (eval mode, 1e-4 relative)', function()
      local dir = os.getenv('TSHOST_MODELS')
      if not dir then t.skip('TSHOST_MODELS is not set (point it at the pretrained models folder)') end
      for name, e in pairs(ts.models.catalog) do
         local m = ts.models.pretrained(name)
         local ref = dir .. '/' .. e.folder .. '/reference/'
         local x = readbin(ref .. 'input.bin', {4, 3, e.input.size, e.input.size})
         local logits = m:forward(x)
         local want = readbin(ref .. 'logits.bin', {4, e.classes})
         local feats = readbin(ref .. 'features.bin', {4, e.features})
         t.truthy(logits:maxAbsDiff(want) <= 1e-4 * want:abs():max(), name .. ' logits: ' .. logits:maxAbsDiff(want))
         t.truthy(m.flatten.output:maxAbsDiff(feats) <= 1e-4 * feats:abs():max(), name .. ' features')
      end
   end)

   t.test('a checkpoint that does not fit names the tensor', function()
      local dir = os.getenv('TSHOST_MODELS')
      if not dir then t.skip('TSHOST_MODELS is not set') end
      local err = t.raises(function() ts.models.pretrained('nope') end, 'unknown model nope')
      t.truthy(err:find('resnet20', 1, true))
      local m = ts.models.resnet20()
      t.raises(function() ts.load(dir .. '/resnet8-cifar10/model.safetensors', m) end, 'does not fit the model')
   end)
end
