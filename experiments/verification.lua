-- Face verification and recognition, with traffic signs for faces (the course's Exercise 5 as a working feature).
-- An embedding (the reference CNN with a 64-dimensional, batch-normalized, L2-normalized head) is trained with the batch-hard triplet
-- loss on 33 of the 43 sign classes; the other 10 classes are never seen in training. Each of those 10 is then
-- enrolled with one picture (one-shot), and on their test images:
--   verification (1:1): "is this the enrolled sign X?" for every (image, enrolled sign) pair: the ROC of the
--     embedding distance, its area, the equal error rate and the distance threshold there;
--   recognition (1:K): "which of K enrolled signs is this?", the nearest enrolled embedding, for K = 2 .. 10
--     (every K-subset's accuracy averaged over random subsets).
-- Then the course's statement "to train a face recognition system it would be reasonable to use 100,000 pictures
-- of 100,000 different persons": the same number of training images, once with their classes (several images
-- each) and once with every image its own identity (one picture per person). With one picture per identity no
-- batch holds a positive pair: every anchor is left out of the triplet loss, nothing is learned.
--   tshost experiments/verification.lua [steps=600] [batch=128] [per_class=8] [images=4000] [subsets=30]
local nn = ts.nn
local opt = ts.experiment.options({steps = 600, batch = 128, per_class = 8, images = 4000, subsets = 30, lr = 1e-3,
                                   margin = 0.2, dim = 64, optimizer = 'adam'},
                                  {steps = {1}, batch = {2}, per_class = {1}, images = {1}, subsets = {1}, dim = {1}})
if opt.optimizer ~= 'adam' and opt.optimizer ~= 'sgd' then   -- (any other word trained with SGD)
   error(('verification.lua: optimizer must be adam or sgd, got %q'):format(opt.optimizer), 0)
end
-- (batch=1 failed in the batch norm, lr=-1 in the optimizer with a traceback, both after the data was made)
if opt.lr < 0 then error(('verification.lua: lr must be >= 0, got %g'):format(opt.lr), 0) end
local g = ts.experiment.dataset(opt)
ts.manualSeed(opt.seed)

-- positions (1-based) of each class's images in a dataset
local function by_class(ds)
   local out = {}
   for i = 1, ds:size() do
      local c = ds.y[i]
      out[c] = out[c] or {}
      out[c][#out[c] + 1] = i
   end
   return out
end
local train_classes, test_classes = by_class(g.train), by_class(g.test)

-- the 10 unseen classes, spread over the class ids (those with a picture to enrol and test images to probe)
local unseen, is_unseen = {}, {}
for k = 0, 9 do
   local c = 2 + 4 * k
   if train_classes[c] and test_classes[c] then unseen[#unseen + 1], is_unseen[c] = c, true end
end
if #unseen < 2 then error('verification: the data has fewer than 2 of the unseen classes with training and test images', 0) end

local mean, std = g.train:channelStats()
local pre = ts.data.preprocess{mean = mean, std = std}
local augment = ts.data.augment{rotate = 10, scale = {0.9, 1.1}, translate = 0.06, brightness = 0.3, contrast = 0.3}

-- The embedding: the reference CNN's head made opt.dim wide, batch norm, then unit length. The batch norm
-- centres the embedding before it is normalized: the head's ReLU features share a large positive mean, so the
-- unit vectors of its raw outputs start almost equal (distances near 0.005), and the triplet loss then stays at
-- its margin, collapsed (as re-identification's "BNNeck" embeddings avoid the same way).
local function embedder()
   local net = ts.models.refcnn{classes = opt.dim}
   net:add(nn.BatchNorm1d(opt.dim))
   net:add(nn.Normalize())
   return net
end

-- The training images: up to opt.images of the seen classes, in a fixed random order; `identities` gives each
-- one its class, or (singletons) an identity of its own
local seen_positions = {}
for i = 1, g.train:size() do
   if not is_unseen[g.train.y[i]] then seen_positions[#seen_positions + 1] = i end
end
for i = #seen_positions, 2, -1 do
   local j = ts.randint(i)
   seen_positions[i], seen_positions[j] = seen_positions[j], seen_positions[i]
end
local pool = {}
for i = 1, math.min(opt.images, #seen_positions) do pool[i] = seen_positions[i] end

-- Trains an embedding with batch-hard triplets; batches of opt.batch / per_class identities with per_class images
-- each (P x K sampling, so that anchors have positives) when identities repeat, random images otherwise. Returns the
-- model and the share of anchors that found a positive and a negative.
local function train(identity_of)
   ts.manualSeed(opt.seed)
   local model = embedder()
   model:training()
   local members = {}
   for _, pos in ipairs(pool) do
      local id = identity_of(pos)
      members[id] = members[id] or {}
      members[id][#members[id] + 1] = pos
   end
   local ids = {}
   for id in pairs(members) do ids[#ids + 1] = id end
   table.sort(ids)
   local loss = nn.TripletMarginLoss{margin = opt.margin}
   local sgd = opt.optimizer == 'adam' and ts.optim.Adam(model, {lr = opt.lr})
               or ts.optim.SGD(model, {lr = opt.lr, momentum = 0.9, weight_decay = 5e-4})
   local schedule = ts.optim.schedule.cosine(sgd, {total = opt.steps, warmup = math.floor(opt.steps / 20)})
   local valid, anchors = 0, 0
   for step = 1, opt.steps do
      -- distinct identities, so that an image never meets itself (two augmentations of one picture would make
      -- a positive pair out of a single picture)
      local positions, labels, order = {}, {}, {}
      for i = 1, #ids do order[i] = i end
      for i = 1, #ids do
         if #positions >= opt.batch then break end
         local j = i + ts.randint(#ids - i + 1) - 1
         order[i], order[j] = order[j], order[i]
         local id = ids[order[i]]
         local m = members[id]
         -- per_class distinct images of the identity (all it has, when fewer)
         local picks = {}
         for k = 1, #m do picks[k] = m[k] end
         for k = 1, math.min(opt.per_class, #m, opt.batch - #positions) do
            local r = k + ts.randint(#picks - k + 1) - 1
            picks[k], picks[r] = picks[r], picks[k]
            positions[#positions + 1], labels[#labels + 1] = picks[k], id
         end
      end
      local x = ts.data.batch(g.train, positions, {preprocess = pre, augment = augment})
      sgd:zeroGrad()
      local e = model:forward(x)
      model:backward(x, loss:backward(e, labels))
      sgd:step()
      schedule:step()
      local a = loss:triplets(e, labels)
      for i = 1, a:numel() do valid = valid + (a[i] >= 0 and 1 or 0) end
      anchors = anchors + a:numel()
   end
   model:evaluate{fused = true}
   return model, valid / anchors
end

-- the embeddings [N, D] of a dataset's positions
local function embed(model, ds, positions)
   local out = {}
   for s = 1, #positions, 256 do
      local chunk = {}
      for k = s, math.min(#positions, s + 255) do chunk[#chunk + 1] = positions[k] end
      local e = model:forward((ts.data.batch(ds, chunk, {preprocess = pre}))):clone()
      for i = 1, #chunk do out[#out + 1] = e[i] end
   end
   return out
end

local function distance(a, b)
   local d = a:clone():add_(b:clone():mul_(-1))
   return math.sqrt((d * d):sum())
end

-- The evaluation on the unseen classes: one enrolled image each (the first of its training images in a seeded
-- random order), every test image of those classes as a probe
local function evaluate(model)
   local gallery, probes, probe_class = {}, {}, {}
   for _, c in ipairs(unseen) do
      local imgs = train_classes[c]
      gallery[c] = embed(model, g.train, {imgs[(opt.seed * 7919) % #imgs + 1]})[1]
      for _, p in ipairs(test_classes[c] or {}) do
         probes[#probes + 1], probe_class[#probes + 1] = p, c
      end
   end
   local e = embed(model, g.test, probes)
   -- verification: every (probe, enrolled sign) pair, genuine when the classes agree
   local pairs_ = {}
   for i, v in ipairs(e) do
      for _, c in ipairs(unseen) do pairs_[#pairs_ + 1] = {distance(v, gallery[c]), probe_class[i] == c} end
   end
   table.sort(pairs_, function(p, q) return p[1] < q[1] end)
   local genuine, impostor = 0, 0
   for _, p in ipairs(pairs_) do if p[2] then genuine = genuine + 1 else impostor = impostor + 1 end end
   -- sweep the threshold up through the sorted distances: accepted = closer than it
   local tp, fp, auc, eer, eer_threshold, best_gap = 0, 0, 0, 1, 0, math.huge
   for _, p in ipairs(pairs_) do
      if p[2] then tp = tp + 1 else fp = fp + 1; auc = auc + tp end
      local far, frr = fp / math.max(impostor, 1), 1 - tp / math.max(genuine, 1)
      if math.abs(far - frr) < best_gap then best_gap, eer, eer_threshold = math.abs(far - frr), (far + frr) / 2, p[1] end
   end
   auc = auc / math.max(genuine * impostor, 1)
   -- recognition among K enrolled signs
   local accuracy = {}
   for k = 2, #unseen do
      local hits, total = 0, 0
      for _ = 1, k == #unseen and 1 or opt.subsets do
         local order = {}
         for i, c in ipairs(unseen) do order[i] = c end
         for i = #order, 2, -1 do
            local j = ts.randint(i)
            order[i], order[j] = order[j], order[i]
         end
         local chosen = {}
         for i = 1, k do chosen[order[i]] = true end
         for i, v in ipairs(e) do
            if chosen[probe_class[i]] then
               local best, best_c = math.huge, nil
               for c in pairs(chosen) do
                  local d = distance(v, gallery[c])
                  if d < best or (d == best and c < best_c) then best, best_c = d, c end
               end
               hits, total = hits + (best_c == probe_class[i] and 1 or 0), total + 1
            end
         end
      end
      accuracy[k] = hits / math.max(total, 1)
   end
   return {auc = auc, eer = eer, threshold = eer_threshold, genuine = genuine, impostor = impostor, accuracy = accuracy}
end

local t0 = ts.files.now()
local classes_model, classes_valid = train(function(pos) return g.train.y[pos] end)
local classes = evaluate(classes_model)
local singles_model, singles_valid = train(function(pos) return 1000 + pos end)   -- every image its own identity
local singles = evaluate(singles_model)
local untrained = embedder()
untrained:evaluate{fused = true}
local chance = evaluate(untrained)

print(('unseen classes (enrolled with one image each): %s; %d genuine and %d impostor pairs'):format(
   table.concat(unseen, ', '), classes.genuine, classes.impostor))
print(('%-52s %7s %7s %9s %12s'):format('training set (' .. #pool .. ' images of the 33 other classes)', 'AUC', 'EER',
      'threshold', 'valid triplets'))
local function row(name, r, share)
   print(('%-52s %7.3f %6.1f%% %9.3f %11.0f%%'):format(name, r.auc, 100 * r.eer, r.threshold, 100 * share))
end
row('their classes (several images per class)', classes, classes_valid)
row('one image per identity (each image its own class)', singles, singles_valid)
row('untrained network', chance, 0)
local ks, accs = {}, {}
for k = 2, #unseen do ks[#ks + 1], accs[#accs + 1] = ('%6d'):format(k), ('%5.1f%%'):format(100 * classes.accuracy[k]) end
print('recognition among K enrolled signs, K =' .. table.concat(ks, ''))
print('  accuracy (classes)                     ' .. table.concat(accs, ' '))
accs = {}
for k = 2, #unseen do accs[#accs + 1] = ('%5.1f%%'):format(100 * singles.accuracy[k]) end
print('  accuracy (one image per identity)      ' .. table.concat(accs, ' '))
print(('%.0f s'):format(ts.files.now() - t0))
-- the conclusion, as the numbers have it
local acc2, accK = classes.accuracy[2], classes.accuracy[#unseen]
local harder = acc2 > accK
   and ('recognition (1:K) gets harder as K grows (accuracy %.1f%% at K = 2, %.1f%% at K = %d: K comparisons, each a '
        .. 'chance to err)'):format(100 * acc2, 100 * accK, #unseen)
   or ('recognition (1:K) did not get harder with K here (accuracy %.1f%% at K = 2, %.1f%% at K = %d)'):format(
        100 * acc2, 100 * accK, #unseen)
-- "learns nothing": the EER of one image per identity within two standard errors of the untrained network's
-- (the error of a rate estimated on the genuine pairs)
local se = math.sqrt(math.max(chance.eer * (1 - chance.eer), 1e-12) / math.max(classes.genuine, 1))
local nothing = singles_valid == 0 and math.abs(singles.eer - chance.eer) <= 2 * se
local singles_text
if singles_valid == 0 then
   singles_text = ('one picture per identity gives the triplet loss no positive pair (0%% valid triplets), so it %s (EER '
                   .. '%.1f%%, the untrained network %.1f%%)%s'):format(
      nothing and 'learns nothing' or 'learns nothing from the loss, yet its EER moved (batch norm\'s statistics still follow the data)',
      100 * singles.eer, 100 * chance.eer,
      nothing and ': 100,000 pictures of 100,000 persons is not a reasonable training set' or '')
else
   singles_text = ('one picture per identity still left %.0f%% valid triplets (EER %.1f%%, the untrained network %.1f%%)'):format(
      100 * singles_valid, 100 * singles.eer, 100 * chance.eer)
end
print(('conclusion: verification (1:1) needs one enrolled picture and a threshold (EER %.1f%% at distance %.2f for signs '
       .. 'never seen in training); %s; and %s'):format(100 * classes.eer, classes.threshold, harder, singles_text))
