-- tshost scripts/sweep.lua EXPERIMENT.lua key=v1,v2 key2=a,b ... [--jobs N] [--slurm FILE] [--dir runs/sweep]
-- Runs the experiment once per point of the grid, each as its own tshost process with key=value options
-- and run=<dir>/<point>, N at a time; then compares all finished runs (scripts/compare.lua). With --slurm,
-- writes a Slurm job-array script for a cluster instead of running anything.
local experiment, grid, jobs, slurm, dir = nil, {}, 1, nil, 'runs/sweep'
local extra = {}
local i = 1
while i <= #arg do
   local a = arg[i]
   if a == '--jobs' then jobs = tonumber(arg[i + 1]); i = i + 1
   elseif a == '--slurm' then slurm = arg[i + 1]; i = i + 1
   elseif a == '--dir' then dir = arg[i + 1]; i = i + 1
   elseif not experiment then experiment = a
   else
      local k, v = a:match('^([%w_]+)=(.*)$')
      if not k then error('sweep: expected key=value[,value...], got ' .. a, 0) end
      if v:find(',') then
         local values = {}
         for x in v:gmatch('[^,]+') do values[#values + 1] = x end
         grid[#grid + 1] = {k, values}
      else
         extra[#extra + 1] = a
      end
   end
   i = i + 1
end
if not experiment or not jobs or jobs < 1 then
   io.stderr:write('usage: tshost scripts/sweep.lua EXPERIMENT key=v1,v2 ... [--jobs N] [--slurm FILE] [--dir DIR]\n')
   os.exit(2)
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

local commands = {}
for _, p in ipairs(points) do
   local args = table.concat(p, ' ') .. ' ' .. table.concat(extra, ' ')
   commands[#commands + 1] = {run = dir .. '/' .. name_of(p),
                              cmd = ('%s/tshost %s %s run=%s/%s'):format(ts.root, experiment, args, dir, name_of(p))}
end

if slurm then
   local lines = {'#!/bin/bash', '#SBATCH --job-name=tshost-sweep', ('#SBATCH --array=0-%d'):format(#commands - 1),
                  '#SBATCH --cpus-per-task=4', '#SBATCH --gres=gpu:1', '#SBATCH --output=' .. dir .. '/slurm-%A_%a.log',
                  'set -euo pipefail', 'mkdir -p ' .. dir, 'commands=('}
   for _, c in ipairs(commands) do lines[#lines + 1] = ('  %q'):format(c.cmd) end
   lines[#lines + 1] = ')'
   lines[#lines + 1] = 'eval "${commands[$SLURM_ARRAY_TASK_ID]}"'
   ts.files.writeFile(slurm, table.concat(lines, '\n') .. '\n')
   print(('wrote %s: a job array of %d runs; submit it with sbatch %s'):format(slurm, #commands, slurm))
   os.exit(0)
end

ts.files.mkdirs(dir)
print(('sweep: %d runs, %d at a time, threads per run %d'):format(#commands, jobs, math.max(1, math.floor(ts.getThreads() / jobs))))
local threads = math.max(1, math.floor(ts.getThreads() / jobs))
-- run in waves of `jobs` background processes, each logging to its run's log file
for start = 1, #commands, jobs do
   local wave = {}
   for k = start, math.min(start + jobs - 1, #commands) do
      local c = commands[k]
      ts.files.mkdirs(c.run)
      wave[#wave + 1] = ('(%s > %s/log.txt 2>&1; echo "$? %s")'):format(c.cmd:gsub('/tshost ', '/tshost --threads ' .. threads .. ' ', 1), c.run, c.run)
   end
   local p = io.popen(table.concat(wave, ' & ') .. ' & wait')
   for line in p:lines() do
      local rc, run = line:match('^(%d+) (.*)$')
      print(('  %s %s'):format(rc == '0' and 'done  ' or 'FAILED', run))
   end
   p:close()
end
local finished = {}
for _, c in ipairs(commands) do
   if io.open(c.run .. '/final.json') then finished[#finished + 1] = c.run end
end
if #finished > 0 then
   os.execute(('%s/tshost %s/scripts/compare.lua %s --html %s/comparison.html'):format(ts.root, ts.root, table.concat(finished, ' '), dir))
end
