-- ts.report.write(run, {model, data, preprocess}): the run's self-contained HTML report, run/report.html,
-- with its pictures in run/report_files/: learning curves, class distribution, per-class precision, recall
-- and F1, the confusion matrix, the most confused pairs, a gallery of mispredicted test images,
-- activation maps of random test images through every layer, and the first layer's filters.
-- Charts are inline SVG; images are PNG files beside the report. Nothing is fetched from a network.
local ffi = require('ffi')
local T = require('ts.tensor')
local json = require('ts.json')
local data = require('ts.data')
local image = require('ts.image')
local files = require('ts.files')
local metrics = require('ts.metrics')

local M = {}

local function esc(s)
   return (tostring(s):gsub('[&<>"]', {['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;', ['"'] = '&quot;'}))
end
M.escape = esc

-- a line chart of epochs 1..n: series = {{name, color, values}}, values[epoch] a number, or nil or not finite where
-- the epoch has none (a NaN loss, no validation that epoch): no point there, the others at their own epochs (the
-- values were packed into a list, so every later epoch moved one place left, and an infinite one made no chart);
-- y range from the data
local finite = T.isFinite
local function line_chart(title, series, n)
   local w, h, l, r, t, b = 460, 260, 50, 110, 28, 36
   local lo, hi = math.huge, -math.huge
   for _, s in ipairs(series) do
      for i = 1, n do
         if finite(s[3][i]) then lo, hi = math.min(lo, s[3][i]), math.max(hi, s[3][i]) end
      end
   end
   if n == 0 or lo > hi then return '' end
   if hi - lo < 1e-9 then hi = lo + 1 end
   local function X(i) return l + (n == 1 and 0 or (i - 1) / (n - 1)) * (w - l - r) end
   local function Y(v) return t + (1 - (v - lo) / (hi - lo)) * (h - t - b) end
   local out = {('<svg width="%d" height="%d" class="chart"><text x="%d" y="18" class="title">%s</text>'):format(w, h, l, esc(title))}
   for k = 0, 4 do
      local v = lo + (hi - lo) * k / 4
      out[#out + 1] = ('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/><text x="%d" y="%.1f" class="tick" text-anchor="end">%.3g</text>')
         :format(l, w - r, Y(v), Y(v), l - 4, Y(v) + 4, v)
   end
   out[#out + 1] = ('<text x="%d" y="%d" class="tick">epoch 1</text><text x="%d" y="%d" class="tick" text-anchor="end">%d</text>')
      :format(l, h - 12, w - r, h - 12, n)
   for k, s in ipairs(series) do
      local pts = {}
      for i = 1, n do
         if finite(s[3][i]) then pts[#pts + 1] = ('%.1f,%.1f'):format(X(i), Y(s[3][i])) end
      end
      out[#out + 1] = ('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'):format(s[2], table.concat(pts, ' '))
      out[#out + 1] = ('<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text x="%d" y="%d" class="tick">%s</text>')
         :format(w - r + 8, t + 16 * k, s[2], w - r + 24, t + 16 * k + 5, esc(s[1]))
   end
   out[#out + 1] = '</svg>'
   return table.concat(out)
end
M.lineChart = line_chart

-- s cut to at most n characters, the last an ellipsis; whole UTF-8 characters (cut inside one, the page held
-- invalid text)
local function clip(s, n)
   s = tostring(s)   -- (a number label failed on gmatch)
   local starts = {}
   for at in s:gmatch('()[^\128-\191][\128-\191]*') do
      starts[#starts + 1] = at
      if #starts > n then return s:sub(1, starts[n] - 1) .. '\226\128\166' end
   end
   return s
end
M.clip = clip

-- horizontal bars: rows = {{label, value, tooltip}}, values in 0..max; a label longer than its 300 pixels is cut,
-- and whole in the tooltip (it ran off the chart's left edge, its start unseen)
local function bar_chart(title, rows, max, color, fmt)
   local rh, l, w = 14, 300, 720
   local out = {('<svg width="%d" height="%d" class="chart"><text x="4" y="16" class="title">%s</text>'):format(w, 28 + rh * #rows, esc(title))}
   for i, row in ipairs(rows) do
      local y = 24 + (i - 1) * rh
      local bw = max > 0 and row[2] / max * (w - l - 70) or 0
      out[#out + 1] = ('<g><title>%s</title><text x="%d" y="%d" class="tick" text-anchor="end">%s</text><rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/><text x="%.1f" y="%d" class="tick">%s</text></g>')
         :format(esc(row[3] and row[1] .. ': ' .. row[3] or row[1]), l - 6, y + 10, esc(clip(row[1], 45)), l, y + 2, bw,
                 rh - 3, row[4] or color, l + bw + 4, y + 10, (fmt or '%d'):format(row[2]))
   end
   out[#out + 1] = '</svg>'
   return table.concat(out)
end
M.barChart = bar_chart

-- the confusion matrix as a heatmap: row-normalized colour, counts in tooltips
local function heatmap(cm, names)
   local n, cell, l, t = cm.classes, 13, 40, 40
   local size = l + n * cell + 10
   local out = {('<svg width="%d" height="%d" class="chart">'):format(size, t + n * cell + 40)}
   out[#out + 1] = ('<text x="%d" y="14" class="tick">predicted class &#8594;</text><text x="4" y="%d" class="tick" transform="rotate(-90 10 %d)">true class &#8594;</text>')
      :format(l, t + 80, t + 80)
   for i = 0, n - 1 do
      out[#out + 1] = ('<text x="%d" y="%d" class="tick small" text-anchor="middle">%d</text><text x="%d" y="%d" class="tick small" text-anchor="end">%d</text>')
         :format(l + i * cell + cell / 2, t - 4, i, l - 3, t + i * cell + cell - 3, i)
   end
   for r = 0, n - 1 do
      local total = 0
      for c = 0, n - 1 do total = total + cm[r][c] end
      for c = 0, n - 1 do
         local v = cm[r][c]
         if v > 0 then
            local f = v / math.max(total, 1)
            local color = r == c and ('rgb(%d,%d,%d)'):format(255 - math.floor(200 * f), 255 - math.floor(120 * f), 255 - math.floor(200 * f))
                                  or ('rgb(255,%d,%d)'):format(math.floor(230 - 230 * math.min(1, f * 5)), math.floor(230 - 230 * math.min(1, f * 5)))
            out[#out + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>true %d %s, predicted %d %s: %d (%.1f%% of the class)</title></rect>')
               :format(l + c * cell, t + r * cell, cell - 1, cell - 1, color, r, esc(names[r] or ''), c, esc(names[c] or ''), v, 100 * f)
         end
      end
   end
   out[#out + 1] = ('<text x="%d" y="%d" class="tick">green: correct share of each true class; red: confusions (darker = larger share); hover a cell for counts</text>')
      :format(l, t + n * cell + 20)
   out[#out + 1] = '</svg>'
   return table.concat(out)
end

local function png(run, name, img)
   files.mkdirs(run .. '/report_files')
   image.save(run .. '/report_files/' .. name, img)
   return 'report_files/' .. name
end

-- activations of a few images through every layer of a Sequential (descending into nested ones):
-- for each layer with a 4-d output, up to 8 channels, each normalized to its own range
local function activation_maps(run, model, x, names)
   local rows = {}
   local layers = {}
   local function walk(m, prefix)
      if m.__typename == 'Sequential' then
         for _, c in ipairs(m:children()) do walk(c.module, prefix .. c.name .. '.') end
      else
         layers[#layers + 1] = {name = prefix:sub(1, -2), module = m}
      end
   end
   walk(model, '')
   model:evaluate()
   model:forward(x:to(model.device or 'cpu'))
   for i, layer in ipairs(layers) do
      local out = layer.module.output
      if out and out:dim() == 4 then
         out = out:cpu()
         rows[#rows + 1] = {name = layer.name, kind = layer.module.__typename, shape = tostring(out:size()),
                            file = png(run, ('act_%02d.png'):format(i), image.activationGrid(out, 8))}
      end
   end
   return rows
end

-- The images the run trained on, for the class histogram, and their title: g.train, or for a trainval run g.train and
-- the validation tracks it kept (all of g.valid when it held none out; experiment.heldOut), checked against
-- final.json's fingerprint. The histogram showed g.train alone for a trainval run, 4,000 images short.
local function trained_images(run, final, g)
   local on = final.trained_on
   if type(on) ~= 'table' then return g.train, 'training set' end
   local set, title = g.train, 'training set'
   if on.valid == 'none' then
      -- (a held-out record that does not fit the data is the readers' error to raise: here the histogram falls back)
      local ok, _, _, kept = pcall(require('ts.experiment').heldOut, run, final, g)
      if not ok then return g.train, 'training set; the validation tracks the run trained on could not be rebuilt' end
      set = data.join({g.train, kept or g.valid}, 'train+valid')
      title = kept and 'training set and the validation tracks trained on' or 'training and validation sets, all trained on'
   end
   if set:fingerprint() ~= on.train then
      return g.train, ('training set; the run trained on %s other images, not shown'):format(tostring(on.train_images))
   end
   return set, title
end

function M.write(run, opts)
   local model, g, pre = opts.model, opts.data, opts.preprocess
   local config = json.readFile(run .. '/config.json') or {}
   local experiment = require('ts.experiment')
   -- the record's shares checked, its other numbers shown only when they are numbers: a damaged field failed in a
   -- format or an arithmetic, with a traceback
   local final = experiment.checkRecord(run, json.readFile(run .. '/final.json') or {})
   local function number(v) return type(v) == 'number' and v or nil end
   local history = {}
   -- each line an epoch's record, its losses and accuracies numbers (a missing file, a line 5 or "x" failed inside)
   local lines = io.open(run .. '/metrics.jsonl') or error(('%s/metrics.jsonl not found'):format(run), 0)
   local numbers = {'train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy'}
   for line in lines:lines() do
      local ok, record = pcall(json.decode, line)
      if ok and type(record) ~= 'table' then ok, record = false, 'not an epoch\'s record' end
      for _, k in ipairs(ok and numbers or {}) do
         if record[k] ~= nil and type(record[k]) ~= 'number' then ok, record = false, k .. ' is no number' break end
      end
      if not ok then error(('%s/metrics.jsonl, line %d: %s'):format(run, #history + 1, tostring(record)), 0) end
      history[#history + 1] = record
   end
   lines:close()
   local names = g.classNames
   -- the predictions of this record and of these test images (another run's were shown under this one's numbers)
   local preds = experiment.readPredictions(run, g.test:size(), final, g.test.y)
   -- the test set's classes, 43 at least, and every class predicted: a model of more classes may predict one the
   -- test set lacks (the report of such a run failed in the confusion matrix, naming a line of this file)
   local classes = math.max(g.test:numClasses(), 43)
   if preds.pred:numel() > 0 then classes = math.max(classes, preds.pred:max() + 1) end
   local cm = metrics.confusion(preds.pred, preds.target, classes)
   local summary = metrics.summary(cm)
   local h = {}
   local function add(s) h[#h + 1] = s end
   add('<!DOCTYPE html><html><head><meta charset="utf-8"><title>tshost report: ' .. esc(run) .. '</title><style>')
   add('body{font-family:Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1200px}h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;margin-top:28px}')
   add('table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}td.l,th.l{text-align:left}')
   add('.chart{background:#fafafa;border:1px solid #ddd;margin:4px}.title{font-size:13px;font-weight:bold}.tick{font-size:11px;fill:#444}.small{font-size:8px}.grid{stroke:#e4e4e4}')
   add('.kpi{display:inline-block;margin:0 24px 8px 0}.kpi b{font-size:22px;display:block}.gallery figure{display:inline-block;margin:4px;width:120px;font-size:10px;vertical-align:top;overflow-wrap:anywhere}.gallery img{width:96px;image-rendering:pixelated}')
   add('img.act{image-rendering:pixelated}</style></head><body>')
   add(('<h1>%s</h1><p>%s</p>'):format(esc(run), esc(config.note or '')))
   local lo, hi = unpack(final.test_accuracy_ci95)
   add('<div>')
   for _, kpi in ipairs({
      {'test accuracy', ('%.2f%%'):format(100 * final.test_accuracy), ('95%% CI %.2f-%.2f%%%s'):format(100 * lo, 100 * hi,
         (number(final.tta) or 1) > 1 and ('; %s views of each image'):format(tostring(final.tta)) or '')},
      {'macro-F1', ('%.4f'):format(final.test_macro_f1), ('weighted %.4f'):format(number(final.test_weighted_f1) or 0)},
      {'parameters', tostring(final.parameters or config.parameters or '?'), ''},
      {'training time', ('%.0f s'):format(number(final.train_seconds) or 0), ('%.0f images/s'):format(number(final.images_per_second) or 0)},
      number(final.best_valid_accuracy)
         and {'best epoch', tostring(final.best_epoch or '?'), ('valid accuracy %.2f%%'):format(100 * final.best_valid_accuracy)}
         or {'epoch', tostring(final.best_epoch or '?'), 'the last: no validation'},
   }) do
      -- (escaped: final.json's parameters and best_epoch are shown as the file has them, markup and all)
      add(('<span class="kpi">%s<b>%s</b>%s</span>'):format(esc(kpi[1]), esc(kpi[2]), esc(kpi[3])))
   end
   add('</div><p>data: ' .. (final.synthetic and 'generated traffic signs' or 'GTSRB') .. (', %d test images'):format(summary.total) .. '</p>')

   add('<h2>Learning curves</h2>')
   local tl, vl, ta, va = {}, {}, {}, {}
   for i, r in ipairs(history) do tl[i], ta[i], vl[i], va[i] = r.train_loss, r.train_accuracy, r.valid_loss, r.valid_accuracy end
   add(line_chart('loss', {{'train', '#1f77b4', tl}, {'validation', '#d62728', vl}}, #history))
   add(line_chart('accuracy', {{'train', '#1f77b4', ta}, {'validation', '#d62728', va}}, #history))

   local trained, trained_title = trained_images(run, final, g)
   add(('<h2>Class distribution (%s)</h2>'):format(esc(trained_title)))
   local counts, rows, most = trained:counts(), {}, 0
   for c = 0, trained:numClasses() - 1 do
      rows[#rows + 1] = {('%d %s'):format(c, names[c] or ''), counts[c]}
      most = math.max(most, counts[c])
   end
   local imb = trained:imbalance()
   add(('<p>largest class %d (%d images), smallest %d (%d images): imbalance ratio %.1f</p>'):format(
      imb.largest_class, imb.largest, imb.smallest_class, imb.smallest, imb.ratio))
   add(bar_chart('training images per class', rows, most, '#7f7f7f'))

   add('<h2>Per-class precision, recall and F1 (test set)</h2>')
   local f1rows = {}
   for c = 0, summary.classes - 1 do
      local r = summary.per_class[c]
      f1rows[#f1rows + 1] = {('%d %s'):format(c, names[c] or ''), r.f1,
                             ('precision %.4f, recall %.4f, support %d'):format(r.precision, r.recall, r.support),
                             r.f1 < 0.95 and '#d62728' or '#2ca02c'}
   end
   add(bar_chart('F1 per class (red below 0.95)', f1rows, 1, '#2ca02c', '%.3f'))
   add('<table><tr><th>id</th><th class="l">class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>')
   for c = 0, summary.classes - 1 do
      local r = summary.per_class[c]
      add(('<tr><td>%d</td><td class="l">%s</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%d</td></tr>'):format(
         c, esc(names[c] or ''), r.precision, r.recall, r.f1, r.support))
   end
   for _, avg in ipairs({'macro', 'weighted'}) do
      local r = summary[avg]
      add(('<tr><td></td><td class="l"><b>%s average</b></td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%d</td></tr>'):format(
         avg, r.precision, r.recall, r.f1, summary.total))
   end
   add('</table>')

   add('<h2>Confusion matrix (test set)</h2>')
   add(heatmap(cm, names))
   add('<h3>Most confused pairs</h3><table><tr><th class="l">true class</th><th class="l">predicted as</th><th>count</th></tr>')
   for _, m in ipairs(metrics.mostConfused(cm, 12)) do
      add(('<tr><td class="l">%d %s</td><td class="l">%d %s</td><td>%d</td></tr>'):format(m[1], esc(names[m[1]] or ''), m[2], esc(names[m[2]] or ''), m[3]))
   end
   add('</table>')

   add('<h2>Mispredicted test images</h2><div class="gallery">')
   local wrong = {}
   local pp = ffi.cast('int64_t *', preds.pred:data())
   local tp = ffi.cast('int64_t *', preds.target:data())
   local cp = ffi.cast('float *', preds.confidence:data())
   for i = 0, preds.pred:numel() - 1 do
      if pp[i] ~= tp[i] then
         local conf = cp[i]
         wrong[#wrong + 1] = {i = i + 1, t = tonumber(tp[i]), p = tonumber(pp[i]), conf = conf,
                              rank = conf == conf and conf or -math.huge}
      end
   end
   -- the most confident first, a NaN confidence last, equal ones in the test set's order (compared as they were, a
   -- NaN broke the sort's order, and a gallery of "most confident" mistakes held NaN ones and missed the highest)
   table.sort(wrong, function(a, b) return a.rank > b.rank or (a.rank == b.rank and a.i < b.i) end)
   add(('<p>%d of %d test images are mispredicted; the %d most confident mistakes:</p>'):format(#wrong, preds.pred:numel(), math.min(#wrong, 48)))
   for k = 1, math.min(#wrong, 48) do
      local w = wrong[k]
      local img = image.resize(g.test.x[w.i], 96, 96)
      local file = png(run, ('wrong_%02d.png'):format(k), img)
      add(('<figure><img src="%s" alt="test image %d"><figcaption>#%d<br>true: %d %s<br><b>predicted: %d %s</b> (%s)</figcaption></figure>'):format(
         file, w.i, w.i, w.t, esc(names[w.t] or ''), w.p, esc(names[w.p] or ''),
         w.conf == w.conf and ('%.0f%%'):format(100 * w.conf) or 'confidence NaN'))
   end
   add('</div>')

   if model then
      add('<h2>Activation maps</h2><p>Four random test images through every layer (first 8 channels of each, each map scaled to its own range).</p>')
      local picks = {}
      for k = 1, 4 do picks[k] = 1 + (k * 7919 * 13) % g.test:size() end
      local x = data.batch(g.test, picks, {preprocess = pre})
      add('<table>')
      for _, row in ipairs(activation_maps(run, model, x, names)) do
         add(('<tr><td class="l">%s<br>%s<br>%s</td><td class="l"><img class="act" src="%s" alt="%s"></td></tr>'):format(
            esc(row.name), esc(row.kind), esc(row.shape), row.file, esc(row.name)))
      end
      add('</table>')
      -- the first convolution's filters, as pictures where they have an image's channels (grey or RGB), each scaled
      -- to its own range (one NaN made all of a filter black; it alone is now)
      local first
      model:apply(function(m) if not first and m.__typename == 'Conv2d' then first = m end end)
      if first and (first.weight:size(2) == 1 or first.weight:size(2) == 3) then
         local wgt = first.weight
         local n = wgt:size(1)
         local tiles = T.zeros(n, wgt:size(2), wgt:size(3), wgt:size(4))
         for k = 1, n do tiles[k]:copy(image.rescale(wgt[k])) end
         add('<h2>First layer filters</h2>')
         add(('<img class="act" src="%s" alt="filters">'):format(png(run, 'filters.png', image.grid(tiles, {cols = 16, scale = 12, pad = 2}))))
      end
   end
   add(('<h2>Architecture</h2><pre>%s</pre>'):format(esc(config.architecture or '')))
   add('</body></html>')
   files.writeFile(run .. '/report.html', table.concat(h, '\n'))
   return run .. '/report.html'
end

return M
