-- ts.scene: generated street scenes with traffic signs at known boxes, for the sign search of
-- scripts/predict.lua (its "no sign here" detector learns from them) and for measuring it.
--   ts.scene.Random(seed)                       a small deterministic generator (r:uniform(a, b), r:int(a, b))
--   ts.scene.background(r, h, w)                a procedural street: sky and clouds, horizon, buildings with
--                                                windows, trees, a road or grass, poles, cars; uint8 [h, w, 3]
--   ts.scene.paste(img, sign, x, y, size [, opts]) a sign picture (uint8 [h, w, 3] crop, or [h, w, 4] with alpha)
--                                                drawn into img at (x, y) (0-based, top left) size pixels wide;
--                                                returns the sign's box {x1, y1, x2, y2} (end exclusive)
--   ts.scene.weather(r, img [, opts])            lighting (gain, gamma, colour cast, dusk), fog, rain, blur and
--                                                sensor noise over the whole image, in place
--   ts.scene.generate(opts)                     a list of scenes {image, signs = {{class, box}, ...}}
--   ts.scene.closeups(scenes, seed)             those scenes cut to photos their first sign fills most of
-- A GTSRB crop shows its sign with a margin of about 13% on every side (the test set's boxes: the sign is
-- 74% of the crop's width on average), so a crop's box is its inner part; an icon's box is where its alpha is.
local ffi = require('ffi')
local T = require('ts.tensor')
local image = require('ts.image')
local keys = require('ts.keys')
local loader = require('ts.loader')

local M = {}
M.cropMargin = 0.13

-- ---- argument checks ---------------------------------------------------------------------------------------
-- Errors that name the function and the argument, where a nil or a string reached arithmetic or indexing deep inside
-- ("attempt to index a nil value"); level as error's, counted from the function that checks.

local show = keys.show

local function whole(v) return T.isFinite(v) and v % 1 == 0 end

-- a seed: the loader's check (a whole number from 0 to 2^53, as ts.train's: the detector draws its scenes from the
-- run's seed plus offsets), or nil for 1. Random's state is seed % (2^31 - 2) + 1: seeds below 2^31 - 2 each give
-- their own draws. (NaN made every draw NaN; a string was read by tonumber; 1.5 gave seed 1's draws)
local check_seed = loader.checkSeed

-- ---- a deterministic generator: Park and Miller's minimal standard, exact in doubles ----------------------
local Random = {}
Random.__index = Random
function M.Random(seed)
   check_seed(seed, 'ts.scene.Random(seed)', 2)
   local s = (seed or 1) % 2147483646 + 1
   return setmetatable({s = s}, Random)
end

-- the generator argument: a ts.scene.Random
local function check_random(r, call, level)
   if getmetatable(r) ~= Random then
      error(('%s: r must be a ts.scene.Random, got %s'):format(call, tostring(r)), level + 1)
   end
end

function Random:next()
   self.s = self.s * 16807 % 2147483647
   return (self.s - 1) / 2147483646
end
function Random:uniform(a, b) return a + (b - a) * self:next() end
function Random:int(a, b) return math.min(b, a + math.floor((b - a + 1) * self:next())) end
function Random:logUniform(a, b) return math.exp(self:uniform(math.log(a), math.log(b))) end
function Random:chance(p) return self:next() < p end
function Random:normal()   -- Box-Muller
   return math.sqrt(-2 * math.log(1 - self:next())) * math.cos(2 * math.pi * self:next())
end

-- ---- a float canvas: p[(y * w + x) * 3 + c] in 0..255 ----------------------------------------------------
local function canvas(h, w) return {h = h, w = w, p = ffi.new('float[?]', h * w * 3)} end

local function from_image(img)
   local h, w = img:size(1), img:size(2)
   local cv = canvas(h, w)
   local src = ffi.cast('uint8_t *', img:contiguous():data())
   for i = 0, h * w * 3 - 1 do cv.p[i] = src[i] end
   return cv
end

-- the most pixels a scene has: as many as ts.image.load takes from a photo (ts.image.pixelLimit()), and no more than
-- the float canvas the scene is drawn on holds (12 bytes a pixel in LuaJIT's largest C array, 2^31 bytes). h x w, or
-- an error naming the call at `level` as error's, counted from the caller (a scene of 2^30 x 2^30 failed in ffi.new
-- with "size of C type is unknown or too large", one of 10000 x 10000 drew for minutes a scene no photo can be). what:
-- 'scene' (the default) or 'sign' (one pasted, resized whole first)
local function check_pixels(h, w, call, level, what)
   local most = math.min(image.pixelLimit(), math.floor((2 ^ 31 - 1) / 12))
   if h * w > most then
      error(('%s: a %s of %dx%d pixels is more than the %d pixels one may have (ts.image.pixelLimit())'):format(call,
            what or 'scene', w, h, most), level + 1)
   end
end

-- what the functions that write into a scene image take: a contiguous uint8 [H, W, 3] (they write through its
-- pointer: an expanded view or a column slice had pixels written outside it), and a sign's uint8 [h, w, 3 or 4]
local function check_scene(img, what)
   if not T.isTensor(img) or img:dtype() ~= 'uint8' or img:dim() ~= 3 or img:size(3) ~= 3 or not img:isContiguous()
      or img:numel() == 0 then
      error(('%s: the scene must be a contiguous uint8 image [H, W, 3], got %s'):format(what, T.isTensor(img) and
            ('%s %s%s'):format(img:dtype(), tostring(img:size()), img:isContiguous() and '' or ' (not contiguous)') or type(img)), 3)
   end
   check_pixels(img:size(1), img:size(2), what, 3)   -- (its float canvas)
end

-- the canvas rounded and clipped into img (uint8 [h, w, 3], contiguous); returns img
local function write_back(cv, img)
   local o = ffi.cast('uint8_t *', img:data())
   for i = 0, cv.h * cv.w * 3 - 1 do
      local v = cv.p[i]
      o[i] = v < 0 and 0 or v > 255 and 255 or math.floor(v + 0.5)
   end
   return img
end

local function to_image(cv) return write_back(cv, T.zeros({cv.h, cv.w, 3}, 'uint8')) end

-- smooth value noise in -1..1 as a float array [h * w]: a grid of random values, cells `cell` pixels wide,
-- resampled bilinearly to h x w (ts.image.resize), `octaves` of halving cells added with halving weights
local function noise(r, h, w, cell, octaves)
   local out = ffi.new('float[?]', h * w)
   local weight, total = 1, 0
   for _ = 1, octaves or 1 do
      local gh, gw = math.max(2, math.ceil(h / cell) + 1), math.max(2, math.ceil(w / cell) + 1)
      local grid = T.zeros({gh, gw, 1}, 'uint8')
      local gp = ffi.cast('uint8_t *', grid:data())
      for i = 0, gh * gw - 1 do gp[i] = r:int(0, 255) end
      local up = ffi.cast('uint8_t *', image.resize(grid, h, w):data())
      for i = 0, h * w - 1 do out[i] = out[i] + weight * (up[i] / 127.5 - 1) end
      total, weight, cell = total + weight, weight / 2, math.max(1, cell / 2)
   end
   for i = 0, h * w - 1 do out[i] = out[i] / total end
   return out
end

local function clampi(v, lo, hi) return v < lo and lo or v > hi and hi or v end

-- fills the pixels where inside(x, y) holds, within the box, with colour rgb varied by texture t
-- (a noise array over the whole canvas, or nil) of strength `amount`
local function fill(cv, x1, y1, x2, y2, rgb, t, amount, inside)
   x1, y1 = clampi(math.floor(x1), 0, cv.w), clampi(math.floor(y1), 0, cv.h)
   x2, y2 = clampi(math.ceil(x2), 0, cv.w), clampi(math.ceil(y2), 0, cv.h)
   local p, w = cv.p, cv.w
   for y = y1, y2 - 1 do
      for x = x1, x2 - 1 do
         if not inside or inside(x, y) then
            local k = (y * w + x) * 3
            local f = t and 1 + amount * t[y * w + x] or 1
            p[k], p[k + 1], p[k + 2] = rgb[1] * f, rgb[2] * f, rgb[3] * f
         end
      end
   end
end

local function jitter(r, rgb, amount)
   local out = {}
   for c = 1, 3 do out[c] = clampi(rgb[c] * (1 + r:uniform(-amount, amount)), 0, 255) end
   return out
end

-- ---- the street ----------------------------------------------------------------------------------------
local skies = {{{70, 130, 210}, {190, 215, 240}}, {{150, 160, 170}, {210, 212, 215}},
               {{40, 70, 140}, {240, 170, 110}}, {{110, 170, 230}, {230, 235, 245}}}
local walls = {{170, 150, 130}, {200, 190, 170}, {120, 110, 100}, {150, 60, 50}, {220, 215, 200},
               {90, 100, 115}, {180, 170, 120}, {140, 140, 140}}
local cars = {{200, 30, 30}, {30, 40, 160}, {230, 230, 230}, {25, 25, 28}, {120, 120, 125}, {220, 180, 30},
              {30, 120, 60}}

-- ds, if it is a dataset (the loader's check) of at least one crop [N, h, w, C] to paste into scenes, else an error
-- naming the call and the argument at `level` as error's (counted from the caller)
function M.checkCrops(ds, call, name, level)
   loader.checkDataset(ds, call, name, level + 1)
   if ds.x:dim() ~= 4 or ds:size() < 1 then
      error(('%s: %s must hold at least one image [N, h, w, C], got %s'):format(call, name, ds:size() < 1 and
            'none' or 'images ' .. tostring(ds.x:size())), level + 1)
   end
   -- RGB: a dataset holds 1 or 3 channels, and grey crops [N, h, w, 1] failed in the paste, after the scenes before
   -- it were made
   if ds.x:size(4) ~= 3 then
      error(('%s: %s must hold RGB images [N, h, w, 3], got images %s'):format(call, name, tostring(ds.x:size())), level + 1)
   end
   return ds
end

function M.background(r, h, w)
   check_random(r, 'ts.scene.background(r, h, w)', 2)
   keys.sizes(h, 'ts.scene.background(r, h, w)', 'h', 1, 1, 2)
   keys.sizes(w, 'ts.scene.background(r, h, w)', 'w', 1, 1, 2)
   check_pixels(h, w, 'ts.scene.background(r, h, w)', 2)
   local cv = canvas(h, w)
   local p = cv.p
   local horizon = math.floor(h * r:uniform(0.35, 0.65))
   -- sky: a vertical gradient with clouds
   local sky = skies[r:int(1, #skies)]
   local clouds, cover = noise(r, h, w, w / r:uniform(2, 6), 3), r:uniform(0, 0.8)
   for y = 0, horizon - 1 do
      local f = y / math.max(horizon - 1, 1)
      for x = 0, w - 1 do
         local k, c = (y * w + x) * 3, math.max(0, clouds[y * w + x] + cover - 0.5) * 1.6
         for ch = 0, 2 do
            local v = sky[1][ch + 1] * (1 - f) + sky[2][ch + 1] * f
            p[k + ch] = v + (235 - v) * math.min(1, c)
         end
      end
   end
   -- ground: asphalt or grass, with lane marks on a road
   local fine = noise(r, h, w, 3, 2)
   local road = r:chance(0.7)
   local ground = road and jitter(r, {95, 95, 98}, 0.25) or jitter(r, {80, 130, 55}, 0.25)
   fill(cv, 0, horizon, w, h, ground, fine, road and 0.12 or 0.3)
   if road then
      local cx = w * r:uniform(0.3, 0.7)
      for y = horizon, h - 1 do
         local half = (y - horizon) / (h - horizon) * w * 0.02 + 1
         if math.floor((y - horizon) / 8) % 2 == 0 then fill(cv, cx - half, y, cx + half, y + 1, {225, 225, 215}) end
      end
   end
   -- buildings standing on the horizon, with rows of windows
   local texture = noise(r, h, w, 6, 2)
   local x = r:uniform(-w * 0.1, w * 0.1)
   while x < w and r:chance(0.85) do
      local bw, bh = w * r:uniform(0.12, 0.35), h * r:uniform(0.1, 0.45)
      local top = horizon - bh
      fill(cv, x, top, x + bw, horizon, jitter(r, walls[r:int(1, #walls)], 0.2), texture, 0.15)
      local glass = r:chance(0.5) and {60, 80, 100} or {200, 210, 220}
      local step = r:uniform(7, 16)
      for wy = top + step * 0.5, horizon - step, step do
         for wx = x + step * 0.4, x + bw - step * 0.8, step do fill(cv, wx, wy, wx + step * 0.5, wy + step * 0.55, glass) end
      end
      x = x + bw + r:uniform(0, w * 0.08)
   end
   -- trees: textured green crowns on trunks
   for _ = 1, r:int(0, 4) do
      local tx, rad = r:uniform(0, w), h * r:uniform(0.06, 0.2)
      local ty = horizon - rad * r:uniform(0.8, 1.6)
      fill(cv, tx - rad * 0.08, ty, tx + rad * 0.08, horizon + rad * 0.1, {70, 50, 35})
      local leaves = jitter(r, {50, 100, 40}, 0.35)
      fill(cv, tx - rad, ty - rad, tx + rad, ty + rad, leaves, texture, 0.5, function(px, py)
         return (px - tx) ^ 2 + (py - ty) ^ 2 <= rad * rad * (1 + 0.3 * texture[py * w + px])
      end)
   end
   -- cars on the road, with red tail lights (a red that is not a sign)
   for _ = 1, road and r:int(0, 3) or 0 do
      local cw = w * r:uniform(0.1, 0.3)
      local ch = cw * r:uniform(0.4, 0.6)
      local cx, cy = r:uniform(-cw * 0.3, w - cw * 0.7), horizon + (h - horizon) * r:uniform(0.1, 0.7)
      fill(cv, cx, cy - ch, cx + cw, cy, jitter(r, cars[r:int(1, #cars)], 0.1), texture, 0.08)
      fill(cv, cx + cw * 0.15, cy - ch * 0.95, cx + cw * 0.85, cy - ch * 0.55, {70, 85, 95})
      fill(cv, cx + cw * 0.03, cy - ch * 0.45, cx + cw * 0.13, cy - ch * 0.3, {220, 20, 20})
      fill(cv, cx + cw * 0.87, cy - ch * 0.45, cx + cw * 0.97, cy - ch * 0.3, {220, 20, 20})
      fill(cv, cx + cw * 0.1, cy - ch * 0.12, cx + cw * 0.3, cy + ch * 0.08, {20, 20, 20})
      fill(cv, cx + cw * 0.7, cy - ch * 0.12, cx + cw * 0.9, cy + ch * 0.08, {20, 20, 20})
   end
   -- poles, lamp posts
   for _ = 1, r:int(0, 3) do
      local px, pw = r:uniform(0, w), math.max(1, w * r:uniform(0.004, 0.012))
      fill(cv, px, h * r:uniform(0, 0.4), px + pw, h * r:uniform(0.6, 1), jitter(r, {110, 110, 115}, 0.3))
   end
   return to_image(cv)
end

-- ---- signs ----------------------------------------------------------------------------------------------
-- draws sign (uint8 [sh, sw, 3 or 4]) into img (uint8 [h, w, 3]) as a square of `size` pixels at (x, y);
-- an RGB crop's outer `feather` pixels blend into the scene (no hard seam), an RGBA icon blends by alpha.
-- opts.pole draws a grey post under the sign first. Returns the sign's box {x1, y1, x2, y2}.
function M.paste(img, sign, x, y, size, opts)
   opts = opts or {}
   check_scene(img, 'ts.scene.paste')
   if not T.isTensor(sign) or sign:dtype() ~= 'uint8' or sign:dim() ~= 3 or (sign:size(3) ~= 3 and sign:size(3) ~= 4) then
      error('ts.scene.paste: the sign must be a uint8 image [h, w, 3 or 4], got ' ..
            (T.isTensor(sign) and ('%s %s'):format(sign:dtype(), tostring(sign:size())) or type(sign)), 2)
   end
   for _, v in ipairs({{x, 'x'}, {y, 'y'}, {size, 'size'}}) do
      if not T.isFinite(v[1]) then error(('ts.scene.paste: %s must be a finite number, got %s'):format(v[2], tostring(v[1])), 2) end
   end
   -- (a size of 0, or one that rounds down to it, was drawn 2 pixels wide)
   if size < 1 then error(('ts.scene.paste: size must be a number of pixels >= 1, got %s'):format(tostring(size)), 2) end
   size = math.max(2, math.floor(size))
   check_pixels(size, size, 'ts.scene.paste', 2, 'sign')   -- (1e9 failed as an out-of-memory naming nothing)
   local h, w, channels = img:size(1), img:size(2), sign:size(3)
   if x >= w or y >= h or x + size <= 0 or y + size <= 0 then   -- its box would come back inverted
      error(('ts.scene.paste: a sign of %d pixels at (%g, %g) lies outside the %dx%d scene'):format(size, x, y, w, h), 2)
   end
   if opts.pole then
      local cv = from_image(img)
      local pw = math.max(1, size * 0.06)
      fill(cv, x + size / 2 - pw / 2, y + size * 0.9, x + size / 2 + pw / 2, h, {120, 120, 125})
      write_back(cv, img)
   end
   local small = image.resize(sign:contiguous(), size, size)
   local s, o = ffi.cast('uint8_t *', small:data()), ffi.cast('uint8_t *', img:data())
   local feather = opts.feather or math.max(1, math.floor(size * 0.06))
   local bx1, by1, bx2, by2 = math.huge, math.huge, -math.huge, -math.huge
   for yy = 0, size - 1 do
      for xx = 0, size - 1 do
         local ix, iy = x + xx, y + yy
         if ix >= 0 and iy >= 0 and ix < w and iy < h then
            local a
            if channels == 4 then a = s[(yy * size + xx) * 4 + 3] / 255
            else a = math.min(1, (math.min(xx, yy, size - 1 - xx, size - 1 - yy) + 1) / (feather + 1)) end
            if a > 0 then
               local k, q = (iy * w + ix) * 3, (yy * size + xx) * channels
               for c = 0, 2 do o[k + c] = math.floor(o[k + c] * (1 - a) + s[q + c] * a + 0.5) end
               if channels == 4 and a > 0.5 then
                  bx1, by1, bx2, by2 = math.min(bx1, ix), math.min(by1, iy), math.max(bx2, ix + 1), math.max(by2, iy + 1)
               end
            end
         end
      end
   end
   if channels == 4 then
      if bx1 == math.huge then return {x, y, x + size, y + size} end
      return {bx1, by1, bx2, by2}
   end
   local m = M.cropMargin * size
   return {math.max(0, x + m), math.max(0, y + m), math.min(w, x + size - m), math.min(h, y + size - m)}
end

-- ---- lighting and weather --------------------------------------------------------------------------------
-- opts: gain {lo, hi} (log-uniform, {0.45, 1.8}), fog (probability 0.25), rain (0.2), night (0.15),
-- blur (0.3), noise (sigma up to 8)
local weather_options = {gain = 1, fog = 1, rain = 1, night = 1, blur = 1, noise = 1}
-- those options checked before a pixel changes (a negative gain made every pixel negative, black; a probability of 2
-- or a NaN sigma went through); call: the name errors give
local function check_weather(o, call, level)
   keys.check(call, o, weather_options, level + 1)
   local g = o.gain
   if g ~= nil and not (type(g) == 'table' and T.isFinite(g[1]) and T.isFinite(g[2]) and g[1] > 0 and g[1] <= g[2]) then
      error(('%s: gain must be {lo, hi} with 0 < lo <= hi, finite, got %s'):format(call, show(g)), level + 1)
   end
   for _, k in ipairs({'fog', 'rain', 'night', 'blur'}) do keys.probability(o[k], call, k, level + 1) end
   if o.noise ~= nil and not (T.isFinite(o.noise) and o.noise >= 0) then
      error(('%s: noise must be a finite sigma >= 0, got %s'):format(call, tostring(o.noise)), level + 1)
   end
end

function M.weather(r, img, opts)
   check_random(r, 'ts.scene.weather(r, img [, opts])', 2)
   opts = opts or {}
   if type(opts) ~= 'table' then error(('ts.scene.weather(r, img [, opts]): opts must be a table, got %s'):format(tostring(opts)), 2) end
   check_scene(img, 'ts.scene.weather')
   check_weather(opts, 'ts.scene.weather', 2)
   local h, w = img:size(1), img:size(2)
   local cv = from_image(img)
   local p, n = cv.p, h * w
   local gain = r:logUniform((opts.gain or {0.45, 1.8})[1], (opts.gain or {0.45, 1.8})[2])
   local night = r:chance(opts.night or 0.15)
   if night then gain = gain * 0.35 end
   local gamma, cast = r:uniform(0.75, 1.35), {r:uniform(0.85, 1.15), r:uniform(0.9, 1.1), r:uniform(0.85, 1.15)}
   local fog = r:chance(opts.fog or 0.25) and r:uniform(0.15, 0.6) or 0
   local fog_rgb = r:uniform(170, 225)
   for i = 0, n - 1 do
      for c = 0, 2 do
         local v = 255 * (p[i * 3 + c] / 255) ^ gamma * gain * cast[c + 1]
         p[i * 3 + c] = v * (1 - fog) + fog_rgb * fog
      end
   end
   if r:chance(opts.rain or 0.2) then   -- light slanted streaks
      local slant = r:uniform(-0.3, 0.3)
      for _ = 1, math.floor(n / r:uniform(150, 400)) do
         local sx, sy, len = r:uniform(0, w), r:uniform(0, h), r:uniform(4, 12)
         for t = 0, len do
            local ix, iy = math.floor(sx + slant * t), math.floor(sy + t)
            if ix >= 0 and ix < w and iy >= 0 and iy < h then
               for c = 0, 2 do local k = (iy * w + ix) * 3 + c; p[k] = p[k] * 0.6 + 200 * 0.4 end
            end
         end
      end
   end
   local sigma = r:uniform(0, opts.noise or 8) + (night and 6 or 0)
   if sigma > 0 then for i = 0, n * 3 - 1 do p[i] = p[i] + sigma * r:normal() end end
   write_back(cv, img)
   if r:chance(opts.blur or 0.3) then   -- out of focus or moving: down and up again by the area filter
      local f = r:uniform(1.3, 2.2)
      img:copy(image.resize(image.resize(img, math.max(1, math.floor(h / f)), math.max(1, math.floor(w / f))), h, w))
   end
   return img
end

-- ---- whole scenes ----------------------------------------------------------------------------------------
-- opts: n (scenes), seed, height (240), width (320), signs = a dataset (uint8 x [N, 32, 32, 3], y) to take
-- the signs from, icons = a list of {image = uint8 [h, w, 4], class} (either or both: each sign is an icon
-- with probability opts.icon_share, 0.5 when both), per_scene ({1, 2}: a range), size ({18, 110}: the pasted
-- square's side in pixels, log-uniform, cut to the scene's short side, which a given lo may not exceed), empty (0: the
-- share of scenes without a sign), weather (options for M.weather, or false for none).
-- Signs do not overlap one another. Returns {{image, signs = {{class, box, source}, ...}}, ...}, source being
-- 'crop <index>' or 'icon'.
local generate_options = {n = 1, seed = 1, height = 1, width = 1, signs = 1, icons = 1, icon_share = 1, per_scene = 1,
                          size = 1, empty = 1, weather = 1}
function M.generate(opts)
   local call = 'ts.scene.generate'
   keys.check(call, opts, generate_options, 2)   -- per_scen = {1, 1} was ignored: scenes of one or two signs
   -- the options checked before a scene is made (a size of 0 pasted signs of nothing, icon_share without icons
   -- indexed nil)
   local n = opts.n or 1
   keys.count(n, call, 'n', 0, nil, 2)
   check_seed(opts.seed, call, 2)
   local H, W = opts.height or 240, opts.width or 320
   keys.sizes(H, call, 'height', 1, 1, 2)
   keys.sizes(W, call, 'width', 1, 1, 2)
   check_pixels(H, W, call, 2)
   local size = opts.size or {18, 110}
   if not (type(size) == 'table' and T.isFinite(size[1]) and T.isFinite(size[2]) and size[1] >= 1 and size[1] <= size[2]) then
      error(('%s: size must be {lo, hi} pixels with 1 <= lo <= hi, got %s'):format(call, show(size)), 2)
   end
   -- a sign is at most the scene's short side: with a given lo beyond it, every sign was drawn at that side, none as
   -- asked (the default range is cut to the scene, as before: a small scene still gets signs)
   if opts.size and size[1] > math.min(H, W) then
      error(('%s: size %s asks for signs larger than the %dx%d scene: lo must be at most its short side, %d'):format(call,
            show(size), W, H, math.min(H, W)), 2)
   end
   local per = opts.per_scene or {1, 2}
   if not (type(per) == 'table' and whole(per[1]) and whole(per[2]) and per[1] >= 0 and per[1] <= per[2]) then
      error(('%s: per_scene must be {lo, hi}, whole numbers with 0 <= lo <= hi, got %s'):format(call, show(per)), 2)
   end
   -- a scene holds at most the signs of 2 pixels (the least drawn) that fit side by side: no more are tried, and a lo
   -- above them is an error at once (per_scene = {1e9, 1e9} tried to place a billion signs, 20 times each, first)
   local most = math.max(1, math.floor(H / 2) * math.floor(W / 2))
   if per[1] > most then
      error(('%s: per_scene %s asks for more signs than the %dx%d scene holds (%d of 2 pixels)'):format(call, show(per),
            W, H, most), 2)
   end
   keys.probability(opts.empty, call, 'empty', 2)
   keys.probability(opts.icon_share, call, 'icon_share', 2)
   if not opts.signs and not opts.icons then error('ts.scene.generate: give signs (a dataset) or icons', 2) end
   local crops, icons = opts.signs, opts.icons   -- (signs in the loop below are a scene's)
   if crops then M.checkCrops(crops, call, 'signs', 2) end
   if icons then
      local ok = type(icons) == 'table' and #icons >= 1
      for _, icon in ipairs(ok and icons or {}) do
         ok = ok and type(icon) == 'table' and T.isTensor(icon.image) and type(icon.class) == 'number'
      end
      if not ok then
         error(('%s: icons must be a non-empty list of {image, class} (ts.scene.icons), got %s'):format(call, tostring(icons)), 2)
      end
      -- each icon one paste can draw, of a whole class, with something opaque to draw: a float, grey or empty
      -- image failed in the paste after the scenes before it were made, a NaN class was recorded, and a transparent
      -- icon was recorded as a sign filling its square where nothing was drawn
      for k, icon in ipairs(icons) do
         local im = icon.image
         if not (im:dtype() == 'uint8' and im:dim() == 3 and (im:size(3) == 3 or im:size(3) == 4) and im:numel() > 0) then
            error(('%s: icon %d\'s image must be uint8 [h, w, 3 or 4], got %s %s'):format(call, k, im:dtype(),
                  tostring(im:size())), 2)
         end
         if im:size(3) == 4 and im:select(3, 4):max() <= 127 then
            error(('%s: icon %d is transparent (no alpha above 127): nothing of it would be drawn'):format(call, k), 2)
         end
         keys.count(icon.class, call, ('icon %d\'s class'):format(k), 0, nil, 2)
      end
   end
   local icon_share = opts.icon_share or (icons and crops and 0.5) or (icons and 1) or 0
   if icon_share > 0 and not icons then error(('%s: icon_share %g needs icons'):format(call, icon_share), 2) end
   if icon_share < 1 and not crops then
      error(('%s: icon_share %g needs signs (a dataset) for the rest'):format(call, icon_share), 2)
   end
   if opts.weather ~= nil and opts.weather ~= false then
      if type(opts.weather) ~= 'table' then
         error(('%s: weather must be a table of ts.scene.weather options or false, got %s'):format(call,
               tostring(opts.weather)), 2)
      end
      check_weather(opts.weather, call .. ': weather', 2)
   end
   local r = M.Random(opts.seed or 1)
   local scenes = {}
   for k = 1, n do
      local img = M.background(r, H, W)
      local signs, placed = {}, {}
      local count = r:chance(opts.empty or 0) and 0 or math.min(most, r:int(per[1], per[2]))
      for _ = 1, count do
         for _ = 1, 20 do   -- a place that overlaps no other sign
            local s = math.min(math.floor(r:logUniform(size[1], size[2])), H, W)
            local x, y = r:int(0, W - s), r:int(0, math.max(0, math.floor(H * 0.8) - s))
            -- the square paste draws: at least 2 pixels (a sign of 1 was drawn over its neighbour, off its box)
            local drawn = math.max(2, s)
            local free = true
            for _, q in ipairs(placed) do
               if x < q[3] and q[1] < x + drawn and y < q[4] and q[2] < y + drawn then free = false end
            end
            if free then
               local sign, class, source
               if r:chance(icon_share) then
                  local icon = opts.icons[r:int(1, #opts.icons)]
                  sign, class, source = icon.image, icon.class, 'icon'
               else
                  local i = r:int(1, opts.signs:size())
                  sign, class, source = opts.signs.x[i], tonumber(opts.signs.y[i]), 'crop ' .. i
               end
               local box = M.paste(img, sign, x, y, s, {pole = r:chance(0.6)})
               placed[#placed + 1] = {x, y, x + drawn, y + drawn}
               signs[#signs + 1] = {class = class, box = box, source = source}
               break
            end
         end
      end
      -- (fewer signs than per_scene's least, where they did not fit, were a scene with fewer without a word)
      if #signs < count and #signs < per[1] then
         error(('%s: scene %d has room for %d of the %d signs per_scene asks for at least (%d tries each, sizes %s in a '
                .. '%dx%d scene): give smaller signs, fewer, or a larger scene'):format(call, k, #signs, per[1], 20, show(size),
                W, H), 2)
      end
      if opts.weather ~= false then M.weather(r, img, opts.weather) end
      scenes[k] = {image = img, signs = signs}
   end
   return scenes
end

-- Close-ups: photos a sign fills most of, as a person takes them of a sign in front of them. Each scene cut
-- to a rectangle (aspect 3:4 to 4:3) whose short side its first sign's box spans 60-100% of, the sign anywhere
-- in it (on each axis half the time with its edge on the photo's); the cut stays inside the scene. Other signs
-- of the scene are not kept track of: give scenes of one sign each (per_scene = {1, 1}). Returns scenes as
-- M.generate does, each with the one sign.
function M.closeups(scenes, seed)
   if type(scenes) ~= 'table' then
      error(("ts.scene.closeups(scenes [, seed]): scenes must be a list of scenes (ts.scene.generate's), got %s"):format(
            tostring(scenes)), 2)
   end
   check_seed(seed, 'ts.scene.closeups', 2)
   local r, out = M.Random(seed or 1), {}
   for k, s in ipairs(scenes) do
      if type(s) ~= 'table' or not T.isTensor(s.image) or s.image:dim() ~= 3 then
         error(('ts.scene.closeups: scene %d has no image [H, W, 3]'):format(k), 2)
      end
      if type(s.signs) ~= 'table' then error(('ts.scene.closeups: scene %d has no list of signs'):format(k), 2) end
      local sign = s.signs[1]
      if not sign then error('ts.scene.closeups: a scene without a sign has no close-up', 2) end
      local box = type(sign) == 'table' and sign.box
      -- inside its image, x1 < x2 and y1 < y2 (one beyond it was cut as a photo without the sign and a box outside it,
      -- an inverted one failed in the indexing)
      if not (type(box) == 'table' and T.isFinite(box[1]) and T.isFinite(box[2]) and T.isFinite(box[3]) and T.isFinite(box[4])
              and 0 <= box[1] and box[1] < box[3] and box[3] <= s.image:size(2) and 0 <= box[2] and box[2] < box[4]
              and box[4] <= s.image:size(1)) then
         error(('ts.scene.closeups: scene %d\'s first sign has no box {x1, y1, x2, y2} inside its %dx%d image, got %s'):format(
               k, s.image:size(2), s.image:size(1), show(box)), 2)
      end
      local b, H, W = sign.box, s.image:size(1), s.image:size(2)
      local side = math.max(b[3] - b[1], b[4] - b[2])
      local short = math.min(side / r:uniform(0.6, 1), H, W)
      local aspect = r:uniform(0.75, 4 / 3)
      local cw = math.floor(math.min(W, math.max(short * aspect, short)) + 0.5)
      local ch = math.floor(math.min(H, math.max(short / aspect, short)) + 0.5)
      -- the cut's left and top: any place that keeps the sign inside it and the cut inside the scene
      local function place(lo_sign, hi_sign, extent, total)
         local lo, hi = math.max(0, math.ceil(hi_sign) - extent), math.min(total - extent, math.floor(lo_sign))
         if hi < lo then return math.max(0, math.min(total - extent, math.floor((lo_sign + hi_sign - extent) / 2))) end
         return r:chance(0.5) and (r:chance(0.5) and lo or hi) or math.floor(r:uniform(lo, hi) + 0.5)
      end
      local x0, y0 = place(b[1], b[3], cw, W), place(b[2], b[4], ch, H)
      out[#out + 1] = {image = s.image[{{y0 + 1, y0 + ch}, {x0 + 1, x0 + cw}}]:contiguous(),
                       signs = {{class = sign.class, source = sign.source,
                                 box = {b[1] - x0, b[2] - y0, b[3] - x0, b[4] - y0}}}}
   end
   return out
end

-- the class icons of a folder of NN.png files (RGBA; GTSRB's Meta pictures): {{image, class}, ...}
function M.icons(dir)
   local out = {}
   for class = 0, 99 do
      local path = ('%s/%02d.png'):format(dir, class)
      local f = io.open(path, 'rb')
      if f then
         f:close()
         out[#out + 1] = {image = image.load(path, 4), class = class}
      end
   end
   if #out == 0 then error(('ts.scene.icons: no NN.png icons in %s'):format(dir), 2) end
   return out
end

return M
