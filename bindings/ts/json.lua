-- A small JSON encoder and decoder for run files, checkpoints' metadata and the REPL.
-- Tables with 1..n integer keys are arrays; others objects with sorted keys (stable output).
local M = {}

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t', ['\b'] = '\\b', ['\f'] = '\\f'}

local function encode(v, out)
   local t = type(v)
   if t == 'nil' then out[#out + 1] = 'null'
   elseif t == 'boolean' then out[#out + 1] = tostring(v)
   elseif t == 'number' then
      if v ~= v or v == math.huge or v == -math.huge then out[#out + 1] = 'null'
      elseif v == math.floor(v) and math.abs(v) < 1e15 then out[#out + 1] = ('%d'):format(v)
      else out[#out + 1] = ('%.17g'):format(v) end
   elseif t == 'string' then
      out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c) return escapes[c] or ('\\u%04x'):format(c:byte()) end) .. '"'
   elseif t == 'table' then
      local n = #v
      local is_array = n > 0 or next(v) == nil
      if is_array then
         for k in pairs(v) do
            if type(k) ~= 'number' or k < 1 or k > n or k ~= math.floor(k) then is_array = false break end
         end
      end
      if is_array and n > 0 then
         out[#out + 1] = '['
         for i = 1, n do
            if i > 1 then out[#out + 1] = ',' end
            encode(v[i], out)
         end
         out[#out + 1] = ']'
      else
         local keys = {}
         for k in pairs(v) do keys[#keys + 1] = tostring(k) end
         table.sort(keys)
         out[#out + 1] = '{'
         for i, k in ipairs(keys) do
            if i > 1 then out[#out + 1] = ',' end
            encode(k, out)
            out[#out + 1] = ':'
            local val = v[k]
            if val == nil then val = v[tonumber(k)] end
            encode(val, out)
         end
         out[#out + 1] = '}'
      end
   else
      error('json: cannot encode a ' .. t, 3)
   end
end

function M.encode(v)
   local out = {}
   encode(v, out)
   return table.concat(out)
end

function M.decode(s)
   local pos = 1
   local function fail(what) error(('json: %s at character %d'):format(what, pos), 0) end
   local function ws() pos = s:find('[^ \t\r\n]', pos) or #s + 1 end
   local value
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
               local code = tonumber(s:sub(pos + 2, pos + 5), 16) or fail('bad \\u escape')
               if code < 0x80 then out[#out + 1] = string.char(code)
               elseif code < 0x800 then out[#out + 1] = string.char(0xC0 + math.floor(code / 64), 0x80 + code % 64)
               else out[#out + 1] = string.char(0xE0 + math.floor(code / 4096), 0x80 + math.floor(code / 64) % 64, 0x80 + code % 64) end
               pos = pos + 6
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
      if c == '{' then
         local obj = {}
         pos = pos + 1
         ws()
         if s:sub(pos, pos) == '}' then pos = pos + 1 return obj end
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
            if d == '}' then return obj end
            if d ~= ',' then fail("expected ',' or '}'") end
         end
      elseif c == '[' then
         local arr = {}
         pos = pos + 1
         ws()
         if s:sub(pos, pos) == ']' then pos = pos + 1 return arr end
         while true do
            arr[#arr + 1] = value()
            ws()
            local d = s:sub(pos, pos)
            pos = pos + 1
            if d == ']' then return arr end
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

return M
