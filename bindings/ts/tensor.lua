-- ts.Tensor: a Lua object around a C tensor handle (field _c, what the C API takes), freed with it by
-- the garbage collector.
-- Indexing is 1-based as in Torch7: t[i] selects along dim 1 (a number for a 1-d tensor),
-- t[{ {1,3}, 2, {} }] narrows, selects and keeps dims in one go. Dims are 1-based too.
local ffi = require('ffi')
local cffi = require('ts.ffi')
local keys = require('ts.keys')
local C, check, fail = cffi.C, cffi.check, cffi.fail

local Tensor = {}          -- methods
local mt = {}              -- metatable of tensor objects
local T = {}               -- the module: constructors and helpers

local dtypes = {float32 = 0, uint8 = 1, int32 = 2, int64 = 3, float64 = 4}
local dtype_names = {[0] = 'float32', 'uint8', 'int32', 'int64', 'float64'}
dtypes.float, dtypes.byte, dtypes.int, dtypes.long, dtypes.double = 0, 1, 2, 3, 4
T.dtypes = dtypes

local shape_buf = ffi.new('int64_t[5]')
local index_buf = ffi.new('int64_t[5]')
local value_buf = ffi.new('double[1]')

-- one element at index_buf (a device's is copied, which can fail)
local function element(t)
   check(C.ts_tensor_get(t._c, index_buf, value_buf))
   return value_buf[0]
end

-- The GC cannot see C memory: collect after every ~512 MB of tensors allocated.
local pressure = 0
local function wrap(ptr)
   if ptr == nil then fail() end
   pressure = pressure + tonumber(C.ts_alloc_pressure())
   if pressure > 512 * 1024 * 1024 then
      pressure = 0
      collectgarbage('collect')
   end
   return setmetatable({_c = ffi.gc(ptr, C.ts_tensor_free)}, mt)
end
T.wrap = wrap

local function is_tensor(x) return getmetatable(x) == mt end
T.isTensor = is_tensor

-- whether v is a Lua number that is neither NaN nor infinite (how settings are checked before they reach C)
function T.isFinite(v) return type(v) == 'number' and v == v and v ~= math.huge and v ~= -math.huge end

-- Accepts (2, 3, 4), ({2, 3, 4}) or (t:size()); returns ndim and fills shape_buf.
local function shape_of(...)
   local first, count = select(1, ...), select('#', ...)
   -- trailing nils are no sizes (an optional dtype passed on as nil), but a first nil is (a misspelt variable)
   while count > 1 and select(count, ...) == nil do count = count - 1 end
   if type(first) == 'table' and count > 1 then
      error(('sizes are one table or numbers, not a table and %d more argument(s)'):format(count - 1), 3)
   end
   local dims = type(first) == 'table' and first or {...}
   local n = type(first) == 'table' and #dims or count
   if table.maxn(dims) > n then n = table.maxn(dims) end
   if n > 5 then error('ts: at most 5 dims, got ' .. n, 3) end
   for i = 1, n do
      local d = dims[i]
      -- below 2^53: above it a Lua number is no exact integer, and 2^63 or inf wrapped to a negative int64
      if type(d) ~= 'number' or d < -1 or d ~= math.floor(d) or d >= 2 ^ 53 then
         error(('size %d must be a non-negative integer below 2^53, got %s'):format(i, tostring(d)), 3)
      end
      shape_buf[i - 1] = d
   end
   return n
end

-- a dtype's name (or C's code) as C's code; an unknown one an error at `level` as error's, counted from the caller
-- (default: the caller's caller)
local function dtype_code(name, level)
   if name == nil then return 0 end
   -- a number is a code as C counts them, 0 to 4: a fraction (1.5) was cut by the FFI into another dtype's code
   local code = type(name) == 'number' and dtype_names[name] and name or dtypes[name]
   if not code then error('ts: unknown dtype ' .. tostring(name) .. ' (float32, uint8, int32, int64, float64)', (level or 2) + 1) end
   return code
end
T.dtypeCode = dtype_code

-- An integer dtype takes a value truncated toward zero, as torch.tensor does; one that does not fit (300 as uint8,
-- NaN, 2^63 as int64) is an error, as in PyTorch, not a saturated or wrapped number (open bounds: what truncates
-- into the range; -(2^63 + 2^11) is the double below -2^63). Also what fill and set store.
local int_ranges = {uint8 = {-1, 256}, int32 = {-2 ^ 31 - 1, 2 ^ 31}, int64 = {-(2 ^ 63 + 2 ^ 11), 2 ^ 63}}
local function check_fits(what, v, dtype, level)
   if type(v) ~= 'number' then error(('%s: expected a number, got %s'):format(what, type(v)), level + 1) end
   local range = int_ranges[dtype]
   if range and not (v > range[1] and v < range[2]) then
      error(('%s (%s) does not fit %s'):format(what, tostring(v), dtype), level + 1)
   end
end

local devices = {cpu = 0, cuda = 1}
local device_names = {[0] = 'cpu', 'cuda'}
-- a device's name (or C's code) as C's code; an unknown one an error as dtype_code's
local function device_code(name, level)
   local code = type(name) == 'number' and name or devices[name]
   if not device_names[code] then error(('ts: unknown device %s (cpu, cuda)'):format(tostring(name)), (level or 2) + 1) end
   return code
end

local function new_on(device, dtype, ...)
   local n = shape_of(...)
   return wrap(C.ts_tensor_new_on(device, dtype, n, shape_buf))
end
local function new(dtype, ...) return new_on(0, dtype, ...) end
T.deviceCode = device_code
local function device_of(t) return C.ts_tensor_device(t._c) end

-- ts.zerosOn('cuda', {2, 3} [, dtype]): zeros on a device
function T.zerosOn(device, shape, dtype)
   return new_on(device_code(device), dtype and dtype_code(dtype) or 0, shape)
end

-- ts.zeros(2, 3), ts.zeros({2, 3}, 'int64')
local function split_dtype(...)
   local n = select('#', ...)
   if n == 0 then return 0, 0 end
   local last = select(n, ...)
   if type(last) == 'string' then return dtype_code(last, 3), n - 1 end
   return 0, n
end

-- ts.zeros(2, 3), ts.ones({2, 3}, 'int64'), ts.rand, ts.randn, ts.full: a tensor of those sizes (numbers, or one
-- table) and dtype (a name, last), then its values: init nil (zeros), a number, or 'uniform' / 'normal' draws. Each
-- constructor returns made(...) as a tail call, which takes its own frame off the stack: shape_of's and split_dtype's
-- errors then name the constructor's caller (through one call more, ts.ones's named this file).
local function made(init, ...)
   local dtype, n = split_dtype(...)
   local t = wrap(C.ts_tensor_new_on(0, dtype, shape_of(unpack({...}, 1, n)), shape_buf))
   if init == 'uniform' then check(C.ts_tensor_uniform(t._c, 0, 1))
   elseif init == 'normal' then check(C.ts_tensor_normal(t._c, 0, 1))
   elseif init then
      check_fits('the value', init, dtype_names[dtype], 2)
      t:fill(init)
   end
   return t
