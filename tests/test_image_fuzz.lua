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
local function le16(v) return string.char(v % 256, math.floor(v / 256) % 256) end
local function be16(v) return le16(v):reverse() end

-- the values a size or length field is set to: zero, one, a few, the signed and unsigned extremes
local extremes = {0, 1, 2, 255, 256, 65535, 65536, 0x7fffffff, 0x80000000, 0xffffffff, 0x40000000, 33}

-- a 1x1 GIF (the smallest valid one: header, screen, palette, image, LZW data, trailer)
local gif = 'GIF89a\1\0\1\0\128\0\0\0\0\0\255\255\255,\0\0\0\0\1\0\1\0\0\2\2D\1\0;'

-- A JPEG with an Exif block (APP1 right after the start marker) holding one tag, the orientation (0x0112,
-- one SHORT), as cameras write it: a TIFF header, little-endian ("II") or big-endian ("MM"), its first
-- directory at offset 8 with one 12-byte entry. Byte 13 of the result is the TIFF header's first byte.
local function with_orientation(jpeg, orientation, big_endian)
   local u16, u32 = big_endian and be16 or le16, big_endian and be32 or le32
   local tiff = (big_endian and 'MM' or 'II') .. u16(42) .. u32(8) .. u16(1) ..
                u16(0x0112) .. u16(3) .. u32(1) .. u16(orientation) .. '\0\0' .. u32(0)
   local app1 = '\255\225' .. string.char(0, 2 + 6 + #tiff) .. 'Exif\0\0' .. tiff
   return jpeg:sub(1, 2) .. app1 .. jpeg:sub(3)
end

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
      seeds.exif = with_orientation(seeds.jpg, 6)
      -- where each format keeps its size and length fields (byte offsets, 1-based), and their byte order
      local fields = {
         png = {{17, be32}, {21, be32}, {9, be32}, {34, be32}},   -- IHDR width, height; chunk lengths
         bmp = {{3, le32}, {11, le32}, {15, le32}, {19, le32}, {23, le32}, {29, le32}, {31, le32}, {35, le32},
                {47, le32}},   -- file size, data offset, header size, width, height, bpp+planes, compression, palette
         tga = {{13, le32}, {15, le32}, {1, le32}, {3, le32}},
         jpg = {},   -- markers are found by scanning below
         ppm = {}, gif = {{7, le32}, {9, le32}},
         -- the Exif block's length, the TIFF header's magic and directory offset, the entry count, the tag's
         -- type and count, and the orientation itself
         exif = {{5, be16}, {15, le16}, {17, le32}, {21, le16}, {25, le16}, {27, le32}, {31, le16}},
      }
      -- JPEG: the two length bytes after every marker, and the frame's height and width
      local j = seeds.jpg
      for at = 1, #j - 3 do
         if j:byte(at) == 0xFF and j:byte(at + 1) >= 0xC0 and j:byte(at + 1) <= 0xFE and j:byte(at + 1) ~= 0xD8 then
            fields.jpg[#fields.jpg + 1] = {at + 2, be16}
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
      for _, ext in ipairs({'png', 'jpg', 'bmp', 'tga', 'ppm', 'gif', 'exif'}) do   -- in a fixed order: one generator
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

   -- Phones store a portrait photo landscape and say in Exif how to turn it; a viewer shows it turned, and so
   -- must the classifier see it. Four flat quadrants (red, green / blue, white) survive JPEG's rounding; each
   -- orientation puts them in the corners the Exif standard says (its words for each case below).
   t.test('JPEG photos are turned upright as their Exif orientation says, in either byte order', function()
      local dir = t.tmpdir()
      local img = ts.zeros({16, 24, 3}, 'uint8')
      local R, G, B, W = {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}
      img[{{1, 8}, {1, 12}}] = ts.tensor(R, 'uint8'):view(1, 1, 3):expand(8, 12, 3)
      img[{{1, 8}, {13, 24}}] = ts.tensor(G, 'uint8'):view(1, 1, 3):expand(8, 12, 3)
      img[{{9, 16}, {1, 12}}] = ts.tensor(B, 'uint8'):view(1, 1, 3):expand(8, 12, 3)
      img[{{9, 16}, {13, 24}}] = ts.tensor(W, 'uint8'):view(1, 1, 3):expand(8, 12, 3)
      ts.image.save(dir .. '/plain.jpg', img)
      local plain = t.readfile(dir .. '/plain.jpg')
      -- the display's corners (top-left, top-right, bottom-left, bottom-right) for each orientation
      local corners = {
         {R, G, B, W},   -- 1: as stored
         {G, R, W, B},   -- 2: mirrored left to right
         {W, B, G, R},   -- 3: turned 180 degrees
         {B, W, R, G},   -- 4: flipped top to bottom
         {R, B, G, W},   -- 5: row 0 is the left side, column 0 the top
         {B, R, W, G},   -- 6: row 0 is the right side, column 0 the top (turned 90 degrees clockwise)
         {W, G, B, R},   -- 7: row 0 is the right side, column 0 the bottom
         {G, W, R, B},   -- 8: row 0 is the left side, column 0 the bottom (turned 90 degrees anticlockwise)
      }
      local function near(px, rgb)
         for c = 1, 3 do if math.abs(px[c] - rgb[c]) > 40 then return false end end
         return true
      end
      for o = 1, 8 do
         for _, big in ipairs({false, true}) do
            local file = ('%s/o%d%s.jpg'):format(dir, o, big and 'mm' or 'ii')
            t.writefile(file, with_orientation(plain, o, big))
            local got = ts.image.load(file)
            local h, w = got:size(1), got:size(2)
            t.eq(('%dx%d'):format(h, w), o >= 5 and '24x16' or '16x24', file .. ' size')
            local at = {{3, 3}, {3, w - 2}, {h - 2, 3}, {h - 2, w - 2}}
            for k = 1, 4 do
               local px = {got[at[k][1]][at[k][2]][1], got[at[k][1]][at[k][2]][2], got[at[k][1]][at[k][2]][3]}
               t.truthy(near(px, corners[o][k]), ('%s corner %d: %d,%d,%d'):format(file, k, px[1], px[2], px[3]))
            end
         end
      end
   end)

   -- stb reads PPM and BMP pixels without checking they are all there: a cut file came back as an image whose
   -- missing part was black, and was classified
   t.test('a cut BMP or PPM is refused, a top-down BMP loads upright, a cut JPEG is named as one', function()
      local dir = t.tmpdir()
      local img = (ts.rand(6, 9, 3) * 255):byte()
      ts.image.save(dir .. '/a.bmp', img)
      local bmp = t.readfile(dir .. '/a.bmp')
      t.writefile(dir .. '/cut.bmp', bmp:sub(1, #bmp - 20))
      t.raises(function() ts.image.load(dir .. '/cut.bmp') end, 'cut.bmp: is truncated: 9 x 6 pixels need')
      -- without the last row's padding byte the pixels are all there: it loads, as stb reads it
      t.writefile(dir .. '/nopad.bmp', bmp:sub(1, #bmp - 1))
      t.truthy(ts.image.load(dir .. '/nopad.bmp'):equal(img), 'a BMP without its last padding byte')
      -- OS/2's 12-byte header keeps its bit depth elsewhere: 2x2, 24 bits, rows of 6 bytes padded to 8, bottom up
      local os2 = 'BM' .. le32(42) .. le32(0) .. le32(26) .. le32(12) .. le16(2) .. le16(2) .. le16(1) .. le16(24) ..
                  '\0\0\255\0\255\0\0\0' .. '\255\0\0\255\255\255\0\0'
      t.writefile(dir .. '/os2.bmp', os2)
      local o = ts.image.load(dir .. '/os2.bmp')
      t.truthy(o:get(1, 1, 3) == 255 and o:get(2, 1, 1) == 255 and o:get(1, 2, 1) == 255 and o:get(1, 2, 2) == 255,
               'the OS/2 BMP: ' .. tostring(o))
      local ppm = 'P6\n# a comment\n9 6\n255\n' .. string.rep('\100\150\200', 54)
      t.writefile(dir .. '/a.ppm', ppm)
      t.eq(tostring(ts.image.load(dir .. '/a.ppm'):size()), '[6x9x3]')
      t.writefile(dir .. '/cut.ppm', ppm:sub(1, #ppm - 1))
      t.raises(function() ts.image.load(dir .. '/cut.ppm') end, 'cut.ppm: is truncated')
      -- top-down: the height negated and the rows (28 bytes each: 27 and a byte of padding) in reading order
      local offset = bmp:byte(11) + 256 * bmp:byte(12)
      local rows = {}
      for r = 5, 0, -1 do rows[#rows + 1] = bmp:sub(offset + 1 + 28 * r, offset + 28 * (r + 1)) end
      t.writefile(dir .. '/down.bmp', bmp:sub(1, 22) .. le32(0x100000000 - 6) .. bmp:sub(27, offset) .. table.concat(rows))
      t.truthy(ts.image.load(dir .. '/down.bmp'):equal(img), 'the top-down BMP is not the image')
      ts.image.save(dir .. '/a.jpg', img)
      local jpg = t.readfile(dir .. '/a.jpg')
      t.writefile(dir .. '/cut.jpg', jpg:sub(1, 200))
      t.raises(function() ts.image.load(dir .. '/cut.jpg') end, 'cut.jpg: a JPEG image that is truncated or corrupt')
   end)

   -- An image is written whole or not at all, as ts.save writes: encoded in memory, written beside the target,
   -- flushed and renamed (stb's own writers ignored a failed write, and a full disk gave a cut image and success)
   t.test('ts.image.save writes whole or not at all, and says why it could not', function()
      local dir = t.tmpdir()
      local small = ts.zeros({8, 8, 3}, 'uint8')
      ts.image.save(dir .. '/a.png', small)
      -- a file size limit of 2 blocks (1 KiB) makes the large write fail (SIGXFSZ ignored: the write returns EFBIG)
      local rc, out = t.sh(("cd %s && trap '' XFSZ && ulimit -f 2 && %s -e \"print(pcall(ts.image.save, 'a.png', " ..
                            "ts.rand(3, 300, 300)))\""):format(dir, t.tshost))
      t.truthy(rc == 0 and out:find('a.png: write failed: File too large (the previous file, if any, is untouched)', 1, true), out)
      t.truthy(ts.image.load(dir .. '/a.png'):equal(small), 'the previous image was damaged')
      t.eq(select(2, t.sh(('ls %s'):format(dir))), 'a.png\n', 'the temporary file is left behind')
      t.raises(function() ts.image.save(dir .. '/none/b.png', small) end, 'none/b.png.tmp')
      -- a link keeps pointing at its file, which is the one replaced, with its permissions; a device is written
      -- in place (nothing can be renamed over /dev/full), its failure named
      t.sh(('cd %s && cp a.png real.png && chmod 600 real.png && ln -s real.png link.png'):format(dir))
      ts.image.save(dir .. '/link.png', ts.zeros({3, 5, 3}, 'uint8'))
      local _, listing = t.sh(('cd %s && stat -c "%%A %%N" link.png real.png'):format(dir))
      t.truthy(listing:find("'link.png' -> 'real.png'", 1, true) and listing:find("-rw------- 'real.png'", 1, true), listing)
      t.eq(tostring(ts.image.load(dir .. '/real.png'):size()), '[3x5x3]')
      t.raises(function() ts.image.save('/dev/full', small) end, '/dev/full: write failed: No space left on device')
      t.raises(function() ts.image.save(nil, small) end, 'ts.image.save(path, img): path must be a string')
      t.raises(function() ts.image.save(dir .. '/c.png', nil) end, 'ts.image.save(path, img): expected an image tensor, got nil')
      t.raises(function() ts.image.save(dir .. '/c.png', ts.zeros({0, 4, 3}, 'uint8')) end, 'cannot be written')
      -- a contact sheet's sizes: a negative pad wrote outside the picture (a segfault), a fractional column count
      -- across rows, no channels before the first image
      t.raises(function() ts.image.grid(ts.rand(64, 3, 16, 16), {pad = -8}) end, 'pad must be a whole number from 0 to 4096, got -8')
      t.raises(function() ts.image.grid(ts.rand(4, 3, 8, 8), {cols = 1.5}) end, 'cols must be a whole number from 1 to 4096')
      t.raises(function() ts.image.grid(ts.rand(4, 0, 8, 8)) end, 'expected images [B, C, H, W] with B >= 1, 1 to 4 channels')
      t.eq(tostring(ts.image.grid(ts.rand(3, 3, 8, 8), {cols = 10}):size()), '[12x32x3]')   -- 3 columns for 3 images
   end)

   t.test('a directory, an empty file, a missing one and a piped one', function()
      local dir = t.tmpdir()
      t.raises(function() ts.image.load(dir) end, dir .. ': is a directory, not a file')
      t.writefile(dir .. '/empty.png', '')
      t.raises(function() ts.image.load(dir .. '/empty.png') end, 'empty.png: is empty, not an image')
      t.raises(function() ts.image.load(dir .. '/none.png') end, 'none.png: cannot open: No such file')
      t.writefile(dir .. '/packed.png', '\31\139\8\0\0\0\0\0')
      t.raises(function() ts.image.load(dir .. '/packed.png') end, 'packed.png: is a gzip-compressed file, not an image')
      -- a PNG whose header declares more than stb_image decodes (2^24 + 1 rows): named as a PNG it refuses
      t.writefile(dir .. '/tall.png', '\137PNG\r\n\26\n\0\0\0\13IHDR\0\0\0\1\1\0\0\1\8\2\0\0\0\0\0\0\0')
      t.raises(function() ts.image.load(dir .. '/tall.png') end, 'tall.png: a PNG image that stb_image cannot read: corrupt, or larger')
      -- image formats stb_image does not read are named ("Image not of any known type" named none)
      for name, bytes in pairs({['a.tif'] = 'II*\0\8\0\0\0', ['a.webp'] = 'RIFF\16\0\0\0WEBPVP8 ',
                                ['a.heic'] = '\0\0\0\24ftypheic\0\0\0\0'}) do
         t.writefile(dir .. '/' .. name, bytes)
         local kind = ({['a.tif'] = 'a TIFF', ['a.webp'] = 'a WebP', ['a.heic'] = 'a HEIC'})[name]
         t.raises(function() ts.image.load(dir .. '/' .. name) end, name .. ': is ' .. kind .. ' image, a format tshost does not read')
      end
      -- a pipe can be read once: the image is read whole, then decoded
      local img = (ts.rand(5, 7, 3) * 255):byte()
      ts.image.save(dir .. '/a.png', img)
      local rc, out = t.sh(('cat %s/a.png | %s -e "print(ts.image.load(\'/dev/stdin\'):size())"'):format(dir, t.tshost))
      t.truthy(rc == 0 and out:find('5x7x3', 1, true), out)
   end)

   t.test('16-bit PNM samples are big-endian; save and grid refuse what they would write wrong', function()
      local dir = t.tmpdir()
      -- 0x1234 and 0xff00 as 16-bit samples are 0x12 and 0xff in 8 bits (stb 2.27 read the low bytes)
      t.writefile(dir .. '/g16.pgm', 'P5 2 1 65535\n\x12\x34\xff\x00')
      t.writefile(dir .. '/c16.ppm', 'P6 1 1 65535\n\x12\x34\x56\x78\x9a\xbc')
      t.writefile(dir .. '/g8.pgm', 'P5 2 1 255\n\x12\x34')
      t.truthy(ts.image.load(dir .. '/g16.pgm', 1):view(-1):equal(ts.tensor({0x12, 0xff}, 'uint8')))
      t.truthy(ts.image.load(dir .. '/c16.ppm'):view(-1):equal(ts.tensor({0x12, 0x56, 0x9a}, 'uint8')))
      t.truthy(ts.image.load(dir .. '/g8.pgm', 1):view(-1):equal(ts.tensor({0x12, 0x34}, 'uint8')))
      local img = ts.zeros(2, 2, 3, 'uint8')
      t.raises(function() ts.image.save(dir .. '/i.png', ts.full({1, 2, 2}, 3, 'int64')) end,
               'an image is uint8 [H,W,C] or float [C,H,W] in 0..1, got int64 [1x2x2]')
      t.raises(function() ts.image.save(dir .. '/f.png', ts.zeros(5, 4, 4)) end, 'a float image is [C,H,W] with 1 to 4 channels, got [5x4x4]')
      t.raises(function() ts.image.save(dir .. '/a.webp', img) end, '.webp is not a format it writes')
      t.raises(function() ts.image.save(dir .. '/y.png\0.jpg', img) end, 'holds a NUL byte')
      t.eq(ts.files.exists(dir .. '/y.png'), false, 'nothing written under the path cut at the NUL')
      t.raises(function() ts.image.load(dir .. '/g8.pgm\0x') end, 'holds a NUL byte')
      -- grid: no empty images, no more columns than images, uint8 batches as 0..255, mean and std as lists
      t.raises(function() ts.image.grid(ts.zeros(1, 1, 0, 2 ^ 28)) end, 'H, W >= 1, got [1x1x0x268435456]')
      t.eq(tostring(ts.image.grid(ts.rand(1, 3, 4, 4)):size()), '[8x8x3]')
      t.eq(ts.image.grid(ts.full({1, 1, 1, 1}, 200, 'uint8'), {pad = 0}):get(1, 1, 1), 200)
      t.raises(function() ts.image.grid(ts.rand(1, 3, 4, 4), {mean = {}}) end, 'mean must be a list of 1 to 4 numbers')
      t.raises(function() ts.image.activationGrid(ts.rand(2, 3, 0, 4)) end, 'expected feature maps [B, C, H, W] with no empty dim')
   end)
   t.test('a palette PNG whose pixels name entries past its palette reads them black, not from stale memory', function()
      local dir = t.tmpdir()
      -- a PNG of 4 x 1 palette indices (colour type 3), its pixels deflated as one stored block (stb checks no CRC)
      local function palette_png(palette, indices)
         local raw = '\0' .. string.char(unpack(indices))
         local a, b = 1, 0
         for i = 1, #raw do a = (a + raw:byte(i)) % 65521; b = (b + a) % 65521 end
         local zlib = '\120\1\1' .. le16(#raw) .. le16(65535 - #raw) .. raw .. be32(b * 65536 + a)
         local function chunk(kind, body) return be32(#body) .. kind .. body .. '\0\0\0\0' end
         return '\137PNG\r\n\26\n' .. chunk('IHDR', be32(#indices) .. be32(1) .. '\8\3\0\0\0') ..
                chunk('PLTE', palette) .. chunk('IDAT', zlib) .. chunk('IEND', '')
      end
      -- a full palette first (what a stale one would hold), then one of two entries whose pixels name 0, 1, 7 and 255
      t.writefile(dir .. '/full.png', palette_png(string.rep('\200\100\50', 256), {0, 1, 7, 255}))
      t.writefile(dir .. '/short.png', palette_png('\10\20\30\40\50\60', {0, 1, 7, 255}))
      t.eq(ts.image.load(dir .. '/full.png'):view(-1):totable()[10], 200)
      local want = ts.tensor({10, 20, 30, 255, 40, 50, 60, 255, 0, 0, 0, 0, 0, 0, 0, 0}, 'uint8')
      for _ = 1, 2 do
         ts.image.load(dir .. '/full.png', 4)
         local got = ts.image.load(dir .. '/short.png', 4)
         t.truthy(got:view(-1):equal(want), 'pixels past the palette: ' .. tostring(got:view(-1)))
         ts.image.load(dir .. '/full.png')
         t.truthy(ts.image.load(dir .. '/short.png'):view(-1):equal(ts.tensor({10, 20, 30, 40, 50, 60, 0, 0, 0, 0, 0, 0}, 'uint8')))
      end
   end)

   t.test('resize, drawBox and load refuse sizes, regions, colours and channels the FFI would cut or wrap', function()
      local img = ts.zeros({4, 4, 3}, 'uint8')
      -- 2^32 + 5 rows: C's int took 5, the other rows stayed black; a short region was an FFI error
      t.raises(function() ts.image.resize(img, 2 ^ 32 + 5, 1) end, 'h must be a whole number from 1 to 2^30, got 4294967301')
      t.raises(function() ts.image.resize(img, 2, 2.5) end, 'w must be a whole number from 1 to 2^30, got 2.5')
      t.raises(function() ts.image.resize(img, 0, 2) end, 'h must be a whole number from 1 to 2^30, got 0')
      t.raises(function() ts.image.resize(img, 2, 2, {0, 0, 2}) end, 'roi must be four numbers {x1, y1, x2, y2}, got {0, 0, 2}')
      t.raises(function() ts.image.resize(img, 2, 2, 3) end, 'roi must be four numbers')
      -- a colour of NaN or 2.5 was written as the FFI cut it
      t.raises(function() ts.image.drawBox(img, {0, 0, 2, 2}, {0 / 0, 0, 0}) end, 'rgb[1] must be a whole number from 0 to 255, got nan')
      t.raises(function() ts.image.drawBox(img, {0, 0, 2, 2}, {0, 2.5, 0}) end, 'rgb[2] must be a whole number from 0 to 255, got 2.5')
      t.raises(function() ts.image.drawBox(img, {0, 0, 2, 2}, 'red') end, 'rgb must be {r, g, b}, got string')
      -- channels = 2.5 gave 2 channels, a string an FFI error
      local dir = t.tmpdir()
      ts.image.save(dir .. '/a.png', img)
      t.raises(function() ts.image.load(dir .. '/a.png', 2.5) end, 'channels must be a whole number from 0 to 4, got 2.5')
      t.raises(function() ts.image.load(dir .. '/a.png', 'rgb') end, 'channels must be a whole number from 0 to 4, got "rgb"')
      t.eq(tostring(ts.image.load(dir .. '/a.png', 0):size()), '[4x4x3]')
   end)

   t.test('PNM samples are shares of the maxval: a 4-bit PGM\'s white is 255, not 15', function()
      local dir = t.tmpdir()
      t.writefile(dir .. '/g15.pgm', 'P5 3 1 15\n\x0f\x07\x00')
      t.writefile(dir .. '/c1.ppm', 'P6 1 1 1\n\x01\x00\x01')
      -- 16-bit samples of maxval 1000: 1000, 500 and one above it (read as the maxval)
      t.writefile(dir .. '/g1000.pgm', 'P5 3 1 1000\n\x03\xe8\x01\xf4\x07\xd0')
      t.truthy(ts.image.load(dir .. '/g15.pgm', 1):view(-1):equal(ts.tensor({255, 119, 0}, 'uint8')))
      t.truthy(ts.image.load(dir .. '/c1.ppm'):view(-1):equal(ts.tensor({255, 0, 255}, 'uint8')))
      t.truthy(ts.image.load(dir .. '/g1000.pgm', 1):view(-1):equal(ts.tensor({255, 128, 255}, 'uint8')),
               tostring(ts.image.load(dir .. '/g1000.pgm', 1):view(-1)))
   end)

   -- each map scaled to the range of its finite values: one NaN made min and max NaN and the whole map black, one
   -- infinity all of it 0 or NaN, and a range under 1e-6 was divided by 1e-6 and came out dark
   t.test('activationGrid scales each map by its finite values and shows NaN and infinities red', function()
      -- the colour drawn for each value of a one-row map [1, 1, 1, w] (2 pixels per value, past the 1-pixel padding)
      local function shown(values, dtype)
         local g = ts.image.activationGrid(ts.tensor({{{values}}}, dtype))
         local out = {}
         for i = 1, #values do
            local z = 2 + (i - 1) * 64
            out[i] = ('%d,%d,%d'):format(g:get(2, z, 1), g:get(2, z, 2), g:get(2, z, 3))
         end
         return table.concat(out, ' ')
      end
      t.eq(shown({0, 1e-7, 5e-8}), '0,0,0 255,255,255 128,128,128')
      t.eq(shown({0, 0 / 0, 1, 1 / 0, 0.5, -1 / 0}), '0,0,0 255,0,0 255,255,255 255,0,0 128,128,128 255,0,0')
      t.eq(shown({-1.7e308, 0, 1.7e308}, 'float64'), '0,0,0 128,128,128 255,255,255')
      t.eq(shown({5, 5}), '0,0,0 0,0,0', 'a map of one value')
      t.eq(shown({0 / 0, 0 / 0}), '255,0,0 255,0,0')
      t.eq(ts.image.rescale(ts.tensor({2, 4, 0 / 0, 3})):totable()[2], 1)
      -- channels as a count (0 failed inside grid, 2.5 and -1 in making the tiles, '2' was taken as 2)
      for _, bad in ipairs({0, 2.5, -1, 0 / 0, '2'}) do
         t.raises(function() ts.image.activationGrid(ts.rand(1, 4, 4, 4), bad) end,
                  'ts.image.activationGrid(maps [, channels]): channels must be a whole number >= 1')
      end
      t.eq(tostring(ts.image.activationGrid(ts.rand(2, 4, 4, 4), 3):size()), '[131x196x3]')
   end)

   t.test('grid: options checked, grey and alpha drawn grey, integer tensors refused, NaN black', function()
      -- a misspelt option (torchvision's nrow) was ignored, a background of 300 failed in fill naming no call
      t.raises(function() ts.image.grid(ts.rand(2, 3, 4, 4), {nrow = 1}) end, 'ts.image.grid: unknown option nrow')
      t.raises(function() ts.image.grid(ts.rand(2, 3, 4, 4), 5) end, 'ts.image.grid: the options must be a table')
      t.raises(function() ts.image.grid(ts.rand(1, 1, 1, 1), {background = 300}) end,
               'ts.image.grid: background must be a whole number from 0 to 255, got 300')
      t.eq(ts.image.grid(ts.rand(1, 1, 1, 1), {background = 7}):get(1, 1, 1), 7)
      -- grey 1 with alpha 0 was drawn red (the alpha as green and blue)
      local ga = ts.zeros(1, 2, 1, 1)
      ga[1][1]:fill(1)
      t.eq(tostring(ts.image.grid(ga, {pad = 0}):view(-1)), tostring(ts.tensor({255, 255, 255}, 'uint8')))
      -- an int64 tensor of 1s was drawn white, as floats in 0..1
      t.raises(function() ts.image.grid(ts.ones(1, 1, 2, 2, 'int64')) end, 'images are float in 0..1 or uint8, got int64')
      t.raises(function() ts.image.grid(ts.zeros(2, 8, 8, 3, 'uint8')) end, '(channels last? :permute(1, 4, 2, 3) first)')
      t.eq(ts.image.grid(ts.full({1, 3, 1, 1}, 0 / 0), {pad = 0}):view(-1):totable()[1], 0)
   end)

   t.test('save: JPEG and TGA hold 65535 pixels a side, [H,W] images are grey, channels first is named', function()
      local dir = t.tmpdir()
      -- a JPEG 70,000 pixels wide was written as one 4,464 wide (its header holds 16 bits a side)
      for _, ext in ipairs({'jpg', 'JPEG', 'tga'}) do
         t.raises(function() ts.image.save(dir .. '/w.' .. ext, ts.zeros(1, 70000, 1, 'uint8')) end,
                  ('a .%s image is at most 65535 pixels a side, got 1x70000'):format(ext))
      end
      t.eq(ts.files.exists(dir .. '/w.jpg'), false)
      -- [H,W] as grayscale, as PIL and torchvision's save_image take it (it was refused)
      ts.image.save(dir .. '/g.png', ts.tensor({{0, 255, 7}}, 'uint8'))
      -- another dtype is refused showing the shape given (it showed [1x5x7])
      t.raises(function() ts.image.save(dir .. '/i.png', ts.zeros({5, 7}, 'int64')) end, 'got int64 [5x7]')
      t.eq(tostring(ts.image.load(dir .. '/g.png', 0):view(-1)), tostring(ts.tensor({0, 255, 7}, 'uint8')))
      ts.image.save(dir .. '/f.png', ts.tensor({{0, 1}, {0.5, 0 / 0}}))
      t.eq(tostring(ts.image.load(dir .. '/f.png', 0):view(-1)), tostring(ts.tensor({0, 255, 128, 0}, 'uint8')))
      -- encodePng takes them as save does (it refused them)
      t.eq(ts.image.encodePng(ts.tensor({{0, 1}, {0.5, 0 / 0}})), t.readfile(dir .. '/f.png'))
      t.eq(ts.image.encodePng(ts.tensor({{0, 255, 7}}, 'uint8')), t.readfile(dir .. '/g.png'))
      t.raises(function() ts.image.save(dir .. '/c.png', ts.zeros(3, 8, 8, 'uint8')) end,
               'a uint8 image is [H,W,C] with 1 to 4 channels, got [3x8x8] (channels first? :permute(2, 3, 1) first)')
      t.raises(function() ts.image.resize(ts.zeros(3, 8, 8), 4, 4) end, 'ts.image.resize: expected a uint8 image [H,W,C], got float32 [3x8x8]')
   end)

   t.test('drawBox: corners the other way round are refused, a view is drawn into', function()
      local img = ts.zeros(8, 8, 3, 'uint8')
      -- {x2, y2, x1, y1} drew nothing at all
      t.raises(function() ts.image.drawBox(img, {6, 1, 2, 5}) end, 'box must be {x1, y1, x2, y2} with x1 <= x2 and y1 <= y2, got {6, 1, 2, 5}')
      t.eq(img:float():sum(), 0)
      -- a transposed view was refused as not contiguous; it is drawn into as the box transposed
      local base = ts.zeros(8, 8, 3, 'uint8')
      t.eq(ts.image.drawBox(base:transpose(1, 2), {1, 1, 6, 3}, {0, 9, 0}, 1):size(1), 8)
      t.truthy(base:equal(ts.image.drawBox(ts.zeros(8, 8, 3, 'uint8'), {1, 1, 3, 6}, {0, 9, 0}, 1)))
      t.eq(base:float():sum(), 9 * 10)
      t.raises(function() ts.image.drawBox(ts.zeros(8, 8, 1, 'uint8'), {0, 0, 1, 1}) end, 'got uint8 [8x8x1] on cpu')
   end)

   t.test('pictures of GPU tensors are those of their CPU copies', function()
      if not ts.cuda.isAvailable() then t.skip(ts.cuda.unavailableReason()) end
      local x = ts.rand(2, 3, 4, 4)
      t.truthy(ts.image.grid(x:cuda()):equal(ts.image.grid(x)))
      t.truthy(ts.image.activationGrid(x:cuda()):equal(ts.image.activationGrid(x)))
      t.eq(ts.image.encodePng(x:cuda()[1]), ts.image.encodePng(x[1]))
   end)
end
