-- ts.metrics: classification metrics from predictions, all through the confusion matrix.
--   local cm = ts.metrics.confusion(pred, target, classes)   -- cm[t][p] counts, 0-based, t = true class
--   local m = ts.metrics.summary(cm)   -- accuracy, per_class[c] = {precision, recall, f1, support},
--                                      -- macro and weighted {precision, recall, f1}
--   print(ts.metrics.format(m, names)) -- an aligned table
--   ts.metrics.temperature(logits, y), ts.metrics.calibration(logits, y, T)   -- temperature scaling, NLL, ECE
--   ts.metrics.softmax(row, T), ts.metrics.correct(pred, y), ts.metrics.meanSd(list), ts.metrics.mcnemar(a, b)
--   ts.metrics.paired(a, b)          -- two recipes over pairs of runs (seeds): mean difference, t-test, sign flips
--   ts.metrics.describePaired(r)     -- its tests in a sentence
-- Precision of a class never predicted, and recall of a class absent from the targets, are 0 (as
-- scikit-learn's zero_division=0); macro averages run over the classes present in targets or predictions.
local ffi = require('ffi')
local T = require('ts.tensor')
local keys = require('ts.keys')

ffi.cdef('double erfc(double x); double lgamma(double x);')   -- the C library's, for McNemar's p and Student's t

local metrics = {}

-- #v, or an error naming the call (what) and the argument (name) unless table v is a list: keys 1 .. #v and no other.
-- The length of {0.9, nil, 0.8} is 1 or 3: the items after a hole were left out without a word (a confusion matrix
-- short of samples, a mean of fewer runs), or the hole's nil was taken for an item; a 0-based list lost its first.
-- level as error's, counted from the caller.
local function length(v, what, name, level)
   local n, count = #v, 0
   for k in pairs(v) do
      if type(k) ~= 'number' or k % 1 ~= 0 or k < 1 or k > n then
         error(('%s: %s must be a list {a, b, ...} without holes, got the key %s beside positions 1 .. %d'):format(
               what, name, keys.show(k), n), level + 1)
      end
      count = count + 1
   end
   if count < n then
      error(('%s: %s must be a list {a, b, ...} without holes, got %d nil among its %d items'):format(what, name,
            n - count, n), level + 1)
   end
   return n
end

-- a list or tensor's values as a 1-based accessor, its length and what keeps a tensor's memory alive; a tensor is
-- read as doubles, so that a fraction (0.9 read as class 0) or a NaN is seen by the caller's checks. Errors name
-- the call and the argument, at level as error's counted from the caller.
local function values(v, what, name, level)
   if not T.isTensor(v) then
      if type(v) ~= 'table' then
         error(('%s: %s must be a tensor or a list, got %s'):format(what, name, keys.show(v)), level + 1)
      end
      return v, length(v, what, name, level + 1), 1
   end
   local c = v:cpu():contiguous():double()   -- (a GPU tensor's data() failed, naming a line of this file)
   local p = ffi.cast('double *', c:data())
   return setmetatable({}, {__index = function(_, i) return tonumber(p[i - 1]) end}), c:numel(), c
end

-- (at most MAX_CLASSES, the datasets' bound: a Lua table of classes^2 cells)
metrics.MAX_CLASSES = keys.MAX_CLASSES
function metrics.confusion(pred, target, classes)
   keys.count(classes, 'confusion', 'classes', 1, metrics.MAX_CLASSES, 2)
   local pv, n, keep1 = values(pred, 'confusion', 'the predictions', 2)
   local tv, m, keep2 = values(target, 'confusion', 'the targets', 2)
   if n ~= m then error(('confusion: %d predictions but %d targets'):format(n, m), 2) end
   local cm = {}
   for t = 0, classes - 1 do
      cm[t] = {}
      for p = 0, classes - 1 do cm[t][p] = 0 end
   end
   for i = 1, n do
      local t, p = tv[i], pv[i]
      for _, v in ipairs({{t, 'target'}, {p, 'prediction'}}) do
         if type(v[1]) ~= 'number' or v[1] % 1 ~= 0 or v[1] < 0 or v[1] >= classes then
            error(('confusion: %s %d is %s, not a class id in 0..%d'):format(v[2], i, tostring(v[1]), classes - 1), 2)
         end
      end
      cm[t][p] = cm[t][p] + 1
   end
   cm.classes = classes
   local _ = keep1, keep2
   return cm
end

-- cm, or an error naming the call (what) at its caller's line unless cm is a confusion matrix as confusion makes
-- it: a whole number of classes and a count in every cell (summary read a hand-made {classes = 2} as far as the
-- missing row and failed inside, and took {classes = 0} for an accuracy of 0)
local function matrix(what, cm)
   local ok = type(cm) == 'table' and type(cm.classes) == 'number' and cm.classes % 1 == 0 and cm.classes >= 1
   for t = 0, ok and cm.classes - 1 or -1 do
      ok = type(cm[t]) == 'table'
      for p = 0, ok and cm.classes - 1 or -1 do ok = ok and type(cm[t][p]) == 'number' end
      if not ok then break end
   end
   if not ok then
      error(('%s: expected a confusion matrix (ts.metrics.confusion), got %s'):format(what,
            type(cm) == 'table' and 'a table that is not one' or keys.show(cm)), 3)
   end
   return cm
end

function metrics.summary(cm)
   matrix('summary', cm)
   local classes, total, correct = cm.classes, 0, 0
   local per, pred_count = {}, {}
   for p = 0, classes - 1 do pred_count[p] = 0 end
   for t = 0, classes - 1 do
      for p = 0, classes - 1 do
         total = total + cm[t][p]
         pred_count[p] = pred_count[p] + cm[t][p]
      end
      correct = correct + cm[t][t]
   end
   -- no predictions have no accuracy: it was reported as 0 (scikit-learn's is NaN, with a warning)
   if total == 0 then error('summary: the confusion matrix counts no predictions', 2) end
   local macro, weighted, present = {precision = 0, recall = 0, f1 = 0}, {precision = 0, recall = 0, f1 = 0}, 0
   for c = 0, classes - 1 do
      local support = 0
      for p = 0, classes - 1 do support = support + cm[c][p] end
      local tp = cm[c][c]
      local precision = pred_count[c] > 0 and tp / pred_count[c] or 0
      local recall = support > 0 and tp / support or 0
      local f1 = precision + recall > 0 and 2 * precision * recall / (precision + recall) or 0
      per[c] = {precision = precision, recall = recall, f1 = f1, support = support}
      if support > 0 or pred_count[c] > 0 then
         present = present + 1
         for k, v in pairs({precision = precision, recall = recall, f1 = f1}) do
            macro[k] = macro[k] + v
            weighted[k] = weighted[k] + v * support
         end
      end
   end
   for k in pairs(macro) do
      macro[k] = present > 0 and macro[k] / present or 0
      weighted[k] = total > 0 and weighted[k] / total or 0
   end
   return {accuracy = total > 0 and correct / total or 0, total = total, correct = correct, per_class = per,
           macro = macro, weighted = weighted, classes = classes}
end

-- logits [N, C] as contiguous doubles with their pointer, and targets [N] each a class 0..C-1 (an FFI read of
-- row i at column t must stay inside the tensor: a target of 1e9, or fewer rows than targets, read anywhere). Read
-- as doubles: float64 logits cut to float32 tied where they differed (1 and 1 + 1e-9, 1e8 and 1e8 + 1), and a tie
-- went to the lower class, so a wrong top-1 counted as right in topk and calibration.
local function rows_and_targets(what, logits, target)
   if not T.isTensor(logits) or logits:dim() ~= 2 then error(what .. ': logits must be a tensor [N, C]', 3) end
   local l = logits:cpu():double():contiguous()
   local tv, n, keep = values(target, what, 'the targets', 3)
   local c = l:size(2)
   if n ~= l:size(1) then error(('%s: %d rows of logits but %d targets'):format(what, l:size(1), n), 3) end
   for i = 1, n do
      local t = tv[i]
      if type(t) ~= 'number' or t % 1 ~= 0 or t < 0 or t >= c then
         error(('%s: target %d is %s, outside the classes 0..%d'):format(what, i, tostring(t), c - 1), 3)
      end
   end
   return l, ffi.cast('double *', l:data()), tv, n, c, keep
end

-- a temperature: a finite number > 0 (nil: 1); 0, a negative or NaN one inverted or emptied the distribution
local function temperature_of(what, temperature)
   if temperature == nil then return 1 end
   if not T.isFinite(temperature) or temperature <= 0 then
      error(('%s: the temperature must be a finite number > 0, got %s'):format(what, tostring(temperature)), 3)
   end
   return temperature
end

-- fraction of rows of logits [N, C] whose target is among the k largest, equal scores ranked by class id, the
-- lowest first as argmax takes it (scikit-learn's top_k_accuracy_score ranks the highest first)
function metrics.topk(logits, target, k)
   local l, p, tv, n, c, keep = rows_and_targets('topk', logits, target)
   if n == 0 then error('topk: no rows', 2) end
   keys.count(k, 'topk', ('k (of %d classes)'):format(c), 1, c, 2)
   local hits = 0
   for i = 0, n - 1 do
      -- the classes ranked before the target: higher scores, and equal ones of a lower id (argmax takes the first
      -- of equal scores; counting only higher ones made a constant model 100% right)
      local t, target = tv[i + 1], p[i * c + tv[i + 1]]
      local before = 0
      for j = 0, c - 1 do
         local v = p[i * c + j]
         if v ~= v then error(('topk: row %d holds NaN'):format(i + 1), 2) end
         if v > target or (v == target and j < t) then before = before + 1 end
      end
      if before < k then hits = hits + 1 end
   end
   local _ = l, keep   -- the tensors the pointers read stay alive until here
   return hits / n
end

-- ---- calibration -------------------------------------------------------------------------------------

-- softmax(row / temperature) of one row of logits (a 1-D tensor), as a Lua list; the largest is subtracted
-- first so that no exponential overflows
function metrics.softmax(row, temperature)
   if not T.isTensor(row) or row:dim() ~= 1 then   -- nil, a list or a [1, C] row failed inside
      error(('softmax: row must be a 1-D tensor of logits, got %s'):format(T.isTensor(row) and tostring(row:size()) or
            keys.show(row)), 2)
   end
   local n, best = row:numel(), -math.huge
   for c = 1, n do
      local v = row[c]
      -- a NaN or +inf logit (or none above -inf) gave every probability as NaN, which predict printed as nan%
      if v ~= v or v == math.huge then error(('softmax: logit %d is %s'):format(c, tostring(v)), 2) end
      best = math.max(best, v)
   end
   if best == -math.huge then error(n == 0 and 'softmax: the row is empty' or 'softmax: every logit is -inf', 2) end
   local t = temperature_of('softmax', temperature)
   local p, total = {}, 0
   for c = 1, n do p[c] = math.exp((row[c] - best) / t); total = total + p[c] end
   for c = 1, n do p[c] = p[c] / total end
   return p
end

-- How well softmax(logits / temperature) states its own chance of being right, on logits [N, C] and
-- targets [N]: {nll (mean negative log-likelihood), ece, accuracy, confidence (the mean top-1
-- probability)}. ECE, the expected calibration error: the top-1 probabilities in `bins` equal-width bins
-- (15), the sum over bins of |accuracy - mean confidence| weighted by the bin's share of the samples. Bin b holds
-- [(b-1)/bins, b/bins), the last one 1 as well. Guo et al.'s bins, and scikit-learn's calibration_curve's, are closed
-- on the right instead, and torchmetrics puts a confidence of 1 in a bin of its own: the ECE differs only where
-- a confidence lies on an edge (with 15 bins, 1/3: a tie of three classes).
function metrics.calibration(logits, target, temperature, bins)
   local l, p, tv, n, c, keep = rows_and_targets('calibration', logits, target)
   if n == 0 then error('calibration: no rows', 2) end
   -- divided by, as softmax does: the inverse of a temperature below 1e-308 is inf, and inf times a gap of 0 made
   -- the best logit NaN, reported as NaN in the logits
   local temp = temperature_of('calibration', temperature)
   bins = keys.count(bins or 15, 'calibration', 'bins', 1, 1e6, 2)
   local count, hit, conf = {}, {}, {}
   for b = 1, bins do count[b], hit[b], conf[b] = 0, 0, 0 end
   local nll, right, conf_sum = 0, 0, 0
   for i = 0, n - 1 do
      local row, t = p + i * c, tv[i + 1]
      local best, arg = -math.huge, 0
      for j = 0, c - 1 do if row[j] > best then best, arg = row[j], j end end
      local z = 0
      for j = 0, c - 1 do z = z + math.exp((row[j] - best) / temp) end
      nll = nll + math.log(z) - (row[t] - best) / temp
      local top = 1 / z
      if top ~= top or nll ~= nll then error('calibration: the logits hold NaN or infinities', 2) end
      local b = math.min(bins, math.floor(top * bins) + 1)
      count[b], conf[b] = count[b] + 1, conf[b] + top
      if arg == t then hit[b], right = hit[b] + 1, right + 1 end
      conf_sum = conf_sum + top
   end
   local ece = 0
   for b = 1, bins do
      if count[b] > 0 then ece = ece + math.abs(hit[b] - conf[b]) / n end
   end
   local _ = l, keep
   return {nll = nll / n, ece = ece, accuracy = right / n, confidence = conf_sum / n}
end

-- Temperature scaling (Guo et al. 2017): the one T > 0 for which softmax(logits / T) has the least
-- negative log-likelihood on held-out logits [N, C] and targets [N]. The predictions do not change (the
-- order of the logits is kept), only how sure they say they are. The NLL is convex in 1/T: a golden-section
-- search over log T in [1/100, 100] finds it to 1e-4 relative. With no mistake among the images the NLL falls
-- without end as T -> 0 (a few hundred held-out images of a 99.7% network often have none): then T is the one
-- whose mean confidence is the rule of succession's accuracy, (n+1)/(n+2) for n of n right, rather than whatever
-- flat stretch float rounding ended the search on (T = 0.05, every probability near 1). Returns T and how it was
-- fitted ('likeliest' or 'succession'), or nil and why when no T in the range fits (the optimum at its edge).
local T_LO, T_HI = math.log(0.01), math.log(100)

-- the mean top-1 probability at temperature exp(u)
local function mean_confidence(logits, target, u) return metrics.calibration(logits, target, math.exp(u)).confidence end

function metrics.temperature(logits, target)
   -- checked as calibration checks them, named as this call and at its caller's line (the errors were calibration's,
   -- raised inside this function)
   local ok, c = pcall(metrics.calibration, logits, target)
   if not ok then error((tostring(c):gsub('^calibration: ', 'temperature: ')), 2) end
   local n = T.isTensor(target) and target:numel() or #target
   local function unfit()
      return nil, ('%d images, %.2f%% of them predicted right, leave no temperature from 0.01 to 100 to fit'):format(
         n, 100 * c.accuracy)
   end
   if c.accuracy == 1 then   -- the mean confidence falls as T grows: bisect log T for the succession's accuracy
      local want, lo, hi = (n + 1) / (n + 2), T_LO, T_HI
      if mean_confidence(logits, target, lo) < want or mean_confidence(logits, target, hi) > want then return unfit() end
      while hi - lo > 1e-4 do
         local mid = (lo + hi) / 2
         if mean_confidence(logits, target, mid) > want then lo = mid else hi = mid end
      end
      return math.exp((lo + hi) / 2), 'succession'
   end
   local function nll(u) return metrics.calibration(logits, target, math.exp(u)).nll end
   local lo, hi = T_LO, T_HI
   local phi = (math.sqrt(5) - 1) / 2
   local a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
   local fa, fb = nll(a), nll(b)
   while hi - lo > 1e-4 do
      if fa < fb then hi, b, fb = b, a, fa; a = hi - phi * (hi - lo); fa = nll(a)
      else lo, a, fa = a, b, fb; b = lo + phi * (hi - lo); fb = nll(b) end
   end
   local u = (lo + hi) / 2
   if u < T_LO + 1e-3 or u > T_HI - 1e-3 then return unfit() end
   return math.exp(u), 'likeliest'
end

-- the n largest off-diagonal cells: {true, predicted, count}
function metrics.mostConfused(cm, n)
   matrix('mostConfused', cm)
   n = keys.sizes(n or 10, 'mostConfused', 'n', 0, 1)   -- -1 gave none, 1.5 one and 'x' an error inside math.min
   local cells = {}
   for t = 0, cm.classes - 1 do
      for p = 0, cm.classes - 1 do
         if t ~= p and cm[t][p] > 0 then cells[#cells + 1] = {t, p, cm[t][p]} end
      end
   end
   table.sort(cells, function(a, b) return a[3] > b[3] or (a[3] == b[3] and (a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]))) end)
   local out = {}
   for i = 1, math.min(n, #cells) do out[i] = cells[i] end
   return out
end

-- Wilson 95% score interval of a proportion k/n (statsmodels' proportion_confint, method 'wilson'); for n = 0,
-- where that is undefined, (0, 1): nothing is known
function metrics.interval(k, n)
   if not (T.isFinite(k) and T.isFinite(n) and n >= 0 and k >= 0 and k <= n) then
      error(('interval: expected 0 <= k <= n, got %s of %s'):format(tostring(k), tostring(n)), 2)
   end
   if n == 0 then return 0, 1 end
   local z, p = 1.959963984540054, k / n   -- the normal's 97.5% quantile (1.959964 put the bounds 4e-9 off)
   local d = 1 + z * z / n
   local centre = (p + z * z / (2 * n)) / d
   local half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
   return math.max(0, centre - half), math.min(1, centre + half)
end

-- whether each prediction is its target's class (tensors or lists): the list McNemar's test pairs
function metrics.correct(pred, target)
   local pv, n, keep1 = values(pred, 'correct', 'the predictions', 2)
   local tv, m, keep2 = values(target, 'correct', 'the targets', 2)
   if n ~= m then error(('correct: %d predictions but %d targets'):format(n, m), 2) end
   local c = {}
   for i = 1, n do
      local p, t = pv[i], tv[i]
      -- class ids: 1.5 against 1.5 counted as a right prediction
      if type(p) ~= 'number' or p % 1 ~= 0 or type(t) ~= 'number' or t % 1 ~= 0 then
         error(('correct: prediction %d is %s and its target %s: class ids are whole numbers'):format(i, keys.show(p),
               keys.show(t)), 2)
      end
      c[i] = p == t
   end
   local _ = keep1, keep2   -- the tensors values() reads stay alive until here
   return c
end

-- the mean of a list of numbers and its sample standard deviation (nil for fewer than two); an empty list gave a
-- NaN mean, a word in it an error from inside the sum, and a hole (a run without its accuracy) a mean of the
-- items before it divided by the length
function metrics.meanSd(list)
   if type(list) ~= 'table' or length(list, 'meanSd', 'the numbers', 2) == 0 then
      error(('meanSd: expected a list of at least one number, got %s'):format(keys.show(list)), 2)
   end
   for i, v in ipairs(list) do
      if type(v) ~= 'number' then error(('meanSd: item %d is %s, not a number'):format(i, keys.show(v)), 2) end
   end
   local sum, sq = 0, 0
   for _, v in ipairs(list) do sum = sum + v end
   local mean = sum / #list
   for _, v in ipairs(list) do sq = sq + (v - mean) ^ 2 end
   return mean, #list > 1 and math.sqrt(sq / (#list - 1)) or nil
end

-- McNemar's test of two models' correctness on the same samples; b = only A right, c = only B right; returns b, c, p.
-- For b + c <= 50 the exact binomial test (statsmodels' mcnemar, exact=True), above it chi-square with continuity
-- correction, (|b - c| - 1)^2 / (b + c) (exact=False), which like statsmodels' and R's gives b = c a p below 1.
function metrics.mcnemar(correct_a, correct_b)
   -- two lists of booleans of one length (metrics.correct's): a 0 is true in Lua, so 0/1 lists counted nothing
   if type(correct_a) ~= 'table' or type(correct_b) ~= 'table' then
      error(('mcnemar: expected two lists of booleans (metrics.correct), got %s and %s'):format(type(correct_a),
            type(correct_b)), 2)
   end
   if length(correct_a, 'mcnemar', 'the first list', 2) ~= length(correct_b, 'mcnemar', 'the second list', 2) then
      error(('mcnemar: %d results against %d: the two models must be judged on the same samples'):format(#correct_a,
            #correct_b), 2)
   end
   for i = 1, #correct_a do
      if type(correct_a[i]) ~= 'boolean' or type(correct_b[i]) ~= 'boolean' then
         error(('mcnemar: result %d is not true or false (metrics.correct gives such lists)'):format(i), 2)
      end
   end
   local b, c = 0, 0
   for i = 1, #correct_a do
      if correct_a[i] and not correct_b[i] then b = b + 1 end
      if correct_b[i] and not correct_a[i] then c = c + 1 end
   end
   local n = b + c
   if n == 0 then return b, c, 1 end
   if n <= 50 then
      local k, tail = math.min(b, c), 0
      local logc = 0   -- log C(n, i), built up
      for i = 0, k do
         if i > 0 then logc = logc + math.log(n - i + 1) - math.log(i) end
         tail = tail + math.exp(logc - n * math.log(2))
      end
      return b, c, math.min(1, 2 * tail)
   end
   local chi = (math.abs(b - c) - 1) ^ 2 / n
   -- survival of chi-square with 1 degree of freedom: erfc(sqrt(chi / 2)), the C library's (a polynomial
   -- approximation of erfc put p 1.2e-7 off, relatively, and above 1 where b and c differ by 1)
   return b, c, ffi.C.erfc(math.sqrt(chi / 2))
end

-- The continued fraction of the regularized incomplete beta function I_x(a, b), by Lentz's method; it converges fast
-- for x < (a + 1) / (a + b + 2), and incomplete_beta takes 1 - I_{1-x}(b, a) above that
local function beta_fraction(a, b, x)
   local function off_zero(v) return math.abs(v) < 1e-300 and 1e-300 or v end
   local c, d = 1, 1 / off_zero(1 - (a + b) * x / (a + 1))
   local h = d
   for m = 1, 500 do
      local even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
      d, c = 1 / off_zero(1 + even * d), off_zero(1 + even / c)
      h = h * d * c
      local odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
      d, c = 1 / off_zero(1 + odd * d), off_zero(1 + odd / c)
      h = h * d * c
      if math.abs(d * c - 1) < 1e-15 then break end
   end
   return h
end

-- I_x(a, b) = B(x; a, b) / B(a, b)
local function incomplete_beta(a, b, x)
   if x <= 0 then return 0 end
   if x >= 1 then return 1 end
   local front = math.exp(ffi.C.lgamma(a + b) - ffi.C.lgamma(a) - ffi.C.lgamma(b) + a * math.log(x) + b * math.log(1 - x))
   if x < (a + 1) / (a + b + 2) then return front * beta_fraction(a, b, x) / a end
   return 1 - front * beta_fraction(b, a, 1 - x) / b
end

-- P(|T| >= t) for Student's t with df degrees of freedom: I_{df/(df+t^2)}(df/2, 1/2)
local function t_two_sided(t, df)
   if math.abs(t) == math.huge then return 0 end
   return incomplete_beta(df / 2, 0.5, df / (df + t * t))
end

-- the q with P(|T| >= q) = 0.05: the half-width of a 95% interval in standard errors (12.71 for df = 1, 1.96 for many)
local function t_quantile_95(df)
   local lo, hi = 0, 1e4
   for _ = 1, 200 do
      local mid = (lo + hi) / 2
      if t_two_sided(mid, df) > 0.05 then lo = mid else hi = mid end
   end
   return (lo + hi) / 2
end

-- Two recipes over n pairs of runs (a[k] and b[k], numbers such as test accuracies; a pair is one seed, as a rule):
-- {n, mean_a, sd_a, mean_b, sd_b, diff = the mean of b[k] - a[k], sd = the differences' sample sd, ci95 = {lo, hi}
-- (Student's t), p_t (the paired t-test, two-sided: scipy's ttest_rel), p_flip (the exact sign-flip test: the share
-- of the 2^n ways of flipping the differences' signs whose sum lies as far from 0 as theirs, which assumes no
-- distribution; for n <= 20), ahead, behind (the pairs where b is above, below a)}. Each McNemar's test asks whether
-- two models differ; this asks whether the recipes do, across what the seeds change. With one pair, sd, ci95 and p_t
-- are nil; where every difference is the same (to 1e-12 of the largest), sd is 0, the interval that one number and p_t 0
-- (1 where it is 0): scipy's limit, which a reader should be told is no test (compare.lua says so).
function metrics.paired(a, b)
   if type(a) ~= 'table' or type(b) ~= 'table' then
      error(('paired: expected two lists of numbers, got %s and %s'):format(keys.show(a), keys.show(b)), 2)
   end
   local n = length(a, 'paired', 'the first list', 2)
   if n == 0 or n ~= length(b, 'paired', 'the second list', 2) then
      error(('paired: %d numbers against %d: each of the first list pairs with one of the second'):format(n, #b), 2)
   end
   -- the differences, their sum, the sum and the largest of their sizes (what a rounding's worth is measured by)
   local d, ahead, behind, total, scale, largest = {}, 0, 0, 0, 0, 0
   for k = 1, n do
      if not (T.isFinite(a[k]) and T.isFinite(b[k])) then
         error(('paired: pair %d is %s and %s, not two finite numbers'):format(k, keys.show(a[k]), keys.show(b[k])), 2)
      end
      d[k] = b[k] - a[k]
      if d[k] > 0 then ahead = ahead + 1 elseif d[k] < 0 then behind = behind + 1 end
      total, scale, largest = total + d[k], scale + math.abs(d[k]), math.max(largest, math.abs(d[k]))
   end
   local r = {n = n, ahead = ahead, behind = behind}
   r.mean_a, r.sd_a = metrics.meanSd(a)
   r.mean_b, r.sd_b = metrics.meanSd(b)
   r.diff, r.sd = metrics.meanSd(d)
   -- accuracies are k/N: differences alike in exact numbers (19/20 - 18/20, 20/20 - 19/20) differ in the last bits,
   -- and that spread made a t of 10^15 and a p of 0 out of rounding. A spread within such bits is none
   if r.sd and r.sd <= 1e-12 * largest then r.sd = 0 end
   if n > 1 then
      local se = r.sd / math.sqrt(n)
      local half = t_quantile_95(n - 1) * se
      r.ci95 = {r.diff - half, r.diff + half}
      r.p_t = se > 0 and t_two_sided(r.diff / se, n - 1) or (r.diff == 0 and 1 or 0)
   end
   if n <= 20 then
      -- every sign pattern; a sum as far from 0 as the observed one, less a rounding's worth, counts
      local as_far = 0
      for mask = 0, 2 ^ n - 1 do
         local sum, m = 0, mask
         for k = 1, n do
            sum = sum + (m % 2 == 1 and -d[k] or d[k])
            m = math.floor(m / 2)
         end
         if math.abs(sum) >= math.abs(total) - 1e-9 * scale then as_far = as_far + 1 end
      end
      r.p_flip = as_far / 2 ^ n
   end
   return r
end

-- paired's tests in one sentence, for a person (compare.lua --versus and the ingredients' comparison): the t-test and
-- the sign flips; where every pair differs alike, that there is no spread to test (a p of 0 read as certainty); with
-- one pair, that there is no test over pairs
function metrics.describePaired(r)
   if not r.sd then return 'one pair: no test over pairs (McNemar above is the only one)' end
   local flip = r.p_flip and ('exact sign-flip test p = %.3g (%d sign patterns)'):format(r.p_flip, 2 ^ r.n) or
                'no sign-flip test beyond 20 pairs'
   if r.sd == 0 then
      return ('every pair differs by the same %+.2f points: no spread for a t-test or an interval; %s'):format(100 * r.diff,
                                                                                                              flip)
   end
   return ('paired t-test p = %.3g; %s'):format(r.p_t, flip)
end

-- the summary as an aligned text table, one row per class, then the averages
function metrics.format(m, names)
   if type(m) ~= 'table' or type(m.per_class) ~= 'table' then   -- a confusion matrix failed inside, as nil did
      error(('format: expected a summary (ts.metrics.summary), got %s'):format(type(m) == 'table' and
            'a table that is not one' or keys.show(m)), 2)
   end
   local lines = {('%-4s %-44s %9s %9s %9s %8s'):format('id', 'class', 'precision', 'recall', 'f1', 'support')}
   for c = 0, m.classes - 1 do
      local r = m.per_class[c]
      local name = names and names[c] ~= nil and tostring(names[c]) or ''
      if #name > 44 then name = name:sub(1, 41) .. '...' end
      lines[#lines + 1] = ('%-4d %-44s %9.4f %9.4f %9.4f %8d'):format(c, name, r.precision, r.recall, r.f1, r.support)
   end
   for _, avg in ipairs({'macro', 'weighted'}) do
      local r = m[avg]
      lines[#lines + 1] = ('%-49s %9.4f %9.4f %9.4f %8d'):format(avg .. ' average', r.precision, r.recall, r.f1, m.total)
   end
   lines[#lines + 1] = ('%-49s %29.4f %8d'):format('accuracy', m.accuracy, m.total)
   return table.concat(lines, '\n')
end

return metrics
