"""Sampler settings on this run's model: oracle species accuracy and pixel saturation of 96 images (48 species x 2).

    PYTHONPATH=. OMP_NUM_THREADS=1 python runs/largo/cpu-synth/20261123-200729/diagnose.py   (run at commit aea7621)
"""
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from taxanb.ddpm import load_model, sample, load_data, DDPMConfig, feature_sources
from taxanb.metrics import oracle_accuracy
run = Path(__file__).parent
m = load_model(run/'model')
data = load_data(DDPMConfig(dataset='synth', image_size=32, preset='cpu'))
_, _, oracle = feature_sources(data, preset='cpu')
y = torch.arange(48).repeat_interleave(2)
lab = data.world.species_labels(y)
out = []
for smp in ('ddim-50', 'dpm++-25'):
    for w in (1.0, 3.0):
        t0 = time.time(); im = sample(m, y, smp, guidance=w, seed=0)
        a = oracle_accuracy(oracle, im, lab, n_boot=500)['species']
        r = dict(sampler=smp, guidance=w, n=len(im), oracle_species_acc=round(a['acc'], 4), ci=[round(a['lo'], 4), round(a['hi'], 4)],
                 chance=round(a['chance'], 4), pixel_std_0_255=round(float(im.std()) * 127.5, 1), saturated=round(float((im.abs() > .99).float().mean()), 4),
                 seconds=round(time.time() - t0, 1))
        print(r, flush=True); out.append(r)
(run/'diagnose.json').write_text(json.dumps(out, indent=2) + '\n')
