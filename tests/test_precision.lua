-- Mixed precision (model:setPrecision('bf16')): on a CPU path with AVX512-BF16, convolutions and linear layers
-- must compute exactly the fp32 products of bfloat16-rounded operands. The reference rounds here, in Lua,
-- independently of the C rounding: nearest, ties to even, on the float's bits. Products of two bf16 are exact in
-- fp32, so only the order of the sums differs: tolerance 1e-5 relative + 1e-5 of the largest value (long sums of
-- products, as in a weight gradient, cancel). bf16 itself is ~3e-3 relative away. 3x3 stride-1 convolutions run
-- Winograd, whose bf16 rounds the transformed operands instead (its products are of bfloat16 pairs as well): there
-- the results must lie within bf16's error, 2e-2 of the largest value, of the rounded-operand products. On a path
-- without AVX512-BF16 (avx2, avx512) bf16 layers run the fp32 kernels: their results are fp32's, bit for bit.
local ffi = require('ffi')
local nn = ts.nn
local cffi = require('ts.ffi')

local bits = ffi.new('union { float f; uint32_t u; }')
local function bf16(v)
   bits.f = v
   local u = tonumber(bits.u)
   local lsb = math.floor(u / 65536) % 2
   bits.u = math.floor((u + 0x7fff + lsb) / 65536) * 65536
   return bits.f
end

local function rounded(x)
   local r = x:clone():contiguous()
   local p = ffi.cast('float *', r:data())
   for i = 0, r:numel() - 1 do p[i] = bf16(p[i]) end
   return r
end

local function same(t, a, ref, what, winograd)
   if winograd then t.near(a, ref, 0, 2e-2 * math.max(1, ref:abs():max()), what .. " (Winograd's bf16)")
   else t.near(a, ref, 1e-5, 1e-5 * math.max(1, ref:abs():max()), what) end
end

local runs_bf16 = ts.cpuPath() == 'avx512bf16' or ts.cpuPath() == 'amx'

local convs = {
   {'3x3 pad 1, 3 input channels (odd depth 27)', {3, 8, 3, {padding = 1}}, {4, 3, 12, 12}},
   {'3x3 pad 1, 16 -> 24 channels (Winograd)', {16, 24, 3, {padding = 1}}, {3, 16, 13, 10}, true},
   {'3x3 pad 1, 17 -> 9 channels, 7 wide (Winograd: odd channels, odd runs of tiles)', {17, 9, 3, {padding = 1}}, {2, 17, 9, 7}, true},
   {'3x3 stride 2, TensorFlow same', {5, 12, 3, {stride = 2, padding = 'same'}}, {3, 5, 11, 11}},
   {'groups 2, dilation 2, no bias', {4, 6, 3, {padding = 2, dilation = 2, groups = 2, bias = false}}, {2, 4, 9, 9}},
   {'depthwise', {8, 8, 3, {padding = 1, groups = 8}}, {2, 8, 7, 7}},
   {'1x1 (no im2col), 37 output channels', {16, 37, 1}, {2, 16, 6, 6}},
   {'5x5 wide, 32x32 images', {16, 33, 5, {padding = 2}}, {2, 16, 32, 32}},
}

