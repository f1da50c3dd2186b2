-- A small JSON encoder and decoder for run files, checkpoints' metadata and the REPL.
-- Tables with 1..n integer keys are arrays, and so are empty ones json.array marked (decode marks each [] it
-- reads); others are objects with sorted keys (stable output).
local M = {}

-- A string as valid UTF-8 for JSON (RFC 8259 text is Unicode): each byte that does not start a well-formed
-- sequence (a Latin-1 file name, a cut character) becomes U+FFFD, as Python's errors='replace' does, so
-- that the output parses everywhere; valid text, ASCII above all, is returned as it is. Also M.utf8, for other
-- writers of text that readers check (protobuf's string fields, safetensors' tensor names).
local function utf8_valid(v)
   if not v:find('[\128-\255]') then return v end
   local out, i, n = {}, 1, #v
   while i <= n do
      local b = v:byte(i)
      local len = b < 0x80 and 1 or (b >= 0xC2 and b <= 0xDF) and 2 or (b >= 0xE0 and b <= 0xEF) and 3
                  or (b >= 0xF0 and b <= 0xF4) and 4 or 0
      local ok = len > 0 and i + len - 1 <= n
      for k = 1, ok and len - 1 or 0 do
         local c = v:byte(i + k)
         if c < 0x80 or c > 0xBF then ok = false end
      end
      if ok and len >= 3 then   -- no overlong forms, no surrogates, nothing past U+10FFFF
         local c1 = v:byte(i + 1)
         if (b == 0xE0 and c1 < 0xA0) or (b == 0xED and c1 > 0x9F) or (b == 0xF0 and c1 < 0x90) or (b == 0xF4 and c1 > 0x8F) then
            ok = false
         end
      end
      if ok then out[#out + 1] = v:sub(i, i + len - 1); i = i + len
      else out[#out + 1] = '\239\191\189'; i = i + 1 end
   end
   return table.concat(out)
end
M.utf8 = utf8_valid

-- The mark of an array that may be empty: Lua has one empty table for [] and {}, and a decoded [] was written back
-- as {} (a reader of the rewritten file expecting a list got an object). decode marks every [] it reads; M.array(t)
-- marks a list built in Lua that may stay empty.
local array_mark = {__name = 'json array'}
function M.array(t) return setmetatable(t or {}, array_mark) end

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\b'] = '\\b', ['\f'] = '\\f'}

-- A number key's text: the fewest digits that read back as the same number (tostring keeps 14, so 2^53 and 2^53 + 2
-- were both "9.007199254741e+15", refused as one key, and a lone 123456789012345 came back as "1.2345678901234e+14")
local function key_text(k)
   for digits = 14, 17 do
      local text = ('%.' .. digits .. 'g'):format(k)
      if tonumber(text) == k then return text end
   end
   return tostring(k)   -- inf, -inf
end

local function encode(v, out, depth)
   local t = type(v)
   if t == 'nil' then out[#out + 1] = 'null'
   elseif t == 'boolean' then out[#out + 1] = tostring(v)
   elseif t == 'number' then
      if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = 'null'
      elseif v == math.floor(v) and math.abs(v) < 1e15 then out[#out + 1] = ('%d'):format(v)
      else out[#out + 1] = ('%.17g'):format(v) end
   elseif t == 'string' then
      out[#out + 1] = '"' .. utf8_valid(v):gsub('[%c"\\]', function(c) return escapes[c] or ('\\u%04x'):format(c:byte()) end) .. '"'
   elseif t == 'table' then
      -- decode's limit: a table that holds itself recursed until Lua's "stack overflow", which named nothing
      depth = (depth or 0) + 1
      if depth > 200 then error('json: cannot encode tables nested deeper than 200 (a table that holds itself?)', 0) end
      -- an array: whole keys from 1, at least half of 1..n present (a decoded array with nulls has holes there,
      -- written back as null; a sparse table of a few large ids is an object)
      local n, count, is_array = 0, 0, true
      for k in pairs(v) do
         count = count + 1
         if type(k) ~= 'number' or k < 1 or k ~= math.floor(k) then is_array = false
         elseif k > n then n = k end
      end
      if is_array and (n > 0 or getmetatable(v) == array_mark) and n <= 2 * count then
         out[#out + 1] = '['
         for i = 1, n do
            if i > 1 then out[#out + 1] = ',' end
            encode(v[i], out, depth)
         end
         out[#out + 1] = ']'
      else
         -- keys are written as strings: a boolean or table key, or the number 1 beside the string '1', wrote a key
         -- whose value was lost (null, or the same key twice with one of the two values)
         local keys, values = {}, {}
         for k, val in pairs(v) do
            if type(k) ~= 'string' and type(k) ~= 'number' then
               error(('json: cannot encode a table key that is a %s (%s)'):format(type(k), tostring(k)), 0)
            end
            local name = type(k) == 'number' and key_text(k) or k
            if values[name] ~= nil then
               error(('json: two keys of the table (a number and a string?) would both be written as "%s"'):format(name), 0)
            end
            keys[#keys + 1], values[name] = name, val
         end
         table.sort(keys)
         out[#out + 1] = '{'
         for i, k in ipairs(keys) do
            if i > 1 then out[#out + 1] = ',' end
            encode(k, out)
            out[#out + 1] = ':'
            encode(values[k], out, depth)
         end
         out[#out + 1] = '}'
      end
   else
      error('json: cannot encode a ' .. t, 0)
   end
end

-- The encoder runs in LuaJIT's interpreter: compiled, the array test above once took the object branch with n = 2,
-- count = 2 and is_array true (a trace of Debian's LuaJIT 2.1, after many encodes in one process), and final.json's
-- [lo, hi] interval came out as {"1": lo, "2": hi}, which the report could not read. Run files are small: the
-- interpreter's speed is enough.
jit.off(encode, true)

-- (the errors come at the caller: a function inside a table was reported at a line of this file)
function M.encode(v)
   local out = {}
   local ok, err = pcall(encode, v, out)
   if not ok then error(err, 2) end
   return table.concat(out)
end

function M.decode(s)
   -- nil (a checkpoint's metadata without the key asked for) failed inside, "attempt to index upvalue 's'"
   if type(s) ~= 'string' then error(('json: expected JSON text to decode, got %s'):format(type(s)), 2) end
   local pos = 1
   local function fail(what) error(('json: %s at character %d'):format(what, pos), 0) end
   local function ws() pos = s:find('[^ \t\r\n]', pos) or #s + 1 end
   local value
   local depth = 0   -- of arrays and objects: a hostile file nested thousands deep would overflow the C stack
   local function str()
      local out = {}
      pos = pos + 1
      while true do
         local c = s:sub(pos, pos)
         if c == '' then fail('unterminated string') end
         if c == '"' then pos = pos + 1 break end
         if c == '\\' then
            local e = s:sub(pos + 1, pos + 1)
            local map = {n = '\n', t = '\t', r = '\r', b = '\b', f = '\f', ['"'] = '"', ['\\'] = '\\', ['/'] = '/'}
            if e == 'u' then
               local hex = s:sub(pos + 2, pos + 5)
               local code = hex:match('^%x%x%x%x$') and tonumber(hex, 16) or fail('bad \\u escape')
               pos = pos + 6
               -- a UTF-16 surrogate pair is one character beyond U+FFFF; a lone surrogate is none (U+FFFD)
               local low = code >= 0xD800 and code <= 0xDBFF and s:sub(pos, pos + 1) == '\\u' and s:sub(pos + 2, pos + 5)
               low = low and low:match('^%x%x%x%x$') and tonumber(low, 16)
               if low and low >= 0xDC00 and low <= 0xDFFF then
                  code, pos = 0x10000 + (code - 0xD800) * 1024 + (low - 0xDC00), pos + 6
               elseif code >= 0xD800 and code <= 0xDFFF then
                  code = 0xFFFD
               end
               if code < 0x80 then out[#out + 1] = string.char(code)
               elseif code < 0x800 then out[#out + 1] = string.char(0xC0 + math.floor(code / 64), 0x80 + code % 64)
               elseif code < 0x10000 then
                  out[#out + 1] = string.char(0xE0 + math.floor(code / 4096), 0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
               else
                  out[#out + 1] = string.char(0xF0 + math.floor(code / 262144), 0x80 + math.floor(code / 4096) % 64,
                                              0x80 + math.floor(code / 64) % 64, 0x80 + code % 64)
               end
            else
               out[#out + 1] = map[e] or fail('bad escape')
               pos = pos + 2
            end
         else
            out[#out + 1] = c
            pos = pos + 1
         end
      end
      return table.concat(out)
   end
   function value()
      ws()
      local c = s:sub(pos, pos)
      if c == '{' or c == '[' then
         depth = depth + 1
         if depth > 200 then fail('nesting deeper than 200') end
      end
      if c == '{' then
         local obj = {}
         pos = pos + 1
         ws()
         if s:sub(pos, pos) == '}' then pos, depth = pos + 1, depth - 1 return obj end
         while true do
            ws()
            if s:sub(pos, pos) ~= '"' then fail('expected a key') end
            local k = str()
            ws()
            if s:sub(pos, pos) ~= ':' then fail("expected ':'") end
            pos = pos + 1
            obj[k] = value()
            ws()
            local d = s:sub(pos, pos)
            pos = pos + 1
            if d == '}' then depth = depth - 1 return obj end
            if d ~= ',' then fail("expected ',' or '}'") end
         end
      elseif c == '[' then
         -- counted, not appended: a null stays a hole at its place ([1, null, 2] has 2 at index 3)
         local arr, n = M.array(), 0
         pos = pos + 1
         ws()
         if s:sub(pos, pos) == ']' then pos, depth = pos + 1, depth - 1 return arr end
         while true do
            n = n + 1
            arr[n] = value()
            ws()
            local d = s:sub(pos, pos)
            pos = pos + 1
            if d == ']' then depth = depth - 1 return arr end
            if d ~= ',' then fail("expected ',' or ']'") end
         end
      elseif c == '"' then
         return str()
      elseif s:sub(pos, pos + 3) == 'true' then pos = pos + 4 return true
      elseif s:sub(pos, pos + 4) == 'false' then pos = pos + 5 return false
      elseif s:sub(pos, pos + 3) == 'null' then pos = pos + 4 return nil
      else
         local num = s:match('^-?%d+%.?%d*[eE]?[-+]?%d*', pos)
         if not num or num == '' then fail('unexpected input') end
         pos = pos + #num
         return tonumber(num) or fail('bad number')
      end
   end
   local v = value()
   ws()
   if pos <= #s then fail('trailing characters') end
   return v
end

-- A JSON file decoded, its errors naming the file ("run/config.json: json: unexpected input at character 1"); nil
-- when the file does not exist (or cannot be opened: the caller says what was needed)
function M.readFile(path)
   local f = io.open(path, 'rb')
   if not f then return nil end
   local text = f:read('*a')
   f:close()
   if not text then error(('%s: cannot be read (a folder?)'):format(path), 0) end
   local ok, v = pcall(M.decode, text)
   if not ok then error(('%s: %s'):format(path, tostring(v)), 0) end
   return v
end

return M
