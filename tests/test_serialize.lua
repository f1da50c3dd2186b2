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

   t.test('a mismatched checkpoint names every missing, unexpected and mis-shaped tensor', function()
      local dir = t.tmpdir()
      ts.save(dir .. '/x.safetensors', {['0.weight'] = ts.zeros(2, 2), extra = ts.zeros(1)})
      local net = ts.nn.Sequential(ts.nn.Linear(3, 2))
      local err = t.raises(function() ts.load(dir .. '/x.safetensors', net) end, 'does not fit the model')
      t.truthy(err:find('missing 0.bias', 1, true), err)
      t.truthy(err:find('unexpected extra', 1, true), err)
      t.truthy(err:find('0.weight has shape [2x2] in the file, [2x3] in the model', 1, true), err)
      ts.load(dir .. '/x.safetensors', ts.nn.Sequential(ts.nn.Linear(2, 2, {bias = false})), {strict = false})
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
         t.raises(function() ts.save(dir .. '/no/such/dir/x.safetensors', {w = ts.zeros(3)}) end, 'cannot create')
      else
         t.raises(function() ts.save(path, {w = ts.zeros(3)}) end, 'cannot create')
      end
      os.execute('chmod 755 ' .. dir)
      t.near(ts.load(path).w, ts.ones(3))
      -- no temporary file is left behind
      local rc, out = t.sh('ls ' .. dir)
      t.eq(out, 'keep.safetensors\n')
   end)
end
