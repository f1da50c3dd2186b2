-- TensorBoard's event files: the wire format's pieces against known answers, and a run's files read back by
-- TensorBoard's own reader (the tensorboard package, skipped with a message where it cannot be had) with the
-- values of metrics.jsonl, the test set's pictures and the hyperparameters; a resumed run keeps one file.
local ffi = require('ffi')
local pb = require('ts.protobuf')
local tensorboard = require('ts.tensorboard')

return function(t)
   local function hex(s) return (s:gsub('.', function(c) return ('%02x'):format(c:byte()) end)) end

   t.test('protobuf varints, fixed values and CRC-32C against known answers', function()
      t.eq(hex(pb.varint(0)), '00')
      t.eq(hex(pb.varint(150)), '9601')               -- the protobuf guide's example
      t.eq(hex(pb.varint(2 ^ 35)), '8080808080' .. '01')
      t.eq(hex(pb.varint(-1)), 'ffffffffffffffffff01')
      t.eq(hex(pb.message():varint(1, 150):encode()), '089601')
      t.eq(hex(pb.message():string(2, 'testing'):encode()), '120774657374696e67')
      t.eq(hex(pb.message():float(5, 1):encode()), '2d0000803f')
      t.raises(function() pb.varint(1.5) end, 'not a whole number')
      t.eq(('%08x'):format(require('ts.ffi').C.ts_crc32c('123456789', 9)), 'e3069283')   -- CRC-32C's check value
      -- TFRecord framing: length, masked CRC of it, data, masked CRC of the data
      local r = tensorboard.record('abc')
      t.eq(#r, 8 + 4 + 3 + 4)
      t.eq(hex(r:sub(1, 8)), '0300000000000000')
   end)

   local function train(dir, epochs)
      local g = ts.data.synthetic{train = 240, valid = 60, test = 60, seed = 3}
      local r = ts.train{model = {name = 'refcnn', widths = {4, 8, 8}, hidden = 16}, data = {train = g.train, valid = g.valid},
                         epochs = epochs, batch = 60, lr = 0.05, run = dir, quiet = true,
                         augment = ts.data.augment{rotate = 5}}
      return r, g
   end

   local function read(py, dir)
      local rc, out = t.sh(("'%s' %s/scripts/read_tensorboard.py '%s'"):format(py, t.dir, dir))
      t.eq(rc, 0, out)
      return ts.json.decode(out:match('{.*}'))
   end

   t.test("a run's event files, read by TensorBoard: metrics.jsonl's values, the pictures, the hyperparameters", function()
      local py, why = t.python({'tensorboard'})
      if not py then t.skip(why) end
      local dir = t.tmpdir() .. '/run'
      local r, g = train(dir, 3)
      ts.experiment.finish(r, g, {quiet = true, no_report = true})
      local events = tensorboard.files(dir)
      t.eq(#events, 1, 'one event file')
      local got = read(py, dir)
      local records = {}
      for line in t.readfile(dir .. '/metrics.jsonl'):gmatch('[^\n]+') do records[#records + 1] = ts.json.decode(line) end
      t.eq(#records, 3)
      for field, tag in pairs(tensorboard.epochTags) do
         local series = got.scalars[tag]
         t.truthy(series and #series == #records, tag .. ': ' .. #(series or {}) .. ' points')
         for i, rec in ipairs(records) do
            t.eq(series[i][1], rec.epoch, tag .. ' step')
            -- stored as float32
            t.near(series[i][2], ffi.new('float[1]', rec[field])[0], 0, 0, tag .. ' at epoch ' .. rec.epoch)
         end
      end
      local cm = got.images['test/confusion_matrix']
      t.truthy(cm and cm[1][2] == 43 * 8 and cm[1][3] == 43 * 8, 'the confusion matrix, 8 pixels a class')
      local wrong = 0
      for tag, img in pairs(got.images) do
         if tag:find('^test/mispredicted/') then
            wrong = wrong + 1
            t.eq(img[1][2], 96)
         end
      end
      t.truthy(wrong >= 1 and wrong <= 8, 'mispredicted test images: ' .. wrong)
      t.near(got.hparams.lr, 0.05, 1e-12, 0)
      t.truthy(math.abs(got.wall_time - os.time()) < 600, 'events are stamped with the wall clock: ' .. got.wall_time)
      t.eq(got.hparams.model, 'refcnn')
      t.eq(got.hparams.batch, 60)
      table.sort(got.hparams_messages)
      t.eq(table.concat(got.hparams_messages, ','), 'experiment,session_end_info,session_start_info')
   end)

   t.test('a resumed run rewrites its one event file from the checkpoint, each epoch once', function()
      local py, why = t.python({'tensorboard'})
      if not py then t.skip(why) end
      local dir = t.tmpdir() .. '/run'
      train(dir, 2)
      train(dir, 4)   -- resumes after epoch 2
      t.eq(#tensorboard.files(dir), 1, 'one event file')
      local steps = {}
      for _, point in ipairs(read(py, dir).scalars['loss/train']) do steps[#steps + 1] = point[1] end
      t.eq(table.concat(steps, ','), '1,2,3,4')
   end)

   t.test('event files: a folder named with a quote lists without a shell, writers never share a file, steps are checked', function()
      local dir = t.tmpdir()
      local odd = dir .. "/q';touch " .. dir .. "/PWNED;'"
      local w = tensorboard.writer(odd)
      w:scalar('x', 1, 1)
      w:close()
      t.eq(#tensorboard.files(odd), 1, 'listed')
      local again = tensorboard.writer(odd, {append = true})
      again:scalar('x', 2, 2)
      again:close()
      t.eq(#tensorboard.files(odd), 1, 'appended to it, not a new file')
      t.eq(ts.files.exists(dir .. '/PWNED'), false, 'no shell ran the name')
      -- two writers of one process in one second: two files, neither emptied
      local a = tensorboard.writer(dir .. '/two')
      a:scalar('x', 1, 1)
      local b = tensorboard.writer(dir .. '/two')
      b:scalar('y', 3, 3)
      a:close(); b:close()
      local made = tensorboard.files(dir .. '/two')
      t.eq(#made, 2)
      for _, f in ipairs(made) do t.truthy(#t.readfile(f) > 40, f .. ' holds its events') end
      local c = tensorboard.writer(dir .. '/steps')
      t.raises(function() c:scalar('x', 1, 1e30) end, 'the step must be a whole number from 0 to 2^53, got 1e+30')
      t.raises(function() c:scalar('x', 1, -1) end, 'the step must be a whole number')
      -- the last step the check passes: ts.protobuf refused it, inside the library ("not a whole number below 2^53")
      c:scalar('x', 1, 2 ^ 53)
      t.eq(hex(pb.varint(2 ^ 53)), '8080808080808010')
      t.raises(function() pb.varint(2 ^ 53 + 2) end, 'is not a whole number from -2^63 to 2^53')
      t.raises(function() c:scalar('x', '0.5', 1) end, 'scalar(tag, value, step) takes a string and a number, got string and string')
      c:close()
      t.raises(function() c:scalar('x', 1, 1) end, 'is closed')
   end)

   t.test('the writer refuses what it cannot write, naming the call, at the caller', function()
      local dir = t.tmpdir()
      -- (these failed inside the library: in ts.files.mkdirs, ts.protobuf, pairs, ipairs, or as an index of a boolean)
      local err = t.raises(function() tensorboard.writer(nil) end, 'ts.tensorboard.writer(dir, opts): path must be a string, got nil')
      t.truthy(err:find('test_tensorboard.lua', 1, true), 'at the caller: ' .. err)
      t.raises(function() tensorboard.writer(dir .. '/a', true) end, 'ts.tensorboard.writer: the options must be a table, got boolean')
      -- appnd = true was ignored, and a new file begun beside the run's
      t.raises(function() tensorboard.writer(dir .. '/a', {appnd = true}) end, 'ts.tensorboard.writer: unknown option appnd (known: append)')
      local w = tensorboard.writer(dir .. '/w')
      err = t.raises(function() w:image(5, ts.zeros(3, 4, 4), 1) end,
                     'image(tag, img, step) takes a string and an image tensor, got number and a tensor')
      t.truthy(err:find('test_tensorboard.lua', 1, true), 'at the caller: ' .. err)
      t.raises(function() w:image('x', nil, 1) end, 'takes a string and an image tensor, got string and nil')
      t.raises(function() w:image('x', ts.zeros({4, 4, 3}, 'int64'), 1) end, 'tensorboard: image(tag, img, step): ts.image.encodePng(img): an image is uint8')
      -- an [H,W] image is grey, as encodePng takes it (its sizes were read from dims it does not have: a traceback)
      w:image('grey', ts.zeros(4, 6), 1)
      w:image('grey8', ts.zeros({5, 7}, 'uint8'), 1)
      w:close()
      local py = t.python({'tensorboard'})
      if py then   -- (TensorBoard's own reader: width, height)
         local images = read(py, dir .. '/w').images
         t.eq(images.grey[1][2] .. 'x' .. images.grey[1][3], '6x4')
         t.eq(images.grey8[1][2] .. 'x' .. images.grey8[1][3], '7x5')
      end
      w = tensorboard.writer(dir .. '/w2')
      t.raises(function() w:hparams(nil) end, 'hparams(values, metric_tags): values must be a table, got nil')
      -- a table value was written as the text "table: 0x..."; a number name failed sorting beside the strings
      t.raises(function() w:hparams({widths = {1, 2}}) end, 'values must map names (strings) to numbers, strings or booleans, got "widths" = {1, 2}')
      t.raises(function() w:hparams({[1] = 2, a = 3}) end, 'got 1 = 2')
      t.raises(function() w:hparams({a = 1}, 'loss') end, 'metric_tags must be a list of strings, got string')
      t.raises(function() w:hparams({a = 1}, {5}) end, 'metric_tags[1] must be a string, got 5')
      t.raises(function() w:epoch(nil) end, 'epoch(record): record must be a table, got nil')
      t.raises(function() w:epoch({epoch = 1, train_loss = '0.5'}) end, 'epoch(record): record.train_loss must be a number, got "0.5"')
      err = t.raises(function() w:epoch({train_loss = 0.5}) end, 'the step must be a whole number from 0 to 2^53, got nil')
      t.truthy(err:find('test_tensorboard.lua', 1, true), 'at the caller: ' .. err)
      w:close()
      -- a negative count made shades outside 0..255 that the picture's bytes wrapped round to other colours
      t.raises(function() tensorboard.confusionImage({[0] = {[0] = -5, [1] = 10}}, 2) end, 'cm[0][0] must be a count >= 0, got -5')
      t.raises(function() tensorboard.confusionImage({[0] = {[0] = 0 / 0}}, 1) end, 'cm[0][0] must be a count >= 0, got nan')
      t.raises(function() tensorboard.confusionImage({}, nil) end, 'ts.tensorboard.confusionImage: classes must be a whole number >= 1, got nil')
      t.raises(function() tensorboard.confusionImage({}, 2, 1.5) end, 'ts.tensorboard.confusionImage: cell must be a whole number >= 1, got 1.5')
      t.eq(tostring(tensorboard.confusionImage({[0] = {[0] = 3, [1] = 1}}, 2, 2):size()), '[4x4x3]')
   end)

   t.test("protobuf string fields are UTF-8: a Latin-1 tag or hyperparameter no longer stops TensorBoard's reader", function()
      -- a string field's byte that starts no UTF-8 sequence becomes U+FFFD; bytes fields stay as they are
      t.eq(hex(pb.message():string(1, 'a\255b'):encode()), '0a0561efbfbd62')
      t.eq(hex(pb.message():bytes(1, 'a\255b'):encode()), '0a0361ff62')
      t.eq(hex(pb.message():string(1, 'caf\195\169'):encode()), '0a05636166c3a9')
      local py, why = t.python({'tensorboard'})
      if not py then t.skip(why) end
      -- TensorBoard's reader failed on the whole file ("String field had bad UTF-8"), the good points with it
      local dir = t.tmpdir() .. '/latin1'
      local w = tensorboard.writer(dir)
      w:hparams({lr = 0.1, data = '/data/caf\233'}, {'loss/train'})
      w:scalar('loss/train', 0.5, 1)
      w:scalar('caf\233', 2, 1)
      w:close()
      local got = read(py, dir)
      t.eq(got.scalars['loss/train'][1][2], 0.5)
      t.eq(got.scalars['caf\239\191\189'][1][2], 2)
      t.eq(got.hparams.data, '/data/caf\239\191\189')
   end)

   -- (ts.json writes the class names of ts.onnx's metadata and every run file beside the event files)
   t.test('json: number keys keep their digits, encode errors come at the caller, hostile text is refused by name', function()
      local json = ts.json
      -- tostring kept 14 digits: 2^53 and 2^53 + 2 were one key "9.007199254741e+15" (refused), a lone 15-digit id
      -- came back as another string, "1.2345678901234e+14"
      t.eq(json.encode({[2 ^ 53] = 'a', [2 ^ 53 + 2] = 'b'}), '{"9007199254740992":"a","9007199254740994":"b"}')
      t.eq(json.encode({[123456789012345] = 1, [0.1] = 2, [-3] = 3}), '{"-3":3,"0.1":2,"123456789012345":1}')
      t.raises(function() json.encode({[1] = 'a', ['1'] = 'b', x = 1}) end, 'would both be written as "1"')
      -- a function or a cdata inside a table was reported at a line of the library
      local err = t.raises(function() json.encode({run = {f = print}}) end, 'json: cannot encode a function')
      t.truthy(err:find('test_tensorboard.lua', 1, true), 'at the caller: ' .. err)
      local loop = {}
      loop.self = loop
      err = t.raises(function() json.encode(loop) end, 'nested deeper than 200')
      t.truthy(err:find('test_tensorboard.lua', 1, true), 'at the caller: ' .. err)
      -- what decode keeps refusing or reading as Python does
      t.raises(function() json.decode(('['):rep(100000)) end, 'json: nesting deeper than 200')
      t.raises(function() json.decode('NaN') end, 'json: unexpected input at character 1')
      t.eq(json.decode('{"a":1,"a":2}').a, 2)   -- the last of duplicate keys, as Python's json
      t.eq(json.decode('1e400'), math.huge)
      t.eq(json.encode({0 / 0, math.huge}), '[null,null]')
      t.eq(json.decode('"\255"'), '\255')
      t.eq(json.encode('\255'), '"\239\191\189"')
   end)

   t.test('a run without validation writes no validation points', function()
      local py, why = t.python({'tensorboard'})
      if not py then t.skip(why) end
      local dir = t.tmpdir() .. '/novalid'
      local g = ts.data.synthetic{train = 60, valid = 10, test = 10, seed = 3}
      ts.train{model = {name = 'refcnn', widths = {4, 8, 8}, hidden = 16}, data = {train = g.train}, epochs = 2, batch = 30,
               run = dir, quiet = true}
      local got = read(py, dir)
      t.eq(got.scalars['loss/valid'], nil, 'no validation loss')
      t.eq(#got.scalars['loss/train'], 2)
   end)
end
