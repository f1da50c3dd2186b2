-- ts.files: the file helpers of runs, reports and scripts.
local files = ts.files
local pid = require('ffi').C.getpid()   -- declared by ts.files

-- the names in dir, sorted
local function listing(dir)
   local p = io.popen('ls -A ' .. dir)
   local names = {}
   for name in p:lines() do names[#names + 1] = name end
   p:close()
   table.sort(names)
   return table.concat(names, ' ')
end

return function(t)
   t.test('writeFile replaces a file whole, through a temporary file it leaves nothing of', function()
      local dir = t.tmpdir()
      files.writeFile(dir .. '/a.json', '{"x": 1}')
      files.writeFile(dir .. '/a.json', '{}')
      t.eq(files.readFile(dir .. '/a.json'), '{}')
      t.eq(listing(dir), 'a.json')
      t.eq(files.readFile(dir .. '/missing'), nil)
   end)

   t.test('every failed write names the file and the reason', function()
      local dir = t.tmpdir()
      t.raises(function() files.writeFile(dir .. '/no/such/f.json', '{}') end,
               ('%s/no/such/f.json: cannot write: No such file or directory (creating %s/no/such/f.json.tmp%d)'):format(dir, dir, pid))
      t.raises(function() files.writeFile('', '{}') end, 'write: no file named (an empty path)')
      t.raises(function() files.appendFile(dir .. '/no/log', 'x') end, 'cannot write ' .. dir .. '/no/log: No such file')
      -- the rename fails (a folder is in the way): the target is named, the temporary file removed
      files.mkdirs(dir .. '/taken')
      files.writeFile(dir .. '/taken/inside', 'x')
      t.raises(function() files.writeFile(dir .. '/taken', 'y') end, dir .. '/taken: write failed: Is a directory')
      t.eq(listing(dir), 'taken')
   end)

   t.test('a link planted at the temporary file\'s name is not written through: the file it names is kept', function()
      local dir = t.tmpdir()
      files.writeFile(dir .. '/victim', 'precious')
      for _, write in ipairs({function(p) files.writeFile(p, 'new') end, function(p) ts.save(p, {a = ts.ones(1)}) end}) do
         os.execute(('ln -sf %s/victim %s/out.tmp%d'):format(dir, dir, pid))
         write(dir .. '/out')
         t.eq(files.readFile(dir .. '/victim'), 'precious')
         t.eq(listing(dir), 'out victim')
         t.eq(files.realpath(dir .. '/out'), files.realpath(dir) .. '/out', 'out is a file of its own, not a link')
         os.remove(dir .. '/out')
      end
   end)

   t.test('appendFile adds at the end; mkdirs makes the parents and keeps what exists', function()
      local dir = t.tmpdir()
      files.mkdirs(dir .. '/a/b/c')
      files.mkdirs(dir .. '/a/b')
      files.appendFile(dir .. '/a/b/c/log', 'one\n')
      files.appendFile(dir .. '/a/b/c/log', 'two\n')
      t.eq(files.readFile(dir .. '/a/b/c/log'), 'one\ntwo\n')
      t.eq(files.realpath(dir .. '/a/b/../b/c/log'), files.realpath(dir) .. '/a/b/c/log')
      t.eq(files.realpath(dir .. '/a/none'), nil)
      -- a part that cannot be made is named with the reason (it was skipped, and the folder silently missing)
      t.raises(function() files.mkdirs(dir .. '/a/b/c/log/d') end,
               ('cannot make the folder %s/a/b/c/log/d: %s/a/b/c/log: a file of that name is in the way'):format(dir, dir))
   end)

   t.test('list: every name whole, a newline in it included; a file or a missing folder is nil and the reason', function()
      local dir = t.tmpdir()
      -- host/listdir.c joins the names with newlines: "a\nb" came back as the two names a and b
      files.writeFile(dir .. '/a\nb', 'x')
      files.writeFile(dir .. '/c d', 'y')
      files.mkdirs(dir .. '/e')
      local names = files.list(dir)
      t.eq(#names, 3); t.eq(names[1], 'a\nb'); t.eq(names[2], 'c d'); t.eq(names[3], 'e')
      t.eq(#files.list(dir .. '/e'), 0)
      local none, why = files.list(dir .. '/c d')
      t.eq(none, nil); t.eq(why, dir .. '/c d: cannot list the folder: Not a directory')
      t.eq(select(2, files.list(dir .. '/f')), dir .. '/f: cannot list the folder: No such file or directory')
   end)

   t.test('appendFile takes a string, as writeFile does', function()
      local dir = t.tmpdir()
      -- nil failed inside io's write ("bad argument #1 to 'write'"), a number was written as its digits
      local err = t.raises(function() files.appendFile(dir .. '/log', nil) end,
                           'ts.files.appendFile(path, s): the contents must be a string, got nil')
      t.truthy(err:find('test_files.lua:', 1, true), err)
      t.raises(function() files.appendFile(dir .. '/log', 5) end, 'the contents must be a string, got number')
      t.eq(files.exists(dir .. '/log'), false)
   end)

   t.test('now is a clock that does not go back', function()
      local a = files.now()
      local b = files.now()
      t.truthy(type(a) == 'number' and b >= a and a > 0)
   end)

   t.test('JSON: output that parses anywhere, nulls kept in place, nesting bounded, errors naming the file', function()
      local json = ts.json
      -- a file name in Latin-1 (byte 0xFF) or a cut character: U+FFFD, never bytes that are not UTF-8
      t.eq(json.encode('bad\255name \195\169 \237\160\128'), '"bad\239\191\189name \195\169 \239\191\189\239\191\189\239\191\189"')
      t.eq(json.encode('\240\159\152\128'), '"\240\159\152\128"')   -- valid four-byte UTF-8 kept
      -- a surrogate pair is one character; a lone surrogate none
      t.eq(json.decode('"\\ud83d\\ude00|\\ud800|\\u00e9"'), '\240\159\152\128|\239\191\189|\195\169')
      local a = json.decode('[1, null, 3]')
      t.truthy(a[1] == 1 and a[2] == nil and a[3] == 3)
      t.eq(json.encode(a), '[1,null,3]')   -- written back as the array it was
      t.eq(json.encode({[1] = 'a', [1000] = 'b'}), '{"1":"a","1000":"b"}')   -- sparse ids: an object
      t.raises(function() json.decode(string.rep('[', 100000)) end, 'json: nesting deeper than 200')
      t.eq(#json.decode(string.rep('[', 200) .. string.rep(']', 200)), 1)
      -- and in the encoder: a table that holds itself ended in Lua's "stack overflow", naming nothing
      local loop = {}
      loop.self = loop
      t.raises(function() json.encode(loop) end, 'json: cannot encode tables nested deeper than 200')
      t.eq(#json.encode(json.decode(string.rep('[', 200) .. string.rep(']', 200))), 400)
      -- keys that would be written alike, or that are no strings nor numbers: a value was lost (a duplicate key, null)
      t.raises(function() json.encode({[1] = 'a', ['1'] = 'b', x = 1}) end,
               'json: two keys of the table (a number and a string?) would both be written as "1"')
      t.raises(function() json.encode({[true] = 1}) end, 'json: cannot encode a table key that is a boolean')
      t.eq(json.encode({[1.5] = 'a', [-1] = 'b', c = false}), '{"-1":"b","1.5":"a","c":false}')
      -- an empty list read stays a list written: [] came back as {}, an object where a reader expects a list
      t.eq(json.encode(json.decode('{"a": [], "b": {}, "c": [[]]}')), '{"a":[],"b":{},"c":[[]]}')
      t.eq(json.encode(json.array()), '[]')
      t.eq(json.encode(json.array({2, 3})), '[2,3]')
      t.eq(json.encode({}), '{}')
      local dir = t.tmpdir()
      files.writeFile(dir .. '/bad.json', '{"a": 1,')
      t.raises(function() json.readFile(dir .. '/bad.json') end, dir .. '/bad.json: json: ')
      t.eq(json.readFile(dir .. '/missing.json'), nil)
      -- nil failed inside the decoder, "attempt to index upvalue 's'"
      t.raises(function() json.decode(nil) end, 'json: expected JSON text to decode, got nil')
   end)

   t.test('class names by id from a table keyed by id, JSON\'s string keys, or a JSON array (the first name is class 0)', function()
      local by = ts.data.classNamesById
      t.eq(by({[0] = 'a', [1] = 'b'}, 'x')[1], 'b')
      t.eq(by({['0'] = 'a', ['2'] = 'c'}, 'x')[2], 'c')
      local list = by(ts.json.decode('["a", "b", null, "d"]'), 'x', true)
      t.truthy(list[0] == 'a' and list[1] == 'b' and list[2] == nil and list[3] == 'd' and list[4] == nil)
      -- a Lua table keeps its ids: names for classes 1 and 2 only, passed on from dataset to subset to subset
      local ds = ts.data.Dataset(ts.zeros({3, 4, 4, 3}, 'uint8'), ts.tensor({1, 2, 1}, 'int64'), {'one', 'two'})
      local sub = ds:subset({1, 2}):subset({1})
      t.truthy(sub.classNames[1] == 'one' and sub.classNames[2] == 'two' and sub.classNames[0] == nil)
      t.eq(next(by(nil, 'x')), nil)
      t.raises(function() by(5, 'run/config.json') end, 'run/config.json: class names must be a table')
      t.raises(function() by({['-1'] = 'a'}, 'run/config.json') end, 'must map a class id from 0 to 9999 to a string, got -1 = a')
      t.raises(function() by({[0] = 3}, 'run/config.json') end, 'got 0 = 3')
      t.raises(function() ts.data.Dataset(ts.zeros({2, 4, 4, 3}, 'uint8'), ts.tensor({0, 1}, 'int64'), {x = 'a'}) end,
               'Dataset: class names must map a class id from 0 to 9999')
   end)

   t.test('datasets joined: images and labels in order, names kept; other shapes or names refused', function()
      local function ds(first, n, names, size)
         local x = ts.zeros({n, size or 4, 4, 3}, 'uint8')
         local y = ts.zeros({n}, 'int64')
         for i = 1, n do x[i]:fill(first + i); y[i] = (first + i) % 3 end
         return ts.data.Dataset(x, y, names or {[0] = 'a', 'b', 'c'}, 'part' .. first)
      end
      local a, b = ds(0, 3), ds(10, 2)
      local j = ts.data.join({a, b, a:subset({}, 'none')}, 'both')
      t.eq(j:size(), 5); t.eq(j.name, 'both'); t.eq(j.classNames[2], 'c')
      local want = {1, 2, 3, 11, 12}
      for i = 1, 5 do
         t.eq(j.x[i][{4, 4, 3}]:item(), want[i], 'image ' .. i)
         t.eq(j.y[i], want[i] % 3, 'label ' .. i)
      end
      t.raises(function() ts.data.join({a, ds(0, 1, nil, 5)}) end, 'part 2 (part0) has images [5x4x3], part 1 (part0) [4x4x3]')
      t.raises(function() ts.data.join({a, ds(0, 1, {[0] = 'a', 'b'})}) end, 'class 2 is unnamed in part 2')
      t.raises(function() ts.data.join({a, ds(0, 1, {[0] = 'a', 'B', 'c'})}) end, 'class 1 is "B" in part 2')
      t.raises(function() ts.data.join({a, 5}) end, 'part 2 is not a dataset')
      t.raises(function() ts.data.join({}) end, 'expects a list of datasets')
   end)

   t.test('splitTracks: every tenth track held out whole, cut at label changes and every `track` images', function()
      -- labels in tracks as GTSRB stores them: class 0 has 7 tracks of 3 frames, class 1 a track of 3 and one of 2
      -- (a short last track), class 2 a run of 7 that is cut into 3, 3, 1; 12 tracks, image i holds the value i
      local labels = {}
      for _ = 1, 21 do labels[#labels + 1] = 0 end
      for _ = 1, 5 do labels[#labels + 1] = 1 end
      for _ = 1, 7 do labels[#labels + 1] = 2 end
      local n = #labels
      local x = ts.zeros({n, 2, 2, 3}, 'uint8')
      for i = 1, n do x[i]:fill(i) end
      local ds = ts.data.Dataset(x, ts.tensor(labels, 'int64'), {[0] = 'a', 'b', 'c'}, 'v')
      local function list(d) local v = {} for i = 1, d:size() do v[i] = d.x[i][{1, 1, 1}]:item() end return v end
      local function values(d) return table.concat(list(d), ' ') end
      -- share 0.25: tracks 4, 8, 12 (1-based: floor(i/4) steps up at i = 4, 8, 12): class 0's 4th, class 1's 1st
      -- (the 8th track), class 2's last cut of one image (the 12th)
      local kept, held, record = ds:splitTracks{share = 0.25, track = 3}
      t.eq(values(held), '10 11 12 22 23 24 33')
      t.eq(kept:size() + held:size(), n)
      t.eq(table.concat(held.y:totable(), ' '), '0 0 0 1 1 1 2')
      t.eq(record.tracks, 12); t.eq(record.held_tracks, 3); t.eq(record.images, 7)
      t.eq(record.fingerprint, held:fingerprint()); t.eq(held.name, 'v (held out)'); t.eq(kept.name, 'v (kept)')
      for _, v in ipairs(list(kept)) do t.truthy(v < 10 or (v > 12 and v < 22) or (v > 24 and v < 33), v) end
      -- the default, one tenth of 30-image tracks: here 3 tracks (the labels) and none of them held
      t.raises(function() ds:splitTracks() end, 'v has 3 tracks of up to 30 images; a share of 0.1 holds out 0 of them: nothing to hold out')
      t.eq(select(2, ds:splitTracks{share = 0.5}):size(), 5, 'tracks 2 of 3: the 5 images of class 1')
      t.raises(function() ds:splitTracks{share = 0} end, 'share must be a number between 0 and 1')
      t.raises(function() ds:splitTracks{share = 0 / 0} end, 'share must be a number between 0 and 1')
      t.raises(function() ds:splitTracks{track = 2.5} end, 'track (images) must be a whole number from 1 to 2^31, got 2.5')
      t.raises(function() ds:splitTracks{shares = 0.1} end, 'unknown option shares')
      -- single images: every other one
      t.eq(values(select(2, ds:splitTracks{share = 0.5, track = 1})), '2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 32')
   end)

   t.test('imageFolder: a link to another class\'s folder or up to the classes is refused; a loop in one class is walked once', function()
      local d = t.tmpdir()
      local function img(path, v) ts.image.save(path, ts.full({4, 4, 3}, v, 'uint8')) end
      local function labels() return table.concat(ts.data.imageFolder(d .. '/r', {size = 2}).y:totable(), ' ') end
      t.sh(('mkdir -p %s/r/0/in %s/r/1/sub %s/outside'):format(d, d, d))
      img(d .. '/r/0/a.png', 1); img(d .. '/r/0/in/b.png', 2); img(d .. '/r/1/c.png', 3); img(d .. '/r/1/sub/d.png', 4)
      img(d .. '/outside/e.png', 5)
      -- links back into the class's own folders: each folder once
      t.sh(('ln -s .. %s/r/0/in/back && ln -s . %s/r/0/self && ln -s ../../outside %s/r/0/out'):format(d, d, d))
      t.eq(labels(), '0 0 0 1 1')
      local function refused(link, target, words)
         t.sh(('ln -s %s %s/r/%s'):format(target, d, link))
         t.raises(function() labels() end, 'ts.data.imageFolder: ' .. words:gsub('@', d))
         os.remove(d .. '/r/' .. link)
      end
      -- a link to .. made every image of every class one of class 0 as well (7 images, 4 of them labelled twice)
      refused('0/up', '..', '@/r/0/up (really @/r) is the folder that holds the class folders: the images of every class would be of class 0 as well')
      refused('1/root', '/', '@/r/1/root (really /) is the folder that holds the class folders or one above it')
      -- a link from one class into another's folder, whichever is walked first
      refused('0/s', '../1/sub', '@/r/1/sub is reached by class 0 as @/r/0/s: its images would be of classes 0 and 1')
      refused('1/t', '../0/in', '@/r/1/t (really @/r/0/in) is reached by class 0 as @/r/0/in: its images would be of classes 0 and 1')
      refused('2', '0', '@/r/2 (really @/r/0) is reached by class 0 as @/r/0: its images would be of classes 0 and 2')
      refused('1/out', '../../outside', '@/r/1/out (really @/outside) is reached by class 0 as @/r/0/out: its images would be of classes 0 and 1')
   end)

   t.test('imageFolder reads torchvision\'s extensions: .pgm as an image, a .tif refused naming the file', function()
      local d = t.tmpdir()
      t.sh(('mkdir -p %s/r/cat %s/r/dog'):format(d, d))
      ts.image.save(d .. '/r/cat/a.png', ts.full({4, 4, 3}, 1, 'uint8'))
      -- a .pgm (grayscale PNM) was left out without a word
      t.writefile(d .. '/r/dog/b.PGM', 'P5\n2 2\n255\n\9\9\9\9')
      local ds = ts.data.imageFolder(d .. '/r', {size = 2})
      t.eq(table.concat(ds.y:totable(), ' '), '0 1'); t.eq(ds.x:get(2, 1, 1, 3), 9)
      t.writefile(d .. '/r/dog/c.tif', 'II*\0\8\0\0\0\0\0')
      t.raises(function() ts.data.imageFolder(d .. '/r') end, d .. '/r/dog/c.tif: is a TIFF image, a format tshost does not read')
   end)

   t.test('imageFolder: classNames beyond the folders named otherwise than by ClassId (a list read from 1) are refused', function()
      local d = t.tmpdir()
      t.sh(('mkdir -p %s/cat %s/dog'):format(d, d))
      ts.image.save(d .. '/cat/a.png', ts.full({4, 4, 3}, 1, 'uint8'))
      ts.image.save(d .. '/dog/b.png', ts.full({4, 4, 3}, 2, 'uint8'))
      -- {'Cat', 'Dog'} named class 1 (the dog folder) 'Cat' and made a class 2 of no folder
      t.raises(function() ts.data.imageFolder(d, {classNames = {'Cat', 'Dog'}}) end,
               ('ts.data.imageFolder: classNames names class 2 ("Dog"), but the 2 class folders of %s are classes 0 to 1'):format(d))
      local ds = ts.data.imageFolder(d, {classNames = {[0] = 'Cat', 'Dog'}, size = 2})
      t.eq(ds.classNames[0], 'Cat'); t.eq(ds.classNames[1], 'Dog'); t.eq(ds:numClasses(), 2)
   end)

   t.test('imageCSV: one image (and box) under two ClassIds is refused naming both lines; root \'\' is the current folder', function()
      local d = t.tmpdir()
      ts.image.save(d .. '/a.png', ts.full({4, 4, 3}, 1, 'uint8'))
      ts.image.save(d .. '/b.png', ts.full({4, 4, 3}, 2, 'uint8'))
      local function csv(text) t.writefile(d .. '/l.csv', text); return d .. '/l.csv' end
      local function labels(path, opts) return table.concat(ts.data.imageCSV(path, opts).y:totable(), ' ') end
      t.eq(labels(csv('file,ClassId\na.png,3\nb.png,1\na.png,3\n'), {size = 2}), '3 1 3', 'a repeated row is read as it is')
      t.raises(function() labels(csv('file,ClassId\na.png,3\nb.png,1\n\na.png,4\n')) end,
               'ts.data.imageCSV: ' .. d .. '/l.csv:5: a.png has ClassId 4 here but 3 at line 2')
      -- two boxes of one image may be two signs; one box twice, or whole images (roi = false), may not
      local boxes = 'file,ClassId,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2\na.png,3,0,0,1,1\na.png,4,%s\n'
      t.eq(labels(csv(boxes:format('1,1,2,2')), {size = 2}), '3 4')
      t.raises(function() labels(csv(boxes:format('1,1,2,2')), {roi = false}) end, 'l.csv:3: a.png has ClassId 4 here but 3 at line 2')
      t.raises(function() labels(csv(boxes:format('0,0,1,1'))) end, 'l.csv:3: a.png has ClassId 4 here but 3 at line 2')
      -- root '' was joined as '/' .. file, a path from the top of the file system: here the temporary a.png, which the
      -- tests' folder does not hold
      local rel = d:sub(2) .. '/a.png'
      t.writefile(d .. '/r.csv', 'file,ClassId\n' .. rel .. ',2\n')
      t.raises(function() labels(d .. '/r.csv', {root = ''}) end, 'r.csv:2: ' .. rel .. ': cannot open')
   end)

   t.test('a path with a NUL byte is refused by every reader and writer (C and io.open would cut it there)', function()
      local dir = t.tmpdir()
      local bad = dir .. '/cut\0.bak'
      for what, call in pairs({
         ['ts.files.writeFile'] = function() ts.files.writeFile(bad, 'x') end,
         ['ts.files.appendFile'] = function() ts.files.appendFile(bad, 'x') end,
         ['ts.files.readFile'] = function() ts.files.readFile(bad) end,
         ['ts.files.mkdirs'] = function() ts.files.mkdirs(bad) end,
         ['ts.files.exists'] = function() ts.files.exists(bad) end,
         ['ts.save'] = function() ts.save(bad, {a = ts.zeros(1)}) end,
         ['ts.load'] = function() ts.load(bad) end,
         ['ts.data.readPickle'] = function() ts.data.readPickle(bad) end,
      }) do
         t.raises(call, what .. '(path')
         t.raises(call, 'holds a NUL byte')
      end
      t.eq(ts.files.exists(dir .. '/cut'), false, 'nothing written under the cut name')
      t.raises(function() ts.save(5, {}) end, 'ts.save(path, model or table): path must be a string, got number')
   end)

   t.test('shellQuote: a word the shell reads back as it is, whatever it holds; ts.machine describes this process', function()
      -- %q's double quotes let $(...) and `...` run (the commit ts.machine asks git for, in a root named so)
      for _, s in ipairs({"plain", "a b", "it's", "$(echo ran)", "`echo ran`", "a\nb", "'", "", "x;y|z&"}) do
         local pipe = io.popen('printf %s ' .. ts.files.shellQuote(s))
         local back = pipe:read('*a')
         pipe:close()
         t.eq(back, s)
      end
      local m = ts.machine()
      t.truthy(m.threads == ts.getThreads() and m.cpu_path == ts.cpuPath() and type(m.processor or '') == 'string', 'ts.machine')
   end)
end
