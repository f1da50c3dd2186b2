-- Checkpoints in the safetensors format, with PyTorch's state_dict names.
--   ts.save(path, model [, metadata])   the model's stateDict(); metadata: a table of strings
--   ts.save(path, {name = tensor, ...})  any tensors, e.g. for numpy or PyTorch
--   ts.load(path)                        a table name -> tensor, and the metadata table
--   ts.load(path, model [, {strict = false}])  copies into the model; strict (the default) fails on a
--                                        missing, unexpected or mis-shaped tensor, naming all of them; a
--                                        tensor whose file dtype cannot fill its parameter fails always
--   ts.load(path, model, {prefix = 'model.'})  the model's tensors are the file's named prefix .. name
--                                        (a training checkpoint's weights beside its optimizer state);
--                                        tensors without the prefix are not the model's and are ignored
-- With a model it returns the model, the metadata and all of the file's tensors (name -> tensor), so that
-- a reader of a checkpoint fills the model with the checks above and takes the rest from the same read.
-- Writes are atomic: a crash while saving leaves the previous file as it was.
local ffi = require('ffi')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local C, check, fail = cffi.C, cffi.check, cffi.fail
local json = require('ts.json')

local M = {}

local function is_module(x) return type(x) == 'table' and x.stateDict ~= nil end

function M.save(path, what, metadata)
   cffi.path(path, 'ts.save(path, model or table)')
   local pairs_list = {}
   if is_module(what) then
      pairs_list = what:stateDict()
   elseif type(what) == 'table' then
      for name, t in pairs(what) do
         if not T.isTensor(t) then error(('ts.save: entry %s is not a tensor'):format(tostring(name)), 2) end
         -- names a file can hold and ts.load read back: strings (or numbers), not the header's own key
         if (type(name) ~= 'string' and type(name) ~= 'number') or name == '__metadata__' or name == '' then
            error(('ts.save: %s cannot name a tensor (a non-empty string other than __metadata__)'):format(tostring(name)), 2)
         end
         pairs_list[#pairs_list + 1] = {tostring(name), t}
      end
      table.sort(pairs_list, function(a, b) return a[1] < b[1] end)
   else
      error('ts.save(path, model or table of tensors): got ' .. type(what), 2)
   end
   local n = #pairs_list
   local names = ffi.new('const char *[?]', math.max(n, 1))
   local tensors = ffi.new('ts_tensor *[?]', math.max(n, 1))
   for i, pair in ipairs(pairs_list) do
      names[i - 1] = pair[1]
      tensors[i - 1] = pair[2]._c
   end
   -- metadata: string keys to strings (safetensors' rule); other values go as their JSON, in a copy (the caller's
   -- table was rewritten), and keys as strings (integer keys made a JSON array that no reader loads)
   local meta = nil
   if metadata then
      if type(metadata) ~= 'table' then error('ts.save: metadata must be a table, got ' .. type(metadata), 2) end
      local copy = {}
      for k, v in pairs(metadata) do
         if type(k) ~= 'string' and type(k) ~= 'number' then error('ts.save: metadata keys must be strings', 2) end
         copy[tostring(k)] = type(v) == 'string' and v or json.encode(v)
      end
      meta = json.encode(copy)
   end
   check(C.ts_safetensors_write(path, n, names, tensors, meta))
   return path
end

-- the tensors, the metadata, the names in file order and each tensor's dtype in the file ('F32', 'BF16', ...)
local function read_all(path)
   local f = C.ts_safetensors_open(path)
   if f == nil then fail() end
   f = ffi.gc(f, C.ts_safetensors_close)
   local out, order, file_dtypes = {}, {}, {}
   for i = 0, C.ts_safetensors_count(f) - 1 do
      local name = ffi.string(C.ts_safetensors_name(f, i))
      out[name] = T.wrap(C.ts_safetensors_tensor(f, i))
      order[#order + 1] = name
      file_dtypes[name] = ffi.string(C.ts_safetensors_dtype(f, i))
   end
   local meta = json.decode(ffi.string(C.ts_safetensors_metadata(f)))
   return out, meta, order, file_dtypes
end

-- The file dtypes that may fill a model tensor of each dtype: the same kind of number only, widened
-- exactly or rounded as usual (half precision and float64 weights become float32). An integer never fills
-- a float nor a float an integer: F32 weights whose header says I32 would load as values near 1e9.
local fills = {
   float32 = {F32 = true, F16 = true, BF16 = true, F64 = true},
   float64 = {F64 = true, F32 = true, F16 = true, BF16 = true},
   int64 = {I64 = true, I32 = true, U8 = true},
   int32 = {I32 = true, U8 = true},
   uint8 = {U8 = true},
}

function M.load(path, model, opts)
   cffi.path(path, 'ts.load(path [, model])')
   local tensors, meta, order, file_dtypes = read_all(path)
   if not model then return tensors, meta end
   local strict = not (opts and opts.strict == false)
   local prefix = opts and opts.prefix or ''
   if type(prefix) ~= 'string' then error('ts.load: prefix must be a string', 2) end
   local state = model:stateDict()
   local problems, used, known, wrong_kind = {}, {}, {}, {}
   for _, pair in ipairs(state) do
      local name, dst = prefix .. pair[1], pair[2]
      local src = tensors[name]
      known[name] = true
      if not src then
         if not pair[3] then problems[#problems + 1] = 'missing ' .. name end
      elseif not fills[dst:dtype()][file_dtypes[name]] then
         wrong_kind[#wrong_kind + 1] = ('%s has dtype %s in the file, %s in the model'):format(name, file_dtypes[name],
                                                                                              dst:dtype())
      elseif tostring(src:size()) ~= tostring(dst:size()) then
         problems[#problems + 1] = ('%s has shape %s in the file, %s in the model'):format(name, tostring(src:size()),
                                                                                          tostring(dst:size()))
      else
         used[name] = true
      end
   end
   for _, name in ipairs(order) do
      if not known[name] and name:sub(1, #prefix) == prefix then problems[#problems + 1] = 'unexpected ' .. name end
   end
   if #wrong_kind > 0 then
      error(('ts.load: %s does not fit the model: %s (integers and floats do not fill each other)'):format(path,
            table.concat(wrong_kind, '; ')), 0)
   end
   if strict and #problems > 0 then
      error(('ts.load: %s does not fit the model: %s'):format(path, table.concat(problems, '; ')), 0)
   end
   -- not strict: what is left out is said, and a file of which nothing fits (another network, or every name
   -- under a prefix such as DataParallel's 'module.') is refused: the model would keep its random weights
   if #problems > 0 then
      local listed = table.concat(problems, '; ', 1, math.min(#problems, 6)) .. (#problems > 6 and '; ...' or '')
      if not next(used) and #state > 0 then
         error(('ts.load: nothing in %s fits the model (strict = false loads what fits): %s'):format(path, listed), 0)
      end
      io.stderr:write(('note: ts.load: %s: %d tensor(s) left as they were or not used (strict = false): %s\n'):format(path,
                      #problems, listed))
   end
   for _, pair in ipairs(state) do
      if used[prefix .. pair[1]] then pair[2]:copy(tensors[prefix .. pair[1]]) end
   end
   return model, meta, tensors
end

return M
