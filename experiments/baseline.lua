-- The custom CNN pushed as far as the CPU budget allows: ts.models.baseline (three conv stages with batch
-- norm, 823k parameters), label-aware augmentation, label smoothing, SGD with Nesterov momentum and a
-- cosine schedule with warmup. The model is chosen on validation; the test set is evaluated once at the end.
--   tshost experiments/baseline.lua [epochs=24] [lr=0.05] [batch=128] [run=runs/baseline] [synthetic=false]
local opt = ts.experiment.options{epochs = 24, lr = 0.05, batch = 128, run = 'runs/baseline', label_smoothing = 0.1,
                                  weight_decay = 5e-4, warmup = 1}
local g = ts.experiment.dataset(opt)

local mean, std = g.train:channelStats()
local result = ts.train{
   model = {name = 'baseline', classes = 43},
   data = {train = g.train, valid = g.valid},
   epochs = opt.epochs, batch = opt.batch, lr = opt.lr, seed = opt.seed,
   optimizer = 'sgd', momentum = 0.9, nesterov = true, weight_decay = opt.weight_decay,
   schedule = 'cosine', warmup = opt.warmup, label_smoothing = opt.label_smoothing,
   augment = ts.data.augment{rotate = 12, scale = {0.9, 1.1}, translate = 0.08, shear = 6, perspective = 0.03,
                             brightness = 0.35, contrast = 0.35, saturation = 0.3, hue = 0.02, gamma = {0.7, 1.4},
                             blur = {0.15, 1.0}, noise = 0.02, cutout = {0.25, 8}, flip = 0.5},
   preprocess = ts.data.preprocess{mean = mean, std = std},
   run = opt.run, note = 'custom CNN (baseline): augmentation, label smoothing, SGD+Nesterov, cosine', quiet = opt.quiet,
}
ts.experiment.finish(result, g, {note = 'baseline custom CNN', quiet = opt.quiet})
