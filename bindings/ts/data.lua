-- ts.data: datasets as uint8 images in memory, read once from the files the course distributes.
--   ts.data.readPickle(path [, {quiet = true}])
--                                   a pickled dict of numpy arrays -> {name = tensor}, {'key: why', ...}:
--                                   the entries it skipped (not numeric arrays), noted on stderr unless quiet
--   ts.data.readLabelNames(path)    label_names.csv -> {[0] = 'Speed limit (20km/h)', ...}
--   ts.data.gtsrb([dir])            {train, valid, test, classNames}; dir from the argument, else
--                                   TSHOST_DATA, else data/
-- A dataset: ds.x uint8 [N,H,W,C] (channels last, as stored), ds.y int64 [N] (0-based ClassIds below
-- ts.data.maxClasses), ds.classNames, ds:size(), ds:counts(). From gtsrb also ds.extra (every array of the
-- pickle) and, when the pickle has them, ds.coords [N,4] (bounding boxes) and ds.sizes [N,2] (original sizes).
local ffi = require('ffi')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local files = require('ts.files')
local keys = require('ts.keys')
local C, fail = cffi.C, cffi.fail

local data = {}

function data.readPickle(path, opts)
   cffi.path(path, 'ts.data.readPickle(path)')
   if opts ~= nil then keys.check('ts.data.readPickle', opts, {quiet = 1}, 2) end
   local p = C.ts_pickle_load(path)
   if p == nil then fail() end
   p = ffi.gc(p, C.ts_pickle_free)
   local out, skipped = {}, {}
   for i = 0, C.ts_pickle_count(p) - 1 do
      -- keys are read as text: the int 0 and the str '0' (or b'0') are two keys to Python, one here, and the array
      -- of either was dropped without a word
      local key = ffi.string(C.ts_pickle_key(p, i))
      if out[key] then
         error(('%s: two arrays under the key %s (an int and a str, or bytes and a str?): tshost reads keys as text')
               :format(path, keys.show(key)), 0)
      end
      out[key] = T.wrap(C.ts_pickle_tensor(p, i))
   end
   for i = 0, C.ts_pickle_skipped_count(p) - 1 do
      skipped[i + 1] = ffi.string(C.ts_pickle_skipped(p, i))
      if not (opts and opts.quiet) then io.stderr:write(('note: %s: skipped %s\n'):format(path, skipped[i + 1])) end
   end
   return out, skipped
end

-- the bound on class ids (keys.MAX_CLASSES says why)
local MAX_CLASSES = keys.MAX_CLASSES
data.maxClasses = MAX_CLASSES

