"Guidance comparison on the synthetic world: vanilla CFG vs TaxaGuide (oracle per-rank accuracy, bootstrap CIs), plus figures."
import sys, time, shutil
from pathlib import Path
import torch
torch.manual_seed(0)
from taxanb.guidance import TaxaDiffusionPipeline, compare_guidance, trait_grid, guidance_sweep
from taxanb.synth import build_world, load_oracle
STAGE = sys.argv[1]
t0 = time.time()
pipe = TaxaDiffusionPipeline.from_stage(STAGE)
oracle = load_oracle(build_world(), progress=False)
note = (f"Model: {STAGE} (see its stage.json/config.json). Command: PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python {Path(__file__).name} {STAGE} "
        f"(this script is saved next to the results as command.py). Oracle: load_oracle(build_world()) (default settings).")
run = compare_guidance(pipe, oracle, n_per_taxon=2, seeds=(0, 1), num_inference_steps=10, scheduler='dpm++', note=note)
shutil.copy(__file__, run/'command.py')
kw = dict(num_inference_steps=10, scheduler='dpm++')
fig, _ = trait_grid(pipe, ['Henzelops trelsyica', 'Sinthaops plenpaelata', 'Byncaeia plonthosae', 'Birhaera plaentrosi'], seed=0, **kw)
fig.savefig(run/'trait_grid.png', dpi=120)
fig, _ = guidance_sweep(pipe, ['Henzelops trelsyica', 'Birhaera plaentrosi', 'genus: Henzelops'], scales=(1, 3, 6, 9), seed=0, **kw)
fig.savefig(run/'guidance_sweep.png', dpi=120)
print(run, round(time.time() - t0, 1))
print((run/'table.md').read_text())
