-- tshost scripts/export.lua RUN out.onnx [--no-preprocess]: a run's chosen model (model.safetensors, rebuilt by
-- ts.models.load) as an ONNX model, its class names in the metadata; with its preprocessing inside (it then takes
-- RGB images in 0..1, channels first, at the run's input size), unless --no-preprocess.
local run, out = arg[1], arg[2]
if not run or not out then
   io.stderr:write('usage: tshost scripts/export.lua RUN out.onnx [--no-preprocess]\n')
   os.exit(2)
end
local bake = arg[3] ~= '--no-preprocess'
-- (a word after the option was ignored: `--no-preprocess x.onnx` exported to the first path alone)
if (arg[3] and bake) or arg[4] then
   io.stderr:write(('export.lua: unknown option %s (--no-preprocess)\n'):format(bake and arg[3] or arg[4]))
   os.exit(2)
end
-- the output is named .onnx: any other name was written over as it was, the run's own model.safetensors (its
-- trained weights) or a photo among them, and `RUN --no-preprocess` wrote a file named --no-preprocess. Standard
-- output or a descriptor (/dev/stdout, /dev/fd/3) is a stream, written in place: `export.lua RUN /dev/stdout | ...`
local stream = out == '/dev/stdout' or out:match('^/dev/fd/%d+$') ~= nil
if not out:lower():match('%.onnx$') and not stream then
   io.stderr:write(('export.lua: %s: the output must be named .onnx (usage: RUN out.onnx [--no-preprocess])\n'):format(out))
   os.exit(2)
end
local model, config = ts.models.load(run)
local pre = config.preprocess or {}
-- the run's images as its loader made them: size n or {h, w} (the width of {48, 64} was taken for 48), of the
-- network's channels (a run of gray images, model.channels = 1, was exported for 3 and failed), or RGB that the
-- preprocessing inside makes gray
local h, w = 32, 32
if type(pre.size) == 'table' then h, w = pre.size[1], pre.size[2] elseif pre.size then h, w = pre.size, pre.size end
local net_channels = type(config.model) == 'table' and config.model.channels or 3
local channels = bake and pre.grayscale and 3 or net_channels
local names = ts.data.classNamesById(config.class_names, run .. '/config.json', true)
ts.onnx.export(model, out, {input = {1, channels, h, w}, preprocess = bake and pre or nil, classes = names})
-- (to standard error when the model went to a stream: printed after it, the line became part of the file)
local said = ('%s: a %s from %s%s\n'):format(out, ts.onnx.describe(model), run, bake and ', preprocessing inside' or '')
if stream then io.stderr:write(said) else io.write(said) end
