-- ts.cuda: the GPU, when tshost was built with CUDA and a device answers.
--   ts.cuda.isAvailable(), ts.cuda.isBuilt(), ts.cuda.deviceName(), ts.cuda.synchronize()
--   ts.cuda.memory() -> {in_use, peak, cached, limit, allocations, cache_hits, failures} in bytes
--   ts.cuda.resetPeak(), ts.cuda.emptyCache(), ts.cuda.setMemoryLimit(bytes)   (0: no limit)
--   ts.cuda.deterministic(true): cuDNN algorithms that give the same bits every run (our kernels always do)
--   ts.cuda.tf32(false): convolutions in full fp32 instead of TF32 tensor cores (PyTorch's default is TF32)
--   ts.cuda.channelsLast(false): bf16 convolutions (model:setPrecision('bf16')) staged NCHW instead of NHWC
--   ts.cuda.debug(true): every GPU op waits for the device and checks, so an asynchronous fault (an illegal
--   address) is named by the op that caused it, not by a later one (slow; TSHOST_CUDA_SYNC=1 does the same)
--   ts.cuda.fallbacks(): how many Lua-level arithmetic ops and reductions on a CUDA tensor ran on a host copy
--   ts.cuda.strict(true): such ops fail instead, naming the op (ts.train's step on the GPU runs so);
--   returns the previous setting; ts.cuda.isStrict()
-- The same statistics and limit exist for the host: ts.memory('cpu'), ts.setMemoryLimit('cpu', bytes).
-- ts.device() is the default device of ts.train and friends: ts.setDevice(d), else TSHOST_DEVICE (which
-- `tshost --device` sets), else cuda when available. Documented global state: that choice.
local ffi = require('ffi')
local cffi = require('ts.ffi')
local keys = require('ts.keys')
local C, check = cffi.C, cffi.check

local M = {}
-- a switch's argument: true, false or nil (on); 0, 'off' or 'false' turned on what they were meant to turn off
-- (errors at `level` as error's, counted from switch's caller: 2, the caller of the function that called switch)
local function switch(on, what, level) return keys.flag(on, what, 'the setting', level + 1) == false and 0 or 1 end
local device_codes = {cpu = 0, cuda = 1}

function M.isBuilt() return C.ts_cuda_built() == 1 end
function M.isAvailable() return C.ts_cuda_available() == 1 end
function M.deviceName() return ffi.string(C.ts_cuda_device_name()) end
function M.synchronize() check(C.ts_cuda_synchronize()) end
-- a device switch set, its errors named by the Lua function `what` (C names its own setting: "cuda.sync: ...", where
-- the caller had called ts.cuda.debug), at the caller of `what`
local function set(option, on, what)
   if C.ts_cuda_set(option, switch(on, what, 3)) ~= 0 then
      error(what .. ': ' .. ffi.string(C.ts_last_error()):gsub('^cuda%.[%w_]+: ', ''), 3)
   end
end
function M.deterministic(on) set('deterministic', on, 'ts.cuda.deterministic') end
function M.tf32(on) set('tf32', on, 'ts.cuda.tf32') end
function M.channelsLast(on) set('channels_last', on, 'ts.cuda.channelsLast') end
function M.debug(on) set('sync', on, 'ts.cuda.debug') end
function M.fallbacks() return tonumber(C.ts_math_fallbacks()) end
function M.strict(on) return C.ts_math_set_strict(switch(on, 'ts.cuda.strict', 2)) == 1 end
function M.isStrict() return C.ts_math_is_strict() == 1 end

local function code_of(device)
   return device_codes[device or 'cpu'] or error(('unknown device %s (cpu, cuda)'):format(tostring(device)), 3)
end

local stats = ffi.new('ts_memory_stats')
function M.memoryOf(device)
   check(C.ts_memory_get_stats(code_of(device), stats))
   return {in_use = tonumber(stats.in_use), peak = tonumber(stats.peak), cached = tonumber(stats.cached),
           limit = tonumber(stats.limit), allocations = tonumber(stats.allocations),
           cache_hits = tonumber(stats.cache_hits), failures = tonumber(stats.failures)}
end
function M.memory() return M.memoryOf('cuda') end
function M.resetPeak(device) check(C.ts_memory_reset_peak(code_of(device or 'cuda'))) end
function M.emptyCache() C.ts_memory_empty_cache() end
-- (bytes checked here: nil or a string failed in the FFI naming this file, NaN and 1e30 read as -2^63, 2.5 as 2)
local function set_limit(code, bytes, what)
   keys.count(bytes, what, 'bytes (0: no limit)', 0, 2 ^ 62, 3)   -- (nil did not say how to lift a limit)
   check(C.ts_memory_set_limit(code, bytes))
end
function M.setMemoryLimitOf(device, bytes) set_limit(code_of(device), bytes, 'ts.setMemoryLimit(device, bytes)') end
function M.setMemoryLimit(bytes) set_limit(device_codes.cuda, bytes, 'ts.cuda.setMemoryLimit(bytes)') end

-- why cuda cannot be used here, in words
-- why the GPU is not there: built without CUDA, or the first failure of its start in the driver's or the
-- runtime's own words (a driver too old for this CUDA, no device, a library missing)
function M.unavailableReason() return ffi.string(C.ts_cuda_unavailable_reason()) end

local chosen
function M.setDevice(device)
   code_of(device)
   if device == 'cuda' and not M.isAvailable() then error('setDevice: ' .. M.unavailableReason(), 2) end
   chosen = device
end

function M.device()
   if chosen then return chosen end
   local env = os.getenv('TSHOST_DEVICE')
   if env and env ~= '' then
      if not device_codes[env] then error(('TSHOST_DEVICE=%s: expected cpu or cuda'):format(env), 2) end
      if env == 'cuda' and not M.isAvailable() then error('TSHOST_DEVICE=cuda: ' .. M.unavailableReason(), 2) end
      chosen = env
   else
      chosen = M.isAvailable() and 'cuda' or 'cpu'
   end
   return chosen
end

return M
