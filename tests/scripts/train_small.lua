-- A small deterministic training run for tests/test_train.lua: tshost tests/scripts/train_small.lua run=DIR
-- (early_stop = 0: none; lr = 0 makes every epoch after the first a non-improving one; a large hidden layer
-- makes the checkpoint writes long enough to be killed in)
local opt = ts.options{run = '', epochs = 5, seed = 3, train = 1500, early_stop = 0, lr = 0.05, schedule = 'cosine',
                       hidden = 32}
local g = ts.data.synthetic{train = opt.train, valid = 300, test = 300, seed = 5}
ts.train{
   model = {name = 'refcnn', widths = {8, 16, 16}, hidden = opt.hidden},
   data = {train = g.train, valid = g.valid}, epochs = opt.epochs, batch = 50, lr = opt.lr, seed = opt.seed,
   schedule = opt.schedule, early_stop = opt.early_stop > 0 and opt.early_stop or nil,
   augment = ts.data.augment{rotate = 10, brightness = 0.2, flip = 0.5}, run = opt.run, quiet = true,
}
print('done')
