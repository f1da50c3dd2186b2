-- tshost scripts/sweep.lua EXPERIMENT.lua key=v1,v2 key2=a,b ... [--jobs N] [--dir runs/sweep]
--                          [--slurm FILE [--wait] [--no-submit] [--partition P] [--time T] [--cpus N] [--gpus N]]
-- Runs the experiment once per point of the grid, each as its own tshost process with key=value options and
-- run=<dir>/<point>, N at a time; then compares all finished runs (scripts/compare.lua).
-- With --slurm, a Slurm job array instead, one array task per point: FILE is written (it can be submitted by hand
-- with sbatch) and, when sbatch is on the PATH (and not --no-submit), submitted. A point whose run has finished
-- (final.json) is left out of the array, so submitting again runs only what is missing, and a run that was killed
-- (scancel, a node lost) resumes from its checkpoint. --wait waits for the array (sbatch --wait) and then compares
-- the finished runs. --partition, --time (Slurm's format), --cpus (per task, default 4; the run's threads) and
-- --gpus (per task, default 0) go to #SBATCH lines.
local experiment, grid, jobs, dir = nil, {}, 1, 'runs/sweep'
local slurm = {file = nil, wait = false, submit = true, cpus = 4, gpus = 0}
local extra, given = {}, {}
local function usage(why)
   io.stderr:write(why and 'sweep: ' .. why .. '\n' or 'usage: tshost scripts/sweep.lua EXPERIMENT key=v1,v2 ... [--jobs N] ' ..
                   '[--dir DIR] [--slurm FILE [--wait] [--no-submit] [--partition P] [--time T] [--cpus N] [--gpus N]]\n')
   os.exit(2)
end
-- an option's value: given once (--jobs 2 --jobs 4 ran with the last), not empty (--dir '' failed in mkdirs with a
-- traceback, --slurm '' in writing "no file named") and no other option (--dir --jobs 2 made a folder named --jobs)
local seen = {}
local function value(i, name)
   local v = arg[i + 1]
   if seen[name] then usage(('%s given twice'):format(name)) end
   seen[name] = true
   if not v or v == '' or v:sub(1, 2) == '--' then usage(('%s needs a value'):format(name)) end
   return v
