#!/usr/bin/env python
"""Benchmark: one TaxaDiffusion training step on the Stable Diffusion 1.5 architecture (random weights).

Three ways to feed the same step, timed side by side in one run:

- `reference`: what the reference code does: every batch runs the VAE encoder on the images and the
  CLIP text encoder on the text of every level;
- `taxanb`: what `taxanb.train.fit` does today: the VAE encoder runs on every batch (images are
  randomly cropped and flipped), each distinct level text is encoded once (`TextCache`);
- `cached`: cached latents (the VAE's latent distribution of each image, computed once, sampled
  every step) and cached text embeddings.

The step itself is the paper's: the LoRA-adapted UNet and the level modules, the diffusion MSE
loss, backward, AdamW. `--stage 0` trains LoRA + the top level module; `--stage 4` (default) trains
the species module with five levels of text per sample. The model is built once; the modes
alternate over `--rounds` and the best step per mode is kept. On CUDA each mode's peak memory
(`max_memory_allocated`) is its own; on a CPU only the process's peak resident set is reported. On a CPU the speed-ups are computed
from the process's CPU time per step (`time.process_time`), which other jobs on a shared machine do
not inflate; wall-clock times are reported beside them.

The issue's setting is the default on a GPU: 512x512, batch 12, bf16:

    python benchmarks/train_step.py --device cuda
    python benchmarks/train_step.py --device cpu --resolution 128 --batch 2 --dtype fp32   # small scale, CPU

Results are written to runs/bench/train_step-<device>-<time>.json (a new file every run).
"""
import argparse, json, os, platform, resource, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("reference", "taxanb", "cached")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if _cuda() else "cpu")
    ap.add_argument("--resolution", type=int, default=512, help="image side in pixels (latents are 1/8)")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="bf16")
    ap.add_argument("--stage", type=int, default=-1, help="level trained (0: LoRA + top level; -1: the bottom level)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per mode and round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per mode before the first round")
    ap.add_argument("--rounds", type=int, default=2, help="each round times every mode, in alternating order")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--gradient-checkpointing", action="store_true", help="recompute the UNet's activations in backward (as `taxanb train --gradient-checkpointing`)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    a = ap.parse_args()
    if a.resolution % 8: sys.exit(f"--resolution {a.resolution} is not divisible by 8 (the VAE downsamples by 8); pick e.g. 128 or 512")
    if a.device.startswith("cuda") and not _cuda(): sys.exit("--device cuda but torch sees no CUDA GPU; use --device cpu (with a small --resolution and --batch)")
    modes = [m for m in a.modes.split(",") if m]
    if not modes or set(modes) - set(MODES): sys.exit(f"--modes {a.modes!r}: choose from {', '.join(MODES)}")

    import torch
    import torch.nn.functional as F
    from taxanb.backbone import build_backbone, SD15_CONFIGS
    from taxanb.conditioning import LevelTexts, TextCache, TaxaConditioner
    from taxanb.lora import add_lora, lora_parameters
    from taxanb.synth import build_world
    from taxanb.train import TaxaModel

    dev = torch.device(a.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[a.dtype]
    t_build = time.time()
    bb = build_backbone(SD15_CONFIGS, kind="sd15", seed=0)
    add_lora(bb.unet)
    world = build_world()
    texts = LevelTexts(world.taxonomy, single_taxon_ranks='drop')   # class..species: --stage 4 is species with five levels, as recorded
    k = a.stage if a.stage >= 0 else len(texts) - 1
    cond = TaxaConditioner(texts.levels, bb.text_width)
    bb.to(dev, dtype=dtype if a.dtype != "fp32" else None)
    cond.to(dev)
    params = cond.freeze_levels([k]) + (lora_parameters(bb.unet) if k == 0 else [])
    for p in lora_parameters(bb.unet): p.requires_grad_(k == 0)
    model = TaxaModel(bb.unet, texts, TextCache(bb.text_encoder, bb.tokenizer), cond, "levels").train()
    if a.gradient_checkpointing: bb.unet.enable_gradient_checkpointing()
    opt = torch.optim.AdamW(params, lr=1e-4)
    print(f"built in {time.time() - t_build:.0f} s: {bb}", flush=True)

    g = torch.Generator().manual_seed(1)
    _, labels = world.sample(1, seed=1)                     # one image per species: real label rows
    labels = labels[torch.randint(0, len(labels), (a.batch,), generator=g)]
    images = (torch.rand(a.batch, 3, a.resolution, a.resolution, generator=g) * 2 - 1).to(dev)
    with torch.no_grad():                                   # what a latent cache holds: the latent distribution
        dist = bb.vae.encode(images.to(bb.vae.dtype)).latent_dist
        mean, std = dist.mean.float(), dist.std.float()
    T = bb.scheduler.config.num_train_timesteps
    auto = torch.autocast(dev.type, dtype=dtype, enabled=a.dtype != "fp32")
    text_cache = model.cache

    def step(mode):
        # reference: every level's text through the encoder again; otherwise each distinct text once
        model.__dict__["cache"] = TextCache(bb.text_encoder, bb.tokenizer) if mode == "reference" else text_cache
        if mode == "cached": x0 = (mean + std * torch.randn_like(std)) * bb.scaling_factor
        else: x0 = bb.encode(images).float()
        noise = torch.randn_like(x0)
        t = torch.randint(0, T, (a.batch,), device=dev)
        with auto: pred = model(bb.scheduler.add_noise(x0, noise, t), t, labels, k)
        loss = F.mse_loss(pred.float(), noise)
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)

    cuda = dev.type == "cuda"
    rss_built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20   # GiB: peak so far (model built, latents encoded)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for m in modes:
        for _ in range(a.warmup): step(m)
    sync()
    res = {m: dict(step_s=[], cpu_s=[], peak_gib=0.0) for m in modes}
    for r in range(a.rounds):
        for m in (modes if r % 2 == 0 else modes[::-1]):
            if cuda: torch.cuda.reset_peak_memory_stats()
            for _ in range(a.steps):
                t0, c0 = time.perf_counter(), time.process_time()
                step(m); sync()
                res[m]["step_s"].append(round(time.perf_counter() - t0, 4)); res[m]["cpu_s"].append(round(time.process_time() - c0, 4))
            if cuda: res[m]["peak_gib"] = max(res[m]["peak_gib"], round(torch.cuda.max_memory_allocated() / 2**30, 3))
            print(f"round {r} {m:9s}: best step {min(res[m]['step_s']):.3f} s wall, {min(res[m]['cpu_s']):.3f} s CPU", flush=True)
    key = "step_s" if cuda else "cpu_s"                     # see the docstring
    ref = min(res["reference"][key]) if "reference" in res else None
    summary = {m: dict(images_per_s=round(a.batch / min(v["step_s"]), 4), step_s=min(v["step_s"]), cpu_s_per_step=min(v["cpu_s"]),
                       peak_gib=v["peak_gib"] if cuda else None,
                       speedup_vs_reference=round(ref / min(v[key]), 3) if ref else None) for m, v in res.items()}
    dev_name = torch.cuda.get_device_name(0) if cuda else f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    out = dict(benchmark="TaxaDiffusion training step, SD-1.5 architecture (random weights)", device=dev_name,
               torch=torch.__version__, settings=vars(a), level=texts.levels[k], trainable_params=sum(p.numel() for p in params),
               speedup_from="wall time per step" if cuda else "CPU time per step (time.process_time)",
               process_peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
               peak_rss_before_steps_gib=round(rss_built, 3),
               summary=summary, steps=res, command="python " + " ".join(sys.argv))
    Path(a.out).mkdir(parents=True, exist_ok=True)
    f = Path(a.out) / f"train_step-{dev.type}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    f.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary, indent=2)); print(f"written {f}")


def _cuda():
    import torch
    return torch.cuda.is_available()


if __name__ == "__main__":
    main()
