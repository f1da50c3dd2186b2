return function(t)
   t.test('construction, shape and 1-based indexing', function()
      local x = ts.tensor{{1, 2, 3}, {4, 5, 6}}
      t.eq(tostring(x:size()), '[2x3]')
      t.eq(x:dim(), 2)
      t.eq(x:numel(), 6)
      t.eq(x[2][3], 6)
      t.eq(x:get(1, 2), 2)
      x[1][1] = 10
      t.eq(x:get(1, 1), 10)
      x[2] = 0
      t.eq(x:sum(), 15)
      t.eq(ts.zeros(3, 4):size(2), 4)
      t.eq(ts.zeros({2}, 'int64'):dtype(), 'int64')
      t.eq(ts.arange(5):sum(), 10)
   end)

   t.test('views share storage: view, narrow, select, transpose, table indexing', function()
      local x = ts.arange(24):view(2, 3, 4)
      local v = x:narrow(3, 2, 2)
      t.eq(tostring(v:size()), '[2x3x2]')
      t.eq(v:get(1, 1, 1), 1)
      v:fill(-1)
      t.eq(x:get(2, 3, 3), -1)
      local s = x[{2, {2, 3}, {}}]
      t.eq(tostring(s:size()), '[2x4]')
      t.eq(s:get(1, 1), 16)
      local tr = ts.arange(6):view(2, 3):t()
      t.eq(tostring(tr:size()), '[3x2]')
      t.eq(tr:isContiguous(), false)
      t.eq(tr:get(3, 2), 5)
      t.eq(tr:contiguous():view(6):get(2), 3)
      t.eq(x:view(-1, 4):size(1), 6)
   end)

   t.test('arithmetic with broadcasting and reductions', function()
      local a = ts.tensor{{1, 2, 3}, {4, 5, 6}}
      local b = ts.tensor{10, 20, 30}
      t.near(a + b, ts.tensor{{11, 22, 33}, {14, 25, 36}})
      t.near(a * 2 - 1, ts.tensor{{1, 3, 5}, {7, 9, 11}})
      t.near(1 - a, ts.tensor{{0, -1, -2}, {-3, -4, -5}})
      t.near(a / ts.tensor{{1}, {2}}, ts.tensor{{1, 2, 3}, {2, 2.5, 3}})
      t.near(a:sum(2), ts.tensor{{6}, {15}})
      t.near(a:mean(1), ts.tensor{{2.5, 3.5, 4.5}})
      local m, i = a:max(2)
      t.near(m, ts.tensor{{3}, {6}})
      t.eq(i:get(2, 1), 2)
      t.eq(i:dtype(), 'int64')
      t.eq(a:max(), 6)
      t.near(a:mm(a, false, true), ts.tensor{{14, 32}, {32, 77}})
      t.near(ts.tensor{1, 4, 9}:sqrt(), ts.tensor{1, 2, 3})
      t.near(ts.tensor{-1, 2}:clamp(0, 1), ts.tensor{0, 1})
      local c = a:clone()
      c:add_(1)
      t.eq(a:get(1, 1), 1)
      t.eq(c:get(1, 1), 2)
   end)

   -- what numpy answers (and PyTorch answers or refuses) where a loop over the elements would go wrong
   t.test('in-place arithmetic on overlapping views, writes into expanded views, NaN in reductions, exact equal', function()
      local T = ts.tensor
      local a = T{{1, 2}, {3, 4}}
      a:add_(a:t())   -- a += a.T reads a from before the first write
      t.eq(a:get(2, 1), 5)
      t.eq(a:get(1, 2), 5)
      local x = T{1, 2, 3, 4}
      x:narrow(1, 2, 3):add_(x:narrow(1, 1, 3))
      t.truthy(x:equal(T{1, 3, 5, 7}), tostring(x))
      local rows = T{{1, 2}, {3, 4}, {5, 6}}
      rows:sub_(rows:narrow(1, 1, 1))   -- each row minus the first row as it was
      t.truthy(rows:equal(T{{0, 0}, {2, 2}, {4, 4}}), tostring(rows))
      local y = T{1, 2, 3, 4}
      y:narrow(1, 2, 3):axpy_(1, y:narrow(1, 1, 3))
      t.truthy(y:equal(T{1, 3, 5, 7}), tostring(y))
      -- an expanded view written would apply the operation once per repeat
      local z = ts.zeros(1, 3)
      t.raises(function() z:expand(2, 3):add_(1) end, 'the result is an expanded view')
      t.raises(function() z:expand(2, 3):exp_() end, 'the result is an expanded view')
      t.eq(z:sum(), 0)
      -- NaN: the first one wins max and argmax wherever it stands, and maximum, minimum and clamp keep it
      local nan = 0 / 0
      t.truthy(T{1, nan, 3}:max() ~= T{1, nan, 3}:max(), 'max with a NaN is NaN')
      t.eq(T{1, nan, 3}:argmax(), 2)
      local m, i = T{{1, nan, 3}, {2, 1, 0}}:max(2)
      t.truthy(m:get(1, 1) ~= m:get(1, 1) and i:get(1, 1) == 1 and m:get(2, 1) == 2, tostring(m) .. tostring(i))
      local mx = T{nan, 1}:maximum(T{1, nan})
      t.truthy(mx:get(1) ~= mx:get(1) and mx:get(2) ~= mx:get(2), tostring(mx))
      t.truthy(T{nan}:clamp(0, 1):get(1) ~= T{nan}:clamp(0, 1):get(1), 'clamp keeps NaN')
      -- equal compares exactly, int64 as int64 and float64 as float64; NaN equals nothing
      t.eq(T({1, 1 + 1e-12}, 'float64'):equal(T({1, 1}, 'float64')), false)
      t.eq(T({16777217}, 'int64'):equal(T({16777216}, 'int64')), false)
      t.eq(T{1, nan}:equal(T{1, 2}), false)
      t.eq(T{1, 2}:equal(T{1, 2}), true)
      -- allclose: the same infinities are close wherever they stand, NaN is close to nothing, empty is close
      t.eq(T{math.huge, 1}:allclose(T{math.huge, 1}), true)
      t.eq(T{1, nan}:allclose(T{1, nan}), false)
      t.eq(ts.zeros(0):allclose(ts.zeros(0)), true)
      -- whole-tensor reductions of other dtypes in their own values, not through float32
      t.eq(T({16777217, 3}, 'int64'):max(), 16777217)
      t.eq(T({1.0000000001, 1.00000000005, 1.0000000002}, 'float64'):argmax(), 3)
      t.eq(T({16777217, 16777218}, 'int64'):mean(), 16777217.5)
      t.near(T({1, 2, 3}, 'uint8'):std(), 1, 1e-6)
      -- and along a dim: max/min keep the dtype and compare exactly, sum/mean add in double, rounded once
      local big = T({{16777216, 16777217}, {5, 4}}, 'int64')
      local bm, bi = big:max(2)
      t.eq(bm:dtype(), 'int64')
      t.eq(bm:get(1, 1), 16777217)
      t.eq(bi:get(1, 1), 1)
      t.eq(big:argmin(1):get(1, 2), 1)
      local tiny = T({{1, 1 + 1e-12}, {1 + 2e-12, 1}}, 'float64')
      t.eq(tiny:argmax(1):get(1, 1), 1)
      t.eq(tiny:max(1):get(1, 1), 1 + 2e-12)
      local bytes = T({{200, 255}, {255, 1}}, 'uint8')
      t.eq(bytes:max(1):dtype(), 'uint8')
      t.eq(bytes:sum(1):get(1, 1), 455)
      t.eq(bytes:mean(2):dtype(), 'float32')
      t.eq(bytes:mean(2):get(1, 1), 227.5)
      t.eq(T({{16777217, 1}}, 'int64'):sum(2):get(1, 1), 16777218)
      -- a copy into an expanded view would keep only its last row
      t.raises(function() ts.zeros(1, 3):expand(2, 3):copy(T{{1, 2, 3}, {4, 5, 6}}) end, 'copy: the result is an expanded view')
   end)

   t.test('arange stops before its end, std and norm take no argument they ignore, a freed tensor says so', function()
      t.eq(ts.arange(5):numel(), 5)
      t.truthy(ts.arange(1, 5):equal(ts.tensor{1, 2, 3, 4}))
      t.truthy(ts.arange(0, 1, 0.25):equal(ts.tensor{0, 0.25, 0.5, 0.75}))
      t.raises(function() ts.arange(0, 1, 0) end, 'step must be a non-zero number')
      local x = ts.tensor{{1, 2}, {3, 5}}
      t.near(x:std(1), ts.tensor{{math.sqrt(2), math.sqrt(4.5)}}, 1e-6)
      t.raises(function() x:norm(1) end, 'only the L2 norm')
      t.raises(function() x[{1.5}] = 0 end, 'not an integer')
      t.raises(function() return x:get(1, 1.5) end, 'index 1.5 is not an integer')
      t.raises(function() return x:stride(3) end, 'dim 3 out of range')
      local f = ts.zeros(2)
      f:free()
      t.raises(function() return f:dim() end, 'tensor used after :free()')
      f:free()   -- twice is harmless
      t.eq(tostring(ts.zeros(0, 3)):find('{}', 1, true) ~= nil, true)
      -- integer casts wrap as numpy's do; a float int64 cannot hold is INT64_MIN, not undefined
      t.eq(ts.tensor({2 ^ 32 + 5}, 'int64'):int():get(1), 5)
      t.eq(ts.tensor{0 / 0, 1e30}:long():get(2), -2 ^ 63)
      t.eq(ts.tensor{0 / 0}:byte():get(1), 0)
   end)

   t.test('dtype conversions round-trip and saturate', function()
      local x = ts.tensor{-3.7, 0, 2.5, 300}
      t.eq(x:long():get(1), -3)
      local b = x:byte()
      t.eq(b:get(1), 0)
      t.eq(b:get(4), 255)
      t.near(ts.tensor({1, 2, 3}, 'uint8'):float(), ts.tensor{1, 2, 3})
      t.eq(ts.tensor{1, 2}:double():dtype(), 'float64')
   end)

   t.test('errors name what is wrong', function()
      local x = ts.zeros(2, 3)
      t.raises(function() return x[3] end, 'index 3 out of range for dim 1 of size 2')
      t.raises(function() return x:view(4, 2) end, 'cannot view [2,3]')
      t.raises(function() return x + ts.zeros(4) end, 'do not broadcast')
      t.raises(function() return x:narrow(2, 3, 2) end, 'outside dim 2')
      -- table indices: the value as written (a negative one not converted) and its dim in the tensor indexed
      t.raises(function() return x[{1, 4}] end, 'index 4 out of range for dim 2 of size 3')
      t.raises(function() return x[{-3}] end, 'index -3 out of range for dim 1 of size 2')
      t.raises(function() return x[{{-5, 2}}] end, 'index range {-5,2} outside dim 1 of size 2')
      t.raises(function() return x[{{1, 2, -1}}] end, 'index range {1,2,-1} (dim 1): a range is {first, last}')
      t.raises(function() return x[{1, 1, 1}] end, 'index: 3 indices for a tensor of 2 dims')
      t.raises(function() return x[{{}, 'a'}] end, 'index a (dim 2) is neither an integer nor a {first, last} range')
      t.eq(x[{-1, {-2, -1}}]:numel(), 2, 'negative indices count from the end')
      t.raises(function() return ts.zeros(2, 3):t():view(6) end, 'not contiguous')
      t.raises(function() return ts.tensor{{1, 2}, {3}} end, 'ragged')
      t.raises(function() return ts.zeros(2, 'complex') end, 'unknown dtype')
      t.raises(function() return x:mm(x) end, 'inner sizes differ')
      -- values an integer dtype cannot hold are errors, as in torch.tensor, not saturated or wrapped numbers;
      -- fractions are truncated toward zero, as there
      t.raises(function() return ts.tensor({1, 300}, 'uint8') end, 'element 2 (300) does not fit uint8')
      t.raises(function() return ts.tensor({0 / 0}, 'int64') end, 'element 1 (nan) does not fit int64')
      t.raises(function() return ts.tensor({2 ^ 63}, 'int64') end, 'does not fit int64')
      t.raises(function() return ts.tensor({2 ^ 31}, 'int32') end, 'does not fit int32')
      t.eq(ts.tensor({255.9, -0.9}, 'uint8'):get(1), 255)
      t.eq(ts.tensor({-2 ^ 63}, 'int64'):get(1), -2 ^ 63)
      -- a size that no Lua number holds exactly (2^63, inf) once wrapped to a negative one
      t.raises(function() return ts.zeros(2 ^ 63) end, 'size 1 must be a non-negative integer below 2^53')
      t.raises(function() return ts.zeros(math.huge) end, 'below 2^53, got inf')
      t.raises(function() ts.manualSeed(1.5) end, 'seed must be a whole number from 0 to 2^53, got 1.5')
      t.raises(function() return x[ts.tensor({1, 2})] end, 'a tensor cannot index a tensor')
      -- nil or a string where a tensor goes: named, not a Lua error from inside
      t.raises(function() return x + nil end, 'add: operands are tensors or numbers, got nil')
      t.raises(function() return x * 'abc' end, 'mul: operands are tensors or numbers, got string')
      t.raises(function() return x:mm(nil) end, 'mm: the second operand must be a tensor, got nil')
      t.raises(function() return ts.nn.Linear(3, 2):forward(nil) end, 'Linear:forward(input): input is nil')
   end)

   t.test('printing summarizes large tensors', function()
      local s = tostring(ts.zeros(100, 100))
      t.truthy(s:find('ts.Tensor float32 [100x100]', 1, true), s)
      t.truthy(#s < 200, 'summary too long')
      t.truthy(tostring(ts.tensor{1.5, 2}):find('{1.5, 2}', 1, true))
   end)

   t.test('random draws follow the seed', function()
      ts.manualSeed(7)
      local a = ts.randn(100)
      ts.manualSeed(7)
      local b = ts.randn(100)
      t.truthy(a:equal(b))
      t.near(a:mean(), 0, 0, 0.35)
      local u = ts.rand(10000)
      t.truthy(u:min() >= 0 and u:max() < 1)
      t.near(u:mean(), 0.5, 0, 0.02)
      local p = ts.randperm(10)
      table.sort(p)
      for i = 1, 10 do t.eq(p[i], i) end
   end)

   t.test('sizes from the user that overflow int64 are refused, not wrapped', function()
      t.raises(function() return ts.zeros(2 ^ 31, 2 ^ 31, 2 ^ 31) end, 'more elements than a 64-bit count')
      t.raises(function() return ts.zeros(0, 2 ^ 52, 2 ^ 12) end, 'more elements than a 64-bit count')
      t.raises(function() return ts.zeros(0, 2 ^ 62, 4) end, 'below 2^53')   -- no Lua number counts exactly there
      -- 2^40 x 2^40 wrapped to 0 elements, so an empty tensor took that shape and indexing read anywhere
      t.raises(function() return ts.zeros(0):view(2 ^ 40, 2 ^ 40) end, 'view: shape [1099511627776,1099511627776]')
      t.raises(function() return ts.zeros(4):view(-1, 2 ^ 52, 2 ^ 12) end, 'more elements than a 64-bit count')
      t.raises(function() return ts.zeros(1):expand(2 ^ 40, 2 ^ 40) end, 'expand: shape')
      t.eq(ts.zeros(1):expand(2 ^ 40):size(1), 2 ^ 40)   -- a large view of one element is fine
      -- start + length and start + (length - 1) * step are not formed where they overflow
      t.raises(function() return ts.zeros(3, 4):narrow(1, 2 ^ 62, 2 ^ 62) end, 'outside dim 1')
      t.raises(function() return ts.zeros(3, 4):slice(1, 1, 2 ^ 63, 2 ^ 62) end, 'do not fit dim 1')
      t.eq(ts.zeros(3, 4):slice(1, 2 ^ 62, 1):numel(), 0)   -- empty: its start is never used
      local one = ts.arange(12):view(3, 4):slice(1, 2, 2, 2 ^ 62)   -- one element: its step is never used
      t.eq(tostring(one:size()), '[1x4]')
      t.eq(one:get(1, 4), 7)
   end)

   t.test('careless arguments: refused or answered as PyTorch would, never hung, truncated or wrapped', function()
      local ffi = require('ffi')
      -- printing: an empty tensor of many rows, and an expanded view, without making its elements
      t.eq(tostring(ts.zeros(2 ^ 40, 0)), '{}\n[ts.Tensor float32 [1099511627776x0]]')
      t.truthy(tostring(ts.full({1}, 3):expand(2 ^ 40)):find('min 3  max 3  mean 3', 1, true))
      -- a table holding itself; dtype aliases and codes are range-checked as their names are
      local loop = {}
      loop[1] = loop
      t.raises(function() ts.tensor(loop) end, 'more than 5 nested levels')
      t.raises(function() ts.tensor({300}, 'byte') end, 'element 1 (300) does not fit uint8')
      t.raises(function() ts.tensor({2 ^ 31}, 'int') end, 'does not fit int32')
      t.raises(function() ts.tensor({0 / 0}, 3) end, 'does not fit int64')
      -- int64 to int32 beyond 2^53 wraps exactly, as numpy's astype (it went through a rounded double)
      local big = ts.zeros(3, 'int64')
      local p = ffi.cast('int64_t *', big:data())
      p[0], p[1], p[2] = 9007199254740993LL, 9223372036854775807LL, -9223372036854775807LL
      local small = big:int()
      t.eq(small:get(1), 1); t.eq(small:get(2), -1); t.eq(small:get(3), 1)
      -- fractions and negative dims
      t.raises(function() ts.arange(5):narrow(1, 1.5, 2) end, 'narrow: start must be a whole number, got 1.5')
      t.raises(function() ts.arange(5):narrow(1, 1, 2.9) end, 'narrow: length must be a whole number')
      t.raises(function() ts.zeros(5, 1):select(1, 2.7) end, 'select: index must be a whole number')
      t.raises(function() ts.zeros(2, 2):size(1.5) end, 'size: dim 1.5 is not an integer')
      t.raises(function() ts.arange(5):slice(1, 1, 5, 0.5) end, 'slice: step must be a whole number')
      t.raises(function() ts.arange(5):slice(1, 5, 1, -1) end, 'slice: step must be 1 or more')
      t.raises(function() ts.tensor{1, 2}:max(-2) end, 'dim -2 out of range for a 1-dim tensor (1 to 1, or -1 to -1)')
      t.raises(function() ts.zeros(2, 2):transpose(1, -3) end, 'transpose: dim -3 out of range for a 2-dim tensor')
      t.eq(ts.zeros(2, 3):size(-1), 3)
      -- sizes: a nil, or a table with more after it, is no size
      t.raises(function() ts.zeros(nil) end, 'size 1 must be a non-negative integer below 2^53, got nil')
      t.raises(function() ts.zeros(2, nil, 3) end, 'size 2 must be')
      t.raises(function() ts.zeros({2}, 7) end, 'sizes are one table or numbers, not a table and 1 more')
      t.eq(tostring(ts.zeros({2, 3}, nil):size()), '[2x3]', 'a trailing nil (an optional dtype passed on) is no size')
      t.eq(tostring(ts.zeros(2, 3, nil):size()), '[2x3]')
      t.raises(function() return ts.zeros(3)[{{true}}] end, 'index {true} (dim 1) is neither an integer')
      t.raises(function() ts.arange(6):view(0, -1) end, 'a size of 0 leaves the -1 undetermined')
      t.raises(function() return ts.zeros(2, 2, 2)[{1, nil, 2}] end, 'index 2 is nil')
      -- values an integer dtype cannot hold, and non-numbers, are refused by fill, set and assignment
      t.raises(function() ts.zeros(2, 'int32'):fill(0 / 0) end, 'fill: the value (nan) does not fit int32')
      t.raises(function() ts.zeros(2, 'uint8'):fill(300) end, 'does not fit uint8')
      t.raises(function() ts.zeros(2, 'int32'):set(1, 1e20) end, 'set: the value (1e+20) does not fit int32')
      t.raises(function() local z = ts.zeros(2); z[1] = true end, 'expected a number, got boolean')
      t.raises(function() local z = ts.zeros(2, 2, 'uint8'); z[{1, {}}] = 300 end, 't[...] = v: the value (300) does not fit uint8')
      -- an expanded view is read-only for every write, as copy and add_ already were
      local e = ts.zeros(1, 3):expand(2, 3)
      for _, write in ipairs({function() e:uniform() end, function() e:normal() end, function() e:fill(1) end,
                              function() e:set(1, 1, 7) end}) do
         t.raises(write, 'the result is an expanded view (stride 0 in dim 1)')
      end
      t.eq(ts.zeros(3):sum(), 0, 'nothing was written')
      t.raises(function() ts.zeros(3):normal(0, -1) end, 'normal: expected a finite mean and a finite std >= 0')
      t.raises(function() ts.zeros(3):uniform(1, 0) end, 'uniform: expected finite bounds with from <= to')
      -- empty reductions: the mean (and std) of nothing is NaN as in PyTorch; the max of nothing an error
      local m = ts.zeros(0):mean()
      t.truthy(m ~= m, 'mean of nothing: ' .. tostring(m))
      local s = ts.zeros(0):std()
      t.truthy(s ~= s)
      local rows = ts.zeros(2, 0):mean(2)
      t.eq(tostring(rows:size()), '[2x1]'); t.truthy(rows:get(1, 1) ~= rows:get(1, 1))
      t.raises(function() ts.zeros(0):max() end, 'max: the tensor has no elements, so no maximum')
      -- randint and arange
      for _, n in ipairs({0, -1, 0 / 0, 2.5}) do t.raises(function() ts.randint(n) end, 'randint: n must be a whole number') end
      t.raises(function() ts.arange(2 ^ 24, 2 ^ 24 + 4) end, "not exact in float32; give the dtype")
      t.truthy(ts.arange(2 ^ 24, 2 ^ 24 + 4, 'int64'):equal(ts.tensor({16777216, 16777217, 16777218, 16777219}, 'int64')))
      t.eq(ts.arange(3, 'int32'):dtype(), 'int32')
      t.raises(function() ts.arange(0 / 0) end, 'arange: end must be a finite number')
      t.raises(function() ts.arange(-1, 300, 'uint8') end, 'does not fit uint8')
      -- a negative index counts from the end with t[k] as with t[{k}]
      local r = ts.arange(3)
      t.eq(r[-1], 2)
      r[-1] = 7
      t.eq(r:get(3), 7)
      t.raises(function() return r[-4] end, 'index -4 out of range for dim 1 of size 3')
      -- mm, axpy_ and equal name what they were given
      t.raises(function() ts.zeros(2, 3):mm(ts.zeros(3)) end, 'mm: both operands must be matrices (2 dims), got [2x3] and [3]')
      t.raises(function() ts.zeros(2, 2):mm(ts.zeros(2, 2), 0, 0) end, 'mm: trans_a must be true or false, got 0')
      t.raises(function() ts.zeros(2):axpy_(1, 3) end, 'axpy_(alpha, x): expected a number and a tensor')
      t.raises(function() ts.zeros(1):equal({1}) end, 'equal: expected a tensor, got table')
      t.raises(function() ts.arange(6):view(4, -1) end, 'view: cannot view [6] (6 elements) as [4,-1]: 6 is not a multiple of 4')
      t.raises(function() ts.arange(6):view(4, 2) end, 'as [4,2] (8 elements)')
      -- an empty tensor's -1 beside a size of 0 could be anything (PyTorch refuses it too); explicit sizes are fine
      t.raises(function() ts.zeros(0):view(-1, 0) end, 'view: cannot view [0] (0 elements) as [-1,0]: a size of 0 leaves the -1 undetermined')
      t.raises(function() ts.zeros(2, 0):view(0, -1) end, 'cannot view [2,0] (0 elements) as [0,-1]')
      t.raises(function() ts.zeros(0, 3):reshape(3, -1, 0) end, 'a size of 0 leaves the -1 undetermined')
      t.eq(tostring(ts.zeros(0):view(0, 5):size()), '[0x5]')
      t.eq(tostring(ts.zeros(2, 0):view(0, 7, 3):size()), '[0x7x3]')
      t.eq(tostring(ts.zeros(0, 3):view(-1, 3):size()), '[0x3]')
      t.eq(tostring(ts.zeros(0, 3):view(-1):size()), '[0]')
      t.eq(tostring(ts.zeros(4, 0):t():reshape(0, 2, 2):size()), '[0x2x2]')
   end)

   -- hostile input: each is refused naming the call and the argument, at the caller's line (not in tensor.lua)
   t.test('bad arguments are refused at the caller\'s line; no tensor, fraction or hole is read as something else', function()
      -- a dtype code is one of 0 to 4 (1.5 was cut to uint8, 0.5 to float32)
      t.atCaller(t.raises(function() local x = ts.tensor({1, 2}, 1.5) end, 'unknown dtype 1.5'))
      t.atCaller(t.raises(function() local x = ts.zeros(2):type(1.5) end, 'unknown dtype 1.5'))
      t.raises(function() local x = ts.full({2}, 1, 0.5) end, 'unknown dtype 0.5')
      t.raises(function() local x = ts.zerosOn('cpu', {2}, 7) end, 'unknown dtype 7')
      t.eq(ts.zeros(2):type(3):dtype(), 'int64')
      -- a tensor inside a table read as an empty row ([2x0]); a nil inside a row ended it ({1, nil, 3} was {1})
      t.atCaller(t.raises(function() local x = ts.tensor{ts.zeros(2), ts.zeros(2)} end, 'ts.tensor: an element is a tensor'))
      t.raises(function() local x = ts.tensor{{1, 2}, ts.zeros(2)} end, 'an element is a tensor')
      local holed = {1}
      holed[3] = 3   -- # may say 1 or 3 for a table with a hole; either way the hole is refused
      t.atCaller(t.raises(function() local x = ts.tensor(holed) end, 'ts.tensor:'))
      local row = {1}
      row[3] = 3
      t.raises(function() local x = ts.tensor{row} end, 'entry 2 of dim 2 is nil')
      -- errors from deeper rows were reported in tensor.lua
      t.atCaller(t.raises(function() local x = ts.tensor{{{1, 2}, {3}}} end, 'ragged table: dim 3 should have 2 entries'))
      t.atCaller(t.raises(function() local x = ts.tensor{{1, 'a'}} end, 'ts.tensor: non-number element "a"'))
      -- constructors that fill (and ts.full, ts.arange's dtype) reported a bad size at their line in tensor.lua
      t.atCaller(t.raises(function() local x = ts.ones(2.5) end, 'size 1 must be a non-negative integer'))
      t.atCaller(t.raises(function() local x = ts.randn(0 / 0) end, 'size 1 must be'))
      t.atCaller(t.raises(function() local x = ts.rand({2, -3}) end, 'size 2 must be'))
      t.atCaller(t.raises(function() local x = ts.full({0 / 0}, 1) end, 'size 1 must be'))
      t.atCaller(t.raises(function() local x = ts.arange(3, 'half') end, 'unknown dtype half'))
      t.atCaller(t.raises(function() local x = ts.full({2}, 300, 'uint8') end, 'the value (300) does not fit uint8'))
      t.atCaller(t.raises(function() local x = ts.full({2}) end, 'ts.full(shape, value [, dtype]): value must be a number, got nil'))
      t.eq(ts.full({2}, 3, 'int64'):sum(), 6)
      t.eq(ts.ones({2, 3}, 'int64'):sum(), 6)
      t.eq(ts.randn(2, 3):dtype(), 'float32')
      -- randperm of -1 or NaN was {} without a word
      for _, n in ipairs({-1, 0 / 0, 2.5, '3'}) do
         t.atCaller(t.raises(function() local p = ts.randperm(n) end, 'randperm: n must be a whole number >= 0'))
      end
      t.eq(#ts.randperm(0), 0)
      -- a reduction's bad dim named the call's caller's caller (nothing from a pcall), and not the reduction
      local a = ts.zeros(2, 3)
      t.atCaller(t.raises(function() local x = a:sum(3) end, 'sum: dim 3 out of range for a 2-dim tensor'))
      t.atCaller(t.raises(function() local x = a:mean(0) end, 'mean: dim 0 out of range'))
      t.atCaller(t.raises(function() local x = ts.zeros(0, 2):mean(3) end, 'mean: dim 3 out of range'))
      t.atCaller(t.raises(function() local x = a:argmax(1.5) end, 'argmax: dim 1.5 is not an integer'))
      t.atCaller(t.raises(function() local x = a:std(-3) end, 'std: dim -3 out of range'))
      -- copy, assignment, allclose and maxAbsDiff name themselves for what is no tensor
      t.atCaller(t.raises(function() a:copy('x') end, 'copy: the source must be a tensor or a (nested) table of numbers, got string'))
      -- a table's errors name copy or the assignment at the caller's line (they named ts.tensor inside this library)
      t.atCaller(t.raises(function() a:copy({{1, 'x', 3}, {4, 5, 6}}) end, 'copy: non-number element "x"'))
      t.atCaller(t.raises(function() a[1] = {1, 'x', 3} end, 't[...] = v: non-number element "x"'))
      t.atCaller(t.raises(function() ts.zeros(1, 'uint8'):copy({300}) end, 'copy: element 1 (300) does not fit uint8'))
      -- and is read in the destination's dtype: through float32 a float64 lost 0.1's digits, an int64 2^40 + 1's
      local d, i = ts.zeros(2, 'float64'), ts.zeros(1, 'int64')
      d:copy({0.1, 1 / 3})
      d[2] = 0.2
      t.eq(d:totable()[1], 0.1)
      i:copy({2 ^ 40 + 1})
      t.eq(i:totable()[1], 2 ^ 40 + 1)
      local m = ts.zeros(2, 2, 'float64')
      m[2] = {0.1, 0.7}
      t.eq(m:totable()[2][2], 0.7)
      t.atCaller(t.raises(function() a[1] = 'x' end, 't[...] = v: the value must be a number, a tensor or a table of numbers, got string'))
      t.atCaller(t.raises(function() a[{1, {}}] = nil end, 'got nil'))
      t.atCaller(t.raises(function() local x = a:allclose({0}) end, 'allclose: expected a tensor, got table'))
      t.atCaller(t.raises(function() local x = a:maxAbsDiff(0) end, 'maxAbsDiff: expected a tensor, got number'))
      a[2] = {7, 8, 9}
      t.eq(a:sum(), 24)
      -- random draws into an integer tensor were cut or saturated (uint8 normal(1000, 1): 255 everywhere)
      t.raises(function() ts.zeros({3}, 'uint8'):normal(1000, 1) end, 'normal: draws real numbers, into a float32 or float64 tensor, got uint8')
      t.raises(function() ts.zeros({3}, 'int32'):uniform(0, 1) end, 'uniform: draws real numbers, into a float32 or float64 tensor, got int32')
      t.raises(function() local x = ts.rand(3, 'int64') end, 'uniform: draws real numbers')
      t.eq(ts.zeros({3}, 'float64'):uniform(2, 2):sum(), 6)
   end)

   t.test('float64 arithmetic keeps its digits: std, norm, maxAbsDiff and allclose of float64 and integer tensors', function()
      local T = ts.tensor
      local x = T({1}, 'float64') + 1e-12   -- through float32 (refused before) 1 + 1e-12 is 1
      t.eq(x:dtype(), 'float64'); t.eq(x:get(1), 1 + 1e-12)
      local mixed = T{{1}, {2}} + T({1e-12, 0}, 'float64')   -- a float64 operand makes a float64 result
      t.eq(mixed:dtype(), 'float64'); t.eq(mixed:get(2, 1), 2 + 1e-12)
      local f = T{1}
      f:add_(T({0.5}, 'float64'))   -- in place the result keeps the destination's dtype
      t.eq(f:dtype(), 'float32'); t.eq(f:get(1), 1.5)
      local sq = T({{4, 9}, {16, 25}}, 'float64')
      sq:t():sqrt_()
      t.truthy(sq:equal(T({{2, 3}, {4, 5}}, 'float64')), tostring(sq))
      t.eq(T({1, 1 + 1e-12}, 'float64'):eq(1):dtype(), 'float32')
      -- an integer's std along a dim is float32, as its mean, an empty one too (it was float64)
      t.eq(ts.zeros({0, 3}, 'int64'):std(1):dtype(), 'float32')
      t.eq(ts.zeros({2, 3}, 'int64'):std(1):dtype(), 'float32')
      -- each went through float32: 0, inf, 0, 0 and true
      t.near(T({1, 1 + 1e-10, 1 + 2e-10}, 'float64'):std(), 1e-10, 1e-6, 0)
      t.near(T({1e30, 1e30}, 'float64'):norm(), math.sqrt(2) * 1e30, 1e-12, 0)
      t.eq(T({1, 1}, 'float64'):maxAbsDiff(T({1, 1 + 2 ^ -40}, 'float64')), 2 ^ -40)
      t.eq(T({2 ^ 24}, 'int64'):maxAbsDiff(T({2 ^ 24 + 1}, 'int64')), 1)
      t.eq(T({1 + 1e-12}, 'float64'):allclose(T({1}, 'float64'), 0, 0), false)
      t.eq(T({2 ^ 40, 2 ^ 40 + 1, 2 ^ 40 + 2}, 'int64'):std(), 1)
      local s = T({{1, 1e-12}}, 'float64'):sum(2)   -- along a dim a float64 stays float64, as in PyTorch
      t.eq(s:dtype(), 'float64'); t.eq(s:get(1, 1), 1 + 1e-12)
      t.eq(T({{1, 2}}, 'float64'):std(2):dtype(), 'float64')
      t.eq(T({{1, 2}}, 'int64'):std(2):dtype(), 'float32')
      -- bad operands are refused, naming the op, at the caller's line (binary's errors had no position)
      t.atCaller(t.raises(function() local y = T{1}:add('a') end, 'add: operands are tensors or numbers, got string'))
      t.atCaller(t.raises(function() local y = T{1, 2} + T{1, 2, 3} end, 'shapes [2] and [3] do not broadcast'))
   end)

   -- integer tensors were refused ("add: arithmetic takes float32 or float64 tensors, got int64")
   t.test('integer arithmetic promotes as PyTorch, in int64 beyond 2^53, wrapping; in place a real result is refused', function()
      local T = ts.tensor
      local function is(x, dtype, values)
         t.eq(x:dtype(), dtype)
         t.truthy(x:equal(T(values, dtype)), tostring(x))
      end
      -- int op int: the wider int
      is(T({1, 2}, 'uint8') + T({1000, -3}, 'int64'), 'int64', {1001, -1})
      is(T({7, 2}, 'int32') - T({1, 5}, 'int64'), 'int64', {6, -3})
      is(T({200, 3}, 'uint8') * T({2, 4}, 'int32'), 'int32', {400, 12})
      is(T({{1}, {2}}, 'int64'):maximum(T({0, 5}, 'int32')), 'int64', {{1, 5}, {2, 5}})
      is(ts.arange(6, 'int64'):view(2, 3):t() + T({10, 20}, 'int64'), 'int64', {{10, 23}, {11, 24}, {12, 25}})
      -- int op a whole number: the tensor's dtype, wrapping as PyTorch's (uint8 255 + 1 is 0)
      is(T({255, 3}, 'uint8') + 1, 'uint8', {0, 4})
      is(T({2, 3}, 'uint8') - 3, 'uint8', {255, 0})
      is(-T({1, 0}, 'uint8'), 'uint8', {255, 0})
      is(T({2 ^ 31 - 1}, 'int32') + 1, 'int32', {-2 ^ 31})
      is(T({5}, 'uint8') + 300, 'uint8', {49})   -- 305 mod 256, what PyTorch's cast of 300 to uint8 gives
      is(10 - T({3}, 'int64'), 'int64', {7})
      is(T({-4, 9}, 'int64'):clamp(0, 5), 'int64', {0, 5})
      -- a fraction, a float tensor, true division and exp and the like: floats (PyTorch's default float32)
      is(T({1, 2}, 'int64') + 0.5, 'float32', {1.5, 2.5})
      is(T({-4, 9}, 'int64'):clamp(0.5, 5), 'float32', {0.5, 5})
      is(T({1, 2}, 'int64') * T{1.5, 2}, 'float32', {1.5, 4})
      is(T({1}, 'uint8') + T({0.25}, 'float64'), 'float64', {1.25})
      is(T({3, 4}, 'int64') / 2, 'float32', {1.5, 2})
      is(T({3, 4}, 'int32') / T({4, 8}, 'int32'), 'float32', {0.75, 0.5})
      local q = T({1, 0, -1}, 'int64') / 0   -- inf, nan and -inf, as PyTorch's
      t.eq(q:get(1), math.huge); t.truthy(q:get(2) ~= q:get(2)); t.eq(q:get(3), -math.huge)
      is(T({4, 9}, 'int32'):sqrt(), 'float32', {2, 3})
      is(T({0}, 'uint8'):sigmoid(), 'float32', {0.5})
      is(T({0}, 'int64'):exp(), 'float32', {1})
      -- neg, abs, floor and square keep the dtype
      is(T({-2, 3}, 'int32'):abs(), 'int32', {2, 3})
      is(T({-2, 3}, 'int64'):floor(), 'int64', {-2, 3})
      is(T({16, 3}, 'uint8'):square(), 'uint8', {0, 9})
      -- pow: an int to a whole exponent is an int; a negative exponent in a tensor as PyTorch's integer pow
      is(T({2, 3}, 'int64') ^ 3, 'int64', {8, 27})
      is(2 ^ T({0, 10}, 'int32'), 'int32', {1, 1024})
      is(T({4, 9}, 'int64') ^ 0.5, 'float32', {2, 3})
      is(T({1, -1, -1, 2}, 'int64') ^ T({-2, -2, -3, -1}, 'int64'), 'int64', {1, 1, -1, 0})
      -- comparisons: float32 0 and 1, as before
      is(T({3, 4}, 'int64'):gt(3), 'float32', {0, 1})
      is(T({1, 2}, 'uint8'):lt(1.5), 'float32', {1, 0})
      -- int64 beyond 2^53 in int64, not through a double (where 2^53 + 1 is 2^53)
      local function exact(x) return tostring(require('ffi').cast('int64_t *', x:contiguous():data())[0]) end
      local big = T({2 ^ 53}, 'int64') + 1
      t.eq(exact(big), '9007199254740993LL')
      t.eq(exact(big + 1), '9007199254740994LL')
      t.eq(exact(big * 2 - T({2 ^ 53}, 'int64')), '9007199254740994LL')
      t.eq(exact(-big), '-9007199254740993LL')
      t.eq(exact(big:maximum(T({2 ^ 53}, 'int64'))), '9007199254740993LL')
      t.eq(big:gt(T({2 ^ 53}, 'int64')):get(1), 1)
      t.eq(exact(T({2 ^ 62}, 'int64') * 2), '-9223372036854775808LL')   -- wraps, as PyTorch's
      -- in place: the result cast into the destination's dtype; a real one into an integer tensor refused by name
      local u = T({250}, 'uint8'); u:add_(10); is(u, 'uint8', {4})
      local i = T({250}, 'int32'); i:add_(T({10}, 'int64')); is(i, 'int32', {260})
      local f = T{1.5}; f:mul_(T({2}, 'int64')); is(f, 'float32', {3})
      local e = T({1, 2}, 'int64'); e:eq_(1); is(e, 'int64', {1, 0})
      t.atCaller(t.raises(function() local y = T({1}, 'uint8'):add_(0.5) end, 'add_: the result is float32, which the uint8 tensor cannot hold in place'))
      t.atCaller(t.raises(function() local y = T({4}, 'int64'):div_(2) end, 'div_: the result is float32, which the int64 tensor'))
      t.atCaller(t.raises(function() local y = T({4}, 'int32'):add_(T({1}, 'float64')) end, 'add_: the result is float64'))
      t.atCaller(t.raises(function() local y = T({4}, 'int32'):sqrt_() end, 'sqrt_: the result is float32'))
      -- and what has no integer answer: a negative power, a maximum beyond the dtype, a number beyond int64
      t.atCaller(t.raises(function() local y = T({2}, 'int64') ^ -1 end, 'pow: an integer tensor to a negative power (-1)'))
      t.atCaller(t.raises(function() local y = T({2}, 'uint8'):clamp(300) end, 'maximum: the result (300) does not fit uint8'))
      t.atCaller(t.raises(function() local y = T({2}, 'int64') + 2 ^ 63 end, 'does not fit int64'))
      -- C refuses a real result into an integer tensor too, for callers other than these bindings
      local C = require('ts.ffi').C
      t.eq(C.ts_tensor_binary_scalar(i._c, i._c, 0.5, 0, 0), -1)
      t.truthy(require('ffi').string(C.ts_last_error()):find('add: the result is a real number', 1, true))
   end)

   t.test('views and copies take what PyTorch takes: negative select and narrow, expand -1, t() of a vector, broadcast copies', function()
      local T = ts.tensor
      local m = ts.arange(6):view(2, 3)
      t.truthy(m:select(1, -1):equal(T{3, 4, 5}))
      t.truthy(m:select(2, -3):equal(T{0, 3}))
      t.raises(function() local y = m:select(1, -3) end, 'select: index -3 out of range for dim 1 of size 2')
      t.truthy(ts.arange(5):narrow(1, -2, 2):equal(T{3, 4}))
      t.raises(function() local y = ts.arange(5):narrow(1, -6, 2) end, 'narrow: start -6 and length 2 fall outside dim 1 of size 5')
      -- the start named as given (C's message named -1 as 2, at no line)
      t.raises(function() local y = ts.arange(5):narrow(1, -1, 2) end, 'narrow: start -1 and length 2 fall outside dim 1 of size 5')
      t.eq(tostring(ts.zeros(3, 1):expand(2, -1, 4):size()), '[2x3x4]')
      t.raises(function() local y = ts.zeros(3):expand(-1, 3) end, 'expand: size -1 of dim 1 is negative')
      -- t() of a vector is the vector (it was an error); of 3 dims an error (it swapped the first two)
      local v = ts.arange(3)
      local vt = v:t()
      vt[1] = 9
      t.eq(v:get(1), 9); t.eq(tostring(vt:size()), '[3]')
      t.raises(function() local y = ts.zeros(2, 3, 4):t() end, 't: a tensor of at most 2 dims, got [2x3x4]')
      -- a row into every row, as copy_ and assignment broadcast in PyTorch; a source that does not broadcast is refused
      local x = ts.zeros(2, 3)
      x:copy(T{1, 2, 3})
      t.truthy(x:equal(T{{1, 2, 3}, {1, 2, 3}}), tostring(x))
      x[{{}, {}}] = T{{7}, {8}}
      t.truthy(x:equal(T{{7, 7, 7}, {8, 8, 8}}), tostring(x))
      local ids = ts.zeros(2, 2, 'int64')
      ids[{{}, {}}] = {5, 6}
      t.truthy(ids:equal(T({{5, 6}, {5, 6}}, 'int64')), tostring(ids))
      local self_row = T{{1, 2}, {3, 4}}
      self_row:copy(self_row[1])
      t.truthy(self_row:equal(T{{1, 2}, {1, 2}}), tostring(self_row))
      t.raises(function() ts.zeros(2, 3):copy(T{1, 2}) end, 'copy: destination [2,3] and source [2] differ in element count')
   end)

   t.test('hostile arguments: named entries, draws of strings, empty maxima, int64 beyond 2^53 in print', function()
      local T = ts.tensor
      -- named entries were dropped: {a = 1} made an empty tensor, {1, 2, a = 1} a [2]
      t.raises(function() local x = T{a = 1} end, 'ts.tensor: dim 1 has an entry named "a"; a tensor is made of lists of numbers')
      t.raises(function() local x = T{{1, 2, n = 2}} end, 'dim 2 has an entry named "n"')
      t.raises(function() local x = T{[0] = 5, 1} end, 'dim 1 has an entry named 0')
      t.raises(function() ts.zeros(2):copy({1, 2, x = 3}) end, 'copy: dim 1 has an entry named "x"')
      t.eq(tostring(T{}:size()), '[0]')
      -- a tensor given to ts.tensor with a dtype came back in its own dtype
      local src = T{1.5, -2}
      local ids = T(src, 'int64')
      t.truthy(ids:equal(T({1, -2}, 'int64')), tostring(ids))
      local same = T(src)
      same[1] = 7
      t.eq(src:get(1), 1.5, 'a copy')
      t.raises(function() local x = T(src, 'foo') end, 'unknown dtype foo')
      -- a string reached the FFI, whose error named this library's line
      t.raises(function() ts.zeros(2):uniform('a') end, 'uniform: from must be a number, got "a"')
      t.raises(function() ts.zeros(2):normal(0, {}) end, 'normal: std must be a number, got {}')
      -- the max of nothing names the call and the dim (C's "reduce: empty dimension" named neither)
      t.raises(function() local x = ts.zeros(0, 3):argmax(1) end, 'argmax: dim 1 has no elements, so no maximum')
      t.raises(function() local x = ts.zeros(0):min() end, 'min: the tensor has no elements, so no minimum')
      t.eq(tostring(ts.zeros(0, 3):max(2):size()), '[0x1]')
      -- printing: an int64 as its digits, a float64 summary without float32's overflow
      local big = ts.zeros(2, 'int64')
      local p = require('ffi').cast('int64_t *', big:data())
      p[0], p[1] = 9007199254740993LL, -9223372036854775807LL - 1
      t.truthy(tostring(big):find('{9007199254740993, -9223372036854775808}', 1, true), tostring(big))
      t.truthy(tostring(ts.full({100}, 1e300, 'float64')):find('max 1e+300', 1, true))
      t.truthy(tostring(T{{1.5, 2}, {3, 4}}:t()):find('{{1.5, 3}\n {2, 4}}'))
   end)

   t.test('permute, squeeze and unsqueeze are views; ts.cat and ts.stack join as PyTorch does', function()
      local T = ts.tensor
      -- permute: dim k of the result is dim dims[k] of t; made contiguous, a matrix's is its transpose
      t.truthy(T{{1, 2, 3}, {4, 5, 6}}:permute(2, 1):contiguous():equal(T{{1, 4}, {2, 5}, {3, 6}}))
      local x = ts.arange(24):view(2, 3, 4)
      local p = x:permute(3, 1, 2)
      t.eq(tostring(p:size()), '[4x2x3]')
      t.eq(p:get(4, 2, 3), x:get(2, 3, 4))   -- p[k][i][j] is x[i][j][k]
      t.eq(p:get(2, 1, 3), x:get(1, 3, 2))
      t.eq(tostring(x:permute{-1, 1, -2}:size()), '[4x2x3]')
      t.truthy(x:permute(2, 3, 1):permute(3, 1, 2):equal(x))
      t.eq(ts.zeros({}):permute():dim(), 0)
      p:select(1, 1):fill(-1)   -- x[i][j][1]: 0, 4, ..., 20 (60 in all) become -1
      t.eq(x:get(2, 3, 1), -1)
      t.eq(x:sum(), 276 - 60 - 6)
      -- squeeze: every dim of size 1, or dim d only where its size is 1
      local a = ts.zeros(1, 3, 1)
      t.eq(tostring(a:squeeze():size()), '[3]')
      t.eq(tostring(a:squeeze(1):size()), '[3x1]')
      t.eq(tostring(a:squeeze(-1):size()), '[1x3]')
      t.eq(tostring(a:squeeze(2):size()), '[1x3x1]')
      a:squeeze():copy(T{1, 2, 3})
      t.eq(a:get(1, 3, 1), 3)
      t.truthy(ts.arange(6):view(2, 3):t():narrow(2, 2, 1):squeeze():equal(T{3, 4, 5}))
      t.eq(ts.zeros({}):squeeze(-1):dim(), 0)   -- a 0-dim tensor takes dim 1 or -1, as in PyTorch
      -- unsqueeze: d from 1 to dim + 1, negatives from dim + 1; of a transpose with PyTorch's strides (1, 6, 3)
      local b = T{{1, 2, 3}, {4, 5, 6}}
      t.eq(tostring(b:unsqueeze(1):size()), '[1x2x3]')
      t.eq(tostring(b:unsqueeze(3):size()), '[2x3x1]')
      t.eq(tostring(b:unsqueeze(-1):size()), '[2x3x1]')
      t.eq(tostring(b:unsqueeze(-3):size()), '[1x2x3]')
      t.eq(tostring(ts.zeros({}):unsqueeze(1):size()), '[1]')
      local u = b:t():unsqueeze(2)
      t.eq(tostring(u:size()), '[3x1x2]')
      t.eq(u:stride(2), 6)
      t.eq(u:get(3, 1, 2), 6)
      u:select(2, 1):fill(0)
      t.eq(b:sum(), 0)
      -- cat: every dim but d agrees; sources of any strides; the result is a new tensor
      t.truthy(ts.cat({T{{1, 2, 3}, {4, 5, 6}}, T{{7, 8, 9}}}, 1):equal(T{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}))
      t.truthy(ts.cat({T{{1}, {2}}, T{{3, 4}, {5, 6}}}, -1):equal(T{{1, 3, 4}, {2, 5, 6}}))
      t.truthy(ts.cat({T{1, 2}, T{3}}):equal(T{1, 2, 3}), 'dim 1 by default')
      local src = T{{1, 2}, {3, 4}}
      local joined = ts.cat({src:t(), T{{9, 8}}:expand(2, 2)}, 2)
      t.truthy(joined:equal(T{{1, 3, 9, 8}, {2, 4, 9, 8}}), tostring(joined))
      joined:fill(0)
      t.eq(src:sum(), 10)
      local one = ts.cat({src}, 1)
      t.truthy(one:equal(src))
      one[1][1] = 5
      t.eq(src:get(1, 1), 1, 'a one-element list gives a copy')
      t.eq(ts.cat({T({1}, 'int64'), T({2}, 'int64')}):dtype(), 'int64')
      -- zero sizes as PyTorch: an empty part adds nothing, a 1-dim [0] is left out whatever the others' shape
      t.eq(tostring(ts.cat({ts.zeros(0, 3), ts.ones(2, 3)}, 1):size()), '[2x3]')
      t.eq(tostring(ts.cat({ts.zeros(2, 0), ts.zeros(2, 0)}, 2):size()), '[2x0]')
      t.eq(tostring(ts.cat({ts.zeros(0), ts.ones(2, 3), ts.zeros(0)}, 2):size()), '[2x3]')
      -- stack: tensors of one shape as the slices of a new dim d
      t.truthy(ts.stack({T{1, 2}, T{3, 4}, T{5, 6}}, 2):equal(T{{1, 3, 5}, {2, 4, 6}}))
      t.truthy(ts.stack({T{1, 2}, T{3, 4}, T{5, 6}}):equal(T{{1, 2}, {3, 4}, {5, 6}}))
      t.truthy(ts.stack({T{1, 2}, T{3, 4}}, -1):equal(T{{1, 3}, {2, 4}}))
      t.eq(tostring(ts.stack({ts.zeros(2, 3)}, 3):size()), '[2x3x1]')
      -- refusals name the call and the argument, at the caller's line
      t.atCaller(t.raises(function() local y = x:permute(1, 2) end, 'permute: 2 dims given for a 3-dim tensor [2x3x4]'))
      t.atCaller(t.raises(function() local y = x:permute(1, 2, -3) end, 'permute: dim 1 appears twice (given as 1 and -3)'))
      t.atCaller(t.raises(function() local y = x:permute(1, 2, 4) end, 'permute: dim 4 out of range for a 3-dim tensor'))
      t.atCaller(t.raises(function() local y = x:squeeze(4) end, 'squeeze: dim 4 out of range for a 3-dim tensor'))
      t.atCaller(t.raises(function() local y = b:unsqueeze(4) end, 'unsqueeze: dim 4 out of range for a 2-dim tensor (1 to 3, or -3 to -1)'))
      t.raises(function() local y = ts.zeros(1, 1, 1, 1, 1):unsqueeze(1) end, 'unsqueeze: [1,1,1,1,1] has 5 dims already')
      t.atCaller(t.raises(function() local y = ts.cat({}) end, 'ts.cat: tensors must be a non-empty list of tensors, got {}'))
      t.atCaller(t.raises(function() local y = ts.cat(src) end, 'ts.cat: tensors must be a non-empty list of tensors, got a tensor [2x2]'))
      t.atCaller(t.raises(function() local y = ts.cat({src, 1}) end, 'ts.cat: tensors[2] is 1, not a tensor'))
      t.atCaller(t.raises(function() local y = ts.cat({src, src:double()}) end, 'ts.cat: tensors[2] is float64, tensors[1] float32'))
      t.atCaller(t.raises(function() local y = ts.cat({src, ts.zeros(2, 3)}, 1) end,
                         'ts.cat: tensors[2] is [2x3], tensors[1] [2x2]; they must agree in every dim but dim 1'))
      t.atCaller(t.raises(function() local y = ts.cat({src, src}, 3) end, 'ts.cat: dim 3 out of range for a 2-dim tensor'))
      t.atCaller(t.raises(function() local y = ts.cat({ts.zeros({}), ts.zeros({})}) end, 'ts.cat: tensors[1] has no dims'))
      t.atCaller(t.raises(function() local y = ts.stack({T{1, 2}, T{1, 2, 3}}) end,
                         'ts.stack: tensors[2] is [3], tensors[1] [2]; all must have one shape'))
      t.atCaller(t.raises(function() local y = ts.stack({T{1, 2}}, 3) end, 'ts.stack: dim 3 out of range for a 1-dim tensor (1 to 2, or -2 to -1)'))
      t.atCaller(t.raises(function() local y = ts.stack({ts.zeros(1, 1, 1, 1, 1)}) end, 'ts.stack: tensors of 5 dims'))
   end)
end