end
local i = 1
while i <= #arg do
   local a = arg[i]
   if a == '--jobs' then jobs = tonumber(value(i, a)); i = i + 1
   elseif a == '--dir' then dir = value(i, a); i = i + 1
   elseif a == '--slurm' then slurm.file = value(i, a); i = i + 1
   elseif a == '--wait' then slurm.wait = true; seen[a] = true
   elseif a == '--no-submit' then slurm.submit = false; seen[a] = true
   elseif a == '--partition' then slurm.partition = value(i, a); i = i + 1
   elseif a == '--time' then slurm.time = value(i, a); i = i + 1
   elseif a == '--cpus' then slurm.cpus = tonumber(value(i, a)); i = i + 1
   elseif a == '--gpus' then slurm.gpus = tonumber(value(i, a)); i = i + 1
   elseif a:sub(1, 2) == '--' then
      io.stderr:write(('sweep: unknown option %s\n'):format(a))
      os.exit(2)
   elseif not experiment then experiment = a
   else
      local k, v = a:match('^([%w_][%w_%.]*)=(.*)$')
      if not k then error('sweep: expected key=value[,value...], got ' .. a, 0) end
      -- each key once, and run= is the sweep's: lr=0.1,0.2 lr=0.5 ran both points at lr=0.5 (the last value wins),
      -- under names saying 0.1 and 0.2
      if given[k] or k == 'run' then
         error(('sweep: %s: %s'):format(k, k == 'run' and 'each point runs in <dir>/<point>; choose the folder with --dir'
               or ('given twice (%s and %s): give a key once, its values comma-separated'):format(given[k], a)), 0)
      end
      given[k] = a
      if v:find(',') then
         -- each value once and none empty: two points of one name would share a run directory at once
         local values, seen = {}, {}
         for x in (v .. ','):gmatch('([^,]*),') do
            if x == '' or seen[x] then error(('sweep: %s: every value once and none empty, got %s'):format(k, v), 0) end
            values[#values + 1], seen[x] = x, true
         end
         grid[#grid + 1] = {k, values}
      else
         extra[#extra + 1] = a
      end
   end
   i = i + 1
end
local function whole(n) return n and n >= 0 and n % 1 == 0 and n < 2 ^ 31 end
if not experiment or not whole(jobs) or jobs < 1 or not whole(slurm.cpus) or slurm.cpus < 1 or not whole(slurm.gpus) then
   usage()
end
-- the Slurm options without --slurm were dropped: --wait, --gpus 1 and the rest ran the grid here, as if not given
if not slurm.file then
   for _, name in ipairs({'--wait', '--no-submit', '--partition', '--time', '--cpus', '--gpus'}) do
      if seen[name] then usage(('%s is an option of --slurm, which is not given'):format(name)) end
   end
end
-- checked before any folder is made: a missing experiment (or a folder, or key=value given first) failed in every
-- point's process, each leaving its folder and a log saying so
local script = experiment ~= '' and not ts.files.isDir(experiment) and io.open(experiment, 'rb')
if not script then
   error(('sweep: %s is not a readable file: the first argument is the experiment script to run, then key=value...')
         :format(experiment), 0)
end
script:close()
-- the folder of the runs: a file in its place failed in mkdirs, with a traceback, after the grid was made
if ts.files.exists(dir) and not ts.files.isDir(dir) then
   error(('sweep: --dir %s is a file, not a folder'):format(dir), 0)
end
if slurm.file then
   -- the job script replaces only a job script (--slurm EXPERIMENT.lua wrote it over the experiment); a folder
   -- failed in the write, after the runs' folder was made
   if ts.files.isDir(slurm.file) then error(('sweep: --slurm %s is a folder, not a file'):format(slurm.file), 0) end
   local old = ts.files.readFile(slurm.file)
   if old and not old:find('^#!/bin/bash\n#SBATCH %-%-job%-name=tshost%-sweep\n') then
      error(('sweep: --slurm %s is there and is no sweep\'s job script: it would be replaced'):format(slurm.file), 0)
   end
   -- #SBATCH lines end at a line break: one in --partition or --time (or the log folder, --dir) began a line of the
   -- script that bash ran as a command
   for name, v in pairs({['--partition'] = slurm.partition, ['--time'] = slurm.time, ['--dir'] = dir}) do
      if v:find('%c') then
         local shown = v:gsub('%c', function(c) return ('\\%03d'):format(c:byte()) end)
         error(('sweep: %s must be one line without control characters, got %s'):format(name, shown), 0)
      end
   end
end

-- the grid's points, each a list of key=value strings
local points = {{}}
for _, axis in ipairs(grid) do
   local next_points = {}
   for _, p in ipairs(points) do
      for _, v in ipairs(axis[2]) do
         local q = {unpack(p)}
         q[#q + 1] = axis[1] .. '=' .. v
         next_points[#next_points + 1] = q
      end
   end
   points = next_points
end

local function name_of(p)
   local s = table.concat(p, '_'):gsub('[^%w_%.%-=]', ''):gsub('=', '')
   return s ~= '' and s or 'default'
end

-- a word for the shell, whatever it holds (spaces, quotes, ;): nothing in a value runs as a command
local quote = ts.files.shellQuote

-- one command per point, every part quoted but the thread count, `threads`: a number here, the Slurm task's CPUs
-- in the job script. (A THREADS placeholder replaced afterwards was replaced in the values and --dir too: a sweep in
-- runs/THREADS_test ran its Slurm tasks in runs/4_test.)
local commands, names = {}, {}
for _, p in ipairs(points) do
   local name = name_of(p)
   if names[name] then
      error(('sweep: the points %s and %s would share the run %s/%s'):format(names[name], table.concat(p, ' '), dir, name), 0)
   end
   -- (found before any run: a name too long for a folder failed in mkdirs, with a traceback, after the runs before it)
   if #name > 255 then
      error(('sweep: the point %s makes a folder name of %d bytes, over the 255 a file system takes'):format(
            table.concat(p, ' '), #name), 0)
   end
   names[name] = table.concat(p, ' ')
   local args = {}
   for _, a in ipairs(p) do args[#args + 1] = quote(a) end
   for _, a in ipairs(extra) do args[#args + 1] = quote(a) end
   local run = dir .. '/' .. name
   local rest = ('%s %s %s'):format(quote(experiment), table.concat(args, ' '), quote('run=' .. run))
   commands[#commands + 1] = {run = run, cmd = function(threads) return ('%s --threads %s %s'):format(quote(ts.program), threads, rest) end}
end

local function finished(c) return io.open(c.run .. '/final.json') ~= nil end

local function compare()
   local done = {}
   for _, c in ipairs(commands) do if finished(c) then done[#done + 1] = c.run end end
   if #done > 0 then
      local runs = {}
      for k, run in ipairs(done) do runs[k] = quote(run) end
      os.execute(('%s %s %s --html %s'):format(quote(ts.program), quote(ts.root .. '/scripts/compare.lua'),
                 table.concat(runs, ' '), quote(dir .. '/comparison.html')))
   end
   return #done
end

if slurm.file then
   ts.files.mkdirs(dir)
   local missing = {}
   for k, c in ipairs(commands) do if not finished(c) then missing[#missing + 1] = k - 1 end end
   local lines = {'#!/bin/bash', '#SBATCH --job-name=tshost-sweep', ('#SBATCH --cpus-per-task=%d'):format(slurm.cpus),
                  '#SBATCH --output=' .. dir .. '/slurm-%A_%a.log'}
   if #missing > 0 then lines[#lines + 1] = '#SBATCH --array=' .. table.concat(missing, ',') end
   if slurm.gpus > 0 then lines[#lines + 1] = ('#SBATCH --gres=gpu:%d'):format(slurm.gpus) end
   if slurm.partition then lines[#lines + 1] = '#SBATCH --partition=' .. slurm.partition end
   if slurm.time then lines[#lines + 1] = '#SBATCH --time=' .. slurm.time end
   lines[#lines + 1] = 'set -euo pipefail'
   lines[#lines + 1] = '# one grid point per array task; a finished run is skipped, a killed one resumes from its checkpoint'
   lines[#lines + 1] = 'commands=('
   for _, c in ipairs(commands) do lines[#lines + 1] = '  ' .. quote(c.cmd('"${SLURM_CPUS_PER_TASK:-1}"')) end
   lines[#lines + 1] = ')'
   lines[#lines + 1] = 'eval "${commands[$SLURM_ARRAY_TASK_ID]}"'
   ts.files.writeFile(slurm.file, table.concat(lines, '\n') .. '\n')
   if #missing == 0 then
      print(('wrote %s; all %d points have finished runs in %s: nothing to submit'):format(slurm.file, #commands, dir))
      if slurm.wait then compare() end
      os.exit(0)
   end
   local has_sbatch = os.execute('command -v sbatch > /dev/null 2>&1') == 0
   if not slurm.submit or not has_sbatch then
      print(('wrote %s: a job array of %d runs (%d of %d points not finished)%s; submit it with sbatch %s'):format(
         slurm.file, #missing, #missing, #commands, has_sbatch and '' or ' (no sbatch on the PATH)', slurm.file))
      os.exit(0)
   end
   local cmd = ('sbatch --parsable%s %s 2>&1'):format(slurm.wait and ' --wait' or '', quote(slurm.file))
   print(('wrote %s; submitting %d of %d points%s'):format(slurm.file, #missing, #commands, slurm.wait and ' and waiting' or ''))
   io.stdout:flush()
   local p = io.popen(cmd)
   local out = p:read('*a')
   local ok = p:close()
   local job = out:match('^(%d+)')
   if not job then
      io.stderr:write('sweep: sbatch failed: ' .. out)
      os.exit(1)
   end
   print(('submitted job %s (array tasks %s)'):format(job, table.concat(missing, ',')))
   if slurm.wait then
      local done = compare()
      print(('%d of %d points finished%s'):format(done, #commands, ok and '' or '; some array tasks failed (see the slurm-*.log files)'))
      os.exit(done == #commands and 0 or 1)
   end
   os.exit(0)
end

ts.files.mkdirs(dir)
local threads = math.max(1, math.floor(ts.getThreads() / jobs))
print(('sweep: %d runs, %d at a time, threads per run %d'):format(#commands, jobs, threads))
-- run in waves of `jobs` background processes, each logging to its run's log file
for start = 1, #commands, jobs do
   local wave = {}
   for k = start, math.min(start + jobs - 1, #commands) do
      local c = commands[k]
      ts.files.mkdirs(c.run)
      wave[#wave + 1] = ('(%s > %s 2>&1; echo "$? %d")'):format(c.cmd(threads), quote(c.run .. '/log.txt'), k)
   end
   local p = io.popen(table.concat(wave, ' & ') .. ' & wait')
   for line in p:lines() do
      local rc, k = line:match('^(%d+) (%d+)$')
      local c = commands[tonumber(k)]
      print(('  %s %s%s'):format(rc == '0' and 'done  ' or 'FAILED', c.run, rc == '0' and '' or ' (see its log.txt)'))
   end
   p:close()
end
-- the exit status says whether every point finished, as with --slurm --wait
os.exit(compare() == #commands and 0 or 1)
