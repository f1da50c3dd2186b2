-- ts.image: image files and resampling; images are uint8 tensors [H, W, C].
--   ts.image.load(path [, channels = 3])       PNG, JPEG, PPM, BMP, ... (stb_image), at most
--                                                ts.image.pixelLimit() pixels
--   ts.image.resize(img, h, w [, roi])           area/bilinear resampling (as Pillow's BILINEAR);
--                                                roi = {x1, y1, x2, y2} crops first (end exclusive); it
--                                                may reach beyond the image by up to its size, where the
--                                                border pixels repeat; one that misses it is an error
--   ts.image.save(path, img)                     PNG (JPEG, BMP, TGA by the extension; another one is an
--                                                error); float [C,H,W] images in 0..1 are converted (NaN
--                                                is written as 0), [H,W] ones are grayscale; JPEG keeps
--                                                no alpha channel, nor does BMP beside grey
--   ts.image.drawBox(img, box [, rgb, thickness])   a rectangle's outline, in place
--   ts.image.encodePng(img)                      the PNG file's bytes, as a Lua string (the same conversion)
--   ts.image.grid(x [, opts]), ts.image.activationGrid(maps [, channels]), ts.image.rescale(t): pictures of
--                                                batches and feature maps (below)
local ffi = require('ffi')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check
local keys = require('ts.keys')

local image = {}

-- a value as errors show it: a tensor by its dtype, shape and device (what an image's checks look at)
local function described(v)
   return T.isTensor(v) and ('%s %s on %s'):format(v:dtype(), tostring(v:size()), v:device()) or keys.show(v)
end

function image.load(path, channels)
   cffi.path(path, 'ts.image.load(path)')
   -- (2.5 was cut to 2 channels by the FFI, a string an FFI error)
   if channels ~= nil then keys.count(channels, 'ts.image.load(path [, channels])', 'channels', 0, 4, 2) end
   return T.wrap(C.ts_image_load(path, channels or 3))
end

-- ts.image.pixelLimit([n]): the largest width x height load accepts (checked from the file's header before
-- decoding); n sets it; returns the limit in force
function image.pixelLimit(n)
   if n ~= nil and (type(n) ~= 'number' or n < 1 or n % 1 ~= 0 or n >= 2 ^ 53) then
      error('ts.image.pixelLimit(n): n must be a whole number from 1 to 2^53, got ' .. tostring(n), 2)
   end
   return tonumber(C.ts_image_pixel_limit(n or 0))
end

local roi_buf = ffi.new('double[4]')
function image.resize(img, h, w, roi)
   if not T.isTensor(img) or img:dim() ~= 3 or img:dtype() ~= 'uint8' then
      error('ts.image.resize: expected a uint8 image [H,W,C], got ' .. described(img), 2)
   end
   -- sizes C's ints hold (2^32 + 5 rows became 5, the rest left black), a region of four numbers (a short one
   -- was an FFI error)
   keys.count(h, 'ts.image.resize(img, h, w [, roi])', 'h', 1, 2 ^ 30, 2)
   keys.count(w or h, 'ts.image.resize(img, h, w [, roi])', 'w', 1, 2 ^ 30, 2)
   local r = nil
   if roi then
      if type(roi) ~= 'table' or type(roi[1]) ~= 'number' or type(roi[2]) ~= 'number' or type(roi[3]) ~= 'number' or
         type(roi[4]) ~= 'number' then
         error('ts.image.resize(img, h, w [, roi]): roi must be four numbers {x1, y1, x2, y2}, got ' .. keys.show(roi), 2)
      end
      for i = 1, 4 do roi_buf[i - 1] = roi[i] end
      r = roi_buf
   end
   local out = T.zeros({h, w or h, img:size(3)}, 'uint8')
   check(C.ts_image_resize(out._c, img:contiguous()._c, r))
   return out
end

-- draws a rectangle's outline into a uint8 image [H,W,3] in place: box = {x1, y1, x2, y2} in pixels (0-based,
-- end exclusive, clipped to the image; x1 <= x2 and y1 <= y2, as torchvision's draw_bounding_boxes wants them: corners
-- given the other way round drew nothing), rgb (red), thickness in pixels (2); returns the image. A view is drawn
-- into through a dense copy, as PyTorch's in-place operations write through one.
function image.drawBox(img, box, rgb, thickness)
   if not T.isTensor(img) or img:dim() ~= 3 or img:dtype() ~= 'uint8' or img:size(3) ~= 3 or img:device() ~= 'cpu' then
      error('ts.image.drawBox: expected a uint8 image [H,W,3] on the CPU, got ' .. described(img), 2)
   end
   rgb, thickness = rgb or {255, 0, 0}, thickness or 2
   if type(box) ~= 'table' then error('ts.image.drawBox: box must be {x1, y1, x2, y2}, got ' .. type(box), 2) end
   for i = 1, 4 do
      if not T.isFinite(box[i]) then error(('ts.image.drawBox: box[%d] must be a finite number, got %s'):format(i, tostring(box[i])), 2) end
   end
   if box[3] < box[1] or box[4] < box[2] then
      error(('ts.image.drawBox: box must be {x1, y1, x2, y2} with x1 <= x2 and y1 <= y2, got {%s, %s, %s, %s}')
            :format(box[1], box[2], box[3], box[4]), 2)
   end
   if not T.isFinite(thickness) or thickness < 1 then
      error('ts.image.drawBox: thickness must be a number >= 1, got ' .. keys.show(thickness), 2)
   end
   if type(rgb) ~= 'table' then error('ts.image.drawBox: rgb must be {r, g, b}, got ' .. type(rgb), 2) end
   -- (NaN and 2.5 were written as the FFI cut them)
   for i = 1, 3 do keys.count(rgb[i], 'ts.image.drawBox', ('rgb[%d]'):format(i), 0, 255, 2) end
   local dense = img:contiguous()
   local h, w = img:size(1), img:size(2)
   local o = ffi.cast('uint8_t *', dense:data())
   local x1, y1 = math.floor(box[1] + 0.5), math.floor(box[2] + 0.5)
   local x2, y2 = math.floor(box[3] + 0.5) - 1, math.floor(box[4] + 0.5) - 1
   for y = math.max(0, y1), math.min(h - 1, y2) do
      for x = math.max(0, x1), math.min(w - 1, x2) do
         if x < x1 + thickness or x > x2 - thickness or y < y1 + thickness or y > y2 - thickness then
            for c = 0, 2 do o[(y * w + x) * 3 + c] = rgb[c + 1] end
         end
      end
   end
   if not img:isContiguous() then img:copy(dense) end
   return img
