-- Generated scenes and the window search: signs land where their boxes say, the windows cover the photo,
-- and the search finds a sign by its scorers, in a photo larger than it searches too.
local ffi = require('ffi')

return function(t)
   -- a "sign" in a colour no background has: 32x32 crops, grey with a magenta square in their middle 24x24
   -- (75%: framed as the GTSRB crops are, the sign 74% of the crop on average)
   -- paints a region of an image [H, W, 3] magenta, the colour the scorers below take for a sign
   local function paint_magenta(region)
      region:select(3, 1):fill(255)
      region:select(3, 2):fill(0)
      region:select(3, 3):fill(255)
   end
   local function magenta(n)
      local x = ts.zeros({n or 1, 32, 32, 3}, 'uint8'):fill(128)
      for i = 1, n or 1 do paint_magenta(x[i][{{5, 28}, {5, 28}}]) end
      return x
   end
   local function is_magenta(img, px, py)
      local p = ffi.cast('uint8_t *', img:contiguous():data()) + (py * img:size(2) + px) * 3
      return p[0] > 200 and p[1] < 60 and p[2] > 200
   end

   t.test('scenes: signs where their boxes say, the same scenes for the same seed', function()
      local signs = ts.data.Dataset(magenta(3), ts.tensor({5, 6, 7}, 'int64'))
      local a = ts.scene.generate{n = 6, seed = 4, signs = signs, per_scene = {1, 2}, size = {40, 110}, weather = false}
      local b = ts.scene.generate{n = 6, seed = 4, signs = signs, per_scene = {1, 2}, size = {40, 110}, weather = false}
      for k, s in ipairs(a) do
         t.eq(s.image:size(1), 240)
         t.eq(s.image:size(2), 320)
         t.eq((s.image:float() - b[k].image:float()):abs():max(), 0, 'scene ' .. k .. ' differs for the same seed')
         t.truthy(#s.signs >= 1 and #s.signs <= 2)
         for _, sg in ipairs(s.signs) do
            local x1, y1, x2, y2 = sg.box[1], sg.box[2], sg.box[3], sg.box[4]
            t.truthy(x1 >= 0 and y1 >= 0 and x2 <= 320 and y2 <= 240 and x2 > x1 and y2 > y1, table.concat(sg.box, ','))
            t.truthy(sg.class >= 5 and sg.class <= 7)
            -- the box is the crop's inside, where its sign is: magenta at its centre and just inside its corners,
            -- the crop's grey margin just outside
            local cy = math.floor((y1 + y2) / 2)
            t.truthy(is_magenta(s.image, math.floor((x1 + x2) / 2), cy), 'centre of ' .. table.concat(sg.box, ','))
            t.truthy(is_magenta(s.image, math.ceil(x1) + 1, math.ceil(y1) + 1) and is_magenta(s.image, math.floor(x2) - 2, math.floor(y2) - 2))
            t.truthy(not is_magenta(s.image, math.floor(x1) - 2, cy) and not is_magenta(s.image, math.ceil(x2) + 1, cy))
         end
      end
      -- an icon's box is where its alpha is: a 20x20 opaque square in the middle of a 40x40 transparent icon
      local icon = ts.zeros({40, 40, 4}, 'uint8')
      icon[{{11, 30}, {11, 30}}] = 255
      local img = ts.zeros({100, 100, 3}, 'uint8')
      local box = ts.scene.paste(img, icon, 10, 20, 80)
      t.eq(table.concat(box, ','), '30,40,70,80')
      t.eq(img:get(60, 50, 2), 255)
      t.eq(img:get(30, 20, 2), 0)
      t.raises(function() ts.scene.generate{n = 1} end, 'give signs (a dataset) or icons')
   end)

   t.test('the search windows: the whole image, then regular grids of squares reaching beyond each edge by up to their margin', function()
      local m = ts.scene.cropMargin
      local wins, grids = ts.detect.windows(240, 320, {min = 24})
      t.eq(table.concat(wins[1], ','), '0,0,320,240')
      local smallest, largest, outside, count = math.huge, 0, 0, 1
      for k = 2, #wins do
         local w = wins[k]
         local side = w[3] - w[1]
         t.near(side, w[4] - w[2], 1e-9)
         -- the middle, where a sign lies, inside the photo; only the margin may reach beyond it
         local r = m * side
         t.truthy(w[1] + r >= -1e-9 and w[2] + r >= -1e-9 and w[3] - r <= 320 + 1e-9 and w[4] - r <= 240 + 1e-9, table.concat(w, ','))
         if w[1] < 0 or w[2] < 0 or w[3] > 320 or w[4] > 240 then outside = outside + 1 end
         smallest, largest = math.min(smallest, side), math.max(largest, side)
      end
      t.truthy(smallest >= 24 and smallest < 24 / 0.8, smallest)
      t.near(largest, 240 / (1 - 2 * m), 1e-9)   -- its middle spans the short side
      t.truthy(outside > 0 and outside < #wins / 2, outside)
      -- each scale a grid a quarter of a side apart, its first square reaching beyond the photo by its margin
      -- less under an eighth of its side (the grid centred), the last as far on the other side: the middles
      -- reach within an eighth of a side of every edge, which the search's refinement moves by
      for _, g in ipairs(grids) do
         local s, gap = g.side, g.side / 4
         t.eq(g.first, count + 1)
         for _, a in ipairs({{g.x0, g.nx, 320}, {g.y0, g.ny, 240}}) do
            local first, n, len = a[1], a[2], a[3]
            t.truthy(first >= -m * s - 1e-9 and first < -m * s + s / 8, ('side %.1f: first at %.2f'):format(s, first))
            t.near(first + (n - 1) * gap + s, len - first, 1e-9)
         end
         for j = 0, g.ny - 1 do
            for i = 0, g.nx - 1 do
               local w = wins[g.first + j * g.nx + i]
               t.near(w[1], g.x0 + i * gap, 1e-9)
               t.near(w[2], g.y0 + j * gap, 1e-9)
               t.near(w[3] - w[1], s, 1e-9)
            end
         end
         count = count + g.nx * g.ny
      end
      t.eq(count, #wins)
      -- a square photo framed as a crop: the second window, centred on it
      local sq = ts.detect.windows(100, 100)[2]
      t.near(sq[1], -100 * m / (1 - 2 * m), 1e-9)
      t.near(sq[3], 100 + 100 * m / (1 - 2 * m), 1e-9)
      -- a sign box and the GTSRB-framed window around it go back and forth
      local win = ts.detect.window({10, 20, 50, 60})
      t.near(win[3] - win[1], 40 / 0.74, 1e-9)
      local back = ts.detect.signBox(win)
      for i = 1, 4 do t.near(back[i], ({10, 20, 50, 60})[i], 1e-9) end
      t.near(ts.detect.iou({0, 0, 10, 10}, {5, 0, 15, 10}), 50 / 150, 1e-12)
      t.eq(ts.detect.iou({0, 0, 10, 10}, {10, 0, 20, 10}), 0)
   end)

   -- scorers that know what a sign is: a window is a sign by how much of its middle is magenta and how little
   -- of its margin (framed as a GTSRB crop), and the class is 3 when there is magenta
   local function share(x, i, inside)
      local p = ffi.cast('uint8_t *', x[i]:contiguous():data())
      local hit, n = 0, 0
      for yy = 0, 31 do
         for xx = 0, 31 do
            local middle = xx >= 5 and xx < 27 and yy >= 5 and yy < 27
            if middle == inside then
               local q = p + (yy * 32 + xx) * 3
               if q[0] > 200 and q[1] < 60 and q[2] > 200 then hit = hit + 1 end
               n = n + 1
            end
         end
      end
      return hit / n
   end
   local scorers = {
      sign = function(x)
         local p = {}
         for i = 1, x:size(1) do p[i] = math.max(0, share(x, i, true) - share(x, i, false)) end
         return p
      end,
      classify = function(x)
         local l = ts.zeros(x:size(1), 5)
         for i = 1, x:size(1) do l[i][share(x, i, true) > 0.3 and 4 or 1] = 10 end
         return l
      end,
   }

   t.test('the search finds a sign by its scorers, in a photo larger than it searches', function()
      local img = ts.scene.background(ts.scene.Random(3), 900, 1200)
      local truth = ts.scene.paste(img, magenta()[1], 700, 300, 150)
      local found = ts.detect.search(img, scorers, {max_side = 640})
      local best = found.detections[1]
      t.truthy(ts.detect.iou(best.box, truth) > 0.6, ('found %s, truth %s'):format(table.concat(best.box, ','), table.concat(truth, ',')))
      t.eq(best.class, 3)
      t.truthy(best.score > 0.8, best.score)
      t.truthy(found.windows > 1000, found.windows)
      -- a background without the sign: the whole image's class, no window with a sign
      local empty = ts.scene.background(ts.scene.Random(3), 240, 320)
      local none = ts.detect.search(empty, scorers)
      t.truthy(none.detections[1].score < 0.05, none.detections[1].score)
      t.eq(none.whole.class, 0)
   end)

   t.test('the detector\'s scan: every window of a grid scored at once, as its own crop would be', function()
      local nn = ts.nn
      ts.manualSeed(5)
      -- a trunk of 1x1 convolutions (no padding, so a window's crop and the scan see the same pixels) and
      -- three poolings: the scan must give each window its own crop's P(sign); the head is the detector's
      local function detector(kernel)
         local net = nn.Sequential(nn.Conv2d(3, 6, kernel, {padding = (kernel - 1) / 2}), nn.BatchNorm2d(6), nn.ReLU(),
                                   nn.MaxPool2d(2), nn.Conv2d(6, 8, 1), nn.ReLU(), nn.MaxPool2d(2), nn.MaxPool2d(2),
                                   nn.Flatten(), nn.Linear(8 * 16, 10), nn.ReLU(), nn.Linear(10, 2))
         net:evaluate()
         return net
      end
      local pre = ts.data.preprocess{mean = {0.4, 0.5, 0.45}, std = {0.25, 0.2, 0.3}}
      local net = detector(1)
      local scan = ts.detect.signScanner(net, pre)
      t.near(scan.stride, 0.25, 0)
      local img = ts.scene.background(ts.scene.Random(4), 90, 130)
      local wins, grids = ts.detect.windows(90, 130, {min = 24})
      local fast, slow = scan(img, grids), ts.detect.signScorer(net, pre)(ts.detect.crops(img, wins))
      t.eq(fast[1], nil)   -- the whole image is no grid's: the search crops it
      local worst = 0
      for k = 2, #wins do worst = math.max(worst, math.abs(fast[k] - slow[k])) end
      t.truthy(worst < 2e-4, worst)
      -- the search with it finds what the crops find
      local scorers = {sign = ts.detect.signScorer(net, pre), classify = function(x) return ts.zeros(x:size(1), 3) end}
      local a = ts.detect.search(img, scorers).detections[1]
      scorers.scan = scan
      local b = ts.detect.search(img, scorers).detections[1]
      t.eq(table.concat(a.window, ','), table.concat(b.window, ','))
      t.near(a.sign, b.sign, 2e-4)
      -- 3x3 convolutions: the scan sees a window's neighbours where its crop is zero-padded, a small difference
      net = detector(3)
      fast, slow = ts.detect.signScanner(net, pre)(img, grids), ts.detect.signScorer(net, pre)(ts.detect.crops(img, wins))
      local sum = 0
      for k = 2, #wins do sum = sum + math.abs(fast[k] - slow[k]) end
      t.truthy(sum / (#wins - 1) < 0.05, sum / (#wins - 1))
      -- not a chain of local layers before its Flatten, or a trunk whose stride does not divide 32: no scan
      t.eq(ts.detect.signScanner(nn.Sequential(nn.Flatten(), nn.Linear(3072, 2)), pre), nil)
      t.eq(ts.detect.signScanner(nn.Sequential(nn.Conv2d(3, 4, 1), nn.Dropout(0.5), nn.Flatten(), nn.Linear(4096, 2)), pre), nil)
      t.eq(ts.detect.signScanner(nn.Sequential(nn.Conv2d(3, 4, 1), nn.MaxPool2d(3), nn.Flatten(), nn.Linear(400, 2)), pre), nil)
   end)

   t.test('a photo the sign fills: its parts, read more surely as another class, do not win', function()
      -- a 120x120 magenta sign framed as a crop; every part of it looks like a sign (magenta in its middle)
      -- and is read as class 2 for sure, the whole sign as class 3 at 0.65
      local img = ts.image.resize(magenta()[1], 120, 120)
      local fooled = {
         sign = function(x)
            local p = {}
            for i = 1, x:size(1) do p[i] = share(x, i, true) end
            return p
         end,
         classify = function(x)
            local l = ts.zeros(x:size(1), 5)
            for i = 1, x:size(1) do
               if share(x, i, false) > 0.9 then l[i][3] = 10 elseif share(x, i, true) > 0.3 then l[i][4] = 2 end
            end
            return l
         end,
      }
      local found = ts.detect.search(img, fooled)
      local best = found.detections[1]
      t.eq(best.class, 3)
      t.truthy(best.window[3] - best.window[1] > 100, table.concat(best.window, ','))
      for _, d in ipairs(found.detections) do t.truthy(d.class ~= 2, 'a part of the sign is still a detection') end
      -- without a detector every window counts as a sign, and none is taken for a part of another
      t.truthy(#ts.detect.search(img, {classify = fooled.classify}).detections > 1)
      -- a part is dropped only inside a window that spans the photo and that the detector holds to be a
      -- sign: beside one it doubts (P(sign) 0.5), that scores less than half as much, that it sticks out of,
      -- or that is a sign in a photo twice as large (a street scene), the part stays
      local part = {window = {10, 10, 40, 40}, sign = 1, score = 1}
      t.eq(#ts.detect.dropParts({part, {window = {0, 0, 100, 100}, sign = 0.95, score = 0.6}}, 100, 100), 1)
      t.eq(#ts.detect.dropParts({part, {window = {0, 0, 100, 100}, sign = 0.5, score = 0.5}}, 100, 100), 2)
      t.eq(#ts.detect.dropParts({part, {window = {0, 0, 100, 100}, sign = 0.95, score = 0.4}}, 100, 100), 2)
      t.eq(#ts.detect.dropParts({part, {window = {30, 30, 130, 130}, sign = 0.95, score = 0.6}}, 130, 130), 2)
      t.eq(#ts.detect.dropParts({part, {window = {0, 0, 100, 100}, sign = 0.95, score = 0.6}}, 200, 300), 2)
   end)

   t.test('a photo a sign fills edge to edge (a close-up, an icon), or a sign on its edge: windows framing it reach beyond the photo', function()
      -- a 100x100 photo, magenta but for a 5-pixel grey border: every window inside it has magenta in its
      -- margin as well as its middle, which the detector above does not call a sign; the photo framed by a
      -- margin of repeated border pixels looks as a GTSRB crop of the sign does
      local img = ts.zeros({100, 100, 3}, 'uint8'):fill(128)
      paint_magenta(img[{{6, 95}, {6, 95}}])
      local found = ts.detect.search(img, scorers)
      local best = found.detections[1]
      t.near(best.window[3] - best.window[1], 100 / 0.74, 1e-6)
      t.truthy(best.window[1] < 0 and best.window[3] > 100, table.concat(best.window, ','))
      t.truthy(best.sign > 0.8, best.sign)
      t.eq(best.class, 3)
      t.truthy(found.whole.sign < 0.5, found.whole.sign)
      -- a sign on the photo's left edge: the window framing it reaches beyond that edge (no window inside the
      -- photo frames it: the best of those, 0,0,100,100, has P(sign) 0.57)
      local edge = ts.zeros({100, 140, 3}, 'uint8'):fill(128)
      paint_magenta(edge[{{14, 87}, {1, 74}}])
      best = ts.detect.search(edge, scorers).detections[1]
      t.truthy(best.window[1] < 0 and best.sign > 0.65, ('%s: P(sign) %.2f'):format(table.concat(best.window, ','), best.sign))
      t.eq(best.class, 3)
   end)

   t.test('training windows and hard negatives for the detector', function()
      local signs = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))
      local scenes = ts.scene.generate{n = 8, seed = 2, signs = signs, per_scene = {1, 1}, weather = false}
      local x, y, wins, owners = ts.detect.samples(scenes, {seed = 2})
      t.eq(x:size(1), y:size(1))
      t.eq(#wins, x:size(1))
      local pos, neg = 0, 0
      for i = 1, y:size(1) do
         -- a positive frames a sign as the crops do (its middle mostly magenta); a negative overlaps no
         -- sign's framing window by IoU 0.3
         local target = ts.detect.window(scenes[owners[i]].signs[1].box)
         local overlap = ts.detect.iou(wins[i], target)
         if y[i] == 1 then
            pos = pos + 1
            t.truthy(overlap >= 0.6 and share(x, i, true) > 0.6, ('positive %d: IoU %.2f, magenta %.2f'):format(i, overlap, share(x, i, true)))
         else
            neg = neg + 1
            t.truthy(overlap < 0.3, ('negative %d: IoU %.2f'):format(i, overlap))
         end
      end
      t.truthy(pos >= 8 and neg >= 8 * 4, pos .. ' positives, ' .. neg .. ' negatives')
      -- the hard negatives a scorer that likes magenta anywhere finds lie off the signs' windows
      local hard = ts.detect.mine(scenes, {sign = function(c)
         local p = {}
         for i = 1, c:size(1) do p[i] = 0.2 + share(c, i, true) * 0.5 + share(c, i, false) * 0.3 end
         return p
      end}, {per_scene = 3})
      t.eq(hard:size(1), 24)
   end)

   t.test('close-ups: each scene cut so its sign fills most of the photo, often with its edge on the photo\'s', function()
      local signs = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))
      local scenes = ts.scene.generate{n = 12, seed = 3, signs = signs, per_scene = {1, 1}, weather = false}
      local close = ts.scene.closeups(scenes, 5)
      local again = ts.scene.closeups(scenes, 5)
      t.eq(#close, 12)
      local at_edge = 0
      for k, c in ipairs(close) do
         local h, w = c.image:size(1), c.image:size(2)
         local b, full = c.signs[1].box, scenes[k].signs[1].box
         t.eq(c.signs[1].class, scenes[k].signs[1].class)
         t.eq((c.image:float() - again[k].image:float()):abs():max(), 0, 'close-up ' .. k .. ' differs for the same seed')
         -- the sign inside the photo, spanning 60-100% of its short side (a pixel of rounding), and the photo
         -- the scene's pixels where the box moved by the cut says
         local side = math.max(b[3] - b[1], b[4] - b[2])
         t.truthy(b[1] >= 0 and b[2] >= 0 and b[3] <= w and b[4] <= h, table.concat(b, ','))
         t.truthy(side >= 0.6 * math.min(h, w) - 1 and side <= math.min(h, w) + 1, ('%s in %dx%d'):format(table.concat(b, ','), w, h))
         t.truthy(h / w >= 0.75 - 0.02 and h / w <= 4 / 3 + 0.02, ('%dx%d'):format(w, h))
         local x0, y0 = full[1] - b[1], full[2] - b[2]
         t.eq(x0 % 1, 0)
         t.eq((c.image:float() - scenes[k].image[{{y0 + 1, y0 + h}, {x0 + 1, x0 + w}}]:float()):abs():max(), 0)
         if b[1] < 1 or b[2] < 1 or b[3] > w - 1 or b[4] > h - 1 then at_edge = at_edge + 1 end
      end
      t.truthy(at_edge >= 3, at_edge .. ' of 12 signs on the photo\'s edge')
      t.raises(function() ts.scene.closeups({{image = scenes[1].image, signs = {}}}) end, 'without a sign')
   end)

   t.test('the "no sign" threshold answers the most validation scenes right, whatever their counts', function()
      -- five scenes with a sign (one read wrong at 0.6, one right but faint at 0.3), three without
      local outcomes = {{score = 0.9, right = true}, {score = 0.8, right = true}, {score = 0.7, right = true},
                        {score = 0.6, right = false}, {score = 0.3, right = true},
                        {score = 0.5, empty = true}, {score = 0.2, empty = true}, {score = 0.1, empty = true}}
      -- (0.5, 0.7] rejects every empty scene and finds 3 of 5 (balanced 0.8); the lowest of the tie, halfway
      -- between 0.6 and the next score below it
      local th, signs, empty = ts.detect.bestThreshold(outcomes)
      t.near(th, 0.55, 1e-12)
      t.near(signs, 0.6, 1e-12)
      t.eq(empty, 1)
      -- ten times as many empty scenes scoring alike do not move it: the rates are balanced, not pooled
      for i = 1, 9 do
         for _, sc in ipairs({0.5, 0.2, 0.1}) do outcomes[#outcomes + 1] = {score = sc, empty = true} end
      end
      t.near(ts.detect.bestThreshold(outcomes), 0.55, 1e-12)
      -- a faint right sign above every empty scene's score is found: the threshold drops below it
      local th2, signs2, empty2 = ts.detect.bestThreshold({{score = 0.3, right = true}, {score = 0.2, empty = true}})
      t.near(th2, 0.25, 1e-12)
      t.eq(signs2, 1)
      t.eq(empty2, 1)
      -- equal scores go together: a right sign and an empty scene both at 0.4
      local th3 = ts.detect.bestThreshold({{score = 0.4, right = true}, {score = 0.4, empty = true}, {score = 0.9, right = true}})
      t.near(th3, 0.65, 1e-12)
      -- nothing worth finding (the sign read wrong, an empty scene scoring higher): above every score, at most 1
      t.near(ts.detect.bestThreshold({{score = 0.9, empty = true}, {score = 0.5, right = false}}), 0.95, 1e-12)
      t.raises(function() ts.detect.bestThreshold({{score = 0.5, right = true}}) end, 'scenes with a sign and scenes without')
      t.raises(function() ts.detect.bestThreshold({{right = true}, {score = 0.1, empty = true}}) end, 'has no score')
   end)

   t.test('scene writers and the window grid refuse what they would write outside of or never finish', function()
      -- an expanded view, a column slice, a float image: pixels were written outside them (a segfault)
      local r = ts.scene.Random(1)
      t.raises(function() ts.scene.weather(r, ts.zeros({1, 1, 3}, 'uint8'):expand(30, 30, 3), {}) end,
               'ts.scene.weather: the scene must be a contiguous uint8 image [H, W, 3], got uint8 [30x30x3] (not contiguous)')
      local big = ts.zeros(20, 40, 3, 'uint8')
      local sign = ts.full({8, 8, 3}, 200, 'uint8')
      t.raises(function() ts.scene.paste(big[{{}, {1, 20}}], sign, 0, 0, 10) end, '(not contiguous)')
      t.raises(function() ts.scene.paste(ts.zeros(20, 20, 3), sign, 0, 0, 10) end, 'got float32 [20x20x3]')
      t.raises(function() ts.scene.paste(big, ts.zeros(8, 8, 1, 'uint8'), 0, 0, 10) end, 'the sign must be a uint8 image [h, w, 3 or 4]')
      t.raises(function() ts.scene.paste(big, sign, 100, 100, 10) end, 'a sign of 10 pixels at (100, 100) lies outside the 40x20 scene')
      t.eq(big:sum(), 0, 'nothing written')
      -- options that looped for ever or made windows until memory ran out
      t.raises(function() ts.detect.windows(40, 40, {step = 1}) end, 'step must be in (0, 1), got 1')
      t.raises(function() ts.detect.windows(40, 40, {min = 0}) end, 'min must be a number of pixels >= 2')
      t.raises(function() ts.detect.windows(40, 40, {stride = 0}) end, 'stride must be a share of the side from 1/min to 1')
      t.raises(function() ts.detect.windows(40, 40, {stride = 0 / 0}) end, 'stride must be')
   end)

   t.test('scene and search functions name the argument or option they were given wrong', function()
      -- missing or mistyped arguments: "attempt to index a nil value" before
      local r = ts.scene.Random(1)
      t.raises(function() ts.scene.background(r, nil, 40) end,
               'ts.scene.background(r, h, w): h must be a whole number >= 1, got nil')
      t.raises(function() ts.scene.background(r, 30, 2.5) end, 'w must be a whole number >= 1, got 2.5')
      t.raises(function() ts.scene.background(nil, 30, 40) end, 'ts.scene.background(r, h, w): r must be a ts.scene.Random, got nil')
      t.raises(function() ts.scene.weather(nil, ts.zeros(4, 4, 3, 'uint8')) end, 'ts.scene.weather(r, img [, opts]): r must be a ts.scene.Random')
      t.raises(function() ts.scene.generate() end, 'ts.scene.generate: the options must be a table, got nil')
      t.raises(function() ts.scene.closeups() end, 'ts.scene.closeups(scenes [, seed]): scenes must be a list of scenes')
      t.raises(function() ts.scene.closeups({{signs = {}}}) end, 'scene 1 has no image')
      t.raises(function() ts.scene.closeups({{image = ts.zeros(8, 8, 3, 'uint8')}}) end, 'scene 1 has no list of signs')
      -- a seed that is no number: NaN made every draw NaN
      t.raises(function() ts.scene.Random(0 / 0) end, 'ts.scene.Random(seed): seed must be a whole number from 0 to 2^53, got nan')
      t.raises(function() ts.scene.Random('7') end, 'seed must be a whole number from 0 to 2^53, got "7"')
      -- whole seeds only: 1.5 gave seed 1's draws
      t.raises(function() ts.scene.Random(1.5) end, 'seed must be a whole number from 0 to 2^53, got 1.5')
      t.raises(function() ts.scene.Random(-1) end, 'seed must be a whole number from 0 to 2^53, got -1')
      -- a run's seed as ts.train takes it, and the detector's offsets from it
      t.truthy(ts.scene.Random(2 ^ 40 + 3000):uniform(0, 1) >= 0)
      t.raises(function() ts.scene.closeups({}, 1 / 0) end, 'ts.scene.closeups: seed must be a whole number from 0 to 2^53, got inf')
      t.eq(ts.scene.Random():next(), ts.scene.Random(1):next(), 'no seed is seed 1')
      -- out-of-range weather: a negative gain made negative pixels (all black), a fog probability of 2 always fog
      local img = ts.zeros(6, 6, 3, 'uint8')
      t.raises(function() ts.scene.weather(r, img, {gain = {-1, 2}}) end,
               'ts.scene.weather: gain must be {lo, hi} with 0 < lo <= hi, finite, got {-1, 2}')
      t.raises(function() ts.scene.weather(r, img, {gain = {0.5, 1 / 0}}) end, 'gain must be {lo, hi}')
      t.raises(function() ts.scene.weather(r, img, {fog = 2}) end, 'ts.scene.weather: fog must be a probability in [0, 1], got 2')
      t.raises(function() ts.scene.weather(r, img, {noise = 0 / 0}) end, 'ts.scene.weather: noise must be a finite sigma >= 0, got nan')
      t.raises(function() ts.scene.weather(r, img, {rian = 0.5}) end, 'ts.scene.weather: unknown option rian (known: blur, fog, gain')
      t.eq(img:sum(), 0, 'nothing written')
      ts.scene.weather(r, img, {gain = {1, 1}, fog = 0, rain = 1, night = 0, blur = 0, noise = 0})
      -- a sign of no pixels: drawn 2 pixels wide before
      local sign = ts.full({8, 8, 3}, 200, 'uint8')
      t.raises(function() ts.scene.paste(ts.zeros(20, 20, 3, 'uint8'), sign, 0, 0, 0) end,
               'ts.scene.paste: size must be a number of pixels >= 1, got 0')
      -- generate: misspelt options were ignored, a size of 0 pasted signs of nothing, icon_share without icons
      -- indexed nil
      local signs = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))
      t.raises(function() ts.scene.generate{n = 1, signs = signs, per_scen = {1, 1}} end,
               'ts.scene.generate: unknown option per_scen (known: empty, height, icon_share, icons, n, per_scene, seed, signs, size, weather, width)')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, size = {0, 20}} end,
               'ts.scene.generate: size must be {lo, hi} pixels with 1 <= lo <= hi, got {0, 20}')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, size = 30} end, 'size must be {lo, hi}')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, height = 0} end, 'ts.scene.generate: height must be a whole number >= 1, got 0')
      t.raises(function() ts.scene.generate{n = 1.5, signs = signs} end, 'ts.scene.generate: n must be a whole number >= 0, got 1.5')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, per_scene = {2, 1}} end,
               'ts.scene.generate: per_scene must be {lo, hi}, whole numbers with 0 <= lo <= hi, got {2, 1}')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, empty = -0.5} end, 'ts.scene.generate: empty must be a probability in [0, 1], got -0.5')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, icon_share = 0.5} end, 'ts.scene.generate: icon_share 0.5 needs icons')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, seed = 0 / 0} end, 'ts.scene.generate: seed must be a whole number from 0 to 2^53, got nan')
      t.raises(function() ts.scene.generate{n = 1, signs = {}} end, 'ts.scene.generate: signs must be a dataset (ts.data.Dataset), got a table that is not one')
      t.raises(function() ts.scene.generate{n = 1, signs = signs:subset{}} end, 'ts.scene.generate: signs must hold at least one image [N, h, w, C], got none')
      t.raises(function() ts.scene.generate{n = 1, icons = {}} end, 'ts.scene.generate: icons must be a non-empty list of {image, class}')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, weather = {gian = {1, 2}}} end,
               'ts.scene.generate: weather: unknown option gian')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, weather = {gain = {0, 1}}} end, 'ts.scene.generate: weather: gain must be')
      t.raises(function() ts.scene.generate{n = 1, signs = signs, weather = 'none'} end,
               'ts.scene.generate: weather must be a table of ts.scene.weather options or false, got none')
      local ok = ts.scene.generate{n = 1, seed = 2, signs = signs, height = 40, width = 50, size = {1, 20}, per_scene = {0, 1},
                                    empty = 0, icon_share = 0, weather = {gain = {1, 1}}}
      t.eq(#ok, 1)
      t.eq(#ts.scene.generate{n = 0, signs = signs}, 0)

      -- the search: without scorers, or scorers without a classifier, it indexed nil deep inside
      local bg = ts.scene.background(ts.scene.Random(3), 60, 80)
      t.raises(function() ts.detect.search(bg) end, 'ts.detect.search(img, scorers [, opts]): scorers must be a table {classify [, sign, scan]}, got nil')
      t.raises(function() ts.detect.search(bg, {sign = scorers.sign}) end,
               'ts.detect.search(img, scorers [, opts]): scorers.classify must be a function (crops to log-probabilities), got nil')
      t.raises(function() ts.detect.search(bg, {classify = scorers.classify, sign = 0.5}) end, 'scorers.sign must be a function')
      t.raises(function() ts.detect.search(nil, scorers) end, 'ts.detect.search(img, scorers [, opts]): img must be a uint8 image [H, W, 3], got nil')
      t.raises(function() ts.detect.search(bg:float(), scorers) end, 'img must be a uint8 image [H, W, 3], got float32 [60x80x3]')
      t.raises(function() ts.detect.search(bg, scorers, {temprature = 2}) end,
               'ts.detect.search: unknown option temprature (known: keep, max_side, min, overlap, proposals, step, stride, temperature)')
      t.raises(function() ts.detect.search(bg, scorers, {max_side = 0 / 0}) end, 'ts.detect.search: max_side must be a number of pixels >= 1, got nan')
      t.raises(function() ts.detect.search(bg, scorers, {keep = 0}) end, 'ts.detect.search: keep must be a whole number from 1, got 0')
      t.raises(function() ts.detect.search(bg, scorers, {overlap = -1}) end, 'ts.detect.search: overlap must be an IoU in [0, 1], got -1')
      t.raises(function() ts.detect.search(bg, scorers, {temperature = 0}) end, 'ts.detect.search: temperature must be a finite number > 0, got 0')
      -- every option the repository passes still works
      t.eq(type(ts.detect.search(bg, scorers, {max_side = 1024, keep = 4, min = 24, step = 0.8, stride = 0.25, proposals = 16,
                                               temperature = 1.5, overlap = 0.3}).detections), 'table')
      -- nms and describeFit
      t.raises(function() ts.detect.nms(nil, 0.3) end, 'ts.detect.nms(items, threshold [, limit]): items must be a list of {window, score}, got nil')
      t.raises(function() ts.detect.nms({{window = {0, 0, 1, 1}, score = 1}}) end, 'ts.detect.nms(items, threshold [, limit]): threshold must be an IoU in [0, 1], got nil')
      t.raises(function() ts.detect.nms({{window = {0, 0, 1, 1}}}, 0.3) end, 'ts.detect.nms(items, threshold [, limit]): item 1 has no score (a number), got nil')
      t.raises(function() ts.detect.nms({{score = 1}}, 0.3) end, 'ts.detect.nms(items, threshold [, limit]): item 1 has no window {x1, y1, x2, y2}')
      t.raises(function() ts.detect.nms({{window = {0, 0, 1, 1}, score = 1}}, 0.3, -1) end, 'ts.detect.nms(items, threshold [, limit]): limit must be a whole number from 0, got -1')
      t.eq(#ts.detect.nms({{window = {0, 0, 10, 10}, score = 1}, {window = {1, 0, 11, 10}, score = 2}}, 0.3), 1)
      t.raises(function() ts.detect.describeFit('run') end, 'ts.detect.describeFit(run, fit): fit must be a table (ts.detect.fitRun\'s), got nil')
      t.raises(function() ts.detect.describeFit('run', {threshold = 0.5}) end, 'ts.detect.describeFit(run, fit): fit.sign_right must be a number, got nil')
      t.raises(function() ts.detect.describeFit(nil, {}) end, 'ts.detect.describeFit(run, fit): run must be a string (the run\'s folder), got nil')
      t.truthy(ts.detect.describeFit('r', {threshold = 0.5, sign_right = 0.9, no_sign = 0.8, scenes = 10, empty = 5}):find('r/search.json', 1, true))
   end)

   t.test('predict.lua: --whole refuses --max-side, which it never used; after -- a file named --x.png is an image', function()
      local dir = t.tmpdir()
      local rc, out = t.sh(('%s %s/scripts/predict.lua %s/run a.png --whole --max-side 480'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 2 and out:find('predict: --whole and --max-side exclude each other', 1, true), out)
      -- the options end at --: the name is an image's (the run is looked at first: it is none here), not an option
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/run -- --x.png'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 1 and not out:find('unknown option', 1, true) and out:find(dir .. '/run', 1, true), out)
      rc, out = t.sh(('%s %s/scripts/predict.lua %s/run --x.png'):format(t.tshost, ts.root, dir))
      t.truthy(rc == 2 and out:find('unknown option --x.png', 1, true), out)
   end)

   t.test('the search refuses scorers that answer wrong, and keeps its boxes inside the photo', function()
      local cls = function(x) return ts.zeros(x:size(1), 4) end
      local function constant(v, n)
         return function(x)
            local p = {}
            for i = 1, n or x:size(1) do p[i] = v end
            return p
         end
      end
      -- a 10x10 photo has two windows and no refinement: a missing P(sign) counted as 1, a P(sign) of 5 was taken
      local small = ts.zeros(10, 10, 3, 'uint8')
      t.raises(function() ts.detect.search(small, {classify = cls, sign = constant(0.1, 1)}) end,
               'ts.detect.search(img, scorers [, opts]): scorers.sign must give P(sign) in [0, 1] of each of 2 windows, got nil for window 2')
      t.raises(function() ts.detect.search(small, {classify = cls, sign = constant(5)}) end, 'scorers.sign must give P(sign) in [0, 1]')
      t.raises(function() ts.detect.search(small, {classify = cls, sign = constant(0 / 0)}) end, 'scorers.sign must give P(sign) in [0, 1]')
      t.raises(function() ts.detect.search(small, {classify = cls, sign = function() end}) end, 'scorers.sign must give P(sign) of each of 2 windows')
      local bg = ts.zeros(60, 80, 3, 'uint8')
      t.raises(function() ts.detect.search(bg, {classify = cls, sign = function(x) return constant(0.5)(x:narrow(1, 1, 1)) end}) end,
               'scorers.sign must give P(sign) in [0, 1]')
      -- the classifier: a row for each crop, some classes, no NaN (they failed on indexing or in softmax)
      t.raises(function() ts.detect.search(small, {classify = function() return ts.zeros(1, 4) end}) end,
               'ts.detect.search(img, scorers [, opts]): scorers.classify must give log-probabilities [2, classes] of the 2 crops, got a tensor [1x4]')
      t.raises(function() ts.detect.search(small, {classify = function(x) return ts.zeros(x:size(1)) end}) end, 'scorers.classify must give log-probabilities')
      t.raises(function() ts.detect.search(small, {classify = function(x) return ts.zeros(x:size(1), 3):fill(0 / 0) end}) end,
               'scorers.classify gave crop 1 no log-probabilities: logit 1 is nan')
      t.raises(function() ts.detect.mine({{image = bg, signs = {}}}, {sign = constant(0 / 0)}) end,
               'ts.detect.mine(scenes, detector [, opts]): detector.sign must give P(sign) in [0, 1]')
      -- boxes in the photo's own pixels, inside it to the last bit after the shrink (rounding put them 3e-15 outside)
      local sc = {classify = cls, sign = function(x)
         local p = {}
         for i = 1, x:size(1) do p[i] = (i * 7919 % 101) / 100 end
         return p
      end}
      for _, hw in ipairs({{1000, 37}, {99, 31}, {3, 500}}) do
         local found = ts.detect.search(ts.zeros(hw[1], hw[2], 3, 'uint8'), sc, {max_side = 256})
         for _, d in ipairs(found.detections) do
            local b = d.box
            t.truthy(b[1] >= 0 and b[2] >= 0 and b[3] <= hw[2] and b[4] <= hw[1] and b[1] < b[3] and b[2] < b[4],
                     ('%dx%d: %s'):format(hw[1], hw[2], table.concat(b, ',')))
         end
      end
   end)

   t.test('nms: a window of no area, inverted or not numbers is refused, never kept twice', function()
      -- two identical windows of no area overlapped by nothing and were both kept
      local call = 'ts.detect.nms(items, threshold [, limit]): '
      t.raises(function() ts.detect.nms({{window = {5, 5, 5, 5}, score = 1}, {window = {5, 5, 5, 5}, score = 0.5}}, 0.3) end,
               call .. 'item 1 has no window {x1, y1, x2, y2} with x1 < x2 and y1 < y2, got {5, 5, 5, 5}')
      t.raises(function() ts.detect.nms({{window = {0, 0, 10, 10}, score = 1}, {window = {10, 10, 0, 0}, score = 0.5}}, 0.3) end,
               call .. 'item 2 has no window')
      t.raises(function() ts.detect.nms({{window = {0 / 0, 0, 10, 10}, score = 1}}, 0.3) end, 'got {nan, 0, 10, 10}')
      t.raises(function() ts.detect.nms({{window = {0, 0}, score = 1}, {window = {0, 0, 10, 10}, score = 0.5}}, 0.3) end, 'got {0, 0}')
      t.raises(function() ts.detect.nms({{window = {0, 0, 1, 1}, score = 1}, nil, {window = {5, 0, 6, 1}, score = 1}}, 0.3) end,
               call .. 'item 2 has no window')
      -- identical windows: one kept at any threshold below 1; touching ones both kept at 0
      local function same() return {{window = {0, 0, 10, 10}, score = 1}, {window = {0, 0, 10, 10}, score = 0.5}} end
      t.eq(#ts.detect.nms(same(), 0), 1)
      t.eq(#ts.detect.nms(same(), 0.99), 1)
      t.eq(#ts.detect.nms({{window = {0, 0, 10, 10}, score = 1}, {window = {10, 0, 20, 10}, score = 0.5}}, 0), 2)
      t.eq(#ts.detect.nms({}, 0.3), 0)
      -- the caller's list stays as given, and equal scores keep their order (table.sort is not stable)
      local items = {}
      for k = 1, 40 do items[k] = {window = {k * 20, 0, k * 20 + 10, 10}, score = k % 2 == 0 and 0.5 or 0.9, id = k} end
      local kept = ts.detect.nms(items, 0.3)
      for k = 1, 40 do t.eq(items[k].id, k, 'the list was reordered') end
      local want = {}
      for k = 1, 40, 2 do want[#want + 1] = k end
      for k = 2, 40, 2 do want[#want + 1] = k end
      for k, it in ipairs(kept) do t.eq(it.id, want[k], 'kept ' .. k) end
      -- the window grid's sides and options: 0, NaN or nil sides gave the whole image alone or failed in math.min
      t.raises(function() ts.detect.windows(0, 10) end, 'ts.detect.windows(h, w [, opts]): h must be a whole number >= 1, got 0')
      t.raises(function() ts.detect.windows(10, 0 / 0) end, 'w must be a whole number >= 1, got nan')
      t.raises(function() ts.detect.windows(10, 10, {stide = 0.5}) end, 'ts.detect.windows: unknown option stide')
   end)

   t.test('the "no sign" threshold: scores of 1 are found at threshold 1, and scores are probabilities', function()
      -- an empty scene scoring 1 (the most a score can be) is found at every threshold: "above them all" at 1 was
      -- reported as rejecting it, with a sign scene read wrong
      local th, signs, empty = ts.detect.bestThreshold({{score = 1, empty = true}, {score = 0.5, right = false}})
      t.eq(signs, 0)
      t.eq(empty, 0)
      t.truthy(th <= 1)
      -- a right sign scoring 1 above an empty scene: the threshold between them, both right
      th, signs, empty = ts.detect.bestThreshold({{score = 1, right = true}, {score = 0.4, empty = true}})
      t.near(th, 0.7, 1e-12)
      t.eq(signs, 1)
      t.eq(empty, 1)
      t.raises(function() ts.detect.bestThreshold({{score = 2, right = true}, {score = 0.1, empty = true}}) end,
               'ts.detect.bestThreshold: outcome 1 has no score in [0, 1], got 2')
      t.raises(function() ts.detect.bestThreshold({{score = 0.2, right = true}, {score = -1, empty = true}}) end, 'outcome 2 has no score in [0, 1]')
      t.raises(function() ts.detect.bestThreshold(nil) end, 'ts.detect.bestThreshold: outcomes must be a list')
      -- finding every scene can answer the most right when the lowest score is 0: threshold 0, which predict must read
      th = ts.detect.bestThreshold({{score = 0, right = true}, {score = 0, right = true}, {score = 0, empty = true}})
      t.eq(th, 0)
      local dir = t.tmpdir()
      t.writefile(dir .. '/search.json', ts.json.encode({threshold = 0, search = ts.detect.version, temperature = 1, views = 1}))
      t.eq(ts.detect.threshold(dir, true, 1, 1), 0)
      -- options: a misspelt one was ignored (the threshold fitted on 150 scenes), 0 scenes failed in bestThreshold
      local signs_ds = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))
      local sc = {classify = function(x) return ts.zeros(x:size(1), 3) end}
      t.raises(function() ts.detect.fitThreshold(sc, signs_ds, {scene = 2}) end, 'ts.detect.fitThreshold: unknown option scene')
      t.raises(function() ts.detect.fitThreshold(sc, signs_ds, {scenes = 0}) end,
               'ts.detect.fitThreshold(scorers, signs [, opts]): scenes must be a whole number >= 1, got 0')
      t.raises(function() ts.detect.fitRun(dir, {}, {scene = 2}) end, 'ts.detect.fitRun: unknown option scene')
      local fit = ts.detect.fitThreshold(sc, signs_ds, {scenes = 1})
      t.truthy(fit.threshold >= 0 and fit.threshold <= 1, fit.threshold)
   end)

   t.test('scenes: signs are where their boxes say however small, as many as asked or an error, icons that can be drawn', function()
      local signs = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))
      -- signs of 1 pixel are drawn 2 wide: placed as 1 wide, one was drawn over another, off its box
      for seed = 1, 5 do
         local s = ts.scene.generate{n = 1, seed = seed, signs = signs, per_scene = {4, 4}, size = {1, 1}, height = 6, width = 6,
                                     weather = false}[1]
         for i = 1, #s.signs do
            for j = i + 1, #s.signs do
               t.eq(ts.detect.iou(s.signs[i].box, s.signs[j].box), 0, ('seed %d: %s over %s'):format(seed,
                    table.concat(s.signs[i].box, ','), table.concat(s.signs[j].box, ',')))
            end
         end
      end
      -- more signs than fit were scenes with fewer, without a word: now an error naming the scene
      t.raises(function() ts.scene.generate{n = 2, signs = signs, per_scene = {5, 5}, size = {200, 240}, weather = false} end,
               'ts.scene.generate: scene 1 has room for 1 of the 5 signs per_scene asks for at least')
      -- icons: a transparent one was recorded as a sign filling its square, a NaN class recorded, a grey or empty image
      -- failed in the paste
      local function icon(h, w, c, v) return {image = ts.zeros(h, w, c, 'uint8'):fill(v or 200), class = 3} end
      t.raises(function() ts.scene.generate{n = 1, icons = {icon(10, 10, 4, 0)}} end,
               'ts.scene.generate: icon 1 is transparent (no alpha above 127)')
      t.raises(function() ts.scene.generate{n = 1, icons = {icon(10, 10, 4), icon(10, 10, 1)}} end,
               'ts.scene.generate: icon 2\'s image must be uint8 [h, w, 3 or 4], got uint8 [10x10x1]')
      t.raises(function() ts.scene.generate{n = 1, icons = {icon(0, 10, 4)}} end, 'icon 1\'s image must be uint8')
      t.raises(function() ts.scene.generate{n = 1, icons = {{image = ts.zeros(8, 8, 4, 'uint8'):fill(255), class = 0 / 0}}} end,
               'ts.scene.generate: icon 1\'s class must be a whole number >= 0, got nan')
      t.raises(function() ts.scene.generate{n = 1, signs = ts.data.Dataset(ts.zeros(2, 32, 32, 1, 'uint8'), ts.tensor({1, 2}, 'int64'))} end,
               'ts.scene.generate: signs must hold RGB images [N, h, w, 3], got images [2x32x32x1]')
      t.eq(#ts.scene.generate{n = 1, icons = {icon(1, 50, 4), icon(7, 3, 3)}, weather = false}[1].signs >= 1, true)
      -- close-ups of a box outside its scene: a photo without the sign, the box outside it; an inverted one failed
      t.raises(function() ts.scene.closeups({{image = ts.zeros(10, 10, 3, 'uint8'), signs = {{class = 1, box = {50, 50, 60, 60}}}}}) end,
               'ts.scene.closeups: scene 1\'s first sign has no box {x1, y1, x2, y2} inside its 10x10 image, got {50, 50, 60, 60}')
      t.raises(function() ts.scene.closeups({{image = ts.zeros(10, 10, 3, 'uint8'), signs = {{class = 1, box = {8, 8, 2, 2}}}}}) end,
               'inside its 10x10 image')
   end)

   t.test('detector training windows: close-ups, options and scenes checked', function()
      local signs = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))
      -- a near miss of a sign on a close-up's edge lay beyond the photo: the resize failed on its empty cut
      local close = ts.scene.closeups(ts.scene.generate{n = 30, seed = 3, signs = signs, per_scene = {1, 1}, weather = false}, 5)
      local x, y, wins, owners = ts.detect.samples(close, {near = 10})
      t.eq(x:size(1), #wins)
      for i, w in ipairs(wins) do
         local img = close[owners[i]].image
         t.truthy(math.min(img:size(2), w[3]) - math.max(0, w[1]) > 0 and math.min(img:size(1), w[4]) - math.max(0, w[2]) > 0,
                  table.concat(w, ','))
      end
      -- misspelt options were ignored, a nil list or detector failed on indexing it
      t.raises(function() ts.detect.samples(close, {postives = 5}) end, 'ts.detect.samples: unknown option postives')
      t.raises(function() ts.detect.samples(nil) end, 'ts.detect.samples(scenes [, opts]): scenes must be a list of scenes')
      t.raises(function() ts.detect.samples({{signs = {}}}) end, 'scene 1 has no uint8 image [H, W, 3]')
      local sign = function(c) return ts.zeros(c:size(1)) end
      t.raises(function() ts.detect.mine(close, {sign = sign}, {per_scen = 1}) end, 'ts.detect.mine: unknown option per_scen')
      t.raises(function() ts.detect.mine(close, nil) end, 'ts.detect.mine(scenes, detector [, opts]): detector must be a table {sign [, scan]}')
      t.eq(ts.detect.mine({close[1]}, {sign = sign}):size(1), 0)
      -- the detector's own options: 0 scenes failed in channelStats, 2.5 named ts.scene.generate's n
      local g = {train = signs, valid = signs}
      t.raises(function() ts.detect.train(g, {scenes = 0}) end, 'ts.detect.train(g, opts): scenes must be a whole number >= 1, got 0')
      t.raises(function() ts.detect.train(g, {scenes = 2.5}) end, 'scenes must be a whole number >= 1, got 2.5')
      t.raises(function() ts.detect.train(g, {scenes = 1, seed = 0 / 0}) end, 'ts.detect.train(g, opts): seed must be a whole number')
   end)

   t.test('scenes: no more pixels than a photo may have, signs no larger than the scene, no more than fit', function()
      local icon = {image = ts.zeros(8, 8, 4, 'uint8'):fill(255), class = 0}
      -- 2^30 x 2^30 failed in ffi.new, 10000 x 10000 drew for minutes; per_scene {1e9, 1e9} tried a billion signs
      t.raises(function() ts.scene.generate{n = 1, icons = {icon}, height = 2 ^ 30, width = 2 ^ 30} end,
               'ts.scene.generate: a scene of 1073741824x1073741824 pixels is more than the')
      t.raises(function() ts.scene.generate{n = 1, icons = {icon}, height = 10000, width = 10000} end, '(ts.image.pixelLimit())')
      t.raises(function() ts.scene.background(ts.scene.Random(1), 2 ^ 30, 2 ^ 30) end, 'ts.scene.background(r, h, w): a scene of')
      t.raises(function() ts.scene.paste(ts.zeros(20, 20, 3, 'uint8'), ts.full({8, 8, 3}, 200, 'uint8'), -1e9 + 5, -1e9 + 5, 1e9) end,
               'ts.scene.paste: a sign of 1000000000x1000000000 pixels is more than the')
      t.raises(function() ts.scene.generate{n = 1, icons = {icon}, per_scene = {1e9, 1e9}} end,
               'ts.scene.generate: per_scene {1000000000, 1000000000} asks for more signs than the 320x240 scene holds (19200 of 2 pixels)')
      local s = ts.scene.generate{n = 1, icons = {icon}, per_scene = {0, 1e15}, size = {2, 4}, height = 20, width = 20, weather = false}
      t.truthy(#s[1].signs >= 1 and #s[1].signs <= 100, #s[1].signs)
      -- a sign larger than the scene was drawn at its side, none as asked
      t.raises(function() ts.scene.generate{n = 1, icons = {icon}, size = {500, 1000}} end,
               'ts.scene.generate: size {500, 1000} asks for signs larger than the 320x240 scene: lo must be at most its short side, 240')
      -- the default range is cut to a small scene, as before: it still gets its signs
      local small = ts.scene.generate{n = 1, seed = 3, height = 12, width = 12, signs = ts.data.synthetic{train = 4, valid = 1, test = 1}.train,
                                      weather = false}
      t.truthy(#small[1].signs >= 1, 'signs in a 12x12 scene')
      t.eq(#ts.scene.generate{n = 1, icons = {icon}, height = 1, width = 1, size = {1, 1}, per_scene = {1, 1}}[1].signs, 1)
   end)

   t.test('iou and dropParts check their boxes; windows and samples are counted before they are made', function()
      -- a NaN corner gave IoU NaN, reversed corners 0, nil failed on indexing
      t.raises(function() ts.detect.iou({0 / 0, 0, 1, 1}, {0, 0, 1, 1}) end,
               'ts.detect.iou(a, b): a must be a box {x1, y1, x2, y2} of finite numbers with x1 <= x2 and y1 <= y2, got {nan, 0, 1, 1}')
      t.raises(function() ts.detect.iou({0, 0, 1, 1}, {2, 2, 0, 0}) end, 'ts.detect.iou(a, b): b must be a box')
      t.raises(function() ts.detect.iou(nil, {0, 0, 1, 1}) end, 'ts.detect.iou(a, b): a must be a box')
      t.eq(ts.detect.iou({0, 0, 0, 0}, {0, 0, 0, 0}), 0)
      t.raises(function() ts.detect.dropParts(nil, 10, 10) end, 'ts.detect.dropParts(items, h, w): items must be a list')
      t.raises(function() ts.detect.dropParts({{window = {0, 0, 9, 9}, score = 1}, {window = {1, 1, 2, 2}, score = 1}}, 10, 10) end,
               'ts.detect.dropParts(items, h, w): item 1 must have a window')
      t.raises(function() ts.detect.dropParts({}, 0 / 0, 10) end, 'ts.detect.dropParts(items, h, w): h must be a whole number >= 1')
      -- 2^30 x 2^30 made windows until memory ran out; positives = 1e12 drew them for ever
      t.raises(function() ts.detect.windows(2 ^ 30, 2 ^ 30) end, 'ts.detect.windows: a 1073741824x1073741824 image has')
      local sc = {{image = ts.zeros(40, 40, 3, 'uint8'), signs = {{class = 1, box = {5, 5, 20, 20}}}}}
      t.raises(function() ts.detect.samples(sc, {positives = 1e12}) end, 'ts.detect.samples(scenes [, opts]): 1000000000011 windows asked for')
      t.raises(function() ts.detect.samples(sc, {seed = 0 / 0}) end, 'ts.detect.samples(scenes [, opts]): seed must be')
      -- a min beyond the scene drew windows larger than it
      local _, _, wins = ts.detect.samples(sc, {min = 1000, positives = 0, near = 0})
      for _, w in ipairs(wins) do t.truthy(w[3] - w[1] <= 40 + 1e-9, table.concat(w, ',')) end
      -- the search's and mine's grid options were refused naming ts.detect.windows
      local scorers = {sign = function(x) return ts.full({x:size(1)}, 0.5) end, classify = function(x) return ts.zeros(x:size(1), 3) end}
      t.raises(function() ts.detect.search(ts.zeros(40, 40, 3, 'uint8'), scorers, {min = 2}) end,
               'ts.detect.search: stride must be a share of the side from 1/min to 1, got 0.25 (min 2)')
      t.raises(function() ts.detect.mine(sc, scorers, {step = 1}) end, 'ts.detect.mine: step must be in (0, 1), got 1')
      -- a nil network or preprocessing failed on indexing it
      t.raises(function() ts.detect.signScanner(nil, ts.data.preprocess{}) end, 'ts.detect.signScanner(net, pre): net must be a network')
      t.raises(function() ts.detect.signScanner(ts.nn.Sequential(), {}) end, 'ts.detect.signScanner(net, pre): pre must be a preprocessing')
   end)

   t.test('a damaged search.json, a fit that is no fit, and the detector\'s options refused before the work', function()
      local dir = t.tmpdir()
      local function with(fit) t.writefile(dir .. '/search.json', ts.json.encode(fit)); return ts.detect.threshold(dir, true, 1, 1) end
      -- a temperature or views that is no number was taken as 1; a threshold given as a string was read
      t.raises(function() with({threshold = 0.3, search = ts.detect.version, temperature = 'abc'}) end,
               '/search.json: temperature must be a number > 0, got "abc"')
      t.raises(function() with({threshold = 0.3, search = ts.detect.version, views = 'two'}) end, '/search.json: views must be a whole number from 1 to')
      t.raises(function() with({threshold = 0.3, search = ts.detect.version, views = false}) end, '/search.json: views must be a whole number from 1 to 1024, got false')
      t.raises(function() with({threshold = '0.3', search = ts.detect.version}) end, '/search.json: no threshold in [0, 1]')
      t.eq(with({threshold = 0.3, search = ts.detect.version}), 0.3)
      t.raises(function() ts.detect.threshold(nil, true) end, 'ts.detect.threshold(run, own, temperature, views): run must be a string')
      -- printed as "nan", "500.0% of -9223372036854775808 scenes"
      local fit = {threshold = 0.5, sign_right = 0.9, no_sign = 0.8, scenes = 10, empty = 5}
      for k, v in pairs({threshold = 0 / 0, sign_right = 5, scenes = 1.5, empty = -1}) do
         local bad = {}
         for key, value in pairs(fit) do bad[key] = value end
         bad[k] = v
         t.raises(function() ts.detect.describeFit('r', bad) end, 'ts.detect.describeFit(run, fit): fit.' .. k .. ' must be')
      end
      t.raises(function() ts.detect.fitRun(nil, {}) end, 'ts.detect.fitRun(run, g [, opts]): run must be a string')
      t.raises(function() ts.detect.fitRun(dir, {}, {scenes = 0}) end, 'ts.detect.fitRun(run, g [, opts]): scenes must be a whole number >= 1, got 0')
      -- ts.train refused these after the scenes were made (a run that is no folder name: after round 1 trained)
      local g = {train = ts.data.Dataset(magenta(2), ts.tensor({1, 2}, 'int64'))}
      g.valid = g.train
      t.raises(function() ts.detect.train(g, {scenes = 1, epochs = 0}) end, 'ts.detect.train(g, opts): epochs must be a whole number from 1')
      t.raises(function() ts.detect.train(g, {scenes = 1, quiet = 1}) end, 'ts.detect.train(g, opts): quiet must be true or false, got 1')
      t.raises(function() ts.detect.train(g, {scenes = 1, run = 5}) end, 'ts.detect.train(g, opts): run must be a string')
   end)
end
