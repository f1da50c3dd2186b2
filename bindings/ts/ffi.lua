-- The C API, declared to LuaJIT's FFI straight from host/ts.h (one source of truth), and the one
-- place where C failures become Lua errors.
local ffi = require('ffi')

local root = rawget(_G, '_TSHOST_ROOT') or os.getenv('TSHOST_ROOT') or '.'
local f = assert(io.open(root .. '/host/ts.h', 'r'), 'ts: cannot find host/ts.h under ' .. root .. ' (set TSHOST_ROOT)')
local header = f:read('*a')
f:close()
-- drop preprocessor lines; what is left is plain C declarations
ffi.cdef((header:gsub('\n#[^\n]*', '\n'):gsub('^#[^\n]*', '')))
ffi.cdef[[
void free(void *);
int posix_memalign(void **, size_t, size_t);
]]

local C = ffi.C
local M = {C = C, root = root}

-- Raises the last C error as a Lua error. The message itself names the operation and the sizes, and
-- containers prefix the layer's name, so no file position is added (a traceback still has it).
function M.fail()
   error(ffi.string(C.ts_last_error()), 0)
end

-- The C handle of a tensor object, or NULL for nil (optional arguments such as a missing bias).
function M.ptr(t) return t and t._c end

-- A path for C or for io.open: a string without a NUL byte, which C would stop reading at ('a.png\0.jpg' wrote
-- a.png); an error naming `what` (the call) otherwise, at the caller's caller's level. Returns the path.
function M.path(path, what, level)
   if type(path) ~= 'string' then error(('%s: path must be a string, got %s'):format(what, type(path)), (level or 2) + 1) end
   if path:find('\0', 1, true) then error(('%s: the path %q holds a NUL byte'):format(what, path), (level or 2) + 1) end
   return path
end

function M.check(rc)
   if rc ~= 0 then M.fail() end
   return rc
end

return M
