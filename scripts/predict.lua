-- tshost scripts/predict.lua runs/<name> photo.jpg [more images ...] [--json] [--abstain p] [--tta n]
-- The top-5 classes of each image (any size and format stb_image reads), with names and probabilities,
-- from the model, preprocessing and class names stored in the run directory. The probabilities are
-- calibrated when the run has a calibration.json (its temperature, fitted on the validation set when the
-- run finished, or by scripts/calibrate.lua): softmax(logits / T). --abstain p answers "not sure" for an
-- image whose top-1 probability is below p (the top 5 are still listed). --tta n averages the probabilities
-- over n views (the image and n - 1 slightly shifted, rotated, zoomed copies; by default as many as the
-- calibration was fitted with, else 1). An image that cannot be read
-- gets an error entry in its place (the others are still reported) and the exit status is 1.
local function usage(why)
   if why then io.stderr:write('predict: ' .. why .. '\n') end
   io.stderr:write('usage: tshost scripts/predict.lua RUN_DIR IMAGE [IMAGE ...] [--json] [--abstain p] [--tta n]\n')
   os.exit(2)
end
local run, files, as_json, abstain, tta = nil, {}, false, nil, nil
local i = 1
while i <= #arg do
   if arg[i] == '--json' then as_json = true
   elseif arg[i] == '--abstain' then
      abstain = tonumber(arg[i + 1])
      if not abstain or not (abstain > 0 and abstain < 1) then
         usage(('--abstain needs a probability between 0 and 1, got %s'):format(tostring(arg[i + 1])))
      end
      i = i + 1
   elseif arg[i] == '--tta' then
      tta = tonumber(arg[i + 1])
      if not tta or tta < 1 or tta % 1 ~= 0 or tta > 1024 then
         usage(('--tta needs a number of views 1..1024, got %s'):format(tostring(arg[i + 1])))
      end
      i = i + 1
   elseif not run then run = arg[i]
   else files[#files + 1] = arg[i] end
   i = i + 1
end
if not run or #files == 0 then usage() end
local model, config = ts.models.load(run)
local pre = ts.data.preprocess(config.preprocess)
-- the images are resized to 32x32 by the area filter, as the GTSRB images the run learned from were; a
-- preprocessing with another size then resizes them as it resized those
local size_h, size_w = 32, 32
local names = config.class_names or {}
local temperature, views = 1, tta or 1
local cal_text = ts.files.readFile(run .. '/calibration.json')
if cal_text then
   local ok, cal = pcall(ts.json.decode, cal_text)
   temperature = ok and type(cal) == 'table' and tonumber(cal.temperature) or nil
   if not temperature or not (temperature > 0 and temperature < math.huge) then
      io.stderr:write(('predict: %s/calibration.json has no valid temperature\n'):format(run))
      os.exit(1)
   end
   local fitted = tonumber(cal.tta) or 1
   views = tta or fitted
   if views ~= fitted then
      io.stderr:write(('predict: note: the temperature was fitted with %d view(s), these predictions use %d\n'):format(
         fitted, views))
   end
elseif abstain then
   io.stderr:write(('predict: note: %s has no calibration.json, so --abstain compares the raw softmax '
                    .. '(scripts/calibrate.lua %s fits the temperature)\n'):format(run, run))
end

-- every readable image resized into one dataset; an unreadable one gets an error entry in its place
local results, failed, loaded = {}, 0, {}
for _, file in ipairs(files) do
   local ok, img = pcall(ts.image.load, file)
   if ok then
      loaded[#loaded + 1] = {file = file, image = img, result = #results + 1}
      results[#results + 1] = {file = file, width = img:size(2), height = img:size(1)}
   else
      failed = failed + 1
      results[#results + 1] = {file = file, error = tostring(img)}   -- the message names the file
   end
end
if #loaded > 0 then
   local x = ts.zeros({#loaded, size_h, size_w, 3}, 'uint8')
   for k, l in ipairs(loaded) do x[k]:copy(ts.image.resize(l.image, size_h, size_w)) end
   -- ts.evaluate's log-probabilities (the mean over the views with test-time augmentation), then the
   -- calibrated probabilities softmax(log p / T)
   local ev = ts.evaluate(model, ts.data.Dataset(x, ts.zeros({#loaded}, 'int64')),
                          {preprocess = pre, logits = true, tta = views})
   for k, l in ipairs(loaded) do
      local row = ev.logits[k]
      local classes = row:numel()
      local best = -math.huge
      for c = 1, classes do best = math.max(best, row[c]) end
      local probs, total = {}, 0
      for c = 1, classes do
         probs[c] = math.exp((row[c] - best) / temperature)
         total = total + probs[c]
      end
      local ranked = {}
      for c = 1, classes do ranked[c] = {c - 1, probs[c] / total} end
      table.sort(ranked, function(a, b) return a[2] > b[2] end)
      local top = {}
      for j = 1, math.min(5, #ranked) do
         local c = ranked[j][1]
         top[j] = {class = c, name = names[tostring(c)] or names[c] or '', probability = ranked[j][2]}
      end
      local r = results[l.result]
      r.top5, r.not_sure = top, abstain and top[1].probability < abstain or nil
   end
end
if as_json then
   print(ts.json.encode(results))
else
   for _, r in ipairs(results) do
      if r.error then
         print(('%s: error: %s'):format(r.file, r.error))
      else
         print(('%s (%dx%d)%s'):format(r.file, r.width, r.height,
                                     r.not_sure and (': not sure (top-1 below %g)'):format(abstain) or ''))
         for k, t in ipairs(r.top5) do print(('  %d. %5.1f%%  %2d %s'):format(k, 100 * t.probability, t.class, t.name)) end
      end
   end
end
if failed > 0 then
   io.stderr:write(('predict: %d of %d images could not be read\n'):format(failed, #files))
   os.exit(1)
end
