-- The tshost command line and the REPL, driven as a user would: through a shell and a pseudo-terminal.
local ffi = require('ffi')

ffi.cdef[[
int forkpty(int *amaster, char *name, void *termp, void *winp);
int execle(const char *path, const char *arg, ...);
int execl(const char *path, const char *arg, ...);
int setenv(const char *name, const char *value, int overwrite);
long read(int fd, void *buf, size_t count);
long write(int fd, const void *buf, size_t count);
int close(int fd);
struct pollfd_ts { int fd; short events; short revents; };
int poll(struct pollfd_ts *fds, unsigned long nfds, int timeout);
int waitpid(int pid, int *status, int options);
int kill(int pid, int sig);
void _exit(int status);
]]

-- A REPL session on a pseudo-terminal: send(text) types, expect(plain) reads until the text appears.
local function pty_session(t, exe, home)
   local master = ffi.new('int[1]')
   local pid = ffi.C.forkpty(master, nil, nil, nil)
   if pid < 0 then t.skip('forkpty failed') end
   if pid == 0 then
      ffi.C.setenv('HOME', home, 1)
      ffi.C.setenv('TERM', 'dumb', 1)
      ffi.C.setenv('INPUTRC', '/dev/null', 1)
      ffi.C.execl(exe, exe, ffi.cast('const char *', nil))
      ffi.C._exit(127)
   end
   local fd = master[0]
   local s = {buffer = ''}
   local buf = ffi.new('char[4096]')
   local pfd = ffi.new('struct pollfd_ts[1]')
   function s.send(text) ffi.C.write(fd, text, #text) end
   function s.expect(plain, timeout_s)
      local deadline = os.time() + (timeout_s or 10)
      while true do
         local at = s.buffer:find(plain, 1, true)
         if at then
            local seen = s.buffer:sub(1, at + #plain - 1)
            s.buffer = s.buffer:sub(at + #plain)
            return seen
         end
         if os.time() > deadline then
            error(('REPL: expected %q, screen so far: %q'):format(plain, s.buffer), 2)
         end
         pfd[0].fd, pfd[0].events = fd, 1
         if ffi.C.poll(pfd, 1, 200) > 0 then
            local n = ffi.C.read(fd, buf, 4096)
            if n <= 0 then error(('REPL ended early, screen: %q'):format(s.buffer), 2) end
            s.buffer = s.buffer .. ffi.string(buf, n)
         end
      end
   end
   function s.close()
      ffi.C.close(fd)
      local status = ffi.new('int[1]')
      for _ = 1, 50 do
         if ffi.C.waitpid(pid, status, 1) == pid then return end
         os.execute('sleep 0.1')
      end
      ffi.C.kill(pid, 9)
      ffi.C.waitpid(pid, status, 0)
   end
   return s
end

return function(t)
   local exe = t.tshost

   t.test('--help explains scripts, -e, the REPL and threads', function()
      local rc, out = t.sh(exe .. ' --help')
      t.eq(rc, 0)
      for _, word in ipairs({'-e CODE', '--threads N', 'TSHOST_THREADS', 'REPL', 'key=value', 'ts.args'}) do
         t.truthy(out:find(word, 1, true), 'help lacks ' .. word)
      end
   end)

   t.test('--doctor says what runs where: build, bindings, processor and kernels, GPU and why not, libraries', function()
      local rc, out = t.sh(exe .. ' --doctor')
      t.eq(rc, 0, out)
      for _, want in ipairs({'build: ', 'bindings: ' .. ts.root .. '/bindings, ' .. ts.root .. '/host/ts.h found',
                             'threads: ', 'matrix products: ', 'cuda: ', 'libluajit', 'libopenblas', 'TSHOST_DEVICE='}) do
         t.truthy(out:find(want, 1, true), 'doctor lacks ' .. want .. ':\n' .. out)
      end
      if ts.cuda.isBuilt() and not ts.cuda.isAvailable() then
         -- the reason the GPU did not start is the driver's or the runtime's own, not a generic one
         t.truthy(out:find('cuda: not available: ', 1, true) and not out:find('no CUDA device answered', 1, true), out)
      end
      -- TSHOST_CPU forces a matrix-product path; one this processor cannot run, or an unknown one, is refused
      local doctor
      rc, doctor = t.sh('TSHOST_CPU=avx2 ' .. exe .. ' --doctor')
      t.truthy(rc == 0 and doctor:find("matrix products: the avx2 path (tshost's AVX2 kernel for convolutions, OpenBLAS for " ..
                                       'linear layers, bf16 by the fp32 kernels, forced by TSHOST_CPU)', 1, true), doctor)
      rc, out = t.sh('TSHOST_CPU=sse2 ' .. exe .. " -e 'x = 1'")
      t.truthy(rc == 2 and out:find("TSHOST_CPU: unknown CPU path 'sse2' (generic, avx2, avx512, avx512bf16, amx)", 1, true), out)
      if not doctor:find('AVX-512 yes', 1, true) then
         rc, out = t.sh('TSHOST_CPU=avx512 ' .. exe .. " -e 'x = 1'")
         t.truthy(rc == 2 and out:find('the avx512 path needs AVX-512, which this processor lacks', 1, true), out)
      end
      if not doctor:find('AMX-BF16 yes', 1, true) then
         rc, out = t.sh('TSHOST_CPU=amx ' .. exe .. " -e 'x = 1'")
         t.truthy(rc == 2 and out:find('the amx path needs AMX-BF16', 1, true), out)
      end
      -- with the bindings out of reach it says where it looked
      if ts.cuda.isBuilt() and not ts.cuda.isAvailable() then
         rc, out = t.sh(exe .. " --device cuda -e 'x = 1'")
         t.truthy(rc == 2 and out:find('--device cuda: ' .. ts.cuda.unavailableReason(), 1, true), out)
      end
      rc, out = t.sh('TSHOST_ROOT=/nonexistent ' .. exe .. ' --doctor')
      t.truthy(out:find('/nonexistent/host/ts.h MISSING', 1, true), out)
   end)

   t.test('scripts get key=value options typed by ts.options, and errors exit non-zero', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/s.lua', [[
local o = ts.options{lr = 0.1, name = 'x', flag = false}
print(o.lr * 2, o.name, o.flag, arg[1], ts.getThreads())]])
      local rc, out = t.sh(exe .. ' --threads 1 ' .. dir .. '/s.lua lr=0.25 name=run7 flag=true')
      t.eq(rc, 0, out)
      t.eq(out, '0.5\trun7\ttrue\tlr=0.25\t1\n')
      rc, out = t.sh(exe .. ' ' .. dir .. '/s.lua lrr=1')
      t.eq(rc, 1)
      -- one line naming the script: a position in it drew a traceback into the library
      t.truthy(out:find('s.lua: unknown option lrr=1 (known: flag, lr, name)\n', 1, true), out)
      t.truthy(not out:find('traceback', 1, true), out)
      -- what looks like an option but is no key=value would be dropped and the script run with its defaults
      for _, a in ipairs({'--lr=1', '=5'}) do
         rc, out = t.sh(exe .. ' ' .. dir .. '/s.lua ' .. a)
         t.truthy(rc == 1 and out:find('option ' .. a .. ': options are key=value', 1, true), out)
      end
      rc, out = t.sh(exe .. ' --threads 2000 -e 1')
      t.truthy(rc == 2 and out:find('from 1 to 1024', 1, true), out)
      rc, out = t.sh('TSHOST_THREADS=2 ' .. exe .. " -e 'print(ts.getThreads()); error(\"boom\")'")
      t.eq(rc, 1)
      t.truthy(out:find('2\n', 1, true), out)
      t.truthy(out:find('boom', 1, true), out)
      -- options and environment values that are not what they should be: exit 2, naming option and value
      for cmd, message in pairs({
         [' --threads 0 -e 1'] = "--threads: expected a whole number of threads from 1 to 1024, got '0'",
         [' --threads 1.5 -e 1'] = "--threads: expected a whole number of threads from 1 to 1024, got '1.5'",
         [' --threads 2abc -e 1'] = "got '2abc'",
         [' --threads abc -e 1'] = "got 'abc'",
         [' --threads=-3 -e 1'] = "got '-3'",
         [" --threads ' 2' -e 1"] = "got ' 2'",
         [' --threads=+2 -e 1'] = "got '+2'",
         [' --threads= -e 1'] = "--threads: expected a whole number of threads from 1 to 1024, got ''",
         [' --device= -e 1'] = "--device: expected cpu or cuda, got ''",
         [' --threads'] = '--threads needs a value',
         [' -e 1 --device'] = '--device needs a value',
         [' --device gpu -e 1'] = "--device: expected cpu or cuda, got 'gpu'",
         [' -e'] = '-e needs a value',
      }) do
         rc, out = t.sh(exe .. cmd)
         t.eq(rc, 2, cmd)
         t.truthy(out:find(message, 1, true), cmd .. ': ' .. out)
      end
      rc, out = t.sh('TSHOST_THREADS=2x ' .. exe .. ' -e 1')
      t.eq(rc, 2)
      t.truthy(out:find("TSHOST_THREADS: expected a whole number of threads from 1 to 1024, got '2x'", 1, true), out)
      rc, out = t.sh('TSHOST_DEVICE=gpu ' .. exe .. ' -e 1')
      t.eq(rc, 2)
      t.truthy(out:find("TSHOST_DEVICE: expected cpu or cuda, got 'gpu'", 1, true), out)
      -- an empty variable counts as unset
      rc, out = t.sh('TSHOST_THREADS= TSHOST_DEVICE= ' .. exe .. " -e 'print(ts.getThreads() >= 1)'")
      t.eq(rc, 0, out)
      t.eq(out, 'true\n')
      rc, out = t.sh(exe .. ' ' .. dir .. '/missing.lua')
      t.eq(rc, 1)
      t.truthy(out:find('missing.lua', 1, true), out)
   end)

   t.test('piped input runs through the REPL evaluator without a terminal; a failed chunk makes the exit status 1', function()
      local rc, out = t.sh("printf 'x = 20\\nx + 1\\nfor i = 1, 2 do\\nprint(i)\\nend\\nnosuch()\\nprint(\"after\")\\n' | " .. exe)
      t.eq(rc, 1, out)
      t.truthy(out:find('21\n1\n2\n', 1, true), out)
      t.truthy(out:find("error: ", 1, true), out)
      t.truthy(out:find('after', 1, true), out)
      -- a result that fails to print is the chunk's error, not the REPL's
      local dir = t.tmpdir()
      t.writefile(dir .. '/in.lua', "setmetatable({}, {__tostring = function() error('no tostring') end})\nprint('next')\n")
      rc, out = t.sh(exe .. ' < ' .. dir .. '/in.lua')
      t.eq(rc, 1, out)
      t.truthy(out:find('error: stdin:1: no tostring', 1, true) and out:find('next\n', 1, true), out)
      t.truthy(not out:find('internal error', 1, true), out)
      -- input that ends inside a statement: its error is said, not the statement dropped without a word
      rc, out = t.sh("printf 'for i = 1, 2 do\\nprint(i)\\n' | " .. exe)
      t.truthy(rc == 1 and out:find("error: stdin:2: 'end' expected", 1, true), out)
      rc, out = t.sh("printf 'x = 5\\nprint(x)\\n' | " .. exe)
      t.truthy(rc == 0 and out == '5\n', out)
      -- an error typed as an expression is the chunk's, at its line (it was a tail call, reported at repl.lua's)
      rc, out = t.sh("printf 'error(\"e\")\\n1, 2\\n' | " .. exe)
      t.truthy(rc == 1 and out:find('error: stdin:1: e\n', 1, true) and out:find('1\t2\n', 1, true), out)
   end)

   t.test('piped input: lines of any length', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/long.lua', ('s = "%s"\nprint(#s)\n'):format(('x'):rep(200000)))
      local rc, out = t.sh(exe .. ' < ' .. dir .. '/long.lua')
      t.eq(rc, 0, out:sub(1, 200))
      t.eq(out, '200000\n')
   end)

   t.test('Ctrl-C in the REPL interrupts the running chunk, keeps the state, and the REPL goes on', function()
      local dir = t.tmpdir()
      -- the REPL reads a FIFO, a Ctrl-C (SIGINT) comes while a loop runs, then more lines follow
      local script = ([[
mkfifo %s/in
%s < %s/in > %s/out 2>&1 & pid=$!
exec 7> %s/in
echo 'x = 41' >&7
echo 'while true do end' >&7
sleep 0.5; kill -INT $pid; sleep 0.3
echo 'local n = 0; while true do n = n + 1; local z = ts.zeros(2) end' >&7
sleep 0.5; kill -INT $pid; sleep 0.3
echo 'y = 1 +' >&7
sleep 0.5; kill -INT $pid; sleep 0.3
echo "print('alive', x + 1, y)" >&7
exec 7>&-
wait $pid; echo "rc=$?" >> %s/out]]):format(dir, exe, dir, dir, dir, dir)
      t.writefile(dir .. '/drive.sh', script)
      local rc = t.sh('timeout 30 bash ' .. dir .. '/drive.sh')
      local out = t.readfile(dir .. '/out')
      t.eq(rc, 0, out)
      local _, interrupts = out:gsub('error: interrupted %(Ctrl%-C%)', '')
      t.eq(interrupts, 2, out)
      -- the third Ctrl-C came at the prompt: the unfinished statement y = 1 + was dropped
      t.truthy(out:find('alive\t42\tnil\n', 1, true), out)
      -- input that is no terminal ends with status 1 when a chunk failed, and an interrupted one did
      t.truthy(out:find('rc=1', 1, true), out)
   end)

   t.test('Ctrl-C while training is deferred: the first is counted, the second stops the process at once', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/s.lua', [[
local ffi = require('ffi')
ffi.cdef('int getpid(void); int kill(int pid, int sig);')
local C = require('ts.ffi').C
C.ts_interrupt_defer(1)
ffi.C.kill(ffi.C.getpid(), 2)
print('pending', C.ts_interrupt_pending())
C.ts_interrupt_defer(0)
print('after defer(0)', C.ts_interrupt_pending())
C.ts_interrupt_defer(1)
ffi.C.kill(ffi.C.getpid(), 2)
ffi.C.kill(ffi.C.getpid(), 2)
print('never printed')]])
      local rc, out = t.sh('timeout 20 ' .. exe .. ' ' .. dir .. '/s.lua')
      t.eq(rc, 130, out)
      t.truthy(out:find('pending\t1\nafter defer(0)\t0\n', 1, true), out)
      t.truthy(out:find('finishing this step and writing a checkpoint (Ctrl-C again to stop at once)', 1, true), out)
      t.truthy(out:find('interrupted again: stopping now', 1, true) and not out:find('never printed', 1, true), out)
      -- without deferral a script ends on Ctrl-C as any program does
      t.writefile(dir .. '/plain.lua', "local ffi = require('ffi') ffi.cdef('int getpid(void); int kill(int, int);') " ..
                  "ffi.C.kill(ffi.C.getpid(), 2) print('never printed')")
      rc, out = t.sh('timeout 20 ' .. exe .. ' ' .. dir .. '/plain.lua')
      t.eq(rc, 130, out)
      t.truthy(not out:find('never printed', 1, true), out)
   end)

   t.test('Ctrl-C in the REPL while deferred is counted, not raised; after defer(0) it interrupts again', function()
      -- each chunk sends itself the SIGINT, so where it lands is certain
      local dir = t.tmpdir()
      t.writefile(dir .. '/in.lua', [[
ffi = require('ffi'); ffi.cdef('int getpid(void); int kill(int, int);'); C = require('ts.ffi').C
C.ts_interrupt_defer(1); ffi.C.kill(ffi.C.getpid(), 2); for i = 1, 100 do end; print('deferred', C.ts_interrupt_pending()); C.ts_interrupt_defer(0)
ffi.C.kill(ffi.C.getpid(), 2); while true do end
print('alive')
C.ts_interrupt_defer(1); ffi.C.kill(ffi.C.getpid(), 2); ffi.C.kill(ffi.C.getpid(), 2); print('never printed')
]])
      local rc, out = t.sh('timeout 20 ' .. exe .. ' < ' .. dir .. '/in.lua')
      t.eq(rc, 130, out)
      t.truthy(out:find('deferred\t1\n', 1, true), out)
      t.truthy(out:find('finishing this step and writing a checkpoint', 1, true), out)
      local _, interrupts = out:gsub('error: interrupted %(Ctrl%-C%)', '')
      t.eq(interrupts, 1, out)
      t.truthy(out:find('alive\n', 1, true) and not out:find('never printed', 1, true), out)
   end)

   t.test('Ctrl-C at the terminal prompt drops the line and an unfinished statement; in a loop it interrupts it', function()
      local s = pty_session(t, exe, t.tmpdir())
      s.expect('> ')
      s.send('x = 1 +\n')
      s.expect('>> ')
      s.send('\003')   -- Ctrl-C: the unfinished statement is dropped
      s.expect('> ')
      s.send("print('after', x)\n")
      s.expect('after\tnil')
      s.send('while true do end\n')
      os.execute('sleep 0.3')
      s.send('\003')
      s.expect('interrupted (Ctrl-C)')
      s.send("print('again')\n")
      s.expect('again\r\n')
      s.send('\004')
      s.close()
   end)

   t.test('REPL on a terminal: results, tensor summaries, errors, multi-line input, completion, history', function()
      local home = t.tmpdir()
      local s = pty_session(t, exe, home)
      s.expect('> ')
      s.send('1 + 1\n')
      s.expect('2\r\n')
      s.send('x = ts.zeros(300, 300)\n')
      s.expect('> ')
      s.send('x\n')
      s.expect('ts.Tensor float32 [300x300]  min 0  max 0  mean 0')
      s.send('x:view(7)\n')
      s.expect('error: ')
      s.expect('cannot view [300,300]')
      s.send('for i = 1, 3 do\n')
      s.expect('>> ')
      s.send('io.write(i * 10, " ")\n')
      s.expect('>> ')
      s.send('end\n')
      s.expect('10 20 30')
      s.send('ts.manualSe\t(3)\n')
      s.expect('ts.manualSeed(3)')
      s.send('ts.nn.BatchN\t')
      s.expect('orm')   -- completed to the common prefix ts.nn.BatchNorm
      s.send('\t\t')
      s.expect('BatchNorm1d')
      s.send('\021')   -- Ctrl-U clears the line
      s.send('print("still here")\n')
      s.expect('still here")')   -- the terminal's echo of the typed line
      s.expect('still here\r\n')  -- the output
      s.send('\004')   -- Ctrl-D leaves
      s.close()
      local hist = t.readfile(home .. '/.tshost_history')
      t.truthy(hist:find('x = ts.zeros(300, 300)', 1, true), hist)
      t.truthy(hist:find('for i = 1, 3 do io.write(i * 10, " ") end', 1, true), hist)
      -- the history comes back in the next session: Up arrow recalls the last entry
      s = pty_session(t, exe, home)
      s.expect('> ')
      s.send('\027[A\n')
      s.expect('print("still here")')
      s.expect('still here\r\n')
      s.send('\004')
      s.close()
   end)

   t.test('an error raised for the user is shown alone, a bug\'s with the stack it came from', function()
      local rc, out = t.sh(t.tshost .. [[ -e "error('run/final.json is missing', 0)"]])
      t.truthy(rc == 1 and out == 'tshost: run/final.json is missing\n', out)
      rc, out = t.sh(t.tshost .. [[ -e "local x; return x.y"]])
      t.truthy(rc == 1 and out:find("attempt to index local 'x'", 1, true) and out:find('stack traceback', 1, true), out)
      rc, out = t.sh('TSHOST_TRACEBACK=1 ' .. t.tshost .. [[ -e "error('plain', 0)"]])
      t.truthy(out:find('stack traceback', 1, true), out)
      rc, out = t.sh(t.tshost .. [[ -e "error(setmetatable({}, {__tostring = function() return 'an object' end}))"]])
      t.truthy(rc == 1 and out:find('tshost: an object', 1, true), out)
      -- the detector's counts are checked before anything is made or removed (inf scenes ran out of memory)
      rc, out = t.sh(('%s %s/scripts/detector.lua %s/none fit_only=true fit_scenes=1e9'):format(t.tshost, ts.root, t.tmpdir()))
      t.truthy(rc == 1 and out:find('option fit_scenes must be a whole number from 2 to 100000, got 1000000000', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/detector.lua %s scenes=2.5'):format(t.tshost, ts.root, t.tmpdir()))
      t.truthy(rc == 1 and out:find('option scenes must be a whole number from 10 to 1000000, got 2.5', 1, true), out)
   end)

   -- a finished run made by hand: final.json, test_predictions.safetensors of `n` test images, a tiny refcnn's
   -- config.json and model.safetensors; generated signs of the given seed
   local function fake_run(t, run, n, seed)
      ts.files.mkdirs(run)
      local target = ts.zeros({n}, 'int64')
      for i = 1, n do target[i] = (i * 7 + seed) % 43 end
      -- (every prediction right, as its record says)
      t.writefile(run .. '/final.json', ts.json.encode{test_accuracy = 1, test_accuracy_ci95 = {0.8, 1},
         test_macro_f1 = 1, test_images = n,
         synthetic = {train = 60, valid = 10, test = n, seed = seed, classes = 43, size = 32}})
      ts.save(run .. '/test_predictions.safetensors', {pred = target:clone(), target = target,
                                                      confidence = ts.ones(n)})
      local spec = {name = 'refcnn', widths = {4, 8, 8}, hidden = 8, classes = 43}
      t.writefile(run .. '/config.json', ts.json.encode{model = spec, seed = seed,
         preprocess = {mean = {0.5, 0.5, 0.5}, std = {0.25, 0.25, 0.25}}})
      ts.save(run .. '/model.safetensors', ts.models.refcnn(spec))
   end

   t.test('compare.lua: a run given twice, predictions that are not the record\'s test set, --html twice are refused', function()
      local dir = t.tmpdir()
      fake_run(t, dir .. '/a', 20, 1)
      fake_run(t, dir .. '/b', 20, 1)
      local function compare(args) return t.sh(('%s %s/scripts/compare.lua %s'):format(t.tshost, ts.root, args)) end
      local rc, out = compare(('%s/a %s/b'):format(dir, dir))
      t.truthy(rc == 0 and out:find('b=   0 c=   0 p=1', 1, true), out)
      -- the same run twice, under any spelling, was compared with itself: "not distinguishable"
      for _, again in ipairs({'a', 'a/', 'b/../a'}) do
         rc, out = compare(('%s/a %s/%s'):format(dir, dir, again))
         t.truthy(rc == 1 and out:find(('compare.lua: %s/a and %s/%s are the same run: give each run once'):format(dir, dir, again),
                                       1, true) and not out:find('p=1', 1, true), out)
      end
      -- 5 predictions in a run whose record says 20 test images: shown as that run's test set
      ts.save(dir .. '/b/test_predictions.safetensors', {pred = ts.zeros({5}, 'int64'), target = ts.zeros({5}, 'int64'),
                                                         confidence = ts.ones(5)})
      rc, out = compare(('%s/a %s/b'):format(dir, dir))
      t.truthy(rc == 1 and out:find(dir .. '/b/test_predictions.safetensors: 5 predictions for 20 test images', 1, true), out)
      -- another run's predictions of the same test set (a folder reused, a file copied): paired with this record
      local other = ts.zeros({20}, 'int64')
      for i = 1, 20 do other[i] = (i * 7 + 1) % 43 end
      ts.save(dir .. '/b/test_predictions.safetensors', {pred = ts.zeros({20}, 'int64'), target = other, confidence = ts.ones(20)})
      rc, out = compare(('%s/a %s/b'):format(dir, dir))
      t.truthy(rc == 1 and out:find('right on 1 of 20 test images (5.00%), and ' .. dir .. '/b/final.json says test_accuracy 100.00%',
                                    1, true), out)
      -- a page into a folder that is not there failed after the table was printed
      rc, out = compare(('%s/a %s/b --html %s/none/page.html'):format(dir, dir, dir))
      t.truthy(rc == 1 and out:find('--html ' .. dir .. '/none/page.html: its folder does not exist', 1, true) and
               not out:find('%', 1, true), out)
      -- a second --html replaced the first without a word
      rc, out = compare(('%s/a --html %s/x.html --html %s/y.html'):format(dir, dir, dir))
      t.truthy(rc == 2 and out:find('usage: tshost scripts/compare.lua', 1, true), out)
      -- runs on different test sets: their page says the pair was not compared (it left it out)
      fake_run(t, dir .. '/c', 20, 2)
      rc, out = compare(('%s/a %s/c --html %s/z.html'):format(dir, dir, dir))
      t.truthy(rc == 0 and out:find('different test sets, not compared', 1, true), out)
      t.truthy(t.readfile(dir .. '/z.html'):find('different test sets, not compared', 1, true), 'the page says so')
      -- the same labels in the same order, but other images by the records' fingerprints (final.json's data.test, a
      -- string, was read as a table, so the check never ran and the pair was compared image by image)
      fake_run(t, dir .. '/d', 20, 1)
      for _, r in ipairs({{'a', '11111111'}, {'d', '22222222'}}) do
         local f = ts.json.readFile(dir .. '/' .. r[1] .. '/final.json')
         f.data = {test = '20 images 32x32x3, crc32c ' .. r[2] .. ', labels crc32c 00000000'}
         t.writefile(dir .. '/' .. r[1] .. '/final.json', ts.json.encode(f))
      end
      rc, out = compare(('%s/a %s/d'):format(dir, dir))
      t.truthy(rc == 0 and out:find('different test sets, not compared', 1, true) and not out:find('p=1', 1, true), out)
   end)

   t.test('report.lua and detector.lua: options are no runs, one run each for the detector, its classifier loaded first', function()
      local dir = t.tmpdir()
      -- --help was read as a run ("--help/config.json not found")
      local rc, out = t.sh(('%s %s/scripts/report.lua --help'):format(t.tshost, ts.root))
      t.truthy(rc == 2 and out:find('usage: tshost scripts/report.lua RUN', 1, true), out)
      fake_run(t, dir .. '/a', 20, 1)
      fake_run(t, dir .. '/b', 20, 1)
      -- a second run was dropped, and the first one's detector trained alone
      rc, out = t.sh(('%s %s/scripts/detector.lua %s/a %s/b scenes=10 epochs=1'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 1 and out:find(('detector.lua: %s/b is no option: options are key=value'):format(dir), 1, true), out)
      t.truthy(not ts.files.exists(dir .. '/a/detector'), 'no detector made')
      -- the classifier's weights damaged: refused before a detector is trained (and the one there replaced), in one line
      local weights = ts.load(dir .. '/a/model.safetensors')
      weights['0.weight'][1][1][1][1] = 0 / 0
      ts.save(dir .. '/a/model.safetensors', weights)
      rc, out = t.sh(('%s %s/scripts/detector.lua %s/a scenes=10 epochs=1 fit_scenes=2'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 1 and out:find(dir .. '/a/model.safetensors: 0.weight holds NaN or infinite values', 1, true) and
               not out:find('stack traceback', 1, true), out)
      t.truthy(not ts.files.exists(dir .. '/a/detector'), 'a detector was trained for a run whose classifier does not load')
   end)

   t.test('compare.lua: a record whose numbers are no shares, and an unknown option, are refused', function()
      local dir = t.tmpdir()
      ts.files.mkdirs(dir .. '/r')
      local function record(acc, lo, hi, f1)
         t.writefile(dir .. '/r/final.json', ts.json.encode({test_accuracy = acc, test_accuracy_ci95 = {lo, hi},
                                                           test_macro_f1 = f1}))
         return t.sh(('%s %s/scripts/compare.lua %s/r'):format(t.tshost, ts.root, dir))
      end
      -- 7 was shown as 700.00% and an interval from 90% to 10% as it was, each ranked by its number
      local rc, out = record(7, 0.5, 0.9, 0.5)
      t.truthy(rc == 1 and out:find(dir .. '/r/final.json: test_accuracy 7, test_accuracy_ci95 {0.5, 0.9}, test_macro_f1 0.5: ' ..
                                    'not shares from 0 to 1', 1, true), out)
      rc, out = record(0.5, 0.9, 0.1, 0.5)
      t.truthy(rc == 1 and out:find('not shares from 0 to 1 (the interval low to high)', 1, true), out)
      rc, out = record(0.5, 0.4, 0.6, -1)
      t.truthy(rc == 1 and out:find('test_macro_f1 -1: not shares', 1, true), out)
      -- --htlm out.html was read as a run named --htlm
      rc, out = t.sh(('%s %s/scripts/compare.lua %s/r --htlm %s/c.html'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 2 and out:find('usage: tshost scripts/compare.lua', 1, true), out)
   end)
   t.test('export.lua writes an .onnx only: never over the run\'s own model, nor a file named for the missing output', function()
      local dir = t.tmpdir()
      fake_run(t, dir .. '/r', 4, 1)
      local model = t.readfile(dir .. '/r/model.safetensors')
      -- the run's weights were replaced by the ONNX file, and `RUN --no-preprocess` wrote ./--no-preprocess
      local rc, out = t.sh(('%s %s/scripts/export.lua %s/r %s/r/model.safetensors'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 2 and out:find('r/model.safetensors: the output must be named .onnx', 1, true), out)
      t.truthy(t.readfile(dir .. '/r/model.safetensors') == model, "the run's model is untouched")
      rc, out = t.sh(('cd %s && %s %s/scripts/export.lua r --no-preprocess'):format(dir, t.tshost, ts.root))
      t.truthy(rc == 2 and out:find('--no-preprocess: the output must be named .onnx', 1, true), out)
      t.eq(ts.files.exists(dir .. '/--no-preprocess'), false)
      rc, out = t.sh(('%s %s/scripts/export.lua %s/r %s/r/model.ONNX'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 0 and ts.files.exists(dir .. '/r/model.ONNX'), out)
      -- a stream is no file to protect: the model to standard output, as before the check
      rc, out = t.sh(('%s %s/scripts/export.lua %s/r /dev/stdout | cat > %s/piped.onnx'):format(t.tshost, ts.root, dir, dir))
      t.truthy(rc == 0 and t.readfile(dir .. '/piped.onnx') == t.readfile(dir .. '/r/model.ONNX'), out)
   end)

   t.test('a long LUA_PATH is kept whole, and a --doctor report longer than its buffer says it was cut', function()
      -- package.path was made in a fixed buffer of 3 x PATH_MAX, which cut a longer LUA_PATH without a word
      local long = string.rep('/x', 7000) .. '/?.lua;/y/?.lua;;'
      local rc, out = t.sh(("LUA_PATH='%s' %s -e \"print(package.path:find('/y/?.lua;', 1, true) ~= nil)\""):format(long, t.tshost))
      t.truthy(rc == 0 and out:find('true', 1, true), out)
      local dirs = {}
      for i = 1, 1500 do dirs[i] = ('/nonexistent/x%05d'):format(i) end
      rc, out = t.sh(("LD_LIBRARY_PATH='%s' %s --doctor"):format(table.concat(dirs, ':'), t.tshost))
      t.truthy(rc == 0 and out:find('(cut: the report is longer than its buffer)', 1, true), out:sub(-300))
   end)

   t.test('output that could not be written fails the run; piped NUL bytes, a BOM, --doctor with work, error objects', function()
      -- a full disk or a closed stdout: exit status 0 for output that was lost
      local rc, out = t.sh(exe .. " -e 'print(1)' > /dev/full")
      t.truthy(rc == 1 and out:find('tshost: writing the output (stdout) failed: ', 1, true), out)
      rc, out = t.sh(exe .. " -e 'io.write(1) os.exit(0)' > /dev/full")
      t.truthy(rc == 1 and out:find('writing the output (stdout) failed', 1, true), out)
      rc, out = t.sh(exe .. " -e 'print(1)' >&-")
      t.truthy(rc == 1 and out:find('writing the output (stdout) failed', 1, true), out)
      rc, out = t.sh(exe .. " -e 'x = 1' >&-")   -- nothing written: no failure
      t.truthy(rc == 0 and out == '', out)
      rc, out = t.sh(exe .. ' --help > /dev/full')
      t.eq(rc, 1, out)
      -- a NUL byte in piped input cut the line there: the rest was dropped without a word and the status said 0
      local dir = t.tmpdir()
      t.writefile(dir .. '/nul.lua', 'x = 1\0 print("hidden")\nprint(x)\nprint(#"a\0b")\n')
      rc, out = t.sh(exe .. ' < ' .. dir .. '/nul.lua')
      t.truthy(rc == 1 and out:find('error: stdin:1:', 1, true) and not out:find('hidden', 1, true) and
               out:find('nil\n3\n', 1, true), out)
      -- a byte-order mark that begins piped input is dropped, as a script's is
      t.writefile(dir .. '/bom.lua', '\239\187\191print(1)\n')
      rc, out = t.sh(exe .. ' < ' .. dir .. '/bom.lua')
      t.truthy(rc == 0 and out == '1\n', out)
      -- --doctor with a script or -e ran neither, and said 0
      for _, extra in ipairs({" -e 'print(1)'", ' ' .. dir .. '/bom.lua', ' -i'}) do
         rc, out = t.sh(exe .. ' --doctor' .. extra)
         t.truthy(rc == 2 and out:find('--doctor runs alone', 1, true) and not out:find('tshost doctor', 1, true), extra .. ': ' .. out)
      end
      -- the REPL shows errors as the command line does: a user's message alone, a bug's with the stack; an error object
      -- by its __tostring or its type ("error in error handling" when __tostring failed, "table: 0x..." else)
      t.writefile(dir .. '/errors.lua', "error('for the user', 0)\nerror({})\nerror()\n" ..
                  "error(setmetatable({}, {__tostring = function() error('no') end}))\nlocal x; return x.y\n")
      rc, out = t.sh(exe .. ' < ' .. dir .. '/errors.lua')
      t.truthy(rc == 1 and out:find('error: for the user\nerror: (error object is a table value)\n' ..
                                    'error: (error object is a nil value)\nerror: (error object is a table value)\n' ..
                                    "error: stdin:1: attempt to index local 'x' (a nil value)\nstack traceback:", 1, true), out)
      rc, out = t.sh(exe .. " -e 'error({})'")
      t.truthy(rc == 1 and out == 'tshost: (error object is a table value)\n', out)
      -- a script's error object whose __tostring fails, by its type too (it left "error in error handling")
      rc, out = t.sh(exe .. [[ -e "error(setmetatable({}, {__tostring = function() error('no') end}))"]])
      t.truthy(rc == 1 and out == 'tshost: (error object is a table value)\n', out)
   end)

   t.test('ts.options: NaN and infinite numbers, a key given twice, a default no key=value can give are refused', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/o.lua', "local o = ts.options{lr = 0.1, wait = math.huge, sizes = {32}, name = 'x'}\n" ..
                  "print(o.lr, o.wait, o.name)")
      for a, says in pairs({['lr=nan'] = 'option lr: expected a finite number, got "nan"',
                            ['lr=inf'] = 'option lr: expected a finite number, got "inf"',
                            ['lr=-1e400'] = 'option lr: expected a finite number, got "-1e400"',
                            ['wait=nan'] = 'option wait: expected a finite number, got "nan"',
                            ['lr=1 lr=2'] = 'option lr given twice (lr=1 and lr=2): give it once',
                            ['sizes=64'] = 'option sizes: its default is a table, which key=value cannot give'}) do
         local rc, out = t.sh(exe .. ' ' .. dir .. '/o.lua ' .. a)
         t.truthy(rc == 1 and out:find(says, 1, true) and not out:find('traceback', 1, true), a .. ': ' .. out)
      end
      -- strict: a bare word is refused with an example of the script's own options; without it, it stays in arg
      t.writefile(dir .. '/s.lua', "local o = ts.options({lr = 0.1, name = 'x'}, arg[1] ~= 'loose')\nprint(o.lr, arg[1])")
      local rc, out = t.sh(exe .. ' ' .. dir .. '/s.lua images lr=2')
      t.truthy(rc == 1 and out:find('s.lua: images is no option: options are key=value, as lr=0.1', 1, true), out)
      rc, out = t.sh(exe .. ' ' .. dir .. '/s.lua loose lr=2')
      t.truthy(rc == 0 and out == '2\tloose\n', out)
      -- what stays: a default that is itself infinite takes inf, numbers in Lua's forms, a string that looks like one
      local rc, out = t.sh(exe .. ' ' .. dir .. '/o.lua wait=inf lr=0x10 name=1e5')
      t.truthy(rc == 0 and out == '16\tinf\t1e5\n', out)
   end)

   t.test('calibrate.lua and detector.lua: a run whose path holds =, an option or an empty word where the run goes', function()
      local dir = t.tmpdir()
      fake_run(t, dir .. '/lr=0.1', 20, 1)   -- a run named by run=runs/lr=0.1
      local function script(name, args) return t.sh(('%s %s/scripts/%s %s'):format(t.tshost, ts.root, name, args)) end
      -- the run was left among the options, and refused as a malformed one: its own options are now what is checked
      local rc, out = script('calibrate.lua', dir .. '/lr=0.1 tta=0')
      t.truthy(rc == 1 and out:find('calibrate.lua: tta must be a whole number from 1 to 1024, got 0', 1, true), out)
      rc, out = script('detector.lua', dir .. '/lr=0.1 scenes=2.5')
      t.truthy(rc == 1 and out:find('detector.lua: option scenes must be a whole number from 10 to 1000000, got 2.5', 1, true), out)
      -- an option first was taken for the run ("fit_only=true has no model.safetensors"); an empty word failed in a
      -- traceback (calibrate) or was read as the folder "" (detector)
      for _, name in ipairs({'calibrate.lua', 'detector.lua'}) do
         rc, out = script(name, 'fit_only=true ' .. dir .. '/lr=0.1')
         t.truthy(rc == 2 and out:find('fit_only=true is an option: the run comes first', 1, true) and
                  out:find('usage: tshost scripts/' .. name, 1, true), out)
         rc, out = script(name, "''")
         t.truthy(rc == 2 and out:find('usage: tshost scripts/' .. name, 1, true) and not out:find('traceback', 1, true), out)
      end
      t.eq(ts.files.exists(dir .. '/lr=0.1/detector'), false)
   end)

   t.test('predict.lua: an option given twice, an empty path, --help; compare.lua: -h, a page named as a folder', function()
      local dir = t.tmpdir()
      local function predict(args) return t.sh(('%s %s/scripts/predict.lua %s/none %s/a.png %s'):format(t.tshost, ts.root, dir, dir, args)) end
      -- the second value replaced the first without a word
      local rc, out = predict('--abstain 0.5 --abstain 0.9')
      t.truthy(rc == 2 and out:find('predict: --abstain given twice (0.5 and 0.9): give it once', 1, true), out)
      -- '' failed in mkdirs after the run was loaded
      rc, out = predict("--json --draw ''")
      t.truthy(rc == 2 and out:find('predict: --draw needs a path', 1, true), out)
      rc, out = predict('--help')
      t.truthy(rc == 2 and out:find('usage: tshost scripts/predict.lua', 1, true) and not out:find('unknown option', 1, true), out)
      fake_run(t, dir .. '/a', 20, 1)
      local function compare(args) return t.sh(('%s %s/scripts/compare.lua %s'):format(t.tshost, ts.root, args)) end
      rc, out = compare(dir .. '/a -h')   -- a run named -h
      t.truthy(rc == 2 and out:find('usage: tshost scripts/compare.lua', 1, true), out)
      -- a page named as a folder (a run's among them), or inside a file: the write failed after the table was printed
      ts.files.mkdirs(dir .. '/b')
      for html, says in pairs({[dir .. '/b'] = 'is a folder: name the page', [dir .. '/a/final.json/x.html'] = 'its folder does not exist'}) do
         rc, out = compare(('%s/a --html %s'):format(dir, html))
         t.truthy(rc == 1 and out:find(('--html %s'):format(html), 1, true) and out:find(says, 1, true) and
                  not out:find('accuracy', 1, true), out)
      end
   end)

   t.test('bench.lua: a bare word and options of the wrong kind are refused before anything runs', function()
      -- a bare word ran the whole default benchmark; batch=1.5, model=foo, precision=fp16 failed in a traceback, rounds=0
      -- in one after the timings, steps=0 and steps=-1 printed 0 and negative images/s
      for a, says in pairs({['recipe'] = 'bench.lua: recipe is no option: options are key=value',
                            ['batch=1.5'] = 'bench: option batch must be a whole number >= 1, got 1.5',
                            ['steps=0'] = 'option steps must be a whole number >= 1, got 0',
                            ['rounds=0'] = 'option rounds must be a whole number >= 1, got 0',
                            ['model=foo'] = 'option model must be one of refcnn, baseline, recipe, got "foo"',
                            ['precision=fp16'] = 'option precision must be one of fp32, bf16, got "fp16"',
                            ['cpu=avx512'] = 'option cpu must be avx2, got "avx512"'}) do
         local rc, out = t.sh(('timeout 60 %s %s/scripts/bench.lua torch=false %s'):format(t.tshost, ts.root, a))
         t.truthy(rc == 1 and out:find(says, 1, true) and not out:find('traceback', 1, true) and
                  not out:find('images/s', 1, true), a .. ': ' .. out)
      end
   end)
end
