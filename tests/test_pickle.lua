-- The pickle reader on fixtures written by scripts/make_pickle_fixtures.py: every protocol 2-5, every
-- dtype, numpy 2.x paths, channels first; refusal of code; truncation at every length; random corruption.
return function(t)
   local dir = t.dir .. '/fixtures/pickles'
   local expected = ts.json.decode(t.readfile(dir .. '/expected.json'))
   local names = {}
   for name in pairs(expected) do names[#names + 1] = name end
   table.sort(names)

   t.test('every protocol, dtype and layout reads back exactly', function()
      t.truthy(#names >= 22, 'fixtures missing')
      for _, name in ipairs(names) do
         local d = ts.data.readPickle(dir .. '/' .. name)
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
      end
   end)

   t.test('channels-first pickles become the same channels-last dataset', function()
      local d = ts.data.readPickle(dir .. '/p3_uint8_channels_first.pickle')
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
         if not pcall(ts.data.readPickle, cut) then refused = refused + 1 end
      end
      t.truthy(refused > 100, 'corruptions should mostly be detected, got ' .. refused)
   end)

   t.test('label_names.csv: ids to names, quoted commas, bad files named', function()
      local d = t.tmpdir()
      t.writefile(d .. '/names.csv', 'ClassId,SignName\n0,"Speed limit (20km/h)"\n1,"No passing, trucks"\r\n')
      local names = ts.data.readLabelNames(d .. '/names.csv')
      t.eq(names[0], 'Speed limit (20km/h)')
      t.eq(names[1], 'No passing, trucks')
      t.writefile(d .. '/bad.csv', 'id,name\n0,x\n')
      t.raises(function() ts.data.readLabelNames(d .. '/bad.csv') end, 'bad.csv: expected the header ClassId,SignName')
   end)

   t.test('ts.data.gtsrb says which file is missing and where it looked', function()
      local d = t.tmpdir()
      local err = t.raises(function() ts.data.gtsrb(d) end, 'train.pickle not found in ' .. d)
      t.truthy(err:find('TSHOST_DATA', 1, true), err)
   end)

   t.test('the real GTSRB files: counts, shapes, label ranges, names', function()
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
      end
      local c = g.train:counts()
      t.eq(c[0], 180)
      t.eq(c[2], 2010)
      t.eq(c[33], 599)
      t.eq(g.classNames[14], 'Stop')
      t.eq(g.classNames[42], 'End of no passing by vehicles over 3.5 metric tons')
   end)
end