return function(t)
   t.test('bf16 convolutions compute the fp32 products of bf16-rounded operands, forward and backward', function()
      for k, case in ipairs(convs) do
         ts.manualSeed(k)
         local a = case[2]
         local ref, mixed = nn.Conv2d(a[1], a[2], a[3], a[4]), nn.Conv2d(a[1], a[2], a[3], a[4])
         mixed.weight:copy(ref.weight)
         if ref.bias then mixed.bias:copy(ref.bias) end
         mixed:setPrecision('bf16')
         local x = ts.randn(case[3])
         local y = mixed:forward(x)
         local gy = ts.randn(y:size())
         local gx = mixed:backward(x, gy)

         if not runs_bf16 then   -- the fp32 kernels ran
            t.near(y, ref:forward(x), 0, 0, case[1] .. ': output (fp32 kernels on ' .. ts.cpuPath() .. ')')
            t.near(gx, ref:backward(x, gy), 0, 0, case[1] .. ': input gradient (fp32 kernels)')
            t.near(mixed.grad.weight, ref.grad.weight, 0, 0, case[1] .. ': weight gradient (fp32 kernels)')
            goto next_case
         end
         local w32 = ref.weight:clone()
         ref.weight:copy(rounded(w32))
         local yr = ref:forward(rounded(x))
         same(t, y, yr, case[1] .. ': output', case[4])
         local gxr = ref:backward(rounded(x), rounded(gy))
         same(t, gx, gxr, case[1] .. ': input gradient', case[4])
         same(t, mixed.grad.weight, ref.grad.weight, case[1] .. ': weight gradient', case[4])
         if ref.bias then
            ref.grad.bias:zero()
            ref:backward(x, gy)   -- the bias gradient sums the unrounded output gradient
            same(t, mixed.grad.bias, ref.grad.bias, case[1] .. ': bias gradient')
         end
         -- and it is not fp32: the rounding is visible, at bf16's size
         ref.weight:copy(w32)
         local y32 = ref:forward(x)
         local rel = y:maxAbsDiff(y32) / y32:abs():max()
         t.truthy(rel > 1e-4 and rel < 2e-2, case[1] .. ': bf16 vs fp32 relative difference ' .. rel)
         ::next_case::
      end
   end)

   t.test('bf16 linear layers compute the fp32 products of bf16-rounded operands', function()
      for k, size in ipairs({{6, 20, 11}, {33, 129, 43}, {130, 64, 257}}) do
         ts.manualSeed(10 + k)
         local n, i, o = size[1], size[2], size[3]
         local ref, mixed = nn.Linear(i, o), nn.Linear(i, o)
         mixed.weight:copy(ref.weight)
         mixed.bias:copy(ref.bias)
         mixed:setPrecision('bf16')
         local x = ts.randn(n, i)
         local y = mixed:forward(x)
         local gy = ts.randn(n, o)
         local gx = mixed:backward(x, gy)
         local what = ('linear %dx%d -> %d'):format(n, i, o)
         if not runs_bf16 then
            t.near(y, ref:forward(x), 0, 0, what .. ': output (fp32 kernels on ' .. ts.cpuPath() .. ')')
            t.near(gx, ref:backward(x, gy), 0, 0, what .. ': input gradient (fp32 kernels)')
            goto next_size
         end
         ref.weight:copy(rounded(ref.weight))
         same(t, y, ref:forward(rounded(x)), what .. ': output')
         same(t, gx, ref:backward(rounded(x), rounded(gy)), what .. ': input gradient')
         same(t, mixed.grad.weight, ref.grad.weight, what .. ': weight gradient')
         ::next_size::
      end
   end)

   t.test('without AVX512-BF16, bf16 layers run the fp32 kernels and say so once', function()
      local cmd = ('TSHOST_CPU=avx2 %s -e "local c = ts.nn.Conv2d(4, 4, 3):setPrecision(\'bf16\'); ' ..
                   'for i = 1, 3 do c:forward(ts.randn(1, 4, 5, 5)) end" 2>&1'):format(t.tshost)
      local p = io.popen(cmd)
      local out = p:read('*a')
      p:close()
      local _, notes = out:gsub('has no AVX512%-BF16, so the fp32 kernels run', '')
      t.eq(notes, 1, 'the notice, once: ' .. out)
   end)

   t.test('setPrecision reaches every convolution and linear layer, shows in the printout, refuses unknown names', function()
      local net = ts.models.refcnn{widths = {4, 8, 8}, hidden = 16, classes = 5}
      net:setPrecision('bf16')
      local n = 0
      net:apply(function(m)
         if m.__typename == 'Conv2d' or m.__typename == 'Linear' then
            n = n + 1
            t.eq(m.precision, 'bf16')
         end
      end)
      t.truthy(n >= 4, 'layers reached: ' .. n)
      t.truthy(tostring(net):find('bf16', 1, true), 'printout names the precision')
      net:setPrecision('fp32')
      t.truthy(not tostring(net):find('bf16', 1, true), 'fp32 is the plain printout')
      t.raises(function() net:setPrecision('fp16') end, "precision must be 'fp32' or 'bf16', got fp16")
      local p = ffi.new('ts_conv2d_params', {stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1, groups = 1,
                                              math = 7})
      local conv = nn.Conv2d(1, 1, 1)
      local x, y = ts.randn(1, 1, 2, 2), ts.zeros(1, 1, 2, 2)
      t.raises(function() cffi.check(cffi.C.ts_conv2d_forward(y._c, x._c, conv.weight._c, nil, p)) end,
               'conv2d: unknown compute precision 7')
   end)

   t.test('training in bf16 tracks fp32 training, repeats itself exactly, and the run keeps its precision', function()
      local g = ts.data.synthetic{train = 600, valid = 200, test = 10, seed = 5}
      local runs = {}
      for _, precision in ipairs({'fp32', 'bf16', 'bf16 again'}) do
         runs[precision] = ts.train{model = {name = 'refcnn', widths = {8, 16, 16}, hidden = 32},
                                    data = {train = g.train, valid = g.valid}, epochs = 3, batch = 50, lr = 0.05,
                                    precision = precision:match('^%w+'), run = t.tmpdir() .. '/run', quiet = true}
      end
      local a, b = runs.fp32.history, runs.bf16.history
      for e = 1, #b do t.eq(runs['bf16 again'].history[e].train_loss, b[e].train_loss, 'bf16 repeats itself, epoch ' .. e) end
      for e = 1, #a do
         t.near(b[e].train_loss, a[e].train_loss, 0.1, 0, 'epoch ' .. e .. ' training loss')
      end
      t.truthy(runs.bf16.best.accuracy > runs.fp32.best.accuracy - 0.08,
               ('validation accuracy bf16 %.3f vs fp32 %.3f'):format(runs.bf16.best.accuracy, runs.fp32.best.accuracy))
      if runs_bf16 then t.truthy(a[#a].train_loss ~= b[#b].train_loss, 'bf16 training is not fp32 training')
      else t.eq(b[#b].train_loss, a[#a].train_loss, 'without AVX512-BF16, bf16 training is fp32 training') end
      local model, config = ts.models.load(runs.bf16.run)
      t.eq(config.precision, 'bf16')
      model:apply(function(m) if m.__typename == 'Linear' then t.eq(m.precision, 'bf16') end end)
   end)
end
