#!/usr/bin/env python
"""Benchmark: peak memory of a TaxaDiffusion training step on the Stable Diffusion 1.5 architecture (random weights),
and what it suggests for the `gpu` preset's batch of 12 per GPU.

Each setting runs `benchmarks/train_step.py` in a fresh process (so the process's peak resident set is its own):
512 px images (64x64x4 latents), cached latents and text (`--modes cached`, what `taxanb train` does on a
fixed dataset), one warm-up and `--steps` timed steps, at each batch of `--batches`, with and without gradient
checkpointing. The step trains the bottom level's module (species, five levels of text per sample) through the
frozen LoRA-adapted UNet, as every stage after the first does.

On a CPU only the peak resident set size is available (`ru_maxrss`): it holds the weights (UNet, VAE, text encoder,
level modules, in the run's dtype), the optimizer state, the activations kept for backward, and the allocator's
slack. The extrapolation to batch `--to` is linear in the batch from the first two batches measured:
`peak(1) + (b - 1) * (peak(2) - peak(1))`. It is an estimate of a GPU's memory, not a measurement: CUDA's caching
allocator, cuDNN's workspaces and bf16 autocast change it. On a GPU (`--device cuda`) the same runs report
`torch.cuda.max_memory_allocated` as well, which is the number to trust.

    python benchmarks/train_memory.py                                  # CPU: fp32, batch 1 and 2, 512 px
    python benchmarks/train_memory.py --device cuda --dtype bf16 --batches 1,2,12

Results: runs/bench/train_memory-<device>-<time>.json and .md (a new pair every run).
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default="fp32", help="weights and autocast dtype (a CPU without bf16 units: fp32)")
    ap.add_argument("--resolution", type=int, default=512)
    ap.add_argument("--batches", default="1,2", help="batches measured, comma-separated (the first two set the extrapolation)")
    ap.add_argument("--to", type=int, default=12, help="batch to extrapolate to (the paper's 12 per GPU)")
    ap.add_argument("--steps", type=int, default=1, help="timed steps per setting (after one warm-up step)")
    ap.add_argument("--checkpointing", default="off,on", help="gradient checkpointing settings to run: off, on or both")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench"))
    a = ap.parse_args()
    batches = [int(b) for b in a.batches.split(",") if b]
    if len(batches) < 2: sys.exit("--batches needs at least two batch sizes, e.g. 1,2 (the extrapolation is a line through the first two)")
    out_dir = Path(a.out); out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for ckpt in [c for c in a.checkpointing.split(",") if c]:
        if ckpt not in ("off", "on"): sys.exit(f"--checkpointing {a.checkpointing!r}: use off, on or off,on")
        for b in batches:
            tmp = out_dir / f".train_memory-{os.getpid()}-{ckpt}-{b}"
            cmd = [sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "--device", a.device, "--dtype", a.dtype,
                   "--resolution", str(a.resolution), "--batch", str(b), "--modes", "cached", "--steps", str(a.steps),
                   "--warmup", "1", "--rounds", "1", "--out", str(tmp)] + (["--gradient-checkpointing"] if ckpt == "on" else [])
            print("$", " ".join(cmd[1:]), flush=True)
            t0 = time.time()
            r = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
            if r.returncode != 0: sys.exit(f"train_step.py failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
            res = json.loads(next(tmp.glob("train_step-*.json")).read_text())
            for f in tmp.iterdir(): f.unlink()
            tmp.rmdir()
            s = res["summary"]["cached"]
            rows.append(dict(gradient_checkpointing=ckpt, batch=b, peak_rss_gib=res["process_peak_rss_gib"],
                             rss_before_steps_gib=res["peak_rss_before_steps_gib"], cuda_peak_gib=s["peak_gib"],
                             step_s=s["step_s"], cpu_s_per_step=s["cpu_s_per_step"], wall_s=round(time.time() - t0, 1)))
            print(json.dumps(rows[-1]), flush=True)
    est = []
    for ckpt in dict.fromkeys(r["gradient_checkpointing"] for r in rows):
        m = {r["batch"]: r for r in rows if r["gradient_checkpointing"] == ckpt}
        b1, b2 = batches[:2]
        for key in ("peak_rss_gib", "cuda_peak_gib"):
            if m[b1][key] is None: continue
            per = (m[b2][key] - m[b1][key]) / (b2 - b1)
            est.append(dict(gradient_checkpointing=ckpt, memory=key, per_image_gib=round(per, 3),
                            fixed_gib=round(m[b1][key] - per * b1, 3), batch=a.to, estimate_gib=round(m[b1][key] + per * (a.to - b1), 2)))
    import torch, platform
    dev = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    res = dict(benchmark="peak memory of a TaxaDiffusion training step, SD-1.5 architecture (random weights), cached latents",
               device=dev, torch=torch.__version__, settings=vars(a), measured=rows, extrapolated=est,
               note="peak_rss_gib: the process's peak resident set (weights, optimizer, activations, allocator slack); "
                    "the extrapolation is linear in the batch and an estimate until a GPU measures it",
               command="python " + " ".join(sys.argv))
    f = out_dir / f"train_memory-{a.device.split(':')[0]}-{stamp}.json"
    f.write_text(json.dumps(res, indent=2) + "\n")
    md = [f"# Peak memory of a training step, SD-1.5 architecture, {a.resolution} px, {a.dtype}", "",
          f"{dev} · torch {torch.__version__} · `{res['command']}`", "",
          "| gradient checkpointing | batch | peak RSS GiB | RSS before the steps GiB | CUDA peak GiB | CPU s / step |", "|---|---|---|---|---|---|"]
    md += [f"| {r['gradient_checkpointing']} | {r['batch']} | {r['peak_rss_gib']} | {r['rss_before_steps_gib']} | {r['cuda_peak_gib'] if r['cuda_peak_gib'] is not None else '-'} | {r['cpu_s_per_step']} |" for r in rows]
    md += ["", f"Linear extrapolation to batch {a.to} (an estimate, not a measurement):", "",
           "| gradient checkpointing | memory | fixed GiB | per image GiB | estimate GiB |", "|---|---|---|---|---|"]
    md += [f"| {e['gradient_checkpointing']} | {e['memory']} | {e['fixed_gib']} | {e['per_image_gib']} | {e['estimate_gib']} |" for e in est]
    f.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md)); print(f"written {f} and {f.with_suffix('.md')}")


if __name__ == "__main__":
    main()