end

function T.zeros(...) return made(nil, ...) end
T.empty = T.zeros
function T.ones(...) return made(1, ...) end
function T.rand(...) return made('uniform', ...) end
function T.randn(...) return made('normal', ...) end
function T.full(shape, value, dtype)
   if type(value) ~= 'number' then   -- (nil would make zeros, a word draws)
      error(('ts.full(shape, value [, dtype]): value must be a number, got %s'):format(keys.show(value)), 2)
   end
   return made(value, shape, dtype_names[dtype_code(dtype)])
end

-- float32, as the tensors it mostly indexes and scales; values float32 cannot hold exactly (whole numbers beyond
-- 2^24) are refused rather than rounded into repeats: ask for 'int64' or 'float64' as the last argument
function T.arange(...)
   local args, dtype = {...}, 'float32'
   if type(args[#args]) == 'string' then dtype = dtype_names[dtype_code(table.remove(args), 2)] end
   local a, b, step = args[1], args[2], args[3]
   if not b then a, b = 0, a end   -- arange(n) = 0 .. n-1; arange(a, b) stops before b, as numpy and PyTorch
   step = step or 1
   for _, v in ipairs({{a, 'start'}, {b, 'end'}, {step, 'step'}}) do
      if not T.isFinite(v[1]) then error(('arange: %s must be a finite number, got %s'):format(v[2], tostring(v[1])), 2) end
   end
   if step == 0 then error('arange: step must be a non-zero number', 2) end
   local n = math.max(0, math.ceil((b - a) / step))
   if n >= 2 ^ 53 then error(('arange: %.0f elements are too many'):format(n), 2) end
   local last = a + (n - 1) * step
   if dtype == 'float32' and n > 0 and math.max(math.abs(a), math.abs(last)) > 2 ^ 24 then
      error(('arange: values up to %s are not exact in float32; give the dtype: ts.arange(%s, %s, %s, \'int64\')'):format(
            tostring(last), tostring(a), tostring(b), tostring(step)), 2)
   end
   local t = new(4, n)
   local p = ffi.cast('double *', C.ts_tensor_data(t._c))
   for i = 0, n - 1 do p[i] = a + i * step end
   if int_ranges[dtype] and n > 0 then
      for _, v in ipairs({a, last}) do check_fits('arange: the value', v, dtype, 2) end
   end
   return t:type(dtype)
end

-- random integer in [1, n] from the global generator
function T.randint(n)
   keys.count(n, 'randint', 'n', 1, 2 ^ 53, 2)
   return tonumber(C.ts_rng_u64() % n) + 1
end

-- a random permutation of 1..n (Fisher-Yates over the global generator); n of -1 or NaN gave {} without a word
function T.randperm(n)
   keys.sizes(n, 'randperm', 'n', 0, 1)
   local p = {}
   for i = 1, n do p[i] = i end
   for i = n, 2, -1 do
      local j = T.randint(i)
      p[i], p[j] = p[j], p[i]
   end
   return p
end

-- One pass over a tensor's values (any dtype, any device: read from a host copy): the smallest and largest finite
-- ones, how many are NaN or infinite, and how many have a fraction. What readers of labels and images check.
-- (T.ctypes: the C pointer type of each dtype's elements, for FFI loops over a tensor's data)
T.ctypes = {uint8 = 'uint8_t *', int32 = 'int32_t *', int64 = 'int64_t *', float32 = 'float *', float64 = 'double *'}
function T.survey(t)
   t = t:cpu():contiguous()
   local p = ffi.cast(T.ctypes[t:dtype()], t:data())
   local lo, hi, nonfinite, fractional = math.huge, -math.huge, 0, 0
   for i = 0, t:numel() - 1 do
      local v = tonumber(p[i])
      if v ~= v or v == math.huge or v == -math.huge then nonfinite = nonfinite + 1
      else
         if v < lo then lo = v end
         if v > hi then hi = v end
         if v ~= math.floor(v) then fractional = fractional + 1 end
      end
   end
   return lo, hi, nonfinite, fractional
end

-- Nested tables of numbers to a tensor of dtype (float32 when nil), for ts.tensor and copy; errors begin with
-- `what` and are raised at `level` as error's, counted from the caller (1: the caller's line)
local function from_table(what, data, dtype, level)
   local shape, node = {}, data
   while type(node) == 'table' and not is_tensor(node) do
      -- a table that holds itself would go on for ever
      if #shape == 5 then error(what .. ': more than 5 nested levels (at most 5 dims)', level + 1) end
      shape[#shape + 1] = #node
      node = node[1]
   end
   local flat = {}
   -- errors at level + 1 + d, from_table's `level` under d calls of walk (a fixed 4 named this file below dim 2)
   local function walk(x, d)
      if is_tensor(x) then   -- read as an empty table, {t1, t2} gave [2x0]
         error(what .. ': an element is a tensor; ts.tensor takes nested tables of numbers (t:totable())', level + 1 + d)
      end
      if d > #shape then
         if type(x) ~= 'number' then error(what .. ': non-number element ' .. keys.show(x), level + 1 + d) end
         flat[#flat + 1] = x
         return
      end
      if type(x) ~= 'table' or #x ~= shape[d] then
         error(('%s: ragged table: dim %d should have %d entries'):format(what, d, shape[d]), level + 1 + d)
      end
      -- every key a position from 1 to #x: a nil inside a row ({1, nil, 3}) may end its length early, and the values
      -- after it were dropped, as were named entries ({a = 1} gave an empty tensor)
      for key in pairs(x) do
         if type(key) == 'number' and key % 1 == 0 and key > #x then
            error(('%s: entry %d of dim %d is nil'):format(what, #x + 1, d), level + 1 + d)
         elseif type(key) ~= 'number' or key % 1 ~= 0 or key < 1 then
            error(('%s: dim %d has an entry named %s; a tensor is made of lists of numbers'):format(what, d,
                  keys.show(key)), level + 1 + d)
         end
      end
      for i = 1, #x do walk(x[i], d + 1) end
   end
   walk(data, 1)
   local name = dtype_names[dtype_code(dtype, level + 1)]
   local range = int_ranges[name]
   for i, v in ipairs(flat) do   -- the message made only for an element that does not fit
      if range and not (v > range[1] and v < range[2]) then check_fits(what .. ': element ' .. i, v, name, level + 1) end
   end
   -- filled as float64, the numbers as Lua holds them, then converted once: a float64 or int64 destination keeps
   -- what float32 would round
   local t = new(4, shape)
   local p = ffi.cast('double *', C.ts_tensor_data(t._c))
   for i = 1, #flat do p[i - 1] = flat[i] end
   return t:type(dtype or 'float32')
end

-- ts.tensor{{1,2},{3,4}} or ts.tensor({1,2,3}, 'int64'): nested tables to a tensor
function T.tensor(data, dtype)
   if is_tensor(data) then   -- a copy in dtype, as torch.tensor(t, dtype=...) (the dtype was ignored)
      local c = data:type(dtype_code(dtype or data:dtype(), 2))
      return c == data and data:clone() or c
   end
   if type(data) == 'number' then data = {data} end
   if type(data) ~= 'table' then error('ts.tensor: expected a (nested) table of numbers, got ' .. type(data), 2) end
   local t = from_table('ts.tensor', data, dtype, 2)   -- not a tail call, which would drop this frame from the count
   return t
end

-- ---- shape and access ------------------------------------------------------------------------------

-- Gives this handle's C tensor back now instead of at a later garbage collection (the collector does not see
-- C memory); its storage goes when no other handle or view holds it. The Lua object cannot be used afterwards.
local freed_mt = {__index = function(_, k)
   if k == 'free' then return function() end end   -- freeing twice is harmless
   error('tensor used after :free()', 2)
end}
freed_mt.__newindex = function() error('tensor used after :free()', 2) end
function Tensor:free()
   if rawget(self, '_c') ~= nil then
      C.ts_tensor_free(ffi.gc(self._c, nil))
      self._c = nil
      setmetatable(self, freed_mt)
   end
end

function Tensor:dim() return C.ts_tensor_ndim(self._c) end
function Tensor:numel() return tonumber(C.ts_tensor_numel(self._c)) end
Tensor.nElement = Tensor.numel
function Tensor:dtype() return dtype_names[C.ts_tensor_dtype(self._c)] end
function Tensor:isContiguous() return C.ts_tensor_is_contiguous(self._c) == 1 end
-- the address of the first element, for FFI code on the host; a CUDA tensor's is not readable here
function Tensor:data()
   if device_of(self) ~= 0 then error('data(): the tensor is on cuda; use :to(\'cpu\') first', 2) end
   return C.ts_tensor_data(self._c)
end
function Tensor:device() return device_names[device_of(self)] end
-- the same tensor when it is already on device, else a copy there
function Tensor:to(device) return wrap(C.ts_tensor_to(self._c, device_code(device))) end
-- moves this tensor object itself to device (its data is copied there; views of the old data keep it)
function Tensor:moveTo(device)
   if self:device() ~= device then self._c = self:to(device)._c end
   return self
end
function Tensor:cuda() return self:to('cuda') end
function Tensor:cpu() return self:to('cpu') end
-- zeros of the same shape, dtype and device
function Tensor:zerosLike() return new_on(device_of(self), C.ts_tensor_dtype(self._c), self:size()) end

-- a dim argument (1-based; a negative one counts from the end) as the C API's 0-based dim; errors name the
-- dim as given and the range a tensor of this many dims takes, as PyTorch's do. past 1: a dim may also be one past
-- the last, negatives counting from there (where unsqueeze and stack put a new dim, as PyTorch's dim + 1 range)
local function dim_arg(self, d, level, what, past)
   local n = C.ts_tensor_ndim(self._c)
   local m = n + (past or 0)
   what = what and what .. ': ' or ''
   if type(d) ~= 'number' then error(('%sexpected a dim number, got %s'):format(what, type(d)), level + 1) end
   if d ~= math.floor(d) then error(('%sdim %s is not an integer'):format(what, tostring(d)), level + 1) end
   local k = d < 0 and m + d + 1 or d
   if k < 1 or k > m then
      error(('%sdim %s out of range for a %d-dim tensor (%s)'):format(what, tostring(d), n,
            m > 0 and ('1 to %d, or -%d to -1'):format(m, m) or 'it has no dims'), level + 1)
   end
   return k - 1
end

-- a whole number argument (a start, a length, an index, a step) that int64 holds: a fraction was truncated in C;
-- C checks the sizes it makes
local function int_arg(v, what, level)
   if type(v) ~= 'number' or v ~= math.floor(v) or not (v > -2 ^ 63 and v < 2 ^ 63) then
      error(('%s must be a whole number, got %s'):format(what, tostring(v)), level + 1)
   end
   return v
end

-- index k along the 0-based dim d0 as C's 0-based index (k 1-based; a negative k counts from the end, as t[{k}] and
-- PyTorch's t[k] do); errors begin with `what` (or nothing), at `level` as error's, counted from the caller
local function place(self, d0, k, level, what)
   local size = tonumber(C.ts_tensor_size(self._c, d0))
   what = what or ''
   if k ~= math.floor(k) then error(('%sindex %s is not an integer'):format(what, tostring(k)), level + 1) end
   local i = k < 0 and size + k + 1 or k
   if i < 1 or i > size then
      error(('%sindex %s out of range for dim %d of size %d'):format(what, tostring(k), d0 + 1, size), level + 1)
   end
   return i - 1
end

local size_mt = {__tostring = function(s) return '[' .. table.concat(s, 'x') .. ']' end}
-- t:size() is a table of sizes; t:size(d) one of them
function Tensor:size(d)
   local n = C.ts_tensor_ndim(self._c)
   if d then return tonumber(C.ts_tensor_size(self._c, dim_arg(self, d, 2, 'size'))) end
   local s = {}
   for i = 1, n do s[i] = tonumber(C.ts_tensor_size(self._c, i - 1)) end
   return setmetatable(s, size_mt)
end
Tensor.shape = Tensor.size


function Tensor:stride(d) return tonumber(C.ts_tensor_stride(self._c, dim_arg(self, d, 2))) end

function Tensor:view(...) local n = shape_of(...); return wrap(C.ts_tensor_view(self._c, n, shape_buf)) end
function Tensor:reshape(...)
   if self:isContiguous() then return self:view(...) end
   return self:contiguous():view(...)
end
-- (a negative start counts from the end, as PyTorch's: narrow(1, -2, 2) is the last two)
function Tensor:narrow(d, start, len)
   local dim = dim_arg(self, d, 2, 'narrow')
   int_arg(start, 'narrow: start', 2)
   int_arg(len, 'narrow: length', 2)
   local size = tonumber(C.ts_tensor_size(self._c, dim))
   local first = start < 0 and size + start + 1 or start
   -- (checked here, to name the start as given: C's message named a negative one converted, at no line)
   if first < 1 or len < 0 or first - 1 + len > size then
      error(('narrow: start %s and length %s fall outside dim %d of size %d'):format(start, len, dim + 1, size), 2)
   end
   return wrap(C.ts_tensor_narrow(self._c, dim, first - 1, len))
end
-- t:slice(d, from, to, step): elements from, from + step, ... up to `to` along d (1-based, inclusive), a view
function Tensor:slice(d, from, to, step)
   step = step or 1
   int_arg(from, 'slice: from', 2); int_arg(step, 'slice: step', 2)
   if type(to) ~= 'number' or to ~= math.floor(to) or math.abs(to) > 2 ^ 63 then   -- not passed on: C sees the length
      error(('slice: to must be a whole number, got %s'):format(tostring(to)), 2)
   end
   if step < 1 then error(('slice: step must be 1 or more, got %s'):format(step), 2) end
   local len = math.max(0, math.floor((to - from) / step) + 1)
   return wrap(C.ts_tensor_slice(self._c, dim_arg(self, d, 2), from - 1, len, step))
end
-- (a negative index counts from the end, as t[k] and PyTorch's select do)
function Tensor:select(d, i)
   local dim = dim_arg(self, d, 2, 'select')
   return wrap(C.ts_tensor_select(self._c, dim, place(self, dim, int_arg(i, 'select: index', 2), 2, 'select: ')))
end
function Tensor:transpose(a, b)
   return wrap(C.ts_tensor_transpose(self._c, dim_arg(self, a, 2, 'transpose'), dim_arg(self, b, 2, 'transpose')))
end
-- a new handle on self's view, for the methods that leave a tensor as it is (a view all the same, as PyTorch's)
local function same_view(self) return wrap(C.ts_tensor_retain(self._c)) end
-- a matrix's transpose; a vector or a scalar as it is, as PyTorch's t() (which refuses more dims: it transposed the
-- first two without a word)
function Tensor:t()
   local n = self:dim()
   if n > 2 then error(('t: a tensor of at most 2 dims, got %s (use transpose(a, b))'):format(tostring(self:size())), 2) end
   if n < 2 then return same_view(self) end
   return self:transpose(1, 2)
end
function Tensor:expand(...) local n = shape_of(...); return wrap(C.ts_tensor_expand(self._c, n, shape_buf)) end
-- t:permute(3, 1, 2) or t:permute{3, 1, 2}: a view whose dim k is dim dims[k] of t, each dim of t exactly once, as
-- PyTorch's; made of transposes, each of which swaps two dims' sizes and strides
function Tensor:permute(...)
   local dims, given = {...}, select('#', ...)
   if given == 1 and type(dims[1]) == 'table' then dims = dims[1]; given = table.maxn(dims) end
   local n = self:dim()
   if given ~= n then
      error(('permute: %d dims given for a %d-dim tensor %s; each of its dims exactly once'):format(given, n,
            tostring(self:size())), 2)
   end
   local want, seen = {}, {}
   for i = 1, n do
      want[i] = dim_arg(self, dims[i], 2, 'permute')
      local before = seen[want[i]]
      if before then
         error(('permute: dim %d appears twice (given as %s and %s); each dim exactly once'):format(want[i] + 1,
               tostring(dims[before]), tostring(dims[i])), 2)
      end
      seen[want[i]] = i
   end
   local t, at = self, {}   -- at[i]: the dim of self that is dim i of t
   for i = 1, n do at[i] = i - 1 end
   for i = 1, n do
      if at[i] ~= want[i] then
         local j = i + 1
         while at[j] ~= want[i] do j = j + 1 end
         t = wrap(C.ts_tensor_transpose(t._c, i - 1, j - 1))
         at[i], at[j] = at[j], at[i]
      end
   end
   return t == self and same_view(self) or t
end
-- t:squeeze(): a view without t's dims of size 1; t:squeeze(d): without dim d where its size is 1, else all of t, as
-- PyTorch's (a 0-dim tensor takes d = 1 or -1 there). A dim of size 1 goes by selecting its one element.
function Tensor:squeeze(d)
   local n = self:dim()
   if d ~= nil then
      local d0 = dim_arg(self, d, 2, 'squeeze', n == 0 and 1 or 0)
      if n > 0 and self:size(d0 + 1) == 1 then return wrap(C.ts_tensor_select(self._c, d0, 0)) end
      return same_view(self)
   end
   local t = self
   for d0 = n - 1, 0, -1 do   -- from the last, so that the dims before d0 keep their numbers
      if tonumber(C.ts_tensor_size(self._c, d0)) == 1 then t = wrap(C.ts_tensor_select(t._c, d0, 0)) end
   end
   return t == self and same_view(self) or t
end
-- t:unsqueeze(d): a view with a new dim of size 1 at d (1 to dim + 1; -1 puts it last), as PyTorch's
function Tensor:unsqueeze(d)
   return wrap(C.ts_tensor_unsqueeze(self._c, dim_arg(self, d, 2, 'unsqueeze', 1)))
end
function Tensor:contiguous() return wrap(C.ts_tensor_contiguous(self._c)) end
function Tensor:flatten() return self:reshape(self:numel()) end

function Tensor:clone()
   local c = new_on(device_of(self), C.ts_tensor_dtype(self._c), self:size())
   check(C.ts_tensor_copy(c._c, self._c))
   return c
end

-- the count of `tensors`, a non-empty list of tensors of one dtype on one device (what ts.cat and ts.stack join:
-- their copies would convert or move without a word); errors begin with `what`, at `level` as error's
local function tensor_list(tensors, what, level)
   local n = type(tensors) == 'table' and not is_tensor(tensors) and table.maxn(tensors) or 0
   if n == 0 then
      error(('%s: tensors must be a non-empty list of tensors, got %s'):format(what, keys.show(tensors)), level + 1)
   end
   local first = tensors[1]
   for i = 1, n do
      local x = tensors[i]
      if not is_tensor(x) then error(('%s: tensors[%d] is %s, not a tensor'):format(what, i, keys.show(x)), level + 1) end
      if x:dtype() ~= first:dtype() then
         error(('%s: tensors[%d] is %s, tensors[1] %s; all must have one dtype (convert with :type())'):format(what, i,
               x:dtype(), first:dtype()), level + 1)
      end
      if x:device() ~= first:device() then
         error(('%s: tensors[%d] is on %s, tensors[1] on %s; all must be on one device'):format(what, i, x:device(),
               first:device()), level + 1)
      end
   end
   return n
end

-- ts.cat(tensors, d): a new tensor, the tensors one after another along dim d (default 1, as PyTorch's 0); their
-- other dims must agree. A 1-dim empty tensor is left out whatever the others' shape, as PyTorch does (where a loop
-- starts from one and cats onto it).
function T.cat(tensors, d)
   local n = tensor_list(tensors, 'ts.cat', 2)
   local parts = {}
   for i = 1, n do
      local x = tensors[i]
      if x:dim() == 0 then
         error(('ts.cat: tensors[%d] has no dims (0-dim) to join along; use ts.stack, or :view(1) it'):format(i), 2)
      end
      if x:dim() ~= 1 or x:numel() > 0 then parts[#parts + 1] = i end
   end
   local first = tensors[parts[1] or 1]
   local d0 = dim_arg(first, d == nil and 1 or d, 2, 'ts.cat')
   local shape = first:size()
   shape[d0 + 1] = 0
   for _, i in ipairs(parts) do
      local x = tensors[i]
      local agree = x:dim() == first:dim()
      for k = 1, first:dim() do agree = agree and (k == d0 + 1 or tonumber(C.ts_tensor_size(x._c, k - 1)) == shape[k]) end
      if not agree then
         error(('ts.cat: tensors[%d] is %s, tensors[%d] %s; they must agree in every dim but dim %d'):format(i,
               tostring(x:size()), parts[1], tostring(first:size()), d0 + 1), 2)
      end
      shape[d0 + 1] = shape[d0 + 1] + x:size(d0 + 1)
   end
   local out, at = new_on(device_of(first), C.ts_tensor_dtype(first._c), shape), 1
   for _, i in ipairs(parts) do
      local len = tensors[i]:size(d0 + 1)
      check(C.ts_tensor_copy(out:narrow(d0 + 1, at, len)._c, tensors[i]._c))
      at = at + len
   end
   return out
end

-- ts.stack(tensors, d): a new tensor whose slices along a new dim d (1 to their dims + 1, default 1) are the
-- tensors, which must have one shape
function T.stack(tensors, d)
   local n = tensor_list(tensors, 'ts.stack', 2)
   local first = tensors[1]
   local d0 = dim_arg(first, d == nil and 1 or d, 2, 'ts.stack', 1)
   for i = 2, n do
      if tostring(tensors[i]:size()) ~= tostring(first:size()) then
         error(('ts.stack: tensors[%d] is %s, tensors[1] %s; all must have one shape'):format(i,
               tostring(tensors[i]:size()), tostring(first:size())), 2)
      end
   end
   if first:dim() == 5 then error(('ts.stack: tensors of 5 dims %s would make 6, at most 5'):format(tostring(first:size())), 2) end
   local shape = first:size()
   table.insert(shape, d0 + 1, n)
   local out = new_on(device_of(first), C.ts_tensor_dtype(first._c), shape)
   for i = 1, n do check(C.ts_tensor_copy(out:select(d0 + 1, i)._c, tensors[i]._c)) end
   return out
end

-- whether sizes `from` broadcast to exactly sizes `to` (each dim of from, right-aligned, equal or 1)
local function broadcasts(from, to)
   if #from > #to then return false end
   for i = 1, #from do
      local x = from[#from - i + 1]
      if x ~= 1 and x ~= to[#to - i + 1] then return false end
   end
   return true
end

-- src (a tensor, or nested tables read in dst's dtype: through float32, a float64 or int64 destination lost digits)
-- into dst; errors name `what`, at `level` as error's, counted from the caller
local function copy_into(dst, src, what, level)
   if not is_tensor(src) then src = from_table(what, src, dst:dtype(), level + 1) end
   if src:numel() ~= dst:numel() and broadcasts(src:size(), dst:size()) then
      src = src:expand(dst:size())   -- a row into every row, as PyTorch's copy_ and t[...] = v
   end
   check(C.ts_tensor_copy(dst._c, src._c))
end

function Tensor:copy(src)
   if type(src) ~= 'table' then   -- ts.tensor's error named ts.tensor, at this line
      error('copy: the source must be a tensor or a (nested) table of numbers, got ' .. type(src), 2)
   end
   copy_into(self, src, 'copy', 2)
   return self
end

function Tensor:fill(v)
   check_fits('fill: the value', v, self:dtype(), 2)
   check(C.ts_tensor_fill(self._c, v))
   return self
end
function Tensor:zero() return self:fill(0) end
-- (C checks the bounds; a string reached the FFI, whose error named this file)
local function number_arg(v, default, what, level)
   if v == nil then return default end
   if type(v) ~= 'number' then error(('%s must be a number, got %s'):format(what, keys.show(v)), level + 1) end
   return v
end
function Tensor:uniform(lo, hi)
   check(C.ts_tensor_uniform(self._c, number_arg(lo, 0, 'uniform: from', 2), number_arg(hi, 1, 'uniform: to', 2)))
   return self
end
function Tensor:normal(mean, std)
   check(C.ts_tensor_normal(self._c, number_arg(mean, 0, 'normal: mean', 2), number_arg(std, 1, 'normal: std', 2)))
   return self
end

function Tensor:type(dtype)
   if not dtype then return self:dtype() end
   local code = dtype_code(dtype)
   if code == C.ts_tensor_dtype(self._c) then return self end
   local c = new_on(device_of(self), code, self:size())
   check(C.ts_tensor_copy(c._c, self._c))
   return c
end
function Tensor:float() return self:type('float32') end
function Tensor:double() return self:type('float64') end
function Tensor:long() return self:type('int64') end
function Tensor:int() return self:type('int32') end
function Tensor:byte() return self:type('uint8') end

local function fill_index(self, ...)
   local n = C.ts_tensor_ndim(self._c)
   local k = select('#', ...)
   if k ~= n then error(('expected %d indices for a %d-dim tensor, got %d'):format(n, n, k), 3) end
   for i = 1, n do
      local ix = select(i, ...)
      local size = tonumber(C.ts_tensor_size(self._c, i - 1))
      if type(ix) == 'number' and ix ~= math.floor(ix) then
         error(('index %s is not an integer'):format(tostring(ix)), 3)
      elseif type(ix) ~= 'number' or ix < 1 or ix > size then
         error(('index %s out of range for dim %d of size %d'):format(tostring(ix), i, size), 3)
      end
      index_buf[i - 1] = ix - 1
   end
end

-- t:get(i, j, ...) and t:set(i, j, ..., v): one element, 1-based
function Tensor:get(...)
   fill_index(self, ...)
   return element(self)
end

function Tensor:set(...)
   local k = select('#', ...)
   local v = select(k, ...)
   fill_index(self, unpack({...}, 1, k - 1))
   check_fits('set: the value', v, self:dtype(), 2)
   check(C.ts_tensor_set(self._c, index_buf, v))
   return self
end

function Tensor:item()
   if self:numel() ~= 1 then error('item: tensor has ' .. self:numel() .. ' elements, not 1', 2) end
   return self:contiguous():view(1):get(1)
end

function Tensor:totable()
   if device_of(self) ~= 0 then return self:cpu():totable() end
   local n = self:dim()
   if n == 0 then return self:item() end
   local out = {}
   for i = 1, self:size(1) do
      out[i] = n == 1 and self:get(i) or self:select(1, i):totable()
   end
   return out
end

-- t[{ {1,3}, 2, {} }]: a range narrows, a number selects, {} keeps the dim
local function index_table(self, spec, level)
   -- a tensor of indices is no index list here (it read as an empty one: the whole tensor came back)
   if is_tensor(spec) then
      error('a tensor cannot index a tensor: t[{i, j}] takes numbers and {first, last} ranges', level + 1)
   end
   if table.maxn(spec) > #spec then
      error(('index %d is nil (t[{...}] takes numbers and {first, last} ranges)'):format(#spec + 1), level + 1)
   end
   if #spec > self:dim() then
      error(('index: %d indices for a tensor of %d dims'):format(#spec, self:dim()), level + 1)
   end
   -- dim k of the tensor is spec[k]; d is where it is in t, after the selects before it took their dims away
   local t, d = self, 1
   for k, s in ipairs(spec) do
      local shown = tostring(s)
      if type(s) == 'table' then
         local parts = {}
         for i, v in ipairs(s) do parts[i] = tostring(v) end
         shown = '{' .. table.concat(parts, ',') .. '}'
      end
      local size = t:size(d)
      for _, v in ipairs(type(s) == 'table' and s or {s}) do
         if type(v) ~= 'number' or v ~= math.floor(v) then
            error(('index %s (dim %d) is %s'):format(shown, k, type(v) == 'number' and 'not an integer'
                  or 'neither an integer nor a {first, last} range of integers'), level + 1)
         end
      end
      if type(s) == 'number' then
         local i = s < 0 and size + s + 1 or s
         if i < 1 or i > size then error(('index %s out of range for dim %d of size %d'):format(shown, k, size), level + 1) end
         t = t:select(d, i)
      else
         if #s > 2 or next(s, #s > 0 and #s or nil) ~= nil then
            error(('index range %s (dim %d): a range is {first, last} (or {first}, or {} for all); no steps'):format(
                  shown, k), level + 1)
         end
         local a, b = s[1] or 1, s[2] or s[1] or size
         if a < 0 then a = size + a + 1 end
         if b < 0 then b = size + b + 1 end
         if a < 1 or b > size or b < a - 1 then
            error(('index range %s outside dim %d of size %d'):format(shown, k, size), level + 1)
         end
         t = t:narrow(d, a, b - a + 1)
         d = d + 1
      end
   end
   return t
end

mt.__index = function(self, k)
   -- only absent keys arrive here: numbers and tables index, strings name methods
   if type(k) == 'number' then
      local n = C.ts_tensor_ndim(self._c)
      if n == 0 then error('cannot index a 0-dim tensor', 2) end
      local i = place(self, 0, k, 2)
      if n == 1 then
         index_buf[0] = i
         return element(self)
      end
      return wrap(C.ts_tensor_select(self._c, 0, i))
   elseif type(k) == 'table' then
      return index_table(self, k, 2)
   end
   return Tensor[k]
end

mt.__newindex = function(self, k, v)
   local target
   if type(k) == 'number' then
      if C.ts_tensor_ndim(self._c) == 0 then error('cannot index a 0-dim tensor', 2) end
      local i = place(self, 0, k, 2)
      if C.ts_tensor_ndim(self._c) == 1 then
         check_fits(('t[%s] = v: the value'):format(tostring(k)), v, self:dtype(), 2)
         index_buf[0] = i
         check(C.ts_tensor_set(self._c, index_buf, v))
         return
      end
      target = wrap(C.ts_tensor_select(self._c, 0, i))
   elseif type(k) == 'table' then
      target = index_table(self, k, 2)
   else
      error('cannot set field ' .. tostring(k) .. ' of a tensor', 2)
   end
   if type(v) == 'number' then
      check_fits('t[...] = v: the value', v, target:dtype(), 2)   -- named at the assignment, not inside fill
      target:fill(v)
   elseif type(v) ~= 'table' then   -- named at the assignment, not inside copy
      error('t[...] = v: the value must be a number, a tensor or a table of numbers, got ' .. type(v), 2)
   else copy_into(target, v, 't[...] = v', 2) end
end

-- ---- arithmetic ------------------------------------------------------------------------------------

local ops = {add = 0, sub = 1, mul = 2, div = 3, maximum = 4, minimum = 5, pow = 6, eq = 7, lt = 8, gt = 9}
local unops = {neg = 0, exp = 1, log = 2, sqrt = 3, abs = 4, tanh = 5, sigmoid = 6, floor = 7, square = 8}

local function broadcast_shape(a, b, level)
   local sa, sb = a:size(), b:size()
   local n = math.max(#sa, #sb)
   local out = {}
   for i = 1, n do
      local x = sa[#sa - n + i] or 1
      local y = sb[#sb - n + i] or 1
      if x ~= y and x ~= 1 and y ~= 1 then
         error(('shapes %s and %s do not broadcast'):format(tostring(sa), tostring(sb)), level + 1)
      end
      out[i] = x == 1 and y or x
   end
   return out
end

-- PyTorch's promotion: between tensors the wider dtype in the order below (uint8 + int64 is int64, int64 + float32
-- float32, float32 + float64 float64); a number keeps the tensor's dtype, but a fraction (or inf, NaN) with an integer
-- tensor gives float32, PyTorch's default, as do true division and exp and the like of integers. Integer results are
-- computed in int64, exactly beyond 2^53 too, and wrap on overflow as PyTorch's (uint8 255 + 1 is 0). Comparisons
-- give float32 0 and 1. Through float32 a float64 lost its digits: the std of 1, 1 + 1e-10 and 1 + 2e-10 was 0.
local order = {uint8 = 1, int32 = 2, int64 = 3, float32 = 4, float64 = 5}
local integer = {uint8 = true, int32 = true, int64 = true}
local real_of_integers = {div = true, exp = true, log = true, sqrt = true, tanh = true, sigmoid = true}
local comparisons = {eq = true, lt = true, gt = true}

local function whole(v) return v == math.floor(v) and v - v == 0 end   -- inf - inf is NaN

-- A whole number beside an integer tensor takes part with its exact value, which int64 must hold (add, sub and mul
-- then wrap as with it cast to the tensor's dtype, as PyTorch casts it). Refused: a maximum or minimum (clamp) whose
-- result the dtype cannot hold (uint8 max(t, 300); PyTorch's cast made that 44), and an integer to a negative power
-- (no integer; PyTorch refuses it too). Errors at `level` as error's, counted from the caller.
local function check_integer_number(op, v, dtype, exponent, level)
   check_fits(op .. ': the number', v, 'int64', level + 1)
   local range = int_ranges[dtype]
   if (op == 'maximum' and v >= range[2]) or (op == 'minimum' and v <= range[1]) then
      error(('%s: the result (%s) does not fit %s, the tensor\'s dtype (convert it first)'):format(op, v, dtype), level + 1)
   end
   if exponent and v < 0 then
      error(('pow: an integer tensor to a negative power (%s) is no integer, refused as in PyTorch (convert with :float())'):format(v), level + 1)
   end
end

-- the dtype code of `a op b` (b nil for a unary op), a and b tensors or numbers
local function result_dtype(op, a, b, level)
   if comparisons[op] then return 0 end
   local ta, tb = is_tensor(a) and a:dtype(), is_tensor(b) and b:dtype()
   local dtype = (not tb or ta and order[ta] >= order[tb]) and ta or tb
   local number = type(a) == 'number' and a or type(b) == 'number' and b or nil
   if integer[dtype] then
      if real_of_integers[op] or number and not whole(number) then return dtypes.float32 end
      if number then check_integer_number(op, number, dtype, op == 'pow' and number == b, level + 1) end
   end
   return dtypes[dtype]
end

-- in place, the result is cast into the destination's dtype, as PyTorch casts it; a real number would be cut into an
-- integer destination, refused as PyTorch refuses that cast
local function check_in_place(name, out, dtype, level)
   if integer[out:dtype()] and not integer[dtype_names[dtype]] then
      error(('%s: the result is %s, which the %s tensor cannot hold in place (PyTorch refuses this cast too; use '
             .. 'the op without _ or convert with :float())'):format(name, dtype_names[dtype], out:dtype()), level + 1)
   end
end

-- out = a op b, where either may be a number; in place when out is given. Errors at `level` as error's, counted from
-- the caller (default 1: the methods and operators call binary in tail position, which leaves their frame out)
local function binary(op, a, b, out, level)
   level = level or 1
   local code = ops[op]
   if not (type(a) == 'number' or is_tensor(a)) or not (type(b) == 'number' or is_tensor(b)) then
      local bad = a
      if type(a) == 'number' or is_tensor(a) then bad = b end
      error(('%s: operands are tensors or numbers, got %s'):format(op, type(bad)), level + 1)
   end
   local dtype = result_dtype(op, a, b, level + 1)
   if out and not comparisons[op] then check_in_place(op .. '_', out, dtype, level + 1) end
   if type(a) == 'number' then
      out = out or new_on(device_of(b), dtype, b:size())
      check(C.ts_tensor_binary_scalar(out._c, b._c, a, code, 1))
   elseif type(b) == 'number' then
      out = out or new_on(device_of(a), dtype, a:size())
      check(C.ts_tensor_binary_scalar(out._c, a._c, b, code, 0))
   else
      out = out or new_on(device_of(a), dtype, broadcast_shape(a, b, level + 1))
      check(C.ts_tensor_binary(out._c, a._c, b._c, code))
   end
   return out
end

for name in pairs(ops) do
   Tensor[name] = function(self, other) return binary(name, self, other) end
   Tensor[name .. '_'] = function(self, other) return binary(name, self, other, self) end
end
for name, code in pairs(unops) do
   Tensor[name] = function(self)
      local out = new_on(device_of(self), result_dtype(name, self, nil, 2), self:size())
      check(C.ts_tensor_unary(out._c, self._c, code))
      return out
   end
   Tensor[name .. '_'] = function(self)
      check_in_place(name .. '_', self, result_dtype(name, self, nil, 2), 2)
      check(C.ts_tensor_unary(self._c, self._c, code))
      return self
   end
end

-- self += alpha x, in place, on the tensors' device (same number of elements)
function Tensor:axpy_(alpha, x)
   if type(alpha) ~= 'number' or not is_tensor(x) then
      error(('axpy_(alpha, x): expected a number and a tensor, got %s and %s'):format(type(alpha), type(x)), 2)
   end
   check(C.ts_tensor_axpy(self._c, alpha, x._c))
   return self
end

function Tensor:clamp(lo, hi)
   local out = self
   if lo then out = binary('maximum', out, lo, nil, 2) end
   if hi then out = binary('minimum', out, hi, nil, 2) end
   return out == self and self:clone() or out
end

mt.__add = function(a, b) return binary('add', a, b) end
mt.__sub = function(a, b) return binary('sub', a, b) end
mt.__mul = function(a, b) return binary('mul', a, b) end
mt.__div = function(a, b) return binary('div', a, b) end
mt.__pow = function(a, b) return binary('pow', a, b) end
mt.__unm = function(a) return a:neg() end

-- t as the statistics below take it: float32 and float64 as they are, an integer tensor as float64 (its deviations
-- and squares are real numbers: exact up to 2^53, where through float32 2^24 + 1 and 2^24 were one number)
local function as_real(t) return integer[t:dtype()] and t:double() or t end

-- reductions: t:sum() is a number, t:sum(d) keeps dim d with size 1. Every dtype is reduced in its own
-- values, as numpy does (through float32, an int64 of 2^24 + 1 or a float64 of 1 + 1e-12 would read 2^24 or
-- 1): max/min compare exactly, sum/mean add in double. Along a dim, max/min keep the input's dtype (the
-- values are its elements, as in PyTorch), sum/mean give float64 for float64 (as PyTorch) and float32 for the
-- rest (rounded once, at the end), argmax/argmin 0-based int64; over the whole tensor a Lua number
-- (argmax/argmin 1-based).
local red = {sum = 0, mean = 1, max = 2, min = 3, argmax = 4, argmin = 5}
local function reduce(self, op, d, level, name)   -- name: the method, in errors (default op)
   local arg = op == 'argmax' or op == 'argmin'
   local d0 = d and dim_arg(self, d, level, name or op)
   -- nothing has a largest element (C's "reduce: empty dimension" named neither the call nor the dim)
   if op ~= 'sum' and op ~= 'mean' and (d and self:size(d0 + 1) == 0 or self:numel() == 0 and not d) then
      error(('%s: %s has no elements, so no %s'):format(name or op, d and ('dim %d'):format(d0 + 1) or 'the tensor',
            (op == 'max' or op == 'argmax') and 'maximum' or 'minimum'), level)
   end
   local src = self:contiguous()
   if not d then
      local out = new(dtype_code(arg and 'int64' or 'float64'), 1)
      check(C.ts_tensor_reduce(out._c, src._c, -1, red[op]), level)
      return arg and out:get(1) + 1 or out:get(1)
   end
   local shape = self:size()
   shape[d0 + 1] = 1
   local dtype = arg and 'int64' or (op == 'max' or op == 'min' or self:dtype() == 'float64') and self:dtype() or 'float32'
   local out = new_on(device_of(self), dtype_code(dtype), shape)
   check(C.ts_tensor_reduce(out._c, src._c, d0, red[op]), level)
   return out
end

-- (the reductions call reduce with level 3 and not as a tail call: returned straight away, reduce's errors named the
-- caller's caller, nothing at all from a pcall)
function Tensor:sum(d) local r = reduce(self, 'sum', d, 3); return r end
-- the mean of nothing is NaN, as in PyTorch (0 / 0)
function Tensor:mean(d)
   if self:numel() == 0 then
      if not d then return 0 / 0 end
      return reduce(self, 'sum', d, 3, 'mean'):fill(0 / 0)
   end
   local r = reduce(self, 'mean', d, 3)
   return r
end
-- max/min with a dim return values and 0-based int64 indices (as the class ids they usually are)
function Tensor:max(d)
   if not d then local r = reduce(self, 'max', nil, 3); return r end
   return reduce(self, 'max', d, 3), reduce(self, 'argmax', d, 3)
end
function Tensor:min(d)
   if not d then local r = reduce(self, 'min', nil, 3); return r end
   return reduce(self, 'min', d, 3), reduce(self, 'argmin', d, 3)
end
-- argmax(): 1-based position of the maximum; argmax(d): 0-based indices along d (class ids)
function Tensor:argmax(d) local r = reduce(self, 'argmax', d, 3); return r end
function Tensor:argmin(d) local r = reduce(self, 'argmin', d, 3); return r end
-- the unbiased standard deviation (n - 1: NaN for one element, as torch.std); t:std(d) along dim d, kept with size 1
function Tensor:std(d)
   if d then dim_arg(self, d, 2, 'std') end   -- here: from x:mean(d) below, its error named this file
   local x = as_real(self)
   -- along a dim, an integer's is float32, as its mean
   local function as_mean(s) return self:dtype() == 'float64' and s or s:float() end
   if x:numel() == 0 then return d and as_mean(x:mean(d)) or x:mean() end   -- NaN, as the mean
   if d then return as_mean((x - x:mean(d)):square():sum(d):div(x:size(d) - 1):sqrt()) end
   return math.sqrt((x - x:mean()):square():sum() / (x:numel() - 1))
end
-- the L2 norm of all elements (other p and per-dim norms are refused rather than answered with this one)
function Tensor:norm(p, d)
   if (p ~= nil and p ~= 2) or d ~= nil then error('norm: only the L2 norm of the whole tensor, t:norm()', 2) end
   return math.sqrt(as_real(self):square():sum())
end

function Tensor:mm(b, trans_a, trans_b)
   if not is_tensor(b) then error('mm: the second operand must be a tensor, got ' .. type(b), 2) end
   if self:dim() ~= 2 or b:dim() ~= 2 then
      error(('mm: both operands must be matrices (2 dims), got %s and %s'):format(tostring(self:size()), tostring(b:size())), 2)
   end
   keys.flag(trans_a, 'mm', 'trans_a', 2)
   keys.flag(trans_b, 'mm', 'trans_b', 2)
   local m = trans_a and self:size(2) or self:size(1)
   local n = trans_b and b:size(1) or b:size(2)
   local out = new_on(device_of(self), 0, m, n)
   check(C.ts_tensor_matmul(out._c, self:contiguous()._c, b:contiguous()._c, trans_a and 1 or 0, trans_b and 1 or 0))
   return out
end

-- (the other tensor checked here: a table or a number failed inside with "attempt to call method 'float'")
local function other_tensor(what, other)
   if not is_tensor(other) then error(('%s: expected a tensor, got %s'):format(what, type(other)), 3) end
end

function Tensor:maxAbsDiff(other)
   other_tensor('maxAbsDiff', other)
   return (as_real(self) - as_real(other)):abs():max()
end

-- true when |a - b| <= atol + rtol |b| everywhere (numpy.allclose)
function Tensor:allclose(other, rtol, atol)
   other_tensor('allclose', other)
   rtol, atol = rtol or 1e-5, atol or 1e-8
   local a, b = as_real(self), as_real(other)
   if a:numel() == 0 then return true end
   local excess = (a - b):abs() - b:abs():mul(rtol)
   -- close where excess <= atol (a NaN excess is not), or where a == b (inf == inf, as numpy.allclose)
   local ok = excess:gt(atol):neg():add(1):mul(excess:eq(excess)):maximum(a:eq(b))
   return ok:min() == 1
end

-- same sizes and elements, compared exactly (int64 as int64, the rest as float64); NaN equals nothing
function Tensor:equal(other)
   other_tensor('equal', other)
   if tostring(self:size()) ~= tostring(other:size()) then return false end
   local wide = (self:dtype() == 'int64' and other:dtype() == 'int64') and 'int64' or 'float64'
   local a, b = self:cpu():contiguous():type(wide), other:cpu():contiguous():type(wide)
   local ct = wide == 'int64' and 'int64_t *' or 'double *'
   local pa, pb = ffi.cast(ct, a:data()), ffi.cast(ct, b:data())
   for i = 0, a:numel() - 1 do
      if pa[i] ~= pb[i] then return false end
   end
   return true
end

-- ---- printing ------------------------------------------------------------------------------------

local function fmt(v)
   if v == math.floor(v) and math.abs(v) < 1e15 then return ('%d'):format(v) end
   return ('%.4g'):format(v)
end

function Tensor:summary()
   local n = self:numel()
   local on = device_of(self) == 0 and '' or ' on ' .. self:device()
   local s = ('ts.Tensor %s %s%s'):format(self:dtype(), tostring(self:size()), on)
   if n > 0 then
      -- an expanded view repeats its source's values: their statistics, without making the repeats
      local f = self
      for d = 1, self:dim() do
         if self:stride(d) == 0 and self:size(d) > 1 then f = f:narrow(d, 1, 1) end
      end
      f = f:cpu()   -- reduced in its own dtype (through float32, a float64 of 1e300 showed as inf)
      s = s .. ('  min %s  max %s  mean %s'):format(fmt(f:min()), fmt(f:max()), fmt(f:mean()))
   end
   return s
end

mt.__tostring = function(self)
   local n = self:numel()
   if n == 0 and self:dim() > 0 then return ('{}\n[ts.Tensor %s %s]'):format(self:dtype(), tostring(self:size())) end
   if n > 64 or self:dim() > 2 or device_of(self) ~= 0 then return self:summary() end
   local c = self:contiguous()
   local p = ffi.cast(T.ctypes[c:dtype()], c:data())
   -- element k in row-major order; an int64 as its digits (through a double, 2^53 + 1 showed as 9.007e+15)
   local function text(k)
      if c:dtype() == 'int64' then return (tostring(p[k]):gsub('LL$', '')) end
      return fmt(tonumber(p[k]))
   end
   local lines = {}
   if self:dim() <= 1 then
      local vals = {}
      for i = 1, n do vals[i] = text(i - 1) end
      lines[1] = '{' .. table.concat(vals, ', ') .. '}'
   else
      for i = 1, self:size(1) do
         local vals = {}
         for j = 1, self:size(2) do vals[j] = text((i - 1) * self:size(2) + j - 1) end
         lines[i] = ' {' .. table.concat(vals, ', ') .. '}'
      end
      if #lines == 0 then lines[1] = ' {}' end
      lines[1] = '{' .. lines[1]:sub(2)
      lines[#lines] = lines[#lines] .. '}'
   end
   return table.concat(lines, '\n') .. ('\n[ts.Tensor %s %s]'):format(self:dtype(), tostring(self:size()))
end

T.Tensor = Tensor
return T
