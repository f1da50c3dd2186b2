-- The REPL's Lua half: evaluate a chunk, print results, complete names. host/main.c reads the lines.
local repl = {}

-- Results print compactly: tensors as a summary line (or in full when small), modules as their tree,
-- tables as a short listing.
function repl.show(v)
   local t = type(v)
   if t == 'table' and getmetatable(v) and getmetatable(v).__tostring then return tostring(v) end
   if t == 'table' then
      local parts, n = {}, 0
      for k, x in pairs(v) do
         n = n + 1
         if n > 20 then parts[#parts + 1] = '...' break end
         local xs = type(x) == 'string' and ('%q'):format(x) or tostring(x)
         if #xs > 60 then xs = xs:sub(1, 57) .. '...' end
         parts[#parts + 1] = (type(k) == 'string' and k or '[' .. tostring(k) .. ']') .. ' = ' .. xs
      end
      return '{' .. table.concat(parts, ', ') .. '}'
   end
   if t == 'string' then return ('%q'):format(v) end
   return tostring(v)
end

local function print_results(...)
   local n = select('#', ...)
   local out = {}
   for i = 1, n do out[i] = repl.show((select(i, ...))) end
   if n > 0 then print(table.concat(out, '\t')) end
end

-- the function of a chunk: an expression's values are returned (to print them), else the statements. The
-- expression is returned through select(1, ...), all its values kept, so that its last call is no tail call:
-- error('x') typed here was reported at repl.lua's line, the chunk's frame gone; 'return x;' is the fallback for
-- what select's parentheses do not take. "=expr" is an expression alone, as the lua and th prompts take it (it was
-- a syntax error here).
local function expression(chunk) return chunk:match('^%s*=(.*)$') end
local function compile(chunk)
   local expr = expression(chunk)
   local fn = loadstring('return select(1, ' .. (expr or chunk) .. '\n)', '=stdin')
   if fn then return fn end
   local err
   fn, err = loadstring('return ' .. (expr or chunk), '=stdin')
   if fn or expr then return fn, err end
   return loadstring(chunk, '=stdin')
end

-- true when the chunk is an unfinished statement that continues on the next line ("=expr" too)
function repl.incomplete(chunk)
   local expr = expression(chunk)
   if expr then chunk = 'return ' .. expr end
   if loadstring('return ' .. chunk, '=stdin') then return false end
   local _, err = loadstring(chunk, '=stdin')
   return err ~= nil and err:match("<eof>'?$") ~= nil
end

-- Compiles and runs the chunk and prints its results: all inside repl.eval's protected call, so an error
-- or a Ctrl-C while it compiles or while its results print (a __tostring that fails) is reported as the
-- chunk's. The chunk itself (and the functions it defines) runs in LuaJIT's interpreter, not as compiled
-- traces: Ctrl-C stops a chunk through a hook, which compiled code never checks, so a loop typed here would
-- otherwise be impossible to interrupt. The library it calls stays compiled, and the hook fires as soon as
-- control is back in the chunk.
local function run(chunk)
   local fn, err = compile(chunk)
   if not fn then
      print('error: ' .. err)
      return false
   end
   jit.off(fn, true)
   print_results(fn())
   return true
end

-- The error as the command line shows it (host/main.c's traceback, the host's _TSHOST_ERROR_MESSAGE): one raised for
-- the user (error(msg, 0), no position) alone, a bug's with its stack. (Every error drew the stack here, a user's
-- message buried under it.) Outside the host, every error with its stack.
local shown = _TSHOST_ERROR_MESSAGE or function(e) return debug.traceback(tostring(e), 2) end

-- Runs the chunk and prints its results, or the error; never raises. Returns whether it ran without error.
function repl.eval(chunk)
   if chunk:match('^%s*$') then return true end
   local ok, ran = xpcall(run, shown, chunk)
   if not ok then print('error: ' .. ran) end
   return ok and ran
end

-- Candidate completions of `text` ("ts.nn.Co", "model:for", "pri") in readline's shape:
-- {common prefix, candidate, ...}, or {the one candidate}.
function repl.complete(text)
   local base, sep, partial = text:match('^(.-)([%.:])([%w_]*)$')
   local scope = _G
   if base then
      local ok, v = pcall(loadstring('return ' .. base))
      if not ok or v == nil then return {} end
      scope = v
   else
      partial, base, sep = text, '', ''
   end
   local names, seen = {}, {}
   local function collect(tbl, depth)
      if depth > 4 or type(tbl) ~= 'table' then return end
      for k, v in pairs(tbl) do
         if type(k) == 'string' and k:sub(1, #partial) == partial and not seen[k] and not k:match('^_') then
            if sep ~= ':' or type(v) == 'function' then
               seen[k] = true
               names[#names + 1] = base .. sep .. k
            end
         end
      end
      local mt = getmetatable(tbl)
      if mt and type(mt.__index) == 'table' then collect(mt.__index, depth + 1) end
   end
   if require('ts.tensor').isTensor(scope) then collect(require('ts.tensor').Tensor, 0)
   elseif type(scope) == 'table' then collect(scope, 0) end
   table.sort(names)
   if #names <= 1 then return names end
   local prefix = names[1]
   for _, n in ipairs(names) do
      while n:sub(1, #prefix) ~= prefix do prefix = prefix:sub(1, -2) end
   end
   table.insert(names, 1, prefix)
   return names
end

return repl
