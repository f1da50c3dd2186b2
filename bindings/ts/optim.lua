-- Optimizers over parameter groups, with torch.optim's update rules (kernels/cpu/optim.c):
--   ts.optim.SGD(model, {lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4})
--   ts.optim.AdamW({ {params = model.features, lr = 1e-4}, {params = model.head} }, {lr = 1e-3})
-- A group's `params` is a module (its unfrozen parameters) or a {params, grads} pair of lists; each
-- group may override any option. opt:step() applies the gradients, opt:zeroGrad() clears them.
-- State (momentum buffers, Adam moments, step counts) lives in opt.state[i] per parameter, in order.
local ffi = require('ffi')
local T = require('ts.tensor')
local cffi = require('ts.ffi')
local keys = require('ts.keys')
local C, check = cffi.C, cffi.check
local tensors = ffi.typeof('ts_tensor *[?]')

local optim = {}

local Optimizer = {}
Optimizer.__index = Optimizer

-- whether v is a plain table (neither a tensor nor a module), and whether such a table is a group (params, or
-- options without a list part) rather than a list of tensors
local function is_list(v) return type(v) == 'table' and not T.isTensor(v) and not v.parameters end
local function is_group(v) return is_list(v) and (v.params ~= nil or (#v == 0 and next(v) ~= nil)) end

-- a group's params as an error shows them (keys.show would print each tensor of a list in full)
local function show_params(v)
   if is_list(v) and T.isTensor(v[1]) then return 'a list of tensors' end
   if is_list(v) and type(v[1]) == 'table' and v[1].parameters then return 'a list of modules' end
   return keys.show(v)
end

local function params_of(kind, spec, level)
   if type(spec) == 'table' and spec.parameters then return spec:parameters() end
   -- two lists: a list of tensors or of modules, or a tensor, was taken as {params, grads} of their (empty) array
   -- parts, a group that trained nothing; more gradients than parameters left the extra ones unused
   if not (is_list(spec) and is_list(spec[1]) and is_list(spec[2])) then
      error(('%s: a group needs params = a module or {params, grads} (two lists of tensors), got %s'):format(kind,
            show_params(spec)), level + 1)
   end
   if #spec[1] ~= #spec[2] then
      error(('%s: a group\'s {params, grads} holds %d parameters and %d gradients'):format(kind, #spec[1], #spec[2]),
            level + 1)
   end
   -- each a tensor: a number or a table failed at the first step with "attempt to index a number value"
   for i = 1, #spec[1] do
      for _, l in ipairs({{spec[1][i], 'parameter'}, {spec[2][i], 'gradient'}}) do
         if not T.isTensor(l[1]) then
            error(('%s: %s %d of a group must be a tensor, got %s'):format(kind, l[2], i, type(l[1])), level + 1)
         end
      end
   end
   return spec[1], spec[2]
end

-- The hyperparameters of a group, as torch.optim checks them (an lr, momentum, weight decay or eps below 0, a beta
-- outside [0, 1), Nesterov without momentum or with dampening), and each a finite number where one is expected
local function check_group(kind, g, level)
   for k, v in pairs(g) do
      if k ~= 'nesterov' and not T.isFinite(v) then   -- (a string shown quoted: lr = '0.1' read as got 0.1)
         error(('%s: %s must be a finite number, got %s'):format(kind, k, keys.show(v)), level + 1)
      end
   end
   for _, k in ipairs({'lr', 'momentum', 'weight_decay', 'eps'}) do
      if g[k] and g[k] < 0 then error(('%s: %s must be >= 0, got %s'):format(kind, k, g[k]), level + 1) end
   end
   -- eps 0, which torch.optim takes, divides 0 by 0 wherever a gradient and its moments are 0: NaN weights; so did one
   -- below float32's least (1e-50), which the kernels take as 0
   if g.eps and tonumber(ffi.cast('float', g.eps)) == 0 then
      error(('%s: eps must be above 0 in float32 (0 makes NaN weights where a gradient is 0), got %s'):format(kind,
            g.eps), level + 1)
   end
   for _, k in ipairs({'beta1', 'beta2'}) do
      if g[k] and not (g[k] >= 0 and g[k] < 1) then error(('%s: %s must be in [0, 1), got %s'):format(kind, k, g[k]), level + 1) end
   end
   keys.flag(g.nesterov, kind, 'nesterov', level + 1)
   if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
      error(('%s: Nesterov momentum needs a momentum above 0 and no dampening (momentum %s, dampening %s)'):format(kind,
            g.momentum, g.dampening), level + 1)
   end
end

-- A group's options over the optimizer's (opts) over its kind's defaults, checked; errors at `level` as error's,
-- counted from the caller (pointing at the line that made the optimizer or added the group)
local function add_group(self, g, level)
   local known = {params = true}   -- a set: nesterov's default, false, would read as unknown
   for k in pairs(self.defaults) do known[k] = true end
   keys.check(self.kind .. ' parameter group', g, known, level + 1)
   local group = {}
   for k, v in pairs(self.defaults) do
      if g[k] ~= nil then group[k] = g[k] elseif self.options[k] ~= nil then group[k] = self.options[k] else group[k] = v end
   end
   check_group(self.kind, group, level + 1)
   group.params, group.grads = params_of(self.kind, g.params, level + 1)
   -- a tensor in two groups (a model and its head, the same module twice) was updated twice a step; within a
   -- group C refuses it (and any shared memory)
   for gi, other in ipairs(self.groups) do
      for i, p in ipairs(group.params) do
         for j, q in ipairs(other.params) do
            if rawequal(p, q) then
               error(('%s: parameter %d of group %d is parameter %d of group %d: list each tensor once'):format(
                     self.kind, i, #self.groups + 1, j, gi), level + 1)
            end
         end
      end
   end
   group.initial_lr = group.lr
   self.groups[#self.groups + 1] = group
   for i = 1, #group.params do self.state[#self.state + 1] = {} end
   return group
end

-- What a maker takes as its parameters, as a list of groups: a module or a {params, grads} pair is one group; else
-- a list of groups, each a table. Errors at the line that made the optimizer (level 4 from here). Unchecked, no
-- groups ({}, or one group not in a list) made an optimizer that failed at opt:lr(); a key that is no position
-- ({{params = m}, lr = 0.1}: the options in the wrong table) or a hole was skipped, its group or lr unused; a
-- module or a tensor in the list failed as a group of unknown options.
local function group_list(kind, groups)
   if type(groups) ~= 'table' or T.isTensor(groups) then   -- nil failed with "attempt to index local 'groups'"
      error(('%s: the parameters must be a module or a list of groups, got %s'):format(kind, keys.show(groups)), 4)
   end
   if groups.parameters or (is_list(groups[1]) and not is_group(groups[1]) and not is_group(groups[2])) then
      return {{params = groups}}
   end
   if groups.params ~= nil then
      error(('%s: a single group must be in a list, {{params = ..., lr = ...}}'):format(kind), 4)
   end
   local n = 0
   for k in pairs(groups) do
      if type(k) ~= 'number' or k % 1 ~= 0 or k < 1 then
         error(('%s: the list of groups holds the key %s; options go in the second argument, %s(params, {%s = ...})'):
               format(kind, tostring(k), kind, tostring(k)), 4)
      end
      n = math.max(n, k)
   end
   if n == 0 then error(kind .. ': no parameter groups (an empty list)', 4) end
   for i = 1, n do
      local g = groups[i]
      if not is_list(g) then
         error(('%s: group %d must be a table {params = ..., lr = ...}, got %s'):format(kind, i, g == nil and 'nil' or
               keys.show(g)), 4)
      end
   end
   return groups
end

local function new_optimizer(kind, defaults, groups, opts)
   local self = setmetatable({kind = kind, groups = {}, state = {}, defaults = defaults, options = opts or {}}, Optimizer)
   local known = {}
   for k in pairs(defaults) do known[k] = true end
   -- at the line that made the optimizer (this, SGD or Adam's maker, then the caller)
   keys.check(kind, self.options, known, 3)   -- opts not a table failed inside pairs
   for _, g in ipairs(group_list(kind, groups)) do add_group(self, g, 3) end
   return self
end

-- torch.optim's add_param_group: one more group (params and any options), e.g. a backbone unfrozen later
function Optimizer:addParamGroup(g)
   local group = add_group(self, g, 2)   -- not a tail call, which would drop this frame from the error's count
   return group
end

function Optimizer:zeroGrad()
   for _, g in ipairs(self.groups) do
      for _, grad in ipairs(g.grads) do grad:zero() end
   end
end

-- fn(group, states) for each group, states[i] being the state of the group's parameter i (the tables of self.state,
-- whose one flat order follows the groups')
function Optimizer:eachGroup(fn)
   local k = 0
   for _, g in ipairs(self.groups) do
      local states = {}
      for i = 1, #g.params do states[i] = self.state[k + i] end
      k = k + #g.params
      fn(g, states)
   end
end

-- fn(group, param, grad, state) for each parameter
function Optimizer:each(fn)
   self:eachGroup(function(g, states)
      for i, p in ipairs(g.params) do fn(g, p, g.grads[i], states[i]) end
   end)
end

-- The C list of n tensors (a Lua list of them; a missing one is NULL)
local function list(n, ts_list)
   local l = tensors(n)
   for i = 1, n do l[i - 1] = ts_list[i] and ts_list[i]._c or nil end
   return l
end

-- Scales the gradients so that their joint L2 norm is at most max_norm (PyTorch's clip_grad_norm_). The norm is
-- summed and used where the gradients are; the norm before clipping is returned as a number, which waits for the
-- device once, or, with {wait = false} (ts.train's every step), not read back at all (nil), so that a step on the
-- GPU never waits for it.
function Optimizer:clipGradNorm(max_norm, opts)
   -- a NaN max_norm clipped nothing and a negative one turned the gradients around, without a word
   if not (type(max_norm) == 'number' and max_norm >= 0) then
      error('clipGradNorm: max_norm must be a number >= 0, got ' .. keys.show(max_norm), 2)
   end
   if opts ~= nil then keys.check('clipGradNorm', opts, {wait = true}, 2) end   -- {wiat = false} waited
   local acc
   self:each(function(_, _, grad)
      acc = acc or T.zerosOn(grad:device(), {1}, 'float64')
      check(C.ts_tensor_sumsq_add(acc._c, grad._c))
   end)
   if acc then self:each(function(_, _, grad) check(C.ts_tensor_clip_scale(grad._c, acc._c, max_norm)) end) end
   if opts and opts.wait == false then return nil end
   return acc and math.sqrt(acc:get(1)) or 0
end

function Optimizer:lr() return self.groups[1].lr end

local SGD = setmetatable({}, {__index = Optimizer})
SGD.__index = SGD
function optim.SGD(groups, opts)
   return setmetatable(new_optimizer('SGD', {lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false},
                                     groups, opts), SGD)
end

-- every tensor of a group in one call (one launch on a GPU); the state it makes is kept only when the step is taken
function SGD:step()
   self:eachGroup(function(g, states)
      local n, first = #g.params, ffi.new('int[?]', #g.params)
      local buffers = {}
      for i, st in ipairs(states) do
         buffers[i] = st.momentum_buffer
         if g.momentum ~= 0 and not buffers[i] then buffers[i], first[i - 1] = g.params[i]:zerosLike(), 1 end
      end
      check(C.ts_sgd_step(n, list(n, g.params), list(n, g.grads), g.momentum ~= 0 and list(n, buffers) or nil, first,
                          g.lr, g.momentum, g.dampening, g.weight_decay, g.nesterov and 1 or 0))
      for i, st in ipairs(states) do st.momentum_buffer = buffers[i] end
   end)
end

local Adam = setmetatable({}, {__index = Optimizer})
Adam.__index = Adam
local function adam(kind, decoupled, wd)
   return function(groups, opts)
      local o = new_optimizer(kind, {lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = wd}, groups, opts)
      o.decoupled = decoupled
      return setmetatable(o, Adam)
   end
end
optim.Adam = adam('Adam', false, 0)
optim.AdamW = adam('AdamW', true, 1e-2)

function Adam:step()
   self:eachGroup(function(g, states)
      local n, steps = #g.params, ffi.new('int64_t[?]', #g.params)
      local m, v = {}, {}
      for i, st in ipairs(states) do
         m[i], v[i] = st.exp_avg or g.params[i]:zerosLike(), st.exp_avg_sq or g.params[i]:zerosLike()
         steps[i - 1] = (st.step or 0) + 1
      end
      check(C.ts_adam_step(n, list(n, g.params), list(n, g.grads), list(n, m), list(n, v), steps, g.lr,
                           g.beta1, g.beta2, g.eps, g.weight_decay, self.decoupled and 1 or 0))
      for i, st in ipairs(states) do st.exp_avg, st.exp_avg_sq, st.step = m[i], v[i], tonumber(steps[i - 1]) end
   end)
end

-- ---- learning-rate schedules -------------------------------------------------------------------------
-- A schedule maps the update count (from 0) to a factor of each group's initial lr; sched:step() advances
-- it and writes the lr of every group. sched.count is the state to keep for resuming.
local Schedule = {}
Schedule.__index = Schedule

local function schedule(opt, factor)
   local s = setmetatable({opt = opt, factor = factor, count = 0}, Schedule)
   s:apply()
   return s
end

function Schedule:apply()
   for _, g in ipairs(self.opt.groups) do g.lr = g.initial_lr * self.factor(self.count) end
end

function Schedule:step()
   self.count = self.count + 1
   self:apply()
end

-- The checks of a schedule's arguments, at the caller of optim.schedule.<name> (what: '<name> schedule'). Unchecked,
-- a NaN, a step_size of 0, a negative gamma or min_factor, a final_div_factor of 0 or a fractional warmup gave the
-- groups NaN, infinite, negative or above-peak learning rates without a word, a misspelt option was ignored, and a
-- missing table failed with "attempt to index local 'o'".
local function schedule_args(what, opt, o, known)
   if type(opt) ~= 'table' or not opt.groups then
      error(('%s: the first argument must be an optimizer, got %s'):format(what, type(opt)), 3)
   end
   local set = {}
   for _, k in ipairs(known) do set[k] = true end
   keys.check(what, o, set, 3)   -- (not returned: a tail call would take this frame off the count)
end
-- o[key] (default when nil; none: required): a finite number that ok(v) takes, `expected` saying which
local function number_arg(what, o, key, default, ok, expected)
   local v = o[key]
   if v == nil and default ~= nil then return default end
   if not (T.isFinite(v) and ok(v)) then error(('%s: %s must be %s, got %s'):format(what, key, expected, keys.show(v)), 3) end
   return v
end
local function nonnegative(v) return v >= 0 end
local function positive(v) return v > 0 end

optim.schedule = {}

-- multiply by gamma every step_size updates
function optim.schedule.step(opt, o)
   local what = 'step schedule'
   schedule_args(what, opt, o, {'step_size', 'gamma'})
   -- (a fraction taken: ts.train's step_size is in epochs)
   local step_size = number_arg(what, o, 'step_size', nil, positive, 'a number above 0')
   local gamma = number_arg(what, o, 'gamma', 0.1, nonnegative, 'a number >= 0')
   return schedule(opt, function(n) return gamma ^ math.floor(n / step_size) end)
end

-- linear warmup from 0 over `warmup` updates, then half a cosine down to min_factor at `total`
function optim.schedule.cosine(opt, o)
   local what = 'cosine schedule'
   schedule_args(what, opt, o, {'total', 'warmup', 'min_factor'})
   local total = keys.sizes(o.total, what, 'total (number of updates)', 1, 1)
   local warmup = o.warmup == nil and 0 or keys.sizes(o.warmup, what, 'warmup', 0, 1)
   local floor = number_arg(what, o, 'min_factor', 0, function(v) return v <= 1 and v >= 0 end, 'a number from 0 to 1')
   if total <= warmup then error(what .. ': total (number of updates) must exceed warmup', 2) end
   return schedule(opt, function(n)
      if n < warmup then return (n + 1) / warmup end
      local t = math.min(1, (n - warmup) / (total - warmup))
      return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t))
   end)
end

-- Stochastic weight averaging's learning rate (PyTorch's SWALR): `base` (a schedule, or nil for the groups' own lr)
-- until update `start`, then a cosine from base's factor there to `factor` over `anneal` updates, then `factor`
-- held (each group at that share of its initial lr, as every schedule here scales them)
function optim.schedule.swa(opt, o)
   local what = 'swa schedule'
   schedule_args(what, opt, o, {'base', 'start', 'anneal', 'factor'})
   if o.base ~= nil and getmetatable(o.base) ~= Schedule then
      error(('%s: base must be a schedule, got %s'):format(what, type(o.base)), 2)
   end
   local base = o.base and o.base.factor
   local start = keys.sizes(o.start, what, 'start (an update count)', 0, 1)
   local anneal = o.anneal == nil and 0 or keys.sizes(o.anneal, what, 'anneal', 0, 1)
   local target = number_arg(what, o, 'factor', nil, nonnegative, 'a number >= 0')
   local from = base and base(start) or 1
   return schedule(opt, function(n)
      if n < start then return base and base(n) or 1 end
      if n < start + anneal then
         return target + (from - target) * 0.5 * (1 + math.cos(math.pi * (n - start) / anneal))
      end
      return target
   end)
end

-- one-cycle (Smith): from 1/div_factor up to 1 over pct_start of `total` (cosine), then down to
-- 1/(div_factor * final_div_factor); the groups' lr is the peak, as PyTorch's max_lr
function optim.schedule.onecycle(opt, o)
   local what = 'onecycle schedule'
   schedule_args(what, opt, o, {'total', 'pct_start', 'div_factor', 'final_div_factor'})
   local total = keys.sizes(o.total, what, 'total (number of updates)', 2, 1)
   local pct = number_arg(what, o, 'pct_start', 0.3, function(v) return v >= 0 and v <= 1 end, 'a number from 0 to 1')
   local div = number_arg(what, o, 'div_factor', 25, positive, 'a number above 0')
   local final_div = number_arg(what, o, 'final_div_factor', 1e4, positive, 'a number above 0')
   local up = pct * total - 1   -- PyTorch's end of the first phase, a fractional step count
   local function cos(a, b, t) return b + (a - b) * 0.5 * (1 + math.cos(math.pi * t)) end
   return schedule(opt, function(n)
      -- (up 0, a first phase of one update, pct_start * total = 1: 0 / 0 made the lr NaN; it ends at the peak)
      if n <= up then return cos(1 / div, 1, up > 0 and n / up or 1) end
      return cos(1, 1 / (div * final_div), math.min(1, (n - up) / (total - 1 - up)))
   end)
end

return optim
