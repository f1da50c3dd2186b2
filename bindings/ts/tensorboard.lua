-- ts.tensorboard: event files that TensorBoard reads (`tensorboard --logdir runs` shows every run of a sweep side
-- by side). ts.train writes one into each run directory: the epoch's scalars, and the hyperparameters for the
-- HParams dashboard; ts.experiment.finish adds the test set's confusion matrix and the most confident
-- mispredictions as images.
--   local w = ts.tensorboard.writer(dir)     a new event file in dir (ts.train's replaces the run's earlier ones)
--   w:scalar(tag, value, step); w:image(tag, img, step) (uint8 [H,W,C], or float [C,H,W] in 0..1)
--   w:hparams(values, metric_tags)           values: name -> number, string or boolean
--   w:sessionEnd(ok); w:close()
-- The file is TFRecord framing (little-endian length, its masked CRC-32C, the record, its masked CRC-32C) of
-- tensorflow.Event protobufs (tensorboard/compat/proto/event.proto, summary.proto) and the HParams plugin's
-- messages (tensorboard/plugins/hparams/plugin_data.proto, api.proto). Every record is flushed as it is written,
-- and a record cut by a kill fails its checksum, which TensorBoard's reader takes for the end of the file.
local ffi = require('ffi')
local bit = require('bit')
local pb = require('ts.protobuf')
local files = require('ts.files')
local image = require('ts.image')
local cffi = require('ts.ffi')
local keys = require('ts.keys')
local T = require('ts.tensor')
local C = cffi.C

local M = {}

-- TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, modulo 2^32
local function masked_crc(s)
   local crc = C.ts_crc32c(s, #s)
   local rotated = bit.bor(bit.rshift(crc, 15), bit.lshift(crc, 17))
   return (rotated % 2 ^ 32 + 0xa282ead8) % 2 ^ 32
end

local u32, u64 = ffi.new('uint32_t[1]'), ffi.new('uint64_t[1]')
local function le32(v) u32[0] = v return ffi.string(u32, 4) end
local function le64(v) u64[0] = v return ffi.string(u64, 8) end

local function record(data)
   local length = le64(#data)
   return length .. le32(masked_crc(length)) .. data .. le32(masked_crc(data))
end
M.record = record

local Writer = {}
Writer.__index = Writer

-- the files this module writes in a directory (a tshost event file ends in .tshost)
function M.files(dir)
   cffi.path(dir, 'ts.tensorboard.files(dir)')
   local out = {}
   for _, name in ipairs(files.list(dir) or {}) do
      if name:match('^events%.out%.tfevents%..*%.tshost$') then out[#out + 1] = dir .. '/' .. name end
   end
   return out
end

local function hostname()
   local f = io.open('/proc/sys/kernel/hostname')
   local h = f and f:read('*l') or 'localhost'
   if f then f:close() end
   return h
end

-- a new event file in dir; opts.append: append to the newest tshost event file there instead (a run's last
-- pictures after its training)
local writer_options = {append = 1}
function M.writer(dir, opts)
   -- (a nil or NUL-holding dir failed in ts.files.mkdirs, named so; opts = true indexed a boolean; appnd = true
   -- was ignored and a new file begun)
   cffi.path(dir, 'ts.tensorboard.writer(dir, opts)')
   if dir == '' then error('ts.tensorboard.writer(dir, opts): dir must be a folder\'s path, got an empty string', 2) end
   opts = keys.check('ts.tensorboard.writer', opts or {}, writer_options, 2)
   local made, why = pcall(files.mkdirs, dir)   -- (its error named the line here, not the caller's)
   if not made then error('ts.tensorboard.writer: ' .. tostring(why):gsub('^[^:]*:%d+: ', ''), 2) end
   local path
   if opts.append then path = M.files(dir)[#M.files(dir)] end
   local fresh = not path
   if not path then
      -- a second writer in the same second of the same process would open the first one's file again and empty it
      local stem = ('%s/events.out.tfevents.%010d.%s.%d'):format(dir, os.time(), hostname(), C.getpid())
      path = stem .. '.tshost'
      for k = 2, math.huge do
         if not files.exists(path) then break end
         path = ('%s.%d.tshost'):format(stem, k)
      end
   end
   local f, err = io.open(path, fresh and 'wb' or 'ab')
   if not f then error(('tensorboard: %s'):format(err), 2) end
   local w = setmetatable({file = f, path = path}, Writer)
   if fresh then w:event(pb.message():double(1, files.wallClock()):string(3, 'brain.Event:2')) end
   return w
end

function Writer:event(ev)
   local ok, err = self.file:write(record(ev:encode()))
   if ok then ok, err = self.file:flush() end
   if not ok then error(('tensorboard: %s: %s'):format(self.path, tostring(err)), 3) end
end

-- an error unless step is a whole number from 0 to 2^53 (a double holds each exactly), at `level` as error's, counted
-- from the caller
local function check_step(step, level)
   keys.count(step, 'tensorboard', 'the step', 0, 2 ^ 53, level + 1)
end

-- an Event holding one Summary.Value (tag, and the value's own fields set by fill)
function Writer:summary(step, fill)
   if not self.file then error(('tensorboard: %s is closed'):format(self.path), 3) end
   check_step(step, 3)
   local value = pb.message()
   fill(value)
   self:event(pb.message():double(1, files.wallClock()):varint(2, step):message(5, pb.message():message(1, value)))
end

function Writer:scalar(tag, v, step)
   if type(tag) ~= 'string' or type(v) ~= 'number' then
      error(('tensorboard: scalar(tag, value, step) takes a string and a number, got %s and %s'):format(type(tag), type(v)), 2)
   end
   self:summary(step, function(value) value:string(1, tag):float(2, v) end)
end

function Writer:image(tag, img, step)
   -- (a number tag failed inside ts.protobuf, a nil image inside this file)
   if type(tag) ~= 'string' or not T.isTensor(img) then
      error(('tensorboard: image(tag, img, step) takes a string and an image tensor, got %s and %s'):format(type(tag),
            T.isTensor(img) and 'a tensor' or type(img)), 2)
   end
   check_step(step, 2)   -- before the picture is encoded
   local encoded, bytes, h, w, c = pcall(image.encodePng, img)   -- (its errors named the line here)
   if not encoded then error('tensorboard: image(tag, img, step): ' .. tostring(bytes):gsub('^[^:]*:%d+: ', ''), 2) end
   self:summary(step, function(value)
      value:string(1, tag):message(4, pb.message():varint(1, h):varint(2, w):varint(3, c):bytes(4, bytes))
   end)
end

-- a Summary.Value of the HParams plugin: the tag and the plugin data's one field (HParamsPluginData, version 0)
local function hparams_value(tag, field, content)
   local data = pb.message():varint(1, 0):message(field, content)
   local plugin = pb.message():string(1, 'hparams'):bytes(2, data:encode())
   return function(value) value:string(1, tag):message(9, pb.message():message(1, plugin)) end
end

-- google.protobuf.Value of a number, a string or a boolean
local function proto_value(v)
   local m = pb.message()
   if type(v) == 'number' then m:double(2, v)
   elseif type(v) == 'boolean' then m:varint(4, v)
   else m:string(3, tostring(v)) end
   return m
end

-- the hyperparameters of this run (values: name -> number, string or boolean) and the metrics the dashboard
-- lists for it: an Experiment (the columns) and the SessionStartInfo (this run's values)
function Writer:hparams(values, metric_tags)
   -- names strings and values numbers, strings or booleans: a table value was written as "table: 0x...", a number
   -- key failed sorting beside the strings, a nil values or a string metric_tags inside pairs and ipairs
   local what = 'tensorboard: hparams(values, metric_tags)'
   if type(values) ~= 'table' then error(('%s: values must be a table, got %s'):format(what, type(values)), 2) end
   local names = {}
   for name, v in pairs(values) do
      if type(name) ~= 'string' or (type(v) ~= 'number' and type(v) ~= 'string' and type(v) ~= 'boolean') then
         error(('%s: values must map names (strings) to numbers, strings or booleans, got %s = %s'):format(what,
               keys.show(name), keys.show(v)), 2)
      end
      names[#names + 1] = name
   end
   if metric_tags ~= nil and type(metric_tags) ~= 'table' then
      error(('%s: metric_tags must be a list of strings, got %s'):format(what, type(metric_tags)), 2)
   end
   for i, tag in ipairs(metric_tags or {}) do
      if type(tag) ~= 'string' then
         error(('%s: metric_tags[%d] must be a string, got %s'):format(what, i, keys.show(tag)), 2)
      end
   end
   table.sort(names)
   local experiment, start = pb.message(), pb.message()
   for _, name in ipairs(names) do
      local v = values[name]
      local kind = type(v) == 'number' and 3 or type(v) == 'boolean' and 2 or 1   -- DATA_TYPE_FLOAT64, BOOL, STRING
      experiment:message(4, pb.message():string(1, name):varint(4, kind))
      start:message(1, pb.message():string(1, name):message(2, proto_value(v)))   -- a map entry
   end
   for _, tag in ipairs(metric_tags or {}) do experiment:message(5, pb.message():message(1, pb.message():string(2, tag))) end
   start:double(5, files.wallClock())
   self:summary(0, hparams_value('_hparams_/experiment', 2, experiment))
   self:summary(0, hparams_value('_hparams_/session_start_info', 3, start))
end

function Writer:sessionEnd(ok)
   local info = pb.message():varint(1, ok and 1 or 2):double(2, files.wallClock())   -- STATUS_SUCCESS or STATUS_FAILURE
   self:summary(0, hparams_value('_hparams_/session_end_info', 4, info))
end

function Writer:close()
   if self.file then self.file:close() end
   self.file = nil
end

-- the tags ts.train gives an epoch record's fields
M.epochTags = {train_loss = 'loss/train', valid_loss = 'loss/valid', train_accuracy = 'accuracy/train',
               valid_accuracy = 'accuracy/valid', valid_macro_f1 = 'macro_f1/valid', lr = 'learning_rate',
               images_per_second = 'images_per_second'}

function Writer:epoch(record)
   -- checked here, so that an error names the record, not this file's call of scalar
   if type(record) ~= 'table' then
      error('tensorboard: epoch(record): record must be a table, got ' .. type(record), 2)
   end
   check_step(record.epoch, 2)
   for field in pairs(M.epochTags) do
      if record[field] ~= nil and type(record[field]) ~= 'number' then
         error(('tensorboard: epoch(record): record.%s must be a number, got %s'):format(field,
               keys.show(record[field])), 2)
      end
   end
   local names = {}
   for field in pairs(M.epochTags) do names[#names + 1] = field end
   table.sort(names)
   -- a field the record lacks (the validation's, in a run without one) is no point
   for _, field in ipairs(names) do
      if record[field] ~= nil then self:scalar(M.epochTags[field], record[field], record.epoch) end
   end
end

-- the confusion matrix cm [C][C] (true rows, predicted columns, 0-based) as a picture: each cell `cell` pixels,
-- green on the diagonal and red off it, as deep as the row's share
function M.confusionImage(cm, classes, cell)
   -- (a nil classes failed in arithmetic; a cell of 1.5 made a picture whose cells were not all of one size; a
   -- negative count made shades outside 0..255, which the picture's bytes wrapped round to other colours)
   if type(cm) ~= 'table' then
      error('ts.tensorboard.confusionImage(cm, classes, cell): cm must be a table, got ' .. type(cm), 2)
   end
   classes = keys.sizes(classes, 'ts.tensorboard.confusionImage', 'classes', 1, 1)
   cell = keys.sizes(cell or 8, 'ts.tensorboard.confusionImage', 'cell', 1, 1)
   for t = 0, classes - 1 do
      if cm[t] ~= nil and type(cm[t]) ~= 'table' then
         error(('ts.tensorboard.confusionImage: cm[%d] must be a table of counts, got %s'):format(t, keys.show(cm[t])), 2)
      end
      for q = 0, classes - 1 do
         local n = cm[t] and cm[t][q] or 0
         if not (T.isFinite(n) and n >= 0) then
            error(('ts.tensorboard.confusionImage: cm[%d][%d] must be a count >= 0, got %s'):format(t, q, keys.show(n)), 2)
         end
      end
   end
   local side = classes * cell
   local img = require('ts.tensor').zeros({side, side, 3}, 'uint8')
   local p = ffi.cast('uint8_t *', img:data())
   for t = 0, classes - 1 do
      local total = 0
      for q = 0, classes - 1 do total = total + (cm[t] and cm[t][q] or 0) end
      for q = 0, classes - 1 do
         local share = total > 0 and (cm[t] and cm[t][q] or 0) / total or 0
         local shade = math.floor(255 * (1 - share) + 0.5)
         local r, g, b = 255, shade, shade
         if t == q then r, g, b = shade, 255, shade end
         for y = t * cell, (t + 1) * cell - 1 do
            for x = q * cell, (q + 1) * cell - 1 do
               local at = (y * side + x) * 3
               p[at], p[at + 1], p[at + 2] = r, g, b
            end
         end
      end
   end
   return img
end

return M
