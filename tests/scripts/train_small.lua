-- A small deterministic training run for tests/test_train.lua: tshost tests/scripts/train_small.lua run=DIR
local opt = ts.options{run = '', epochs = 5, seed = 3, train = 1500}
local g = ts.data.synthetic{train = opt.train, valid = 300, test = 300, seed = 5}
ts.train{
   model = {name = 'refcnn', widths = {8, 16, 16}, hidden = 32},
   data = {train = g.train, valid = g.valid}, epochs = opt.epochs, batch = 50, lr = 0.05, seed = opt.seed,
   augment = ts.data.augment{rotate = 10, brightness = 0.2, flip = 0.5}, run = opt.run, quiet = true,
}
print('done')
