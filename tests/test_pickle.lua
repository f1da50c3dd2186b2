-- The pickle reader on fixtures written by scripts/make_pickle_fixtures.py (every protocol 2-5, every dtype,
-- numpy 2.x paths, channels first) and on pickles this file writes itself, byte by byte, as Python and numpy
-- do: every numeric dtype in both byte orders, Python's framing, skipped entries, hostile shapes and floods;
-- truncation at every length, a byte lost or added anywhere, structure-aware fuzzing; label_names.csv; the
-- checks ts.data.gtsrb makes on images and labels.
local ffi = require('ffi')

-- ---- a pickle writer ---------------------------------------------------------------------------------------
-- A pickle is a list of records, one per opcode, so the fuzzer can mutate lengths, sizes, type codes and memo
-- indices rather than bytes: {op = 'raw', s = bytes}, {op = 'str', code = opcode, s = payload, len = declared
-- length if not #s}, {op = 'int', v = number or 8 raw bytes}, {op = 'memo', code = opcode, i = index},
-- {op = 'get', i = index}. Records may carry a role ('shape', 'descr', 'order', 'data') for the fuzzer.

-- v as `width` little-endian bytes (two's complement); a string is taken as the bytes themselves
local function le(v, width)
   if type(v) == 'string' then return v end
   local out = {}
   for i = 1, width do
      local b = v % 256
      out[i] = string.char(b)
      v = (v - b) / 256
   end
   return table.concat(out)
end

local LEN_WIDTH = {['\140'] = 1, C = 1, U = 1, X = 4, B = 4, T = 4, ['\141'] = 8, ['\142'] = 8, ['\150'] = 8}

local function encode_record(r)
   if r.op == 'raw' then return r.s end
   if r.op == 'str' then return r.code .. le(r.len or #r.s, LEN_WIDTH[r.code]) .. r.s end
   if r.op == 'memo' then return r.code == '\148' and r.code or r.code .. le(r.i, r.code == 'q' and 1 or 4) end
   if r.op == 'get' then return r.i < 256 and 'h' .. le(r.i, 1) or 'j' .. le(r.i, 4) end
   local v = r.v   -- int
   if type(v) == 'string' then return '\138\8' .. v end
   if v >= 0 and v < 256 then return 'K' .. le(v, 1) end
   if v >= 0 and v < 65536 then return 'M' .. le(v, 2) end
   if v >= -2 ^ 31 and v < 2 ^ 31 then return 'J' .. le(v, 4) end
   return '\138\8' .. le(v, 8)
end

-- The file's bytes. Protocol 4+ is framed as Python's framer does: frames of up to 64 KiB, strings of 64 KiB or
-- more outside any frame, no FRAME header on a frame under 4 bytes. frame(i, len), when given, returns the
-- length written in the i-th FRAME header.
local function encode(recs, protocol, frame)
   local out = {'\128' .. string.char(protocol)}
   if protocol < 4 then
      for _, r in ipairs(recs) do out[#out + 1] = encode_record(r) end
      return table.concat(out)
   end
   local body, len, frames = {}, 0, 0
   local function commit()
      if len >= 4 then
         frames = frames + 1
         out[#out + 1] = '\149' .. le(frame and frame(frames, len) or len, 8)
      end
      out[#out + 1] = table.concat(body)
      body, len = {}, 0
   end
   for _, r in ipairs(recs) do
      local b = encode_record(r)
      if r.op == 'str' and #r.s >= 65536 then
         commit()
         out[#out + 1] = b
      else
         body[#body + 1] = b
         len = len + #b
         if len >= 65536 then commit() end
      end
   end
   commit()
   return table.concat(out)
end

-- latin1 bytes as the UTF-8 text protocol 2 stores them in (_codecs.encode(text, 'latin1') rebuilds them)
local function utf8_of_latin1(s)
   return (s:gsub('[\128-\255]', function(c)
      local b = c:byte()
      return string.char(0xC0 + math.floor(b / 64), 0x80 + b % 64)
   end))
end

-- The records of a pickled dict, as Python's pickler and numpy's __reduce__ write them. entries: a list of
-- {key, array = {descr =, order =, shape =, data =, fortran =, objects = {...} (an object array's items)}}
-- or {key, text = '...'} (a plain str value).
local function pickle_records(entries, protocol)
   local recs, memo, globals = {}, 0, {}
   local function add(r) recs[#recs + 1] = r end
   local function raw(s) add({op = 'raw', s = s}) end
   local function memoize()
      add(protocol >= 4 and {op = 'memo', code = '\148'} or {op = 'memo', code = memo < 256 and 'q' or 'r', i = memo})
      memo = memo + 1
   end
   local function text(s, role)
      add({op = 'str', code = (protocol >= 4 and #s < 256) and '\140' or 'X', s = s, role = role})
      memoize()
   end
   local function global(module, name)
      local k = module .. '.' .. name
      if globals[k] then return add({op = 'get', i = globals[k]}) end
      if protocol >= 4 then
         text(module)
         text(name)
         raw('\147')
      else
         raw('c' .. module .. '\n' .. name .. '\n')
      end
      globals[k] = memo
      memoize()
   end
   local function bytes(s, role)
      if protocol >= 3 then
         add({op = 'str', code = #s < 256 and 'C' or 'B', s = s, role = role})
      else
         global('_codecs', 'encode')
         text(utf8_of_latin1(s), role)
         text('latin1')
         raw('\134')
         memoize()
         raw('R')
      end
      memoize()
   end
   local function int(v, role) add({op = 'int', v = v, role = role}) end
   local function tuple(n)
      if n == 0 then return raw(')') end
      raw(n <= 3 and string.char(132 + n) or 't')
      memoize()
   end
   -- dtype(descr, False, True) with its byte order set by BUILD, as numpy pickles one
   local function dtype(descr, order, objects)
      global('numpy', 'dtype')
      text(descr, 'descr')
      raw('\137\136')
      tuple(3)
      raw('R')
      memoize()
      raw('(')
      int(3)
      text(order or '<', 'order')
      raw('NNN')
      int(-1)
      int(-1)
      int(objects and 63 or 0)
      raw('t')
      memoize()
      raw('b')
   end
   -- numpy.core.multiarray.scalar(dtype, bytes): a numpy scalar (np.int64(43)) as numpy pickles one
   local function scalar(a)
      global('numpy.core.multiarray', 'scalar')
      dtype(a.descr, a.order)
      bytes(a.data, 'data')
      tuple(2)
      raw('R')
      memoize()
   end
   local function ints(list, role)
      if #list > 3 then raw('(') end
      for _, v in ipairs(list) do int(v, role) end
      tuple(#list)
   end
   -- numpy 2's protocol 5 form, _frombuffer(data, dtype, shape, order[, axes]): with axes (order 'K') the data
   -- hold, in C order and of that shape, the array's transpose by the axes
   local function frombuffer(a)
      global('numpy._core.numeric', '_frombuffer')
      raw('(')
      bytes(a.data, 'data')
      dtype(a.descr, a.order)
      ints(a.shape, 'shape')
      text(a.axes and 'K' or (a.fortran and 'F' or 'C'))
      if a.axes then ints(a.axes) end
      raw('t')
      memoize()
      raw('R')
      memoize()
   end
   local function array(a)
      if a.frombuffer then return frombuffer(a) end
      global('numpy.core.multiarray', '_reconstruct')
      global('numpy', 'ndarray')
      int(0)
      tuple(1)
      bytes('b')
      tuple(3)
      raw('R')
      memoize()
      raw('(')
      int(1)
      ints(a.shape, 'shape')
      dtype(a.descr, a.order, a.objects)
      raw(a.fortran_flag or (a.fortran and '\136' or '\137'))   -- fortran_flag: other bytes in its place
      if a.objects then
         raw(']')
         memoize()
         raw('(')
         for _, s in ipairs(a.objects) do text(s) end
         raw('e')
      else
         bytes(a.data, 'data')
      end
      raw('t')
      memoize()
      raw('b')
   end
   raw('}')
   memoize()
   raw('(')
   for _, e in ipairs(entries) do
      if type(e[1]) == 'number' then int(e[1]) else text(e[1]) end
      if e.array then array(e.array) elseif e.scalar then scalar(e.scalar) else text(e.text) end
   end
   raw('u.')
   return recs
end

local function pickle_bytes(entries, protocol, frame) return encode(pickle_records(entries, protocol or 4), protocol or 4, frame) end

-- element bytes: ints as two's complement, 'f2' values given as their half-float bits
local function pack(descr, order, values)
   local kind, size = descr:sub(1, 1), tonumber(descr:sub(2))
   local parts = {}
   for i, v in ipairs(values) do
      local b = (kind == 'f' and size == 4) and ffi.string(ffi.new('float[1]', v), 4)
         or (kind == 'f' and size == 8) and ffi.string(ffi.new('double[1]', v), 8) or le(v, size)
      parts[i] = order == '>' and b:reverse() or b
   end
   return table.concat(parts)
end

-- a small dataset dict: n images [n,4,4,3] and labels, with extra entries
local function dataset_entries(n, opts)
   opts = opts or {}
   local px, labels = {}, {}
   for i = 1, n * 48 do px[i] = (i * 37) % 256 end
   for i = 1, n do labels[i] = (i * 7) % 43 end
   local entries = {
      {'features', array = {descr = 'u1', order = '|', shape = {n, 4, 4, 3}, data = pack('u1', '|', px)}},
      {'labels', array = {descr = opts.label_descr or 'u1', order = '|', shape = {n}, data = pack(opts.label_descr or 'u1', '|', labels)}},
   }
   for _, e in ipairs(opts.extra or {}) do entries[#entries + 1] = e end
   return entries
end

return function(t)
   local dir = t.dir .. '/fixtures/pickles'
   local expected = ts.json.decode(t.readfile(dir .. '/expected.json'))
   local names = {}
   for name in pairs(expected) do names[#names + 1] = name end
   table.sort(names)
   local quiet = {quiet = true}

   -- bytes written to a fresh file and read back: ok, the arrays (or the error), the skipped entries
   local scratch = t.tmpdir() .. '/made.pickle'
   local function load(bytes, path)
      t.writefile(path or scratch, bytes)
      local ok, d, skipped = pcall(ts.data.readPickle, path or scratch, quiet)
      return ok, d, skipped
   end
   local function same(a, b)
      for k, x in pairs(a) do
         if not b[k] or tostring(x:size()) ~= tostring(b[k]:size()) or x:dtype() ~= b[k]:dtype() or not x:equal(b[k]) then return false end
      end
      for k in pairs(b) do if not a[k] then return false end end
      return true
   end

   t.test('every protocol, dtype and layout reads back exactly', function()
      t.truthy(#names >= 22, 'fixtures missing')
      for _, name in ipairs(names) do
         local d, skipped = ts.data.readPickle(dir .. '/' .. name, quiet)
         for key, want in pairs(expected[name]) do
            local got = d[key]
            t.truthy(got, name .. ' lacks ' .. key)
            t.eq(table.concat(got:size(), ','), table.concat(want.shape, ','), name .. ' ' .. key .. ' shape')
            local dtype = ({uint8 = 'uint8', int32 = 'int32', int64 = 'int64', float32 = 'float32', float64 = 'float64'})[want.dtype]
            t.eq(got:dtype(), dtype, name .. ' ' .. key .. ' dtype')
            local flat = got:contiguous():view(-1)
            t.near(flat:double():sum(), want.sum, 1e-9, 1e-6, name .. ' ' .. key .. ' sum')
            t.near(flat:get(1), want.first, 1e-6, 1e-6, name .. ' ' .. key .. ' first')
            t.near(flat:get(flat:numel()), want.last, 1e-6, 1e-6, name .. ' ' .. key .. ' last')
         end
         t.eq(d.note, nil, 'non-array entries are not tensors')
         t.eq(table.concat(skipped, '|'), 'note: a Python str, not an array', name)
      end
   end)

   -- An array A [2,3,2] (A[i][j][k] = 6i + 2j + k) laid out in Fortran order (i fastest), and as numpy 2
   -- pickles a permuted view with protocol 5: data of shape [2,2,3] in C order holding L[i][k][j] = A[i][j][k],
   -- with axes (0, 2, 1).
   t.test('arrays in Fortran order or as a permuted view (numpy 2, order K) read as the arrays they are', function()
      local fortran, layout, want = {}, {}, ts.zeros({2, 3, 2}, 'int64')
      for i = 0, 1 do for j = 0, 2 do for k = 0, 1 do
         local v = 6 * i + 2 * j + k
         want[{i + 1, j + 1, k + 1}] = v
         fortran[1 + i + 2 * j + 6 * k] = v
         layout[1 + 6 * i + 3 * k + j] = v
      end end end
      local forms = {
         {'Fortran order, _reconstruct', {descr = 'i2', shape = {2, 3, 2}, fortran = true, data = pack('i2', '<', fortran)}, 2},
         {'Fortran order, _frombuffer', {descr = 'i2', shape = {2, 3, 2}, fortran = true, frombuffer = true, data = pack('i2', '<', fortran)}, 5},
         {'order K', {descr = 'i2', shape = {2, 2, 3}, axes = {0, 2, 1}, frombuffer = true, data = pack('i2', '<', layout)}, 5},
      }
      for _, f in ipairs(forms) do
         local ok, d = load(pickle_bytes({{'a', array = f[2]}}, f[3]))
         t.truthy(ok, f[1] .. ': ' .. tostring(d))
         t.eq(tostring(d.a:size()), '[2x3x2]', f[1])
         t.truthy(d.a:long():equal(want), f[1] .. ': the values in their places')
      end
      local ok, err = load(pickle_bytes({{'a', array = {descr = 'i2', shape = {2, 2, 3}, axes = {0, 2, 2}, frombuffer = true,
                                                         data = pack('i2', '<', layout)}}}, 5))
      t.truthy(not ok and tostring(err):find('the axes are not a permutation of the 3 dims', 1, true), tostring(err))
   end)

   t.test('is_fortran as numpy reads it: an int 1 is Fortran order (it was read as C order, transposed), None refused', function()
      local fortran, want = {}, ts.zeros({2, 3}, 'int64')
      for i = 0, 1 do for j = 0, 2 do
         want[{i + 1, j + 1}] = 3 * i + j
         fortran[1 + i + 2 * j] = 3 * i + j
      end end
      for _, f in ipairs({{'K\1', true}, {'K\0', false}, {'\136', true}}) do
         local ok, d = load(pickle_bytes({{'a', array = {descr = 'i2', shape = {2, 3}, fortran = f[2], fortran_flag = f[1],
                                                          data = pack('i2', '<', f[2] and fortran or {0, 1, 2, 3, 4, 5})}}}, 2))
         t.truthy(ok, tostring(d))
         t.truthy(d.a:long():equal(want), ('flag %q: the values in their places'):format(f[1]))
      end
      for _, flag in ipairs({'N', 'G\63\240\0\0\0\0\0\0'}) do
         local ok, err = load(pickle_bytes({{'a', array = {descr = 'i2', shape = {2, 3}, fortran_flag = flag,
                                                            data = pack('i2', '<', fortran)}}}, 2))
         t.truthy(not ok and tostring(err):find('made.pickle: corrupt pickle: array state', 1, true), tostring(err))
      end
   end)

   t.test('keys that read as the same text (the int 0 and the str \'0\') are refused, not one array dropped', function()
      local a = {descr = 'u1', order = '|', shape = {1}, data = '\1'}
      local ok, err = load(pickle_bytes({{0, array = a}, {'0', array = a}}))
      t.truthy(not ok and tostring(err):find('made.pickle: two arrays under the key "0"', 1, true), tostring(err))
      local ok2, d = load(pickle_bytes({{0, array = a}, {'1', array = a}}))
      t.truthy(ok2 and d['0'] and d['1'], tostring(d))
   end)

   t.test('numpy scalars beside the arrays (n_classes = y.max() + 1) read as 0-d arrays, in protocols 2 and 4', function()
      for _, protocol in ipairs({2, 4}) do
         local ok, d = load(pickle_bytes(dataset_entries(3, {extra = {
            {'n_classes', scalar = {descr = 'i8', data = pack('i8', '<', {43})}},
            {'scale', scalar = {descr = 'f4', data = pack('f4', '<', {0.5})}}}}), protocol))
         t.truthy(ok, tostring(d))
         t.eq(d.n_classes:dim(), 0)
         t.eq(d.n_classes:get(), 43)
         t.eq(d.scale:get(), 0.5)
         t.eq(d.features:size(1), 3)
      end
   end)

   t.test('channels-first pickles become the same channels-last dataset', function()
      local d = ts.data.readPickle(dir .. '/p3_uint8_channels_first.pickle', quiet)
      local ds = ts.data.Dataset(d.features, d.labels)
      t.eq(tostring(ds.x:size()), '[5x4x4x3]')
      t.eq(ds.x:get(2, 3, 4, 1), d.features:get(2, 1, 3, 4))
      t.eq(ds.x:get(5, 1, 2, 3), d.features:get(5, 3, 1, 2))
   end)

   t.test('a pickle that calls a function is refused, naming the global, and nothing runs', function()
      os.remove('/tmp/tshost_pwned')
      local err = t.raises(function() ts.data.readPickle(dir .. '/evil.pickle') end, 'refusing to load global')
      t.truthy(err:find('posix.system', 1, true) or err:find('os.system', 1, true), err)
      t.truthy(err:find('evil.pickle', 1, true), err)
      t.eq(io.open('/tmp/tshost_pwned', 'r'), nil, 'the payload ran')
      t.raises(function() ts.data.readPickle(dir .. '/bare_array.pickle') end, 'not a dict of arrays')
      t.raises(function() ts.data.readPickle(dir .. '/none.pickle') end, 'none.pickle: cannot open')
      -- files that are not protocol 2-5 pickles are named for what they are, not by their first opcode
      local other = t.tmpdir()
      t.writefile(other .. '/p0.pickle', "(dp0\nVlabels\np1\nI1\ns.")   -- protocol 0, as pickle.dumps(..., 0)
      t.raises(function() ts.data.readPickle(other .. '/p0.pickle') end, 'p0.pickle: not a pickle of protocol 2 to 5')
      t.writefile(other .. '/gz.pickle', '\31\139\8\0\0\0\0\0\0\3')
      t.raises(function() ts.data.readPickle(other .. '/gz.pickle') end, 'gz.pickle: is a gzip-compressed file, not a pickle')
   end)

   t.test('a stream that is no pickle is refused at its first bytes (/dev/zero was read until memory ran out)', function()
      t.raises(function() ts.data.readPickle('/dev/zero') end, '/dev/zero: not a pickle of protocol 2 to 5 (0x00 at byte 0')
      -- a pickle given through a pipe still loads whole, past the first bytes judged
      local bytes = t.readfile(dir .. '/p4_int64.pickle')
      local fifo = t.tmpdir() .. '/fifo'
      t.truthy(os.execute(('mkfifo %q'):format(fifo)) == 0, 'mkfifo')
      local writer = io.popen(('cat %q > %q'):format(dir .. '/p4_int64.pickle', fifo), 'w')
      local piped = ts.data.readPickle(fifo)
      writer:close()
      local direct = ts.data.readPickle(dir .. '/p4_int64.pickle')
      t.truthy(#bytes > 0)
      for k, v in pairs(direct) do t.eq(tostring(piped[k]), tostring(v), k) end
   end)

   t.test('a file cut at any length is an error naming the file and the byte offset', function()
      for _, name in ipairs({'p2_uint8.pickle', 'p3_float32.pickle', 'p4_int64.pickle', 'p5_uint8.pickle'}) do
         local bytes = t.readfile(dir .. '/' .. name)
         local cut = t.tmpdir() .. '/cut.pickle'
         for n = 0, #bytes - 1 do
            t.writefile(cut, bytes:sub(1, n))
            local err = t.raises(function() ts.data.readPickle(cut) end, cut, name .. ' cut at ' .. n)
            t.truthy(err:find('at byte %d+'), err)
         end
      end
   end)

   t.test('random corruptions never crash (fuzz)', function()
      local cut = t.tmpdir() .. '/fuzz.pickle'
      local sources = {}
      for _, name in ipairs(names) do sources[#sources + 1] = t.readfile(dir .. '/' .. name) end
      local refused = 0
      for trial = 1, 1500 do
         local bytes = sources[ts.randint(#sources)]
         local parts = {}
         local last = 0
         for _ = 1, ts.randint(4) do
            local i = ts.randint(#bytes)
            if i > last then
               parts[#parts + 1] = bytes:sub(last + 1, i - 1) .. string.char(ts.randint(256) - 1)
               last = i
            end
         end
         parts[#parts + 1] = bytes:sub(last + 1)
         t.writefile(cut, table.concat(parts))
         if not pcall(ts.data.readPickle, cut, quiet) then refused = refused + 1 end
      end
      t.truthy(refused > 100, 'corruptions should mostly be detected, got ' .. refused)
   end)

   t.test('every numeric numpy dtype, in either byte order, reads as the tshost dtype that holds it', function()
      local float = function(v) return tonumber(ffi.new('float[1]', v)[0]) end
      local cases = {   -- type code, values written, tshost dtype, values read (when they differ)
         {'b1', {0, 1, 2, 0}, 'uint8', {0, 1, 1, 0}},
         {'u1', {0, 7, 255, 128}, 'uint8'},
         {'i1', {-128, -1, 0, 127}, 'int32'},
         {'u2', {0, 1, 65535, 300}, 'int32'},
         {'i2', {-32768, 32767, -2, 5}, 'int32'},
         {'i4', {-2 ^ 31, 2 ^ 31 - 1, -7, 0}, 'int32'},
         {'u4', {0, 2 ^ 32 - 1, 2 ^ 31, 9}, 'int64'},
         {'i8', {-2 ^ 62, 2 ^ 53, -1, 3}, 'int64'},
         {'u8', {0, 2 ^ 53, 2 ^ 62, 1}, 'int64'},
         {'f2', {0x3C00, 0xC000, 0x0001, 0x7BFF}, 'float32', {1, -2, 2 ^ -24, 65504}},
         {'f4', {0.5, -1.25, 3e38, 1e-3}, 'float32', {0.5, -1.25, float(3e38), float(1e-3)}},
         {'f8', {0.1, -1e300, 2 ^ -1074, 7}, 'float64'},
      }
      for _, c in ipairs(cases) do
         local orders = c[1]:sub(2) == '1' and {'|'} or {'<', '>', '='}
         for _, order in ipairs(orders) do
            for _, protocol in ipairs({2, 4}) do
               local label = ('%s %s protocol %d'):format(c[1], order, protocol)
               local a = {descr = c[1], order = order, shape = {2, 2}, data = pack(c[1], order, c[2])}
               local ok, d = load(pickle_bytes({{'a', array = a}}, protocol))
               t.truthy(ok, label .. ': ' .. tostring(d))
               t.eq(d.a:dtype(), c[3], label)
               t.eq(tostring(d.a:size()), '[2x2]', label)
               local want = c[4] or c[2]
               for i = 1, 4 do t.eq(d.a:get(math.floor((i - 1) / 2) + 1, (i - 1) % 2 + 1), want[i], label .. ' value ' .. i) end
            end
         end
      end
      -- half floats: infinities and NaN; a NaN's payload never reaches Lua
      local ok, d = load(pickle_bytes({{'h', array = {descr = 'f2', shape = {3}, data = pack('f2', '<', {0x7C00, 0xFC00, 0x7E01})}},
                                       {'f', array = {descr = 'f4', shape = {1}, data = '\10\0\236\255'}}}))
      t.truthy(ok, tostring(d))
      t.eq(d.h:get(1), math.huge)
      t.eq(d.h:get(2), -math.huge)
      t.truthy(d.h:get(3) ~= d.h:get(3) and d.f:get(1) ~= d.f:get(1), 'NaN')
   end)

   t.test("entries tshost cannot read are skipped, each named with its reason; the rest is read", function()
      local entries = dataset_entries(2, {extra = {
         {'complex', array = {descr = 'c8', shape = {1}, data = ('\0'):rep(8)}},
         {'names', array = {descr = 'U5', shape = {1}, data = ('\0'):rep(20)}},
         {'objects', array = {descr = 'O8', order = '|', shape = {2}, objects = {'x', 'y'}}},
         {'when', array = {descr = 'M8', shape = {1}, data = ('\0'):rep(8)}},
         {'record', array = {descr = 'V12', order = '|', shape = {1}, data = ('\0'):rep(12)}},
         {'long double', array = {descr = 'f16', shape = {1}, data = ('\0'):rep(16)}},
         {'odd', array = {descr = 'x9', shape = {1}, data = ('\0'):rep(9)}},
         {'huge', array = {descr = 'u8', shape = {1}, data = ('\255'):rep(8)}},
         {'six dims', array = {descr = 'u1', shape = {1, 1, 1, 1, 1, 2}, data = '\1\2'}},
         {'comment', text = 'made by hand'},
      }})
      for _, protocol in ipairs({2, 4}) do
         local ok, d, skipped = load(pickle_bytes(entries, protocol))
         t.truthy(ok, tostring(d))
         t.eq(tostring(d.features:size()), '[2x4x4x3]')
         t.eq(d.labels:numel(), 2)
         local why = {}
         for _, s in ipairs(skipped) do
            local key, reason = s:match('^(.-): (.*)$')
            why[key] = reason
         end
         for key, words in pairs({complex = 'complex', names = 'text strings', objects = 'Python objects', when = 'datetime64',
                                  record = 'structured', ['long double'] = 'long double', odd = 'does not know',
                                  huge = 'above 2^63-1', ['six dims'] = 'more than 5 dims', comment = 'Python str, not an array'}) do
            t.truthy(why[key] and why[key]:find(words, 1, true), key .. ': ' .. tostring(why[key]))
            t.eq(d[key], nil, key)
         end
      end
   end)

   t.test("a shape whose product leaves 64 bits, or that disagrees with the data, is an error naming the file and key", function()
      local path = t.tmpdir() .. '/shapes.pickle'
      local function refused(shape, data, words, descr)
         local ok, err = load(pickle_bytes({{'features', array = {descr = descr or 'u1', shape = shape, data = data}}}), path)
         t.truthy(not ok, 'accepted ' .. table.concat(shape, ','))
         for _, w in ipairs({path, "key 'features'", words}) do t.truthy(tostring(err):find(w, 1, true), err) end
      end
      refused({64, 2 ^ 32, 2 ^ 32, 3}, '', '64-bit')
      refused({2 ^ 62, 2}, '', '64-bit', 'f8')
      refused({3, -1}, '', 'negative')
      refused({2, 2}, '\1\2\3', 'holds 3 bytes where its shape needs 4')
      refused({2, 2}, '\1\2\3\4\5', 'holds 5 bytes where its shape needs 4')
   end)

   -- a small framed protocol-4 pickle, and what it loads as
   local framed_coords = {'coords', array = {descr = 'u2', shape = {2, 4}, data = pack('u2', '<', {1, 2, 30, 31, 3, 4, 28, 29})}}
   local framed = pickle_bytes(dataset_entries(2, {extra = {framed_coords}}))
   local framed_ok, framed_data = load(framed)

   t.test('FRAME lengths are honoured: a framed pickle with any one byte removed is an error naming the file and offset', function()
      t.truthy(framed_ok and framed:byte(3) == 0x95, 'the pickle is framed and loads')
      local path = t.tmpdir() .. '/removed.pickle'
      for i = 1, #framed do
         local ok, err = load(framed:sub(1, i - 1) .. framed:sub(i + 1), path)
         t.truthy(not ok, 'byte ' .. i .. ' removed, and it loaded')
         t.truthy(tostring(err):find(path, 1, true) and tostring(err):find('at byte %d+'), err)
      end
   end)

   t.test('a byte added anywhere in a framed pickle is an error, or (a no-op byte) changes nothing', function()
      local path = t.tmpdir() .. '/added.pickle'
      local loaded = 0
      for i = 0, #framed do
         for _, c in ipairs({'N', '\148', '(', '0', '.', string.char(ts.randint(256) - 1)}) do
            local ok, d = load(framed:sub(1, i) .. c .. framed:sub(i + 1), path)
            if ok then
               loaded = loaded + 1
               t.truthy(same(d, framed_data), ('byte %q added at %d loaded different data'):format(c, i))
            else
               t.truthy(tostring(d):find(path, 1, true), d)
            end
         end
      end
      t.truthy(loaded < 20, loaded .. ' additions loaded')
   end)

   t.test("frames as Python writes them: strings of 64 KiB or more outside frames, short unframed tails", function()
      local entries = {{'features', array = {descr = 'u1', shape = {70000}, data = ('\7'):rep(70000)}}, {'blob', text = ('z'):rep(70000)}}
      local bytes = pickle_bytes(entries)
      t.truthy(bytes:sub(-2) == 'u.', 'the tail after the last long string is unframed')
      local ok, d, skipped = load(bytes)
      t.truthy(ok, tostring(d))
      t.eq(d.features:numel(), 70000)
      t.eq(d.features:get(70000), 7)
      t.eq(#skipped, 1)
      -- a frame of over 64 KiB followed by a short unframed tail
      local px = {}
      for i = 1, 40000 do px[i] = i % 251 end
      local two = dataset_entries(1, {extra = {{'a', array = {descr = 'u2', shape = {40000}, data = pack('u2', '<', px)}}}})
      ok, d = load(pickle_bytes(two))
      t.truthy(ok, tostring(d))
      t.eq(d.a:get(40000), 40000 % 251)
      -- what Python never writes: a frame ending inside an opcode, a frame inside a frame, a frame past the end,
      -- opcodes outside a short frame, a STOP before its frame ends
      local body = framed:sub(12)
      local function refused(bytes, words)
         local good, err = load(bytes)
         t.truthy(not good and tostring(err):find(words, 1, true), tostring(err))
      end
      refused('\128\4\149' .. le(5, 8) .. body, 'runs past the end of its frame')   -- '}', MEMOIZE, MARK, then a string
      refused('\128\4\149' .. le(#body + 1, 8) .. body, 'runs past the end of the file')
      refused('\128\4\149' .. le(#body - 1, 8) .. body, 'outside the file\'s frames')
      refused('\128\4\149' .. le(#body + 9, 8) .. '\149' .. le(#body, 8) .. body, 'a FRAME begins')
      refused('\128\4\149' .. le(#body + 1, 8) .. body .. '.', 'STOP 1 bytes before the end of its frame')
   end)

   t.test('floods of cheap opcodes and far memo indices are refused quickly, in bounded memory', function()
      local path = t.tmpdir() .. '/flood.pickle'
      local function refused(bytes, words)
         local ok, err = load(bytes, path)
         t.truthy(not ok and tostring(err):find(words, 1, true) and tostring(err):find(path, 1, true), tostring(err))
      end
      refused('\128\2' .. ('N'):rep(10 * 2 ^ 20) .. '.', 'STOP with 10485760 values on the stack')
      refused('\128\2' .. (']'):rep(10 * 2 ^ 20) .. '.', 'MB of values from a file of')
      refused('\128\2}r\255\255\255\0.', 'memo index 16777215 is beyond what a file of 9 bytes can hold')
      refused('\128\2}q\5h\6.', 'memo entry 6 missing')
   end)

   -- a GTSRB folder of small pickles: entries per split, label_names.csv with a byte-order mark
   local function gtsrb_dir(splits)
      local d = t.tmpdir()
      for _, split in ipairs({'train', 'valid', 'test'}) do
         t.writefile(d .. '/' .. split .. '.pickle', pickle_bytes(splits[split] or splits.all, splits.protocol))
      end
      local csv = {'\239\187\191ClassId,SignName'}
      for c = 0, 42 do csv[#csv + 1] = c .. ',Sign ' .. c end
      t.writefile(d .. '/label_names.csv', table.concat(csv, '\n') .. '\n')
      return d
   end

   t.test("the course's four keys: coords and sizes (uint16, either byte order) beside features and labels", function()
      local n = 3
      local function four(order)
         return dataset_entries(n, {extra = {
            {'coords', array = {descr = 'u2', order = order, shape = {n, 4},
                                data = pack('u2', order, {5, 6, 40, 41, 1, 2, 300, 301, 0, 0, 65535, 9})}},
            {'sizes', array = {descr = 'u2', order = order, shape = {n, 2}, data = pack('u2', order, {45, 46, 310, 305, 65535, 12})}}}})
      end
      local g = ts.data.gtsrb(gtsrb_dir({train = four('<'), valid = four('>'), test = dataset_entries(n)}))
      for _, ds in ipairs({g.train, g.valid}) do
         t.eq(tostring(ds.coords:size()), '[3x4]')
         t.eq(ds.coords:dtype(), 'int32')
         t.eq(ds.coords:get(2, 3), 300)
         t.eq(ds.coords:get(3, 3), 65535)
         t.eq(tostring(ds.sizes:size()), '[3x2]')
         t.eq(ds.sizes:get(3, 1), 65535)
         t.truthy(ds.extra.coords and ds.extra.sizes and ds.extra.features)
      end
      t.eq(g.test.coords, nil)
      t.eq(g.classNames[42], 'Sign 42')
      -- the wrong shape: left in ds.extra only
      local bad = dataset_entries(n, {extra = {{'coords', array = {descr = 'u2', shape = {n, 3}, data = ('\0'):rep(n * 6)}}}})
      g = ts.data.gtsrb(gtsrb_dir({all = bad}))
      t.eq(g.train.coords, nil)
      t.eq(tostring(g.train.extra.coords:size()), '[3x3]')
      -- splits of another image size are named here, not inside a layer later; so are one-hot labels
      local gray = dataset_entries(n)
      gray[1] = {'features', array = {descr = 'u1', order = '|', shape = {n, 4, 4, 1}, data = ('\7'):rep(n * 16)}}
      t.raises(function() ts.data.gtsrb(gtsrb_dir({train = dataset_entries(n), valid = gray, test = dataset_entries(n)})) end,
               "valid.pickle: images [3x4x4x1] do not match")
      local onehot = dataset_entries(n)
      onehot[2] = {'labels', array = {descr = 'u1', order = '|', shape = {n, 43}, data = ('\0'):rep(n * 43)}}
      t.raises(function() ts.data.gtsrb(gtsrb_dir({all = onehot})) end,
               "key 'labels' must be class ids [N], got [3x43] (one-hot")
   end)

   t.test('0..1 float images are scaled by 255 and rounded; values beyond 0..255, NaN, bad labels refused naming file and key', function()
      local n = 2
      local function images(descr, values, labels, label_descr)
         local px = {}
         for i = 1, n * 48 do px[i] = values[(i - 1) % #values + 1] end
         return {{'features', array = {descr = descr, shape = {n, 4, 4, 3}, data = pack(descr, '<', px)}},
                 {'labels', array = {descr = label_descr or 'i8', shape = {n}, data = pack(label_descr or 'i8', '<', labels or {0, 1})}}}
      end
      local g = ts.data.gtsrb(gtsrb_dir({all = images('f4', {0, 0.2, 0.5, 1})}))
      t.eq(g.train.x:dtype(), 'uint8')
      t.eq(g.train.x:get(1, 1, 1, 1), 0)
      t.eq(g.train.x:get(1, 1, 1, 2), 51)
      t.eq(g.train.x:get(1, 1, 1, 3), 128)
      t.eq(g.train.x:get(1, 1, 2, 1), 255)
      g = ts.data.gtsrb(gtsrb_dir({all = images('f8', {0, 254.6, 100.4, 3})}))
      t.eq(g.train.x:get(1, 1, 1, 2), 255, 'rounded, not truncated')
      t.eq(g.train.x:get(1, 1, 1, 3), 100)
      g = ts.data.gtsrb(gtsrb_dir({all = images('i2', {0, 255, 7}, {3, 42}, 'f8')}))
      t.eq(g.train.x:get(1, 1, 1, 2), 255)
      t.eq(g.train.y:get(2), 42)
      local function refused(splits, key, words)
         local d = gtsrb_dir(splits)
         local err = t.raises(function() ts.data.gtsrb(d) end, d .. '/train.pickle')
         t.truthy(err:find(key, 1, true) and err:find(words, 1, true), err)
      end
      refused({all = images('f4', {0, -0.5, 1})}, "key 'features'", 'outside 0..255')
      refused({all = images('f4', {0, 300})}, "key 'features'", 'outside 0..255')
      -- 0..1 images brightened past 1 without clipping: read as 0..255 they would be all but black
      refused({all = images('f4', {0, 0.5, 1.02})}, "key 'features'", 'neither 0..1 images (some lie above 1)')
      -- a label label_names.csv does not name (43 of 0..42: 1-based labels) would shift the names shown
      refused({all = images('u1', {0}, {1, 43})}, 'label_names.csv does not name (it names 43 classes)', 'a label 43')
      refused({all = images('f4', {0, 0 / 0})}, "key 'features'", 'NaN or infinite')
      refused({all = images('i4', {0, 256})}, "key 'features'", 'outside 0..255')
      refused({all = images('u1', {0}, {0, 2 ^ 40})}, "key 'labels'", 'labels from 0 to 1099511627776')
      refused({all = images('u1', {0}, {-1, 3})}, "key 'labels'", 'labels from -1 to 3')
      refused({all = images('u1', {0}, {1.5, 3}, 'f4')}, "key 'labels'", 'not whole numbers')
      refused({all = images('u1', {0}, {0, 1 / 0}, 'f8')}, "key 'labels'", 'NaN or infinite')
      local y = ts.zeros({2}, 'int64')
      t.raises(function() ts.data.Dataset(ts.zeros(2, 4, 4, 3):fill(-2), y) end, 'Dataset: images holds float32 values in [-2, -2]')
      t.raises(function() ts.data.Dataset(ts.zeros({2, 4, 4, 3}, 'uint8'), y:fill(100000)) end, 'Dataset: labels holds labels from')
      -- ids a confusion matrix cannot hold are refused here, not at the evaluation after the training (they were taken)
      t.raises(function() ts.data.Dataset(ts.zeros({2, 4, 4, 3}, 'uint8'), y:fill(ts.metrics.MAX_CLASSES)) end,
               'Dataset: labels holds labels from 10000 to 10000; class ids lie in 0..9999')
      t.eq(ts.data.Dataset(ts.zeros({2, 4, 4, 3}, 'uint8'), y:fill(ts.metrics.MAX_CLASSES - 1)):size(), 2)
   end)

   t.test('label_names.csv: ids to names, quoted commas, a byte-order mark; bad ids refused naming the row', function()
      local d = t.tmpdir()
      t.writefile(d .. '/names.csv', 'ClassId,SignName\n0,"Speed limit (20km/h)"\n1,"No passing, trucks"\r\n')
      local names = ts.data.readLabelNames(d .. '/names.csv')
      t.eq(names[0], 'Speed limit (20km/h)')
      t.eq(names[1], 'No passing, trucks')
      t.writefile(d .. '/bom.csv', '\239\187\191ClassId,SignName\r\n0,Stop\r\n1,Yield\r\n')
      names = ts.data.readLabelNames(d .. '/bom.csv')
      t.eq(names[0], 'Stop')
      t.eq(names[1], 'Yield')
      -- Python's csv with utf-8-sig and QUOTE_ALL: the mark before a quoted header
      t.writefile(d .. '/bomq.csv', '\239\187\191"ClassId","SignName"\r\n"0","Stop"\r\n"1","Yield"\r\n')
      names = ts.data.readLabelNames(d .. '/bomq.csv')
      t.eq(names[1], 'Yield')
      -- lines ended by a CR alone, as Python's csv reads them (the file was one header line)
      t.writefile(d .. '/cr.csv', 'ClassId,SignName\r0,Stop\r1,"Yield"\r\r')
      names = ts.data.readLabelNames(d .. '/cr.csv')
      t.truthy(names[0] == 'Stop' and names[1] == 'Yield' and not names[2])
      -- rows of empty cells after the last class, as a spreadsheet exports them
      t.writefile(d .. '/sheet.csv', 'ClassId,SignName\n0,Stop\n1,Yield\n,\n,\n')
      names = ts.data.readLabelNames(d .. '/sheet.csv')
      t.truthy(names[1] == 'Yield' and not names[2])
      t.writefile(d .. '/bad.csv', 'id,name\n0,x\n')
      t.raises(function() ts.data.readLabelNames(d .. '/bad.csv') end, 'bad.csv: expected the header ClassId,SignName')
      for rows, words in pairs({
         ['0,a\n1,b\n1,c\n'] = 'row 4: ClassId "1" repeats row 3',
         ['0,a\n2,b\n'] = 'no row has ClassId 1, though row 3 has ClassId 2',
         ['0,a\n-1,b\n'] = 'row 3: ClassId "-1" is negative',
         ['0,a\n1.5,b\n'] = 'row 3: ClassId "1.5" is not a whole number',
         ['0,a\nten,b\n'] = 'row 3: ClassId "ten" is not a number',
         ['0,a\n,b\n'] = 'row 3: ClassId "" is not a number',
         ['0,a\n1000000000,b\n'] = 'row 3: ClassId "1000000000" is beyond 9999',
         ['0,a\n1\n'] = 'row 3: ClassId "1" has no SignName',
         ['0,a\n0x1,b\n'] = 'row 3: ClassId "0x1" is not a number',
         ['0,a\n1e0,b\n'] = 'row 3: ClassId "1e0" is not a number',
         -- text after a closing quote would be lost; a NUL byte joined two rows
         ['0,"Speed"limit\n'] = ':2: text after the closing quote of field 2: "Speed"l',
         ['0,a\0b\n1,c\n'] = ':2: a NUL byte: not a text file',
         -- an unquoted comma cut the name at it ("Keep right")
         ['0,a\n1,Keep right, please\n'] = ':3: 3 cells, but the header names 2 columns (a comma in an unquoted field? quote it)',
         -- an empty name (NaN to pandas) named the class '' in every report
         ['0,a\n1,\n'] = 'row 3: ClassId "1" has an empty SignName',
         ['0,""\n1,b\n'] = 'row 2: ClassId "0" has an empty SignName',
         ['0,a\n1, \t\n'] = 'row 3: ClassId "1" has an empty SignName',
      }) do
         t.writefile(d .. '/ids.csv', 'ClassId,SignName\n' .. rows)
         t.raises(function() ts.data.readLabelNames(d .. '/ids.csv') end, d .. '/ids.csv' .. (words:sub(1, 1) == ':' and '' or ': ') .. words)
      end
   end)

   t.test('ts.data.gtsrb says which file is missing and where it looked', function()
      local d = t.tmpdir()
      local err = t.raises(function() ts.data.gtsrb(d) end, 'train.pickle not found in ' .. d)
      t.truthy(err:find('TSHOST_DATA', 1, true), err)
   end)

   t.test('a pickle without the keys features and labels is refused naming the arrays it has', function()
      local renamed = dataset_entries(2)
      renamed[1][1], renamed[2][1] = 'X_train', 'y_train'
      local d = gtsrb_dir({all = renamed})
      t.raises(function() ts.data.gtsrb(d) end, d .. '/train.pickle: expected the keys features and labels; its arrays are "X_train", "y_train"')
      -- labels pickled as a Python object, not an array: skipped (noted), and the error says what is left
      local listed = dataset_entries(2)
      listed[2] = {'labels', text = '[0, 1]'}
      d = gtsrb_dir({all = listed})
      t.raises(function() ts.data.gtsrb(d) end, 'train.pickle: expected the keys features and labels; its arrays are "features"')
   end)

   -- ---- structure-aware fuzzing -----------------------------------------------------------------------------
   -- Valid pickles (protocols 2 and 4, several dtypes, a string over 64 KiB outside frames) mutated where a
   -- corrupt or hostile file differs from a good one: declared lengths, shape sizes, type codes and byte orders,
   -- FRAME lengths, memo indices, opcodes, records dropped or repeated, truncation, flipped bytes. Every load must
   -- either fail naming the file, or give tensors whose sizes agree with their shapes and with the file's size.
   local FUZZ_CASES = 5000
   local ELEM = {uint8 = 1, int32 = 4, int64 = 8, float32 = 4, float64 = 8}
   local BIG = {0, 1, 255, 256, 65536, 2 ^ 31 - 1, 2 ^ 31, 2 ^ 32 - 1, 2 ^ 32, 2 ^ 53, -1, -2 ^ 31,
                ('\255'):rep(7) .. '\127', ('\0'):rep(7) .. '\128', ('\255'):rep(8)}   -- the last three: 8 raw bytes
   local DESCRS = {'u1', 'b1', 'i1', 'u2', 'i2', 'i4', 'u4', 'i8', 'u8', 'f2', 'f4', 'f8', 'f16', 'c8', 'U5', 'S3',
                   'O8', 'M8', 'V12', 'x9', '', 'u', '4', '<u2', '>f4', 'u99999', 'i0'}
   local ORDERS = {'<', '>', '|', '=', 'x', '', '<<'}
   local OPCODES = '().0123NKMJGXCBTUabceghjqrstu}]\128\133\134\135\136\137\138\140\141\142\147\148\149\150\151\152\1\255'
   local function pick(list) return list[ts.randint(#list)] end

   local function fuzz_sources()
      local px = {}
      for i = 1, 24 do px[i] = i * 3 end
      local coords = {'coords', array = {descr = 'u2', order = '>', shape = {2, 4}, data = pack('u2', '>', px):sub(1, 16)}}
      local floats = {{'f', array = {descr = 'f4', shape = {2, 3}, data = pack('f4', '<', px):sub(1, 24)}},
                      {'h', array = {descr = 'f2', shape = {2}, data = '\0\60\0\192'}}, {'s', text = 'x'}}
      local big = {{'big', array = {descr = 'u1', shape = {66000}, data = ('\3'):rep(66000)}},
                   {'y', array = {descr = 'i8', shape = {1}, data = le(5, 8)}}}
      local sources = {{recs = pickle_records(big, 4), protocol = 4}}
      for _, protocol in ipairs({2, 4}) do
         sources[#sources + 1] = {recs = pickle_records(dataset_entries(2, {extra = {coords}}), protocol), protocol = protocol}
         sources[#sources + 1] = {recs = pickle_records(floats, protocol), protocol = protocol}
      end
      return sources
   end

   local function copy_records(recs)
      local out = {}
      for i, r in ipairs(recs) do
         local c = {}
         for k, v in pairs(r) do c[k] = v end
         out[i] = c
      end
      return out
   end

   -- a random record that passes test, or nil
   local function find(recs, test)
      local found = {}
      for i, r in ipairs(recs) do if test(r) then found[#found + 1] = i end end
      return #found > 0 and recs[pick(found)] or nil
   end
   local function is_string(r) return r.op == 'str' end
   local function role(name) return function(r) return r.role == name end end
   local function is_memo_index(r) return r.op == 'get' or r.op == 'memo' and r.i ~= nil end

   -- Each mutates a record list in place; the last returns a FRAME-length override for encode.
   local mutations = {
      function(recs)   -- a string's declared length
         local r = find(recs, is_string)
         if r then r.len = ts.randint(2) == 1 and #r.s + ts.randint(5) - 3 or pick(BIG) end
      end,
      function(recs)   -- a shape size
         local r = find(recs, role('shape'))
         if r then r.v = pick(BIG) end
      end,
      function(recs)   -- a type code
         local r = find(recs, role('descr'))
         if r then r.s = pick(DESCRS) end
      end,
      function(recs)   -- a byte order
         local r = find(recs, role('order'))
         if r then r.s = pick(ORDERS) end
      end,
      function(recs)   -- a memo index (BINGET, BINPUT)
         local r = find(recs, is_memo_index)
         if r then r.i = ts.randint(2) == 1 and ts.randint(40) - 1 or 2 ^ 31 end
      end,
      function(recs)   -- an array's data shortened
         local r = find(recs, role('data'))
         if r then r.s = r.s:sub(1, ts.randint(#r.s + 1) - 1) end
      end,
      function(recs)   -- an opcode replaced by another
         local k = ts.randint(#OPCODES)
         recs[ts.randint(#recs)] = {op = 'raw', s = OPCODES:sub(k, k)}
      end,
      function(recs) table.remove(recs, ts.randint(#recs)) end,
      function(recs)
         local i = ts.randint(#recs)
         table.insert(recs, i, recs[i])
      end,
      function(recs)
         local i = ts.randint(#recs - 1)
         recs[i], recs[i + 1] = recs[i + 1], recs[i]
      end,
      function()   -- every FRAME's length
         local delta = pick({-9, -2, -1, 1, 2, 9, 2 ^ 40})
         return function(_, len) return math.max(0, len + delta) end
      end,
   }

   local function check_loaded(d, skipped, size, label)
      for key, x in pairs(d) do
         local n = 1
         for _, s in ipairs(x:size()) do n = n * s end
         t.eq(x:numel(), n, label .. ' ' .. key)
         t.truthy(ELEM[x:dtype()] and x:numel() * ELEM[x:dtype()] <= 4 * size, label .. ' ' .. key .. ' is larger than its file allows')
      end
      for _, s in ipairs(skipped) do t.truthy(s:find(': ', 1, true), s) end
   end

   t.test(('structure-aware fuzzing of the pickle reader (%d cases): each load fails naming the file or is consistent')
          :format(FUZZ_CASES), function()
      ts.manualSeed(77)
      local path = t.tmpdir() .. '/fuzz.pickle'
      local sources, outcomes = fuzz_sources(), {loaded = 0, refused = 0}
      for case = 1, FUZZ_CASES do
         local src = sources[(case - 1) % #sources + 1]
         local recs, frame = copy_records(src.recs), nil
         for _ = 1, ts.randint(3) do frame = mutations[ts.randint(#mutations)](recs) or frame end
         local bytes = encode(recs, src.protocol, frame)
         if ts.randint(8) == 1 then bytes = bytes:sub(1, ts.randint(#bytes)) end
         if ts.randint(8) == 1 then
            local i = ts.randint(#bytes)
            bytes = bytes:sub(1, i - 1) .. string.char(ts.randint(256) - 1) .. bytes:sub(i + 1)
         end
         local ok, d, skipped = load(bytes, path)
         if ok then
            outcomes.loaded = outcomes.loaded + 1
            check_loaded(d, skipped, #bytes, 'case ' .. case)
         else
            outcomes.refused = outcomes.refused + 1
            t.truthy(tostring(d):find(path, 1, true), 'case ' .. case .. ': ' .. tostring(d))
         end
      end
      t.truthy(outcomes.loaded > FUZZ_CASES / 20 and outcomes.refused > FUZZ_CASES / 4,
               ('%d loaded, %d refused: the mutations should do both'):format(outcomes.loaded, outcomes.refused))
   end)

   local CSV_CASES = 2000
   t.test(('fuzzing readLabelNames (%d cases): each mutated CSV fails naming the file or gives names 0..max'):format(CSV_CASES), function()
      ts.manualSeed(78)
      local path = t.tmpdir() .. '/fuzz_names.csv'
      local base = {'ClassId,SignName'}
      for c = 0, 9 do base[#base + 1] = ('%d,"Sign %d, kind %d"'):format(c, c, c % 3) end
      local IDS = {'-1', '1.5', '1e9', '1000000000', 'abc', '', ' 3 ', '0x10', 'nan', 'inf', '+2', '99999', '100000', '"4"', '"5'}
      local edits = {
         function(l) table.remove(l, ts.randint(#l)) end,
         function(l) local i = ts.randint(#l); table.insert(l, i, l[i]) end,
         function(l) local i = ts.randint(#l - 1); l[i], l[i + 1] = l[i + 1], l[i] end,
         function(l) local i = ts.randint(#l); l[i] = l[i]:gsub('^[^,]*', pick(IDS), 1) end,
         function(l) l[1] = '\239\187\191' .. l[1] end,
         function(l) local i = ts.randint(#l); l[i] = l[i] .. '\r' end,
         function(l) table.insert(l, ts.randint(#l + 1), '') end,
         function(l) local i = ts.randint(#l); l[i] = l[i]:gsub(',.*', '') end,
         function(l)
            local i = ts.randint(#l)
            local k = ts.randint(#l[i] + 1)
            l[i] = l[i]:sub(1, k - 1) .. string.char(ts.randint(256) - 1) .. l[i]:sub(k + 1)
         end,
      }
      local outcomes = {loaded = 0, refused = 0}
      for _ = 1, CSV_CASES do
         local lines = {unpack(base)}
         for _ = 1, ts.randint(3) do edits[ts.randint(#edits)](lines) end
         local text = table.concat(lines, '\n')
         if ts.randint(6) == 1 then text = text:sub(1, ts.randint(#text + 1) - 1) end
         t.writefile(path, text)
         local ok, names = pcall(ts.data.readLabelNames, path)
         if ok then
            outcomes.loaded = outcomes.loaded + 1
            local count = 0
            for id, name in pairs(names) do
               t.truthy(type(id) == 'number' and id >= 0 and id == math.floor(id) and id < ts.data.maxClasses, tostring(id))
               t.eq(type(name), 'string')
               count = count + 1
            end
            for id = 0, count - 1 do t.truthy(names[id], 'a gap at ' .. id .. ' in\n' .. text) end
         else
            outcomes.refused = outcomes.refused + 1
            t.truthy(tostring(names):find(path, 1, true), names)
         end
      end
      t.truthy(outcomes.loaded > CSV_CASES / 20 and outcomes.refused > CSV_CASES / 4,
               ('%d loaded, %d refused: the mutations should do both'):format(outcomes.loaded, outcomes.refused))
   end)

   t.test('the real GTSRB files: counts, shapes, label ranges, names, coords and sizes', function()
      local dir = os.getenv('TSHOST_DATA')
      if not dir then t.skip('TSHOST_DATA is not set (point it at the GTSRB pickles)') end
      local g = ts.data.gtsrb(dir)
      t.eq(g.train:size(), 34799)
      t.eq(g.valid:size(), 4410)
      t.eq(g.test:size(), 12630)
      for _, ds in ipairs({g.train, g.valid, g.test}) do
         t.eq(tostring(ds.x:size()), ('[%dx32x32x3]'):format(ds:size()))
         t.eq(ds.y:min(), 0)
         t.eq(ds.y:max(), 42)
         -- the course's original files carry coords and sizes too; copies with only features and labels exist
         if ds.extra.coords then
            t.eq(tostring(ds.coords:size()), ('[%dx4]'):format(ds:size()))
            t.eq(tostring(ds.sizes:size()), ('[%dx2]'):format(ds:size()))
            t.truthy(ds.sizes:min() > 0)
         end
      end
      local c = g.train:counts()
      t.eq(c[0], 180)
      t.eq(c[2], 2010)
      t.eq(c[33], 599)
      t.eq(g.classNames[14], 'Stop')
      t.eq(g.classNames[42], 'End of no passing by vehicles over 3.5 metric tons')
   end)
end
