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
               ('cannot write %s/no/such/f.json.tmp%d: No such file or directory'):format(dir, pid))
      t.raises(function() files.appendFile(dir .. '/no/log', 'x') end, 'cannot write ' .. dir .. '/no/log: No such file')
      -- the rename fails (a folder is in the way): the target is named, the temporary file removed
      files.mkdirs(dir .. '/taken')
      files.writeFile(dir .. '/taken/inside', 'x')
      t.raises(function() files.writeFile(dir .. '/taken', 'y') end, 'cannot write ' .. dir .. '/taken: ')
      t.eq(listing(dir), 'taken')
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
   end)

   t.test('now is a clock that does not go back', function()
      local a = files.now()
      local b = files.now()
      t.truthy(type(a) == 'number' and b >= a and a > 0)
   end)
end
