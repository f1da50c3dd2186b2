-- CPU convolution algorithms against each other: 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) (the
-- default) give im2col's outputs and gradients to float rounding, for any padding, odd sizes, channel counts
-- that are no multiple of the vector width, batches whose tiles straddle images, and with a bias; and the
-- same bits for the same thread count.
local nn = ts.nn

return function(t)
   -- forward, input gradient and accumulated parameter gradients of conv on x, with Winograd on or off
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

   t.test('3x3 convolutions by Winograd equal im2col: paddings, odd sizes, channel counts, bias', function()
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
      }
      for _, case in ipairs(cases) do
         local n, c, o, h, w, pad, bias = unpack(case)
         local conv = nn.Conv2d(c, o, 3, {padding = pad, bias = bias})
         local x = ts.randn(n, c, h, w)
         local y = conv:forward(x)
         local g = ts.randn(y:size())
         local a, b = run(conv, x, g, true), run(conv, x, g, false)
         local what = ('%dx%dx%dx%d -> %d, padding %s'):format(n, c, h, w, o, type(pad) == 'table' and table.concat(pad, ',') or tostring(pad))
         local function close(p, q, name) t.near(p, q, 1e-4, 2e-5 * q:abs():max(), what .. ': ' .. name) end
         close(a.y, b.y, 'output')
         close(a.gx, b.gx, 'input gradient')
         for i = 1, #b.grads do close(a.grads[i], b.grads[i], 'parameter gradient ' .. i) end
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
         local a, b = run(conv, x, g, true), run(conv, x, g, true)
         t.near(a.y, b.y, 0, 0, 'output')
         t.near(a.gx, b.gx, 0, 0, 'input gradient')
         t.near(a.grads[1], b.grads[1], 0, 0, 'weight gradient')
      end
      ts.setThreads(before)
   end)
end
