#!/usr/bin/env python
"""Benchmark: the tiny TaxaDiffusion UNet in fp32 and under bf16 autocast, sampling and training, side by side.

What `taxanb.guidance.sample(..., precision='auto')` decides: on hardware that runs bf16 natively (a CUDA
GPU with bf16, a CPU with AVX512-BF16 or AMX) the reproduction presets sample with the UNet under
bf16 autocast. This measures whether that pays, on the machine it runs on:

- `sample`: a classifier-free-guidance forward (batch `--sample-batch` doubled, no grad), images/s;
- `train`: forward + backward + AdamW at batch `--batch`, images/s.

The modes alternate over `--rounds` (fp32, bf16, fp32, bf16, ...) and the best round per mode is
kept, so a noisy neighbour hurts both alike. Also reported: the mean |bf16 - fp32| of one DDIM
sampling run from the same noise (how much the images change).

    python benchmarks/sample_precision.py                 # the CPU (or the GPU when there is one)
    python benchmarks/sample_precision.py --device cuda --image-size 64 --size small

Results are written to runs/bench/sample_precision-<device>-<time>.json (a new file every run).
"""
import argparse, json, platform, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda when there is one)")
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--size", default="tiny", help="a key of taxanb.backbone.TINY_SIZES")
    ap.add_argument("--batch", type=int, default=32, help="training batch")
    ap.add_argument("--sample-batch", type=int, default=128, help="images per sampling forward (doubled for guidance)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=4, help="timed steps per round and mode")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    a = ap.parse_args()
    import torch
    from taxanb.backbone import tiny_configs, build_backbone
    from taxanb.train import TINY_MAX_LENGTH
    from taxanb.guidance import sample_dtype
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    bb = build_backbone(tiny_configs(a.image_size, a.size, max_length=TINY_MAX_LENGTH), kind="tiny", seed=0)
    u = bb.unet.to(dev); W = u.config.cross_attention_dim
    opt = torch.optim.AdamW(u.parameters(), 1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(a.batch, 3, a.image_size, a.image_size, generator=g).to(dev)
    ctx = torch.randn(a.batch, TINY_MAX_LENGTH, W, generator=g).to(dev)
    t = torch.randint(0, 1000, (a.batch,), generator=g).to(dev)
    xs = torch.randn(2 * a.sample_batch, 3, a.image_size, a.image_size, generator=g).to(dev)
    cs = torch.randn(2 * a.sample_batch, TINY_MAX_LENGTH, W, generator=g).to(dev)
    ts = torch.full((2 * a.sample_batch,), 500, device=dev)

    def sync():
        if dev.type == "cuda": torch.cuda.synchronize()

    def autocast(bf16): return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    def train_step(bf16):
        with autocast(bf16): out = u(x, t, encoder_hidden_states=ctx).sample
        ((out.float() - x) ** 2).mean().backward(); opt.step(); opt.zero_grad(set_to_none=True)

    @torch.no_grad()
    def sample_fwd(bf16):
        with autocast(bf16): u(xs, ts, encoder_hidden_states=cs).sample.float()

    def rate(fn, bf16, n_img):
        fn(bf16); sync(); t0 = time.perf_counter()
        for _ in range(a.iters): fn(bf16)
        sync(); return a.iters * n_img / (time.perf_counter() - t0)

    best = {f"{k}/{p}": 0.0 for k in ("sample", "train") for p in ("fp32", "bf16")}
    rounds = []
    for r in range(a.rounds):
        for p in ("fp32", "bf16"):
            s = rate(sample_fwd, p == "bf16", 2 * a.sample_batch); tr = rate(train_step, p == "bf16", a.batch)
            rounds.append(dict(round=r, precision=p, sample_images_per_s=round(s, 1), train_images_per_s=round(tr, 1)))
            best[f"sample/{p}"] = max(best[f"sample/{p}"], s); best[f"train/{p}"] = max(best[f"train/{p}"], tr)
            print(rounds[-1], flush=True)
    # how much bf16 changes one DDIM run from the same noise (a random-weight UNet: an upper bound on the drift)
    from diffusers import DDIMScheduler
    def ddim(bf16, steps=10):
        sc = DDIMScheduler.from_config(bb.scheduler.config); sc.set_timesteps(steps)
        z = torch.randn(16, 3, a.image_size, a.image_size, generator=torch.Generator().manual_seed(1)).to(dev)
        with torch.no_grad():
            for tt in sc.timesteps:
                with autocast(bf16): e = u(z, tt, encoder_hidden_states=cs[:16]).sample.float()
                z = sc.step(e, tt, z).prev_sample
        return z.clamp(-1, 1)
    drift = float((ddim(True) - ddim(False)).abs().mean())
    res = dict(benchmark="sample_precision", device=str(dev), gpu=torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
               cpu=platform.processor() or platform.machine(), threads=torch.get_num_threads(), torch=torch.__version__,
               python=platform.python_version(), auto_precision=str(sample_dtype("auto", dev)).replace("torch.", ""),
               image_size=a.image_size, size=a.size, unet_params=sum(p.numel() for p in u.parameters()), batch=a.batch,
               sample_batch=2 * a.sample_batch, rounds=rounds, best={k: round(v, 1) for k, v in best.items()},
               speedup_bf16=dict(sample=round(best["sample/bf16"] / best["sample/fp32"], 2), train=round(best["train/bf16"] / best["train/fp32"], 2)),
               ddim10_mean_abs_diff_bf16_vs_fp32=round(drift, 4), command=" ".join([Path(sys.argv[0]).name] + sys.argv[1:]))
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    f = out / f"sample_precision-{dev.type}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    n = 1
    while f.exists(): f = f.with_name(f.stem + f"-{n}.json"); n += 1
    f.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(dict(best=res["best"], speedup_bf16=res["speedup_bf16"], drift=drift)), "->", f)


if __name__ == "__main__":
    main()
