-- The test runner: tshost tests/run.lua [pattern [name]]
-- Runs every tests/test_*.lua (or those whose name contains pattern; of those, the tests whose name
-- contains `name`, or one of its parts separated by |). A test file returns a function
-- that receives the helpers below and registers tests with t.test(name, fn). Ends with the line
-- "N passed, N failed, N skipped" and exits non-zero when a test failed.
local dir = ts.root .. '/tests'
local pattern, name_pattern = arg[1], arg[2]

-- Tests run on the CPU unless they ask for the GPU (test_cuda does), here and in the tshost processes
-- they start: results such as bit-identical losses are promised per device. TSHOST_TEST_DEVICE=cuda runs them
-- on the GPU instead (with make emu's build/emu/tshost: every training path of a test file on the emulated GPU).
require('ffi').cdef('int setenv(const char *name, const char *value, int overwrite);')
local device = os.getenv('TSHOST_TEST_DEVICE') or 'cpu'
require('ts.ffi').C.setenv('TSHOST_DEVICE', device, 1)
ts.setDevice(device)

-- tshost: the program the tests start in other processes, the one running them (make emu's build runs its own)
local t = {dir = dir, tshost = ts.program}
local tests = {}
local SKIP = {}

function t.test(name, fn)
   local wanted = not name_pattern or name_pattern == ''
   for part in (name_pattern or ''):gmatch('[^|]+') do wanted = wanted or name:find(part, 1, true) ~= nil end
   if wanted then tests[#tests + 1] = {name = name, fn = fn, file = t.file} end
end

-- t.skip('reason'): ends the test as skipped, saying why
function t.skip(reason) error(setmetatable({reason = reason}, SKIP), 0) end

local function fail(msg, level) error(msg, (level or 1) + 2) end

function t.truthy(v, msg) if not v then fail(msg or 'expected a true value', 1) end end
function t.eq(a, b, msg)
   if a ~= b then fail(('%sexpected %s, got %s'):format(msg and msg .. ': ' or '', tostring(b), tostring(a)), 1) end
end
-- numbers or tensors: |a - b| <= atol + rtol |b| everywhere
function t.near(a, b, rtol, atol, msg)
   rtol, atol = rtol or 1e-5, atol or 1e-6
   if type(a) == 'number' then
      if not (math.abs(a - b) <= atol + rtol * math.abs(b)) then
         fail(('%sexpected %.9g, got %.9g'):format(msg and msg .. ': ' or '', b, a), 1)
      end
      return
   end
   if tostring(a:size()) ~= tostring(b:size()) then
      fail(('%sshape %s, expected %s'):format(msg and msg .. ': ' or '', tostring(a:size()), tostring(b:size())), 1)
   end
   if not a:allclose(b, rtol, atol) then
      fail(('%smax abs difference %.3g (rtol %g, atol %g)'):format(msg and msg .. ': ' or '', a:maxAbsDiff(b), rtol, atol), 1)
   end
end
-- fn() must raise an error whose message contains `plain` (plain text, not a pattern)
function t.raises(fn, plain, msg)
   local ok, err = pcall(fn)
   if ok then fail((msg or 'expected an error') .. (plain and (' containing "' .. plain .. '"') or ''), 1) end
   if plain and not tostring(err):find(plain, 1, true) then
      fail(('error "%s" does not contain "%s"'):format(tostring(err), plain), 1)
   end
   return err
end

-- err (an error raised through a library call) must be positioned at a line of the test file that calls this: the
-- library's errors count their level from the caller; returns err
function t.atCaller(err)
   local file = debug.getinfo(2, 'S').short_src:match('[^/]*$')
   if not tostring(err):find(file:gsub('%p', '%%%0') .. ':%d+: ') then fail('not at the caller: ' .. tostring(err), 1) end
   return err
end

-- One batch's forward and backward through ts.train in micro-batches of `micro` images, on the CPU, from
-- zeroed gradients (mixed: a ts.data.mix batch's {y, lam}): the mean loss, copies of the parameters'
-- gradients and the count of right predictions
function t.batchGradients(model, crit, x, y, micro, mixed)
   local train = require('ts.train')
   model:zeroGrad()
   local sums = train.sums('cpu')
   train.forwardBackward(model, crit, x, y, micro, x:size(1), sums, mixed)
   local _, g = model:parameters()
   local out = {}
   for i = 1, #g do out[i] = g[i]:clone() end
   return sums.loss:get(1) / x:size(1), out, sums.correct:get(1)
end

-- a fresh temporary directory, removed at the end of the run
local tmpdirs = {}
function t.tmpdir()
   local p = io.popen('mktemp -d')
   local d = p:read('*l')
   p:close()
   tmpdirs[#tmpdirs + 1] = d
   return d
end

-- runs a shell command, returning its exit code and combined output
function t.sh(cmd)
   local p = io.popen('(' .. cmd .. ') 2>&1; echo "__rc=$?"')
   local out = p:read('*a')
   p:close()
   local rc = tonumber(out:match('__rc=(%d+)%s*$'))
   return rc, (out:gsub('__rc=%d+%s*$', ''))
end

-- Optimizer tests. seedState: state of its own for every k-th parameter of each optimizer (the same values in
-- each, copies on each one's device): a momentum buffer for SGD with momentum, Adam's moments and a step count of 7 i, so
-- that a step that gave every tensor of a group the first one's state differs. stepTogether: `steps` steps of
-- two optimizers with the same random gradients (ga, gb: their gradient lists); step_b(ob, k), when given, takes
-- the second one's step k, for a test that counts what it does.
function t.seedState(optimizers, params, k)
   for i = k, #params, k do
      local m = ts.randn(params[i]:size()):mul_(0.1)
      for _, o in ipairs(optimizers) do
         local st, device = o.state[i], o.groups[1].params[1]:device()
         if o.kind ~= 'SGD' then st.exp_avg, st.exp_avg_sq, st.step = m:clone():to(device), m:square():to(device), 7 * i
         elseif o.groups[1].momentum ~= 0 then st.momentum_buffer = m:clone():to(device) end
      end
   end
end

function t.stepTogether(oa, ga, ob, gb, steps, step_b)
   for k = 1, steps do
      for i = 1, #ga do
         ga[i]:copy(ts.randn(ga[i]:size()))
         gb[i]:copy(ga[i])
      end
      oa:step()
      if step_b then step_b(ob, k) else ob:step() end
   end
end

function t.readfile(path)
   local f = assert(io.open(path, 'rb'))
   local s = f:read('*a')
   f:close()
   return s
end

-- a float32 tensor of the given shape from a raw little-endian file (the pretrained models' reference outputs)
function t.readFloats(path, shape)
   local s = t.readfile(path)
   local x = ts.zeros(shape)
   assert(#s == x:numel() * 4, path .. ': unexpected size')
   require('ffi').copy(x:data(), s, #s)
   return x
end

function t.writefile(path, s)
   local f = assert(io.open(path, 'wb'))
   f:write(s)
   f:close()
end

-- A Python in which every one of `modules` imports, for the tests that check tshost's files with another tool's
-- own reader: make test's environment (build/testenv, made by make testenv from PyPI), TSHOST_PYTHON, python3.
-- Returns the interpreter, or nil and why not (the test then skips, saying so).
function t.python(modules)
   local imports = 'import ' .. table.concat(modules, ', ')
   for _, py in ipairs({ts.root .. '/build/testenv/bin/python', os.getenv('TSHOST_PYTHON') or '', 'python3'}) do
      if py ~= '' and t.sh(("'%s' -c '%s'"):format(py, imports)) == 0 then return py end
   end
   return nil, ('no Python with %s (make testenv installs them from PyPI into build/testenv)'):format(
      table.concat(modules, ', '))
end

local p = io.popen('ls ' .. dir .. '/test_*.lua')
local files = {}
for f in p:lines() do
   if not pattern or f:find(pattern, 1, true) then files[#files + 1] = f end
end
p:close()
for _, f in ipairs(files) do
   t.file = f:match('([^/]+)%.lua$')
   local chunk = assert(loadfile(f))
   chunk()(t)
end

local passed, failed, skipped = 0, 0, 0
local clock = ts.files.now   -- wall time: some tests run subprocesses
for _, case in ipairs(tests) do
   ts.manualSeed(42)
   local start = clock()
   local ok, err = xpcall(case.fn, function(e)
      if getmetatable(e) == SKIP then return e end
      return debug.traceback(tostring(e), 2)
   end)
   local label = case.file .. ': ' .. case.name
   if ok then
      passed = passed + 1
      print(('ok      %s (%.2fs)'):format(label, clock() - start))
   elseif getmetatable(err) == SKIP then
      skipped = skipped + 1
      print(('skip    %s: %s'):format(label, err.reason))
   else
      failed = failed + 1
      print(('FAIL    %s\n%s'):format(label, err))
   end
   io.stdout:flush()
end
for _, d in ipairs(tmpdirs) do os.execute('rm -rf ' .. d) end
print(('%d passed, %d failed, %d skipped'):format(passed, failed, skipped))
os.exit(failed == 0 and 0 or 1)
