-- ts.image: image files and resampling; images are uint8 tensors [H, W, C].
--   ts.image.load(path [, channels = 3])       PNG, JPEG, PPM, BMP, ... (stb_image), at most
--                                                ts.image.pixelLimit() pixels
--   ts.image.resize(img, h, w [, roi])           area/bilinear resampling (as Pillow's BILINEAR);
--                                                roi = {x1, y1, x2, y2} crops first (end exclusive); it
--                                                may reach beyond the image by up to its size, where the
--                                                border pixels repeat; one that misses it is an error
--   ts.image.save(path, img)                     PNG (JPEG, BMP, TGA by the extension; another one is an
--                                                error); float [C,H,W] images in 0..1 are converted
--   ts.image.drawBox(img, box [, rgb, thickness])   a rectangle's outline, in place
--   ts.image.encodePng(img)                      the PNG file's bytes, as a Lua string (the same conversion)
local ffi = require('ffi')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local C, check = cffi.C, cffi.check
local keys = require('ts.keys')

local image = {}

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
   if not T.isTensor(img) or img:dim() ~= 3 then error('ts.image.resize: expected an image [H,W,C]', 2) end
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
-- end exclusive, clipped to the image), rgb (red), thickness in pixels (2); returns the image
function image.drawBox(img, box, rgb, thickness)
   if not T.isTensor(img) or img:dim() ~= 3 or img:dtype() ~= 'uint8' or img:size(3) ~= 3 or not img:isContiguous() then
      error('ts.image.drawBox: expected a contiguous uint8 image [H,W,3]', 2)
   end
   rgb, thickness = rgb or {255, 0, 0}, thickness or 2
   if type(box) ~= 'table' then error('ts.image.drawBox: box must be {x1, y1, x2, y2}, got ' .. type(box), 2) end
   for i = 1, 4 do
      if not T.isFinite(box[i]) then error(('ts.image.drawBox: box[%d] must be a finite number, got %s'):format(i, tostring(box[i])), 2) end
   end
   if not T.isFinite(thickness) or thickness < 1 then
      error('ts.image.drawBox: thickness must be a number >= 1, got ' .. tostring(thickness), 2)
   end
   if type(rgb) ~= 'table' then error('ts.image.drawBox: rgb must be {r, g, b}, got ' .. type(rgb), 2) end
   -- (NaN and 2.5 were written as the FFI cut them)
   for i = 1, 3 do keys.count(rgb[i], 'ts.image.drawBox', ('rgb[%d]'):format(i), 0, 255, 2) end
   local h, w = img:size(1), img:size(2)
   local o = ffi.cast('uint8_t *', img:data())
   local x1, y1 = math.floor(box[1] + 0.5), math.floor(box[2] + 0.5)
   local x2, y2 = math.floor(box[3] + 0.5) - 1, math.floor(box[4] + 0.5) - 1
   for y = math.max(0, y1), math.min(h - 1, y2) do
      for x = math.max(0, x1), math.min(w - 1, x2) do
         if x < x1 + thickness or x > x2 - thickness or y < y1 + thickness or y > y2 - thickness then
            for c = 0, 2 do o[(y * w + x) * 3 + c] = rgb[c + 1] end
         end
      end
   end
   return img
end

-- a float [C,H,W] tensor in 0..1 as a uint8 image [H,W,C]; a uint8 image as it is. Other integer dtypes are
-- refused: read as 0..1 floats, 3 became 255
local function as_bytes(img, what)
   if not T.isTensor(img) then error(('%s: expected an image tensor, got %s'):format(what, type(img)), 3) end
   if img:dtype() == 'uint8' then return img:contiguous() end
   if img:dtype() ~= 'float32' and img:dtype() ~= 'float64' then
      error(('%s: an image is uint8 [H,W,C] or float [C,H,W] in 0..1, got %s %s (:byte() or :float():div(255) first)')
            :format(what, img:dtype(), tostring(img:size())), 3)
   end
   if img:dim() ~= 3 or img:size(1) < 1 or img:size(1) > 4 then
      error(('%s: a float image is [C,H,W] with 1 to 4 channels, got %s'):format(what, tostring(img:size())), 3)
   end
   return (img:float() * 255):clamp(0, 255):add_(0.5):floor_():transpose(1, 2):transpose(2, 3):contiguous():byte()
end

-- a float [C,H,W] tensor in 0..1 (or uint8 [H,W,C]) as an image file (PNG, or JPEG/BMP/TGA by the extension)
local SAVED_AS = {png = 1, jpg = 1, jpeg = 1, bmp = 1, tga = 1}
function image.save(path, img)
   cffi.path(path, 'ts.image.save(path, img)')
   -- the format is the extension's; a file without one (a device such as /dev/stdout) is PNG
   local ext = path:match('%.([^./]+)$')
   if ext and not SAVED_AS[ext:lower()] then
      error(('ts.image.save: %s: .%s is not a format it writes (png, jpg, jpeg, bmp, tga)'):format(path, ext), 2)
   end
   check(C.ts_image_save(path, as_bytes(img, 'ts.image.save(path, img)')._c))
   return path
