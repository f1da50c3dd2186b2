-- Every layer, loss, optimizer and schedule against PyTorch 1.13 on fixed inputs
-- (tests/fixtures/torch_layers.safetensors, written by scripts/make_fixtures.py).
local nn = ts.nn

return function(t)
   local fx, meta = ts.load(t.dir .. '/fixtures/torch_layers.safetensors')
   local cases = ts.json.decode(meta.cases)
   local names = {}
   for name in pairs(cases) do names[#names + 1] = name end
   table.sort(names)

   local function get(case, what)
      return fx[case .. '.' .. what] or error('fixture lacks ' .. case .. '.' .. what)
   end

   -- forward and backward of module m against the fixture's y, gx and parameter gradients
   local function check_module(case, m, params)
      local x = get(case, 'x')
      for _, p in ipairs(params or {}) do m[p]:copy(get(case, p)) end
      m:zeroGrad()
      local y = m:forward(x)
      t.near(y, get(case, 'y'), 1e-4, 1e-5, case .. ' output')
      local gx = m:backward(x, get(case, 'gy'))
      t.near(gx, get(case, 'gx'), 1e-4, 1e-5, case .. ' gradInput')
      for _, p in ipairs(params or {}) do
         t.near(m.grad[p], get(case, 'g' .. p), 1e-4, 1e-4, case .. ' grad ' .. p)
      end
   end

   local build = {}
   function build.conv2d(c)
      local params = {'weight', c.bias and 'bias' or nil}
      return nn.Conv2d(c.cin, c.cout, c.kernel, {stride = c.stride, padding = c.padding, dilation = c.dilation,
                                                 groups = c.groups, bias = c.bias}), params
   end
   function build.linear(c) return nn.Linear(c.nin, c.nout), {'weight', 'bias'} end
   function build.MaxPool2d(c) return nn.MaxPool2d(c.kernel, c.stride, c.padding, {ceil_mode = c.ceil_mode}) end
   function build.AvgPool2d(c)
      return nn.AvgPool2d(c.kernel, c.stride, c.padding, {ceil_mode = c.ceil_mode, count_include_pad = c.count_include_pad})
   end
   function build.GlobalAvgPool2d() return nn.GlobalAvgPool2d() end
   function build.ReLU() return nn.ReLU() end
   function build.LeakyReLU(c) return nn.LeakyReLU(c.param) end
   function build.ELU(c) return nn.ELU(c.param) end
   function build.Upsample2d(c) return nn.Upsample2d(c.scale) end
   function build.Normalize() return nn.Normalize() end

   for _, name in ipairs(names) do
      local c = cases[name]
      if build[c.kind] then
         t.test('matches PyTorch: ' .. name, function()
            local m, params = build[c.kind](c)
            check_module(name, m, params)
         end)
      end
   end

   for _, name in ipairs(names) do
      local c = cases[name]
      if c.kind == 'batchnorm' then
         t.test('matches PyTorch: ' .. name, function()
            local cls = c.dims == 4 and nn.BatchNorm2d or nn.BatchNorm1d
            local m = cls(c.channels, {eps = c.eps, momentum = c.momentum})
            m.running_mean:copy(get(name, 'running_mean_before'))
            m.running_var:copy(get(name, 'running_var_before'))
            if not c.training then m:evaluate() end
            check_module(name, m, {'weight', 'bias'})
            t.near(m.running_mean, get(name, 'running_mean'), 1e-5, 1e-6, 'running_mean')
            t.near(m.running_var, get(name, 'running_var'), 1e-5, 1e-6, 'running_var')
         end)
      elseif c.kind == 'spatial_transformer' then
         t.test('matches PyTorch: ' .. name .. ' (affine_grid + grid_sample, an output of another size)', function()
            local x = get(name, 'x')
            local linear = nn.Linear(x[1]:numel(), 6)
            local m = nn.SpatialTransformer(nn.Sequential(nn.Flatten(), linear), c.size)
            linear.weight:copy(get(name, 'weight'))
            linear.bias:copy(get(name, 'bias'))
            m:zeroGrad()
            local y = m:forward(x)
            t.near(m.theta, get(name, 'theta'), 1e-5, 1e-6, 'theta')
            t.near(y, get(name, 'y'), 1e-4, 1e-5, 'output')
            t.near(m:backward(x, get(name, 'gy')), get(name, 'gx'), 1e-4, 1e-5, 'gradInput')
            t.near(linear.grad.weight, get(name, 'gweight'), 1e-4, 1e-4, 'grad weight')
            t.near(linear.grad.bias, get(name, 'gbias'), 1e-4, 1e-4, 'grad bias')
         end)
      elseif c.kind == 'cross_entropy' then
         t.test('matches PyTorch: ' .. name, function()
            local loss = nn.CrossEntropyLoss{weight = c.weighted and get(name, 'weight') or nil, label_smoothing = c.smoothing}
            local logits, target = get(name, 'logits'), get(name, 'target')
            t.near(loss:forward(logits, target), get(name, 'loss'):get(1), 1e-5, 1e-6, 'loss')
            t.near(loss:backward(logits, target), get(name, 'glogits'), 1e-4, 1e-6, 'gradient')
         end)
      elseif c.kind == 'optim' then
         t.test('matches PyTorch: ' .. name, function()
            local p, g = get(name, 'p0'):clone(), ts.zeros(4, 3)
            local o = c.options
            local opt
            if c.optimizer == 'SGD' then
               opt = ts.optim.SGD({{p}, {g}}, {lr = o.lr, momentum = o.momentum, weight_decay = o.weight_decay,
                                              dampening = o.dampening, nesterov = o.nesterov})
            else
               opt = ts.optim[c.optimizer]({{p}, {g}}, {lr = o.lr, weight_decay = o.weight_decay,
                                                       beta1 = o.betas and o.betas[1], beta2 = o.betas and o.betas[2]})
            end
            for step = 0, c.steps - 1 do
               g:copy(get(name, 'g' .. step))
               opt:step()
            end
            t.near(p, get(name, 'p3'), 1e-5, 1e-6)
         end)
      elseif c.kind == 'schedule' then
         t.test('matches PyTorch: ' .. name .. ' schedule', function()
            local p, g = ts.zeros(1), ts.zeros(1)
            local opt = ts.optim.SGD({{p}, {g}}, {lr = name == 'onecycle' and c.options.max_lr or 0.1})
            local sched = name == 'onecycle'
               and ts.optim.schedule.onecycle(opt, {total = c.options.total_steps, pct_start = c.options.pct_start})
               or ts.optim.schedule.step(opt, {step_size = c.options.step_size, gamma = c.options.gamma})
            local want = get(name, 'lr')
            for i = 1, want:numel() do
               t.near(opt:lr(), want:get(i), 1e-6, 1e-9, 'lr at update ' .. (i - 1))
               sched:step()
            end
         end)
      end
   end

   t.test('a PyTorch state_dict loads into ts.models.refcnn by name and gives the same logits and gradients', function()
      local c = cases.refcnn
      local net = ts.models.refcnn{widths = c.widths, hidden = c.hidden, dropout = 0}
      local state = {}
      for k, v in pairs(fx) do
         local n = k:match('^refcnn%.state%.(.*)$')
         if n then state[n] = v end
      end
      local path = t.tmpdir() .. '/state.safetensors'
      ts.save(path, state)
      ts.load(path, net)
      net:training()
      local loss = nn.CrossEntropyLoss()
      local x, target = get('refcnn', 'x'), get('refcnn', 'target')
      local logits = net:forward(x)
      t.near(logits, get('refcnn', 'logits'), 1e-4, 1e-5, 'logits')
      t.near(loss:forward(logits, target), get('refcnn', 'loss'):get(1), 1e-5, 1e-6, 'loss')
      net:zeroGrad()
      net:backward(x, loss:backward(logits, target))
      t.near(net:get(1).grad.weight, get('refcnn', 'g0'), 1e-3, 1e-5, 'conv 0 weight gradient')
      t.near(net:get(21).grad.weight, get('refcnn', 'g20'), 1e-3, 1e-5, 'linear 20 weight gradient')
      t.near(net:get(2).running_mean, get('refcnn', 'running_mean1'), 1e-5, 1e-6, 'running mean')
   end)

   -- the metric losses: the loss and the gradient of the embeddings
   local function rows(case, what)   -- 0-based row indices as 1-based row numbers
      local t, out = get(case, what), {}
      for i = 1, t:numel() do out[i] = t[i] + 1 end
      return out
   end
   t.test('matches PyTorch: TripletMarginLoss on given triplets', function()
      local x, k = get('triplet_given', 'x'), cases.triplet_given.triplets
      local target = {anchors = {}, positives = {}, negatives = {}}
      for i = 1, k do target.anchors[i], target.positives[i], target.negatives[i] = i, k + i, 2 * k + i end
      local loss = nn.TripletMarginLoss{margin = cases.triplet_given.margin}
      t.near(loss:forward(x, target), get('triplet_given', 'loss'):get(1), 1e-5, 1e-6, 'loss')
      t.near(loss:backward(x, target), get('triplet_given', 'gx'), 1e-4, 1e-6, 'gradient')
   end)
   t.test('matches PyTorch: batch-hard triplets mined from the labels (farthest positive, nearest negative)', function()
      local case, x = 'triplet_batch_hard', get('triplet_batch_hard', 'x')
      local loss = nn.TripletMarginLoss{margin = cases[case].margin}
      local a, p, q = loss:triplets(x, get(case, 'labels'))
      local mined = {anchors = {}, positives = {}, negatives = {}}
      for i = 1, a:numel() do
         if a[i] >= 0 then
            mined.anchors[#mined.anchors + 1], mined.positives[#mined.anchors + 1] = a[i] + 1, p[i] + 1
            mined.negatives[#mined.anchors] = q[i] + 1
         end
      end
      t.eq(table.concat(mined.anchors, ','), table.concat(rows(case, 'anchors'), ','), 'anchors')
      t.eq(table.concat(mined.positives, ','), table.concat(rows(case, 'positives'), ','), 'positives')
      t.eq(table.concat(mined.negatives, ','), table.concat(rows(case, 'negatives'), ','), 'negatives')
      t.near(loss:forward(x, get(case, 'labels')), get(case, 'loss'):get(1), 1e-5, 1e-6, 'loss')
      t.near(loss:backward(x, get(case, 'labels')), get(case, 'gx'), 1e-4, 1e-6, 'gradient')
   end)
   t.test('matches PyTorch: the contrastive loss over every pair', function()
      local x, labels = get('contrastive', 'x'), get('contrastive', 'labels')
      local loss = nn.ContrastiveLoss{margin = cases.contrastive.margin}
      t.near(loss:forward(x, labels), get('contrastive', 'loss'):get(1), 1e-5, 1e-6, 'loss')
      t.near(loss:backward(x, labels), get('contrastive', 'gx'), 1e-4, 1e-6, 'gradient')
   end)

end
