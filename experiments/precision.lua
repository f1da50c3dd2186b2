-- Mixed precision: what does computing the convolutions and linear layers in bfloat16 cost in accuracy,
-- and what does it buy in time? The same network, recipe and seeds in fp32 and in bf16
-- (ts.train{precision = 'bf16'}: operands rounded to bf16, sums, storage, batch norm, loss and optimizer
-- in fp32). bf16 keeps fp32's exponent range, so no loss scaling is involved.
--   tshost experiments/precision.lua [epochs=6] [seeds=1] [run=runs/precision]
local opt = ts.experiment.options({epochs = 6, run = 'runs/precision'}, {epochs = {1}})
local g = ts.experiment.dataset(opt)

local fp32 = ts.experiment.variant(g, 'fp32', {}, opt)
local bf16 = ts.experiment.variant(g, 'bf16', {precision = 'bf16'}, opt)
local verdict = ts.experiment.compare({fp32, bf16}, 'fp32 vs bf16 products (same network, budget and seeds)').bf16

local function mean_of(v, field)
   local sum = 0
   for _, r in ipairs(v.runs) do sum = sum + r[field] end
   return sum / #v.runs
end
local s32, s16 = mean_of(fp32, 'train_seconds'), mean_of(bf16, 'train_seconds')
print(('training time: fp32 %.0f s, bf16 %.0f s (%.2fx); throughput of the last epoch: %.0f and %.0f images/s'):format(
   s32, s16, s32 / s16, mean_of(fp32, 'images_per_second'), mean_of(bf16, 'images_per_second')))

-- how far apart the two models' decisions are, beyond the accuracy
local agree, n = 0, fp32.evals[1].pred:size(1)
for i = 1, n do
   if fp32.evals[1].pred[i] == bf16.evals[1].pred[i] then agree = agree + 1 end
end
print(('the two models agree on %d of %d test images (%.2f%%)'):format(agree, n, 100 * agree / n))
local seeds = #fp32.runs
print(('conclusion: %s'):format(
   not verdict.significant and ('no significant accuracy difference; bf16 trained %.2fx as fast'):format(s32 / s16)
   or seeds == 1 and ('these two runs differ (%+.2f points), but one seed cannot tell precision from run-to-run variation: rerun with seeds=3'):format(100 * verdict.diff)
   or verdict.diff < 0 and ('bf16 costs %.2f points beyond the seed spread: keep fp32 where that matters'):format(-100 * verdict.diff)
   or ('bf16 is %.2f points more accurate beyond the seed spread'):format(100 * verdict.diff)))
