# Probe: does pretraining the tiny base on taxon-free trait captions teach cross-attention to read text?
import sys, time, json, torch, numpy as np
from dataclasses import replace
from pathlib import Path
from taxanb.train import *
from taxanb.train import fit, _seed, LossLog, TaxaModel
from taxanb.backbone import build_backbone, tiny_configs
from taxanb.conditioning import TextCache, LevelTexts, NULL_TEXT
from taxanb.synth import build_world, WorldConfig, load_oracle, TRAIT_NAMES, TRAIT_RANKS
from taxanb.metrics import oracle_accuracy
torch.set_num_threads(2)
steps = int(sys.argv[1]); lr = float(sys.argv[2]); keep = float(sys.argv[3])
world = build_world(WorldConfig(image_size=32)); tax = world.taxonomy
words = [world.traits(tax.taxon(int(s), level=tax.n_levels - 1)) for s in range(len(tax.taxa('species')))]
def caption(sp, g):
    tr = words[sp]; parts = []
    for k in ('body hue', 'body shape', 'fins', 'pattern', 'detail'):
        if k in tr and torch.rand(1, generator=g).item() < keep: parts.append(tr[k])
    return 'a fish' + (': ' + ', '.join(parts) if parts else '')
class CapModel(TaxaModel):
    def prompt_texts(self, labels, upto, drop=None):
        g = torch.Generator().manual_seed(int(labels[:, -1].sum()) * 7919 + int(drop.sum()) if drop is not None else 0)
        out = [caption(int(labels[i, -1]), g) for i in range(len(labels))]
        return [NULL_TEXT if drop is not None and bool(drop[i]) else s for i, s in enumerate(out)]
cfg = TrainConfig(preset='cpu')
bb = build_backbone(tiny_configs(32, 'tiny'), kind='tiny', seed=0)
model = CapModel(bb.unet, LevelTexts(tax), TextCache(bb.text_encoder, bb.tokenizer), mode='generic')
work = Path(f'/work/exp/capbase-{steps}-{lr}-{keep}'); work.mkdir(exist_ok=True, parents=True)
t0 = time.time()
info = fit(model, list(bb.unet.parameters()), world, bb, 'base', lambda s, B, g: 0, lambda u: 'base',
           replace(cfg, checkpoint_every=10**9), lr, steps, work/'ck', LossLog(work), progress=False)
print('train', info, time.time() - t0, flush=True)
# probe: prompt with the full trait caption of each species (all traits), 2 per species
oracle = load_oracle(world)
class Full(TaxaModel):
    def prompt_texts(self, labels, upto, drop=None):
        out = ['a fish: ' + ', '.join(words[int(labels[i, -1])][k] for k in ('body hue', 'body shape', 'fins', 'pattern', 'detail')) for i in range(len(labels))]
        return [NULL_TEXT if drop is not None and bool(drop[i]) else s for i, s in enumerate(out)]
pm = Full(bb.unet, LevelTexts(tax), TextCache(bb.text_encoder, bb.tokenizer), mode='generic')
ids = torch.arange(48).repeat_interleave(2); labels = world.species_labels(ids)
for gs in (1.0, 3.0):
    t0 = time.time(); imgs = sample(pm, bb, labels, 0, guidance=gs, steps=20, seed=1)
    acc = oracle_accuracy(oracle, imgs, labels, n_boot=200)
    print('guidance', gs, round(time.time()-t0,1), {r: (round(d['acc'], 3), round(d['lo'], 3), round(d['hi'], 3), round(d['chance'], 3)) for r, d in acc.items()}, flush=True)
from taxanb.synth import image_grid
image_grid(imgs[:48], nrow=12).save(work/'samples.png')
