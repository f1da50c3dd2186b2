-- The release made by `make dist` (make test makes it first): unpacked into an empty folder, run from
-- elsewhere with the build tree out of reach and no library path, it starts, says what it runs on, runs a
-- script and passes CPU tests; without CUDA's libraries the launcher runs the CPU build and says why.
return function(t)
   local function tarball()
      local p = io.popen('ls -t ' .. ts.root .. '/dist/tshost-*-linux-x86_64.tar.gz 2>/dev/null')
      local path = p:read('*l')
      p:close()
      return path
   end

   t.test('make dist: the unpacked release runs --doctor, a script and the CPU tests with nothing installed', function()
      local tar = tarball()
      if not tar then t.skip('no release in dist/ (make dist makes it; make test runs it first)') end
      local dir = t.tmpdir()
      local rc, out = t.sh(('tar -C %s -xzf %s && ls %s'):format(dir, tar, dir))
      t.eq(rc, 0, out)
      local root = dir .. '/' .. out:match('^(%S+)')
      -- a clean environment: no library path, no TSHOST_*, run from / so nothing is found by accident (only
      -- OPENBLAS_CORETYPE is kept where it is set: some processors need it with older OpenBLAS builds)
      local coretype = os.getenv('OPENBLAS_CORETYPE')
      local clean = 'cd / && env -i PATH=/usr/bin:/bin HOME=' .. dir .. ' ' ..
                    (coretype and ('OPENBLAS_CORETYPE=' .. coretype .. ' ') or '')
      rc, out = t.sh(clean .. root .. '/tshost --doctor')
      t.eq(rc, 0, out)
      t.truthy(out:find('bindings: ' .. root .. '/bindings, ' .. root .. '/host/ts.h found', 1, true), out)
      t.truthy(out:find(root .. '/bin/../lib/libluajit', 1, true), 'LuaJIT comes from the release:\n' .. out)
      t.truthy(out:find('TSHOST_LIBRARIES=', 1, true), out)
      rc, out = t.sh(clean .. root .. "/tshost -e 'print(ts.nn.Linear(3, 2):forward(ts.ones(1, 3)):size(2))'")
      t.eq(rc, 0, out)
      t.eq(out, '2\n')
      rc, out = t.sh(clean .. root .. '/tshost ' .. root .. '/tests/run.lua test_tensor')
      t.eq(rc, 0, out)
      t.truthy(out:find(' 0 failed', 1, true), out)
      -- CUDA's libraries out of reach: the CPU build, and the reason in TSHOST_LIBRARIES
      rc, out = t.sh(clean .. 'TSHOST_CUDA_LIBS=/nonexistent ' .. root .. '/tshost --doctor')
      t.eq(rc, 0, out)
      t.truthy(out:find('build: CPU only', 1, true) and
               out:find('TSHOST_LIBRARIES=CPU build: not found: libcudart.so.13 libcublas.so.13 libcudnn.so.9', 1, true), out)
      -- each build also runs by itself from bin/, finding the bindings one folder up
      rc, out = t.sh(clean .. root .. "/bin/tshost-cpu -e 'print(ts.zeros(3):sum())'")
      t.eq(rc, 0, out)
      t.eq(out, '0\n')
   end)
end
