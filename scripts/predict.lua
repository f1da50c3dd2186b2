-- tshost scripts/predict.lua runs/<name> photo.jpg [more images ...] [--json] [--abstain p] [--tta n]
--                                                            [--draw out.png] [--whole] [--detector DIR]
--                                                            [--max-side n]
-- The top-5 classes of each image (any size and format stb_image reads), with names and probabilities,
-- from the model, preprocessing and class names stored in the run directory.
-- Where the sign is a small part of the photo, it is found first: when the run has a sign detector
-- (<run>/detector, trained by the main job or scripts/detector.lua; --detector DIR names another) the photo
-- is searched with windows at every scale and position (ts.detect.search), and the window with the largest
-- P(sign) x P(top class) is the answer; its box is printed (x1,y1-x2,y2 in the photo's pixels, end
-- exclusive). A photo larger than --max-side pixels (1024) is searched shrunk to that size: a larger value finds
-- smaller signs, in more time. When no window's P(sign) x P(top class) reaches the threshold the answer is "no sign found",
-- with the best window's box (best_window in --json) and reading all the same. The threshold is the run's
-- own (search.json, fitted on scenes of unseen validation images, with and without a sign, when the detector was trained:
-- ts.detect.fitRun), else 0.5 with a note; the rejection is measured in experiments/scenes.lua. --whole
-- classifies the whole photo squeezed to 32x32 (as without a detector). --draw out.png writes the photo with
-- the box drawn (red: a sign found; orange: the best window where none was found); with several images, or a
-- name that is not an image's (.png, .jpg, .jpeg, .bmp, .tga), out is a folder, one PNG per image named after
-- it, never over a file that is there already (a-2.png when a.png exists). A JPEG is turned upright as
-- its Exif orientation says, as a viewer shows it, and its size and box are in those pixels.
-- The probabilities are calibrated when the run has a calibration.json (its temperature, fitted on the
-- validation images it did not train on when the run finished, or by scripts/calibrate.lua): softmax(logits / T). --abstain p
-- answers "not sure" for an image whose top-1 probability is below p, or where no sign was found (the top 5
-- are still listed). --tta n averages the probabilities over n views (the image and n - 1 slightly shifted,
-- rotated, zoomed copies; by default as many as the calibration was fitted with, else 1). An image that
-- cannot be read, or whose drawing cannot be written, gets an error in its place (the others are still
-- reported) and the exit status is 1. After --, every word is the run or an image (a file named --x.png).
local function usage(why)
   if why then io.stderr:write('predict: ' .. why .. '\n') end
   io.stderr:write('usage: tshost scripts/predict.lua RUN_DIR IMAGE [IMAGE ...] [--json] [--abstain p] [--tta n] '
                   .. '[--draw out.png] [--whole] [--detector DIR] [--max-side n] [-- IMAGE ...]\n')
   os.exit(2)
end
local function fail(message)
   io.stderr:write('predict: ' .. message .. '\n')
   os.exit(1)
end
-- the whole number lo..hi that follows the option arg[i]
local function whole_after(i, lo, hi, what)
   local v = tonumber(arg[i + 1])
   if not v or v < lo or v % 1 ~= 0 or v > hi then
      usage(('%s needs %s %d..%d, got %s'):format(arg[i], what, lo, hi, arg[i + 1] or 'nothing'))
   end
   return v
end
local run, files, as_json, abstain, tta, draw, whole, detector, max_side = nil, {}, false, nil, nil, nil, false, nil, nil
-- the options with a value, each given once: a second --abstain, --tta or --draw replaced the first without a word
local valued, given = {['--abstain'] = true, ['--tta'] = true, ['--max-side'] = true, ['--draw'] = true,
                       ['--detector'] = true}, {}