end

-- a float [C,H,W] tensor in 0..1 as a uint8 image [H,W,C], NaN as 0; a uint8 image as it is; an [H,W] image of
-- either as grayscale, as PIL and torchvision's save_image take one (it was refused); on the CPU (a GPU tensor was
-- refused, where torchvision's save_image copies it). Other integer dtypes are refused: read as 0..1 floats, 3
-- became 255
local function as_bytes(img, what)
   if not T.isTensor(img) then error(('%s: expected an image tensor, got %s'):format(what, type(img)), 3) end
   img = img:cpu()
   if img:dim() == 2 and (img:dtype() == 'uint8' or img:dtype():match('^float')) then
      local h, w = img:size(1), img:size(2)
      img = img:dtype() == 'uint8' and img:contiguous():view(h, w, 1) or img:contiguous():view(1, h, w)
   end
   if img:dtype() == 'uint8' then
      if img:dim() ~= 3 or img:size(3) < 1 or img:size(3) > 4 then
         error(('%s: a uint8 image is [H,W,C] with 1 to 4 channels, got %s%s'):format(what, tostring(img:size()),
               img:dim() == 3 and img:size(1) <= 4 and ' (channels first? :permute(2, 3, 1) first)' or ''), 3)
      end
      return img:contiguous()
   end
   if img:dtype() ~= 'float32' and img:dtype() ~= 'float64' then
      error(('%s: an image is uint8 [H,W,C] or float [C,H,W] in 0..1, got %s %s (:byte() or :float():div(255) first)')
            :format(what, img:dtype(), tostring(img:size())), 3)
   end
   if img:dim() ~= 3 or img:size(1) < 1 or img:size(1) > 4 then
      error(('%s: a float image is [C,H,W] with 1 to 4 channels, got %s'):format(what, tostring(img:size())), 3)
   end
   -- (the conversion to uint8 saturates and takes NaN as 0)
   return (img:float() * 255):clamp(0, 255):add_(0.5):floor_():transpose(1, 2):transpose(2, 3):contiguous():byte()
end

