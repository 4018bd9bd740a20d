"DCT on the synthetic world: a species token per species, guided by the oracle's species head; accuracy on held-out seeds with and without it."
import sys, time, shutil
from pathlib import Path
import torch
from taxanb.guidance import TaxaDiffusionPipeline
from taxanb.dct import dct_table, OracleHead, DCTConfig
from taxanb.synth import build_world, load_oracle
STAGE, SPECIES = sys.argv[1], sys.argv[2].split(',')
MAX_STEPS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
t0 = time.time()
pipe = TaxaDiffusionPipeline.from_stage(STAGE)
world = build_world(); oracle = load_oracle(world, progress=False)
counts = world.taxonomy.counts('species')
cfg = DCTConfig(num_inference_steps=10, scheduler='dpm++', max_steps=MAX_STEPS)
note = (f"Model: {STAGE}. Guide and judge: the oracle's species head (load_oracle(build_world()), default settings). "
        f"Command: PYTHONPATH=$PWD HF_HUB_OFFLINE=1 python {Path(__file__).name} {STAGE} {','.join(SPECIES)} {MAX_STEPS} (saved as command.py). "
        f"Settings: the paper's prompts, batch 5, lr 0.00025x5, clipping 1.0, TaxaGuide scale 6, but DPM-Solver++ 10 steps and at most {MAX_STEPS} DCT steps (CPU budget). "
        f"Training images per species: " + ', '.join(f"{s}: {int(counts[world.taxonomy.taxon(s).id])}" for s in SPECIES) + ". "
        f"Columns: plain = the model's own species text; no_token = DCT prompts without S_c; token = DCT prompts with S_c; accuracy [95% bootstrap CI] on 16 held-out-seed images.")
run = dct_table(pipe, SPECIES, OracleHead(oracle, 'species'), lambda s: world.taxonomy.taxon(s).id, n_eval=16, config=cfg, note=note, progress=False)
shutil.copy(__file__, run/'command.py')
print(run, round(time.time() - t0, 1))
print((run/'table.md').read_text())
