-- The image reader under hostile files: every format stb_image reads, mutated where its parsers look
-- (size fields, chunk lengths, offsets, bit depths, palette counts), cut short, and bit-flipped. Each load
-- must give an image or an error naming the file, never a crash (make asan runs this file under
-- AddressSanitizer and UndefinedBehaviorSanitizer). Deterministic: a fixed seed, a fixed case count.
local bit = require('bit')

-- a small generator of our own, so the cases do not depend on the global one
local function generator(seed)
   local s = seed
   return function(n)
      s = (s * 1103515245 + 12345) % 2147483648
      return s % n
   end
end

local function le32(v) return string.char(v % 256, math.floor(v / 256) % 256, math.floor(v / 65536) % 256,
                                          math.floor(v / 16777216) % 256) end
local function be32(v) return le32(v):reverse() end

-- the values a size or length field is set to: zero, one, a few, the signed and unsigned extremes
local extremes = {0, 1, 2, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff, 0x40000000, 33}

-- a 1x1 GIF (the smallest valid one: header, screen, palette, image, LZW data, trailer)
local gif = 'GIF89a\1\0\1\0\128\0\0\0\0\0\255\255\255,\0\0\0\0\1\0\1\0\0\2\2D\1\0;'

return function(t)
   t.test('hostile PNG, JPEG, BMP, TGA, PPM and GIF files are errors naming the file, never crashes', function()
      local dir = t.tmpdir()
      local img = ts.zeros({6, 9, 3}, 'uint8')
      for i = 1, 6 do for j = 1, 9 do img[{i, j}] = ts.tensor({i * 40, j * 25, (i * j) % 256}, 'uint8') end end
      local seeds = {}
      for _, ext in ipairs({'png', 'jpg', 'bmp', 'tga'}) do
         ts.image.save(dir .. '/seed.' .. ext, img)
         seeds[ext] = t.readfile(dir .. '/seed.' .. ext)
      end
      seeds.ppm = 'P6\n9 6\n255\n' .. string.rep('\100\150\200', 54)
      seeds.gif = gif
      -- where each format keeps its size and length fields (byte offsets, 1-based), and their byte order
      local fields = {
         png = {{17, be32}, {21, be32}, {9, be32}, {34, be32}},   -- IHDR width, height; chunk lengths
         bmp = {{3, le32}, {11, le32}, {15, le32}, {19, le32}, {23, le32}, {29, le32}, {31, le32}, {35, le32},
                {47, le32}},   -- file size, data offset, header size, width, height, bpp+planes, compression, palette
         tga = {{13, le32}, {15, le32}, {1, le32}, {3, le32}},
         jpg = {},   -- markers are found by scanning below
         ppm = {}, gif = {{7, le32}, {9, le32}},
      }
      -- JPEG: the two length bytes after every marker, and the frame's height and width
      local j = seeds.jpg
      for at = 1, #j - 3 do
         if j:byte(at) == 0xFF and j:byte(at + 1) >= 0xC0 and j:byte(at + 1) <= 0xFE and j:byte(at + 1) ~= 0xD8 then
            fields.jpg[#fields.jpg + 1] = {at + 2, function(v) return string.char(math.floor(v / 256) % 256, v % 256) end}
         end
      end

      -- size fields set to extremes declare huge images: a million pixels at most keeps the decoders' zeroed
      -- buffers small (the limit itself is tested in test_augment)
      local limit = ts.image.pixelLimit()
      ts.image.pixelLimit(1000000)
      local rand = generator(12345)
      local path = dir .. '/case'
      local cases, loaded, refused = 0, 0, 0
      local function try(ext, bytes)
         local file = path .. '.' .. ext
         t.writefile(file, bytes)
         local ok, res = pcall(ts.image.load, file)
         cases = cases + 1
         if ok then
            loaded = loaded + 1
            t.truthy(res:dim() == 3 and res:size(3) == 3 and res:numel() > 0, file .. ': ' .. tostring(res:size()))
            -- the same bytes decode to the same pixels: a decoder reading memory it never wrote would differ
            t.truthy(ts.image.load(file):equal(res), file .. ': two loads of one file differ')
         else
            refused = refused + 1
            t.truthy(tostring(res):find(file, 1, true), 'error without the file name: ' .. tostring(res))
         end
      end
      for _, ext in ipairs({'png', 'jpg', 'bmp', 'tga', 'ppm', 'gif'}) do   -- in a fixed order: one generator
         local seed = seeds[ext]
         try(ext, seed)
         -- every length/size field set to each extreme value
         for _, f in ipairs(fields[ext]) do
            for _, v in ipairs(extremes) do
               local enc = f[2](v)
               try(ext, seed:sub(1, f[1] - 1) .. enc .. seed:sub(f[1] + #enc))
            end
         end
         -- cut at many lengths
         for cut = 0, #seed - 1, math.max(1, math.floor(#seed / 60)) do try(ext, seed:sub(1, cut)) end
         -- random mutations: byte flips, runs of 0xFF or 0x00, bytes removed or repeated
         for _ = 1, 180 do
            local b = {seed:byte(1, -1)}
            for _ = 1, 1 + rand(4) do
               local at, kind = 1 + rand(#b), rand(4)
               if kind == 0 then b[at] = bit.bxor(b[at], bit.lshift(1, rand(8)))
               elseif kind == 1 then for k = at, math.min(#b, at + rand(8)) do b[k] = rand(2) * 255 end
               elseif kind == 2 and #b > 1 then table.remove(b, at)
               else table.insert(b, at, b[at]) end
            end
            local parts = {}
            for k = 1, #b do parts[k] = string.char(b[k]) end
            try(ext, table.concat(parts))
         end
      end
      ts.image.pixelLimit(limit)
      print(('        %d hostile images: %d loaded, %d refused with the file named'):format(cases, loaded, refused))
      t.truthy(refused > 0 and cases > 1000)
   end)
end
