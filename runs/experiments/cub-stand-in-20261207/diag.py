import torch, numpy as np, json, glob; torch.set_num_threads(1)
from taxanb.train import TrainConfig, load_data, judge_for, reference_data
from diffusers import AutoencoderKL
cfg = TrainConfig(dataset='cub200', data_root='/work/shared/data/cub200', preset='cpu', few_shot=10)
data, tax, world = load_data(cfg, '/work/cub/cache')
judge, what = judge_for(cfg, data, tax, world, '/work/cub/cache')
ref, _ = reference_data(cfg, tax, '/work/cub/cache')
idx = np.random.default_rng(0).choice(len(ref), 400, replace=False)
x = torch.stack([ref[int(i)]['image'] for i in idx]); y = torch.stack([torch.as_tensor(ref[int(i)]['labels']) for i in idx])
vae = AutoencoderKL.from_pretrained(glob.glob('/work/cub/cache/tiny-vae/*/')[0]).eval()
with torch.no_grad(): rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
def acc(imgs):
    p = judge.predict(imgs); return {r: round(float((p[l].argmax(1) == y[:, l]).float().mean()), 3) for l, r in enumerate(judge.levels) if judge.n_taxa[l] > 1}
print('real', acc(x)); print('recon', acc(rec))
blur = torch.nn.functional.avg_pool2d(x, 2); blur = torch.nn.functional.interpolate(blur, scale_factor=2, mode='bilinear')
print('blur2', acc(blur))
l = judge.levels.index('order')
p = judge.predict(rec)[l].argmax(1); print('orders predicted on recon', np.bincount(p.numpy(), minlength=13))
print('orders true', np.bincount(y[:, l].numpy(), minlength=13))
