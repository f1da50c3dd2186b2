-- ts.protobuf: a writer of Protocol Buffers' wire format (https://protobuf.dev/programming-guides/encoding/), for
-- the messages tshost writes for other tools: TensorBoard's events (ts.tensorboard) and ONNX models (ts.onnx).
-- A message is built field by field and encoded once; fields are written in the order they are added.
--   local m = pb.message()
--   m:varint(1, 7)          int32/int64/uint/bool/enum (negative numbers as 10-byte two's complement)
--   m:double(2, 0.5)        fixed64 IEEE double;  m:float(3, 1.5): fixed32 IEEE single
--   m:bytes(4, 'abc')       bytes, as they are;  m:string(4, 'abc'): a string field, valid UTF-8 (see Message:string)
--   m:message(5, other_message): an embedded message
--   m:packedVarints(6, {1, 2, 3});  m:packedFloats(7, {0.5, 2}) (repeated, packed)
--   m:encode() -> the bytes as a Lua string
local ffi = require('ffi')
local bit = require('bit')
local json = require('ts.json')

local M = {}

local Message = {}
Message.__index = Message

function M.message() return setmetatable({parts = {}}, Message) end

-- the varint of a non-negative whole number up to 2^53, or of a negative one as its 64-bit two's complement
local function varint(v)
   -- a protobuf varint holds 64 bits; beyond 2^53 a Lua number is no exact whole number anyway. 2^53 itself is one
   -- (and the last step ts.tensorboard takes: it failed here, in the library, after the writer's check passed it)
   if type(v) ~= 'number' or v ~= v or v % 1 ~= 0 or v > 2 ^ 53 or v < -2 ^ 63 then
      error(('protobuf: %s is not a whole number from -2^63 to 2^53'):format(tostring(v)), 3)
   end
   local out = {}
   if v < 0 then
      local u = ffi.cast('uint64_t', ffi.cast('int64_t', v))
      for _ = 1, 9 do
         out[#out + 1] = string.char(tonumber(bit.bor(u % 128, 128)))
         u = u / 128
      end
      out[#out + 1] = string.char(tonumber(u))
      return table.concat(out)
   end
   repeat
      local byte = v % 128
      v = (v - byte) / 128
      out[#out + 1] = string.char(v > 0 and byte + 128 or byte)
   until v == 0
   return table.concat(out)
end
M.varint = varint

local function key(field, wire) return varint(field * 8 + wire) end

local f32, f64 = ffi.new('float[1]'), ffi.new('double[1]')
local function fixed32(v) f32[0] = v return ffi.string(f32, 4) end
local function fixed64(v) f64[0] = v return ffi.string(f64, 8) end

function Message:add(s)
   self.parts[#self.parts + 1] = s
   return self
end
function Message:varint(field, v) return self:add(key(field, 0) .. varint(v == true and 1 or v == false and 0 or v)) end
function Message:double(field, v) return self:add(key(field, 1) .. fixed64(v)) end
function Message:float(field, v) return self:add(key(field, 5) .. fixed32(v)) end
function Message:bytes(field, s)
   if type(s) ~= 'string' then error(('protobuf: field %s takes a string, got %s'):format(tostring(field), type(s)), 2) end
   return self:add(key(field, 2) .. varint(#s) .. s)
end
-- A proto3 string field holds UTF-8, and readers check it: one tag with a Latin-1 byte made TensorBoard's reader
-- fail on the whole event file ("String field had bad UTF-8"). Each byte that starts no well-formed sequence
-- becomes U+FFFD, as ts.json writes such text (json.utf8).
function Message:string(field, s)
   if type(s) == 'string' then s = json.utf8(s) end
   return self:bytes(field, s)   -- a tail call: bytes' errors point at this call's caller
end
function Message:message(field, m) return self:bytes(field, m:encode()) end
function Message:packedVarints(field, list)
   local body = {}
   for i, v in ipairs(list) do body[i] = varint(v) end
   return self:bytes(field, table.concat(body))
end
function Message:packedFloats(field, list)
   local body = {}
   for i, v in ipairs(list) do body[i] = fixed32(v) end
   return self:bytes(field, table.concat(body))
end
function Message:encode() return table.concat(self.parts) end

return M
