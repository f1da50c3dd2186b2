-- Containers: Sequential (a chain), Residual (block(x) + shortcut(x)), Concat (outputs joined on a dim),
-- Checkpoint (a module whose inside activations are made again in the backward instead of kept).
local ffi = require('ffi')
local Module = require('ts.nn.module')
local T = require('ts.tensor')
local cffi = require('ts.ffi')

local function describe_children(self, indent, header)
   local lines = {header}
   for _, c in ipairs(self._children) do
      lines[#lines + 1] = indent .. '  (' .. c.name .. '): ' .. c.module:describe(indent .. '  ')
   end
   lines[#lines + 1] = indent .. ')'
   return table.concat(lines, '\n')
end

local Container = Module.class('Container', Module)

-- fn(m) for the module and every module inside it
local function each_module(m, fn)
   fn(m)
   for _, c in ipairs(m._children or {}) do each_module(c.module, fn) end
end

-- An error unless module (and every module inside it) is new to the network self, leaving out `leaving` (the child a
-- replace takes out): a module is at one place in a network: each keeps one output and one gradInput, so a layer used
-- twice overwrote its first output with its second (Sequential(A, A) computed A(x) into the buffer it read, and a
-- backward through A twice saw the second call's values), and its parameters counted twice; at `level` as error's,
-- counted from the caller
local function not_here(self, module, verb, leaving, level)
   local here = {}
   each_module(self, function(m) here[m] = true end)
   if leaving then each_module(leaving, function(m) here[m] = nil end) end
   local again
   each_module(module, function(m) again = again or (here[m] and m) end)
   if again then   -- raised here, not in the walk, whose depth would move the line it names
      error(('%s:%s: the %s is in this network already: a module keeps one output, so give each place a module ' ..
             'of its own'):format(self.__typename, verb, again.__typename), level + 1)
   end
end

-- add(module) names the child by its position from 0 (as PyTorch's Sequential); add(module, 'name') names it.
-- The name '' makes the child transparent in state names: its tensors are named as if they were the
-- parent's own (a residual block's body in PyTorch's ResNets, for instance). level: where its errors point, as error's
-- counted from add's caller (1, the default: that line; a constructor adding its arguments gives 3, the line that
-- built the network, which Sequential(a, a) named as a line of this file)
function Container:add(module, name, level)
   level = level or 1
   Module.check(module, self.__typename .. ':add: the child', level + 1)
   name = name or tostring(#self._children)
   for _, c in ipairs(self._children) do
      if c.name == name and name ~= '' then error(self.__typename .. ':add: a child is already named ' .. name, level + 1) end
   end
   not_here(self, module, 'add', nil, level + 1)
   self._children[#self._children + 1] = {name = name, module = module}
   if name ~= '' then self[name] = module end
   return self
end

-- replace('linear', nn.Linear(64, 43)): swaps the named child (a new head for fine-tuning)
function Container:replace(name, module)
   -- checked as add checks: a number was put in, and printing or any pass then failed indexing it, and a module that
   -- was elsewhere in the network already shared its one output between two places
   Module.check(module, self.__typename .. ':replace: the child', 2)
   for _, c in ipairs(self._children) do
      if c.name == name then
         not_here(self, module, 'replace', c.module, 2)
         c.module = module
         self[name] = module
         return self
      end
   end
   error(self.__typename .. ':replace: no child named ' .. tostring(name), 2)
end

function Container:get(i) return self._children[i] and self._children[i].module end
function Container:size() return #self._children end

function Container:describe(indent)
   return describe_children(self, indent or '', ('%s(  [%d params]'):format(self.__typename, self:numParameters()))
end

-- Sequential(m1, m2, ...) or Sequential{ {'name', m}, ... }
local Sequential = Module.class('Sequential', Container)
function Sequential:__init(...)
   self._children = {}
   local first = ...
   if type(first) == 'table' and not first.forward then
      -- a plain list {m1, m2} read as pairs added nil and said "expected a module, got nil"
      for i, pair in ipairs(first) do
         if type(pair) ~= 'table' or pair.forward then
            error(('Sequential{...}: entry %d is not a {\'name\', module} pair: give the modules as arguments, ' ..
                   'Sequential(m1, m2) or Sequential(unpack(list))'):format(i), 3)
         end
         self:add(Module.check(pair[2], ('Sequential{...}: entry %d\'s module'):format(i), 3), pair[1], 3)
      end
   else
      -- checked here, not in add: an error there named this file, not the line that built the network
      for i = 1, select('#', ...) do self:add(Module.check((select(i, ...)), ('Sequential: argument %d'):format(i), 3), nil, 3) end
   end
end

local function names(children, first, last)
   local out = {}
   for i = first, last do out[#out + 1] = ('%s (%s)'):format(children[i].name, children[i].module.__typename) end
   return table.concat(out, ' + ')
end

-- A child that takes the ones after it into its forward (Module's fusion protocol: a batch norm and its ReLU in
-- training, a convolution, its batch norm and ReLU in fused evaluation) runs them as one, and the backward runs
-- such a group as one again (self._fused: the group's first child by its last).
function Sequential:updateOutput(input)
   local x, children, i = input, self._children, 1
   self._fused = {}
   while i <= #children do
      local m, a, b = children[i].module, children[i + 1], children[i + 2]
      local count = m.fuses and m:fuses(a and a.module, b and b.module) or 0
      local ok, out
      if count > 0 then ok, out = pcall(m.forwardFused, m, x, count, a.module, b and b.module)
      else ok, out = pcall(m.forward, m, x) end
      if not ok then
         error(('%s: %s'):format(names(children, i, i + count), tostring(Module.describeError(out, x, 'forward'))), 0)
      end
      if count > 0 then self._fused[i + count] = i end
      x = out
      i = i + count + 1
   end
   return x
end

-- model.needsGradInput = false (the input is data, not a layer's output) lets the first layer skip
-- computing a gradient nobody reads; it passes down to the first child of each nested Sequential.
function Sequential:backward(input, gradOutput)
   input, gradOutput = Module.dense(input), Module.dense(gradOutput)
   self:fromForward('output')   -- the children's outputs are their successors' inputs
   local g, children, i = gradOutput, self._children, #self._children
   while i >= 1 do
      -- a group the forward fused: its first child takes the last one's gradient
      local first = self._fused and self._fused[i] or i
      local c = children[first]
      if first == 1 then c.module.needsGradInput = self.needsGradInput end
      local x = first > 1 and children[first - 1].module.output or input
      local ok, out
      if first < i then
         if not c.module.backwardFused then
            error(('%s ran fused for inference (model:evaluate{fused = true}) and has no backward: evaluate() without fusion to take gradients')
                  :format(names(children, first, i)), 0)
         end
         ok, out = pcall(c.module.backwardFused, c.module, x, g)
      else
         ok, out = pcall(c.module.backward, c.module, x, g)
      end
      if not ok then
         error(('%s (%s) backward: %s'):format(c.name, c.module.__typename, tostring(Module.describeError(out, x, 'backward'))), 0)
      end
      g = out
      i = first - 1
   end
   self.gradInput = g
   return g
end

-- Residual(block [, shortcut]): y = block(x) + shortcut(x), the shortcut defaulting to the identity.
-- Children are named 'block' and 'shortcut' unless given other names: Residual(b, s, {'conv', 'proj'}).
local Residual = Module.class('Residual', Container)
function Residual:__init(block, shortcut, names)
   self._children = {}
   names = names or {'block', 'shortcut'}
   self:add(Module.check(block, 'Residual(block, shortcut): block', 3), names[1], 3)
   if shortcut then self:add(Module.check(shortcut, 'Residual(block, shortcut): shortcut', 3), names[2], 3) end
end

function Residual:updateOutput(input)
   local a = self._children[1].module:forward(input)
   local b = self._children[2] and self._children[2].module:forward(input) or input
   -- the sum is of two tensors of one shape: a shortcut of [N,1] was broadcast over the block's [N,C] (and its
   -- gradient failed in the backward), another shape failed as "arithmetic: operand ... does not broadcast"
   local shape = a:size()
   if not Module.hasShape(b, shape) then
      error(('Residual: the %s gives %s and the %s %s: they must have one shape'):format(self._children[1].name,
            tostring(a:size()), self._children[2] and self._children[2].name or 'identity shortcut (the input)',
            tostring(b:size())), 0)
   end
   local out = self:buffer('output', shape)
   out:copy(a):add_(b)
   return out
end

function Residual:backward(input, gradOutput)
   input, gradOutput = Module.dense(input), Module.dense(gradOutput)
   self:checkGradOutput(gradOutput, self:fromForward('output'):size())
   local g = self:buffer('gradInput', input:size())
   g:copy(self._children[1].module:backward(input, gradOutput))
   if self._children[2] then g:add_(self._children[2].module:backward(input, gradOutput))
   else g:add_(gradOutput) end
   return g
end

-- Concat(dim, m1, m2, ...): every child sees the input; outputs joined along dim (2 = channels)
local Concat = Module.class('Concat', Container)
function Concat:__init(dim, ...)
   self.dim = Module.sizes(dim, 'Concat', 'dim (the first argument)', 1, 1, 3)   -- 0 or 1.5 indexed nil in the forward
   self._children = {}
   for i = 1, select('#', ...) do self:add(Module.check((select(i, ...)), ('Concat: argument %d'):format(i + 1), 3), nil, 3) end
end

function Concat:extraRepr() return 'dim=' .. self.dim end
function Concat:describe(indent)
   return describe_children(self, indent or '', ('Concat(dim=%d  [%d params]'):format(self.dim, self:numParameters()))
end

function Concat:updateOutput(input)
   if #self._children == 0 then error('Concat: no modules to join (Concat(dim, m1, m2, ...))', 0) end
   local outs, shape, total = {}, nil, 0
   for i, c in ipairs(self._children) do
      outs[i] = c.module:forward(input)
      -- the outputs differ only along dim: [2,3,1] and [2,3] on dim 2 were copied into a [2,6] element by element
      local s = outs[i]:size()
      if #s < self.dim then
         error(('Concat(dim=%d): %s (%s) gives %s, which has no dim %d'):format(self.dim, c.name, c.module.__typename,
               tostring(s), self.dim), 0)
      end
      local fits = not shape or #s == #shape
      for d = 1, shape and fits and #s or 0 do fits = fits and (d == self.dim or s[d] == shape[d]) end
      if not fits then
         error(('Concat(dim=%d): %s (%s) gives %s and the first module %s: the outputs must differ only along dim %d')
               :format(self.dim, c.name, c.module.__typename, tostring(s), tostring(shape), self.dim), 0)
      end
      shape = shape or s
      total = total + s[self.dim]
   end
   shape[self.dim] = total   -- the first output's sizes, joined along dim
   local out = self:buffer('output', shape)
   local at = 1
   for _, o in ipairs(outs) do
      out:narrow(self.dim, at, o:size(self.dim)):copy(o)
      at = at + o:size(self.dim)
   end
   return out
end

function Concat:backward(input, gradOutput)
   input, gradOutput = Module.dense(input), Module.dense(gradOutput)
   self:checkGradOutput(gradOutput, self:fromForward('output'):size())   -- each child's output gives its width
   local g = self:buffer('gradInput', input:size()):zero()
   local at = 1
   for _, c in ipairs(self._children) do
      local width = c.module.output:size(self.dim)
      g:add_(c.module:backward(input, gradOutput:narrow(self.dim, at, width):contiguous()))
      at = at + width
   end
   return g
end

-- Checkpoint(module): activation checkpointing. The forward keeps only the module's input and output: what the
-- layers inside made on the way (their outputs, their buffers) is dropped, and the backward runs the forward
-- again before going back through it, one more forward for the activation memory of everything inside. The
-- second forward draws the same random numbers (the generator's state is replayed: the same dropout masks) and
-- leaves batch norm's running statistics as the first left them, so the gradients are the plain module's (the
-- same bits on the CPU). The child is transparent in state names: a checkpointed model saves and loads as the
-- plain one. Its output and gradInput are the inside's, given back (Tensor:free) when the next forward and
-- backward make new ones, as other modules overwrite their buffers: a handle kept from an earlier step is then
-- unusable instead of silently holding the memory until the collector runs.
local Checkpoint = Module.class('Checkpoint', Container)
function Checkpoint:__init(module)
   self._children = {}
   self:add(Module.check(module, 'Checkpoint(module): module', 3), '', 3)
end

local function rng_state()
   local s = ffi.new('uint64_t[4]')
   cffi.C.ts_rng_get_state(s)
   return s
end

-- Drops what the layers inside made (clearState) and gives the tensors back at once (the garbage collector would
-- keep them until its next cycle, so the memory would not fall), except those in keep
local function release_inside(module, keep)
   local tensors = {}
   module:apply(function(m)
      for field in pairs(m._scratch or {}) do tensors[m[field] or false] = true end
      tensors[m.output or false], tensors[m.gradInput or false] = true, true
   end)
   module:clearState()
   for t in pairs(tensors) do
      if t and T.isTensor(t) and not keep[t] then t:free() end
   end
end

-- the running statistics of every batch norm inside, to put back after the second forward
local function running_stats(module)
   local saved = {}
   module:apply(function(m)
      if m.running_mean then
         saved[#saved + 1] = {m, m.running_mean:clone(), m.running_var:clone(), m.num_batches_tracked:clone()}
      end
   end)
   return saved
end

-- gives back t unless it is one of the tensors still in use
local function free_unless(t, ...)
   if not t then return end
   for i = 1, select('#', ...) do if select(i, ...) == t then return end end
   t:free()
end

-- Only what the module made is given back: a module that hands on what it was given (Identity, Dropout in
-- evaluation) returns the caller's own tensor, which the next forward freed (the caller's input, or in the
-- backward their gradOutput, unusable from then on)
function Checkpoint:updateOutput(input)
   local m = self._children[1].module
   if self.ownOutput then free_unless(self.output, input) end
   self.output = nil
   self.rng, self.forwardTrain = rng_state(), self.train
   local out = m:forward(input)
   self.ownOutput = out ~= input
   release_inside(m, {[out] = true, [input] = true})
   return out
end

function Checkpoint:backward(input, gradOutput)
   input, gradOutput = Module.dense(input), Module.dense(gradOutput)
   local m = self._children[1].module
   m.needsGradInput = self.needsGradInput
   -- the generator's state of the forward (without one, a NULL state crashed the process)
   local rng = self:fromForward('rng')
   -- the forward run again in the other mode gave the gradients of another function than the output's (batch norm's
   -- running statistics for its batch's, no dropout mask): refused, as a plain BatchNorm's backward refuses it
   if self.train ~= self.forwardTrain then
      error(('Checkpoint:backward: the forward ran in %s mode and the module is now in %s mode: the backward runs the ' ..
             'forward again, so call it before switching'):format(self.forwardTrain and 'training' or 'evaluation',
             self.train and 'training' or 'evaluation'), 0)
   end
   if self.ownGradInput then free_unless(self.gradInput, input, gradOutput, self.output) end
   self.gradInput = nil
   local now, stats = rng_state(), running_stats(m)
   cffi.C.ts_rng_set_state(rng)
   m:forward(input)
   cffi.C.ts_rng_set_state(now)
   for _, s in ipairs(stats) do
      s[1].running_mean:copy(s[2])
      s[1].running_var:copy(s[3])
      s[1].num_batches_tracked:copy(s[4])
   end
   self.gradInput = m:backward(input, gradOutput)
   self.ownGradInput = self.gradInput ~= gradOutput
   release_inside(m, {[self.gradInput] = true, [self.output] = true, [input] = true, [gradOutput] = true})
   return self.gradInput
end

return {Container = Container, Sequential = Sequential, Residual = Residual, Concat = Concat, Checkpoint = Checkpoint}