-- a float [C,H,W] tensor in 0..1 (or uint8 [H,W,C], or [H,W] of either) as an image file (PNG, or JPEG/BMP/TGA by
-- the extension)
local SAVED_AS = {png = 1, jpg = 1, jpeg = 1, bmp = 1, tga = 1}
-- the formats whose headers hold each side in 16 bits: stb wrote a JPEG 70,000 pixels wide as one 4,464 wide
local SIDE_LIMIT = {jpg = 65535, jpeg = 65535, tga = 65535}
function image.save(path, img)
   cffi.path(path, 'ts.image.save(path, img)')
   -- the format is the extension's; a file without one (a device such as /dev/stdout) is PNG
   local ext = path:match('%.([^./]+)$')
   if ext and not SAVED_AS[ext:lower()] then
      error(('ts.image.save: %s: .%s is not a format it writes (png, jpg, jpeg, bmp, tga)'):format(path, ext), 2)
   end
   local bytes = as_bytes(img, 'ts.image.save(path, img)')
   local limit = ext and SIDE_LIMIT[ext:lower()]
   if limit and math.max(bytes:size(1), bytes:size(2)) > limit then
      error(('ts.image.save: %s: a .%s image is at most %d pixels a side, got %dx%d (PNG holds more)'):format(path,
            ext, limit, bytes:size(1), bytes:size(2)), 2)
   end
   check(C.ts_image_save(path, bytes._c))
   return path
end

-- the same image as the bytes of a PNG file, and the height, width and channels it holds
function image.encodePng(img)
   local bytes = as_bytes(img, 'ts.image.encodePng(img)')
   local png = T.wrap(C.ts_image_encode_png(bytes._c))
   return ffi.string(png:data(), png:numel()), bytes:size(1), bytes:size(2), bytes:size(3)
end

