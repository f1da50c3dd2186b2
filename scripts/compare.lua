-- tshost scripts/compare.lua runs/a runs/b ... [--html out.html]
-- tshost scripts/compare.lua runs/a-s1 runs/a-s2 ... --versus runs/b-s1 runs/b-s2 ... [--html out.html]
-- A side-by-side table of models: test accuracy with its 95% interval, macro-F1, parameters, training
-- time, images/s and each run's note; then, for every pair evaluated on the same test set, McNemar's test
-- of whether their difference in correctness is real.
-- With --versus, two recipes trained on several seeds each: the runs before it are recipe A's, those after it recipe
-- B's, paired in the order given (A's first with B's first: the same seed, as a rule). McNemar's test then runs on
-- each pair only, and the two recipes are compared over the pairs (ts.metrics.paired): the mean difference with its
-- 95% interval, a paired t-test, and the exact sign-flip test, which assumes no distribution (with three pairs its p
-- is never below 0.25: three seeds cannot show a difference, whatever each McNemar says).
local runs, html, versus = {}, nil, nil
local i = 1
while i <= #arg do
   -- --html once: a second one replaced the first without a word
   if arg[i] == '--html' then html = html == nil and arg[i + 1] or ''; i = i + 1
   -- --versus once, between two groups of runs
   elseif arg[i] == '--versus' then versus = versus == nil and #runs + 1 or 0
   -- --htlm x.html was read as a run named --htlm, -h as a run named -h, and an empty word as the folder / itself
   elseif arg[i]:sub(1, 1) == '-' or arg[i] == '' then html = ''
   else runs[#runs + 1] = arg[i] end
   i = i + 1
end
local usage = 'usage: tshost scripts/compare.lua RUN [RUN ...] [--versus RUN ...] [--html FILE]\n'
if #runs == 0 or html == '' or versus == 0 then
   io.stderr:write(usage)
   os.exit(2)
end
-- as many runs after --versus as before it: pairs
if versus and (versus - 1 ~= #runs - versus + 1) then
   io.stderr:write(('compare.lua: --versus pairs the runs before it with those after it, in order: %d before, %d after\n')
                   :format(versus - 1, #runs - versus + 1) .. usage)
   os.exit(2)
end
-- each run once: a run given twice (runs/a runs/a/, or a link to it) was compared with itself, "not distinguishable"
local given = {}
for _, run in ipairs(runs) do
   local at = ts.files.realpath(run) or run
   if given[at] then error(('compare.lua: %s and %s are the same run: give each run once'):format(given[at], run), 0) end
   given[at] = run
end
-- the page goes beside the runs, never into one (--html runs/a/report.html replaced that run's own report, and
-- runs/a/final.json its record)
if html then
   -- where the page lands: a link (out.html -> runs/a/final.json) is followed by the write, so judged where it points
   local at = ts.files.realpath(html)
   -- (its folder with the slash: /page.html's was '', "not there")
   local folder = ts.files.realpath((at or html):match('^(.*/)[^/]*$') or '.')
   -- (a folder that is not there, or a file in its place, failed the write after the table was printed)
   if not (folder and ts.files.isDir(folder)) then error(('compare.lua: --html %s: its folder does not exist'):format(html), 0) end
   -- (the write into a folder failed after the table was printed: compare.lua runs/a --html runs/b runs/c)
   if ts.files.isDir(html) then error(('compare.lua: --html %s is a folder: name the page, as out.html'):format(html), 0) end
   for _, run in ipairs(runs) do
      local r = ts.files.realpath(run)
      if folder and r and (folder == r or folder:sub(1, #r + 1) == r .. '/') then
         error(('compare.lua: --html %s is inside the run %s, whose own files it could replace: write it elsewhere')
               :format(html, run), 0)
      end
   end
end
local rows = {}
for _, run in ipairs(runs) do
   local final = ts.json.readFile(run .. '/final.json') or error(run .. '/final.json not found (did the run finish?)', 0)
   -- the fields the table shows, each a share from 0 to 1: a damaged file is named, not a Lua error (7 was shown as
   -- 700.00%, 1e999 as inf% and ranked first)
   ts.experiment.checkRecord(run, final)
   local config = ts.json.readFile(run .. '/config.json') or {}
   -- as many predictions as the record's test images: a file of another run's test set was compared as this one's
   -- (and right as often as the record says: another run's predictions were paired with this run's record)
   local preds = ts.experiment.readPredictions(run, type(final.test_images) == 'number' and final.test_images or nil, final)
   local data = type(final.data) == 'table' and final.data.test
   rows[#rows + 1] = {run = run, final = final, config = config, correct = preds.correct, target = preds.target,
                      test = type(data) == 'string' and data or nil}
end
local given_order = {}   -- the rows as given, for --versus's pairs
for k, r in ipairs(rows) do given_order[k] = r end
table.sort(rows, function(a, b) return a.final.test_accuracy > b.final.test_accuracy end)

-- what a run may not have recorded (an ensemble's speed, an older record's fields): '?' in the width given ('' none)
local function optional(v, width)
   return type(v) == 'number' and ('%' .. width .. '.0f'):format(v) or ('%' .. width .. 's'):format('?')
end
local lines = {('%-28s %9s %17s %9s %10s %9s %8s  %s'):format('run', 'accuracy', '95% interval', 'macro-F1', 'params', 'train s', 'img/s', 'note')}
for _, r in ipairs(rows) do
   local f = r.final
   lines[#lines + 1] = ('%-28s %8.2f%% %7.2f%% - %6.2f%% %9.4f %s %s %s  %s'):format(r.run, 100 * f.test_accuracy,
      100 * f.test_accuracy_ci95[1], 100 * f.test_accuracy_ci95[2], f.test_macro_f1, optional(f.parameters, 10),
      optional(f.train_seconds, 9), optional(f.images_per_second, 8), tostring(f.note or r.config.note or ''))
end
lines[#lines + 1] = ''
lines[#lines + 1] = 'paired McNemar tests (b: only the first right, c: only the second right):'
-- the pairs to test: every two runs, best first, or with --versus each of A's runs with its partner in B
local pairs_to_test = {}
if versus then
   for k = 1, versus - 1 do pairs_to_test[k] = {given_order[k], given_order[versus - 1 + k]} end
else
   for a = 1, #rows do
      for b = a + 1, #rows do pairs_to_test[#pairs_to_test + 1] = {rows[a], rows[b]} end
   end
end
local pairs_out = {}
for _, pair in ipairs(pairs_to_test) do
   local ra, rb = pair[1], pair[2]
   -- the same test set: the same labels in the same order, and the same images where both runs recorded them
   -- (two generated test sets of one size were once compared image by image)
   local same = ra.target:numel() == rb.target:numel() and ra.target:equal(rb.target) and
                (not ra.test or not rb.test or ra.test == rb.test)
   if same then
      local nb, nc, p = ts.metrics.mcnemar(ra.correct, rb.correct)
      local verdict = p < 0.05 and 'a real difference (p < 0.05)' or 'not distinguishable (p >= 0.05)'
      lines[#lines + 1] = ('  %-28s vs %-28s b=%4d c=%4d p=%.3g  %s'):format(ra.run, rb.run, nb, nc, p, verdict)
      pairs_out[#pairs_out + 1] = {ra.run, rb.run, nb, nc, p, verdict}
   else
      lines[#lines + 1] = ('  %s vs %s: different test sets, not compared'):format(ra.run, rb.run)
      pairs_out[#pairs_out + 1] = {ra.run, rb.run}   -- the page says so too: it left such a pair out without a word
   end
end
-- --versus: the recipes over their pairs, in points of test accuracy
local recipes
if versus then
   local a, b = {}, {}
   for k, pair in ipairs(pairs_to_test) do a[k], b[k] = pair[1].final.test_accuracy, pair[2].final.test_accuracy end
   local r = ts.metrics.paired(a, b)
   local function mean_sd(m, sd) return ('%.2f%%%s'):format(100 * m, sd and (' (sd %.2f)'):format(100 * sd) or '') end
   recipes = {('A, the runs before --versus: mean %s over %d runs'):format(mean_sd(r.mean_a, r.sd_a), r.n),
              ('B, the runs after it: mean %s'):format(mean_sd(r.mean_b, r.sd_b)),
              ('B - A: %+.2f points%s; B ahead on %d of %d pairs, behind on %d'):format(100 * r.diff,
                 -- (differences all alike have no spread: an interval of one point would read as certainty)
                 r.sd and r.sd > 0 and (', 95%% interval %+.2f to %+.2f'):format(100 * r.ci95[1], 100 * r.ci95[2]) or '',
                 r.ahead, r.n, r.behind),
              ts.metrics.describePaired(r)}
   -- a pair on two test sets differs by its images as well as by its recipes: said, not hidden in the mean
   local mixed = 0
   for _, p in ipairs(pairs_out) do if not p[3] then mixed = mixed + 1 end end
   if mixed > 0 then
      recipes[#recipes + 1] = ('%d of the %d pairs were tested on different test sets: their differences are not the ' ..
                               'recipes\' alone'):format(mixed, #pairs_out)
   end
   -- a pair trained with other arithmetic (threads, CPU path, processor: config.json's machine) rounds otherwise, and
   -- that alone moves a model by tenths of a point
   for k, pair in ipairs(pairs_to_test) do
      -- pairs are taken as given: a pair of two seeds (a-s1 a-s2 --versus b-s2 b-s1) is said, not compared as one seed
      local sa, sb = pair[1].config.seed, pair[2].config.seed
      if type(sa) == 'number' and type(sb) == 'number' and sa ~= sb then
         recipes[#recipes + 1] = ('pair %d pairs seed %d with seed %d: give the runs of each seed in the same place on ' ..
                                  'both sides'):format(k, sa, sb)
      end
      local apart = require('ts.machine').differences(pair[1].config.machine, pair[2].config.machine)
      if #apart > 0 then
         recipes[#recipes + 1] = ('pair %d was trained with other arithmetic (%s): its difference holds rounding as well ' ..
                                  'as recipe'):format(k, table.concat(apart, ', '))
      end
   end
   lines[#lines + 1] = ''
   lines[#lines + 1] = 'the two recipes over the pairs:'
   for _, line in ipairs(recipes) do lines[#lines + 1] = '  ' .. line end
end
print(table.concat(lines, '\n'))

if html then
   local esc = ts.report.escape
   local h = {'<!DOCTYPE html><html><head><meta charset="utf-8"><title>tshost comparison</title><style>body{font-family:Helvetica,Arial,sans-serif;margin:24px}table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}td.l,th.l{text-align:left}</style></head><body><h1>Model comparison</h1>',
              '<table><tr><th class="l">run</th><th>test accuracy</th><th>95% interval</th><th>macro-F1</th><th>parameters</th><th>training s</th><th>images/s</th><th class="l">note</th></tr>'}
   for _, r in ipairs(rows) do
      local f = r.final
      h[#h + 1] = ('<tr><td class="l"><a href="%s/report.html">%s</a></td><td>%.2f%%</td><td>%.2f - %.2f%%</td><td>%.4f</td><td>%s</td><td>%s</td><td>%s</td><td class="l">%s</td></tr>'):format(
         esc(r.run), esc(r.run), 100 * f.test_accuracy, 100 * f.test_accuracy_ci95[1], 100 * f.test_accuracy_ci95[2], f.test_macro_f1,
         optional(f.parameters, ''), optional(f.train_seconds, ''), optional(f.images_per_second, ''), esc(tostring(f.note or '')))
   end
   h[#h + 1] = '</table><h2>Paired McNemar tests</h2><table><tr><th class="l">model A</th><th class="l">model B</th><th>only A right</th><th>only B right</th><th>p</th><th class="l">verdict</th></tr>'
   for _, p in ipairs(pairs_out) do
      if p[3] then
         h[#h + 1] = ('<tr><td class="l">%s</td><td class="l">%s</td><td>%d</td><td>%d</td><td>%.3g</td><td class="l">%s</td></tr>'):format(esc(p[1]), esc(p[2]), p[3], p[4], p[5], p[6])
      else
         h[#h + 1] = ('<tr><td class="l">%s</td><td class="l">%s</td><td></td><td></td><td></td><td class="l">different test sets, not compared</td></tr>'):format(esc(p[1]), esc(p[2]))
      end
   end
   h[#h + 1] = '</table>'
   if recipes then
      h[#h + 1] = '<h2>The two recipes over the pairs</h2><ul>'
      for _, line in ipairs(recipes) do h[#h + 1] = '<li>' .. esc(line) .. '</li>' end
      h[#h + 1] = '</ul>'
   end
   h[#h + 1] = '</body></html>'
   ts.files.writeFile(html, table.concat(h, '\n'))
   print('wrote ' .. html)
end
