-- tshost scripts/predict.lua runs/<name> photo.jpg [more images ...] [--json]
-- The top-5 classes of each image (any size and format stb_image reads), with names and probabilities,
-- from the model, preprocessing and class names stored in the run directory. An image that cannot be read
-- gets an error entry in its place (the others are still reported) and the exit status is 1.
local run, files, as_json = nil, {}, false
for i = 1, #arg do
   if arg[i] == '--json' then as_json = true
   elseif not run then run = arg[i]
   else files[#files + 1] = arg[i] end
end
if not run or #files == 0 then
   io.stderr:write('usage: tshost scripts/predict.lua RUN_DIR IMAGE [IMAGE ...] [--json]\n')
   os.exit(2)
end
local model, config = ts.models.load(run)
model:evaluate{fused = true}   -- only the logits are read: convolutions with their batch norms folded in
local pre = ts.data.preprocess(config.preprocess)
local size = 32
local names = config.class_names or {}
local results, failed = {}, 0
for _, file in ipairs(files) do
   local ok, img = pcall(ts.image.load, file)
   if not ok then
      -- one unreadable image among good ones: an error entry in its place, the others still reported
      failed = failed + 1
      results[#results + 1] = {file = file, error = tostring(img)}   -- the message names the file
      goto continue
   end
   local small = ts.image.resize(img, size, size):view(1, size, size, 3)
   local ds = ts.data.Dataset(small, ts.zeros({1}, 'int64'))
   local x = ts.data.batch(ds, {1}, {preprocess = pre})
   local logits = model:forward(x)[1]
   local m = logits:max()
   local probs = (logits - m):exp()
   probs = probs / probs:sum()
   local ranked = {}
   for c = 1, probs:numel() do ranked[c] = {c - 1, probs[c]} end
   table.sort(ranked, function(a, b) return a[2] > b[2] end)
   local top = {}
   for k = 1, math.min(5, #ranked) do
      local c = ranked[k][1]
      top[k] = {class = c, name = names[tostring(c)] or names[c] or '', probability = ranked[k][2]}
   end
   results[#results + 1] = {file = file, width = img:size(2), height = img:size(1), top5 = top}
   ::continue::
end
if as_json then
   print(ts.json.encode(results))
else
   for _, r in ipairs(results) do
      if r.error then
         print(('%s: error: %s'):format(r.file, r.error))
      else
         print(('%s (%dx%d)'):format(r.file, r.width, r.height))
         for k, t in ipairs(r.top5) do print(('  %d. %5.1f%%  %2d %s'):format(k, 100 * t.probability, t.class, t.name)) end
      end
   end
end
if failed > 0 then
   io.stderr:write(('predict: %d of %d images could not be read\n'):format(failed, #files))
   os.exit(1)
end
