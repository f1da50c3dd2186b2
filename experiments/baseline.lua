-- The custom CNN pushed as far as the CPU budget allows: ts.models.baseline (three conv stages with batch
-- norm, 823k parameters), label-aware augmentation, label smoothing, SGD with Nesterov momentum and a
-- cosine schedule with warmup (the recipe is ts.experiment.baseline). The model is chosen on validation;
-- the test set is evaluated once at the end.
--   tshost experiments/baseline.lua [epochs=24] [lr=0.05] [batch=128] [run=runs/baseline] [synthetic=false]
local opt = ts.experiment.options{epochs = 24, lr = 0.05, batch = 128, run = 'runs/baseline', label_smoothing = 0.1,
                                  weight_decay = 5e-4, warmup = 1}
local g = ts.experiment.dataset(opt)

local mean, std = g.train:channelStats()
local cfg = ts.experiment.baseline(opt)
cfg.data = {train = g.train, valid = g.valid}
cfg.seed, cfg.run, cfg.quiet = opt.seed, opt.run, opt.quiet
cfg.preprocess = ts.data.preprocess{mean = mean, std = std}
cfg.note = 'custom CNN (baseline): augmentation, label smoothing, SGD+Nesterov, cosine'
local result = ts.train(cfg)
ts.experiment.finish(result, g, {note = 'baseline custom CNN', quiet = opt.quiet})
