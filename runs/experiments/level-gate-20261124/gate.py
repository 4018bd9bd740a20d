"""Does level conditioning reach the images at the cpu budget? The progressive model (seed 0, cpu preset) under three gate settings.

    python gate.py MODELS_DIR CACHE_DIR [variant ...]     # trains what MODELS_DIR lacks (trained() reuses finished models)

For each variant: oracle trait accuracy per rank of 64 images (16 species x 4) conditioned at each level,
and the mean |pixel change| between the images at one level and the level above (same noise)."""
import json, sys, time, torch, numpy as np
from pathlib import Path
from taxanb.experiments import trained, draw, lineage_rows
from taxanb.train import TrainConfig, load_data, oracle_for
from taxanb.metrics import oracle_accuracy
models, cache = sys.argv[1], sys.argv[2]
variants = {'gate0-lr5e-2': dict(), 'nogate': dict(zero_init=False), 'gate0-lr3e-1': dict(gate_lr=0.3)}
which = sys.argv[3:] or list(variants)
out = {}
for name in which:
    t0 = time.time()
    stages = trained('progressive', 'cpu', 0, models, cache_dir=cache, **variants[name])
    t_train = time.time() - t0
    data, tax, world = load_data(TrainConfig(preset='cpu'), cache)
    oracle = oracle_for(world, TrainConfig(preset='cpu'), cache)
    sp = tax.taxa('species'); sp = [sp[i] for i in np.linspace(0, len(sp) - 1, 16).round().astype(int)]
    rows = lineage_rows(tax, sp, 4)
    levels = json.loads((stages[-1]/'stage.json').read_text())['levels']
    imgs = {lv: draw(stages[-1], rows, lv, 3.0, 10, seed=0, cache_dir=cache, precision='auto') for lv in levels}
    res = {}
    for i, lv in enumerate(levels):
        acc = oracle_accuracy(oracle, imgs[lv], rows, n_boot=200, seed=0)
        res[lv] = {r: round(acc[r]['acc'], 3) for r in levels[:i + 1]}
        if i: res[lv]['pixel_change_vs_' + levels[i - 1]] = round(float((imgs[lv] - imgs[levels[i - 1]]).abs().mean()), 4)
    out[name] = dict(train_s=round(t_train, 1), per_level=res)
    print(name, json.dumps(out[name]), flush=True)
json.dump(out, open(f"result-{'_'.join(which)}.json", 'w'), indent=1)