local i, options_end = 1, false
while i <= #arg do
   if not options_end and valued[arg[i]] then
      if given[arg[i]] then
         usage(('%s given twice (%s and %s): give it once'):format(arg[i], given[arg[i]], arg[i + 1] or 'nothing'))
      end
      given[arg[i]] = arg[i + 1] or 'nothing'
   end
   if options_end then   -- after --, every word is the run or an image, a name that begins with -- too
      if not run then run = arg[i] else files[#files + 1] = arg[i] end
   elseif arg[i] == '--' then options_end = true
   elseif arg[i] == '--json' then as_json = true
   elseif arg[i] == '--whole' then whole = true
   elseif arg[i] == '--help' or arg[i] == '-h' then usage()
   elseif arg[i] == '--draw' or arg[i] == '--detector' then
      -- ('' failed in mkdirs, or named no detector, in a message that showed no path)
      if not arg[i + 1] or arg[i + 1] == '' or arg[i + 1]:sub(1, 2) == '--' then usage(arg[i] .. ' needs a path') end
      if arg[i] == '--draw' then draw = arg[i + 1] else detector = arg[i + 1] end
      i = i + 1
   elseif arg[i] == '--abstain' then
      abstain = tonumber(arg[i + 1])
      if not abstain or not (abstain > 0 and abstain < 1) then
         usage(('--abstain needs a probability between 0 and 1, got %s'):format(arg[i + 1] or 'nothing'))
      end
      i = i + 1
   elseif arg[i] == '--max-side' then
      max_side = whole_after(i, 32, 16384, 'a whole number of pixels')
      i = i + 1
   elseif arg[i] == '--tta' then
      tta = whole_after(i, 1, require('ts.train').MAX_VIEWS, 'a number of views')
      i = i + 1
   elseif arg[i]:sub(1, 2) == '--' then usage('unknown option ' .. arg[i])
   elseif not run then run = arg[i]
   else files[#files + 1] = arg[i] end
   i = i + 1
end
if not run or #files == 0 then usage() end
if whole and detector then usage('--whole and --detector exclude each other') end
-- (the size a photo is searched at: a whole photo is not searched, and the option was dropped without a word)
if whole and max_side then usage('--whole and --max-side exclude each other') end
local loaded, model, config = pcall(ts.models.load, run)
if not loaded then fail(tostring(model)) end
if detector and not ts.files.exists(detector .. '/model.safetensors') then
   fail(('--detector %s: no model.safetensors there'):format(detector))
end
if not whole and not detector then
   detector = ts.files.exists(run .. '/detector/model.safetensors') and run .. '/detector' or nil
   if not detector then
      io.stderr:write(('predict: note: %s has no sign detector (scripts/detector.lua %s trains one), so each whole '
                       .. 'image is classified\n'):format(run, run))
   end
end
local pre = ts.data.preprocess(config.preprocess)
-- the images are resized to 32x32 by the area filter, as the GTSRB images the run learned from were; a
-- preprocessing with another size then resizes them as it resized those
local size_h, size_w = 32, 32
local ok_names, names = pcall(ts.data.classNamesById, config.class_names, run .. '/config.json', true)
if not ok_names then fail(tostring(names)) end
local ok_cal, temperature, fitted, calibrated = pcall(ts.experiment.readCalibration, run)
if not ok_cal then fail(tostring(temperature)) end
local views = tta or fitted
if calibrated then
   if views ~= fitted then
      io.stderr:write(('predict: note: the temperature was fitted with %d view(s), these predictions use %d\n'):format(
         fitted, views))
   end
elseif abstain then
   io.stderr:write(('predict: note: %s has no calibration.json, so --abstain compares the raw softmax '
                    .. '(scripts/calibrate.lua %s fits the temperature)\n'):format(run, run))
end

-- the top 5 of a row of log-probabilities (or logits), calibrated: softmax(row / T)
local function top5(row)
   local probs = ts.metrics.softmax(row, temperature)
   local ranked = {}
   for c = 1, #probs do ranked[c] = {c - 1, probs[c]} end
   -- equal probabilities in class order, the lower first, as argmax and the metrics take them (table.sort is not stable)
   table.sort(ranked, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
   local top = {}
   for j = 1, math.min(5, #ranked) do
      local c = ranked[j][1]
      top[j] = {class = c, name = names[c] or '', probability = ranked[j][2]}
   end
   return top
end

-- --draw: a file for one image when it is named as an image (.png, .jpg, .jpeg, .bmp, .tga), else a folder
-- with one PNG per image, named after it. Checked before any search, so that a place that cannot be written
-- costs no work. In a folder a drawing never replaces a file that is there already (an input image, a photo
-- of the user's, an earlier drawing) nor another drawing of this command: a.jpg is drawn as a.png, or a-2.png
-- when a.png exists. A file named for one image is written as asked, but never over that input image.
local image_ext = {png = true, jpg = true, jpeg = true, bmp = true, tga = true}
local draw_dir = draw and (#files > 1 or not image_ext[(draw:match('%.([^./]+)$') or ''):lower()])
local inputs, drawn = {}, {}
for _, file in ipairs(files) do inputs[ts.files.realpath(file) or file] = true end
-- fails unless a file can be created in folder dir
local function check_writable(dir)
   if not ts.files.isDir(dir) then
      fail(('--draw %s: %s %s'):format(draw, dir, ts.files.exists(dir) and 'is not a folder' or 'does not exist'))
   end
   local probe = ('%s/.predict-%d-%d'):format(dir, require('ts.ffi').C.getpid(), os.time())
   local f, err = io.open(probe, 'wb')
   if not f then fail(('--draw %s: %s cannot be written to (%s)'):format(draw, dir, tostring(err):gsub('^.-: ', ''))) end
   f:close()
   os.remove(probe)
end
if draw_dir then
   local made, err = pcall(ts.files.mkdirs, draw)
   if not made then fail(('--draw %s: %s'):format(draw, tostring(err))) end
   check_writable(draw)
elseif draw then
   if inputs[ts.files.realpath(draw) or ''] then fail(('--draw %s is the input image: it would be overwritten'):format(draw)) end
   if ts.files.isDir(draw) then fail(('--draw %s is a folder; name a file for one image, or give several'):format(draw)) end
   local folder = draw:match('^(.*)/[^/]*$') or '.'
   check_writable(folder == '' and '/' or folder)
end
local function draw_path(file)
   if not draw_dir then return draw end
   local base = (file:match('([^/]+)$') or file):gsub('%.[^.]*$', '')
   local path, k = ('%s/%s.png'):format(draw, base), 1
   while drawn[path] or ts.files.exists(path) do
      k = k + 1
      path = ('%s/%s-%d.png'):format(draw, base, k)
   end
   drawn[path] = true
   return path
end

local ok_scorers, scorers = pcall(ts.detect.scorers, model, pre, {detector = detector, views = views})
if not ok_scorers then fail(tostring(scorers)) end
local sign_threshold, why = 0.5, nil
if detector then
   local own = ts.files.realpath(detector) == ts.files.realpath(run .. '/detector')
   sign_threshold, why = ts.detect.threshold(run, own, temperature, views)
   if why then io.stderr:write(('predict: note: %s, so a sign is "found" at P(sign) x P(class) >= 0.5\n'):format(why)) end
end

-- One image at a time (a folder of phone photos must not be held in memory at once): read, classify the
-- whole image or search it, draw. An image that cannot be read gets an error entry in its place.
local results, failed, draw_failed = {}, 0, 0
for _, file in ipairs(files) do
   local r = {file = file}
   results[#results + 1] = r
   local ok, img = pcall(ts.image.load, file)
   if not ok then
      failed = failed + 1
      r.error = tostring(img)   -- the message names the file
   else
      r.width, r.height = img:size(2), img:size(1)
      if not detector then
         -- the whole image, resized to 32x32 by the area filter as the GTSRB images were
         r.top5 = top5(scorers.classify(ts.image.resize(img, size_h, size_w):view(1, size_h, size_w, 3))[1])
      else
         -- the window search: the best window's reading, its box when it reaches the threshold (a sign found),
         -- else as best_window with no_sign (the search's best guess: its class is still right more often
         -- than the whole photo's, see experiments/scenes.lua)
         local found = ts.detect.search(img, scorers, {temperature = temperature, max_side = max_side})
         local best = found.detections[1]
         r.sign, r.score, r.threshold = best.sign, best.score, sign_threshold
         local b = best.box
         local box = {math.floor(b[1] + 0.5), math.floor(b[2] + 0.5), math.floor(b[3] + 0.5), math.floor(b[4] + 0.5)}
         if best.score >= sign_threshold then r.box = box else r.no_sign, r.best_window = true, box end
         r.top5 = top5(best.logp)
         r.windows = found.windows
      end
      r.not_sure = abstain and (r.no_sign or r.top5[1].probability < abstain) or nil
      if draw then
         local copy = img:contiguous():clone()
         ts.image.drawBox(copy, r.box or r.best_window or {0, 0, copy:size(2), copy:size(1)},
                          r.box and {255, 0, 0} or {255, 160, 0},
                          math.max(1, math.floor(math.min(copy:size(1), copy:size(2)) / 160)))
         local path = draw_path(file)
         local saved, err = pcall(ts.image.save, path, copy)
         if saved then r.drawn = path
         else
            draw_failed = draw_failed + 1
            r.draw_error = tostring(err)
         end
         copy:free()
      end
      img:free()   -- now, not at a garbage collection that may come after several photos
   end
end
if as_json then
   print(ts.json.encode(results))
else
   for _, r in ipairs(results) do
      if r.error then
         print(('%s: error: %s'):format(r.file, r.error))
      else
         local where = r.box and (': sign at %d,%d-%d,%d (P(sign) %.2f)'):format(r.box[1], r.box[2], r.box[3], r.box[4], r.sign)
                    or r.no_sign and (': no sign found (the best window, %d,%d-%d,%d: P(sign) %.2f x P(class) %.2f is below %.2f); '
                                      .. 'that window reads'):format(r.best_window[1], r.best_window[2], r.best_window[3],
                       r.best_window[4], r.sign, r.score / math.max(r.sign, 1e-12), r.threshold) or ''
         print(('%s (%dx%d)%s%s'):format(r.file, r.width, r.height, where,
                                       r.not_sure and (', not sure (top-1 below %g)'):format(abstain) or ''))
         for k, t in ipairs(r.top5) do print(('  %d. %5.1f%%  %2d %s'):format(k, 100 * t.probability, t.class, t.name)) end
         if r.drawn then print('  drawn: ' .. r.drawn) end
         if r.draw_error then print('  not drawn: ' .. r.draw_error) end
      end
   end
end
if failed > 0 then io.stderr:write(('predict: %d of %d images could not be read\n'):format(failed, #files)) end
if draw_failed > 0 then io.stderr:write(('predict: %d of %d drawings could not be written\n'):format(draw_failed, #files)) end
if failed > 0 or draw_failed > 0 then os.exit(1) end
