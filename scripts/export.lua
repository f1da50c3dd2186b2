-- tshost scripts/export.lua RUN out.onnx [--no-preprocess]: a run's chosen model (model.safetensors, rebuilt by
-- ts.models.load) as an ONNX model, its class names in the metadata; with its preprocessing inside (it then takes
-- RGB images in 0..1, channels first, at the run's input size), unless --no-preprocess.
local run, out = arg[1], arg[2]
if not run or not out then
   io.stderr:write('usage: tshost scripts/export.lua RUN out.onnx [--no-preprocess]\n')
   os.exit(2)
end
local bake = arg[3] ~= '--no-preprocess'
if arg[3] and bake then
   io.stderr:write(('export.lua: unknown option %s (--no-preprocess)\n'):format(arg[3]))
   os.exit(2)
end
local model, config = ts.models.load(run)
local pre = config.preprocess or {}
local size = type(pre.size) == 'table' and pre.size[1] or pre.size or 32
local names = ts.data.classNamesById(config.class_names, run .. '/config.json', true)
ts.onnx.export(model, out, {input = {1, 3, size, size}, preprocess = bake and pre or nil, classes = names})
print(('%s: %s from %s%s'):format(out, tostring(model):match('^[^\n]*'), run, bake and ', preprocessing inside' or ''))
