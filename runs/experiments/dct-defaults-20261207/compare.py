"""DCT defaults, paired: the paper's (lr 5e-4, stop rule 2 on the loss, S_c from 'fish') against the earlier ones (lr 0.00025 x batch,
stop rule 2 on the count of correct images, S_c from the species name), on the same model, species and noise.

    PYTHONPATH=<clone> TAXANB_CACHE=<cache> python compare.py RUN_PAPER RUN_EARLIER MODELS_DIR N_PER_SPECIES

Each arm's tokens (from its dct_tables run) draw N images per species from the same held-out noise as the images
without a token; the guide (the oracle's species head) scores each image; differences are paired image by image."""
import json, re, sys, torch, numpy as np
from pathlib import Path
torch.set_num_threads(1)
paper, earlier, models, n = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
from taxanb.experiments import run_settings
from taxanb.train import TrainConfig, load_data, judge_for
from taxanb.guidance import TaxaDiffusionPipeline
from taxanb.dct import class_token_images, OracleHead, DCTConfig
s = run_settings('cpu'); cfgs = {}
data, tax, world = load_data(TrainConfig(**s))
oracle, _ = judge_for(TrainConfig(**s), data, tax, world)
guide = OracleHead(oracle, 'species').eval()
st = sorted(models.glob('progressive-seed0-*'))[0]
st = sorted(p for p in st.iterdir() if p.name.startswith('stage-'))[-1]
pipe = TaxaDiffusionPipeline.from_stage(st)
m = {a: json.loads((r/'metrics.json').read_text()) for a, r in (('paper', paper), ('earlier', earlier))}
correct = {k: [] for k in ('no_token', 'paper', 'earlier')}
for sp in m['paper']['species']:
    y = tax.taxon(sp).id
    def right(x):
        with torch.no_grad(): return (guide(x).argmax(1) == y).float().numpy()
    cfg = DCTConfig(**{k: v for k, v in m['paper']['dct_config'].items() if k in DCTConfig.__dataclass_fields__})
    correct['no_token'].append(right(class_token_images(pipe, sp, n, token=None, config=cfg, seed=0)))
    for a, r in (('paper', paper), ('earlier', earlier)):
        cfg = DCTConfig(**{k: v for k, v in m[a]['dct_config'].items() if k in DCTConfig.__dataclass_fields__})
        pipe.remove_class_token(); pipe.add_class_token(r/'dct-seed0'/'tokens'/f"{re.sub(r'[^A-Za-z0-9]+', '_', sp)}.safetensors")
        correct[a].append(right(class_token_images(pipe, sp, n, config=cfg, seed=0)))
    print(sp, {k: round(float(v[-1].mean()), 3) for k, v in correct.items()}, flush=True)
c = {k: np.concatenate(v) for k, v in correct.items()}
rng = np.random.default_rng(0)
def paired(a, b, B=10000):
    d = c[a] - c[b]; idx = rng.integers(0, len(d), (B, len(d)))
    lo, hi = np.percentile(d[idx].mean(1), [2.5, 97.5]); return dict(diff=round(float(d.mean()), 3), lo=round(float(lo), 3), hi=round(float(hi), 3))
out = dict(n_per_species=n, species=m['paper']['species'], accuracy={k: round(float(v.mean()), 3) for k, v in c.items()},
           paired={'paper - earlier': paired('paper', 'earlier'), 'paper - no_token': paired('paper', 'no_token'), 'earlier - no_token': paired('earlier', 'no_token')})
print(json.dumps(out, indent=1))
Path('compare.json').write_text(json.dumps(out, indent=1))
