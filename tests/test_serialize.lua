-- Files made by hand: the 8-byte little-endian header length, the JSON header, the data.
local function le64(n)
   local b = {}
   for i = 1, 8 do
      b[i] = string.char(n % 256)
      n = math.floor(n / 256)
   end
   return table.concat(b)
end

-- length: the 8 bytes of the length field, by default the header's own length
local function st_file(header, data, length) return (length or le64(#header)) .. header .. (data or '') end

local function pick(list) return list[ts.randint(#list)] end

-- a few tensors laid out one after another, then mutated where the reader must be careful: names with
-- escapes, dtypes, shapes (huge, negative, many dims, non-integers), data_offsets (overlapping, reversed,
-- past the end), stray members and metadata; then the header text itself (a character dropped, added or
-- swapped, a cut), its length field and the file's end
local fuzz = {
   sizes = {F32 = 4, F16 = 2, BF16 = 2, F64 = 8, U8 = 1, I32 = 4, I64 = 8},
   dtypes = {'F32', 'F32', 'F32', 'F16', 'BF16', 'F64', 'U8', 'I32', 'I64'},
   names = {[["a\u0000b"]], [["\ud83d\ude00"]], [["\ud800"]], [["\udc00x"]], [["\ud800\u0041"]], [["\x"]],
            [["\u12"]], [["\u00zz"]], '"\255"', '"\192\128"', '"\237\160\128"', [["__metadata__"]], [["t1"]],
            [["tab\tq"]], [[""]], '"a\nb"', [["\"q\/\\"]], '"\226\130\172"', '"t1'},
   bad_dtypes = {[["F8_E4M3"]], [["f32"]], [[""]], [["F32\u0000"]], '1', 'null', '["F32"]', [["BOOL"]], '"F32'},
   dims = {'0', '0', '1', '4294967296', '4611686018427387904', '9223372036854775807', '9223372036854775808',
           '18446744073709551616', '-1', '2.5', '1e3', '01', '"3"', 'null', '[]', '-0'},
   -- shapes whose element count wraps around 2^64 to the count given (a reader multiplying unchecked sees that)
   wrapping = {{'4294967296, 4294967296, 3', 0}, {'4611686018427387904, 4', 0}, {'4611686018427387905, 4', 4},
               {'0, 4611686018427387904, 4', 0}, {'2305843009213693953, 8', 8}},
   offsets = {'-1', '1.0', '18446744073709551615', '9223372036854775807', '"0"', '00', '1e2'},
   extras = {[["x": {"k": [1, true, false, null, -0.5e+3, "s"]}]], [["x": tru]], [["x": 01]], [["x": -]],
             [["x": 1.]], [=["x": [1,]]=], [["x": {"a"}]], [["x": ]] .. ('['):rep(80) .. (']'):rep(80),
             [["x": "\u00e9\n"]], [["x": 1e]]},
   metadata = {[["__metadata__": {"k": "v", "e": "\u00e9\ud83d\ude00\n"}]], [["__metadata__": {"k": 1}]],
               [["__metadata__": "x"]], [["__metadata__": {}, "__metadata__": {}]], [["__metadata__": {"k": "v"]]},
   chars = {'{', '}', '[', ']', '"', ',', ':', '\\', ' ', '0', '9', '-', 'a', '\0', '\255'},
}

-- a header's text, its data and its length field, valid before the mutations
function fuzz.case()
   local entries, at = {}, 0
   for i = 1, ts.randint(4) - 1 do
      local dtype = pick(fuzz.dtypes)
      local shape, numel = {}, 1
      for d = 1, ts.randint(4) - 1 do
         shape[d] = tostring(ts.randint(3))
         numel = numel * tonumber(shape[d])
      end
      local bytes = numel * fuzz.sizes[dtype]
      entries[i] = {name = '"t' .. i .. '"', dtype = '"' .. dtype .. '"', shape = shape,
                    offsets = {tostring(at), tostring(at + bytes)}}
      at = at + bytes
   end
   for _, e in ipairs(entries) do
      local r = ts.randint(24)   -- about half the entries stay valid
      if r == 1 then e.name = pick(fuzz.names)
      elseif r == 2 then e.dtype = pick(fuzz.bad_dtypes)
      elseif r == 3 then e.dtype = '"' .. pick(fuzz.dtypes) .. '"'   -- valid, but its size does not fit
      elseif r == 4 and #e.shape > 0 then e.shape[ts.randint(#e.shape)] = pick(fuzz.dims)
      elseif r == 5 then for _ = 1, ts.randint(4) do e.shape[#e.shape + 1] = pick(fuzz.dims) end
      elseif r == 6 or r == 8 then   -- moved back (an overlap) or on (a hole, or past the end), the size kept
         local move = r == 6 and -math.min(ts.randint(8), tonumber(e.offsets[1])) or ts.randint(8)
         e.offsets = {tostring(e.offsets[1] + move), tostring(e.offsets[2] + move)}
      elseif r == 7 then e.offsets = {e.offsets[2], e.offsets[1]}
      elseif r == 9 then e.offsets[ts.randint(2)] = pick(fuzz.offsets)
      elseif r == 10 then e.offsets[3] = '0'
      elseif r == 11 then e.extra = pick(fuzz.extras)
      elseif r == 12 then
         local w = pick(fuzz.wrapping)
         e.shape = {w[1]}
         e.offsets[2] = tostring(e.offsets[1] + w[2] * (fuzz.sizes[e.dtype:sub(2, -2)] or 4))
      end
   end
   local members = {}
   if ts.randint(4) == 1 then members[1] = pick(fuzz.metadata) end
   for _, e in ipairs(entries) do
      local fields = {'"dtype": ' .. e.dtype, '"shape": [' .. table.concat(e.shape, ', ') .. ']',
                      '"data_offsets": [' .. table.concat(e.offsets, ',') .. ']', e.extra}
      if ts.randint(20) == 1 then table.remove(fields, ts.randint(3)) end
      if ts.randint(20) == 1 then fields[#fields + 1] = fields[1] end
      members[#members + 1] = e.name .. ': {' .. table.concat(fields, ', ') .. '}'
   end
   local header = '{' .. table.concat(members, ', ') .. '}' .. (' '):rep(ts.randint(8) - 1)
   local r = ts.randint(20)
   local i = ts.randint(#header)
   if r == 1 then header = header:sub(1, i - 1) .. header:sub(i + 1)
   elseif r == 2 then header = header:sub(1, i - 1) .. pick(fuzz.chars) .. header:sub(i)
   elseif r == 3 then header = header:sub(1, i - 1) .. pick(fuzz.chars) .. header:sub(i + 1)
   elseif r == 4 then header = header:sub(1, i)
   elseif r == 5 then header = pick({' ', '[', 'x'}) .. header
   end
   local data = {}
   for k = 1, at do data[k] = string.char(ts.randint(256) - 1) end
   data = table.concat(data)
   local length = le64(#header)
   r = ts.randint(24)
   if r == 1 then length = le64(#header + #data + ts.randint(3))
   elseif r == 2 then length = le64(math.max(0, #header - ts.randint(3)))
   elseif r == 3 then length = ('\255'):rep(8)
   elseif r == 4 then length = le64(2 ^ 53)
   elseif r == 5 then data = data .. pick({'\0', 'xxxx', ('\0'):rep(8)})
   end
   local bytes = st_file(header, data, length)
   if ts.randint(10) == 1 then bytes = bytes:sub(1, ts.randint(#bytes + 1) - 1) end
   return bytes
end

-- every element of a tensor, read twice (from two loads, which must agree, NaN with NaN)
local function same_elements(a, b)
   local size, n = a:size(), a:numel()
   if tostring(size) ~= tostring(b:size()) then return false end
   local index = {}
   for k = 0, n - 1 do
      local rest = k
      for d = #size, 1, -1 do
         index[d] = rest % size[d] + 1
         rest = math.floor(rest / size[d])
      end
      local x, y = a:get(unpack(index, 1, #size)), b:get(unpack(index, 1, #size))
      if x ~= y and (x == x or y == y) then return false end
   end
   return true
end

return function(t)
   t.test('save and load a model: PyTorch names, values restored, metadata kept', function()
      local dir = t.tmpdir()
      local a = ts.models.refcnn{widths = {4, 4, 8}, hidden = 8}
      a:get(2).running_mean:uniform(-1, 1)
      ts.save(dir .. '/m.safetensors', a, {note = 'hello', epochs = 3})
      local b = ts.models.refcnn{widths = {4, 4, 8}, hidden = 8}
      local _, meta = ts.load(dir .. '/m.safetensors', b)
      for i, pair in ipairs(a:stateDict()) do
         t.truthy(pair[2]:equal(b:stateDict()[i][2]), pair[1])
      end
      t.eq(meta.note, 'hello')
      t.eq(meta.epochs, '3')
      local raw = ts.load(dir .. '/m.safetensors')
      t.eq(tostring(raw['0.weight']:size()), '[4x3x3x3]')
      t.eq(raw['1.num_batches_tracked']:dtype(), 'int64')
      -- what ts.load could not read back is refused or written so that it can: integer metadata keys (a JSON
      -- array), a tensor named __metadata__; the caller's metadata is left as it was
      local m = {[1] = 'x', epochs = 3}
      ts.save(dir .. '/k.safetensors', {w = ts.zeros(2)}, m)
      local _, kept = ts.load(dir .. '/k.safetensors')
      t.truthy(kept['1'] == 'x' and kept.epochs == '3' and m.epochs == 3, 'metadata keys as strings, the table untouched')
      t.raises(function() ts.save(dir .. '/n.safetensors', {__metadata__ = ts.zeros(2)}) end,
               '__metadata__ cannot name a tensor')
   end)

   t.test('a model loads from the tensors named with a prefix, as in a training checkpoint', function()
      local dir = t.tmpdir()
      local a = ts.models.refcnn{widths = {4, 4, 8}, hidden = 8}
      local tensors = {['optim.1.momentum'] = ts.randn(3), rng = ts.zeros({4}, 'int64')}
      for _, pair in ipairs(a:stateDict()) do tensors['model.' .. pair[1]] = pair[2] end
      ts.save(dir .. '/c.safetensors', tensors)
      local b = ts.models.refcnn{widths = {4, 4, 8}, hidden = 8}
      local filled, _, all = ts.load(dir .. '/c.safetensors', b, {prefix = 'model.'})
      t.eq(filled, b, 'returns the model it filled')
      for i, pair in ipairs(a:stateDict()) do t.truthy(pair[2]:equal(b:stateDict()[i][2]), pair[1]) end
      -- and every tensor of the file, the model's and the rest, from the same read
      t.truthy(all['optim.1.momentum']:equal(tensors['optim.1.momentum']), 'the optimizer state comes back')
      t.truthy(all['model.0.weight']:equal(tensors['model.0.weight']), 'the weights come back under their names')
      -- without the prefix nothing is the model's; a prefixed tensor the model lacks is still unexpected
      t.raises(function() ts.load(dir .. '/c.safetensors', b) end, 'missing 0.weight')
      tensors['model.extra'] = ts.randn(2)
      ts.save(dir .. '/c.safetensors', tensors)
      t.raises(function() ts.load(dir .. '/c.safetensors', b, {prefix = 'model.'}) end, 'unexpected model.extra')
      t.raises(function() ts.load(dir .. '/c.safetensors', b, {prefix = 1}) end, 'prefix must be a string')
   end)

   t.test('save and load refuse a class, names a file cannot hold, clashing metadata, unknown options, naming them', function()
      local dir = t.tmpdir()
      -- a class has a stateDict of nothing: an empty checkpoint was written for it
      t.raises(function() ts.save(dir .. '/c.safetensors', ts.nn.Linear) end,
               'ts.save(path, model or table): model must be a module, got the class Linear')
      t.eq(ts.files.exists(dir .. '/c.safetensors'), false, 'nothing written for a class')
      -- a NUL cut the name ('a\0b' saved as 'a'); a Latin-1 name made a file that ts.load refused
      local err = t.raises(function() ts.save(dir .. '/n.safetensors', {['a\0b'] = ts.ones(1)}) end, 'cannot name a tensor')
      t.truthy(err:find('test_serialize.lua', 1, true), 'the error is at the caller: ' .. err)
      t.raises(function() ts.save(dir .. '/n.safetensors', {['caf\233'] = ts.ones(1)}) end, 'cannot name a tensor')
      t.eq(ts.files.exists(dir .. '/n.safetensors'), false, 'nothing written for a name it cannot hold')
      ts.save(dir .. '/u.safetensors', {['caf\195\169'] = ts.ones(1)})   -- UTF-8 is fine
      t.truthy(ts.load(dir .. '/u.safetensors')['caf\195\169'], 'a UTF-8 name round-trips')
      -- metadata: 1 and '1' are one key in the file (one value was dropped); a function failed inside json
      t.raises(function() ts.save(dir .. '/m.safetensors', {a = ts.ones(1)}, {[1] = 'x', ['1'] = 'y'}) end,
               'ts.save: metadata has the key 1 twice')
      t.raises(function() ts.save(dir .. '/m.safetensors', {a = ts.ones(1)}, {k = print}) end,
               'ts.save: metadata "k": json: cannot encode a function')
      -- load: options and the model checked (opts = 5 and model = true were indexed, strcit = false ignored, a class
      -- read as a model with no tensors: "unexpected weight")
      ts.save(dir .. '/l.safetensors', ts.nn.Linear(2, 3))
      t.raises(function() ts.load(dir .. '/l.safetensors', ts.nn.Linear(2, 3), 5) end, 'ts.load: the options must be a table, got number')
      t.raises(function() ts.load(dir .. '/l.safetensors', ts.nn.Linear(2, 3), {strcit = false}) end,
               'ts.load: unknown option strcit (known: prefix, strict)')
      t.raises(function() ts.load(dir .. '/l.safetensors', ts.nn.Linear) end,
               'ts.load(path, model, opts): model must be a module, got the class Linear')
      t.raises(function() ts.load(dir .. '/l.safetensors', true) end, 'ts.load(path, model, opts): model must be a module, got true')
      t.raises(function() ts.load(dir .. '/l.safetensors', {}) end, 'model must be a module, got a table that is not one')
      t.truthy(ts.load(dir .. '/l.safetensors', ts.nn.Linear(2, 3), {strict = true, prefix = ''}), 'the known options')
   end)

   t.test('metadata that is not UTF-8 is refused (it came back with U+FFFD), strict must be true or false', function()
      local dir = t.tmpdir()
      t.raises(function() ts.save(dir .. '/m.safetensors', {a = ts.ones(1)}, {k = 'caf\233'}) end,
               'ts.save: metadata "k": "caf\233" is not UTF-8 text')
      t.raises(function() ts.save(dir .. '/m.safetensors', {a = ts.ones(1)}, {['caf\233'] = 'v'}) end, 'is not UTF-8 text')
      t.eq(ts.files.exists(dir .. '/m.safetensors'), false, 'nothing written for metadata it cannot hold')
      ts.save(dir .. '/m.safetensors', {a = ts.ones(1)}, {['caf\195\169'] = 'caf\195\169'})
      t.eq(select(2, ts.load(dir .. '/m.safetensors'))['caf\195\169'], 'caf\195\169', 'UTF-8 metadata round-trips')
      -- strict = 0 or 'false' loaded strictly: only false turned it off
      ts.save(dir .. '/l.safetensors', ts.nn.Linear(2, 3))
      for _, v in ipairs({0, 'false'}) do
         t.raises(function() ts.load(dir .. '/l.safetensors', ts.nn.Linear(2, 3), {strict = v}) end,
                  'ts.load: strict must be true or false, got ' .. require('ts.keys').show(v))
      end
   end)

   t.test('a file of metadata and no tensors loads back (a comma after the metadata made it unreadable)', function()
      local dir = t.tmpdir()
      for _, meta in ipairs({{note = 'x'}, {}}) do
         ts.save(dir .. '/m.safetensors', {}, meta)
         local tensors, got = ts.load(dir .. '/m.safetensors')
         t.eq(next(tensors), nil)
         t.eq(got.note, meta.note)
      end
   end)

   t.test('tables of tensors of every dtype round-trip', function()
      local dir = t.tmpdir()
      local src = {f = ts.randn(3, 4), u = ts.tensor({1, 2, 255}, 'uint8'), l = ts.tensor({-5, 7}, 'int64'),
                   i = ts.tensor({{1}, {2}}, 'int32'), d = ts.tensor({0.1}, 'float64'), v = ts.randn(4, 6):t()}
      ts.save(dir .. '/t.safetensors', src)
      local back = ts.load(dir .. '/t.safetensors')
      for k, v in pairs(src) do
         t.eq(back[k]:dtype(), v:dtype(), k)
         t.truthy(back[k]:equal(v), k)
      end
   end)

   t.test('a mismatched checkpoint names its missing, unexpected and mis-shaped tensors: six, and how many more', function()
      local dir = t.tmpdir()
      ts.save(dir .. '/x.safetensors', {['0.weight'] = ts.zeros(2, 2), extra = ts.zeros(1)})
      local net = ts.nn.Sequential(ts.nn.Linear(3, 2))
      local err = t.raises(function() ts.load(dir .. '/x.safetensors', net) end, 'does not fit the model')
      t.truthy(err:find('missing 0.bias', 1, true), err)
      t.truthy(err:find('unexpected extra', 1, true), err)
      t.truthy(err:find('0.weight has shape [2x2] in the file, [2x3] in the model', 1, true), err)
      ts.load(dir .. '/x.safetensors', ts.nn.Sequential(ts.nn.Linear(2, 2, {bias = false})), {strict = false})
      -- not strict, but nothing fits (DataParallel's 'module.' before every name): refused, the model would
      -- keep its random weights
      ts.save(dir .. '/dp.safetensors', {['module.0.weight'] = ts.zeros(2, 3), ['module.0.bias'] = ts.zeros(2)})
      err = t.raises(function() ts.load(dir .. '/dp.safetensors', net, {strict = false}) end, 'nothing in ')
      t.truthy(err:find('unexpected module.0.weight', 1, true), err)
      -- another network's file: the first six problems and a count, not each of its tensors
      local many = {}
      for i = 1, 40 do many['layer' .. i .. '.weight'] = ts.zeros(1) end
      ts.save(dir .. '/many.safetensors', many)
      err = t.raises(function() ts.load(dir .. '/many.safetensors', net) end, 'does not fit the model: missing 0.weight; ')
      t.truthy(err:find('; and 36 more$'), err)
   end)

   t.test('truncated and corrupt files give an error naming the file, at every cut', function()
      local dir = t.tmpdir()
      local path = dir .. '/ok.safetensors'
      ts.save(path, {a = ts.randn(5), b = ts.randn(2, 3)}, {k = 'v'})
      local bytes = t.readfile(path)
      local cut = dir .. '/cut.safetensors'
      for n = 0, #bytes - 1, 3 do
         t.writefile(cut, bytes:sub(1, n))
         t.raises(function() ts.load(cut) end, cut)
      end
      -- random byte flips in the header must never crash; they fail cleanly or read something valid
      for trial = 1, 200 do
         local i = 9 + ts.randint(#bytes - 9 < 120 and #bytes - 9 or 120)
         local flipped = bytes:sub(1, i - 1) .. string.char(ts.randint(256) - 1) .. bytes:sub(i + 1)
         t.writefile(cut, flipped)
         pcall(ts.load, cut)
      end
      t.raises(function() ts.load(dir .. '/absent.safetensors') end, 'absent.safetensors: cannot open')
      -- what torch.save writes (a zip archive), named .safetensors
      t.writefile(dir .. '/torch.safetensors', 'PK\3\4' .. string.rep('\0', 60))
      t.raises(function() ts.load(dir .. '/torch.safetensors') end, 'torch.safetensors: is a zip archive (torch.save')
      -- a cut file whose header length's first byte happens to be a pickle's (0x80) is still a cut file
      t.writefile(dir .. '/cut.safetensors', '\128\2\0\0\0\0\0\0{"a": {"dtype": "F32"')
      t.raises(function() ts.load(dir .. '/cut.safetensors') end, 'cut.safetensors: truncated')
   end)

   t.test('a failed save leaves the previous checkpoint intact', function()
      local dir = t.tmpdir()
      local path = dir .. '/keep.safetensors'
      ts.save(path, {w = ts.ones(3)})
      os.execute('chmod 555 ' .. dir)
      local writable = io.open(dir .. '/probe', 'w')
      if writable then   -- running as root: permissions do not stop writes, so use a missing folder
         writable:close()
         os.remove(dir .. '/probe')
         t.raises(function() ts.save(dir .. '/no/such/dir/x.safetensors', {w = ts.zeros(3)}) end,
                  dir .. '/no/such/dir/x.safetensors: cannot write: No such file or directory')
      else
         t.raises(function() ts.save(path, {w = ts.zeros(3)}) end, path .. ': cannot write')
      end
      os.execute('chmod 755 ' .. dir)
      t.near(ts.load(path).w, ts.ones(3))
      -- no temporary file is left behind
      local rc, out = t.sh('ls ' .. dir)
      t.eq(out, 'keep.safetensors\n')
   end)

   -- the error for a file made of header and data, which must name the file and contain every one of wants
   local function refused(dir, header, data, wants, length)
      local path = dir .. '/bad.safetensors'
      t.writefile(path, st_file(header, data, length))
      local err = t.raises(function() ts.load(path) end, path)
      for _, want in ipairs(wants) do t.truthy(err:find(want, 1, true), err) end
   end

   t.test('shapes whose element count leaves int64 are refused, and byte ranges must fit the shape', function()
      local dir = t.tmpdir()
      local function entry(shape, offsets)
         return ('{"a":{"dtype":"F32","shape":[%s],"data_offsets":[%s]}}'):format(shape, offsets)
      end
      -- [2^32, 2^32, 3] wrapped to a small count, [2^62, 4] to 0 elements read from a 0-byte buffer
      refused(dir, entry('4294967296,4294967296,3', '0,0'), '', {'tensor "a"', 'more elements than a 64-bit count'})
      refused(dir, entry('4611686018427387904,4', '0,0'), '', {'tensor "a"', 'more elements than a 64-bit count'})
      refused(dir, entry('2305843009213693952,2', '0,0'), '', {'tensor "a"', 'more elements than a 64-bit count'})
      -- an empty dim does not excuse the others: the strides are products of the sizes after each dim
      refused(dir, entry('0,4611686018427387904,4', '0,0'), '', {'tensor "a"', 'more elements than a 64-bit count'})
      refused(dir, entry('9223372036854775808', '0,0'), '', {'integer too large', 'tensor "a"'})
      refused(dir, entry('-1', '0,0'), '', {'expected a non-negative integer'})
      refused(dir, entry('2.5', '0,10'), ('\0'):rep(10), {'expected an integer'})
      refused(dir, entry('01', '0,4'), ('\0'):rep(4), {'leading zero'})
      refused(dir, entry('1,1,1,1,1,1', '0,4'), ('\0'):rep(4), {'at most 5 dims'})
      refused(dir, entry('1099511627776', '0,16'), ('\0'):rep(16),
              {'tensor "a": data_offsets [0, 16] hold 16 bytes, but 1099511627776 elements of F32 take 4398046511104'})
      refused(dir, entry('4', '0,16'), ('\0'):rep(8), {'tensor "a": truncated'})
      refused(dir, entry('2', '8,0'), ('\0'):rep(8), {'tensor "a": data_offsets [8, 0] run backwards'})
      -- a dim of 0 holds nothing, whatever the others are
      local path = dir .. '/empty.safetensors'
      t.writefile(path, st_file(entry('0,4611686018427387904', '0,0')))
      local a = ts.load(path).a
      t.eq(a:numel(), 0)
      t.eq(a:size(2), 2 ^ 62)
   end)

   t.test('a tensor whose dtype is the other kind of number than its parameter is refused, half floats widen', function()
      local dir = t.tmpdir()
      local path = dir .. '/w.safetensors'
      local net = ts.nn.Sequential(ts.nn.Linear(2, 1))
      ts.save(path, net)
      -- the same bytes called I32: each float would load as an integer near 1e9
      local bytes = t.readfile(path):gsub('"F32"', '"I32"')
      t.writefile(path, bytes)
      for _, opts in ipairs({{}, {strict = false}}) do
         local err = t.raises(function() ts.load(path, net, opts) end, path)
         t.truthy(err:find('0.weight has dtype I32 in the file, float32 in the model', 1, true), err)
         t.truthy(err:find('0.bias has dtype I32 in the file, float32 in the model', 1, true), err)
      end
      -- float64, float16 and bfloat16 weights are converted as PyTorch's checkpoints are: 1, -2 and 1.5
      ts.save(path, {['0.weight'] = ts.tensor({{0.25, -0.5}}, 'float64'), ['0.bias'] = ts.tensor({3}, 'float64')})
      ts.load(path, net)
      t.near(net:get(1).weight, ts.tensor{{0.25, -0.5}})
      t.writefile(path, st_file('{"0.weight":{"dtype":"F16","shape":[1,2],"data_offsets":[0,4]},' ..
                                '"0.bias":{"dtype":"BF16","shape":[1],"data_offsets":[4,6]}}', '\0\60\0\192\192\63'))
      ts.load(path, net)
      t.near(net:get(1).weight, ts.tensor{{1, -2}})
      t.near(net:get(1).bias, ts.tensor{1.5})
      -- integers fill integers: an I32 num_batches_tracked widens into the int64 buffer
      local bn = ts.nn.BatchNorm1d(1)
      t.writefile(path, st_file('{"weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' ..
                                '"bias":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},' ..
                                '"running_mean":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' ..
                                '"running_var":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},' ..
                                '"num_batches_tracked":{"dtype":"I32","shape":[],"data_offsets":[16,20]}}',
                                ('\0'):rep(16) .. '\7\0\0\0'))
      ts.load(path, bn)
      t.eq(bn.num_batches_tracked:get(), 7)
   end)

   t.test('every byte of the data belongs to exactly one tensor: overlaps and holes name the tensors', function()
      local dir = t.tmpdir()
      -- U8 tensors a and b over the byte ranges {begin, end} given
      local function two(a, b)
         local function u8(r) return ('{"dtype":"U8","shape":[%d],"data_offsets":[%d,%d]}'):format(r[2] - r[1], r[1], r[2]) end
         return '{"a":' .. u8(a) .. ',"b":' .. u8(b) .. '}'
      end
      local data = ('x'):rep(12)
      refused(dir, two({0, 8}, {4, 12}), data, {'tensor "b": bytes 4..12 overlap those of tensor "a" (0..8)'})
      refused(dir, two({0, 8}, {0, 8}), data:sub(1, 8), {'overlap those of tensor'})
      refused(dir, two({0, 12}, {4, 4}), data, {'tensor "b": bytes 4..4 overlap those of tensor "a" (0..12)'})
      refused(dir, two({0, 4}, {8, 12}), data, {'bytes 4..8 of the data belong to no tensor (after tensor "a")'})
      refused(dir, two({4, 8}, {8, 12}), data, {'bytes 0..4 of the data belong to no tensor (before tensor "a")'})
      refused(dir, two({0, 4}, {4, 8}), data, {'bytes 8..12 of the data belong to no tensor (after tensor "b")'})
      refused(dir, '{}', 'junk', {'bytes 0..4 of the data belong to no tensor'})
      -- zero-size tensors fit between others; the order in the header is free
      local path = dir .. '/ok.safetensors'
      local c = ',"c":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}'
      t.writefile(path, st_file((two({4, 12}, {4, 4}):gsub('}$', c)), data))
      local got = ts.load(path)
      t.eq(got.a:numel() + got.b:numel() + got.c:numel(), 12)
   end)

   t.test('names with a NUL, duplicates, bad escapes, bad UTF-8 and malformed headers are refused', function()
      local dir = t.tmpdir()
      local u8 = '{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'
      refused(dir, '{"a\\u0000b":' .. u8 .. '}', 'x', {[[tensor name "a\u0000b" holds a NUL character]]})
      refused(dir, '{"a":' .. u8 .. ',"a":{"dtype":"U8","shape":[0],"data_offsets":[1,1]}}', 'x',
              {'tensor "a": appears twice'})
      refused(dir, '{"a\\x":' .. u8 .. '}', 'x', {'unknown escape'})
      refused(dir, '{"a\\u12":' .. u8 .. '}', 'x', {'4 hex digits'})
      refused(dir, '{"a\\ud800":' .. u8 .. '}', 'x', {'high surrogate lacks its low half'})
      refused(dir, '{"a\\udc00":' .. u8 .. '}', 'x', {'lone low surrogate'})
      refused(dir, '{"a\n":' .. u8 .. '}', 'x', {'control character'})
      refused(dir, '{"a\255":' .. u8 .. '}', 'x', {'byte 11: not UTF-8'})
      refused(dir, '{"\237\160\128":' .. u8 .. '}', 'x', {'not UTF-8'})   -- an encoded surrogate
      refused(dir, '{"\192\128":' .. u8 .. '}', 'x', {'not UTF-8'})       -- an overlong NUL
      refused(dir, '{"a":' .. u8 .. '}', 'x', {'truncated: the header claims 1000 bytes'}, le64(1000))
      refused(dir, '{"a":' .. u8 .. '}', 'x', {'truncated: the header claims 18446744073709551615'}, ('\255'):rep(8))
      refused(dir, '[]', '', {"the header must begin with '{'"})
      -- a stream is judged by its first bytes, before the rest is read (/dev/zero was read until memory ran out)
      t.raises(function() ts.load('/dev/zero') end, "/dev/zero: not a safetensors file: the header must begin with '{'")
      refused(dir, ' {}', '', {"the header must begin with '{'"})
      refused(dir, '{}x', '', {"characters after the header's object"})
      refused(dir, '{"a":' .. u8 .. ',}', 'x', {'expected \'"\''})
      refused(dir, '{"a":[]}', '', {'tensor "a": expected \'{\''})
      refused(dir, '{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}', 'x',
              {'tensor "a": dtype "F8_E4M3", which tshost does not read'})
      refused(dir, '{"a":{"dtype":"U8\\u0000","shape":[1],"data_offsets":[0,1]}}', 'x', {[[dtype "U8\u0000"]]})
      refused(dir, '{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 'x', {'dtype appears twice'})
      refused(dir, '{"a":{"dtype":"U8","shape":[1]}}', '', {'tensor "a": the entry lacks data_offsets'})
      refused(dir, '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}', 'x', {'data_offsets: more than 2 numbers'})
      refused(dir, '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":tru}}', 'x', {'expected a value'})
      refused(dir, '{"__metadata__":{"k":1}}', '', {'__metadata__ values must be strings'})
      refused(dir, '{"__metadata__":{},"__metadata__":{}}', '', {'__metadata__ appears twice'})
      -- what strict JSON allows loads: escapes, surrogate pairs, members tshost does not use, padding
      local path = dir .. '/ok.safetensors'
      t.writefile(path, st_file('{"__metadata__":{"k":"\\u00e9\\n\\"\\/"},"q\\"\\\\\\ud83d\\ude00":' ..
                                '{"dtype":"U8","x":[1,-2.5e+3,true,null,{}],"shape":[1],"data_offsets":[0,1]}}   ', 'x'))
      local got, meta = ts.load(path)
      t.eq(got['q"\\\240\159\152\128']:get(1), 120)
      t.eq(meta.k, '\195\169\n"/')
      -- names the writer escapes come back as they were
      ts.save(path, {['a"b\\c\n\1'] = ts.ones(1)})
      t.eq(ts.load(path)['a"b\\c\n\1']:get(1), 1)
   end)

   t.test('NaNs with a payload load as plain NaN (LuaJIT took some for pointers and crashed)', function()
      local path = t.tmpdir() .. '/nan.safetensors'
      t.writefile(path, st_file('{"f":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' ..
                                '"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},' ..
                                '"h":{"dtype":"F16","shape":[1],"data_offsets":[16,18]},' ..
                                '"b":{"dtype":"BF16","shape":[1],"data_offsets":[18,20]}}',
                                '\10\0\236\255' .. '\0\0\192\127' .. '\10\0\0\0\0\0\253\255' .. '\10\255' .. '\236\255'))
      local got = ts.load(path)
      for _, x in ipairs({got.f:narrow(1, 1, 1), got.f:narrow(1, 2, 1), got.d, got.h, got.b}) do
         local v = x:get(1)
         t.truthy(type(v) == 'number' and v ~= v, tostring(v))
         t.truthy(x:sum() ~= x:sum())
      end
   end)

   t.test('structure-aware fuzzing: every mutated file loads the same way twice or fails naming the file', function()
      local path = t.tmpdir() .. '/fuzz.safetensors'
      ts.manualSeed(2024)
      local cases, loaded, tensors = 5000, 0, 0
      for _ = 1, cases do
         t.writefile(path, fuzz.case())
         local ok, a = pcall(ts.load, path)
         if ok then
            local b = ts.load(path)
            for name, x in pairs(a) do
               t.truthy(b[name] and same_elements(x, b[name]), name)
               tensors = tensors + 1
            end
            loaded = loaded + 1
         else
            t.truthy(type(a) == 'string' and a:find(path, 1, true), tostring(a))
         end
      end
      -- both outcomes are common, or the mutations would not be testing the reader
      t.truthy(loaded > cases / 10 and loaded < cases * 9 / 10, ('%d of %d loaded'):format(loaded, cases))
      print(('        %d cases: %d loaded (%d tensors, every element read), %d refused with the file named'):format(
            cases, loaded, tensors, cases - loaded))
   end)
end
