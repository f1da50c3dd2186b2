-- Real photos, where the sign is a small part of the scene: the whole photo squeezed to 32x32 (what predict
-- did before) against the window search (ts.detect: the detector's P(sign) times the classifier's top-1).
--   1. the run's detector (<run>/detector), trained first when it has none (ts.detect.train: windows of
--      scenes made from the training crops, validated on scenes of the validation crops);
--   2. a test set of generated scenes, one sign each, made from the TEST crops (never seen in training),
--      a second one from the class icons (pictograms, a look no training image has) when the data folder
--      has icons/, a third of small signs (20-64 pixels) in large photos (960x720), and scenes with no
--      sign; written as PNGs with labels.csv (file, ClassId, the sign's box as Roi.X1..Roi.Y2, GTSRB's
--      inclusive convention) so scripts/predict.lua can be pointed at them;
--   3. top-1 for the whole image and for the search on each (the class of its best window, found or not),
--      how often the search's box covers the sign (IoU >= 0.5), how often it says it found a sign (its best
--      window's P(sign) x P(top class) reaches the threshold predict uses: the run's fitted one in
--      search.json, or threshold=) and how often it finds it and reads it right (predict's answer is then
--      right), how often an empty scene is rightly "no sign", and the same on the original-resolution test
--      images in <data>/originals (tight crops: the search must not lose them), and on close-ups (the scenes
--      of test crops cut to photos the sign fills most of, its edge often on the photo's); with a fitted threshold,
--      the same searches judged at the fixed 0.5 too (results.json keeps each image's best score and
--      whether its class was right, so any threshold can be judged afterwards);
--   4. a contact sheet: the truth in green, the search's box in red.
--   tshost experiments/scenes.lua [run=runs/baseline] [scenes=200] [out=runs/scenes] [detector_scenes=3000]
--                                [detector_epochs=6] [threshold=the run's]
local opt = ts.experiment.options({run = 'runs/baseline', scenes = 200, out = 'runs/scenes', detector_scenes = 3000,
                                   detector_epochs = 6, threshold = ''},
                                  {scenes = {1}, detector_scenes = {1}, detector_epochs = {1}})
if opt.threshold ~= '' then   -- a string option (its default says "the run's"): read as a number here
   local th = tonumber(opt.threshold)
   if not (th and th > 0 and th < 1) then
      error(('scenes.lua: threshold=%s: give a number between 0 and 1'):format(tostring(opt.threshold)), 0)
   end
   opt.threshold = th
end
local model, config = ts.models.load(opt.run)
local final = ts.json.readFile(opt.run .. '/final.json') or {}
local g = ts.experiment.runData(opt.run, final, opt)
local pre = ts.data.preprocess(config.preprocess)
-- the temperature and the views of the run's calibration, as predict uses them
local temperature, views = ts.experiment.readCalibration(opt.run)
-- the icons and the original-resolution images are GTSRB's: left out when the run learned the generated signs
local data_dir = not g.synthetic and ((opt.data ~= '' and opt.data) or os.getenv('TSHOST_DATA') or 'data') or nil

-- 1. the detector
local detector = opt.run .. '/detector'
if not ts.files.exists(detector .. '/model.safetensors') then
   print(('training the sign detector into %s (%d scenes, %d epochs)'):format(detector, opt.detector_scenes, opt.detector_epochs))
   -- a trainval run's detector validates on the tracks it kept: the held-out ones, which fit the threshold, choose nothing
   local unseen, why, kept = ts.experiment.heldOut(opt.run, final, g)
   ts.detect.train(g, {run = detector, scenes = opt.detector_scenes, epochs = opt.detector_epochs, quiet = opt.quiet,
                       valid = kept})
   if unseen then print(ts.detect.describeFit(opt.run, ts.detect.fitRun(opt.run, g)))
   else print(('no threshold fitted: %s'):format(why)) end
end
if opt.threshold == '' then
   local why
   opt.threshold, why = ts.detect.threshold(opt.run, true, temperature, views)
   if why then print(('(%s: the threshold is 0.5)'):format(why)) end
end
print(('a sign is found at P(sign) x P(class) >= %.3f'):format(opt.threshold))
local scorers = ts.detect.scorers(model, pre, {detector = detector, views = views})
local search_opts = {temperature = temperature}

-- 2. the test scenes
local sets = {{name = 'scenes of test crops', scenes = ts.scene.generate{n = opt.scenes, seed = 101, signs = g.test,
                                                                         per_scene = {1, 1}}}}
local ok_icons, icons = false, nil
if data_dir then ok_icons, icons = pcall(ts.scene.icons, data_dir .. '/icons') end
if ok_icons then
   sets[#sets + 1] = {name = 'scenes of icons', scenes = ts.scene.generate{n = math.ceil(opt.scenes / 2), seed = 102,
                                                                            icons = icons, per_scene = {1, 1}}}
else
   print(data_dir and ('(no icons in %s/icons: the icon scenes are left out)'):format(data_dir)
         or '(a run of the generated signs: the icon scenes and the original-resolution images are left out)')
end
-- small signs in large photos: 960x720 scenes whose sign is 20-64 pixels wide (2-7% of the width), as a sign
-- some way off is in a photo; predict shrinks a photo to its max_side before the search, which loses the smallest
sets[#sets + 1] = {name = 'small signs in 960x720 photos', scenes = ts.scene.generate{n = math.ceil(opt.scenes / 2),
   seed = 105, signs = g.test, per_scene = {1, 1}, height = 720, width = 960, size = {20, 64}}}
