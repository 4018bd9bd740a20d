"""Throughput of the LARGO DDPM specification U-Net at 64x64: training and sampling images/s, fp32 vs bf16 + channels_last.

    python benchmarks/ddpm_bench.py                                  # CPU here: few steps, ratios only
    python benchmarks/ddpm_bench.py --device cuda --batch 64 --steps 20 --peak-tflops 989   # e.g. H100 SXM dense bf16

Writes runs/bench/ddpm-<device>-<timestamp>.json. Not a test: numbers depend on the machine (and on other load).
On a GPU it also reports the fraction of the peak bf16 throughput (--peak-tflops, from the GPU's data sheet)
that the training step reaches, from the FLOPs of one step counted by torch.utils.flop_counter.
"""
import argparse, json, platform, time
from datetime import datetime
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from taxanb.core import write_json
from taxanb.ddpm import LargoUNet, guided_eps, SAMPLERS


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def make(args, dev, variant):
    torch.manual_seed(0)
    m = LargoUNet(num_classes=args.classes, image_size=args.image_size, base_channels=args.base_channels, channels=args.channels).to(dev)
    if variant['channels_last']: m = m.to(memory_format=torch.channels_last)
    fwd = torch.compile(m) if variant['compile'] else m
    return m, fwd


def batch(args, dev, n, variant, g):
    x = torch.randn(n, 3, args.image_size, args.image_size, generator=g).to(dev)
    if variant['channels_last']: x = x.contiguous(memory_format=torch.channels_last)
    return x, torch.randint(0, 1000, (n,), generator=g).to(dev), torch.randint(0, args.classes + 1, (n,), generator=g).to(dev)


def train_step(m, fwd, opt, x, t, y, dtype):
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype != torch.float32):
        pred = fwd(x, t, y)
    loss = F.mse_loss(pred.float(), x.float())
    loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    return loss


