import torch, numpy as np, glob; torch.set_num_threads(1)
from taxanb.train import TrainConfig, load_data, judge_for, load_stage, sample, TaxaModel, colour_captions, base_backbone, _data_key, lineage_rows
from taxanb.conditioning import LevelTexts, TextCache
cfg = TrainConfig(dataset='cub200', data_root='/work/shared/data/cub200', preset='cpu', few_shot=10, base_steps=2500)
data, tax, world = load_data(cfg, '/work/cub/cache')
judge, _ = judge_for(cfg, data, tax, world, '/work/cub/cache')
bb = base_backbone(cfg, data, _data_key(cfg, data), '/work/cub/cache', False)
print(bb.source)
texts = LevelTexts(tax, tuple(tax.ranks))
for capt in (['a bird: yellow plumage, green background'], ['a bird: blue plumage, white background'], ['a bird: red and black plumage, green background'], ['a bird']):
    m = TaxaModel(bb.unet, texts, TextCache(bb.text_encoder, bb.tokenizer), mode='captions', captions=lambda lab, c=capt: c * len(lab))
    x = sample(m, bb, torch.zeros(8, tax.n_levels, dtype=torch.long), len(texts) - 1, 3.0, 20, seed=1)
    cols = x.mean((0, 2, 3)); centre = x[:, :, 8:24, 8:24].mean((0, 2, 3))
    print(capt[0], 'mean rgb', [round(float(v), 2) for v in cols], 'centre', [round(float(v), 2) for v in centre])
    if capt[0].startswith('a bird:  '): pass
    torch.save(x, f'/tmp/cap_{len(capt[0])}.pt')
# the order stage: same noise, different orders
st = glob.glob('/work/main/runs/learning_curve/cpu-cub/*/chain-300/stage-03-order')[0]
model, sbb, info = load_stage(st, '/work/cub/cache')
orders = tax.taxa('order')[:4]
xs = [sample(model, sbb, lineage_rows(tax, [o], 8), info['level_index'], 3.0, 20, seed=1) for o in orders]
print('order-to-order mean |diff|', float(np.mean([(xs[i] - xs[j]).abs().mean() for i in range(4) for j in range(i)])), 'seed-to-seed', float((xs[0][:4] - xs[0][4:]).abs().mean()))
