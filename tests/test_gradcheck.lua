-- Finite-difference gradient checks: for L = sum(forward(x) * r) with a fixed random r, every analytic
-- derivative (input and parameters, from backward) against (L(v + h) - L(v - h)) / 2h, in float32.
local nn = ts.nn

return function(t)
   local function loss_of(m, x, r)
      local y = m:forward(x)
      return (y * r):sum()
   end

   -- checks up to `samples` coordinates of each tensor, chosen at random
   local function gradcheck(name, m, x, opts)
      opts = opts or {}
      local h, tol, samples = opts.h or 1e-2, opts.tol or 2e-2, opts.samples or 40
      local seed = 1000
      local function fwd()
         ts.manualSeed(seed)   -- dropout draws the same mask every time
         return m:forward(x)
      end
      local y = fwd()
      local r = ts.randn(y:size())
      m:zeroGrad()
      fwd()
      ts.manualSeed(seed)
      local gx = m:backward(x, r):clone()
      local targets = {{'input', x, gx}}
      local params, grads = m:parameters()
      for i, p in ipairs(params) do targets[#targets + 1] = {'param ' .. i, p, grads[i]:clone()} end
      for _, tg in ipairs(targets) do
         local label, v, g = tg[1], tg[2]:view(-1), tg[3]:view(-1)
         local n = v:numel()
         for k = 1, math.min(n, samples) do
            local i = n <= samples and k or ts.randint(n)
            local old = v[i]
            v[i] = old + h
            local lp = (fwd() * r):sum()
            v[i] = old - h
            local lm = (fwd() * r):sum()
            v[i] = old
            local numeric, analytic = (lp - lm) / (2 * h), g[i]
            if math.abs(numeric - analytic) > tol * math.max(1, math.abs(numeric)) then
               error(('%s: %s element %d: analytic %.6g, numeric %.6g'):format(name, label, i, analytic, numeric), 2)
            end
         end
      end
   end

   t.test('gradcheck Upsample2d: square and unequal factors, inside a network', function()
      gradcheck('Upsample2d 2', nn.Upsample2d(2), ts.randn(2, 3, 4, 5))
      gradcheck('Upsample2d 3x2', nn.Upsample2d{3, 2}, ts.randn(1, 2, 3, 3))
      gradcheck('conv-upsample-conv', nn.Sequential(nn.Conv2d(2, 3, 3, {padding = 1}), nn.Upsample2d(2),
                                                     nn.Conv2d(3, 2, 3, {padding = 1})), ts.randn(1, 2, 4, 4))
      t.raises(function() nn.Upsample2d(1.5) end, 'whole factors >= 1, got 1.5')
      t.raises(function() nn.Upsample2d(2, 'bilinear') end, "only mode = 'nearest'")
      t.raises(function() nn.Upsample2d(2):forward(ts.randn(3, 4)) end, 'expected an input [N,C,H,W]')
   end)

   t.test('gradcheck SpatialTransformer: the input through the sampling and the localization, its parameters', function()
      -- theta away from the identity (where every read would sit on a pixel centre, the kinks of bilinear
      -- sampling) and from the image (some reads outside count zero); a small step, as a read that crosses a
      -- pixel line changes its slope, and a fixed seed: the check is of the code, not of the draw
      ts.manualSeed(11)
      local function stn(c, h, w, size)
         local linear = nn.Linear(c * h * w, 6)
         linear.weight:mul_(0.3)
         linear.bias:copy(ts.tensor({0.83, 0.17, 0.11, -0.21, 1.13, -0.07}))
         return nn.SpatialTransformer(nn.Sequential(nn.Flatten(), linear), size)
      end
      gradcheck('SpatialTransformer', stn(2, 4, 5), ts.randn(2, 2, 4, 5), {h = 5e-4, tol = 3e-2})
      gradcheck('SpatialTransformer 3x7', stn(3, 5, 4, {3, 7}), ts.randn(2, 3, 5, 4), {h = 5e-4, tol = 3e-2})
      -- the identity warp gives the input back
      local linear = nn.SpatialTransformer.identity(nn.Linear(12, 6))
      local m = nn.SpatialTransformer(nn.Sequential(nn.Flatten(), linear))
      local x = ts.randn(2, 1, 3, 4)
      t.near(m:forward(x), x, 1e-6, 1e-6)
      t.raises(function() nn.SpatialTransformer(nn.Sequential(nn.Flatten(), nn.Linear(12, 5))):forward(x) end,
               'the localization network gave')
      t.raises(function() nn.SpatialTransformer(nn.Identity(), {0, 3}) end, 'size must be a whole number >= 1 or {h, w} of them, got {0, 3}')
      -- words failed comparing a string with a number, naming nothing
      t.raises(function() nn.SpatialTransformer(nn.Identity(), {'a', 'b'}) end, 'size must be a whole number >= 1 or {h, w} of them, got {"a", "b"}')
   end)

   t.test('gradcheck Conv2d: strides, paddings (incl. asymmetric), dilation, groups, depthwise, 1x1', function()
      local configs = {
         {4, 6, 3, {padding = 1}},
         {3, 4, 3, {stride = 2, padding = {0, 1, 0, 1}}},
         {3, 4, 3, {stride = 2, padding = 'same'}},
         {2, 3, 3, {dilation = 2, padding = 2, bias = false}},
         {4, 6, 3, {groups = 2, padding = 1}},
         {4, 4, 3, {groups = 4, stride = 2, padding = 1, bias = false}},
         {5, 3, 1, {}},
         {3, 2, {2, 3}, {stride = {2, 1}, padding = {1, 0}}},
      }
      for i, c in ipairs(configs) do
         local m = nn.Conv2d(c[1], c[2], c[3], c[4])
         gradcheck('conv config ' .. i, m, ts.randn(2, c[1], 6, 7), {h = 1e-2, tol = 1e-2})
      end
   end)

   t.test('gradcheck BatchNorm2d/1d in training and evaluation mode', function()
      local bn = nn.BatchNorm2d(3)
      bn.weight:uniform(0.5, 1.5)
      bn.bias:uniform(-1, 1)
      gradcheck('bn2d train', bn, ts.randn(4, 3, 3, 3), {h = 1e-2, tol = 3e-2})
      bn:evaluate()
      bn.running_var:uniform(0.5, 2)
      gradcheck('bn2d eval', bn, ts.randn(4, 3, 3, 3))
      gradcheck('bn1d train', nn.BatchNorm1d(5), ts.randn(6, 5), {tol = 3e-2})
      gradcheck('bn2d no affine', nn.BatchNorm2d(2, {affine = false}), ts.randn(3, 2, 2, 2), {tol = 3e-2})
   end)

   t.test('gradcheck activations, pooling, linear, dropout, reshape', function()
      local x = ts.randn(2, 3, 6, 6)
      gradcheck('relu', nn.ReLU(), x, {h = 1e-3})
      gradcheck('leaky', nn.LeakyReLU(0.1), x, {h = 1e-3})
      gradcheck('elu', nn.ELU(0.8), x, {h = 1e-3})
      gradcheck('maxpool 2', nn.MaxPool2d(2), x, {h = 1e-3})
      gradcheck('maxpool 3/2/1', nn.MaxPool2d(3, 2, 1), x, {h = 1e-3})
      gradcheck('maxpool ceil', nn.MaxPool2d(3, 2, 0, {ceil_mode = true}), ts.randn(1, 2, 7, 7), {h = 1e-3})
      gradcheck('avgpool', nn.AvgPool2d(3, 2, 1), x)
      gradcheck('avgpool exclude pad', nn.AvgPool2d(3, 2, 1, {count_include_pad = false}), x)
      gradcheck('global avgpool', nn.GlobalAvgPool2d(), x)
      gradcheck('linear', nn.Linear(7, 5), ts.randn(3, 7))
      gradcheck('dropout', nn.Dropout(0.3), ts.randn(4, 5))
      gradcheck('flatten+linear', nn.Sequential(nn.Flatten(), nn.Linear(12, 2)), ts.randn(2, 3, 2, 2))
   end)

   t.test('gradcheck containers: Sequential, Residual (identity and projection shortcut), Concat', function()
      local block = nn.Sequential(nn.Conv2d(3, 3, 3, {padding = 1}), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 3, 3, {padding = 1}))
      gradcheck('residual identity', nn.Residual(block), ts.randn(2, 3, 4, 4), {tol = 3e-2})
      local proj = nn.Residual(nn.Conv2d(3, 4, 3, {stride = 2, padding = 1}), nn.Conv2d(3, 4, 1, {stride = 2}))
      gradcheck('residual projection', proj, ts.randn(2, 3, 5, 5))
      gradcheck('concat', nn.Concat(2, nn.Conv2d(2, 3, 1), nn.Conv2d(2, 1, 3, {padding = 1})), ts.randn(2, 2, 3, 3))
      -- refcnn's multi-scale shape, small: the first convolution's gradient is the sum of its two ways to the
      -- classifier, one pooled by 4 (a whole refcnn, pooling after pooling, has too many kinks for central
      -- differences: a step of h moves some maximum to another element)
      local deep = nn.Sequential(nn.Conv2d(3, 2, 3, {padding = 1}), nn.Flatten())
      local ms = nn.Sequential(nn.Conv2d(2, 3, 3, {padding = 1}),
                               nn.Concat(2, deep, nn.Sequential(nn.MaxPool2d(4), nn.Flatten())), nn.Linear(2 * 64 + 3 * 4, 3))
      gradcheck('multi-scale', ms, ts.randn(2, 2, 8, 8))
   end)

   -- a criterion's gradient of its input against central differences of its value, every element
   local function criterion_check(name, loss, input, target, h, rtol, atol)
      local g = loss:backward(input, target):clone()
      local v = input:view(-1)
      for i = 1, v:numel() do
         local old = v[i]
         v[i] = old + h
         local lp = loss:forward(input, target)
         v[i] = old - h
         local lm = loss:forward(input, target)
         v[i] = old
         t.near(g:view(-1)[i], (lp - lm) / (2 * h), rtol, atol, name .. ' element ' .. i)
      end
   end

   t.test('gradcheck CrossEntropy with class weights and label smoothing', function()
      local logits = ts.randn(5, 4)
      local target = ts.tensor({0, 3, 1, 1, 2}, 'int64')
      for _, opts in ipairs({{}, {label_smoothing = 0.2}, {weight = ts.tensor{1, 2, 0.5, 1}, label_smoothing = 0.1}}) do
         criterion_check('cross entropy', nn.CrossEntropyLoss(opts), logits, target, 1e-2, 1e-2, 1e-4)
      end
   end)

   t.test('gradcheck the distillation loss from two teachers, with label smoothing, at several temperatures', function()
      ts.manualSeed(12)
      local x, logits = ts.randn(5, 3), ts.randn(5, 4):mul_(2)
      local target = ts.tensor({0, 3, 1, 1, 2}, 'int64')
      local teachers = {nn.Linear(3, 4), nn.Linear(3, 4)}
      for _, o in ipairs({{weight = 0.5, temperature = 1}, {weight = 0.8, temperature = 4, label_smoothing = 0.1},
                          {weight = 1, temperature = 0.5}}) do
         o.teachers = teachers
         local d = nn.DistillationLoss(o)
         -- the criterion with the batch's images bound, as criterion_check calls it
         local bound = {forward = function(_, z, y) return d:forward(z, y, x) end,
                        backward = function(_, z, y) return d:backward(z, y, x) end}
         criterion_check(('distillation, weight %g, T %g'):format(o.weight, o.temperature), bound, logits, target, 1e-2,
                         1e-2, 1e-4)
      end
   end)

   t.test('gradcheck the embedding head and the metric losses: Normalize, triplet (mined and given), contrastive', function()
      gradcheck('normalize', nn.Normalize(), ts.randn(4, 6))
      gradcheck('embedding head', nn.Sequential(nn.Linear(5, 3), nn.Normalize()), ts.randn(6, 5))
      ts.manualSeed(8)
      local x = ts.randn(10, 4)
      local labels = {0, 1, 0, 1, 2, 2, 0, 1, 2, 3}
      local given = {anchors = {1, 2, 5}, positives = {3, 4, 6}, negatives = {2, 9, 1}}
      -- mining is piecewise: a step that changes the chosen triplet would show as a jump, so the step is small
      criterion_check('triplet, batch hard', nn.TripletMarginLoss{margin = 3}, x, labels, 1e-3, 2e-2, 2e-3)
      criterion_check('triplet, given', nn.TripletMarginLoss{margin = 2}, x, given, 1e-3, 2e-2, 2e-3)
      criterion_check('contrastive', nn.ContrastiveLoss{margin = 2.5}, x, labels, 1e-3, 2e-2, 2e-3)
      t.raises(function() nn.TripletMarginLoss():forward(x, {anchors = {1}, positives = {11}, negatives = {2}}) end,
               'positives[1] (a 1-based row number) must be a whole number from 1 to 10, got 11')
   end)

end
