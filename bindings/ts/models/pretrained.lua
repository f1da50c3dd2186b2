-- ts.models.pretrained(name [, {dir = models folder, strict = true}]): a published network with its weights,
-- and the input convention it was trained with as model.inputConvention ({mean, std, size}: x in 0..1 is
-- fed as (x - mean) / std at size x size), which ts.data.preprocess(model.inputConvention) applies.
-- Weights come from <dir>/<folder>/model.safetensors, dir defaulting to TSHOST_MODELS.
local serialize = require('ts.serialize')
local files = require('ts.files')
local keys = require('ts.keys')

local M = {}

M.catalog = {
   resnet20 = {folder = 'resnet20-cifar10', builder = 'resnet20', classes = 10, head = 'linear', features = 64,
               input = {mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225}, size = 32}},
   resnet56 = {folder = 'resnet56-cifar10', builder = 'resnet56', classes = 10, head = 'linear', features = 64,
               input = {mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225}, size = 32}},
   resnet8 = {folder = 'resnet8-cifar10', builder = 'resnet8', classes = 10, head = 'fc', features = 64,
              input = {mean = {0, 0, 0}, std = {1 / 255, 1 / 255, 1 / 255}, size = 32}},
   mobilenet = {folder = 'mobilenetv1-025-vww96', builder = 'mobilenet_v1_025', classes = 2, head = 'fc', features = 256,
                input = {mean = {0, 0, 0}, std = {1, 1, 1}, size = 96}},
}

-- An error unless every float32 tensor of model is finite. A NaN or an infinity in the weights makes every answer
-- NaN, which reads as a confident prediction (and passes an abstention threshold, NaN < p being false): refused where
-- the file they came from can be named. what: the call, path: the file.
function M.checkFinite(model, what, path)
   for _, pair in ipairs(model:stateDict()) do
      local t = pair[2]
      if t:dtype() == 'float32' and t:numel() > 0 then
         local sum = t:sum()
         if sum ~= sum or sum == math.huge or sum == -math.huge then
            error(('%s: %s: %s holds NaN or infinite values: the weights are damaged, or the training diverged'):format(
                  what, path, pair[1]), 0)
         end
      end
   end
end

function M.pretrained(models, name, opts)
   -- a number failed indexing it, and {classes = 43} (a head is ts.transfer's) or {strikt = false} was ignored
   opts = keys.check('ts.models.pretrained', opts or {}, {dir = true, strict = true}, 3)
   -- strict = 'no' was strict, dir = true failed in a concatenation, dir = 5 looked for the folder "5"
   keys.flag(opts.strict, 'ts.models.pretrained', 'strict', 3)
   if opts.dir ~= nil and (type(opts.dir) ~= 'string' or opts.dir == '') then
      error(("ts.models.pretrained: dir must be a folder's path, got %s"):format(keys.show(opts.dir)), 3)
   end
   local entry = M.catalog[name]
   if not entry then
      local known = {}
      for k in pairs(M.catalog) do known[#known + 1] = k end
      table.sort(known)
      error(('ts.models.pretrained: unknown model %s (known: %s)'):format(tostring(name), table.concat(known, ', ')), 3)
   end
   -- (an empty TSHOST_MODELS, as a shell leaves an unset one, looked in the root folder)
   local env = os.getenv('TSHOST_MODELS')
   local dir = opts.dir or (env ~= '' and env or nil)
   if not dir then error('ts.models.pretrained: set TSHOST_MODELS to the pretrained models folder (or pass dir)', 3) end
   -- a folder that is not there was "<dir>/<folder>/model.safetensors: cannot open", which did not say what was wrong
   if not files.isDir(dir) then
      error(('ts.models.pretrained: the pretrained models folder %s does not exist (%s)'):format(dir,
            opts.dir and 'dir' or 'TSHOST_MODELS'), 3)
   end
   local path = dir .. '/' .. entry.folder .. '/model.safetensors'
   local model = models[entry.builder]({classes = entry.classes})
   local ok, err = pcall(serialize.load, path, model, {strict = opts.strict ~= false})
   if not ok then error(err, 3) end
   M.checkFinite(model, 'ts.models.pretrained', path)
   model:evaluate()
   -- a copy: a caller that changes its model's convention must not change the catalog's, and so every later load's
   model.inputConvention = {mean = {unpack(entry.input.mean)}, std = {unpack(entry.input.std)}, size = entry.input.size}
   model.pretrainedName, model.headName, model.featureSize = name, entry.head, entry.features
   return model
end

return M
