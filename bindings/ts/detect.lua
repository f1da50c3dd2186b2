-- ts.detect: finding the sign in a photo where it is a small part of the scene, by a window search.
-- Square windows at every scale and position are cut out and shrunk to 32x32, as the GTSRB crops were; a
-- small "sign here" network (the detector: sign vs no sign, learned from generated scenes) scores them all,
-- the best few after non-maximum suppression go to the classifier, and a window's score is
-- P(sign) x P(its top class). Boxes are {x1, y1, x2, y2} in the photo's pixels (0-based, end exclusive).
--   ts.detect.windows(h, w [, opts])         the search's windows: the whole image, then a grid of squares
--                                              per scale, some reaching beyond the photo by their margin
--   ts.detect.crops(img, windows [, size])    uint8 [N, size, size, 3]
--   ts.detect.window(box) / signBox(window)   the crop a sign box calls for (the margin GTSRB crops have),
--                                              and back
--   ts.detect.iou(a, b), ts.detect.nms(items, threshold)
--   ts.detect.dropParts(items, h, w)          windows inside one that spans the photo and is a sign: its parts
--   ts.detect.search(img, scorers [, opts])   the detections, best first, and the whole image's answer
--   ts.detect.samples(scenes [, opts])        training windows for the detector from generated scenes
--   ts.detect.signScorer(net, pre)            P(sign) of crops by a detector network
--   ts.detect.signScanner(net, pre)           P(sign) of every window of the search's grids at once (nil for
--                                              a network that is no chain of convolutions and poolings first)
--   ts.detect.mine(scenes, sign [, opts])     hard negatives: the windows without a sign it likes best
--   ts.detect.train(g, opts)                  trains and saves a detector (a run directory of its own)
--   ts.detect.scorers(model, pre, opts)       the search's scorers from a classifier and a detector's folder
--   ts.detect.bestThreshold(outcomes)         the "no sign" threshold that answers the most scenes right
--   ts.detect.fitThreshold(scorers, signs, o) that threshold, from searches of validation scenes
--   ts.detect.threshold(run, own, T, views)   the threshold predict uses: fitted (run/search.json) or 0.5
--   ts.detect.fitRun(run, g [, opts])          fits it for a run and its own detector, writes run/search.json
--   ts.detect.describeFit(run, fit)            that fit in one line
local ffi = require('ffi')
local T = require('ts.tensor')
local image = require('ts.image')
local scene = require('ts.scene')
local metrics = require('ts.metrics')
local keys = require('ts.keys')

local M = {}
-- the search's version, kept with a fitted threshold (search.json), which holds only for the search it was
-- fitted with. 2: the parts of a sign that spans the photo dropped (M.dropParts); 3: the photo framed as a crop
-- among the windows; 4: every scale's windows joined by those reaching beyond the photo by their margin, a sign
-- at its edge or filling it framed; 5: each scale's windows a regular grid, centred, scored by the detector's
-- scan (M.signScanner) where it has one (M.windows)
M.version = 5

-- the square of the given side centred on (cx, cy)
local function square(cx, cy, side) return {cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2} end

-- the square window around a sign box whose crop looks like a GTSRB image: the sign 1 - 2m of its side
function M.window(box)
   return square((box[1] + box[3]) / 2, (box[2] + box[4]) / 2,
                 math.max(box[3] - box[1], box[4] - box[2]) / (1 - 2 * scene.cropMargin))
end

function M.signBox(win)
   local m = scene.cropMargin * (win[3] - win[1])
   local n = scene.cropMargin * (win[4] - win[2])
   return {win[1] + m, win[2] + n, win[3] - m, win[4] - n}
end

local function area(w) return (w[3] - w[1]) * (w[4] - w[2]) end

-- the area two boxes share
local function shared(a, b)
   local iw = math.min(a[3], b[3]) - math.max(a[1], b[1])
   local ih = math.min(a[4], b[4]) - math.max(a[2], b[2])
   return iw > 0 and ih > 0 and iw * ih or 0
end

-- whether b is a box {x1, y1, x2, y2} of finite numbers with x1 <= x2 and y1 <= y2 (strict: <, an area)
local function is_box(b, strict)
   if not (type(b) == 'table' and T.isFinite(b[1]) and T.isFinite(b[2]) and T.isFinite(b[3]) and T.isFinite(b[4])) then
      return false
   end
   if strict then return b[1] < b[3] and b[2] < b[4] end
   return b[1] <= b[3] and b[2] <= b[4]
end

