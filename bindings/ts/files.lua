-- ts.files: the file helpers of runs, reports and scripts.
--   ts.files.mkdirs(path)             a folder and its parents (those that exist are kept)
--   ts.files.readFile(path)           the whole file, or nil when it cannot be read
--   ts.files.exists(path)             whether a file can be opened for reading
--   ts.files.writeFile(path, s)       atomic: a temporary file beside the target, then a rename
--   ts.files.appendFile(path, s)      s added at the end
--   ts.files.now()                    seconds on the monotonic clock (for durations)
--   ts.files.wallClock()              seconds since 1970 (UTC), with fractions (for timestamps)
--   ts.files.realpath(path)           the absolute path without links, or nil when there is no such file
--   ts.files.isDir(path)              whether path is a folder (a link to one included)
--   ts.files.list(dir)                the names in a folder, sorted (nil, reason when it cannot be read)
-- Every write names its file and the reason when it fails (a full disk, a read-only remount).
local ffi = require('ffi')
local cffi = require('ts.ffi')
local C = ffi.C

ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } ts_timespec;
int clock_gettime(int clock, ts_timespec *t);
int mkdir(const char *path, unsigned int mode);
int getpid(void);
char *realpath(const char *path, char *resolved);
char *strerror(int errnum);
]]

local M = {}

local CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
local tspec = ffi.new('ts_timespec')
local function clock(which)
   C.clock_gettime(which, tspec)
   return tonumber(tspec.tv_sec) + tonumber(tspec.tv_nsec) * 1e-9
end
function M.now() return clock(CLOCK_MONOTONIC) end
function M.wallClock() return clock(CLOCK_REALTIME) end

-- The parts that exist are kept; a part that cannot be made (a file in the way, no permission, a full disk) is an
-- error naming it and the reason, not a folder silently missing later.
function M.mkdirs(path)
   cffi.path(path, 'ts.files.mkdirs(path)')
   if path == '' then error('ts.files.mkdirs(path): path must be a non-empty string', 2) end
   local at = ''
   for part in path:gmatch('[^/]+') do
      at = (at == '' and path:sub(1, 1) == '/') and '/' .. part or (at == '' and part or at .. '/' .. part)
      local failed = C.mkdir(at, 493) ~= 0   -- 0755
      local err = ffi.errno()
      if failed and not M.isDir(at) then   -- EEXIST for a folder that is there is fine
         local why = err == 17 and 'a file of that name is in the way' or ffi.string(C.strerror(err))
         error(('cannot make the folder %s: %s: %s'):format(path, at, why), 2)
      end
   end
end

-- whether something is at path: a file (readable or not), a folder, a link to either
function M.exists(path)
   cffi.path(path, 'ts.files.exists(path)')
   local f = io.open(path, 'rb')
   if f then f:close() end
   return f ~= nil or M.realpath(path) ~= nil
end

function M.readFile(path)
   local f = io.open(cffi.path(path, 'ts.files.readFile(path)'), 'r')
   if not f then return nil end
   local s = f:read('*a')
   f:close()
   return s
end

-- io's buffered writes can fail at write, flush or close, so each result is checked
local function write_or_fail(f, path, s)
   local ok, err = f:write(s)
   if ok then ok, err = f:flush() end
   local closed, cerr = f:close()
   if not ok or not closed then error(('cannot write %s: %s'):format(path, tostring(err or cerr)), 0) end
end

local function open_or_fail(path, mode)
   local f, err = io.open(path, mode)
   if not f then error(('cannot write %s: %s'):format(path, tostring(err):gsub('^' .. path:gsub('%p', '%%%0') .. ': ', '')), 0) end
   return f
end

-- Whole or not at all and flushed to the disk, as every run file tshost writes (host/writefile.c): the temporary
-- file is named with the writer's process id, as ts.save's are, so that a later run can tell an abandoned one
-- (ts.train removes those whose process is gone).
function M.writeFile(path, s)
   cffi.path(path, 'ts.files.writeFile(path, s)')
   if type(s) ~= 'string' then error('ts.files.writeFile(path, s): the contents must be a string, got ' .. type(s), 2) end
   cffi.check(C.ts_write_file(path, s, #s, 1))
end

function M.appendFile(path, s)
   cffi.path(path, 'ts.files.appendFile(path, s)')
   -- as writeFile: nil failed inside io's write, a number was written as its digits
   if type(s) ~= 'string' then error('ts.files.appendFile(path, s): the contents must be a string, got ' .. type(s), 2) end
   write_or_fail(open_or_fail(path, 'ab'), path, s)
end

local resolved = ffi.new('char[4096]')   -- PATH_MAX
function M.realpath(path)
   local p = C.realpath(cffi.path(path, 'ts.files.realpath(path)'), resolved)
   return p ~= nil and ffi.string(p) or nil
end

-- the names in a folder (not . and ..), sorted; nil and the reason when it cannot be read. No shell: a name with a
-- quote or a $( ) is only a name. C ends each name with '/', which no name holds (with a newline, a name that held
-- one came back as two names)
function M.list(dir)
   local p = C.ts_list_dir(cffi.path(dir, 'ts.files.list(dir)'))
   if p == nil then return nil, ffi.string(C.ts_last_error()) end
   local text = ffi.string(p)
   C.free(p)
   local names = {}
   for name in text:gmatch('[^/]+') do names[#names + 1] = name end
   table.sort(names)
   return names
end

-- s as one word for a POSIX shell, whatever it holds (spaces, quotes, $(...), ;): single-quoted, each ' as '\''
function M.shellQuote(s) return "'" .. (s:gsub("'", "'\\''")) .. "'" end

-- only a folder has a "." inside it to resolve
function M.isDir(path) return cffi.path(path, 'ts.files.isDir(path)') ~= '' and C.realpath(path .. '/.', resolved) ~= nil end

return M
