-- tshost scripts/report.lua runs/<name> [more runs ...]: (re)writes each run's report.html from its files,
-- reading the data the run was trained on (GTSRB through TSHOST_DATA, or the generated signs).
-- an option is none of its arguments: --help was read as a run, "--help/config.json not found"; nor is an empty
-- one (a variable left unset: it failed with a traceback)
local flag = false
for i = 1, #arg do flag = flag or arg[i]:sub(1, 1) == '-' or arg[i] == '' end
if #arg == 0 or flag then
   io.stderr:write('usage: tshost scripts/report.lua RUN [RUN ...]\n')
   os.exit(2)
end
for i = 1, #arg do
   local run = arg[i]
   local model, config = ts.models.load(run)
   local final = ts.json.readFile(run .. '/final.json') or {}
   local g = ts.experiment.runData(run, final, {seed = config.seed})
   print(ts.report.write(run, {model = model, data = g, preprocess = ts.data.preprocess(config.preprocess)}))
end