def bench(args, dev, variant):
    dtype = torch.bfloat16 if variant['dtype'] == 'bf16' else torch.float32
    m, fwd = make(args, dev, variant)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-4, betas=(0.9, 0.999), weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    x, t, y = batch(args, dev, args.batch, variant, g)
    m.train()
    flops = None
    if args.count_flops:
        with FlopCounterMode(display=False) as fc: train_step(m, m, opt, x, t, y, dtype)
        flops = fc.get_total_flops()
    for _ in range(args.warmup): train_step(m, fwd, opt, x, t, y, dtype)
    sync(dev); t0 = time.perf_counter()
    for _ in range(args.steps): train_step(m, fwd, opt, x, t, y, dtype)
    sync(dev); train_s = (time.perf_counter() - t0) / args.steps
    # sampling: guided (two U-Net evaluations per step, batched), eval mode, no grad
    m.eval(); xs, ts, ys = batch(args, dev, args.sample_batch, variant, g); ys = ys.clamp(max=args.classes - 1)
    with torch.no_grad(), torch.autocast(dev.type, dtype=dtype, enabled=dtype != torch.float32):
        for _ in range(args.warmup): guided_eps(fwd, xs, ts[0], ys, 3.0, args.classes)
        sync(dev); t0 = time.perf_counter()
        for _ in range(args.sample_steps): guided_eps(fwd, xs, ts[0], ys, 3.0, args.classes)
        sync(dev)
    step_s = (time.perf_counter() - t0) / args.sample_steps
    out = dict(variant, train_images_per_s=args.batch / train_s, train_step_s=train_s,
               guided_step_s=step_s, guided_image_steps_per_s=args.sample_batch / step_s,
               sampling_images_per_s={k: args.sample_batch / (step_s * n) for k, (_, n) in SAMPLERS.items()})
    if flops is not None:
        out['train_flops_per_step'] = flops; out['train_tflops_per_s'] = flops / train_s / 1e12
        if args.peak_tflops: out['fraction_of_peak_bf16'] = out['train_tflops_per_s'] / args.peak_tflops
    if dev.type == 'cuda': out['peak_memory_gib'] = torch.cuda.max_memory_allocated() / 2**30; torch.cuda.reset_peak_memory_stats()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--batch', type=int, default=None, help='training batch (default: 64 on CUDA, 4 on CPU)')
    p.add_argument('--sample-batch', type=int, default=None, help='images per sampling step (default: 64 on CUDA, 4 on CPU)')
    p.add_argument('--steps', type=int, default=None, help='timed training steps (default: 20 on CUDA, 2 on CPU)')
    p.add_argument('--sample-steps', type=int, default=None, help='timed guided denoising steps (default: 20 on CUDA, 2 on CPU)')
    p.add_argument('--warmup', type=int, default=None, help='untimed steps first (default: 3 on CUDA, 1 on CPU)')
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--base-channels', type=int, default=64, help='64: the specification')
    p.add_argument('--channels', default='table', choices=['table', 'multipliers'])
    p.add_argument('--classes', type=int, default=102)
    p.add_argument('--compile', action='store_true', help='also time torch.compile variants (off by default; slow to start on CPU)')
    p.add_argument('--no-flops', dest='count_flops', action='store_false', help='skip counting the FLOPs of a training step')
    p.add_argument('--peak-tflops', type=float, default=None, help="the device's peak dense bf16 TFLOP/s (data sheet), for the fraction of peak")
    p.add_argument('--threads', type=int, default=None, help='torch intra-op threads (CPU)')
    p.add_argument('--out', default='runs/bench')
    args = p.parse_args()
    dev = torch.device(args.device); gpu = dev.type == 'cuda'
    for k, a, b in (('batch', 64, 4), ('sample_batch', 64, 4), ('steps', 20, 2), ('sample_steps', 20, 2), ('warmup', 3, 1)):
        if getattr(args, k) is None: setattr(args, k, a if gpu else b)
    if args.threads: torch.set_num_threads(args.threads)
    if gpu: torch.backends.cudnn.benchmark = True
    variants = [dict(dtype='fp32', channels_last=False, compile=False), dict(dtype='bf16', channels_last=True, compile=False)]
    if args.compile: variants += [dict(v, compile=True) for v in variants]
    n_params = sum(p.numel() for p in LargoUNet(num_classes=args.classes, image_size=args.image_size, base_channels=args.base_channels, channels=args.channels).parameters())
    rows = []
    for v in variants:
        r = bench(args, dev, v); rows.append(r)
        print(f"{v}: train {r['train_images_per_s']:.2f} img/s, guided step {r['guided_image_steps_per_s']:.2f} image-steps/s"
              + (f", {r['train_tflops_per_s']:.3f} TFLOP/s" if 'train_tflops_per_s' in r else '')
              + (f", {100 * r['fraction_of_peak_bf16']:.1f} % of peak bf16" if 'fraction_of_peak_bf16' in r else ''), flush=True)
    base = rows[0]
    for r in rows: r['train_speedup_vs_fp32'] = r['train_images_per_s'] / base['train_images_per_s']; r['sampling_speedup_vs_fp32'] = r['guided_image_steps_per_s'] / base['guided_image_steps_per_s']
    name = torch.cuda.get_device_name(dev) if gpu else (platform.processor() or platform.machine())
    res = dict(model=dict(parameters=n_params, image_size=args.image_size, base_channels=args.base_channels, channels=args.channels, classes=args.classes),
               device=str(dev), device_name=name, threads=torch.get_num_threads(), torch=torch.__version__, args=vars(args),
               note='CPU shared with other jobs: compare the variants (measured side by side in this run), not absolute speeds' if not gpu else None,
               results=rows, time=datetime.now().isoformat(timespec='seconds'))
    out = Path(args.out) / f"ddpm-{dev.type}-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    write_json(out, res); print(out)


if __name__ == '__main__':
    main()
