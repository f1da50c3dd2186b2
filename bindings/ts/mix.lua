-- ts.data.mix{mixup = alpha, cutmix = alpha, prob = 1, switch = 0.5}: MixUp and CutMix of a training
-- batch, as timm's Mixup does them in batch mode (Zhang et al. 2018; Yun et al. 2019).
--
-- Each step, with probability prob, the batch x [N, C, H, W] is mixed with itself in reverse order (image i
-- with image N + 1 - i; the loader's order is already random), by one of
--   mixup:  x_i <- lam x_i + (1 - lam) x_(N+1-i),          lam ~ Beta(alpha, alpha)
--   cutmix: a box of about (1 - lam) H W pixels, the same for the whole batch, taken from x_(N+1-i), and
--           lam set to the share of the image left outside the box (the box is clipped at the edges)
-- (switch: the probability of cutmix when both are given). The loss is the same mixture of the criterion
-- on either label, lam L(out, y) + (1 - lam) L(out, y reversed), which for cross-entropy is the loss of the
-- mixed one-hot target (label smoothing, class weights and all). Train accuracy counts the label that
-- weighs more. The draws come from the training generator (ts.manualSeed, saved in checkpoints), so a run
-- resumes as it would have gone on; recipes without mix draw nothing.
local T = require('ts.tensor')
local keys = require('ts.keys')
local ffi = require('ffi')
local C = require('ts.ffi').C

local M = {}
local Mix = {}
Mix.__index = Mix

local finite = T.isFinite

local known = {mixup = 1, cutmix = 1, prob = 1, switch = 1}

function M.new(o)
   if type(o) ~= 'table' then error('mix: settings must be a table {mixup = alpha, cutmix = alpha, prob, switch}', 2) end
   keys.check('mix', o, known, 2, 'setting')
   local m = setmetatable({settings = o, mixup = o.mixup or 0, cutmix = o.cutmix or 0, prob = o.prob or 1,
                           switch = o.switch or 0.5}, Mix)
   for _, k in ipairs({'mixup', 'cutmix'}) do
      if not finite(m[k]) or m[k] < 0 then
         error(('mix: %s must be a Beta parameter alpha >= 0 (0: off), got %s'):format(k, keys.show(m[k])), 2)
      end
   end
   if m.mixup == 0 and m.cutmix == 0 then error('mix: give mixup or cutmix an alpha above 0', 2) end
   for _, k in ipairs({'prob', 'switch'}) do keys.probability(m[k], 'mix', k, 2) end
   return m
end

-- Gamma(a, 1) by Marsaglia and Tsang's method; below a = 1 through Gamma(a + 1) U^(1/a)
local function gamma(a)
   if a < 1 then return gamma(a + 1) * C.ts_rng_uniform() ^ (1 / a) end
   local d = a - 1 / 3
   local c = 1 / math.sqrt(9 * d)
   while true do
      local z = C.ts_rng_normal()
      local v = (1 + c * z) ^ 3
      if v > 0 and math.log(1 - C.ts_rng_uniform()) < 0.5 * z * z + d - d * v + d * math.log(v) then return d * v end
   end
end

-- Beta(a, a) as G1 / (G1 + G2); for tiny a both gammas may underflow to 0: then lam is 0 or 1, as the
-- distribution itself nearly is; for a huge a (above about 1e307) their sum overflows, and the ratio of the two
-- gives the same share (lam was 0 for every draw; the distribution is then 0.5 for all purposes)
function M.beta(a)
   local g1, g2 = gamma(a), gamma(a)
   local sum = g1 + g2
   if sum == 0 then return C.ts_rng_uniform() < 0.5 and 0 or 1 end
   if sum == math.huge then return 1 / (1 + g2 / g1) end
   return g1 / sum
end

-- One step's draw for images of h x w: nil (this batch is not mixed), or {lam, box = {y, x, h, w} (1-based
-- corner and size) for cutmix}
function Mix:draw(h, w)
   -- a box's corner and size are pixels: h = 4.5 gave a lam that was not the box's share, NaN a lam of NaN
   keys.sizes(h, 'mix:draw(h, w)', 'h', 1, 1)
   keys.sizes(w, 'mix:draw(h, w)', 'w', 1, 1)
   if self.prob < 1 and C.ts_rng_uniform() >= self.prob then return nil end
   local cut = self.cutmix > 0 and (self.mixup == 0 or C.ts_rng_uniform() < self.switch)
   local lam = M.beta(cut and self.cutmix or self.mixup)
   if not cut then return {lam = lam} end
   local r = math.sqrt(1 - lam)
   local ch, cw = math.floor(h * r), math.floor(w * r)
   local cy, cx = math.floor(C.ts_rng_uniform() * h), math.floor(C.ts_rng_uniform() * w)
   local y0, y1 = math.max(cy - math.floor(ch / 2), 0), math.min(cy + math.floor(ch / 2), h)
   local x0, x1 = math.max(cx - math.floor(cw / 2), 0), math.min(cx + math.floor(cw / 2), w)
   if y1 <= y0 or x1 <= x0 then return {lam = 1} end
   return {lam = 1 - (y1 - y0) * (x1 - x0) / (h * w), box = {y0 + 1, x0 + 1, y1 - y0, x1 - x0}}
