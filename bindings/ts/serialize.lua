-- Checkpoints in the safetensors format, with PyTorch's state_dict names.
--   ts.save(path, model [, metadata])   the model's stateDict(); metadata: a table of strings
--   ts.save(path, {name = tensor, ...})  any tensors, e.g. for numpy or PyTorch
--   ts.load(path)                        a table name -> tensor, and the metadata table
--   ts.load(path, model [, {strict = false}])  copies into the model; strict (the default) fails on a
--                                        missing, unexpected or mis-shaped tensor, naming them (six, and a count); a
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
local keys = require('ts.keys')
local Module = require('ts.nn.module')

local M = {}

local function is_module(x) return type(x) == 'table' and x.stateDict ~= nil end

function M.save(path, what, metadata)
   cffi.path(path, 'ts.save(path, model or table)')
   local pairs_list = {}
   if is_module(what) then
      -- a class (nn.Linear, not nn.Linear(2, 3)) gave a stateDict of nothing, and an empty checkpoint was written
      Module.check(what, 'ts.save(path, model or table): model', 2)
      pairs_list = what:stateDict()
   elseif type(what) == 'table' then
      for name, t in pairs(what) do
         if not T.isTensor(t) then error(('ts.save: entry %s is not a tensor'):format(tostring(name)), 2) end
         -- names a file can hold and ts.load read back: strings (or numbers), not the header's own key; no NUL (the
         -- name was cut there: 'a\0b' saved as 'a') and UTF-8 (a Latin-1 name made a file ts.load refused)
         if (type(name) ~= 'string' and type(name) ~= 'number') or name == '__metadata__' or name == '' or
            (type(name) == 'string' and (name:find('\0', 1, true) or json.utf8(name) ~= name)) then
            local shown = type(name) == 'string' and name:find('[%z\1-\31\128-\255]') and keys.show(name) or tostring(name)
            error(('ts.save: %s cannot name a tensor (a non-empty UTF-8 string without NUL, other than __metadata__)')
                  :format(shown), 2)
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
         -- the key 1 and the key '1' are one string in the file: one of the two values was dropped without a word
         if copy[tostring(k)] ~= nil then
            error(('ts.save: metadata has the key %s twice (as a number and as a string)'):format(tostring(k)), 2)
         end
         -- as tensor names: a Latin-1 key or string value was written with U+FFFD in place of its bytes, and read back
         -- other than it was saved
         for _, s in ipairs({k, v}) do
            if type(s) == 'string' and json.utf8(s) ~= s then
               error(('ts.save: metadata %s: %s is not UTF-8 text, which a safetensors header holds'):format(keys.show(k),
                     keys.show(s)), 2)
            end
         end
         -- (a function value failed inside json.encode, naming neither ts.save nor the key)
         local ok, text = true, v
         if type(v) ~= 'string' then ok, text = pcall(json.encode, v) end
         if not ok then
            error(('ts.save: metadata %s: %s'):format(keys.show(k), tostring(text):gsub('^[^:]*:%d+: ', '')), 2)
         end
         copy[tostring(k)] = text
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

local load_options = {strict = 1, prefix = 1}

function M.load(path, model, opts)
   cffi.path(path, 'ts.load(path [, model])')
   -- checked before the file is read: opts = 5 and model = true were indexed (a class, nn.Linear, read as a model of
   -- no tensors: "unexpected weight"); strcit = false was ignored
   if model then Module.check(model, 'ts.load(path, model, opts): model', 2) end
   if opts ~= nil then keys.check('ts.load', opts, load_options, 2) end
   -- strict = 0 or 'false' was taken as strict (only false turned it off)
   keys.flag(opts and opts.strict, 'ts.load', 'strict', 2)
   local prefix = opts and opts.prefix or ''
   if type(prefix) ~= 'string' then error('ts.load: prefix must be a string', 2) end
   local tensors, meta, order, file_dtypes = read_all(path)
   if not model then return tensors, meta end
   local strict = not (opts and opts.strict == false)
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
   -- the first six problems and how many more: another network's file listed each of its thousands of tensors
   local listed = table.concat(problems, '; ', 1, math.min(#problems, 6)) ..
                  (#problems > 6 and ('; and %d more'):format(#problems - 6) or '')
   if strict and #problems > 0 then
      error(('ts.load: %s does not fit the model: %s'):format(path, listed), 0)
   end
   -- not strict: what is left out is said, and a file of which nothing fits (another network, or every name
   -- under a prefix such as DataParallel's 'module.') is refused: the model would keep its random weights
   if #problems > 0 then
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