end

function image.encodePng(img)
   local png = T.wrap(C.ts_image_encode_png(as_bytes(img, 'ts.image.encodePng(img)')._c))
   return ffi.string(png:data(), png:numel())
end

-- a contact sheet: a batch x [B,C,H,W] (float) as one uint8 image [rows*(H+pad), cols*(W+pad), 3];
-- opts: cols (8), pad (2), mean/std to undo a standardization, scale (integer upscaling, 1)
function image.grid(x, opts)
   opts = opts or {}
   -- every write below goes through a raw pointer: sizes that do not add up would write outside the picture
   if not T.isTensor(x) or x:dim() ~= 4 or x:size(1) < 1 or x:size(2) < 1 or x:size(2) > 4 or x:size(3) < 1 or
      x:size(4) < 1 then
      error('ts.image.grid: expected images [B, C, H, W] with B >= 1, 1 to 4 channels and H, W >= 1, got ' ..
            (T.isTensor(x) and tostring(x:size()) or type(x)), 2)
   end
   local b, c, h, w = x:size(1), x:size(2), x:size(3), x:size(4)
   local cols, pad, zoom = opts.cols or 8, opts.pad or 2, opts.scale or 1
   for name, v in pairs({cols = cols, pad = pad, scale = zoom}) do
      local least = name == 'pad' and 0 or 1
      if type(v) ~= 'number' or v % 1 ~= 0 or v < least or v > 4096 then
         error(('ts.image.grid: %s must be a whole number from %d to 4096, got %s'):format(name, least, tostring(v)), 2)
      end
   end
   for _, name in ipairs({'mean', 'std'}) do
      local v = opts[name]
      if v ~= nil and (type(v) ~= 'table' or #v < 1 or #v > 4) then
         error(('ts.image.grid: %s must be a list of 1 to 4 numbers (one per channel), got %s'):format(name, tostring(v)), 2)
      end
      for i = 1, v and #v or 0 do
         if not T.isFinite(v[i]) then error(('ts.image.grid: %s[%d] must be a finite number, got %s'):format(name, i, tostring(v[i])), 2) end
      end
   end
   cols = math.min(cols, b)   -- no more columns than images, as torchvision's make_grid
   local rows = math.ceil(b / cols)
   local H, W = rows * (h * zoom + pad) + pad, cols * (w * zoom + pad) + pad
   local out = T.zeros({H, W, 3}, 'uint8'):fill(opts.background or 255)
   -- uint8 images are 0..255, float ones 0..1
   local src = x:dtype() == 'uint8' and x:float():div(255):contiguous() or x:float():contiguous()
   local p = ffi.cast('float *', src:data())
   local o = ffi.cast('uint8_t *', out:data())
   local mean, std = opts.mean or {0, 0, 0}, opts.std or {1, 1, 1}
   for i = 0, b - 1 do
      local r, q = math.floor(i / cols), i % cols
      local y0, x0 = pad + r * (h * zoom + pad), pad + q * (w * zoom + pad)
      for ch = 0, 2 do
         local sc = math.min(ch, c - 1)
         local m, s = mean[sc + 1] or mean[1], std[sc + 1] or std[1]
         for yy = 0, h * zoom - 1 do
            for xx = 0, w * zoom - 1 do
               local v = p[((i * c + sc) * h + math.floor(yy / zoom)) * w + math.floor(xx / zoom)] * s + m
               v = math.floor(v * 255 + 0.5)
               o[((y0 + yy) * W + x0 + xx) * 3 + ch] = v < 0 and 0 or v > 255 and 255 or v
            end
         end
      end
   end
   return out
end

-- feature maps [B,C,H,W] as a picture: one row per image, its first `channels` maps side by side, each
-- map scaled to its own range (so weak and strong maps are both visible), enlarged to about 64 pixels
function image.activationGrid(maps, channels)
   if not T.isTensor(maps) or maps:dim() ~= 4 or maps:numel() == 0 then
      error('ts.image.activationGrid: expected feature maps [B, C, H, W] with no empty dim, got ' ..
            (T.isTensor(maps) and tostring(maps:size()) or type(maps)), 2)
   end
   local b, c, h, w = maps:size(1), maps:size(2), maps:size(3), maps:size(4)
   local show = math.min(c, channels or 8)
   local tiles = T.zeros(b * show, 1, h, w)
   for k = 1, b do
      for ch = 1, show do
         local plane = maps[k][ch]:contiguous()
         local lo, hi = plane:min(), plane:max()
         tiles[(k - 1) * show + ch][1]:copy((plane - lo) / math.max(hi - lo, 1e-6))
      end
   end
   return image.grid(tiles, {cols = show, scale = math.max(2, math.floor(64 / h)), pad = 1})
end

return image