local empty = ts.scene.generate{n = math.ceil(opt.scenes / 4), seed = 103, signs = g.test, empty = 1}
-- close-ups: the scenes of test crops cut to photos their sign fills most of (ts.scene.closeups)
local close = ts.scene.closeups(sets[1].scenes, 104)
ts.files.mkdirs(opt.out .. '/images')
local rows = {'file,ClassId,Width,Height,Roi.X1,Roi.Y1,Roi.X2,Roi.Y2'}
local function write(file, img, class, b)
   ts.image.save(opt.out .. '/images/' .. file, img)
   rows[#rows + 1] = ('%s,%d,%d,%d,%d,%d,%d,%d'):format(file, class, img:size(2), img:size(1),
      math.floor(b[1]), math.floor(b[2]), math.ceil(b[3]) - 1, math.ceil(b[4]) - 1)
end
for k, set in ipairs(sets) do
   for i, s in ipairs(set.scenes) do write(('%d_%04d.png'):format(k, i), s.image, s.signs[1].class, s.signs[1].box) end
end
for i, s in ipairs(close) do write(('close_%04d.png'):format(i), s.image, s.signs[1].class, s.signs[1].box) end
ts.files.writeFile(opt.out .. '/images/labels.csv', table.concat(rows, '\n') .. '\n')

-- 3. whole image against the search
local results, sheet_items = {}, {}
-- how many of a set's outcomes ({score, right}) a threshold finds, and finds read right
local function at_threshold(outcomes, th)
   local found, right = 0, 0
   for _, o in ipairs(outcomes) do
      if o.score >= th then
         found = found + 1
         if o.right then right = right + 1 end
      end
   end
   return found / #outcomes, right / #outcomes
