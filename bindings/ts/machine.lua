-- What a run's numbers depend on besides its settings and seed: the same seed gives the same bits only with the same
-- CPU path (each vector width rounds its sums its own way), the same OpenBLAS kernel (the linear layers' products: it
-- follows the processor, or OPENBLAS_CORETYPE), the same number of threads (the threads split the sums of a weight
-- gradient) and the same code. ts.train records it in config.json as `machine`, from the process that writes the
-- record (a resumed run's: the last one's); compare.lua --versus says when two paired runs differ in it.
--   ts.machine() -> {threads = 2, cpu_path = 'avx512bf16', blas = 'Haswell', processor = 'AMD EPYC ...', device = 'cpu',
--                    source = 'fbc7e66' or 'fbc7e66-dirty' or nil}
local ffi = require('ffi')
local cffi = require('ts.ffi')
local cuda = require('ts.cuda')
local files = require('ts.files')
local C = cffi.C

ffi.cdef('char *openblas_get_corename(void);')

local M = {}

-- the processor's name, family and model as Linux gives them ("AMD EPYC (family 26, model 2)": a virtual machine's name
-- may not say the generation), or nil elsewhere
local function processor()
   local f = io.open('/proc/cpuinfo', 'r')
   if not f then return nil end
   local text = f:read(65536) or ''
   f:close()
   local name = text:match('model name%s*:%s*([^\n]-)%s*\n')
   local family, model = text:match('cpu family%s*:%s*(%d+)'), text:match('\nmodel%s*:%s*(%d+)')
   if not name then return nil end
   return family and model and ('%s (family %s, model %s)'):format(name, family, model) or name
end

-- the OpenBLAS kernel in use ("Haswell", "SkylakeX", ...), or nil where the library does not say
local function blas()
   local ok, name = pcall(function() return ffi.string(C.openblas_get_corename()) end)
   return ok and name or nil
end

-- the commit of the checkout tshost runs from (with -dirty when files changed), or nil where its root is no checkout's
-- top (a release: unpacked inside another project, git would give that project's commit)
local function source()
   if not cffi.root or not files.exists(cffi.root .. '/.git') then return nil end
   -- the folder as one shell word: in double quotes (%q) a $(...) or `...` in it ran
   local pipe = io.popen(('git -C %s describe --always --dirty 2>/dev/null'):format(files.shellQuote(cffi.root)))
   if not pipe then return nil end
   local out = pipe:read('*l')
   pipe:close()
   return out and out ~= '' and out or nil
end

-- device: 'cpu' or 'cuda', where the run computes (the GPU's name is recorded for cuda)
function M.describe(device)
   return {threads = tonumber(C.ts_get_threads()), cpu_path = ffi.string(C.ts_cpu_path()), blas = blas(),
           processor = processor(), device = device == 'cuda' and cuda.deviceName() or 'cpu', source = source()}
end

-- The ways two machine records differ in their arithmetic, as "threads 1 against 2" phrases: an empty list when they
-- agree, or when either is missing (runs from before the record). The source is left out: most commits change no sum
function M.differences(a, b)
   local out = {}
   if type(a) ~= 'table' or type(b) ~= 'table' then return out end
   for _, key in ipairs({'cpu_path', 'blas', 'threads', 'processor', 'device'}) do
      if a[key] ~= b[key] then out[#out + 1] = ('%s %s against %s'):format(key, tostring(a[key]), tostring(b[key])) end
   end
   return out
end

return M
