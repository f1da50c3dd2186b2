-- ts.nn: layers and containers with the Torch7 module protocol (see module.lua).
local nn = {Module = require('ts.nn.module')}
for _, file in ipairs({'containers', 'conv', 'batchnorm', 'activation', 'pool', 'upsample', 'linear', 'dropout',
                       'reshape', 'loss', 'shortcut', 'metric', 'spatial'}) do
   for name, cls in pairs(require('ts.nn.' .. file)) do nn[name] = cls end
end
return nn