-- the IoU of two boxes, unchecked (the search's own windows)
local function iou(a, b)
   local inter = shared(a, b)
   return inter > 0 and inter / (area(a) + area(b) - inter) or 0
end

function M.iou(a, b)
   -- (a NaN corner gave IoU NaN, an infinite box 0, reversed corners 0 as if apart; nil failed on indexing it)
   for _, v in ipairs({{a, 'a'}, {b, 'b'}}) do
      if not is_box(v[1]) then
         error(('ts.detect.iou(a, b): %s must be a box {x1, y1, x2, y2} of finite numbers with x1 <= x2 and y1 <= y2, '
                .. 'got %s'):format(v[2], keys.show(v[1])), 2)
      end
   end
   return iou(a, b)
end

-- an overlap threshold, or an error naming the call (what) and the argument at its caller's caller: nms's and the
-- search's
local function check_iou(v, what, name)
   if not (T.isFinite(v) and v >= 0 and v <= 1) then
      error(('%s: %s must be an IoU in [0, 1], got %s'):format(what, name, tostring(v)), 3)
   end
end

-- items (each with .window and .score), best first; those overlapping a better one by more than
-- `threshold` IoU dropped; the first `limit` of them (all by default)
function M.nms(items, threshold, limit)
   -- (a nil threshold failed in a comparison, a nil or NaN score in the sort)
   local call = 'ts.detect.nms(items, threshold [, limit])'
   if type(items) ~= 'table' then error(('%s: items must be a list of {window, score}, got %s'):format(call, tostring(items)), 2) end
   check_iou(threshold, call, 'threshold')
   if limit ~= nil and not (T.isFinite(limit) and limit % 1 == 0 and limit >= 0) then
      error(('%s: limit must be a whole number from 0, got %s'):format(call, tostring(limit)), 2)
   end
   -- (every item up to #items, as the sort takes them: a hole failed inside the sort; a window of no area, inverted or
   -- with NaN overlapped nothing, so two identical ones were both kept, and a short one failed in the arithmetic)
   for k = 1, #items do
      local it = items[k]
      if not is_box(type(it) == 'table' and it.window, true) then
         error(('%s: item %d has no window {x1, y1, x2, y2} with x1 < x2 and y1 < y2, got %s'):format(call, k,
               keys.show(type(it) == 'table' and it.window or it)), 2)
      end
      if type(it.score) ~= 'number' or it.score ~= it.score then
         error(('%s: item %d has no score (a number), got %s'):format(call, k, tostring(it.score)), 2)
      end
   end
   -- by score, equal scores in the order given: the caller's list was sorted in place, and table.sort is not stable
   local order = {}
   for k = 1, #items do order[k] = k end
   table.sort(order, function(a, b)
      return items[a].score > items[b].score or (items[a].score == items[b].score and a < b)
   end)
   local kept = {}
   for _, i in ipairs(order) do
      local it = items[i]
      if limit and #kept >= limit then break end
      local ok = true
      for _, k in ipairs(kept) do
         if iou(it.window, k.window) > threshold then ok = false break end
      end
      if ok then kept[#kept + 1] = it end
   end
   return kept
end

-- the grid's options (opts.step, stride, min) as numbers, or an error naming the call at `level` as error's, counted
-- from the caller: each scale smaller than the one before, squares at least 2 pixels and a stride of at least a
-- pixel's share of the smallest (step = 1 or min = 0 looped for ever, stride = 0 made windows until memory ran out)
local function grid_options(opts, call, level)
   local step, stride, smallest = opts.step or 0.8, opts.stride or 0.25, opts.min or 24
   if not (T.isFinite(step) and step > 0 and step < 1) then error(('%s: step must be in (0, 1), got %s'):format(call, tostring(step)), level + 1) end
   if not (T.isFinite(smallest) and smallest >= 2) then error(('%s: min must be a number of pixels >= 2, got %s'):format(call, tostring(smallest)), level + 1) end
   if not (T.isFinite(stride) and stride >= 1 / smallest and stride <= 1) then
      error(('%s: stride must be a share of the side from 1/min to 1, got %s (min %s)'):format(call, tostring(stride),
            tostring(smallest)), level + 1)
   end
   return step, stride, smallest
end

-- the most windows a search makes: about 2 GiB of Lua tables (a photo of 2^30 x 2^30 pixels made windows until memory
-- ran out; one of 10000 x 10000 makes about 7.5 million)
local most_windows = 2 ^ 24

-- M.windows' windows and grids, of options grid_options checked; an error naming the call at `level` as error's, counted
-- from the caller, where there would be more than most_windows
local function make_windows(h, w, step, stride, smallest, call, level)
   local m = scene.cropMargin
   -- along an axis of length n: the first square's place and their count, as many as fit between -m side and
   -- n - side + m side at a spacing of stride side, centred
   local function axis(n, side)
      local gap = side * stride
      local k = math.max(0, math.floor((n - side + 2 * m * side) / gap + 1e-9)) + 1
      return (n - side - (k - 1) * gap) / 2, k
   end
   local short = math.min(h, w)
   local sides = {short / (1 - 2 * m)}
   local side = short
   while side >= smallest do
      sides[#sides + 1] = side
      side = side * step
   end
   local total = 1
   for _, s in ipairs(sides) do total = total + select(2, axis(w, s)) * select(2, axis(h, s)) end
   if total > most_windows then
      error(('%s: a %dx%d image has %d windows at min %s, more than 2^24: search it shrunk (max_side) or with a larger min'):format(
            call, w, h, total, tostring(smallest)), level + 1)
   end
   local out, grids = {{0, 0, w, h}}, {}
   for _, s in ipairs(sides) do
      local x0, nx = axis(w, s)
      local y0, ny = axis(h, s)
      grids[#grids + 1] = {side = s, x0 = x0, nx = nx, y0 = y0, ny = ny, first = #out + 1}
      for j = 0, ny - 1 do
         for i = 0, nx - 1 do
            local x, y = x0 + i * s * stride, y0 + j * s * stride
            out[#out + 1] = {x, y, x + s, y + s}
         end
      end
   end
   return out, grids
end

-- The windows of an h x w image: the whole image (squeezed to a square, as predict did before the search),
-- then squares of side min(h, w), shrinking by opts.step (0.8) down to opts.min (24) pixels, and before them a
-- larger scale whose middle spans the short side: the photo framed as a crop frames a sign that fills it. Each
-- scale's squares lie on a regular grid, opts.stride (a quarter) of their side apart, centred on the photo and
-- reaching beyond each edge by up to the window's margin m (scene.cropMargin of its side; the border pixels
-- repeat there): the detector, which learnt signs framed as GTSRB crops frame them, needs that margin around a
-- sign on the photo's edge, and the window's middle 1 - 2m, where a sign lies, stays inside. A regular grid is
-- what lets the detector's convolutions run once over each scale's whole picture (M.signScanner) instead of
-- once per window. Returns the windows and the scales' grids ({side, x0, nx, y0, ny, first}: nx by ny squares,
-- the first at (x0, y0), windows[first] the first of them, rows of x after one another).
local window_options = {step = 1, stride = 1, min = 1}
function M.windows(h, w, opts)
   -- (a nil side failed in math.min, 0, -5 or NaN gave the whole image alone, a misspelt stide was ignored)
   keys.sizes(h, 'ts.detect.windows(h, w [, opts])', 'h', 1, 1, 2)
   keys.sizes(w, 'ts.detect.windows(h, w [, opts])', 'w', 1, 1, 2)
   opts = keys.check('ts.detect.windows', opts or {}, window_options, 2)
   local step, stride, smallest = grid_options(opts, 'ts.detect.windows', 2)
   return make_windows(h, w, step, stride, smallest, 'ts.detect.windows', 2)
end

-- the windows' crops, each shrunk to size x size; beyond the image's edge its border pixels repeat
function M.crops(img, windows, size)
   size = size or 32
   local x = T.zeros({#windows, size, size, 3}, 'uint8')
   local src = img:contiguous()
   for k, win in ipairs(windows) do x[k]:copy(image.resize(src, size, size, win)) end
   return x
end

-- P(sign) of every window of an image (M.windows' windows and grids), as a list. With a scan (M.signScanner)
-- that suits the grids, the scan proposes and the crops decide: the scan scores every window of the grids
-- at once, and the opts.proposals (256) it likes best, with the whole image, are scored again on their own
-- crops, which is what the detector learnt from (the scan sees a window's neighbours where a crop is
-- zero-padded, and can be wrong by half a probability on a window); the other windows get 0, out of the
-- running. Else, or where the grids hold no more windows than it would propose, every window is scored on
-- its crop.
-- A scorer's P(sign) of windows from..to (a list, or a float tensor [to]), each a number in [0, 1], else an error
-- naming the call (what) and the scorer (name) at `level` as error's, counted from the caller: a missing value
-- counted as P(sign) 1, a value of 5 (a logit) or NaN went through to the ranking, a nil failed on indexing
local function probabilities(p, from, to, what, name, level)
   if not (type(p) == 'table' or T.isTensor(p) and p:dim() == 1 and p:size(1) >= to) then
      error(('%s: %s must give P(sign) of each of %d windows (a list, or a tensor [%d]), got %s'):format(what, name,
            to - from + 1, to, keys.show(p)), level + 1)
   end
   for k = from, to do
      local v = tonumber(p[k])
      if not (v and v >= 0 and v <= 1) then
         error(('%s: %s must give P(sign) in [0, 1] of each of %d windows, got %s for window %d'):format(what, name,
               to - from + 1, tostring(p[k]), k), level + 1)
      end
   end
   return p
end

local function score_windows(img, wins, grids, scorers, opts, call, name)
   local proposals = opts.proposals or 256
   if not (scorers.scan and (opts.stride or 0.25) == scorers.scan.stride and #wins - 1 > proposals) then
      local p = probabilities(scorers.sign(M.crops(img, wins)), 1, #wins, call, name .. '.sign', 3)
      return p   -- (not a tail call: the error's level counts this function)
   end
   local scanned = probabilities(scorers.scan(img, grids), 2, #wins, call, name .. '.scan', 3)
   local order = {}
   for k = 2, #wins do order[k - 1] = k end
   table.sort(order, function(a, b) return scanned[a] > scanned[b] or (scanned[a] == scanned[b] and a < b) end)
   local picked, chosen = {1}, {wins[1]}   -- the whole image and the proposals: their indices and windows
   for j = 1, proposals do picked[j + 1], chosen[j + 1] = order[j], wins[order[j]] end
   local exact = probabilities(scorers.sign(M.crops(img, chosen)), 1, #chosen, call, name .. '.sign', 3)
   local p = {}
   for k = 1, #wins do p[k] = 0 end
   for j, k in ipairs(picked) do p[k] = tonumber(exact[j]) end
   return p
end

-- A photo that a sign fills: the search also finds the sign's parts (a red arc, the pictogram alone), and
-- the classifier may read a part as a sign of another class more surely than it reads the whole sign (a
-- clean pictogram, a close-up). items (each with .window, .sign and .score) of an h x w photo: those lying,
-- nine tenths of them, inside a window more than 1.5 times larger that spans the photo (at least 0.9 of its
-- short side), that the detector holds to be a sign (P(sign) >= 0.9) and that scores at least half as much,
-- dropped as parts of that sign. Only a window spanning the photo counts: in a street scene a window around
-- a small sign and much background can have the detector's favour too, and would swallow the sign.
-- (experiments/scenes.lua: no scene read differently, a third more of the class icons read right.)
function M.dropParts(items, h, w)
   -- (a nil list failed in ipairs, an item without sign in a comparison, a NaN side dropped nothing)
   local call = 'ts.detect.dropParts(items, h, w)'
   if type(items) ~= 'table' then error(('%s: items must be a list of {window, sign, score}, got %s'):format(call, keys.show(items)), 2) end
   keys.sizes(h, call, 'h', 1, 1, 2)
   keys.sizes(w, call, 'w', 1, 1, 2)
   for k, it in ipairs(items) do
      local t = type(it) == 'table' and it or {}
      if not (is_box(t.window, true) and T.isFinite(t.sign) and T.isFinite(t.score)) then
         error(('%s: item %d must have a window {x1, y1, x2, y2} with x1 < x2 and y1 < y2, a sign and a score (finite '
                .. 'numbers), got window %s, sign %s, score %s'):format(call, k, keys.show(t.window), keys.show(t.sign),
                keys.show(t.score)), 2)
      end
   end
   local span = 0.9 * math.min(h, w)
   local kept = {}
   for _, it in ipairs(items) do
      local a = it.window
      local part = false
      for _, other in ipairs(items) do
         local o = other.window
         if other ~= it and other.sign >= 0.9 and other.score >= 0.5 * it.score
            and math.min(o[3] - o[1], o[4] - o[2]) >= span
            and area(o) > 1.5 * area(a) and shared(a, o) >= 0.9 * area(a) then
            part = true
            break
         end
      end
      if not part then kept[#kept + 1] = it end
   end
   return kept
end

-- The search. scorers.sign(x) -> P(sign) for each crop of x (uint8 [N, 32, 32, 3]) as a Lua list or a
-- float tensor [N]; scorers.scan (optional, M.signScanner) -> P(sign) of whole grids of windows at once;
-- scorers.classify(x) -> log-probabilities (or logits) [N, classes], a tensor; nil scorers.sign: every window
-- counts as a sign (the classifier's confidence alone then ranks them).
-- opts: max_side (1024: a larger photo is searched shrunk to it), keep (16: windows classified), min, step,
-- stride (the windows), proposals (256: the windows a scan proposes), temperature (1, dividing the
-- classifier's log-probabilities), overlap (0.3: NMS).
-- Returns {detections = {{window, box, sign, class, probability, probs, logp, score}, ...} best first (the
-- classified windows but the parts of a sign that spans the photo, M.dropParts, and those overlapping a
-- better one),
-- whole = the whole image's (the same fields), windows = the number searched}; logp is the classifier's
-- row, probs its softmax at the temperature. Boxes are in the photo's own pixels.
local search_options = {max_side = 1, keep = 1, min = 1, step = 1, stride = 1, proposals = 1, temperature = 1, overlap = 1}
-- a scorer: a function, or a table called as one (M.signScanner's)
local function callable(f)
   local mt = type(f) == 'table' and getmetatable(f)
   return type(f) == 'function' or (type(mt) == 'table' and type(mt.__call) == 'function')
end
function M.search(img, scorers, opts)
   -- the arguments checked before the work (no scorers, or none that classify, indexed nil deep inside; a
   -- misspelt temprature was ignored)
   local call = 'ts.detect.search(img, scorers [, opts])'
   if not (T.isTensor(img) and img:dtype() == 'uint8' and img:dim() == 3 and img:size(3) == 3 and img:numel() > 0) then
      error(('%s: img must be a uint8 image [H, W, 3], got %s'):format(call, T.isTensor(img) and
            ('%s %s'):format(img:dtype(), tostring(img:size())) or tostring(img)), 2)
   end
   if type(scorers) ~= 'table' then
      error(('%s: scorers must be a table {classify [, sign, scan]}, got %s'):format(call, tostring(scorers)), 2)
   end
   if not callable(scorers.classify) then
      error(('%s: scorers.classify must be a function (crops to log-probabilities), got %s'):format(call,
            tostring(scorers.classify)), 2)
   end
   for _, k in ipairs({'sign', 'scan'}) do
      if scorers[k] ~= nil and not callable(scorers[k]) then
         error(('%s: scorers.%s must be a function, got %s'):format(call, k, tostring(scorers[k])), 2)
      end
   end
   opts = opts or {}
   if type(opts) ~= 'table' then error(('%s: opts must be a table, got %s'):format(call, tostring(opts)), 2) end
   keys.check('ts.detect.search', opts, search_options, 2)
   if opts.max_side ~= nil and not (T.isFinite(opts.max_side) and opts.max_side >= 1) then
      error(('ts.detect.search: max_side must be a number of pixels >= 1, got %s'):format(tostring(opts.max_side)), 2)
   end
   for _, k in ipairs({'keep', 'proposals'}) do
      local v = opts[k]
      if v ~= nil and not (T.isFinite(v) and v % 1 == 0 and v >= 1) then
         error(('ts.detect.search: %s must be a whole number from 1, got %s'):format(k, tostring(v)), 2)
      end
   end
   if opts.overlap ~= nil then check_iou(opts.overlap, 'ts.detect.search', 'overlap') end
   if opts.temperature ~= nil and not (T.isFinite(opts.temperature) and opts.temperature > 0) then
      error(('ts.detect.search: temperature must be a finite number > 0, got %s'):format(tostring(opts.temperature)), 2)
   end
   local step, stride, smallest = grid_options(opts, 'ts.detect.search', 2)   -- (they were named ts.detect.windows')
   local H, W = img:size(1), img:size(2)
   local f = math.max(1, math.max(H, W) / (opts.max_side or 1024))
   local work = f > 1 and image.resize(img:contiguous(), math.max(1, math.floor(H / f + 0.5)),
                                        math.max(1, math.floor(W / f + 0.5))) or img
   local h, w = work:size(1), work:size(2)
   local sx, sy = W / w, H / h
   local margin = scene.cropMargin
   local wins, grids = make_windows(h, w, step, stride, smallest, 'ts.detect.search', 2)
   local sign = scorers.sign and score_windows(work, wins, grids, scorers, opts, call, 'scorers')
   local searched = #wins
   local items = {}
   for k, win in ipairs(wins) do   -- ranked by P(sign) until classified
      local p = sign and tonumber(sign[k]) or 1
      items[k] = {window = win, sign = p, score = p}
   end
   local whole = items[1]
   local squares = {}
   for k = 2, #items do squares[k - 1] = items[k] end
   local chosen = M.nms(squares, opts.overlap or 0.3, opts.keep or 16)
   local cut = {whole.window}
   for k, it in ipairs(chosen) do cut[k + 1] = it.window end
   local cx = M.crops(work, cut)
   whole.crop = cx[1]
   for k, it in ipairs(chosen) do it.crop = cx[k + 1] end
   -- each candidate refined: shifted by an eighth of its side and scaled by 0.8 to 1.25 about itself, the
   -- window the detector likes best kept (the grid's steps are a quarter of a side and a scale of 0.8, and
   -- the suppression above may have dropped a better-framed neighbour of another scale)
   if scorers.sign and #chosen > 0 then
      local near = {}
      for _, it in ipairs(chosen) do
         local win = it.window
         local side = win[3] - win[1]
         for _, scale in ipairs({0.8, 0.9, 1, 1.12, 1.25}) do
            for dy = -1, 1 do
               for dx = -1, 1 do
                  local s2 = side * scale
                  -- moved where its middle sticks out of the image (its margin may, as the grid's do)
                  if s2 * (1 - 2 * margin) <= math.min(h, w) + 1e-9 and s2 >= smallest then
                     local q = square((win[1] + win[3]) / 2 + dx * side / 8, (win[2] + win[4]) / 2 + dy * side / 8, s2)
                     local r = margin * s2
                     local x1, y1 = math.min(math.max(-r, q[1]), w - s2 + r), math.min(math.max(-r, q[2]), h - s2 + r)
                     near[#near + 1] = {owner = it, window = {x1, y1, x1 + s2, y1 + s2}}
                  end
               end
            end
         end
      end
      if #near > 0 then
         local near_windows = {}
         for k, n in ipairs(near) do near_windows[k] = n.window end
         local nx = M.crops(work, near_windows)
         local ns = probabilities(scorers.sign(nx), 1, #near, call, 'scorers.sign', 2)
         searched = searched + #near
         for k, n in ipairs(near) do
            local p = tonumber(ns[k])
            if p > n.owner.sign then n.owner.sign, n.owner.window, n.owner.crop = p, n.window, nx[k] end
         end
      end
   end
   table.insert(chosen, 1, whole)
   local cx = T.zeros({#chosen, 32, 32, 3}, 'uint8')
   for k, it in ipairs(chosen) do cx[k]:copy(it.crop) end
   -- (a table, a row too few or a list of one number per crop failed on indexing; NaN in softmax, which named no scorer)
   local logp = scorers.classify(cx)
   if not (T.isTensor(logp) and logp:dim() == 2 and logp:size(1) == #chosen and logp:size(2) >= 1) then
      error(('%s: scorers.classify must give log-probabilities [%d, classes] of the %d crops, got %s'):format(call,
            #chosen, #chosen, keys.show(logp)), 2)
   end
   for k, it in ipairs(chosen) do
      it.logp = logp[k]:clone()
      local ok, probs = pcall(metrics.softmax, it.logp, opts.temperature)
      if not ok then
         error(('%s: scorers.classify gave crop %d no log-probabilities: %s'):format(call, k,
               tostring(probs):match('softmax: (.*)') or tostring(probs)), 2)
      end
      it.probs = probs
      local best = 1
      for c = 2, #it.probs do if it.probs[c] > it.probs[best] then best = c end end
      it.class, it.probability = best - 1, it.probs[best]
      it.score = it.sign * it.probability
      local win = it.window
      it.window = {win[1] * sx, win[2] * sy, win[3] * sx, win[4] * sy}
      -- the window's middle lies inside the photo; the box kept inside it where rounding put it 1e-14 beyond
      local b = M.signBox(it.window)
      it.box = {math.max(0, b[1]), math.max(0, b[2]), math.min(W, b[3]), math.min(H, b[4])}
   end
   -- (without a detector every window counts as a sign: none could be told from a part)
   local detections = M.nms(scorers.sign and M.dropParts(chosen, H, W) or chosen, opts.overlap or 0.3)
   return {detections = detections, whole = whole, windows = searched}
end

-- ---- the detector's training windows ---------------------------------------------------------------------
-- scenes: a list of {image = uint8 [H, W, 3], signs = {{box = {x1, y1, x2, y2}}, ...}} (ts.scene.generate's), or an
-- error naming the call and the scene at `level` as error's, counted from the caller
local function check_scenes(scenes, call, level)
   if type(scenes) ~= 'table' then
      error(("%s: scenes must be a list of scenes (ts.scene.generate's), got %s"):format(call, keys.show(scenes)), level + 1)
   end
   for k, s in ipairs(scenes) do
      local img = type(s) == 'table' and s.image
      if not (T.isTensor(img) and img:dtype() == 'uint8' and img:dim() == 3 and img:size(3) == 3 and img:numel() > 0) then
         error(('%s: scene %d has no uint8 image [H, W, 3]'):format(call, k), level + 1)
      end
      if type(s.signs) ~= 'table' then error(('%s: scene %d has no list of signs'):format(call, k), level + 1) end
      for j, sg in ipairs(s.signs) do
         if not is_box(type(sg) == 'table' and sg.box, true) then
            error(('%s: scene %d\'s sign %d has no box {x1, y1, x2, y2}, got %s'):format(call, k, j,
                  keys.show(type(sg) == 'table' and sg.box or sg)), level + 1)
         end
      end
   end
   return scenes
end

-- From generated scenes: positives (label 1) are windows around a sign's crop window, shifted by up to 7% and
-- scaled by 0.88..1.14 (IoU >= 0.6 with it); negatives (label 0) overlap every sign's window by IoU < 0.3:
-- near misses (half or twice the size, or shifted by half a side or more: a sign cut off or lost in its
-- scene) and windows drawn as the search draws them (any scale, anywhere, the whole scene among them).
-- opts: seed, positives (3 per sign), near (3 per sign), random (8 per scene), min (24). Returns uint8
-- x [N, 32, 32, 3], int64 y [N], and each sample's window and scene (index into scenes) as two lists.
local sample_options = {seed = 1, positives = 1, near = 1, random = 1, min = 1}
function M.samples(scenes, opts)
   -- (a misspelt postives was ignored; a nil list or a scene without an image failed on indexing it)
   local call = 'ts.detect.samples(scenes [, opts])'
   check_scenes(scenes, call, 2)
   opts = keys.check('ts.detect.samples', opts or {}, sample_options, 2)
   for _, k in ipairs({'positives', 'near', 'random'}) do
      if opts[k] ~= nil then keys.count(opts[k], call, k, 0, nil, 2) end
   end
   if opts.min ~= nil then keys.sizes(opts.min, call, 'min', 1, 1, 2) end
   require('ts.loader').checkSeed(opts.seed, call, 2)   -- (a NaN seed was refused naming ts.scene.Random)
   -- at most as many windows as a search makes (positives = 1e12 drew windows for ever)
   local asked = 0
   for _, s in ipairs(scenes) do asked = asked + #s.signs * ((opts.positives or 3) + (opts.near or 3)) + (opts.random or 8) end
   if asked > most_windows then
      error(('%s: %s windows asked for (positives and near per sign, random per scene), more than 2^24'):format(call,
            keys.show(asked)), 2)
   end
   local r = scene.Random(opts.seed or 1)
   local smallest = opts.min or 24
   local wins, labels, owners = {}, {}, {}
   for k, s in ipairs(scenes) do
      local h, w = s.image:size(1), s.image:size(2)
      -- a window is cut at the scene's edge below: one that lies beyond it (a near miss of a sign on the edge of a
      -- close-up) has nothing to cut, and failed in the resize
      local function add(win, label)
         if math.min(w, win[3]) - math.max(0, win[1]) > 0 and math.min(h, win[4]) - math.max(0, win[2]) > 0 then
            wins[#wins + 1], labels[#labels + 1], owners[#owners + 1] = win, label, k
         end
      end
      local targets = {}
      for _, sg in ipairs(s.signs) do targets[#targets + 1] = M.window(sg.box) end
      local function best_iou(win)
         local b = 0
         for _, t in ipairs(targets) do b = math.max(b, iou(win, t)) end
         return b
      end
      local function around(t, scale, dx, dy)
         local side = (t[3] - t[1]) * scale
         return square((t[1] + t[3]) / 2 + dx * side, (t[2] + t[4]) / 2 + dy * side, side)
      end
      for _, t in ipairs(targets) do
         for _ = 1, opts.positives or 3 do
            local win = around(t, r:uniform(0.88, 1.14), r:uniform(-0.07, 0.07), r:uniform(-0.07, 0.07))
            if iou(win, t) >= 0.6 then add(win, 1) end
         end
         for _ = 1, opts.near or 3 do
            local kind = r:int(1, 3)
            local win = kind == 1 and around(t, r:uniform(0.4, 0.6), r:uniform(-0.5, 0.5), r:uniform(-0.5, 0.5))
                     or kind == 2 and around(t, r:uniform(1.8, 3), r:uniform(-0.3, 0.3), r:uniform(-0.3, 0.3))
                     or around(t, r:uniform(0.8, 1.2), (r:chance(0.5) and 1 or -1) * r:uniform(0.5, 0.9), r:uniform(-0.6, 0.6))
            if best_iou(win) < 0.3 then add(win, 0) end
         end
      end
      for j = 1, opts.random or 8 do
         local win
         if j == 1 then win = {0, 0, w, h}
         else
            -- (a min beyond the scene drew windows larger than it, cut to it squeezed; the search's are the scene's side)
            local side = r:logUniform(math.min(smallest, h, w), math.min(h, w))
            local x, y = r:uniform(0, w - side), r:uniform(0, h - side)
            win = {x, y, x + side, y + side}
         end
         if best_iou(win) < 0.3 then add(win, 0) end
      end
   end
   -- a window sticking out of its scene is cut at the edge (and squeezed to a square), although the search's
   -- windows that reach beyond a photo repeat its border pixels (M.windows): a detector that learnt them framed
   -- so, with close-ups of a sign at the photo's edge among its scenes, searched worse on every set
   -- (experiments/README.md, scenes.lua)
   local x = T.zeros({#wins, 32, 32, 3}, 'uint8')
   local y = T.zeros({#wins}, 'int64')
   for i, win in ipairs(wins) do
      local img = scenes[owners[i]].image
      local h, w = img:size(1), img:size(2)
      local cut = {math.max(0, win[1]), math.max(0, win[2]), math.min(w, win[3]), math.min(h, win[4])}
      x[i]:copy(image.resize(img, 32, 32, cut))
      y[i] = labels[i]
   end
   return x, y, wins, owners
end

-- ---- the detector: a small network, sign (1) or no sign (0) -----------------------------------------------
local function score_rows(net, pre, x, views)
   local data, train = require('ts.data'), require('ts.train')
   return train.evaluate(net, data.Dataset(x, T.zeros({x:size(1)}, 'int64')),
                         {preprocess = pre, logits = true, tta = views}).logits
end

-- P(sign) of each crop of x (uint8 [N, 32, 32, 3]) by a detector network and its preprocessing, as a list
function M.signScorer(net, pre)
   return function(x)
      local l = score_rows(net, pre, x, 1)
      local p = {}
      for i = 1, x:size(1) do p[i] = metrics.softmax(l[i])[2] end
      return p
   end
end

-- A detector's scan: P(sign) of every window of M.windows' grids at once. Run on a 32x32 crop, a detector
-- whose layers up to its Flatten are convolutions, batch norms, ReLUs and poolings (its trunk) gives a
-- [C, 32/k, 32/k] map, k its trunk's stride; windows a quarter of their side apart are k pixels apart once
-- their scale is shrunk to 32 pixels a side (k = 8: three poolings). So each grid's region of the image is
-- shrunk once (ts.image.resize: the pixels every window's own crop would have), the trunk runs over it once,
-- and each window's [C, 32/k, 32/k] block of the map goes through the rest (the head) as its own crop's map
-- would: about 16 times fewer multiply-adds than a crop each. The one difference from cropping: a window's
-- crop is zero-padded at its edges inside the trunk's convolutions, where the scan sees its neighbours.
-- Returns nil when the network is not such a chain; else scan(img, grids) -> {[grid windows' indices] =
-- P(sign)}, with scan.stride the grid spacing it needs (a fraction of the side).
function M.signScanner(net, pre)
   local nn, data = require('ts.nn'), require('ts.data')
   -- (a nil network or preprocessing failed on indexing it)
   if not (type(net) == 'table' and type(net.__typename) == 'string') then
      error(('ts.detect.signScanner(net, pre): net must be a network (a ts.nn module), got %s'):format(keys.show(net)), 2)
   end
   if not (type(pre) == 'table' and pre.c ~= nil) then
      error(('ts.detect.signScanner(net, pre): pre must be a preprocessing (ts.data.preprocess), got %s'):format(keys.show(pre)), 2)
   end
   if not (net.__typename == 'Sequential') then return nil end
   local trunk, head, in_head = nn.Sequential(), nn.Sequential(), false
   local local_layers = {Conv2d = true, BatchNorm2d = true, ReLU = true, MaxPool2d = true}
   for i = 1, net:size() do
      local m = net:get(i)
      if m.__typename == 'Flatten' then in_head = true end
      if in_head then head:add(m)
      elseif local_layers[m.__typename] then trunk:add(m)
      else return nil end
   end
   if not in_head or trunk:size() == 0 or pre.c.out_h > 0 or pre.c.equalize ~= 0 then return nil end
   trunk:evaluate{fused = true}
   -- the layers run where they are (a detector trained on the GPU stays there); the map's blocks are cut on the host
   local device = net.device or 'cpu'
   local function map_of(img)   -- uint8 [h, w, 3] -> the trunk's map [1, C, h', w'], on the host
      local ds = data.Dataset(img:view(1, img:size(1), img:size(2), img:size(3)), T.zeros({1}, 'int64'))
      return trunk:forward(data.batch(ds, {1}, {preprocess = pre}):to(device)):to('cpu'):contiguous()
   end
   local probe = map_of(T.zeros({32, 32, 3}, 'uint8'))
   local cells = probe:size(3)
   local k = 32 / cells
   if probe:size(4) ~= cells or k % 1 ~= 0 then return nil end
   local channels = probe:size(2)
   local scan = {stride = k / 32}
   setmetatable(scan, {__call = function(_, img, grids)
      -- (the layers are the detector's own: an evaluation of it may have left them in training mode)
      trunk:evaluate{fused = true}
      head:evaluate{fused = true}
      local p = {}
      for _, g in ipairs(grids) do
         local f = 32 / g.side   -- image pixels to the shrunk picture's
         local rw, rh = 32 + k * (g.nx - 1), 32 + k * (g.ny - 1)
         local pic = image.resize(img, rh, rw, {g.x0, g.y0, g.x0 + rw / f, g.y0 + rh / f})
         local map = map_of(pic)   -- [1, C, rh / k, rw / k]
         local mh, mw = map:size(3), map:size(4)
         local n = g.nx * g.ny
         local blocks = T.zeros(n, channels, cells, cells)
         local src, dst = ffi.cast('float *', map:data()), ffi.cast('float *', blocks:data())
         local at = 0
         for j = 0, g.ny - 1 do
            for i = 0, g.nx - 1 do
               for c = 0, channels - 1 do
                  for r = 0, cells - 1 do
                     ffi.copy(dst + at, src + (c * mh + j + r) * mw + i, cells * 4)
                     at = at + cells
                  end
               end
            end
         end
         local logits = head:forward(blocks:to(device)):to('cpu'):contiguous()
         local lp = ffi.cast('float *', logits:data())
         for q = 0, n - 1 do
            local a, b = lp[2 * q], lp[2 * q + 1]
            p[g.first + q] = 1 / (1 + math.exp(a - b))   -- softmax's second of two
         end
      end
      return p
   end})
   return scan
end

-- Hard negatives: in each scene, the search's windows that overlap no sign's window by IoU 0.3 or more
-- and that the detector likes best (after non-maximum suppression), at most per_scene of them and only those
-- above P(sign) `above`. detector: {sign = P(sign) of crops [, scan]} (the search's scorers). Returns uint8
-- [N, 32, 32, 3].
local mine_options = {per_scene = 1, above = 1, step = 1, stride = 1, min = 1, proposals = 1}
function M.mine(scenes, detector, opts)
   -- (a nil detector, or one without sign, failed on indexing it; a misspelt per_scen was ignored)
   local call = 'ts.detect.mine(scenes, detector [, opts])'
   check_scenes(scenes, call, 2)
   if type(detector) ~= 'table' or not callable(detector.sign) or (detector.scan ~= nil and not callable(detector.scan)) then
      error(('%s: detector must be a table {sign [, scan]} of functions (the search\'s scorers), got %s'):format(call,
            keys.show(detector)), 2)
   end
   opts = keys.check('ts.detect.mine', opts or {}, mine_options, 2)
   if opts.per_scene ~= nil then keys.count(opts.per_scene, call, 'per_scene', 0, nil, 2) end
   if opts.proposals ~= nil then keys.count(opts.proposals, call, 'proposals', 1, nil, 2) end
   keys.probability(opts.above, call, 'above (a P(sign))', 2)
   local step, stride, smallest = grid_options(opts, 'ts.detect.mine', 2)
   local picked = {}
   for _, s in ipairs(scenes) do
      local h, w = s.image:size(1), s.image:size(2)
      local targets = {}
      for _, sg in ipairs(s.signs) do targets[#targets + 1] = M.window(sg.box) end
      local wins, grids = make_windows(h, w, step, stride, smallest, 'ts.detect.mine', 2)
      local p = score_windows(s.image, wins, grids, detector, opts, call, 'detector')
      local items = {}
      for k, win in ipairs(wins) do
         local overlap = 0
         for _, t in ipairs(targets) do overlap = math.max(overlap, iou(win, t)) end
         if overlap < 0.3 and p[k] > (opts.above or 0.1) then items[#items + 1] = {window = win, score = p[k]} end
      end
      local chosen = {}
      for k, it in ipairs(M.nms(items, 0.3, opts.per_scene or 6)) do chosen[k] = it.window end
      local x = M.crops(s.image, chosen)
      for k = 1, #chosen do picked[#picked + 1] = x[k] end
   end
   local out = T.zeros({#picked, 32, 32, 3}, 'uint8')
   for k, c in ipairs(picked) do out[k]:copy(c) end
   return out
end

-- images (uint8 [N, 32, 32, 3] tensors) and labels (int64 [N] tensors, or a number for all) as one dataset
local function dataset_of(parts)
   local n = 0
   for _, part in ipairs(parts) do n = n + part.x:size(1) end
   local x, y = T.zeros({n, 32, 32, 3}, 'uint8'), T.zeros({n}, 'int64')
   local at = 0
   for _, part in ipairs(parts) do
      local m = part.x:size(1)
      if m > 0 then
         x[{{at + 1, at + m}}]:copy(part.x)
         if type(part.y) == 'number' then y[{{at + 1, at + m}}]:fill(part.y) else y[{{at + 1, at + m}}]:copy(part.y) end
      end
      at = at + m
   end
   return require('ts.data').Dataset(x, y, {[0] = 'no sign', [1] = 'sign'}, 'scene windows')
end

-- Trains it in two rounds. Round 1 learns from windows of generated scenes whose signs are g.train's crops
-- (M.samples), with the training crops themselves among the positives (a photo that is already a tight crop
-- is a sign). Round 2 starts afresh on the same windows plus the hard negatives round 1's network finds
-- when it searches new scenes (a fifth of them without a sign): a search looks at thousands of windows per
-- photo, so the false alarms that matter are the rare ones. Validation uses scenes of g.valid's crops (no
-- sign picture shared), with their hard negatives mined the same way; opts.valid gives other crops for them (a
-- trainval run's kept validation tracks, so that its held-out tracks, where the "no sign" threshold is fitted, choose
-- nothing before). opts: run (the folder it is saved in), scenes (3000 training scenes; a sixth as many for
-- validation, a tenth for mining), epochs (6 per round), seed, quiet, valid. Returns round 2's ts.train result,
-- then its training and validation datasets.
local train_options = {run = 1, scenes = 1, epochs = 1, seed = 1, quiet = 1, valid = 1}
function M.train(g, opts)
   local data, train = require('ts.data'), require('ts.train')
   opts = keys.check('ts.detect.train', opts or {}, train_options, 2)   -- a misspelt option was ignored
   -- checked before any scene is made (an empty valid failed in the scene generator, after the training scenes)
   scene.checkCrops(type(g) == 'table' and g.train or nil, 'ts.detect.train(g, opts)', 'g.train', 2)
   local valid = scene.checkCrops(opts.valid or g.valid, 'ts.detect.train(g, opts)', opts.valid and 'valid' or 'g.valid', 2)
   -- (scenes = 0 failed on "scene windows holds no images", 2.5 and a NaN seed named ts.scene.generate's n and seed)
   local n = keys.count(opts.scenes or 3000, 'ts.detect.train(g, opts)', 'scenes', 1, nil, 2)
   local seed = keys.count(opts.seed or 1, 'ts.detect.train(g, opts)', 'seed', 0, 2 ^ 53 - 3000, 2)
   -- (epochs = 0 and a run that is no folder name were refused by ts.train only after the scenes were made, the latter
   -- after round 1 had trained)
   keys.count(opts.epochs or 6, 'ts.detect.train(g, opts)', 'epochs', 1, 2 ^ 31, 2)
   keys.flag(opts.quiet, 'ts.detect.train(g, opts)', 'quiet', 2)
   if opts.run ~= nil and type(opts.run) ~= 'string' then
      error(("ts.detect.train(g, opts): run must be a string (the detector's folder), got %s"):format(keys.show(opts.run)), 2)
   end
   local function windows(ds, count, s)
      local x, y = M.samples(scene.generate{n = count, seed = s, signs = ds, empty = 0.2}, {seed = s})
      local crops = math.min(ds:size(), math.ceil(x:size(1) / 6))   -- whole crops: a sixth as many again
      local cx = T.zeros({crops, 32, 32, 3}, 'uint8')
      local r = scene.Random(s + 7)
      -- (crops of another size than 32x32 failed in the copy, after the scenes were made)
      for i = 1, crops do
         local c = ds.x[r:int(1, ds:size())]
         cx[i]:copy((c:size(1) == 32 and c:size(2) == 32) and c or image.resize(c:contiguous(), 32, 32))
      end
      return {x = x, y = y}, {x = cx, y = 1}
   end
   local tw, tc = windows(g.train, n, seed)
   local vw, vc = windows(valid, math.max(1, math.ceil(n / 6)), seed + 1000)
   local tr, va = dataset_of({tw, tc}), dataset_of({vw, vc})
   local mean, std = tr:channelStats()
   local function round(train_set, valid_set, run)
      return train.train{
         model = {name = 'refcnn', classes = 2, widths = {16, 32, 32}, hidden = 64, dropout = 0.3},
         data = {train = train_set, valid = valid_set}, preprocess = data.preprocess{mean = mean, std = std},
         epochs = opts.epochs or 6, batch = 128, lr = 0.05, optimizer = 'sgd', momentum = 0.9, nesterov = true,
         weight_decay = 5e-4, schedule = 'cosine', warmup = 0.5, seed = seed, run = run, quiet = opts.quiet,
         note = 'sign detector',
         augment = data.augment{brightness = 0.3, contrast = 0.3, saturation = 0.2, blur = {0.2, 1.0}, noise = 0.02},
      }
   end
   local first = round(tr, va, nil)
   local detector = {sign = M.signScorer(first.model, first.preprocess),
                     scan = M.signScanner(first.model, first.preprocess)}
   local mined = math.max(1, math.ceil(n / 10))
   local hard_train = M.mine(scene.generate{n = mined, seed = seed + 2000, signs = g.train, empty = 0.2}, detector)
   local hard_valid = M.mine(scene.generate{n = math.max(1, math.ceil(mined / 6)), seed = seed + 3000, signs = valid,
                                            empty = 0.2}, detector)
   if not opts.quiet then
      print(('sign detector: %d hard negatives mined from %d scenes for round 2'):format(hard_train:size(1), mined))
   end
   tr = dataset_of({tw, tc, {x = hard_train, y = 0}})
   va = dataset_of({vw, vc, {x = hard_valid, y = 0}})
   return round(tr, va, opts.run), tr, va
end

-- The search's scorers for a classifier and its preprocessing: classify (with `views` test-time views)
-- and, given a detector's folder (opts.detector), sign (P(sign) of crops) and scan (of a whole grid at once,
-- M.signScanner; not with opts.crops = true). Returns {classify, sign, scan} (sign and scan nil without a
-- detector).
function M.scorers(model, preprocess, opts)
   opts = opts or {}
   local out = {}
   out.classify = function(x) return score_rows(model, preprocess, x, opts.views or 1) end
   if opts.detector then
      local det, config = require('ts.models').load(opts.detector)
      -- P(sign) is the second of two outputs: another run's classifier would give P(its class 1) in its place
      local classes = type(config.model) == 'table' and config.model.classes
      if classes ~= 2 then
         error(('%s is not a sign detector: its model has %s classes, a detector two (no sign, sign)'):format(
            opts.detector, tostring(classes)), 2)
      end
      local pre = require('ts.data').preprocess(config.preprocess)
      out.sign = M.signScorer(det, pre)
      out.scan = not opts.crops and M.signScanner(det, pre) or nil
   end
   return out
end

-- ---- the "no sign" threshold ------------------------------------------------------------------------------
-- A search answers with its best window when that window's score (P(sign) x P(top class)) reaches the
-- threshold, else "no sign found". A scene with a sign is answered right when the best window reaches it
-- and its class is the sign's; a scene without one, when it does not. The threshold chosen maximizes the
-- balanced accuracy 1/2 (right on scenes with a sign + right on scenes without), so that the count of each
-- kind among the validation scenes does not decide it.
-- outcomes: a list of {score = s, empty = true} or {score = s, right = true|false}. Every threshold between
-- two neighbouring scores answers alike, so the candidates are the scores themselves (found: score >= t)
-- and 1, the highest (it finds only scores of 1); the threshold returned lies halfway between the best candidate and the score
-- below it (ties: the lowest such threshold, which finds the most signs). Returns the threshold and the two
-- rates at it: right on scenes with a sign, right on scenes without.
function M.bestThreshold(outcomes)
   local signs, empties = 0, 0
   if type(outcomes) ~= 'table' then   -- (nil failed in ipairs)
      error(('ts.detect.bestThreshold: outcomes must be a list of {score, empty or right}, got %s'):format(keys.show(outcomes)), 2)
   end
   for k, o in ipairs(outcomes) do
      -- a score is P(sign) x P(class): one of -2 gave a threshold below 0, one of 2 one above 1, which nothing reads
      if type(o) ~= 'table' or not (T.isFinite(o.score) and o.score >= 0 and o.score <= 1) then
         error(('ts.detect.bestThreshold: outcome %d has no score in [0, 1], got %s'):format(k,
               keys.show(type(o) == 'table' and o.score or o)), 2)
      end
      if o.empty then empties = empties + 1 else signs = signs + 1 end
   end
   if signs == 0 or empties == 0 then
      error(('ts.detect.bestThreshold: needs scenes with a sign and scenes without (got %d and %d)'):format(
         signs, empties), 2)
   end
   local sorted = {}
   for k, o in ipairs(outcomes) do sorted[k] = o end
   table.sort(sorted, function(a, b) return a.score < b.score end)
   -- the highest threshold, 1: every sign scene is "no sign", every empty one right, but those scoring 1, which 1
   -- finds too (score >= t: a threshold "above them all" of 1 was reported as rejecting the empty scenes that scored
   -- 1, and predict found them)
   local right_signs, right_empty = 0, 0
   for _, o in ipairs(sorted) do if o.empty then right_empty = right_empty + 1 end end
   local i = #sorted
   while i >= 1 and sorted[i].score >= 1 do
      if sorted[i].empty then right_empty = right_empty - 1 elseif sorted[i].right then right_signs = right_signs + 1 end
      i = i - 1
   end
   local best = {value = 0.5 * (right_signs / signs + right_empty / empties), at = i + 1, signs = right_signs / signs,
                 empty = right_empty / empties}
   -- lowering the threshold past sorted[i] (and every equal score) finds those windows
   while i >= 1 do
      local s = sorted[i].score
      while i >= 1 and sorted[i].score == s do
         if sorted[i].empty then
            right_empty = right_empty - 1
         elseif sorted[i].right then
            right_signs = right_signs + 1
         end
         i = i - 1
      end
      local value = 0.5 * (right_signs / signs + right_empty / empties)
      if value >= best.value then
         best = {value = value, at = i + 1, signs = right_signs / signs, empty = right_empty / empties}
      end
   end
   local above = sorted[best.at] and sorted[best.at].score or 1   -- (scores are at most 1)
   local below = best.at > 1 and sorted[best.at - 1].score or 0
   return 0.5 * (above + below), best.signs, best.empty
end

-- Fits the threshold on scenes made from `signs` (the validation crops: a dataset none of the networks
-- learned from), searched as predict searches them: opts.scenes (150) with one sign, half as many without,
-- opts.seed (5000: scenes of their own), opts.search (ts.detect.search's options, the temperature among
-- them). Returns {threshold, sign_right, no_sign, scenes, empty, temperature}.
local fit_options = {scenes = 1, seed = 1, search = 1}
function M.fitThreshold(scorers, signs, opts)
   -- (a misspelt scene = 20 was ignored: the threshold fitted on 150 scenes; 0 failed in bestThreshold)
   local call = 'ts.detect.fitThreshold(scorers, signs [, opts])'
   opts = keys.check('ts.detect.fitThreshold', opts or {}, fit_options, 2)
   local n, seed = keys.count(opts.scenes or 150, call, 'scenes', 1, nil, 2), keys.count(opts.seed or 5000, call, 'seed', 0, 2 ^ 53 - 1, 2)
   local outcomes = {}
   for _, s in ipairs(scene.generate{n = n, seed = seed, signs = signs, per_scene = {1, 1}}) do
      local best = M.search(s.image, scorers, opts.search).detections[1]
      outcomes[#outcomes + 1] = {score = best.score, right = best.class == s.signs[1].class}
   end
   local empty = math.max(1, math.ceil(n / 2))
   for _, s in ipairs(scene.generate{n = empty, seed = seed + 1, signs = signs, empty = 1}) do
      outcomes[#outcomes + 1] = {score = M.search(s.image, scorers, opts.search).detections[1].score, empty = true}
   end
   local t, sign_right, no_sign = M.bestThreshold(outcomes)
   return {threshold = t, sign_right = sign_right, no_sign = no_sign, scenes = n, empty = empty,
           temperature = opts.search and opts.search.temperature or 1}
end

-- run, or an error naming the call (what) at its caller's caller unless it is a run's folder name (nil failed in a
-- concatenation): fitRun's, describeFit's and threshold's
local function check_run(run, what)
   if type(run) ~= 'string' then error(("%s: run must be a string (the run's folder), got %s"):format(what, keys.show(run)), 3) end
   return run
end

-- Fits the threshold of a finished run that has its detector (run/detector): its classifier at the
-- temperature and views of its calibration.json, on scenes of the validation images it did not train on (all of
-- g.valid, or a trainval run's held-out tracks: experiment.heldOut); writes run/search.json. opts: scenes, seed
-- (M.fitThreshold's). Returns the fit.
function M.fitRun(run, g, opts)
   local files, json, models = require('ts.files'), require('ts.json'), require('ts.models')
   local call = 'ts.detect.fitRun(run, g [, opts])'
   check_run(run, call)
   opts = keys.check('ts.detect.fitRun', opts or {}, {scenes = 1, seed = 1}, 2)   -- (a misspelt option was ignored)
   -- checked before the run's networks load, as M.fitThreshold checks them (whose name its errors gave)
   if opts.scenes ~= nil then keys.count(opts.scenes, call, 'scenes', 1, nil, 2) end
   if opts.seed ~= nil then keys.count(opts.seed, call, 'seed', 0, 2 ^ 53 - 1, 2) end
   local unseen = require('ts.experiment').heldOut(run, json.readFile(run .. '/final.json'), g, 'the "no sign" threshold')
   local model, config = models.load(run)
   local temperature, views = require('ts.experiment').readCalibration(run)
   local scorers = M.scorers(model, require('ts.data').preprocess(config.preprocess),
                             {detector = run .. '/detector', views = views})
   local fit = M.fitThreshold(scorers, unseen, {scenes = opts.scenes, seed = opts.seed,
                                                 search = {temperature = temperature}})
   fit.detector, fit.views, fit.search = 'detector', views, M.version
   files.writeFile(run .. '/search.json', json.encode(fit))
   return fit
end

-- One line for a person: the fitted threshold and what it answers right on the scenes of unseen validation images
function M.describeFit(run, fit)
   local call = 'ts.detect.describeFit(run, fit)'   -- (a nil fit failed on indexing it, a field in the format)
   check_run(run, call)
   if type(fit) ~= 'table' then error(("%s: fit must be a table (ts.detect.fitRun's), got %s"):format(call, tostring(fit)), 2) end
   -- (a NaN threshold, a rate of 5 or a count of 1.5 were printed as 500.0% of -9223372036854775808 scenes)
   for _, k in ipairs({'threshold', 'sign_right', 'no_sign'}) do
      if type(fit[k]) ~= 'number' then error(('%s: fit.%s must be a number, got %s'):format(call, k, keys.show(fit[k])), 2) end
      if not (fit[k] >= 0 and fit[k] <= 1) then error(('%s: fit.%s must be in [0, 1], got %s'):format(call, k, keys.show(fit[k])), 2) end
   end
   for _, k in ipairs({'scenes', 'empty'}) do keys.count(fit[k], call, 'fit.' .. k, 0, nil, 2) end
   return ('%s/search.json: "no sign" below P(sign) x P(class) %.3f, fitted on scenes of unseen validation images: %.1f%% of %d scenes '
           .. 'with a sign found and read right, %.1f%% of %d without one said "no sign"'):format(
      run, fit.threshold, 100 * fit.sign_right, fit.scenes, 100 * fit.no_sign, fit.empty)
end

-- The threshold predict and scenes.lua use for a run: the one fitted for the run's own detector (own = true)
-- at the temperature and number of views the search now uses, kept in run/search.json; else 0.5, and why
-- as a second value.
function M.threshold(run, own, temperature, views)
   local json = require('ts.json')
   check_run(run, 'ts.detect.threshold(run, own, temperature, views)')
   local fit = json.readFile(run .. '/search.json')
   if not fit then
      return 0.5, ('%s has no search.json (scripts/detector.lua %s fits the threshold)'):format(run, run)
   end
   local t = type(fit) == 'table' and fit.threshold
   -- (0 is bestThreshold's when finding every scene, their lowest score 0, answers the most right: it was refused here)
   if not (type(t) == 'number' and t >= 0 and t <= 1) then error(('%s/search.json: no threshold in [0, 1]'):format(run), 0) end
   -- the temperature and views fitted at, missing in a file of an earlier search (1 each); one that is there but no
   -- such number was taken as 1 and the threshold used for a search it may not have been fitted for
   if fit.temperature ~= nil and not (T.isFinite(fit.temperature) and fit.temperature > 0) then
      error(('%s/search.json: temperature must be a number > 0, got %s'):format(run, keys.show(fit.temperature)), 0)
   end
   require('ts.train').checkViews(fit.views == nil and 1 or fit.views, run .. '/search.json', 'views', 0)
   if not own then
      return 0.5, ('%s/search.json holds the threshold of its own detector, not of this one'):format(run)
   end
   if fit.search ~= M.version then
      return 0.5, ('%s/search.json was fitted for an earlier search (scripts/detector.lua %s fit_only=true fits it '
                   .. 'again)'):format(run, run)
   end
   if math.abs((fit.temperature or 1) - (temperature or 1)) > 1e-6 then
      return 0.5, ('%s/search.json was fitted at temperature %s, the run is now calibrated to %s'):format(
         run, tostring(fit.temperature), tostring(temperature))
   end
   if (fit.views or 1) ~= (views or 1) then
      return 0.5, ('%s/search.json was fitted with %s view(s), the search now uses %d'):format(
         run, tostring(fit.views), views or 1)
   end
   return t
end

return M
