-- Images, resizing, preprocessing, augmentation, samplers and the prefetching loader.
local ffi = require('ffi')

-- a dataset of n single-class images with a bright pixel at (row, col) (1-based) on black
local function dot_dataset(n, row, col, label, size)
   size = size or 16
   local x = ts.zeros({n, size, size, 3}, 'uint8')
   for i = 1, n do x[{i, row, col}] = 255 end
   local y = ts.full({n}, label or 0, 'int64')
   return ts.data.Dataset(x, y)
end

-- n 8x8 images, image i labelled i - 1 with i % 256 in its first byte: each batch's sums tell its images apart
local function numbered_dataset(n)
   local x = ts.zeros({n, 8, 8, 3}, 'uint8')
   local y = ts.zeros({n}, 'int64')
   for i = 1, n do x[{i, 1, 1, 1}] = i % 256; y[i] = i - 1 end
   return ts.data.Dataset(x, y)
end

local function brightest(img)   -- img float [C,H,W]: 1-based row, col of the maximum of channel 1
   local plane = img[1]
   local best, br, bc = -math.huge, 0, 0
   for r = 1, plane:size(1) do
      for c = 1, plane:size(2) do
         local v = plane:get(r, c)
         if v > best then best, br, bc = v, r, c end
      end
   end
   return br, bc
end