end
local function measure(name, items)   -- items: {image, class, box or nil}
   local whole, search, boxed, outcomes, start = 0, 0, 0, {}, ts.files.now()
   local whole_right, search_right = {}, {}   -- per image, for McNemar's test of the two on the same images
   for _, it in ipairs(items) do
      local r = ts.detect.search(it.image, scorers, search_opts)
      local best = r.detections[1]
      whole_right[#whole_right + 1], search_right[#search_right + 1] = r.whole.class == it.class, best.class == it.class
      if r.whole.class == it.class then whole = whole + 1 end
      if best.class == it.class then search = search + 1 end
      outcomes[#outcomes + 1] = {score = best.score, right = best.class == it.class}
      if it.box and ts.detect.iou(best.box, it.box) >= 0.5 then boxed = boxed + 1 end
      if #sheet_items < 12 and it.box then sheet_items[#sheet_items + 1] = {it = it, best = best} end
   end
   local n = #items
   local found, right = at_threshold(outcomes, opt.threshold)
   results[#results + 1] = {set = name, images = n, whole_top1 = whole / n, search_top1 = search / n,
                            box_iou50 = items[1].box and boxed / n or nil, sign_found = found, found_right = right,
                            outcomes = outcomes, seconds_per_image = (ts.files.now() - start) / n,
                            p_mcnemar = select(3, ts.metrics.mcnemar(whole_right, search_right))}
end
local function items_of(scenes)
   local items = {}
   for i, s in ipairs(scenes) do items[i] = {image = s.image, class = s.signs[1].class, box = s.signs[1].box} end
   return items
end
for _, set in ipairs(sets) do measure(set.name, items_of(set.scenes)) end
measure('close-ups of test crops', items_of(close))
-- (only a missing list leaves them out: a damaged one is an error naming its line, which pcall called missing)
local originals = data_dir and ts.files.exists(data_dir .. '/originals/labels.csv') and
                  ts.data.readCSV(data_dir .. '/originals/labels.csv')
if originals then
   local items = {}
   for _, row in ipairs(originals) do
      items[#items + 1] = {image = ts.image.load(data_dir .. '/originals/' .. row.file), class = tonumber(row.ClassId)}
   end
   measure('original-resolution test images (tight crops)', items)
elseif data_dir then
   print(('(no %s/originals/labels.csv: the original-resolution images are left out)'):format(data_dir))
end
-- the empty scenes: a sign "found" there is a false alarm
local empty_outcomes, worst = {}, 0
for _, s in ipairs(empty) do
   local best = ts.detect.search(s.image, scorers, search_opts).detections[1]
   empty_outcomes[#empty_outcomes + 1] = {score = best.score}
   worst = math.max(worst, best.score)
end
local alarms = at_threshold(empty_outcomes, opt.threshold)

print(('\n%-48s %7s %9s %9s %9s %9s %11s %8s'):format('set', 'images', 'whole', 'search', 'box hit', 'found',
   'found+right', 's/image'))
for _, r in ipairs(results) do
   print(('%-48s %7d %8.1f%% %8.1f%% %9s %8.1f%% %10.1f%% %8.2f'):format(r.set, r.images, 100 * r.whole_top1,
      100 * r.search_top1, r.box_iou50 and ('%.1f%%'):format(100 * r.box_iou50) or '-', 100 * r.sign_found,
      100 * r.found_right, r.seconds_per_image))
end
print(('%-48s %7d   no sign said for %.1f%% (largest P(sign) x P(class) %.2f)'):format('scenes without a sign', #empty,
   100 * (1 - alarms), worst))
-- the same searches at the fixed 0.5 that predict used before the threshold was fitted
if opt.threshold ~= 0.5 then
   local parts = {}
   for _, r in ipairs(results) do
      local found, right = at_threshold(r.outcomes, 0.5)
      parts[#parts + 1] = ('%s: found %.1f%%, found+right %.1f%%'):format(r.set, 100 * found, 100 * right)
   end
   print(('at 0.5 instead: %s; without a sign: no sign said for %.1f%%'):format(table.concat(parts, '; '),
      100 * (1 - at_threshold(empty_outcomes, 0.5))))
end
local out = {run = opt.run, detector = detector, threshold = opt.threshold, temperature = temperature, sets = results,
             empty = {images = #empty, no_sign = 1 - alarms, outcomes = empty_outcomes}}
ts.files.writeFile(opt.out .. '/results.json', ts.json.encode(out))

-- 4. the contact sheet: truth green, search red
local cols, th, tw = 4, 240, 320
local sheet = ts.zeros({math.ceil(#sheet_items / cols) * th, cols * tw, 3}, 'uint8'):fill(255)
for k, s in ipairs(sheet_items) do
   local img = ts.image.resize(s.it.image, th, tw)
   local fx, fy = tw / s.it.image:size(2), th / s.it.image:size(1)
   local function scaled(b) return {b[1] * fx, b[2] * fy, b[3] * fx, b[4] * fy} end
   ts.image.drawBox(img, scaled(s.it.box), {0, 220, 0}, 2)
   ts.image.drawBox(img, scaled(s.best.box), s.best.class == s.it.class and {230, 0, 0} or {255, 140, 0}, 1)
   local r, c = math.floor((k - 1) / cols), (k - 1) % cols
   sheet[{{r * th + 1, (r + 1) * th}, {c * tw + 1, (c + 1) * tw}}]:copy(img)
end
if #sheet_items > 0 then ts.image.save(opt.out .. '/search.png', sheet) end
print(('wrote %s/images (PNGs, labels.csv), %s/results.json, %s/search.png'):format(opt.out, opt.out, opt.out))
local first = results[1]
-- with the paired test on those images (the difference was said without one, on scenes=4 as on 200)
print(('conclusion: on %s the search reads %.1f%% of the signs right where the whole image reads %.1f%% (McNemar p = %.3g: %s)'):format(
   first.set, 100 * first.search_top1, 100 * first.whole_top1, first.p_mcnemar,
   first.p_mcnemar < 0.05 and 'a significant difference' or 'not a significant difference'))
