-- CPU convolution algorithms against each other: 3x3 stride-1 convolutions by Winograd's F(4x4, 3x3) and F(2x2, 3x3)
-- (each forced, and the default that picks one per shape) give im2col's outputs and gradients to float rounding, for
-- any padding, odd sizes, channel counts that are no multiple of the vector width, batches whose tiles straddle
-- images, and with a bias; the default takes F(4x4) on large maps and F(2x2) on small ones; the same bits for
-- the same thread count; and a NaN through every path's fused ReLU.
local nn = ts.nn

return function(t)
   -- forward, input gradient and accumulated parameter gradients of conv on x, with Winograd as ts.cpuWinograd
   -- takes it (true: the tile per shape, 2 or 4: that tile, false: im2col)
   local function run(conv, x, g, winograd)
      ts.cpuWinograd(winograd)
      local ok, out = pcall(function()
         conv:zeroGrad()
         local y = conv:forward(x):clone()
         local gx = conv:backward(x, g):clone()
         conv:backward(x, g)   -- the weight gradient accumulates
         local grads = {}
         for i, p in ipairs(select(2, conv:parameters())) do grads[i] = p:clone() end
         return {y = y, gx = gx, grads = grads}
      end)
      ts.cpuWinograd(true)
      if not ok then error(out, 0) end
      return out
   end

   local function same(a, b, what)
      t.near(a.y, b.y, 0, 0, what .. ': output')
      t.near(a.gx, b.gx, 0, 0, what .. ': input gradient')
      for i = 1, #b.grads do t.near(a.grads[i], b.grads[i], 0, 0, what .. ': parameter gradient ' .. i) end
   end

   t.test('3x3 convolutions by Winograd equal im2col: both tile sizes, paddings, odd sizes, channel counts, bias', function()
      ts.manualSeed(5)
      local cases = {
         -- n, c, o, h, w, padding, bias
         {2, 32, 32, 32, 32, 1, false},
         {3, 24, 40, 17, 13, 1, true},              -- odd output: cut-off tiles; 24, 40 not multiples of 16
         {1, 16, 8, 9, 30, 0, false},               -- no padding: 7x28 outputs
         {2, 8, 16, 5, 5, 2, true},                 -- padding past the kernel's reach
         {2, 16, 16, 11, 7, {0, 2, 1, 0}, false},   -- asymmetric padding (top, bottom, left, right)
         {5, 12, 20, 6, 4, 'same', true},           -- tiles of a row fewer than a block: blocks span images
         {1, 64, 128, 8, 8, 1, false},
         {2, 9, 33, 40, 3, 1, false},               -- long columns, 3 wide
         {3, 8, 8, 3, 3, 1, true},                  -- one tile, cut off on both sides
         {2, 10, 12, 4, 4, 1, false},               -- one whole F(4x4) tile per image
         {2, 8, 8, 70, 9, 1, false},                -- long columns of short rows: runs of many tile rows
         {1, 8, 16, 6, 70, 1, true},                -- rows of more tiles than the widest vector (18 or 35)
         {4, 192, 192, 8, 8, 1, false},             -- the recipe's widest layer: rounding summed over 192 channels
      }
      for _, case in ipairs(cases) do
         local n, c, o, h, w, pad, bias = unpack(case)
         local conv = nn.Conv2d(c, o, 3, {padding = pad, bias = bias})
         local x = ts.randn(n, c, h, w)
         local y = conv:forward(x)
         local g = ts.randn(y:size())
         local ref = run(conv, x, g, false)
         local what = ('%dx%dx%dx%d -> %d, padding %s'):format(n, c, h, w, o, type(pad) == 'table' and table.concat(pad, ',') or tostring(pad))
         for _, tile in ipairs({4, 2}) do
            local a = run(conv, x, g, tile)
            local function close(p, q, name)
               t.near(p, q, 1e-4, 2e-5 * q:abs():max(), ('%s, F(%dx%d): %s'):format(what, tile, tile, name))
            end
            close(a.y, ref.y, 'output')
            close(a.gx, ref.gx, 'input gradient')
            for i = 1, #ref.grads do close(a.grads[i], ref.grads[i], 'parameter gradient ' .. i) end
         end
      end
   end)

   t.test('Winograd by default: F(4x4) on large maps, F(2x2) on small ones', function()
      ts.manualSeed(6)
      -- output sides, and the tile with fewer multiplications there (its tiles counted whole; F(2x2) on a tie)
      for _, case in ipairs({{32, 4}, {16, 4}, {7, 4}, {3, 4}, {6, 2}, {5, 2}, {2, 2}}) do
         local side, tile = unpack(case)
         local conv = nn.Conv2d(8, 8, 3, {padding = 1})
         local x = ts.randn(2, 8, side, side)
         local g = ts.randn(2, 8, side, side)
         local chosen, forced, other = run(conv, x, g, true), run(conv, x, g, tile), run(conv, x, g, 6 - tile)
         same(chosen, forced, ('%dx%d maps'):format(side, side))
         t.truthy((chosen.y - other.y):abs():max() > 0, ('%dx%d maps: F(%dx%d) gives other bits'):format(side, side, 6 - tile, 6 - tile))
      end
      for _, bad in ipairs({3, 0, 'yes'}) do
         t.raises(function() ts.cpuWinograd(bad) end, 'expected true, false, 2 or 4')
      end
   end)

   t.test('Winograd convolutions give the same bits for the same thread count', function()
      local before = ts.getThreads()
      for _, threads in ipairs({1, 2}) do
         ts.setThreads(threads)
         ts.manualSeed(9)
         local conv = nn.Conv2d(16, 24, 3, {padding = 1})
         local x = ts.randn(3, 16, 14, 10)
         local g = ts.randn(3, 24, 14, 10)
         for _, tile in ipairs({2, 4}) do
            same(run(conv, x, g, tile), run(conv, x, g, tile), ('%d threads, F(%dx%d)'):format(threads, tile, tile))
         end
      end
      ts.setThreads(before)
   end)

   t.test('a NaN goes through a ReLU, alone or fused after im2col or Winograd, forward and backward, as in PyTorch', function()
      local function has_nan(v) local s = v:sum(); return s ~= s end
      local relu = nn.ReLU()
      local y = relu:forward(ts.tensor({0 / 0, -1, 2, 0}))
      t.truthy(y[1] ~= y[1], 'relu(NaN) is NaN, got ' .. tostring(y[1]))
      t.near(y:narrow(1, 2, 3), ts.tensor({0, 2, 0}), 0, 0, 'the other elements')
      t.near(relu:backward(ts.tensor({0 / 0, -1, 2, 0}), ts.ones(4)), ts.tensor({1, 0, 1, 0}), 0, 0, 'the gradient passes a NaN')
      for _, winograd in ipairs({false, 2, 4}) do
         for _, n in ipairs({8, 16, 64}) do   -- output channels no multiple of a vector's lanes, and several vectors
            local what = ('%d channels, %s'):format(n, winograd and ('F(%dx%d)'):format(winograd, winograd) or 'im2col')
            ts.manualSeed(5)
            local net = nn.Sequential(nn.Conv2d(8, n, 3, {padding = 1}), nn.BatchNorm2d(n), nn.ReLU())
            local x = ts.randn(2, 8, 12, 12)
            x[{2, 1, 6, 6}] = 0 / 0
            ts.cpuWinograd(winograd)
            local ok, err = pcall(function()
               net:evaluate{fused = true}
               local out = net:forward(x)
               t.truthy(has_nan(out:narrow(1, 2, 1)), what .. ': the fused convolution, batch norm and ReLU')
               t.truthy(not has_nan(out:narrow(1, 1, 1)), what .. ': the image without a NaN stays finite')
               net:training()   -- last: the batch's NaN statistics go into the running ones
               t.truthy(has_nan(net:forward(x)), what .. ': the fused batch norm and ReLU in training')
            end)
            ts.cpuWinograd(true)
            if not ok then error(err, 0) end
         end
      end
   end)
end
