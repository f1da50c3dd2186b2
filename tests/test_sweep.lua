-- scripts/sweep.lua: a grid of runs on this machine, the Slurm script it writes, and a real Slurm (Debian's
-- slurmctld, slurmd and munge, one node, started and stopped here; skipped, saying so, where they are missing or
-- this is not root): a 2x2 sweep through sbatch, one task killed with scancel in mid-run and resumed by a second
-- submission, and the comparison listing all four points.
return function(t)
   local quick = 'synthetic=true synthetic_train=300 quiet=true detector=false'

   local function sweep(args, env)
      return t.sh(('%s%s %s/scripts/sweep.lua experiments/baseline.lua %s'):format(env or '', t.tshost, ts.root, args))
   end

   t.test('a sweep on this machine: each point its own run, then the comparison; its Slurm script skips finished points', function()
      local dir = t.tmpdir()
      local rc, out = sweep(('epochs=1 lr=0.05,0.1 %s --jobs 2 --dir %s/sweep'):format(quick, dir))
      t.eq(rc, 0, out)
      for _, point in ipairs({'lr0.05', 'lr0.1'}) do
         t.truthy(io.open(('%s/sweep/%s/final.json'):format(dir, point)), point .. ' finished:\n' .. out)
      end
      t.truthy(out:find('lr0.05', 1, true) and io.open(dir .. '/sweep/comparison.html'), out)
      -- the job array of the same grid plus one new point: only the new one is left to run
      rc, out = sweep(('epochs=1 lr=0.05,0.1,0.2 %s --dir %s/sweep --slurm %s/job.sh --no-submit --cpus 2 --gpus 1 --time 0:30:00')
                      :format(quick, dir, dir))
      t.eq(rc, 0, out)
      local script = t.readfile(dir .. '/job.sh')
      t.truthy(script:find('#SBATCH --array=2\n', 1, true), script)
      t.truthy(script:find('#SBATCH --gres=gpu:1', 1, true) and script:find('#SBATCH --time=0:30:00', 1, true), script)
      t.truthy(script:find('#SBATCH --cpus-per-task=2', 1, true), script)
      rc, out = sweep(('lr=0.05,0.1 --slurm %s/job.sh --frobnicate'):format(dir))
      t.eq(rc, 2, 'an unknown option: ' .. out)
      -- a value is one word, whatever it holds: nothing in it runs as a command, and the point it makes fails as
      -- a bad lr (the sweep's exit status says so); a folder with a space is one folder
      rc, out = sweep(("epochs=1 'lr=0.05,0.1;touch${IFS}%s/pwned' %s --jobs 2 --dir '%s/with space'"):format(dir, quick, dir))
      t.truthy(rc == 1 and out:find('FAILED ' .. dir .. '/with space/lr0.1touchIFS', 1, true), out)
      t.truthy(io.open(dir .. '/with space/lr0.05/final.json') and not io.open(dir .. '/pwned'), out)
      rc, out = sweep('lr=0.1,0.1 --jobs 2')
      t.truthy(rc == 1 and out:find('lr: every value once and none empty, got 0.1,0.1', 1, true), out)
      rc, out = sweep('lr=0.1,0.2 --jobs 1.5')
      t.eq(rc, 2, '--jobs 1.5: ' .. out)
   end)

   t.test('a sweep refuses a key given twice and run=, before any run starts', function()
      local dir = t.tmpdir()
      -- lr=0.1,0.2 lr=0.5 ran both points at lr=0.5 (the last value wins) in folders named lr0.1 and lr0.2
      for args, words in pairs({['lr=0.1,0.2 lr=0.5'] = 'lr: given twice (lr=0.1,0.2 and lr=0.5)',
                                ['lr=0.1,0.2 lr=0.3,0.4'] = 'lr: given twice (lr=0.1,0.2 and lr=0.3,0.4)',
                                ['seed=1 seed=2'] = 'seed: given twice',
                                ['lr=0.1,0.2 run=x'] = 'run: each point runs in <dir>/<point>; choose the folder with --dir'}) do
         local rc, out = sweep(('%s epochs=1 %s --jobs 1 --dir %s/sweep'):format(args, quick, dir))
         t.truthy(rc == 1 and out:find('sweep: ' .. words, 1, true), args .. ': ' .. out)
      end
      t.truthy(not ts.files.exists(dir .. '/sweep'), 'a refused sweep made its folder')
   end)

   t.test('a sweep refuses a missing experiment, a file for --dir, Slurm options without --slurm, an option twice or empty', function()
      local dir = t.tmpdir()
      -- a missing experiment (or a folder, or the grid given first) failed in every point, each leaving its folder
      for _, first in ipairs({dir .. '/nosuch.lua', dir, 'lr=0.1,0.2'}) do
         local rc, out = t.sh(('%s %s/scripts/sweep.lua %s lr=0.1,0.2 --dir %s/sweep'):format(t.tshost, ts.root, first, dir))
         t.truthy(rc == 1 and out:find(('sweep: %s is not a readable file: the first argument is the experiment script'):format(first),
                                       1, true), first .. ': ' .. out)
      end
      t.truthy(not ts.files.exists(dir .. '/sweep'), 'a refused sweep made its folder')
      -- a file in the way of --dir failed in mkdirs, with a traceback
      t.writefile(dir .. '/file', 'x')
      local rc, out = sweep(('lr=0.1,0.2 %s --dir %s/file'):format(quick, dir))
      t.truthy(rc == 1 and out:find(('sweep: --dir %s/file is a file, not a folder'):format(dir), 1, true)
               and not out:find('traceback', 1, true), out)
      -- --wait and --gpus without --slurm were dropped and the grid run here; --jobs twice ran with the last; an empty
      -- --dir failed in mkdirs with a traceback, --dir --jobs 2 made a folder named --jobs
      for args, words in pairs({['--wait'] = '--wait is an option of --slurm, which is not given',
                                ['--gpus 1'] = '--gpus is an option of --slurm, which is not given',
                                ['--jobs 1 --jobs 2'] = '--jobs given twice',
                                ["--dir ''"] = '--dir needs a value',
                                ['--dir --jobs 2'] = '--dir needs a value',
                                ["--slurm ''"] = '--slurm needs a value'}) do
         -- (in a folder of the test's own: with these options dropped, the grid ran)
         local at = args:find('--dir', 1, true) and '' or ('--dir %s/run'):format(dir)
         rc, out = sweep(('epochs=1 lr=0.1,0.2 %s %s %s'):format(quick, at, args))
         t.truthy(rc == 2 and out:find('sweep: ' .. words, 1, true), args .. ': ' .. out)
      end
   end)

   t.test('a job script: its thread count nowhere but --threads, written over no other file, one line per #SBATCH', function()
      local dir = t.tmpdir()
      -- "THREADS" in --dir (or a value) was replaced by the task's CPUs too: the tasks ran in runs/4_test
      local rc, out = sweep(('lr=0.1,0.2 --dir %s/THREADS --slurm %s/job.sh --no-submit'):format(dir, dir))
      t.eq(rc, 0, out)
      local script = t.readfile(dir .. '/job.sh')
      t.truthy(script:find("'\\''run=" .. dir .. "/THREADS/lr0.1'\\''", 1, true) and
               script:find('--threads "${SLURM_CPUS_PER_TASK:-1}"', 1, true) and not script:find('//THREADS', 1, true), script)
      -- --slurm naming the experiment (or any file that is no job script) replaced it
      t.writefile(dir .. '/exp.lua', 'print(1)\n')
      rc, out = t.sh(('%s %s/scripts/sweep.lua %s/exp.lua lr=0.1,0.2 --dir %s/s --slurm %s/exp.lua --no-submit'):format(
                     t.tshost, ts.root, dir, dir, dir))
      t.truthy(rc == 1 and out:find('--slurm ' .. dir .. "/exp.lua is there and is no sweep's job script", 1, true), out)
      t.eq(t.readfile(dir .. '/exp.lua'), 'print(1)\n', 'the experiment kept')
      -- a line break in --partition began a line of the job script that bash ran; a folder name over 255 bytes
      -- failed in mkdirs, with a traceback, after the points before it had run
      for args, says in pairs({["--partition 'debug\necho pwned'"] = '--partition must be one line without control ' ..
                                  'characters, got debug\\010echo pwned',
                               ['note=1,' .. ('x'):rep(300)] = 'makes a folder name of 310 bytes'}) do
         rc, out = sweep(('lr=0.1,0.2 %s --dir %s/s2 --slurm %s/job2.sh --no-submit'):format(args, dir, dir))
         t.truthy(rc == 1 and out:find('sweep: ', 1, true) and out:find(says, 1, true), args .. ': ' .. out)
      end
      t.truthy(not ts.files.exists(dir .. '/job2.sh') and not ts.files.exists(dir .. '/s2'), 'a refused sweep wrote nothing')
   end)

   t.test('a real Slurm: a 2x2 sweep through sbatch, one task killed by scancel and resumed by a second submission', function()
      for _, tool in ipairs({'slurmctld', 'slurmd', 'munged', 'sbatch', 'scancel', 'squeue'}) do
         if t.sh('command -v ' .. tool .. ' || test -x /usr/sbin/' .. tool) ~= 0 then
            t.skip(tool .. ' is not installed (make testenv installs Debian\'s slurmctld, slurmd and munge when it can)')
         end
      end
      local _, uid = t.sh('id -u')
      if tonumber(uid) ~= 0 then t.skip('starting slurmd and munged takes root') end
      if not io.open('/etc/munge/munge.key') then t.skip('munge has no key (/etc/munge/munge.key)') end
      local dir = t.tmpdir()
      local _, host = t.sh('hostname -s')
      host = host:match('%S+')
      local port = 17000 + math.floor(ts.files.now() * 1000) % 2000 * 2
      local conf = ([[
ClusterName=tshosttest
SlurmctldHost=%s
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=%s/munge.socket
CredType=cred/munge
SlurmctldPort=%d
SlurmdPort=%d
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd.pid
SlurmctldLogFile=%s/slurmctld.log
SlurmdLogFile=%s/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=%s CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=%s Default=YES MaxTime=INFINITE State=UP
]]):format(host, dir, port, port + 1, dir, dir, dir, dir, dir, dir, host, host)
      t.sh(('mkdir -p %s/state %s/spool'):format(dir, dir))
      t.writefile(dir .. '/slurm.conf', conf)
      local env = ('SLURM_CONF=%s/slurm.conf '):format(dir)
      local daemons = {
         ('munged --force --socket=%s/munge.socket --key-file=/etc/munge/munge.key --pid-file=%s/munged.pid ' ..
          '--log-file=%s/munged.log --seed-file=%s/munged.seed'):format(dir, dir, dir, dir),
         ('%sslurmctld -c -f %s/slurm.conf'):format(env, dir),
         ('%sslurmd -f %s/slurm.conf'):format(env, dir),
      }
      local function stop()   -- and wait for the daemons to be gone (the test's folder goes next)
         for _, pid in ipairs({'slurmd', 'slurmctld', 'munged'}) do
            t.sh(('test -f %s/%s.pid && p=$(cat %s/%s.pid) && kill $p && for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done')
                 :format(dir, pid, dir, pid))
         end
      end
      local ok, err = pcall(function()
         for _, d in ipairs(daemons) do
            local rc, out = t.sh('PATH=$PATH:/usr/sbin ' .. d)
            t.eq(rc, 0, d .. ': ' .. out)
         end
         -- the node up
         local up = false
         for _ = 1, 50 do
            local _, out = t.sh(env .. 'sinfo -h -o %t')
            if out:match('idle') or out:match('mix') then up = true break end
            t.sh('sleep 0.2')
         end
         t.truthy(up, 'the Slurm node did not come up: ' .. t.readfile(dir .. '/slurmctld.log'))
         local sdir = dir .. '/sweep'
         -- not quiet: the logs say when a run resumes
         local grid = ('epochs=8 lr=0.05,0.1 batch=50,100 synthetic=true synthetic_train=300 detector=false --dir %s --slurm %s/job.sh --cpus 1')
            :format(sdir, dir)
         local rc, out = sweep(grid, env)
         t.eq(rc, 0, out)
         local job = out:match('submitted job (%d+)')
         t.truthy(job, out)
         -- kill array task 0 once its run has a checkpoint and no final.json
         local first = sdir .. '/lr0.05_batch50'
         local killed = false
         for _ = 1, 600 do
            if io.open(first .. '/checkpoint.safetensors') and not io.open(first .. '/final.json') then
               t.sh(('%sscancel %s_0'):format(env, job))
               killed = true
               break
            end
            t.sh('sleep 0.1')
         end
         t.truthy(killed, 'task 0 never reached a checkpoint before finishing')
         -- the rest of the array runs to its end
         for _ = 1, 1200 do
            local _, q = t.sh(env .. 'squeue -h -j ' .. job)
            if not q:match('%d') then break end
            t.sh('sleep 0.2')
         end
         t.truthy(not io.open(first .. '/final.json'), 'the killed task did not finish')
         local others = 0
         for _, p in ipairs({'lr0.05_batch100', 'lr0.1_batch50', 'lr0.1_batch100'}) do
            if io.open(sdir .. '/' .. p .. '/final.json') then others = others + 1 end
         end
         t.eq(others, 3, 'the other three points finished')
         -- submitting again runs only the killed point, which resumes; then the comparison lists all four
         rc, out = sweep(grid .. ' --wait', env)
         t.eq(rc, 0, out)
         t.truthy(out:find('submitting 1 of 4 points', 1, true), out)
         t.truthy(out:find('4 of 4 points finished', 1, true), out)
         for _, p in ipairs({'lr0.05_batch50', 'lr0.05_batch100', 'lr0.1_batch50', 'lr0.1_batch100'}) do
            t.truthy(out:find(p, 1, true), 'the comparison lists ' .. p .. ':\n' .. out)
         end
         local _, logs = t.sh(('cat %s/slurm-*_0.log'):format(sdir))
         t.truthy(logs:find('resuming', 1, true), 'the killed run resumed from its checkpoint:\n' .. logs)
      end)
      stop()
      if not ok then error(err, 0) end
   end)
end