-- a CSV line split on sep (',' by default), with "quoted, fields" kept whole
local function csv_fields(line, sep)
   sep = sep or ','
   local out, i = {}, 1
   line = line:gsub('\r$', '')
   while i <= #line + 1 do
      if line:sub(i, i) == '"' then
         local j, field = i + 1, {}
         while true do
            local c = line:sub(j, j)
            if c == '' then error('unterminated quote', 0) end
            if c == '"' and line:sub(j + 1, j + 1) == '"' then field[#field + 1] = '"'; j = j + 2
            elseif c == '"' then j = j + 1 break
            else field[#field + 1] = c; j = j + 1 end
         end
         -- a quoted field ends at its closing quote: text after it ("Speed"limit) would be lost
         if j <= #line and line:sub(j, j) ~= sep then
            error(('text after the closing quote of field %d: %s'):format(#out + 1, line:sub(i, j)), 0)
         end
         out[#out + 1] = table.concat(field)
         i = j + 1
      else
         local j = line:find(sep, i, true) or #line + 1
         out[#out + 1] = line:sub(i, j - 1)
         i = j + 1
      end
   end
   return out
end
data.csvFields = csv_fields

-- rows of a CSV file with a header, as tables keyed by column name; the separator is ';' when the header
-- has semicolons and no commas (GTSRB's original files), else ','. A UTF-8 byte-order mark before the header
-- (spreadsheets and Python's utf-8-sig write one) is not part of it, even before a quoted first name.
-- Also returns, for each row, its line in the file. A row with more cells than the header names (up to its last
-- non-empty one: a comma in an unquoted name, "Keep right, please") is an error naming the file and line: a reader of
-- columns dropped those cells without a word.
function data.readCSV(path)
   if type(path) ~= 'string' then error('ts.data.readCSV(path): path must be a string, got ' .. type(path), 2) end
   local f, err = io.open(path, 'rb')
   if not f then error(('%s: cannot open (%s)'):format(path, err), 0) end
   local text = f:read('*a')
   f:close()
   if not text then error(('%s: cannot be read (a folder?)'):format(path), 0) end
   -- a NUL byte is no text (a binary file, or damage): read line by line it silently joined two rows
   local nul = text:find('\0', 1, true)
   if nul then
      local _, lines = text:sub(1, nul):gsub('\n', '')
      error(('%s:%d: a NUL byte: not a text file'):format(path, lines + 1), 0)
   end
   -- lines ended by a CR alone (classic Mac OS, some exporters) are lines, as Python's csv and pandas read them: the
   -- file was one line, a header of every row
   text = text:gsub('\r\n?', '\n')
   local header, rows, n, sep, lines = nil, {}, 0, nil, {}
   for line in text:gmatch('([^\n]*)\n?') do
      n = n + 1
      if n == 1 then line = line:gsub('^\239\187\191', '') end
      if line:match('%S') then
         sep = sep or ((line:find(';', 1, true) and not line:find(',', 1, true)) and ';' or ',')
         local ok, fields = pcall(csv_fields, line, sep)
         if not ok then error(('%s:%d: %s'):format(path, n, fields), 0) end
         local cells = 0   -- a row of empty cells only (',,' as spreadsheets end a sheet) is a blank line
         for i, v in ipairs(fields) do if v ~= '' then cells = i end end
         if cells > 0 and not header then header = fields
         elseif cells > 0 then
            if cells > #header then
               error(('%s:%d: %d cells, but the header names %d columns (a comma in an unquoted field? quote it)'):format(
                     path, n, cells, #header), 0)
            end
            local row = {}
            for i, name in ipairs(header) do row[name] = fields[i] end
            local k = #rows + 1
            rows[k], lines[k] = row, n
         end
      end
   end
   return rows, header, lines
end

-- a number as a CSV cell holds one, in decimal digits: tonumber also took 0x10, 1e1, inf and nan
local decimal = '^%s*%-?%d+%.?%d*%s*$'

-- what is wrong with a ClassId (a number or nil), or nil
local function class_id_problem(id)
   if not id or id ~= id then return 'is not a number' end
   if id ~= math.floor(id) then return 'is not a whole number' end
   if id < 0 then return 'is negative' end
   if id >= MAX_CLASSES then return ('is beyond %d (ts.data.maxClasses - 1)'):format(MAX_CLASSES - 1) end
end

-- label_names.csv: a header ClassId,SignName, then one row per class with ids 0..max, each once. Rows are
-- counted with the header as row 1, blank lines skipped.
function data.readLabelNames(path)
   if type(path) ~= 'string' then error('ts.data.readLabelNames(path): path must be a string, got ' .. type(path), 2) end
   local rows, header = data.readCSV(path)
   local idcol = header and header[1]
   if idcol ~= 'ClassId' or header[2] ~= 'SignName' then
      error(('%s: expected the header ClassId,SignName'):format(path), 2)
   end
   local names, row_of, max = {}, {}, -1
   for i, row in ipairs(rows) do
      -- in decimal digits: tonumber would also take 0x1 and 1e0
      local text = row[idcol]
      local id = text and text:match(decimal) and tonumber(text) or nil
      local problem = class_id_problem(id) or names[id] and ('repeats row %d'):format(row_of[id])
                      or not row.SignName and 'has no SignName'
                      -- (pandas reads an empty cell as NaN; here it named the class '' in every report)
                      or not row.SignName:match('%S') and 'has an empty SignName'
      if problem then error(('%s: row %d: ClassId %q %s'):format(path, i + 1, tostring(text), problem), 2) end
      names[id], row_of[id], max = row.SignName, i + 1, math.max(max, id)
   end
   for id = 0, max do
      if not names[id] then
         error(('%s: no row has ClassId %d, though row %d has ClassId %d (ids must run 0..max)'):format(path, id, row_of[max], max), 2)
      end
   end
   return names
end

local Dataset = {}
Dataset.__index = Dataset

local ctypes = T.ctypes

local survey = T.survey

-- Images as uint8: integers in 0..255 as they are, floats within 0..1 (normalized images) scaled by 255 and
-- rounded, floats in 0..255 rounded, each reading of floats said in a note. Anything else is refused, not
-- clamped: it means a wrong file or key. So is a brightest value between 1 and 2: 0..1 images pushed past 1
-- (a brightness change left unclipped) that read as 0..255 would come out all but black, and 0..255 images
-- are not that dark.
local function image_bytes(x, where, key)
   if x:dtype() == 'uint8' or x:numel() == 0 then return x:byte() end
   local lo, hi, nonfinite = survey(x)
   if nonfinite > 0 then error(('%s: %s holds %d NaN or infinite values'):format(where, key, nonfinite), 0) end
   if lo < 0 or hi > 255 then
      error(('%s: %s holds %s values in [%.9g, %.9g], outside 0..255 (images are read as uint8)'):format(where, key, x:dtype(), lo, hi), 0)
   end
   if x:dtype() ~= 'float32' and x:dtype() ~= 'float64' then return x:byte() end
   if hi > 1 and hi < 2 then
      error(('%s: %s holds %s values in [%.9g, %.9g]: neither 0..1 images (some lie above 1) nor 0..255 ones (the '
             .. 'brightest is below 2); clip 0..1 images to 1 before saving them'):format(where, key, x:dtype(), lo, hi), 0)
   end
   local scale = hi <= 1 and 255 or 1
   io.stderr:write(('note: %s: %s holds %s values in [%.9g, %.9g], read as %s\n'):format(where, key, x:dtype(), lo, hi,
                   scale == 255 and '0..1 images: scaled by 255 and rounded to uint8' or '0..255 images: rounded to uint8'))
   x = x:cpu():contiguous()
   local out = T.zeros(x:size(), 'uint8')
   local src, dst = ffi.cast(ctypes[x:dtype()], x:data()), ffi.cast('uint8_t *', out:data())
   for i = 0, x:numel() - 1 do dst[i] = math.floor(src[i] * scale + 0.5) end
   return out
end

-- Labels as int64 class ids [N]: whole numbers in 0 .. maxClasses-1, whatever their dtype.
local function class_ids(y, where, key)
   if not T.isTensor(y) then error(('%s: %s must be a tensor'):format(where, key), 0) end
   if y:dim() > 2 or (y:dim() == 2 and y:size(2) ~= 1) then
      error(('%s: %s must be class ids [N], got %s (one-hot or probability rows? give their argmax)'):format(where, key,
            tostring(y:size())), 0)
   end
   if y:numel() > 0 and y:dtype() ~= 'uint8' then
      local lo, hi, nonfinite, fractional = survey(y)
      if nonfinite > 0 then error(('%s: %s holds %d NaN or infinite labels'):format(where, key, nonfinite), 0) end
      if fractional > 0 then error(('%s: %s holds %d labels that are not whole numbers'):format(where, key, fractional), 0) end
      if lo < 0 or hi >= MAX_CLASSES then
         error(('%s: %s holds labels from %.0f to %.0f; class ids lie in 0..%d'):format(where, key, lo, hi, MAX_CLASSES - 1), 0)
      end
   end
   return y:long():contiguous():view(-1)
end

-- Class names keyed by class id from 0: from a table keyed by id (numbers, or the strings JSON makes of them, as
-- ts.train writes config.json's class_names). With from_json, a JSON array (a list from 1 once decoded, holes
-- where it had nulls) is a list of names in class order whose first is class 0's, as a Python list's is; a Lua
-- table is always keyed by id (a dataset's names, whose class 0 may have none, keep their ids however often they
-- pass through here). Anything else is an error naming `where`; nil gives an empty table.
function data.classNamesById(names, where, from_json)
   if names == nil then return {} end
   if type(names) ~= 'table' then
      error(('%s: class names must be a table (id -> name) or a list of names, got %s'):format(where, type(names)), 2)
   end
   local list = from_json and names[0] == nil and names['0'] == nil and next(names) ~= nil
   if list then
      for k in pairs(names) do
         if type(k) ~= 'number' or k % 1 ~= 0 or k < 1 then list = false end
      end
   end
   -- a string key is an id in decimal digits, as JSON writes one: tonumber also read ' 1', '1.0', '0x1' and '1e0',
   -- and two keys of one id ('1' and 1, '01' and '1') kept whichever pairs gave last
   local out, key_of = {}, {}
   for k, v in pairs(names) do
      local id = list and k - 1 or (type(k) == 'number' and k) or (type(k) == 'string' and k:match('^%d+$') and tonumber(k))
      if not id or id % 1 ~= 0 or id < 0 or id >= MAX_CLASSES or type(v) ~= 'string' then
         error(('%s: class names must map a class id from 0 to %d to a string, got %s = %s'):format(where,
               MAX_CLASSES - 1, tostring(k), tostring(v)), 2)
      end
      if key_of[id] ~= nil then
         error(('%s: class names name class %d twice, as %s = %s and %s = %s'):format(where, id, keys.show(key_of[id]),
               keys.show(out[id]), keys.show(k), keys.show(v)), 2)
      end
      out[id], key_of[id] = v, k
   end
   return out
end

-- the dataset of images x and labels y, named in errors as `where` (the file) and `xkey`, `ykey`
local function new_dataset(x, y, classNames, name, where, xkey, ykey)
   if not T.isTensor(x) or x:dim() ~= 4 then   -- (the message named neither what it got nor the likely fix)
      error(('%s: %s must be a 4-d tensor [N,H,W,C] or [N,C,H,W], got %s%s'):format(where, xkey, keys.show(x),
            T.isTensor(x) and x:dim() == 3 and ' (grayscale images [N,H,W]? give them a channel: x:view(N, H, W, 1))' or ''), 0)
   end
   if x:size(4) ~= 1 and x:size(4) ~= 3 then
      if x:size(2) == 1 or x:size(2) == 3 then
         x = x:transpose(2, 3):transpose(3, 4):contiguous()   -- channels first -> last, once
      else
         error(('%s: %s %s are neither [N,H,W,C] nor [N,C,H,W] with 1 or 3 channels'):format(where, xkey, tostring(x:size())), 0)
      end
   end
   x = image_bytes(x, where, xkey)
   y = class_ids(y, where, ykey)
   if y:numel() ~= x:size(1) then
      error(('%s: %d images (%s) but %d labels (%s)'):format(where, x:size(1), xkey, y:numel(), ykey), 0)
   end
   return setmetatable({x = x:contiguous(), y = y, classNames = data.classNamesById(classNames, where),
                        name = name or 'dataset'}, Dataset)
end

-- ds = ts.data.Dataset(x, y [, classNames, name]): x [N,H,W,C] or [N,C,H,W] (C = 1 or 3), uint8 or values that
-- image_bytes reads as uint8; y labels [N]
-- name, unless it is neither nil nor a string: an error naming the call, at `level` as error's, counted from the
-- caller (a table failed inside on concatenating it)
local function check_name(name, what, level)
   if name ~= nil and type(name) ~= 'string' then
      error(('%s: name must be a string, got %s'):format(what, keys.show(name)), level + 1)
   end
   return name
end

function data.Dataset(x, y, classNames, name)
   check_name(name, 'Dataset(x, y, classNames, name)', 2)
   local ok, ds = pcall(new_dataset, x, y, classNames, name, name and 'Dataset ' .. name or 'Dataset', 'images', 'labels')
   if not ok then error(ds, 2) end
   return ds
end

function Dataset:size() return self.x:size(1) end
-- an image's shape, [HxWxC] as a string: what every split fed to one network must share
function Dataset:imageShape() return (tostring(self.x:size()):gsub('^%[%d+x?', '[')) end
function Dataset:numClasses()
   local n = self.y:numel() > 0 and self.y:max() + 1 or 0
   for k in pairs(self.classNames) do n = math.max(n, k + 1) end
   return n
end

-- counts[c] for c = 0 .. classes-1
function Dataset:counts()
   local counts = {}
   for c = 0, self:numClasses() - 1 do counts[c] = 0 end
   local p = ffi.cast('int64_t *', self.y:data())
   for i = 0, self.y:numel() - 1 do counts[tonumber(p[i])] = counts[tonumber(p[i])] + 1 end
   return counts
end

function Dataset:__tostring()
   return ('Dataset %s: %d images %s, %d classes'):format(self.name, self:size(), tostring(self.x:size()), self:numClasses())
end

-- self, unless a method was called on no dataset (ds.subset(p) for ds:subset(p)): an error naming the call, at the
-- method's caller (it failed inside on indexing a nil or a list)
local function check_self(self, what)
   data.checkDataset(self, what, 'ds (called as ds:method(...))', 3)   -- not a tail call: the level counts this frame
end

-- a dataset holding the images at the given 1-based positions (a list or a 1-d tensor), in their order, repeats
-- included
function Dataset:subset(indices, name)
   local what = 'ds:subset(positions [, name])'
   check_self(self, what)
   check_name(name, what, 2)
   local list, n = data.checkPositions(indices, self:size(), what, 2)
   local h, w, c = self.x:size(2), self.x:size(3), self.x:size(4)
   local x, y = T.zeros({n, h, w, c}, 'uint8'), T.zeros({n}, 'int64')
   local sx, sy = self.x:cpu():contiguous(), self.y:cpu():long():contiguous()
   local per = h * w * c
   local src, dst = ffi.cast('uint8_t *', sx:data()), ffi.cast('uint8_t *', x:data())
   local ysrc, ydst = ffi.cast('int64_t *', sy:data()), ffi.cast('int64_t *', y:data())
   for i = 1, n do
      local j = list[i] - 1
      ffi.copy(dst + (i - 1) * per, src + j * per, per)
      ydst[i - 1] = ysrc[j]
   end
   return data.Dataset(x, y, self.classNames, name or self.name)
end
data.DatasetClass = Dataset

-- Several datasets as one, their images in the order given: train and valid together, for a last training on every
-- labelled image once validation has fixed the recipe. Every part must have the first's image shape and class
-- names (the same id naming the same sign); boxes (coords, sizes) are not carried over.
function data.join(list, name)
   -- every part up to the highest: {a, nil, b} was a and no more, without a word
   local parts = type(list) == 'table' and table.maxn(list) or 0
   if parts == 0 then error('ts.data.join: expects a list of datasets', 2) end
   check_name(name, 'ts.data.join(list [, name])', 2)
   local n, first = 0, list[1]
   for k = 1, parts do
      local ds = list[k]
      if getmetatable(ds) ~= Dataset then
         error(('ts.data.join: part %d is not a dataset, got %s'):format(k, type(ds) == 'table' and 'a table that is not one'
               or keys.show(ds)), 2)
      end
      if ds:imageShape() ~= first:imageShape() then
         error(('ts.data.join: part %d (%s) has images %s, part 1 (%s) %s'):format(k, ds.name, ds:imageShape(),
               first.name, first:imageShape()), 2)
      end
      for _, pair in ipairs({{ds.classNames, first.classNames}, {first.classNames, ds.classNames}}) do
         for id, label in pairs(pair[1]) do
            if pair[2][id] ~= label then
               local function named(name) return name and ('%q'):format(name) or 'unnamed' end
               error(('ts.data.join: class %d is %s in part %d (%s) but %s in part 1 (%s)'):format(id,
                     named(ds.classNames[id]), k, ds.name, named(first.classNames[id]), first.name), 2)
            end
         end
      end
      n = n + ds:size()
   end
   local x = T.zeros({n, first.x:size(2), first.x:size(3), first.x:size(4)}, 'uint8')
   local y = T.zeros({n}, 'int64')
   local at = 1
   for _, ds in ipairs(list) do
      if ds:size() > 0 then
         x:narrow(1, at, ds:size()):copy(ds.x)
         y:narrow(1, at, ds:size()):copy(ds.y)
      end
      at = at + ds:size()
   end
   return data.Dataset(x, y, first.classNames, name or first.name)
end

-- kept, held, record = ds:splitTracks{share = 0.1, track = 30}: an evenly spaced share of the set's tracks held out
-- whole, the rest kept. A track is a run of consecutive images of one label, cut every `track` images: GTSRB's
-- pickles store a physical sign's 30 frames together, and frames of one sign on both sides would make the held-out
-- images look easier than a new sign is. Track i (0-based, in stored order) is held when floor((i+1)*share) >
-- floor(i*share): floor(tracks*share) of them, spread over the order (GTSRB's is by class), so their classes follow
-- the set's proportions. record = {share, track, tracks, held_tracks, images, fingerprint} names the held-out part
-- so that a run can rebuild and check it. track = 1 holds out single images.
local split_keys = {share = 1, track = 1}
function Dataset:splitTracks(opts)
   check_self(self, 'ds:splitTracks(opts)')
   opts = keys.check('splitTracks', opts or {}, split_keys, 2)
   local share, track = opts.share or 0.1, opts.track or 30
   if type(share) ~= 'number' or not (share > 0 and share < 1) then
      error(('splitTracks: share must be a number between 0 and 1 (exclusive), got %s'):format(keys.show(share)), 2)
   end
   keys.count(track, 'splitTracks', 'track (images)', 1, 2 ^ 31, 2)
   local y, n = ffi.cast('int64_t *', self.y:data()), self:size()
   local kept, held, tracks, held_tracks, i = {}, {}, 0, 0, 0
   while i < n do   -- one track: images i .. i+len-1
      local len = 1
      while i + len < n and len < track and y[i + len] == y[i] do len = len + 1 end
      local hold = math.floor((tracks + 1) * share) > math.floor(tracks * share)
      local into = hold and held or kept
      for j = i + 1, i + len do into[#into + 1] = j end
      tracks, held_tracks, i = tracks + 1, held_tracks + (hold and 1 or 0), i + len
   end
   if #held == 0 or #kept == 0 then
      error(('splitTracks: %s has %d tracks of up to %d images; a share of %g holds out %d of them: nothing to %s'):format(
            self.name, tracks, track, share, held_tracks, #held == 0 and 'hold out' or 'keep'), 2)
   end
   local h = self:subset(held, self.name .. ' (held out)')
   return self:subset(kept, self.name .. ' (kept)'), h,
          {share = share, track = track, tracks = tracks, held_tracks = held_tracks, images = #held,
           fingerprint = h:fingerprint()}
end

-- the course's per-image bounding boxes (coords [N,4]) and original image sizes (sizes [N,2]) as ds.coords and
-- ds.sizes, when the pickle has them in that shape
local function attach_boxes(ds, d, path)
   for _, k in ipairs({{'coords', 4}, {'sizes', 2}}) do
      local key, width, t = k[1], k[2], d[k[1]]
      if t and t:dim() == 2 and t:size(1) == ds:size() and t:size(2) == width then ds[key] = t
      elseif t then
         io.stderr:write(("note: %s: key '%s' is %s, not [%dx%d]; it is left in ds.extra only\n")
                         :format(path, key, tostring(t:size()), ds:size(), width))
      end
   end
end

local function exists(path)
   local f = io.open(path, 'rb')
   if f then f:close() end
   return f ~= nil
end

-- The folder GTSRB is read from, and who named it: dir when given ('argument'), else TSHOST_DATA unless it is unset or
-- empty ('TSHOST_DATA'), else data/ ('default': the only one that may be missing without an error, see ts.experiment)
function data.gtsrbFolder(dir)
   if dir ~= nil then return dir, 'argument' end
   local env = os.getenv('TSHOST_DATA')
   if env and env ~= '' then return env, 'TSHOST_DATA' end
   return 'data', 'default'
end

local looked_because = {argument = 'it was given', TSHOST_DATA = 'TSHOST_DATA names it',
                        default = 'neither an argument nor TSHOST_DATA was given'}
function data.gtsrb(dir)
   -- a table failed inside on concatenating it, '' looked in / (its files as /train.pickle)
   if dir ~= nil and (cffi.path(dir, 'ts.data.gtsrb(dir)') == '') then
      error('ts.data.gtsrb(dir): dir must name a folder, got the empty string', 2)
   end
   local how
   dir, how = data.gtsrbFolder(dir)
   local files = {'train.pickle', 'valid.pickle', 'test.pickle', 'label_names.csv'}
   for _, f in ipairs(files) do
      if not exists(dir .. '/' .. f) then
         error(('GTSRB: %s not found in %s (looked there because %s). The dataset is the 32x32 pickled GTSRB of the ' ..
                'traffic-sign course (train.pickle, valid.pickle, test.pickle, label_names.csv), made from the ' ..
                'German Traffic Sign Recognition Benchmark (benchmark.ini.rub.de); put the files in data/ or point ' ..
                'TSHOST_DATA at them'):format(f, dir, looked_because[how]), 2)
      end
   end
   local names = data.readLabelNames(dir .. '/label_names.csv')
   local out = {classNames = names}
   for _, split in ipairs({'train', 'valid', 'test'}) do
      local path = dir .. '/' .. split .. '.pickle'
      local d = data.readPickle(path)
      if not d.features or not d.labels then   -- (what it has instead: X_train, y_train, or labels skipped as a list)
         local have = {}
         for k in pairs(d) do have[#have + 1] = keys.show(k) end
         table.sort(have)
         error(('%s: expected the keys features and labels; its arrays are %s'):format(path,
               #have > 0 and table.concat(have, ', ') or 'none'), 2)
      end
      local ok, ds = pcall(new_dataset, d.features, d.labels, names, split, path, "key 'features'", "key 'labels'")
      if not ok then error(ds, 2) end
      -- a label without a name (1-based labels, a row missing from the CSV) would shift every name it shows
      local top = ds:size() > 0 and ds.y:max() or -1
      if top >= 0 and not names[top] then
         error(('%s: a label %d, which %s/label_names.csv does not name (it names %d classes)'):format(path, top, dir,
               names[0] and #names + 1 or 0), 0)
      end
      -- 0s and 1s only (a numpy bool array, a mask): images that dark are readable by nothing, so say so (the
      -- scan stops at the first brighter value, within a few bytes of a real image)
      local p, bright = ffi.cast('uint8_t *', ds.x:data()), false
      for i = 0, ds.x:numel() - 1 do
         if p[i] > 1 then bright = true break end
      end
      if not bright and ds.x:numel() > 0 then
         io.stderr:write(('note: %s: key \'features\' holds only the values 0 and 1 (a bool array or a mask?): read as '
                          .. '0..255 images, nearly black\n'):format(path))
      end
      -- the splits feed one network: images of another size or channel count would fail later, inside a layer
      local first = out.train
      if first and first:imageShape() ~= ds:imageShape() then
         error(('%s: images %s do not match %s/train.pickle\'s %s (same height, width and channels in every split)'):format(
               path, tostring(ds.x:size()), dir, tostring(first.x:size())), 0)
      end
      attach_boxes(ds, d, path)
      ds.extra = d
      out[split] = ds
   end
   return out
end

-- per-channel mean and standard deviation of the images in 0..1 (for ts.data.preprocess), over every
-- floor(N / limit)-th image (limit 5000 by default; every image when N < 2 limit), so about `limit` to 2 limit images
-- spread evenly through the set. A limit that is no whole number from 1 (0 took one image, -1, NaN and math.huge none
-- or all) and a set of no images (NaN means, which only preprocess named) are refused.
function Dataset:channelStats(limit)
   local what = 'ds:channelStats([limit])'
   check_self(self, what)
   if limit ~= nil then keys.sizes(limit, what, 'limit', 1, 1) end
   local n = self:size()
   if n == 0 then error(('%s: %s holds no images'):format(what, tostring(self.name)), 2) end
   local step = math.max(1, math.floor(n / (limit or 5000)))
   local count, c = 0, self.x:size(4)
   local sum, sq = {}, {}
   for ch = 1, c do sum[ch], sq[ch] = 0, 0 end
   local hw = self.x:size(2) * self.x:size(3)
   local p = ffi.cast('uint8_t *', self.x:data())
   for i = 0, n - 1, step do
      local base = i * hw * c
      for k = 0, hw - 1 do
         for ch = 1, c do
            local v = p[base + k * c + ch - 1] / 255
            sum[ch] = sum[ch] + v
            sq[ch] = sq[ch] + v * v
         end
      end
      count = count + hw
   end
   local mean, std = {}, {}
   for ch = 1, c do
      mean[ch] = sum[ch] / count
      std[ch] = math.sqrt(math.max(sq[ch] / count - mean[ch] ^ 2, 1e-12))
   end
   return mean, std
end

-- What identifies these images and labels, for a run to check that it goes on or is studied with the data it
-- was trained on: "N images HxWxC, crc32c XXXXXXXX, labels crc32c XXXXXXXX" (CRC-32C of the uint8 pixels and of
-- the int64 labels, 28 ms for GTSRB's training set; data.fingerprintLabels reads the labels' CRC back)
function Dataset:fingerprint()
   check_self(self, 'ds:fingerprint()')
   local x = self.x:contiguous()
   return ('%d images %dx%dx%d, crc32c %08x, labels crc32c %s'):format(self:size(), x:size(2), x:size(3), x:size(4),
      C.ts_crc32c(x:data(), x:numel()), data.labelsCrc(self.y))
end
function data.fingerprintLabels(fingerprint) return fingerprint:match('labels crc32c (%x+)$') end

-- The CRC-32C of labels (class ids, read as int64) in hex, as fingerprints show it: what ts.ensemble matches its
-- members' labels by
function data.labelsCrc(y)
   local l = y:cpu():long():contiguous()
   return ('%08x'):format(C.ts_crc32c(l:data(), l:numel() * 8))
end

-- The fingerprints of the splits of sets ({train =, valid =, test =}; a split not given is 'none'), as a run
-- records them
function data.fingerprints(sets, splits)
   local out = {}
   for _, split in ipairs(splits) do out[split] = sets[split] and sets[split]:fingerprint() or 'none' end
   return out
end

-- An error unless every split `recorded` holds (a run's record, read from its `file`) has the fingerprint
-- `now` gives it: "<run> <did> other <split> data (its <file> has ..., the data here is ...): <advice>"
function data.checkFingerprints(run, did, file, recorded, now, advice)
   -- a damaged record's data ("x", a list) skipped the check, and the run went on as if its data were known
   if type(recorded) ~= 'table' then
      error(('%s: its %s records its data as %s, not as the fingerprints of its splits'):format(run, file,
            keys.show(recorded)), 0)
   end
   for _, split in ipairs{'train', 'valid', 'test'} do
      if recorded[split] ~= nil and recorded[split] ~= now[split] then
         error(('%s %s other %s data (its %s has %s, the data here is %s): %s'):format(run, did, split, file,
               tostring(recorded[split]), tostring(now[split]), advice), 0)
      end
   end
end

-- imbalance figures: the largest and smallest class counts and their ratio
function Dataset:imbalance()
   check_self(self, 'ds:imbalance()')
   -- no images: the figures were -1 or 0 over infinity
   if self:size() == 0 then error(('ds:imbalance(): %s holds no images'):format(tostring(self.name)), 2) end
   local counts, most, least, cmost, cleast = self:counts(), -1, math.huge, nil, nil
   for c, n in pairs(counts) do
      if n > most then most, cmost = n, c end
      if n > 0 and n < least then least, cleast = n, c end
   end
   return {largest = most, largest_class = cmost, smallest = least, smallest_class = cleast, ratio = most / least}
end

-- weights for CrossEntropyLoss that make every class count equally: total / (classes * count[c])
function Dataset:classWeights()
   local counts, classes = self:counts(), self:numClasses()
   local w = T.zeros(classes)
   for c = 0, classes - 1 do w[c + 1] = counts[c] > 0 and self:size() / (classes * counts[c]) or 0 end
   return w
end

local image = require('ts.image')

-- images of any size and format as a dataset of size x size images; items = {{path, label, roi, where}, ...}, where
-- (the CSV's file and line) leading each error about the item
local function from_files(items, size, names, name)
   local x = T.zeros({#items, size, size, 3}, 'uint8')
   local y = T.zeros({#items}, 'int64')
   for i, it in ipairs(items) do
      local at = it[4] and it[4] .. ': ' or ''
      local ok, img = pcall(image.load, it[1])
      if not ok then error(at .. tostring(img), 3) end
      local roi = it[3]
      -- a list's box must lie in its image (resize would repeat the border pixels beyond the edge, as a search
      -- window may, and a wrong box would pass unnoticed)
      if roi and not (roi[1] >= 0 and roi[2] >= 0 and roi[3] <= img:size(2) and roi[4] <= img:size(1)
                      and roi[3] > roi[1] and roi[4] > roi[2]) then
         error(('%s%s: its box %s,%s,%s,%s (end exclusive) does not lie in the %dx%d image'):format(at, it[1],
               tostring(roi[1]), tostring(roi[2]), tostring(roi[3]), tostring(roi[4]), img:size(2), img:size(1)), 3)
      end
      x[i]:copy(image.resize(img, size, size, roi))
      y[i] = it[2]
   end
   return data.Dataset(x, y, names, name)
end

-- the classNames option of a reader (what: its name) by class id, or an error at the reader's caller
local function class_names_option(names, what)
   local ok, out = pcall(data.classNamesById, names, what .. ': classNames')
   if not ok then error(out, 3) end
   return out
end

-- torchvision's ImageFolder extensions, so that none of its images is left out without a word (a .pgm was): a .tif or
-- .webp, which tshost cannot decode, is refused naming the file and the formats it reads
local image_extensions = {png = true, jpg = true, jpeg = true, ppm = true, pgm = true, bmp = true, tif = true,
                          tiff = true, webp = true}

-- Appends to items {path, label} for each image file under the folder `at`, its subfolders' included (as
-- torchvision's ImageFolder takes them), in sorted order, a subfolder's images at its place. seen: the folders walked,
-- by their real path, each with the class it was walked for and its path; the folder of the classes is in it from the
-- start, with no class. A link back to a folder of the same class (a loop) is walked once; one to another class's
-- folder, or to the folder of the classes or above it, gave that folder's images this class too (a link to .. made
-- every image of every class one of this class as well). Returns nil, or why the walk cannot go on.
local function images_under(at, label, items, seen)
   local real = files.realpath(at) or at
   local first, above = seen[real], real:gsub('/$', '') .. '/'
   if not first and seen.top:sub(1, #above) == above then first = seen[seen.top] end
   if first and first.label == label then return nil end
   if first then
      local where = real == at and at or ('%s (really %s)'):format(at, real)
      if not first.label then
         return ('%s is the folder that holds the class folders%s: the images of every class would be of class %d as well')
                :format(where, real == seen.top and '' or ' or one above it', label)
      end
      return ('%s is reached by class %d as %s: its images would be of classes %d and %d'):format(where, first.label,
             first.path, first.label, label)
   end
   seen[real] = {label = label, path = at}
   local names, why = files.list(at)
   if not names then return why end
   for _, f in ipairs(names) do
      local p = at .. '/' .. f
      if files.isDir(p) then
         local err = images_under(p, label, items, seen)
         if err then return err end
      elseif image_extensions[(f:match('%.([^.]+)$') or ''):lower()] then
         items[#items + 1] = {p, label}
      end
   end
end

-- A folder with one subfolder per class: each named by its 0-based ClassId in decimal digits (00, 1, 42, ...), or
-- else by any name, the classes then numbered in sorted order of the names, as torchvision's ImageFolder does. Files
-- beside the class folders are no classes; the images of a class are its folder's image files (torchvision's
-- extensions), its subfolders' included. opts: size (32), classNames (by class id; over the folders' names).
local folder_options = {size = 1, classNames = 1}
function data.imageFolder(dir, opts)
   local what = 'ts.data.imageFolder'
   cffi.path(dir, 'ts.data.imageFolder(dir, opts)')
   opts = keys.check(what, opts or {}, folder_options, 2)
   local size = keys.sizes(opts.size or 32, what, 'size', 1, 1)
   local entries, why = files.list(dir)
   if not entries then error(('%s: %s is missing or empty (%s)'):format(what, dir, why), 2) end
   -- folders only: a README beside them was a class, and made the numbered folders' ids sorted positions
   local classes = {}
   for _, d in ipairs(entries) do
      if files.isDir(dir .. '/' .. d) then classes[#classes + 1] = d end
   end
   if #classes == 0 then error(('%s: %s is missing or empty: it holds no class folders'):format(what, dir), 2) end
   -- decimal digits only: tonumber also read 0x10 as 16, 1e1 as 10, ' 1' as 1, and -1, 1.5, inf and nan failed later
   local ids, others = {}, {}
   for _, d in ipairs(classes) do
      local into = d:match('^%d+$') and ids or others
      into[#into + 1] = keys.show(d)
   end
   -- ClassId folders beside others (.ipynb_checkpoints, __MACOSX, a copy): all were numbered in sorted order, and
   -- 00 was class 1 or 2 without a word
   if #ids > 0 and #others > 0 then
      error(('%s: %s mixes folders named by ClassId (%s) with others (%s): name every class folder by its ClassId or '
             .. 'none (classes then numbered in sorted order)'):format(what, dir, table.concat(ids, ', '),
             table.concat(others, ', ')), 2)
   end
   local numeric = #others == 0
   local items, names, folder_of = {}, {}, {}
   local top = files.realpath(dir) or dir
   local seen = {top = top, [top] = {path = dir}}
   for k, d in ipairs(classes) do
      local label = numeric and tonumber(d) or k - 1
      if label >= MAX_CLASSES then
         error(('%s: the class folder %s/%s: ClassId %s is beyond %d (ts.data.maxClasses - 1)'):format(what, dir, d, d,
               MAX_CLASSES - 1), 2)
      end
      if folder_of[label] then   -- 1 and 01: their images were one class
         error(('%s: the folders %s and %s of %s are both class %d'):format(what, folder_of[label], d, dir, label), 2)
      end
      folder_of[label] = d
      if not numeric then names[label] = d end
      local err = images_under(dir .. '/' .. d, label, items, seen)
      if err then error(('%s: %s'):format(what, err), 2) end
   end
   if #items == 0 then
      error(('%s: the class folders of %s hold no images (.png, .jpg, .jpeg, .ppm, .pgm, .bmp, .tif, .tiff, .webp)')
            :format(what, dir), 2)
   end
   -- the caller's names over the folders', in a table of their own (the caller's had the folders' names written in).
   -- Folders named otherwise than by ClassId are classes 0 .. #classes-1 and no more: a name beyond them is a list
   -- read from 1 ({'cat', 'dog'} named class 1 'cat' and made a class 2 'dog' of no folder, without a word).
   for id, n in pairs(class_names_option(opts.classNames, what)) do
      if not numeric and id >= #classes then
         error(('%s: classNames names class %d (%s), but the %d class folders of %s are classes 0 to %d (names are keyed '
                .. 'by class id from 0: {[0] = %s, ...})'):format(what, id, keys.show(n), #classes, dir, #classes - 1,
                keys.show(classes[1])), 2)
      end
      names[id] = n
   end
   local ds = from_files(items, size, names, dir)   -- not a tail call: from_files's errors are at this one's caller
   return ds
end

-- A CSV of image files and labels, as GTSRB's original layout has them (Filename;...;ClassId with ';', or
-- Path/file columns with ','): columns file|Filename|Path (the first of these the header has) and ClassId, optionally
-- Roi.X1..Roi.Y2 to crop. A file's path is relative to root unless it starts with /. opts: root (folder the paths
-- are relative to, default the CSV's folder), size (32), roi (true), classNames. A row that is not what its columns
-- say (no file, a ClassId that is no whole number from 0, a box of other than four numbers, more cells than the
-- header names) is an error naming the file and line.
local csv_options = {root = 1, size = 1, roi = 1, classNames = 1}
local roi_columns = {'Roi.X1', 'Roi.Y1', 'Roi.X2', 'Roi.Y2'}
function data.imageCSV(path, opts)
   local what = 'ts.data.imageCSV'
   cffi.path(path, 'ts.data.imageCSV(path, opts)')
   opts = keys.check(what, opts or {}, csv_options, 2)
   local size = keys.sizes(opts.size or 32, what, 'size', 1, 1)
   if opts.root ~= nil then cffi.path(opts.root, what .. ': root') end
   keys.flag(opts.roi, what, 'roi', 2)
   local ok, rows, header, lines = pcall(data.readCSV, path)
   if not ok then error(what .. ': ' .. rows, 2) end
   if not header then error(('%s: %s has no header line (an empty file?)'):format(what, path), 2) end
   local col = {}
   for i, name in ipairs(header) do
      if name ~= '' and col[name] then   -- a row's value was the last of the two, without a word
         error(('%s: %s: the header names the column %s twice (fields %d and %d)'):format(what, path, keys.show(name), col[name], i), 2)
      end
      col[name] = i
   end
   local filecol = (col.file and 'file') or (col.Filename and 'Filename') or (col.Path and 'Path')
   if not filecol or not col.ClassId then
      error(('%s: %s: the header has no %s column (it has: %s)'):format(what, path,
            filecol and 'ClassId' or 'file, Filename or Path', keys.show(header):sub(2, -2)), 2)
   end
   local use_roi = opts.roi ~= false and (col['Roi.X1'] or col['Roi.Y1'] or col['Roi.X2'] or col['Roi.Y2'])
   for _, c in ipairs(use_roi and roi_columns or {}) do
      if not col[c] then
         error(('%s: %s: the header has Roi columns but no %s (a box takes Roi.X1, Roi.Y1, Roi.X2 and Roi.Y2; roi = false '
                .. 'reads none)'):format(what, path, c), 2)
      end
   end
   if #rows == 0 then error(('%s: %s lists no images'):format(what, path), 2) end
   -- what a relative file's path starts with: the CSV's folder by default ('/' for a CSV at the root), else the root
   -- given and a slash; a root of '' given is the current folder, as os.path.join has it ('' .. '/' .. file was a path
   -- from /)
   local prefix = opts.root and (opts.root == '' and '' or opts.root:gsub('/$', '') .. '/')
                  or path:match('^(.*/)[^/]*$') or './'
   local items, listed = {}, {}   -- listed: the first row of each file and box, by file and box
   for i, row in ipairs(rows) do
      local at = ('%s:%d'):format(path, lines[i])
      local function bad(msg) error(('%s: %s: %s'):format(what, at, msg), 3) end
      local file = row[filecol]
      if not file or file == '' then bad(('no %s'):format(filecol)) end
      local text = row.ClassId
      if not text or text == '' then bad('no ClassId') end
      local label = text:match(decimal) and tonumber(text) or nil
      local problem = class_id_problem(label)
      if problem then bad(('ClassId %s %s'):format(keys.show(text), problem)) end
      local roi
      if use_roi then
         -- GTSRB gives Roi.X2/Roi.Y2 as the last pixel inside the box; the crop wants the end exclusive
         roi = {}
         for k, c in ipairs(roi_columns) do
            local v = row[c]
            local x = v and v:match(decimal) and tonumber(v)
            if not x then bad(('%s %s is not a number'):format(c, keys.show(v or ''))) end
            roi[k] = k > 2 and x + 1 or x
         end
      end
      -- one image (and box) under two ClassIds: one of them is wrong, and both were kept (a repeated row of one
      -- ClassId is read as the repeat it is, as pandas reads it)
      local key = file .. '\0' .. table.concat(roi or {}, ',')
      local first = listed[key]
      if first and first.label ~= label then
         bad(('%s has ClassId %d here but %d at line %d'):format(file, label, first.label, first.line))
      end
      listed[key] = first or {label = label, line = lines[i]}
      items[#items + 1] = {file:sub(1, 1) == '/' and file or prefix .. file, label, roi, at}
   end
   local ds = from_files(items, size, class_names_option(opts.classNames, what), path)   -- not a tail call, as above
   return ds
end

-- A generated stand-in for GTSRB with the same API: ts.data.synthetic{train = 4000, valid = 800,
-- test = 1600, classes = 43, size = 32, seed = 1}. Each class is a shape/palette/glyph combination
-- (see host/synth.c); the splits use different seeds. The result's `synthetic` holds the settings that made
-- it (sizes, classes, size, seed), which a run's final.json keeps, so that the same images can be made again.
local synthetic_keys = {train = 1, valid = 1, test = 1, classes = 1, size = 1, seed = 1}
function data.synthetic(o)
   o = o or {}
   if type(o) ~= 'table' then error('ts.data.synthetic: expected a table of settings, got ' .. type(o), 2) end
   keys.check('ts.data.synthetic', o, synthetic_keys, 2, 'setting')
   local classes, size, seed = o.classes or 43, o.size or 32, o.seed or 1
   local counts = {o.train or 4000, o.valid or 800, o.test or 1600}
   -- whole numbers in range: seeds of -1, NaN or 1e19 overflowed into one and the same set of images; no training
   -- images made a NaN channel mean that only preprocess named
   -- (45 classes: host/synth.c's 5 shapes x 3 palettes x 3 glyphs; 46 to 1000 passed here and failed in C)
   for _, v in ipairs({{classes, 'classes', 1, 45}, {size, 'size', 8, 4096}, {seed, 'seed', 0, 2 ^ 31},
                       {counts[1], 'train', 1, 1e7}, {counts[2], 'valid', 0, 1e7}, {counts[3], 'test', 0, 1e7}}) do
      keys.count(v[1], 'ts.data.synthetic', v[2], v[3], v[4], 2)
   end
   local shapes = {'circle', 'triangle up', 'triangle down', 'octagon', 'diamond'}
   local palettes = {'red rim', 'blue', 'yellow'}
   local glyphs = {'bar', 'arrow', 'dots'}
   local names = {}
   for c = 0, classes - 1 do
      names[c] = ('%s %s %s'):format(palettes[math.floor(c / 5) % 3 + 1], shapes[c % 5 + 1], glyphs[math.floor(c / 15) % 3 + 1])
   end
   local out = {classNames = names, synthetic = {classes = classes, size = size, seed = seed}}
   for k, split in ipairs({'train', 'valid', 'test'}) do
      local n = counts[k]
      out.synthetic[split] = n
      local x, y = T.zeros({n, size, size, 3}, 'uint8'), T.zeros({n}, 'int64')
      cffi.check(C.ts_synth_signs(x._c, y._c, classes, seed * 1000003 + k))
      out[split] = data.Dataset(x, y, names, split)
   end
   return out
end

for k, v in pairs(require('ts.loader')) do data[k] = v end
data.mix = require('ts.mix').new

return data
