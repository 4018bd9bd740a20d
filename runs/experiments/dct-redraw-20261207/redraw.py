"Draw the DCT images of a finished cpu-full run again with noise seeds 0 and 1, token and no token, and score them with the guide."
import json, re, sys, torch, numpy as np
from pathlib import Path
torch.set_num_threads(2)
run = Path(sys.argv[1])                 # a cpu-full run folder that still holds its models/ and dct token files
cache = sys.argv[2]                     # the TAXANB_CACHE of that run
from taxanb.experiments import run_settings, trained
from taxanb.train import TrainConfig, load_data, judge_for
from taxanb.guidance import TaxaDiffusionPipeline
from taxanb.dct import class_token_images, OracleHead, DCTConfig
from taxanb.metrics import classifier_accuracy
m = json.loads((run/'dct_tables'/'metrics.json').read_text())
cfg = DCTConfig(**{k: v for k, v in m['dct_config'].items() if k in DCTConfig.__dataclass_fields__})
s = run_settings('cpu-full')
data, tax, world = load_data(TrainConfig(**s), cache)
oracle, _ = judge_for(TrainConfig(**s), data, tax, world, cache)
guide = OracleHead(oracle, 'species')
st = sorted((run/'models').glob('progressive-seed0-*'))[0]
st = sorted(p for p in st.iterdir() if p.name.startswith('stage-'))[-1]
pipe = TaxaDiffusionPipeline.from_stage(st, cache)
for sp in m['species']:
    pipe.remove_class_token(); pipe.add_class_token(run/'dct_tables'/'dct-seed0'/'tokens'/f"{re.sub(r'[^A-Za-z0-9]+', '_', sp)}.safetensors")
    out = {}
    for seed in (0, 1):
        for cond, kw in (('token', {}), ('no_token', dict(token=None))):
            x = class_token_images(pipe, sp, 32, config=cfg, seed=seed, **kw)
            out[f'{cond}/s{seed}'] = round(classifier_accuracy(guide, x, [tax.taxon(sp).id] * 32, ks=(1,))['top1'], 3)
    print(sp, out, flush=True)