-- a contact sheet: a batch x [B,C,H,W] (float in 0..1, or uint8 in 0..255) as one uint8 image
-- [rows*(H+pad), cols*(W+pad), 3]; opts: cols (8), pad (2), mean/std to undo a standardization, scale (integer
-- upscaling, 1), background (the padding's grey, 255). Channels as image files hold them: 1 grey, 2 grey and alpha,
-- 3 RGB, 4 RGBA; the alpha is not drawn. NaN is drawn as 0 (black), values beyond the range as its ends.
local GRID_OPTIONS = {cols = true, pad = true, mean = true, std = true, scale = true, background = true}
function image.grid(x, opts)
   opts = keys.check('ts.image.grid', opts or {}, GRID_OPTIONS, 2)
   -- every write below goes through a raw pointer: sizes that do not add up would write outside the picture
   if not T.isTensor(x) or x:dim() ~= 4 or x:size(1) < 1 or x:size(2) < 1 or x:size(2) > 4 or x:size(3) < 1 or
      x:size(4) < 1 then
      -- (a uint8 batch as the data sets hold it, [B,H,W,C], is named)
      local last = T.isTensor(x) and x:dtype() == 'uint8' and x:dim() == 4 and x:size(4) <= 4 and x:size(2) > 4
      error('ts.image.grid: expected images [B, C, H, W] with B >= 1, 1 to 4 channels and H, W >= 1, got ' ..
            (T.isTensor(x) and tostring(x:size()) or keys.show(x)) ..
            (last and ' (channels last? :permute(1, 4, 2, 3) first)' or ''), 2)
   end
   -- (an integer tensor was read as 0..1 floats: a label map of 1s and 3s came out white)
   if x:dtype() ~= 'uint8' and x:dtype() ~= 'float32' and x:dtype() ~= 'float64' then
      error(('ts.image.grid: images are float in 0..1 or uint8, got %s (:float():div(255) first)'):format(x:dtype()), 2)
   end
   local b, c, h, w = x:size(1), x:size(2), x:size(3), x:size(4)
   local cols, pad, zoom = opts.cols or 8, opts.pad or 2, opts.scale or 1
   keys.count(cols, 'ts.image.grid', 'cols', 1, 4096, 2)
   keys.count(pad, 'ts.image.grid', 'pad', 0, 4096, 2)
   keys.count(zoom, 'ts.image.grid', 'scale', 1, 4096, 2)
   local background = keys.count(opts.background or 255, 'ts.image.grid', 'background', 0, 255, 2)
   for _, name in ipairs({'mean', 'std'}) do
      local v = opts[name]
      if v ~= nil and (type(v) ~= 'table' or #v < 1 or #v > 4) then
         error(('ts.image.grid: %s must be a list of 1 to 4 numbers (one per channel), got %s'):format(name, keys.show(v)), 2)
      end
      for i = 1, v and #v or 0 do
         if not T.isFinite(v[i]) then error(('ts.image.grid: %s[%d] must be a finite number, got %s'):format(name, i, tostring(v[i])), 2) end
      end
   end
   cols = math.min(cols, b)   -- no more columns than images, as torchvision's make_grid
   local rows = math.ceil(b / cols)
   local H, W = rows * (h * zoom + pad) + pad, cols * (w * zoom + pad) + pad
   local out = T.zeros({H, W, 3}, 'uint8'):fill(background)
   -- uint8 images are 0..255, float ones 0..1; on the CPU (make_grid takes a GPU batch as well)
   local src = x:cpu():float()
   src = (x:dtype() == 'uint8' and src:div(255) or src):contiguous()
   local p = ffi.cast('float *', src:data())
   local o = ffi.cast('uint8_t *', out:data())
   local mean, std = opts.mean or {0, 0, 0}, opts.std or {1, 1, 1}
   for i = 0, b - 1 do
      local r, q = math.floor(i / cols), i % cols
      local y0, x0 = pad + r * (h * zoom + pad), pad + q * (w * zoom + pad)
      for ch = 0, 2 do
         -- red, green and blue: the grey channel of 1 or 2 (grey and alpha; its alpha was drawn as green and blue)
         local sc = c < 3 and 0 or ch
         local m, s = mean[sc + 1] or mean[1], std[sc + 1] or std[1]
         for yy = 0, h * zoom - 1 do
            for xx = 0, w * zoom - 1 do
               local v = p[((i * c + sc) * h + math.floor(yy / zoom)) * w + math.floor(xx / zoom)] * s + m
               v = math.floor(v * 255 + 0.5)
               -- (NaN fails both tests: 0, said here rather than left to the FFI's conversion)
               o[((y0 + yy) * W + x0 + xx) * 3 + ch] = v >= 0 and (v > 255 and 255 or v) or 0
            end
         end
      end
   end
   return out
end

-- t (a real tensor of any shape, on any device) as float32 on the CPU in 0..1, scaled by the range of its finite
-- values: lowest 0, highest 1, a tensor of one value all 0; NaN and infinities come back NaN (drawn black by grid).
-- (Scaled by min and max, one NaN made the whole map NaN, one infinity all of it 0 or NaN; a range under 1e-6 was
-- divided by 1e-6 instead and came out dark.)
function image.rescale(t)
   if not T.isTensor(t) then error('ts.image.rescale: expected a tensor, got ' .. keys.show(t), 2) end
   local src = t:cpu():double():contiguous()
   local out = T.zeros(t:size())
   local p, q, n = ffi.cast('double *', src:data()), ffi.cast('float *', out:data()), src:numel()
   local lo, hi = math.huge, -math.huge
   for i = 0, n - 1 do
      local v = p[i]
      if v > -math.huge and v < math.huge then lo, hi = math.min(lo, v), math.max(hi, v) end
   end
   -- halves where the range is more than a double holds (float64 values of both signs near 1.8e308)
   local k = hi - lo == math.huge and 0.5 or 1
   for i = 0, n - 1 do
      local v = p[i]
      if not (v > -math.huge and v < math.huge) then q[i] = 0 / 0
      elseif hi > lo then q[i] = (v * k - lo * k) / (hi * k - lo * k)
      else q[i] = 0 end
   end
   return out
end

-- feature maps [B,C,H,W] as a picture: one row per image, its first `channels` (8) maps side by side, each map
-- scaled to its own range (image.rescale: weak and strong maps are both visible), enlarged to about 64 pixels.
-- NaN and infinite values are red (scaled with the rest, one NaN blacked out its whole map).
function image.activationGrid(maps, channels)
   if not T.isTensor(maps) or maps:dim() ~= 4 or maps:numel() == 0 then
      error('ts.image.activationGrid: expected feature maps [B, C, H, W] with no empty dim, got ' .. described(maps), 2)
   end
   -- (0 channels failed in grid, 2.5 and -1 in making the tiles)
   keys.count(channels or 8, 'ts.image.activationGrid(maps [, channels])', 'channels', 1, nil, 2)
   local b, c, h, w = maps:size(1), maps:size(2), maps:size(3), maps:size(4)
   local show = math.min(c, channels or 8)
   local shown = maps:narrow(2, 1, show):cpu()   -- one copy of the channels drawn, not one per plane
   local tiles = T.zeros(b * show, 3, h, w)
   local n = h * w
   for k = 1, b do
      for ch = 1, show do
         local plane = image.rescale(shown[k][ch])
         local p, q = ffi.cast('float *', plane:data()), ffi.cast('float *', tiles[(k - 1) * show + ch]:data())
         for i = 0, n - 1 do
            local v = p[i]
            if v ~= v then q[i], q[n + i], q[2 * n + i] = 1, 0, 0
            else q[i], q[n + i], q[2 * n + i] = v, v, v end
         end
      end
   end
   return image.grid(tiles, {cols = show, scale = math.max(2, math.floor(64 / h)), pad = 1})
end

return image