end

-- the batch in reverse order, into a buffer of the mixer's (on x's device)
local function reversed(self, x)
   local n = x:size(1)
   -- (of x's dtype too: float64 images after float32 ones came back as float32)
   if not self.rev or self.rev:device() ~= x:device() or self.rev:dtype() ~= x:dtype() or self.rev:numel() ~= x:numel() then
      self.rev, self.out = x:zerosLike(), x:zerosLike()
   end
   local rev = self.rev:view(x:size())
   for i = 1, n do rev:select(1, i):copy(x:select(1, n + 1 - i)) end
   return rev
end

-- x [N, C, H, W] (float, any device) and labels y (host int64 [N]) mixed by draw d: the mixed batch (a
-- buffer of the mixer's, valid until the next call), the partners' labels (y reversed) and lam
function Mix:apply(x, y, d)
   if not T.isTensor(x) or x:dim() ~= 4 then error('mix:apply(x, y, d): x must be images [N, C, H, W]', 2) end
   local n = x:size(1)
   -- y's labels are read through a pointer: a shorter y was read past its end
   if not T.isTensor(y) or y:numel() ~= n then
      error(('mix:apply(x, y, d): %d images but %s labels'):format(n, T.isTensor(y) and y:numel() or type(y)), 2)
   end
   -- labels are class ids: y:long() took 1.7 as 1
   if y:dtype() ~= 'int64' then error(('mix:apply(x, y, d): y must be int64 labels, got %s'):format(y:dtype()), 2) end
   -- a lam of NaN or 2 gave NaN images or 2 x - x reversed, and a loss weighing one label by -1
   local lam = type(d) == 'table' and d.lam
   if not (type(lam) == 'number' and lam >= 0 and lam <= 1) then
      error(('mix:apply(x, y, d): d must be a draw of mix:draw(), its lam in [0, 1], got %s'):format(
            type(d) == 'table' and 'lam ' .. tostring(lam) or keys.show(d)), 2)
   end
   -- a box is pixels of these images, and lam the share it leaves: a draw for other sizes (or a hand-made one) mixed a
   -- box of another area under its own lam, or failed in narrow
   -- (a blend is float32 arithmetic: other images failed in it with a message that named neither this call nor x)
   if d.box == nil and x:dtype() ~= 'float32' then
      error(('mix:apply(x, y, d): mixup blends float32 images, got %s ones (convert with :float())'):format(x:dtype()), 2)
   end
   if d.box ~= nil then
      local h, w, b = x:size(3), x:size(4), d.box
      local ok = type(b) == 'table' and #b == 4
      for i = 1, 4 do ok = ok and type(b[i]) == 'number' and b[i] % 1 == 0 and b[i] >= 1 end
      if not (ok and b[1] + b[3] - 1 <= h and b[2] + b[4] - 1 <= w) then
         error(('mix:apply(x, y, d): d.box must be {y, x, h, w} inside the %dx%d images, got %s'):format(h, w,
               keys.show(b)), 2)
      end
      local share = 1 - b[3] * b[4] / (h * w)
      if math.abs(lam - share) > 1e-9 then
         error(('mix:apply(x, y, d): d.lam is %s but its box leaves %s of the %dx%d images (draw for their size)'):format(
               tostring(lam), tostring(share), h, w), 2)
      end
   end
   local rev = reversed(self, x)
   local out = self.out:view(x:size())
   out:copy(x)
   if d.box then
      local b = d.box
      out:narrow(3, b[1], b[3]):narrow(4, b[2], b[4]):copy(rev:narrow(3, b[1], b[3]):narrow(4, b[2], b[4]))
   else
      out:mul_(d.lam):axpy_(1 - d.lam, rev)
   end
   local yc, yr = y:contiguous(), T.zeros({n}, 'int64')
   local src, dst = ffi.cast('int64_t *', yc:data()), ffi.cast('int64_t *', yr:data())
   for i = 0, n - 1 do dst[i] = src[n - 1 - i] end
   return out, yr, d.lam
end

return M