return function(t)
   t.test('resize averages when shrinking and crops a region of interest', function()
      local img = ts.tensor({{{0}, {100}}, {{200}, {40}}}, 'uint8')   -- 2x2, one channel
      local one = ts.image.resize(img, 1, 1)
      t.eq(one:get(1, 1, 1), 85)
      local big = ts.zeros({8, 8, 3}, 'uint8')
      big[{{5, 8}, {5, 8}}] = 200
      local roi = ts.image.resize(big, 2, 2, {4, 4, 8, 8})
      t.eq(roi:get(2, 2, 1), 200)
      -- a region reaching beyond the image repeats its border pixels there: the 8x8 image framed by a margin
      -- of 4 on every side, shrunk to 4x4, is its four corners' quarters (the border of each repeated)
      local framed = ts.image.resize(big, 4, 4, {-4, -4, 12, 12})
      t.eq(framed:get(1, 1, 1), 0)
      t.eq(framed:get(4, 4, 1), 200)
      t.eq(framed:get(1, 4, 1), 0)
      local edge = ts.zeros({4, 4, 1}, 'uint8')
      edge[{{}, {4}}] = 90   -- the right column, repeated to the right of the image
      t.eq(ts.image.resize(edge, 4, 4, {3, 0, 7, 4}):float():min(), 90)
      t.raises(function() ts.image.resize(big, 2, 2, {8, 0, 12, 4}) end, 'misses the 8x8 image')
      t.raises(function() ts.image.resize(big, 2, 2, {-9, 0, 4, 4}) end, 'more than its size')
      t.raises(function() ts.image.resize(big, 2, 2, {0 / 0, 0, 4, 4}) end, 'misses the 8x8 image')
      -- a region is resampled with the whole image's filters: the lower half of a 64x64 image shrunk by 2 is
      -- the lower half of the whole image shrunk by 2, filter taps across the cut included
      local noise = (ts.rand(64, 64, 3) * 255):byte()
      local whole, lower = ts.image.resize(noise, 32, 32), ts.image.resize(noise, 16, 32, {0, 32, 64, 64})
      t.eq((whole[{{17, 32}}]:float() - lower:float()):abs():max(), 0)
   end)

   t.test('PNG save and load round-trip; unreadable files are named', function()
      local d = t.tmpdir()
      local img = ts.zeros({5, 7, 3}, 'uint8')
      img[{2, 3}] = ts.tensor({10, 20, 30}, 'uint8')
      ts.image.save(d .. '/a.png', img)
      local back = ts.image.load(d .. '/a.png')
      t.truthy(back:equal(img))
      t.writefile(d .. '/bad.png', 'not an image')
      t.raises(function() ts.image.load(d .. '/bad.png') end, 'bad.png: cannot read the image')
      -- an image larger than the pixel limit is refused from its header, before decoding
      local limit = ts.image.pixelLimit()
      t.eq(limit, 89478485)
      ts.image.pixelLimit(34)
      local ok, err = pcall(ts.image.load, d .. '/a.png')
      ts.image.pixelLimit(limit)
      t.truthy(not ok and tostring(err):find('a.png: 7 x 5 pixels is more than the limit of 34', 1, true), err)
      -- a PPM header declaring 100000 x 100000 pixels with no data: refused without allocating 30 GB
      t.writefile(d .. '/bomb.ppm', 'P6\n100000 100000\n255\n')
      t.raises(function() ts.image.load(d .. '/bomb.ppm') end, 'bomb.ppm: 100000 x 100000 pixels is more than the limit')
      t.raises(function() ts.image.pixelLimit(0) end, 'n must be a whole number from 1 to 2^53')
   end)

   t.test('the original-resolution GTSRB images load in every format and resize like the pickles', function()
      local dir = os.getenv('TSHOST_DATA')
      if not dir then t.skip('TSHOST_DATA is not set') end
      local rows = ts.data.readCSV(dir .. '/originals/labels.csv')
      t.eq(#rows, 101)
      local listed = ts.data.imageCSV(dir .. '/originals/labels.csv')
      t.eq(listed:size(), 101)
      t.eq(listed.y[1], tonumber(rows[1].ClassId))
      local test = ts.data.gtsrb(dir).test
      local formats = {}
      for _, row in ipairs(rows) do
         local img = ts.image.load(dir .. '/originals/' .. row.file)
         t.eq(img:size(2), tonumber(row.Width), row.file)
         t.eq(img:size(1), tonumber(row.Height), row.file)
         formats[row.file:match('%.(%a+)$')] = true
         if row.file:match('%.png$') then
            -- the pickles were made with Pillow's bilinear resize of the whole image
            local index = tonumber(row.file:match('_(%d+)')) + 1
            t.eq(test.y[index], tonumber(row.ClassId), row.file)
            local diff = (ts.image.resize(img, 32, 32):float() - test.x[index]:float()):abs()
            t.truthy(diff:mean() < 0.6 and diff:max() <= 3, ('%s: mean %.2f max %d'):format(row.file, diff:mean(), diff:max()))
         end
      end
      t.truthy(formats.png and formats.jpg and formats.ppm)
   end)

   t.test('image folders and CSV lists become datasets', function()
      local d = t.tmpdir()
      os.execute(('mkdir -p %s/imgs/00 %s/imgs/07'):format(d, d))
      local red = ts.zeros({40, 30, 3}, 'uint8')
      red[{{}, {}, 1}] = 200
      ts.image.save(d .. '/imgs/00/a.png', red)
      ts.image.save(d .. '/imgs/07/b.png', ts.full({20, 20, 3}, 90, 'uint8'))
      ts.image.save(d .. '/imgs/07/c.png', ts.full({64, 48, 3}, 30, 'uint8'))
      local ds = ts.data.imageFolder(d .. '/imgs')
      t.eq(ds:size(), 3)
      t.eq(tostring(ds.x:size()), '[3x32x32x3]')
      t.eq(ds.y[1], 0); t.eq(ds.y[3], 7)
      t.eq(ds.x:get(1, 16, 16, 1), 200)
      t.writefile(d .. '/list.csv', 'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\nimgs/00/a.png;30;40;5;5;24;34;3\n')
      local csv = ts.data.imageCSV(d .. '/list.csv')
      t.eq(csv:size(), 1); t.eq(csv.y[1], 3)
      -- a box reaching out of its image (the 30x40 image's last column is 29) is a mistake in the list
      t.writefile(d .. '/bad.csv', 'Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId\nimgs/00/a.png;30;40;5;5;30;34;3\n')
      t.raises(function() ts.data.imageCSV(d .. '/bad.csv') end, 'a.png: its box 5,5,31,35 (end exclusive) does not lie in the 30x40 image')
      t.raises(function() ts.data.imageFolder(d .. '/none') end, 'missing or empty')
   end)

   t.test('geometry: a known point moves where the transform says', function()
      -- rotation by 90 degrees about the centre (8, 8) of a 16x16 image: (x, y) -> (16 - y, x)
      local move = ts.data.augmentMatrix{size = 16, rotate = 90}
      local x, y = move(11.5, 3.5)
      t.near(x, 12.5, 1e-9)
      t.near(y, 11.5, 1e-9)
      -- shear by 45 degrees along x: (x, y) -> (x + (y - 8), y); translation adds pixels
      x, y = ts.data.augmentMatrix{size = 16, shear = 45, tx = 2, ty = -1}(10, 12)
      t.near(x, 16, 1e-9)
      t.near(y, 11, 1e-9)
      -- through the batch pipeline: scaling by 2 about the centre moves the dot at pixel centre (9.5, 6.5)
      -- to (11, 5), between 0-based columns 10 and 11 and rows 4 and 5
      local ds = dot_dataset(1, 7, 10)
      local out = ts.data.batch(ds, {1}, {augment = ts.data.augment{scale = {2, 2}}})
      local r, c = brightest(out[1])
      t.truthy(r >= 5 and r <= 6 and c >= 11 and c <= 12, ('dot at row %d col %d'):format(r, c))
   end)

   t.test('resizing to another output size maps the image onto it (96x96 for MobileNet)', function()
      local ds = dot_dataset(1, 9, 9)   -- centre (8.5, 8.5) of 16 -> (51, 51) of 96
      local x = ts.data.batch(ds, {1}, {preprocess = ts.data.preprocess{size = 96}})
      t.eq(tostring(x:size()), '[1x3x96x96]')
      local r, c = brightest(x[1])
      t.truthy(math.abs(r - 52) <= 1 and math.abs(c - 52) <= 1, ('dot at %d,%d'):format(r, c))
   end)

   t.test('flips relabel mirrored signs and never mirror asymmetric ones', function()
      -- class 38 (keep right) mirrored is 39 (keep left); class 1 (30 km/h) is never mirrored
      local keep_right = dot_dataset(64, 5, 3, 38)
      local aug = ts.data.augment{flip = 1}
      local x, y = ts.data.batch(keep_right, (function() local p = {} for i = 1, 64 do p[i] = i end return p end)(), {augment = aug})
      for i = 1, 64 do
         t.eq(y[i], 39)
         local r, c = brightest(x[i])
         t.eq(c, 14, 'the dot is mirrored')   -- column 3 of 16 -> 14
         t.eq(r, 5)
      end
      local speed = dot_dataset(8, 5, 3, 1)
      x, y = ts.data.batch(speed, {1, 2, 3, 4, 5, 6, 7, 8}, {augment = aug})
      for i = 1, 8 do
         t.eq(y[i], 1)
         local _, c = brightest(x[i])
         t.eq(c, 3)
      end
   end)

   t.test('overexposure saturates channel by channel: a red rim washes out towards white, never darker', function()
      -- 64 images of one red pixel (200, 60, 60) on grey (128): with probability 1 a gain in [1, 4]
      local n = 64
      local x = ts.full({n, 4, 4, 3}, 128, 'uint8')
      for i = 1, n do x[{i, 2, 2}] = ts.tensor({200, 60, 60}, 'uint8') end
      local ds = ts.data.Dataset(x, ts.zeros({n}, 'int64'))
      local pos = {}
      for i = 1, n do pos[i] = i end
      local out = ts.data.batch(ds, pos, {augment = ts.data.augment{exposure = {1, 4}}, seed = 3})
      local gains, clipped = {}, 0
      for i = 1, n do
         local r, g, b = out:get(i, 1, 2, 2), out:get(i, 2, 2, 2), out:get(i, 3, 2, 2)
         local gain = g / (60 / 255)
         t.truthy(gain >= 1 - 1e-5 and gain <= 4 + 1e-5, 'gain in [1, 4], got ' .. gain)
         t.near(b, g, 1e-6)
         t.near(r, math.min(1, gain * 200 / 255), 1e-5, 1e-6, 'red clipped at 1, not rescaled')
         t.near(out:get(i, 1, 1, 1), math.min(1, gain * 128 / 255), 1e-5)
         if r == 1 then clipped = clipped + 1 end
         gains[#gains + 1] = gain
      end
      table.sort(gains)
      t.truthy(clipped > n / 4 and clipped < n, ('some images saturate the red, not all (%d of %d)'):format(clipped, n))
      -- log-uniform: the median gain is near sqrt(4) = 2
      t.truthy(gains[n / 2] > 1.6 and gains[n / 2] < 2.5, 'median gain ' .. gains[n / 2])
      -- probability 0.25: about a quarter of the images change
      local some = ts.data.batch(ds, pos, {augment = ts.data.augment{exposure = {0.25, 4}}, seed = 3})
      local changed = 0
      for i = 1, n do if math.abs(some:get(i, 2, 2, 2) - 60 / 255) > 1e-6 then changed = changed + 1 end end
      t.truthy(changed > 6 and changed < 28, ('about a quarter changed (%d of %d)'):format(changed, n))
      t.raises(function() ts.data.augment{exposure = {0.5, 0.8}} end, 'exposure gain must be at least 1')
      t.raises(function() ts.data.augment{exposure = {0.5, 0 / 0}} end, 'augment: exposure must be a finite number')
   end)

   t.test('the washout overexposes relative to the image: a dark and a bright image wash out alike', function()
      -- 10x10 images, grey with a 2x2 red patch (4 of 100 pixels, above the 90th percentile): the bright level is
      -- the grey. A dark one (grey 40, red 70/20/20), a bright one (grey 160, red 250/80/80), a near-black one
      -- (grey 10: its level is held at 1/10, the gain at 10)
      local x = ts.zeros({3, 10, 10, 3}, 'uint8')
      for i, v in ipairs{{40, {70, 20, 20}}, {160, {250, 80, 80}}, {10, {17, 5, 5}}} do
         x[i]:fill(v[1])
         for y = 4, 5 do for xx = 4, 5 do x[{i, y, xx}] = ts.tensor(v[2], 'uint8') end end
      end
      local ds = ts.data.Dataset(x, ts.zeros({3}, 'int64'))
      local out = ts.data.batch(ds, {1, 2, 3}, {augment = ts.data.augment{washout = {1, 1}}, seed = 5})
      for i = 1, 2 do
         t.near(out:get(i, 2, 1, 1), 1, 1e-5, 1e-6, 'the grey brought to 1')
         t.near(out:get(i, 1, 4, 4), 1, 1e-6, 1e-6, 'the red clipped')
         t.near(out:get(i, 2, 4, 4), 0.5, 1e-5, 1e-6, 'green and blue at half the grey, the rim pink-white')
      end
      t.near(out:get(3, 2, 1, 1), 10 * 10 / 255, 1e-5, 1e-6, 'a near-black frame: gain 10, not 25.5')
      -- a further gain log-uniform in [1, 4] on top: the grey clips, the green lands in [0.5, 1]
      local n = 64
      local many = ts.data.Dataset(x[{{1, 1}}]:expand(n, 10, 10, 3):contiguous(), ts.zeros({n}, 'int64'))
      local pos = {}
      for i = 1, n do pos[i] = i end
      local more = ts.data.batch(many, pos, {augment = ts.data.augment{washout = {1, 4}}, seed = 5})
      local above = 0
      for i = 1, n do
         local g = more:get(i, 2, 4, 4)
         t.truthy(g >= 0.5 - 1e-5 and g <= 1 + 1e-6, 'green in [0.5, 1], got ' .. g)
         if g > 0.75 then above = above + 1 end
      end
      t.truthy(above > 8 and above < 56, ('the further gain spreads (%d of %d above 1.5)'):format(above, n))
      t.raises(function() ts.data.augment{washout = {0.5, 0.8}} end, 'washout gain must be at least 1')
      t.raises(function() ts.data.augment{washout = {0.5, 1 / 0}} end, 'augment: washout must be a finite number')
   end)

   t.test('faded red paint: a red rim pales toward white, white, black, grey and blue stay', function()
      -- one 2x5 image: red rim 200/40/40, white 230, black 20, blue 30/60/180, brown 120/80/40
      local px = {{200, 40, 40}, {230, 230, 230}, {20, 20, 20}, {30, 60, 180}, {120, 80, 40}}
      local x = ts.zeros({1, 2, 5, 3}, 'uint8')
      for k, v in ipairs(px) do
         for y = 1, 2 do x[{1, y, k}] = ts.tensor(v, 'uint8') end
      end
      local ds = ts.data.Dataset(x, ts.zeros({1}, 'int64'))
      local full = ts.data.batch(ds, {1}, {augment = ts.data.augment{fade = {1, 1}}, seed = 3})
      local function at(out, k, ch) return out:get(1, ch, 1, k) * 255 end
      -- fade f in [0, 1] drawn: the red's green and blue rise by f (200 - 40), its red stays
      local f = (at(full, 1, 2) - 40) / 160
      t.truthy(f > 0 and f <= 1, 'a fraction drawn in (0, 1]: ' .. f)
      t.near(at(full, 1, 1), 200, 1e-3)
      t.near(at(full, 1, 3), 40 + 160 * f, 1e-3)
      for k = 2, 4 do
         for ch = 1, 3 do t.near(at(full, k, ch), px[k][ch], 1e-3, 0, ('pixel %d channel %d unchanged'):format(k, ch)) end
      end
      t.near(at(full, 5, 2), 80 + 40 * f, 1e-3, 0, 'brown: its 40 of red excess, by the same fraction')
      t.near(at(full, 5, 3), 40 + 40 * f, 1e-3)
      -- over many draws the fraction spreads over [0, max]; with probability 0.5 about half the images fade
      local n = 200
      local many = ts.data.Dataset(x:expand(n, 2, 5, 3):contiguous(), ts.zeros({n}, 'int64'))
      local pos = {}
      for i = 1, n do pos[i] = i end
      local out = ts.data.batch(many, pos, {augment = ts.data.augment{fade = {0.5, 0.6}}, seed = 4})
      local faded, high = 0, 0
      for i = 1, n do
         local fi = (out:get(i, 2, 1, 1) * 255 - 40) / 160
         t.truthy(fi > -1e-5 and fi <= 0.6 + 1e-5, 'fraction in [0, 0.6], got ' .. fi)
         if fi > 1e-4 then faded = faded + 1 end
         if fi > 0.3 then high = high + 1 end
      end
      t.truthy(faded > 70 and faded < 130, ('about half fade (%d of %d)'):format(faded, n))
      t.truthy(high > faded / 4 and high < faded * 3 / 4, ('the fraction spreads (%d of %d above half the max)'):format(high, faded))
      -- a grayscale image has no red to fade; bad settings are refused
      local gray = ts.data.Dataset(ts.zeros({1, 2, 2, 1}, 'uint8'):fill(90), ts.zeros({1}, 'int64'))
      t.near(ts.data.batch(gray, {1}, {augment = ts.data.augment{fade = {1, 1}}}):get(1, 1, 1, 1) * 255, 90, 1e-3)
      t.raises(function() ts.data.augment{fade = {0.5, 1.5}} end, 'fade must be in (0, 1]')
      t.raises(function() ts.data.augment{fade = {0.5, 0}} end, 'fade must be in (0, 1]')
      t.raises(function() ts.data.augment{fade = {0.5, 0 / 0}} end, 'augment: fade must be a finite number')
   end)

   t.test('cast shadow: a grey band of straight, soft edges, its gain in [darkest, 1], drawn after the rest', function()
      local n, h, w = 200, 24, 32
      local ds = ts.data.Dataset(ts.zeros({n, h, w, 3}, 'uint8'):fill(160), ts.zeros({n}, 'int64'))
      local pos = {}
      for i = 1, n do pos[i] = i end
      local out = ts.data.batch(ds, pos, {augment = ts.data.augment{shadow = {0.5, 0.3}}, seed = 6})
      local grey = 160 / 255
      -- a factor along a line through a band is a valley: it falls to a floor, then rises (never the reverse)
      local function valley(f)
         local rising = false
         for k = 2, #f do
            if f[k] > f[k - 1] + 1e-6 then rising = true
            elseif f[k] < f[k - 1] - 1e-6 and rising then return false end
         end
         return true
      end
      local shaded, darkest, lightest = 0, 1, 0
      for i = 1, n do
         local low = 1
         for y = 1, h do
            local row = {}
            for x = 1, w do
               local f = out:get(i, 1, y, x) / grey
               t.truthy(f >= 0.3 - 1e-5 and f <= 1 + 1e-5, ('image %d: factor %g outside [0.3, 1]'):format(i, f))
               for ch = 2, 3 do t.near(out:get(i, ch, y, x) / grey, f, 1e-5, 0, 'a shade darkens every channel alike') end
               row[x] = f
               if f < low then low = f end
            end
            t.truthy(valley(row), ('image %d row %d: not a band'):format(i, y))
         end
         for x = 1, w do
            local col = {}
            for y = 1, h do col[y] = out:get(i, 1, y, x) / grey end
            t.truthy(valley(col), ('image %d column %d: not a band'):format(i, x))
         end
         if low < 1 - 1e-4 then
            shaded = shaded + 1
            darkest, lightest = math.min(darkest, low), math.max(lightest, low)
         end
      end
      t.truthy(shaded > 70 and shaded < 130, ('about half are shaded (%d of %d)'):format(shaded, n))
      t.truthy(darkest < 0.4 and lightest > 0.85, ('gains spread over [0.3, 1]: %.3f .. %.3f'):format(darkest, lightest))
      -- the shadow is drawn after every other setting: the same seed warps and brightens as without it, and
      -- the shade only divides the light (a textured image, a rotation and a brightness change)
      local tex = ts.data.Dataset((ts.rand(8, h, w, 3) * 100 + 50):byte(), ts.zeros({8}, 'int64'))
      local base = {rotate = 15, brightness = 0.2}
      local plain = ts.data.batch(tex, {1, 2, 3, 4, 5, 6, 7, 8}, {augment = ts.data.augment(base), seed = 9})
      base.shadow = {1, 0.3}
      local shade = ts.data.batch(tex, {1, 2, 3, 4, 5, 6, 7, 8}, {augment = ts.data.augment(base), seed = 9})
      local ratio = shade:div(plain)
      t.truthy(ratio:min() >= 0.3 - 1e-5 and ratio:max() <= 1 + 1e-5, ('shaded / plain in [0.3, 1]: %g .. %g'):format(ratio:min(), ratio:max()))
      t.truthy(ratio:min() < 0.99, 'probability 1 shades')
      -- and the shade is a band in the output's frame, alike in every channel: a shadow applied before the
      -- warp would come out rotated, bilinearly mixed with the texture, and its ratio would not be a valley
      for i = 1, 8 do
         for y = 1, h do
            local row = {}
            for x = 1, w do
               row[x] = ratio:get(i, 1, y, x)
               for ch = 2, 3 do t.near(ratio:get(i, ch, y, x), row[x], 1e-4, 0, 'one factor for every channel') end
            end
            t.truthy(valley(row), ('textured image %d row %d: the shade is not a band'):format(i, y))
         end
         for x = 1, w do
            local col = {}
            for y = 1, h do col[y] = ratio:get(i, 1, y, x) end
            t.truthy(valley(col), ('textured image %d column %d: the shade is not a band'):format(i, x))
         end
      end
      t.raises(function() ts.data.augment{shadow = {0.5, 1}} end, 'shadow gain must be in [0, 1)')
      t.raises(function() ts.data.augment{shadow = {0.5, -0.1}} end, 'shadow gain must be in [0, 1)')
      t.raises(function() ts.data.augment{shadow = {0.5, 0 / 0}} end, 'augment: shadow must be a finite number')
   end)

   t.test('augmentation is deterministic by seed and differs between seeds', function()
      local ds = dot_dataset(4, 6, 6)
      local aug = ts.data.augment{rotate = 20, translate = 0.1, brightness = 0.3, noise = 0.05, blur = {0.5, 1}}
      local a = ts.data.batch(ds, {1, 2, 3, 4}, {augment = aug, seed = 11})
      local b = ts.data.batch(ds, {1, 2, 3, 4}, {augment = aug, seed = 11})
      local c = ts.data.batch(ds, {1, 2, 3, 4}, {augment = aug, seed = 12})
      t.truthy(a:equal(b))
      t.truthy(not a:equal(c))
      t.truthy(not a[1]:equal(a[2]), 'each image in a batch gets its own draw')
      -- every probability 0 and every spread 0: the images of no augmentation, bit for bit
      local off = ts.data.augment{flip = 0, blur = {0, 2}, cutout = {0, 4}, exposure = {0, 2}, washout = {0, 2},
                                  fade = {0, 0.5}, shadow = {0, 0.5}, rotate = 0, brightness = 0, noise = 0}
      t.truthy(ts.data.batch(ds, {1, 2, 3, 4}, {augment = off, seed = 11}):equal(ts.data.batch(ds, {1, 2, 3, 4})))
   end)

   t.test('a colour jitter above 1 draws its factors from 0, as torchvision does: no black or inverted images', function()
      -- two-tone images, dark left and bright right: a negative brightness made them black, a negative contrast
      -- brighter left than right
      local x = ts.zeros({64, 2, 2, 3}, 'uint8')
      x[{{}, {}, 1}] = 64
      x[{{}, {}, 2}] = 192
      local ds, all = ts.data.Dataset(x, ts.zeros({64}, 'int64')), {}
      for i = 1, 64 do all[i] = i end
      for _, settings in ipairs({{brightness = 3}, {contrast = 3}}) do
         local out = ts.data.batch(ds, all, {augment = ts.data.augment(settings), seed = 5})
         for i = 1, 64 do
            local left, right = out:get(i, 1, 1, 1), out:get(i, 1, 1, 2)
            t.truthy(right > 0 and right >= left, ('%s: image %d reads %g left, %g right'):format(next(settings), i,
                     left, right))
         end
      end
   end)

   t.test('preprocessing: standardization, grayscale, histogram equalization and CLAHE', function()
      local x = ts.zeros({1, 16, 16, 3}, 'uint8')
      for r = 1, 16 do x[{1, r}] = 100 + r end   -- a narrow range of grays: 101 .. 116
      local ds = ts.data.Dataset(x, ts.zeros({1}, 'int64'))
      local plain = ts.data.batch(ds, {1}, {preprocess = ts.data.preprocess{mean = {0.5}, std = {0.25}}})
      t.near(plain:get(1, 1, 1, 1), (101 / 255 - 0.5) / 0.25, 1e-5)
      local gray = ts.data.batch(ds, {1}, {preprocess = ts.data.preprocess{grayscale = true}})
      t.eq(gray:size(2), 1)
      local eq = ts.data.batch(ds, {1}, {preprocess = ts.data.preprocess{equalize = 'hist'}})
      t.truthy(eq:min() < 0.1 and eq:max() > 0.95, ('histogram equalization stretches: %.2f..%.2f'):format(eq:min(), eq:max()))
      local clahe = ts.data.batch(ds, {1}, {preprocess = ts.data.preprocess{equalize = 'clahe', clahe_clip = 2}})
      local spread = clahe:max() - clahe:min()
      t.truthy(spread > plain:max() * 0 + 15 / 255 and spread < eq:max() - eq:min(),
               ('CLAHE stretches less than global equalization: %.3f'):format(spread))
   end)

   t.test('samplers: up-sampling and down-sampling equalize the classes, square-root sampling tempers them', function()
      local y = ts.zeros({30}, 'int64')
      for i = 21, 30 do y[i] = 1 end           -- 20 of class 0, 10 of class 1
      for i = 29, 30 do y[i] = 2 end           -- class 2: 2 images
      local ds = ts.data.Dataset(ts.zeros({30, 4, 4, 3}, 'uint8'), y)
      t.eq(ds:imbalance().ratio, 10)
      for name, want in pairs({upsample = 20, downsample = 2}) do
         local order = ts.data.samplers[name](ds)
         local count = {[0] = 0, 0, 0}
         for _, i in ipairs(order) do count[ds.y:get(i + 1)] = count[ds.y:get(i + 1)] + 1 end
         t.eq(count[0], want, name)
         t.eq(count[1], want, name)
         t.eq(count[2], want, name)
      end
      -- square-root sampling: shares 30 * sqrt(n) / (sqrt 20 + sqrt 8 + sqrt 2) = 15.39, 9.74, 4.87, rounded by
      -- largest remainder to 15, 10, 5 (30 in all); class 0 a subset without repeats, the others all of theirs
      local order = ts.data.samplers.sqrt(ds)
      t.eq(#order, 30)
      local count, distinct = {[0] = 0, 0, 0}, {[0] = {}, {}, {}}
      for _, i in ipairs(order) do
         local c = ds.y:get(i + 1)
         count[c] = count[c] + 1
         distinct[c][i] = true
      end
      local function size(set) local n = 0 for _ in pairs(set) do n = n + 1 end return n end
      t.eq(count[0], 15); t.eq(count[1], 10); t.eq(count[2], 5)
      t.eq(size(distinct[0]), 15, 'the largest class is cut to a subset, no image twice')
      t.eq(size(distinct[1]), 8, 'a class below its share keeps every image')
      t.eq(size(distinct[2]), 2)
      -- a class larger than Lua can unpack (8,000 values) is cut down without copying it through unpack
      local big_y = ts.zeros({9003}, 'int64')
      for i = 9001, 9003 do big_y[i] = 1 end
      local big = ts.data.Dataset(ts.zeros({9003, 1, 1, 3}, 'uint8'), big_y)
      t.eq(#ts.data.samplers.downsample(big), 6)
      t.eq(#ts.data.samplers.sqrt(big), 9003)
      local more = ts.data.synthesize(ds, 20)
      t.eq(more:size(), 60)
      local c = more:counts()
      t.eq(c[0], 20); t.eq(c[1], 20); t.eq(c[2], 20)
      t.truthy(more.x[1]:equal(ds.x[1]), 'the originals come first, unchanged')
      local w = ds:classWeights()
      t.near(w, ts.tensor{30 / (3 * 20), 30 / (3 * 8), 30 / (3 * 2)})
   end)

   t.test('the loader prefetches every image of an epoch once, reproducibly, with one worker or several', function()
      local n = 300
      local ds = numbered_dataset(n)
      local function epoch(seed, workers)
         ts.manualSeed(seed)
         local loader = ts.data.Loader(ds, {batch = 64, augment = ts.data.augment{brightness = 0.2, rotate = 10},
                                            workers = workers})
         local seen, sizes, sums = {}, {}, {}
         for bx, by in loader:epoch() do
            sizes[#sizes + 1] = bx:size(1)
            for i = 1, by:numel() do seen[by[i]] = (seen[by[i]] or 0) + 1 end
            sums[#sums + 1] = bx:sum() + by:sum()
         end
         return seen, sizes, table.concat(sums, ' ')
      end
      local seen, sizes, s1 = epoch(3)
      t.eq(table.concat(sizes, ','), '64,64,64,64,44')
      for i = 0, n - 1 do t.eq(seen[i], 1, 'image ' .. i) end
      local _, _, s2 = epoch(3)
      t.eq(s1, s2)
      -- several workers build the same batches, handed out in the same order
      for _, workers in ipairs({2, 5}) do
         local _, sizes_w, sw = epoch(3, workers)
         t.eq(table.concat(sizes_w, ','), '64,64,64,64,44')
         t.eq(sw, s1, workers .. ' workers')
      end
      t.raises(function() ts.data.Loader(ds, {workers = 0}) end, 'workers must be a whole number from 1 to 32, got 0')
      -- stopping an epoch early and starting another is fine
      local loader = ts.data.Loader(ds, {batch = 10})
      for _ in loader:epoch() do break end
      local count = 0
      for _ in loader:epoch() do count = count + 1 end
      t.eq(count, 30)
      -- closed in the middle of an epoch: the batch taken stays, its threads and prefetched batches go now
      local batches = loader:epoch()
      local bx, by = batches()
      loader:close()
      t.eq(bx:size(1), 10)
      t.eq(by:numel(), 10)
      t.truthy(by:min() >= 0 and by:max() < n, tostring(by))
      t.raises(function() loader:epoch() end, 'closed; it cannot start another epoch')
      t.raises(batches, 'closed in the middle of its epoch')
      loader:close()   -- twice is harmless
      -- an epoch resumed at a batch yields the batches an epoch from the start gives from there on
      local resumed = {}
      ts.manualSeed(3)
      local l2 = ts.data.Loader(ds, {batch = 64, augment = ts.data.augment{brightness = 0.2, rotate = 10}})
      for bx, by in l2:epoch(4) do resumed[#resumed + 1] = bx:sum() + by:sum() end
      local whole = {}
      for v in s1:gmatch('%S+') do whole[#whole + 1] = v end
      t.eq(table.concat(resumed, ' '), whole[4] .. ' ' .. whole[5])
      t.raises(function() for _ in l2:epoch(7) do end end, 'first (a batch) is 7, past the end of this epoch of 5 batches')
   end)

   t.test('a loader that runs out of memory goes on, after retry, with the batches an uninterrupted epoch gives', function()
      local ds = numbered_dataset(300)
      local function loader() return ts.data.Loader(ds, {batch = 10, augment = ts.data.augment{brightness = 0.2, rotate = 10}}) end
      local function sum(bx, by) return tostring(bx:sum() + by:sum()) end
      ts.manualSeed(5)
      local whole = {}
      for bx, by in loader():epoch(1, 77) do whole[#whole + 1] = sum(bx, by) end
      t.eq(#whole, 30)
      local function limited(fn)   -- the host's memory limited to what is in use now plus a little
         collectgarbage('collect')
         ts.setMemoryLimit('cpu', ts.memory('cpu').in_use + 1024)
         local ok, err = pcall(fn)
         ts.setMemoryLimit('cpu', 0)
         return ok, err
      end
      -- two batches taken, then no room for the worker's next ones: an out-of-memory error at the batch it did
      -- not build (wherever the prefetch had got to), raised again until retry, then the rest of the epoch (the
      -- batches kept and summed afterwards, the collector stopped: nothing frees room while the limit holds)
      ts.manualSeed(5)
      local l = loader()
      local batches, kept, failures = l:epoch(1, 77), {}, 0
      for _ = 1, 2 do kept[#kept + 1] = {batches()} end
      collectgarbage('collect')
      collectgarbage('stop')
      ts.setMemoryLimit('cpu', ts.memory('cpu').in_use + 1024)
      while true do
         local ok, bx, by = pcall(batches)
         if not ok then
            ts.setMemoryLimit('cpu', 0)
            collectgarbage('restart')
            failures = failures + 1
            t.truthy(tostring(bx):find('out of memory on cpu', 1, true), tostring(bx))
            t.eq(require('ts.ffi').C.ts_last_error_is_oom(), 1, 'the consumer sees an out-of-memory')
            t.raises(batches, 'out of memory on cpu')   -- nothing more until retry
            l:retry()
         elseif bx == nil then break
         else kept[#kept + 1] = {bx, by} end
      end
      ts.setMemoryLimit('cpu', 0)
      collectgarbage('restart')
      local got = {}
      for i, b in ipairs(kept) do got[i] = sum(b[1], b[2]) end
      t.eq(failures, 1)
      t.eq(table.concat(got, ' '), table.concat(whole, ' '))
      -- retry without a failure rebuilds what was prefetched: the same batches still
      ts.manualSeed(5)
      local l2 = loader()
      local b2, again = l2:epoch(1, 77), {}
      again[1] = sum(b2())
      l2:retry()
      for bx, by in b2 do again[#again + 1] = sum(bx, by) end
      t.eq(table.concat(again, ' '), table.concat(whole, ' '))
      -- an epoch without room for its first batch goes on from the first
      ts.manualSeed(5)
      local l3 = loader()
      local b3
      local ok, err = limited(function() b3 = l3:epoch(1, 77); return b3() end)
      t.truthy(not ok and tostring(err):find('out of memory on cpu', 1, true), tostring(err))
      l3:retry()
      local third = {}
      for bx, by in b3 do third[#third + 1] = sum(bx, by) end
      t.eq(table.concat(third, ' '), table.concat(whole, ' '))
      t.raises(function() loader():retry() end, 'no epoch has started')
      l3:close()
      t.raises(function() l3:retry() end, 'closed; there is no epoch to go on with')
   end)

   t.test('samplers that are not a list of image indices are refused', function()
      local ds = dot_dataset(10, 2, 2)
      local function epoch(order)
         local loader = ts.data.Loader(ds, {batch = 4, sampler = function() return order end})
         for _ in loader:epoch() do end
      end
      t.raises(function() epoch({0, 1, nil, 3}) end, 'the sampler returned a list with holes (position 3 of 4 is nil)')
      t.raises(function() epoch({0, 2.5}) end, "the sampler's position 2 holds 2.5; indices are whole numbers 0 .. 9")
      t.raises(function() epoch({0, 10}) end, "the sampler's position 2 holds 10")
      t.raises(function() epoch({0, -1}) end, "the sampler's position 2 holds -1")
      t.raises(function() epoch({a = 1}) end, 'the sampler returned a table with the key a')
      t.raises(function() epoch(5) end, 'the sampler returned a number, not a table of indices')
   end)

   t.test('non-finite augmentation and preprocessing settings are refused, in Lua and in the C API', function()
      for _, bad in ipairs({{rotate = 0 / 0}, {rotate = math.huge}, {scale = {0 / 0, 1}}, {scale = {1, -math.huge}},
                            {brightness = 0 / 0}, {cutout = {0.5, 0 / 0}}, {blur = {1, math.huge}}, {flip = 0 / 0}}) do
         local k = next(bad)
         t.raises(function() ts.data.augment(bad) end, 'augment: ' .. k .. ' must be a finite number')
      end
      t.raises(function() ts.data.augment{scale = {0, 1}} end, 'scale must be positive')
      -- finite, but NaN images (a gain of 1e300), a setting silently off (gamma 0, a blur whose radius wrapped),
      -- probabilities that are not, a cutout of hours: refused when the augmentation is made
      for settings, words in pairs({
         [{hue = 1e300}] = 'hue (turns) must be in 0..0.5, got 1e+300',
         [{exposure = {1, 1e300}}] = 'the exposure gain must be in 0..1000',
         [{exposure = {5, 2}}] = 'the exposure probability must be in 0..1, got 5',
         [{shadow = {-1, 0.5}}] = 'the shadow probability must be in 0..1, got -1',
         [{gamma = {-1, 2}}] = 'gamma must be {lo, hi} with 0 < lo <= hi <= 10',
         [{gamma = 0}] = 'gamma must be {lo, hi} with 0 < lo <= hi <= 10',
         [{blur = {1, 5e9}}] = 'the blur sigma (pixels; its kernel reaches 8) must be in 0..4',
         [{cutout = {1, 8.7}}] = 'the cutout size (pixels) must be a whole number from 0 to 4096, got 8.7',
         [{cutout = {1, 3e9}}] = 'the cutout size (pixels) must be a whole number from 0 to 4096, got 3000000000',
         [{flip = 2}] = 'flip must be in 0..1, got 2',
         [{cutout = 0.5}] = 'cutout must be {probability, size}, got 0.5',
      }) do
         t.raises(function() ts.data.augment(settings) end, 'augment: ' .. words)
      end
      t.raises(function() ts.data.preprocess{mean = {0 / 0, 0, 0}} end, 'preprocess: mean must be a finite number')
      t.raises(function() ts.data.preprocess{std = {0, 1, 1}} end, 'preprocess: std must not be 0')
      -- the C API refuses them too (a script that fills the struct itself): no crash in the warp
      local ds = dot_dataset(4, 2, 2)
      local aug = ts.data.augment{rotate = 10}
      for _, field in ipairs({'rotate', 'scale_min', 'perspective'}) do
         local saved = aug.c[field]
         aug.c[field] = 0 / 0
         t.raises(function() ts.data.batch(ds, {1, 2}, {augment = aug}) end, 'augmentation: ' .. field .. ' is not finite (nan)')
         aug.c[field] = saved
      end
      local pre = ts.data.preprocess()
      pre.c.std[1] = 0
      t.raises(function() ts.data.batch(ds, {1}, {preprocess = pre}) end, 'std != 0')
   end)

   t.test('settings silently off, cut, reversed or refused only by C are refused when made, at the caller', function()
      local function bad(f, words)
         local err = t.raises(f, words)
         t.truthy(err:find('test_augment.lua:', 1, true), 'not at the caller: ' .. err)
      end
      -- errors of {lo, hi} settings pointed above the caller
      bad(function() ts.data.augment{scale = {1}} end, 'augment: scale must be a number or {lo, hi}, got {1}')
      bad(function() ts.data.augment{scale = {0.9, 'x'}} end, 'augment: scale must be a finite number, got "x"')
      bad(function() ts.data.augment{exposure = {0.5, 2, 3}} end, 'augment: exposure must be {probability, max gain}, got {0.5, 2, 3}')
      -- a reversed scale was taken (PyTorch refuses it, as gamma here); a blur below its least sigma blurred at that
      -- sigma; a cutout of 0 pixels was none
      bad(function() ts.data.augment{scale = {1.2, 0.8}} end, 'augment: scale must be {lo, hi} with lo <= hi, got 1.2..0.8')
      bad(function() ts.data.augment{blur = {0.5, 0.1}} end, "augment: the blur's max sigma 0.1 is below 0.3")
      bad(function() ts.data.augment{cutout = {0.5, 0}} end, 'augment: the cutout size must be at least 1 pixel')
      t.eq(ts.data.augment{blur = {0, 0}, cutout = {0, 0}}.c.cutout_size, 0)   -- off: probability 0
      -- an output size of 0 (or {16, 0}) kept the images' own, 2.5 was 2, 1e6 an out-of-memory at the batch
      for _, size in ipairs({0, {16, 0}, 2.5, 0 / 0}) do
         bad(function() ts.data.preprocess{size = size} end, 'preprocess: size must be a whole number >= 1 or {h, w} of them')
      end
      bad(function() ts.data.preprocess{size = 1e6} end, 'preprocess: size must be at most 8192 pixels a side, got 1000000')
      bad(function() ts.data.preprocess{clahe_tiles = 2.5} end, 'preprocess: clahe_tiles must be a whole number from 1 to 64, got 2.5')
      bad(function() ts.data.preprocess{mean = {0.5, 0.5}} end, 'mean must be a list of 1 or 3 numbers (one per channel), got {0.5, 0.5}')
      -- more CLAHE tiles than pixels a side: tiles of no pixels blackened the images
      local ds = dot_dataset(2, 2, 2, 0, 8)
      local clahe = ts.data.preprocess{equalize = 'clahe', clahe_tiles = 9}
      t.raises(function() ts.data.batch(ds, {1, 2}, {preprocess = clahe}) end,
               "batch: CLAHE's clahe_tiles = 9 is more than the 8x8 images have pixels a side")
      t.eq(ts.data.batch(ds, {1}, {preprocess = ts.data.preprocess{equalize = 'clahe', clahe_tiles = 8}}):size(4), 8)
      -- a prefetch above C's 64 and a first batch past the epoch's end failed in C, at no line
      bad(function() ts.data.Loader(ds, {prefetch = 100}) end, 'Loader: prefetch must be a whole number from 1 to 64, got 100')
      local l = ts.data.Loader(ds, {batch = 1, sampler = 'sequential'})
      bad(function() local _ = l:epoch(4) end, 'Loader:epoch(first, seed): first (a batch) is 4, past the end of this epoch of 2 batches')
      local n = 0
      for _ in l:epoch(3) do n = n + 1 end   -- an epoch resumed at its end: no batches
      t.eq(n, 0)
      -- mix showed a string alpha '1' as 1, as if a valid alpha were refused
      bad(function() ts.data.mix{mixup = '1'} end, 'mix: mixup must be a Beta parameter alpha >= 0 (0: off), got "1"')
      -- images without channels: the message named neither the shape nor the fix
      bad(function() ts.data.Dataset(ts.zeros({2, 8, 8}, 'uint8'), ts.tensor({0, 1})) end,
          'Dataset: images must be a 4-d tensor [N,H,W,C] or [N,C,H,W], got a tensor [2x8x8] (grayscale images [N,H,W]?')
   end)

   t.test('batch positions, mix labels and generated-sign settings are checked, not read past or ignored', function()
      local g = ts.data.synthetic{train = 8, valid = 8, test = 8, seed = 1}
      t.raises(function() ts.data.batch(g.train, {5, nil, 3, 4}) end, 'ts.data.batch: position 2 is nil; positions are whole numbers 1 .. 8')
      t.raises(function() ts.data.batch(g.train, {1.5}) end, 'position 1 is 1.5')
      t.raises(function() ts.data.batch(g.train, {9}) end, 'position 1 is 9')
      local x = ts.data.batch(g.train, ts.tensor({3, 1}, 'int64'))
      t.near(x, ts.data.batch(g.train, {3, 1}), 0, 0, 'a tensor of positions as the list')
      local m = ts.data.mix{mixup = 1}
      t.raises(function() m:apply(ts.zeros(4, 1, 1, 1), ts.tensor({7}, 'int64'), {lam = 0.5}) end,
               'mix:apply(x, y, d): 4 images but 1 labels')
      t.raises(function() ts.data.synthetic{seed = -1} end, 'ts.data.synthetic: seed must be a whole number from 0')
      t.raises(function() ts.data.synthetic{seed = 0 / 0} end, 'seed must be a whole number')
      t.raises(function() ts.data.synthetic{classes = 2.5} end, 'classes must be a whole number')
      t.raises(function() ts.data.synthetic{clases = 3} end, 'ts.data.synthetic: unknown setting clases')
      t.raises(function() ts.data.synthetic{train = 0} end, 'ts.data.synthetic: train must be a whole number from 1')
      t.raises(function() ts.data.synthetic{valid = 0 / 0} end, 'ts.data.synthetic: valid must be a whole number from 0')
      t.eq(ts.data.synthetic{train = 2, valid = 0, test = 0}.valid:size(), 0)
      t.raises(function() ts.ensemble({{logits = ts.zeros(30, 1)}}, ts.tensor({0}, 'int64')) end, 'ensemble: 30 images but 1 labels')
      t.raises(function() ts.ensemble({{logits = ts.zeros(3, 3, 2)}}, ts.zeros({3}, 'int64')) end, "member 1's logits must be [N, classes]")
      t.raises(function() ts.ensemble({{logits = ts.full({3, 2}, 0 / 0)}}, ts.zeros({3}, 'int64')) end, 'hold NaN')
      t.raises(function() ts.ensemble({{logits = ts.zeros(3, 2)}, nil, {logits = ts.zeros(3, 2)}}, ts.zeros({3}, 'int64')) end,
               'ensemble: member 2 is missing')
      t.raises(function() ts.data.Loader(g.train, {batch_size = 2}) end, 'Loader: unknown option batch_size')
      t.raises(function() ts.data.Loader(g.train, 128) end, 'Loader: the options must be a table, got number')
      t.raises(function() ts.evaluate(ts.nn.Sequential(), g.train, 'fast') end, 'evaluate: the options must be a table, got string')
      t.raises(function() ts.data.batch(g.train, {1}, {preprocesss = 1}) end, 'ts.data.batch: unknown option preprocesss')
      t.raises(function() ts.updateBatchNorm(ts.nn.Sequential(ts.nn.BatchNorm2d(3)), g.train, {batch_size = 0}) end,
               'updateBatchNorm: unknown option batch_size')
      t.raises(function() ts.data.Loader(g.train, {batch = 2.5}) end, 'Loader: batch must be a whole number from 1 to 2^24, got 2.5')
      t.raises(function() ts.data.Loader(g.train, {batch = 2 ^ 31}) end, 'Loader: batch must be a whole number')
      t.raises(function() ts.transfer.linearProbe(ts.randn(4, 3), ts.zeros({4}, 'int64'), nil, nil, {batch = -1}) end,
               'linearProbe: batch must be a whole number >= 1, got -1')
      t.raises(function() ts.transfer.linearProbe(ts.randn(4, 3), ts.zeros({4}, 'int64'), nil, nil, {epoch = 1}) end,
               'linearProbe: unknown option epoch')
      t.raises(function() ts.transfer.linearProbe(ts.full({4, 3}, 0 / 0), ts.zeros({4}, 'int64')) end, '12 features are NaN')
      local m = ts.models.resnet8()
      m.inputConvention = {mean = {0, 0, 0}, std = {0, 1, 1}, size = 32}
      t.raises(function() ts.transfer.foldInputScale(m) end, 'inputConvention.std[1] must be a finite number other than 0, got 0')
      m.inputConvention.std = {1, 1}
      t.raises(function() ts.transfer.foldInputScale(m) end, 'std[3] must be a finite number other than 0, got nil')
      t.raises(function() ts.transfer.gradualUnfreeze(ts.models.resnet8(), {stages = 1.5}) end,
               'ts.transfer.gradualUnfreeze: stages must be a whole number >= 1, got 1.5')
      -- features: a plain preprocess table reached the loader, refused there under its name at a line of transfer.lua
      local err = t.raises(function() ts.transfer.features(ts.models.resnet8(), g.train, {mean = {0.5}}) end,
                           'transfer.features: preprocess must be the settings ts.data.preprocess{...} makes')
      t.truthy(err:find('test_augment.lua:', 1, true), err)
      t.raises(function() ts.transfer.features(ts.models.resnet8(), g.train.x) end,
               'transfer.features(model, ds, preprocess, batch): ds must be a dataset (ts.data.Dataset)')
   end)

   t.test('augmentMatrix and synthesize name the argument or option they were given wrong', function()
      t.raises(function() ts.data.augmentMatrix() end, 'ts.data.augmentMatrix: the options must be a table, got nil')
      t.raises(function() ts.data.augmentMatrix{rotate = 10} end,
               'ts.data.augmentMatrix: size must be a whole number >= 1 or {h, w} of them, got nil')
      t.raises(function() ts.data.augmentMatrix{size = 16, rotation = 10} end,
               'ts.data.augmentMatrix: unknown option rotation (known: out, px, py, rotate, scale, shear, size, tx, ty)')
      t.raises(function() ts.data.augmentMatrix{size = 0} end, 'size must be a whole number >= 1 or {h, w} of them, got 0')
      t.raises(function() ts.data.augmentMatrix{size = {16, 2.5}} end, 'got {16, 2.5}')
      t.raises(function() ts.data.augmentMatrix{size = 16, out = {8}} end, 'out must be a whole number >= 1 or {h, w} of them, got {8}')
      t.raises(function() ts.data.augmentMatrix{size = 16, rotate = 0 / 0} end, 'ts.data.augmentMatrix: rotate must be a finite number, got nan')
      t.raises(function() ts.data.augmentMatrix{size = 16, scale = 0} end, 'ts.data.augmentMatrix: scale must be positive, got 0')
      local x, y = ts.data.augmentMatrix{size = {16, 16}, out = 32}(8, 8)
      t.near(x, 16, 1e-9); t.near(y, 16, 1e-9)
      local ds = ts.data.Dataset(ts.zeros({4, 8, 8, 3}, 'uint8'), ts.tensor({0, 0, 0, 1}, 'int64'))
      t.raises(function() ts.data.synthesize() end, 'ts.data.synthesize(ds, target [, augment]): ds must be a dataset (ts.data.Dataset), got nil')
      t.raises(function() ts.data.synthesize(ds) end, 'ts.data.synthesize(ds, target [, augment]): target (images per class) must be a whole number >= 0, got nil')
      t.raises(function() ts.data.synthesize(ds, 2.5) end, 'got 2.5')
      t.raises(function() ts.data.synthesize(ds, 3, {rotate = 10}) end, 'augment must be the settings ts.data.augment{...} makes')
      t.eq(ts.data.synthesize(ds, 0):size(), 4)
      t.eq(ts.data.synthesize(ds, 2, ts.data.augment{rotate = 5}):size(), 5)
   end)

   t.test('subset takes 1-based positions in the set, repeats kept: no wrapping, no hole ending the list', function()
      local ds = numbered_dataset(5)
      local function first_bytes(d) local v = {} for i = 1, d:size() do v[i] = d.x:get(i, 1, 1, 1) end return table.concat(v, ' ') end
      local s = ds:subset({5, 1, 1}, 'picked')
      t.eq(first_bytes(s), '5 1 1'); t.eq(table.concat(s.y:totable(), ' '), '4 0 0'); t.eq(s.name, 'picked')
      t.eq(first_bytes(ds:subset(ts.tensor({2, 4}, 'int64'))), '2 4')
      t.eq(ds:subset({}):size(), 0)
      -- -1 took the last image, a hole ended the list at 1 image, 0 and 6 failed inside on indexing
      local err = t.raises(function() local _ = ds:subset({-1}) end,
                           'ds:subset(positions [, name]): position 1 is -1; positions are whole numbers 1 .. 5 (1-based)')
      t.truthy(err:find('test_augment.lua:', 1, true), err)
      t.raises(function() local _ = ds:subset({1, nil, 3}) end, 'position 2 is nil')
      t.raises(function() local _ = ds:subset({0}) end, 'position 1 is 0')
      t.raises(function() local _ = ds:subset({6}) end, 'position 1 is 6')
      t.raises(function() local _ = ds:subset({2.5}) end, 'position 1 is 2.5')
      t.raises(function() local _ = ds:subset(ts.tensor({0}, 'int64')) end, 'position 1 is 0')
      t.raises(function() local _ = ds:subset(ts.tensor({{1, 2}}, 'int64')) end, 'positions must be a list or a 1-d tensor, got a tensor [1x2]')
      t.raises(function() local _ = ds:subset() end, 'positions must be a list or a 1-d tensor of 1-based positions, got nil')
      t.raises(function() local _ = ds:subset({1}, {}) end, 'ds:subset(positions [, name]): name must be a string, got {}')
      t.raises(function() local _ = ds.subset({1}) end, 'ds:subset(positions [, name]): ds (called as ds:method(...)) must be a dataset')
      t.raises(function() local _ = ts.data.Dataset(ds.x, ds.y, nil, {}) end, 'Dataset(x, y, classNames, name): name must be a string, got {}')
      -- join: a hole ended the list there ({a, nil, b} was a alone)
      t.raises(function() local _ = ts.data.join({ds, nil, ds}) end, 'ts.data.join: part 2 is not a dataset, got nil')
      t.raises(function() local _ = ts.data.join({ds}, 7) end, 'ts.data.join(list [, name]): name must be a string, got 7')
   end)

   t.test('channelStats, imbalance and the other set methods refuse no images, a bad limit and a call with a dot', function()
      local ds = numbered_dataset(10)
      local empty = ds:subset({})
      -- NaN means, and largest -1 or 0 over an infinite smallest
      t.raises(function() local _ = empty:channelStats() end, 'ds:channelStats([limit]): dataset holds no images')
      t.raises(function() local _ = empty:imbalance() end, 'ds:imbalance(): dataset holds no images')
      -- 0 took one image, -1 and math.huge all, NaN none (NaN means)
      for _, bad in ipairs({0, -1, 0 / 0, math.huge, 2.5, 'x'}) do
         t.raises(function() local _ = ds:channelStats(bad) end, 'ds:channelStats([limit]): limit must be a whole number >= 1')
      end
      t.eq(ds:channelStats(1)[1], ds:subset({1}):channelStats()[1], 'limit 1: every 10th of 10 images, the first alone')
      t.raises(function() local _ = ds.channelStats(5000) end, 'ds:channelStats([limit]): ds (called as ds:method(...)) must be a dataset')
      t.raises(function() local _ = ds.splitTracks() end, 'ds:splitTracks(opts): ds (called as ds:method(...))')
      t.raises(function() local _ = ds.fingerprint() end, 'ds:fingerprint(): ds (called as ds:method(...))')
      t.raises(function() local _ = ds:splitTracks{share = '0.5'} end, 'share must be a number between 0 and 1 (exclusive), got "0.5"')
      -- the generator makes 45 classes at most: 46 to 1000 passed here and failed in C
      t.raises(function() local _ = ts.data.synthetic{classes = 46} end, 'ts.data.synthetic: classes must be a whole number from 1 to 45, got 46')
      t.raises(function() local _ = ts.data.synthetic{size = {16, 16}} end, 'size must be a whole number from 8 to 4096, got {16, 16}')
      -- gtsrb('') looked in /, a table failed on concatenation; readPickle's options were indexed unchecked
      t.raises(function() local _ = ts.data.gtsrb('') end, 'ts.data.gtsrb(dir): dir must name a folder, got the empty string')
      t.raises(function() local _ = ts.data.gtsrb({}) end, 'ts.data.gtsrb(dir): path must be a string, got table')
      t.raises(function() local _ = ts.data.readPickle(t.dir .. '/fixtures/pickles/p3_uint8.pickle', {quite = true}) end,
               'ts.data.readPickle: unknown option quite')
   end)

   t.test('class names by id: a string key is decimal digits, and no class is named twice', function()
      local by = ts.data.classNamesById
      t.eq(by({['7'] = 'a', [3] = 'b'}, 'x')[7], 'a')
      -- two keys of one id kept whichever pairs gave last; ' 1', '1.0', '0x1' and '1e0' were read as 1
      t.raises(function() local _ = by({['1'] = 'a', [1] = 'b'}, 'run/config.json') end, 'run/config.json: class names name class 1 twice')
      t.raises(function() local _ = by({['01'] = 'a', ['1'] = 'b'}, 'cfg') end, 'name class 1 twice')
      for _, k in ipairs({' 1', '1.0', '0x1', '1e0'}) do
         t.raises(function() local _ = by({[k] = 'a'}, 'cfg') end, 'cfg: class names must map a class id from 0 to 9999 to a string, got ' .. k)
      end
   end)

   t.test('imageFolder: only folders are classes, their subfolders are walked, ClassId folders are not mixed or repeated', function()
      local d = t.tmpdir()
      local function img(path, v) ts.image.save(path, ts.full({6, 6, 3}, v, 'uint8')) end
      local function labels(ds) return table.concat(ds.y:totable(), ' ') end
      os.execute(('mkdir -p %s/a/00 %s/a/07/more %s/a/03'):format(d, d, d))
      img(d .. '/a/00/x.png', 10); img(d .. '/a/07/y.png', 20); img(d .. '/a/07/more/z.png', 30)
      t.writefile(d .. '/a/README', 'class folders below')
      t.writefile(d .. '/a/07/notes.txt', 'no image')
      -- the README was a class: the ClassId folders became classes 0 .. 3 in sorted order; more/z.png was left out
      local ds = ts.data.imageFolder(d .. '/a', {size = 4})
      t.eq(labels(ds), '0 7 7'); t.eq(ds.x:get(2, 1, 1, 1), 30, 'more/z.png at its place in sorted order'); t.eq(ds.x:get(3, 1, 1, 1), 20)
      -- folders named otherwise: numbered in sorted order (torchvision's ImageFolder), an empty one keeping its id;
      -- the caller's names over the folders', its table untouched
      os.execute(('mkdir -p %s/b/cat %s/b/dog %s/b/emu'):format(d, d, d))
      img(d .. '/b/cat/x.png', 1); img(d .. '/b/emu/y.png', 2)
      local mine = {[0] = 'Cat'}
      ds = ts.data.imageFolder(d .. '/b', {classNames = mine, size = 4})
      t.eq(labels(ds), '0 2'); t.eq(ds.classNames[0], 'Cat'); t.eq(ds.classNames[2], 'emu')
      t.eq(mine[1], nil, 'the caller\'s classNames table is not written')
      -- a ClassId folder beside another name (a stray checkpoint folder) made 00 class 1 without a word
      os.execute(('mkdir -p %s/c/00 %s/c/.ipynb_checkpoints'):format(d, d))
      img(d .. '/c/00/x.png', 1)
      local err = t.raises(function() local _ = ts.data.imageFolder(d .. '/c') end,
                           'ts.data.imageFolder: ' .. d .. '/c mixes folders named by ClassId ("00") with others (".ipynb_checkpoints")')
      t.truthy(err:find('test_augment.lua:', 1, true), err)
      -- 1 and 01 were one class; 0x10 was class 16
      os.execute(('mkdir -p %s/e/1 %s/e/01'):format(d, d))
      img(d .. '/e/1/x.png', 1); img(d .. '/e/01/x.png', 2)
      t.raises(function() local _ = ts.data.imageFolder(d .. '/e') end, 'the folders 01 and 1 of ' .. d .. '/e are both class 1')
      os.execute(('mkdir -p %s/h/0x10 %s/h/2'):format(d, d))
      img(d .. '/h/0x10/x.png', 1); img(d .. '/h/2/x.png', 2)
      t.raises(function() local _ = ts.data.imageFolder(d .. '/h') end, 'mixes folders named by ClassId ("2") with others ("0x10")')
      -- no images at all was an empty dataset
      os.execute(('mkdir -p %s/g/00'):format(d))
      t.writefile(d .. '/g/00/a.txt', 'x')
      t.raises(function() local _ = ts.data.imageFolder(d .. '/g') end, 'the class folders of ' .. d .. '/g hold no images')
      t.raises(function() local _ = ts.data.imageFolder(d .. '/a', {sizes = 8}) end, 'ts.data.imageFolder: unknown option sizes')
      t.raises(function() local _ = ts.data.imageFolder(d .. '/a', {size = 0}) end, 'ts.data.imageFolder: size must be a whole number >= 1, got 0')
      t.raises(function() local _ = ts.data.imageFolder(d .. '/a', 5) end, 'ts.data.imageFolder: the options must be a table, got number')
      t.raises(function() local _ = ts.data.imageFolder() end, 'ts.data.imageFolder(dir, opts): path must be a string, got nil')
      t.raises(function() local _ = ts.data.imageFolder(d .. '/a/README') end, 'is missing or empty')
   end)

   t.test('imageCSV: a row that is not what its columns say is an error naming the file and line', function()
      local d = t.tmpdir()
      os.execute(('mkdir -p "%s/sub dir"'):format(d))
      ts.image.save(d .. '/a.png', ts.full({10, 10, 3}, 10, 'uint8'))
      ts.image.save(d .. '/sub dir/b c.png', ts.full({10, 10, 3}, 20, 'uint8'))
      local n = 0
      local function csv(s) n = n + 1; local p = ('%s/%d.csv'):format(d, n); t.writefile(p, s); return p end
      -- CRLF ends, a byte-order mark, a quoted path with spaces, a blank line, a repeated row, an absolute path
      local ds = ts.data.imageCSV(csv('\239\187\191file,ClassId\r\n"sub dir/b c.png",2\r\n\r\na.png,1\r\na.png,1\r\n' .. d .. '/a.png,0\r\n'), {size = 4})
      t.eq(table.concat(ds.y:totable(), ' '), '2 1 1 0')
      t.eq(ds.x:get(1, 1, 1, 1), 20)
      local function bad(text, msg, opts)
         local p = csv(text)
         local err = t.raises(function() local _ = ts.data.imageCSV(p, opts) end, (msg:gsub('@', (p:gsub('%%', '%%%%')))))
         t.truthy(err:find('test_augment.lua:', 1, true), err)
      end
      -- 1.5 was class 1, 0x10 class 16, 1e1 class 10; inf and nan failed inside; -1 named no line
      bad('file,ClassId\na.png,0\na.png,1.5\n', 'ts.data.imageCSV: @:3: ClassId "1.5" is not a whole number')
      bad('file,ClassId\na.png,0x10\n', '@:2: ClassId "0x10" is not a number')
      bad('file,ClassId\na.png,1e1\n', '@:2: ClassId "1e1" is not a number')
      bad('file,ClassId\na.png,inf\n', '@:2: ClassId "inf" is not a number')
      bad('file,ClassId\na.png,-1\n', '@:2: ClassId "-1" is negative')
      bad('file,ClassId\n\na.png\n', '@:3: no ClassId')
      bad('file,ClassId\n,1\n', '@:2: no file')
      -- a comma in an unquoted name: its cells beyond the header were dropped
      bad('file,ClassId\na.png,1,,7\n', '@:2: 4 cells, but the header names 2 columns')
      -- a box of fewer than four numbers failed inside on arithmetic
      bad('file,ClassId,Roi.X1\na.png,1,2\n', '@: the header has Roi columns but no Roi.Y1')
      bad('file,ClassId,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2\na.png,1,x,0,5,5\n', '@:2: Roi.X1 "x" is not a number')
      bad('file,ClassId,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2\na.png,1,,,,\n', '@:2: Roi.X1 "" is not a number')
      t.eq(ts.data.imageCSV(csv('file,ClassId,Roi.X1\na.png,1,x\n'), {roi = false, size = 4}):size(), 1)
      -- the later of two columns of one name won
      bad('file,ClassId,ClassId\na.png,1,2\n', '@: the header names the column "ClassId" twice (fields 2 and 3)')
      bad('file,Label\na.png,1\n', '@: the header has no ClassId column (it has: "file", "Label")')
      -- no rows was an empty dataset
      bad('', '@ has no header line')
      bad('file,ClassId\n', '@ lists no images')
      bad('file,ClassId\nnone.png,1\n', '@:2: ' .. d .. '/none.png: cannot open')
      bad('file,ClassId\na.png,1\n', 'ts.data.imageCSV: unknown option rooot', {rooot = d})
      bad('file,ClassId\na.png,1\n', 'ts.data.imageCSV: root: path must be a string, got number', {root = 5})
      bad('file,ClassId\na.png,1\n', 'ts.data.imageCSV: roi must be true or false, got "no"', {roi = 'no'})
   end)
end
