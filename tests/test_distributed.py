"""`taxanb train` on 2 CPU processes (torch.distributed with gloo, launched by `accelerate launch`), smoke sizes.

accelerate's `--cpu` launches several processes only through MPI (`--mpirun_hostfile`); torchrun-launched CPU processes are
`accelerate launch --multi_gpu ...` with ACCELERATE_USE_CPU=1 (accelerate then picks MULTI_CPU and gloo), the command here.

Tolerance of "2 processes with batch b = 1 process with batch 2b": both see the same images, noise, timesteps and levels at every
step (the losses agree to 1e-6 at each of 40 steps), but the level modules' dropout masks are drawn per process, so with dropout
on the weights differ as two dropout draws do (measured, 40 smoke steps: relative norm of the difference 4.5e-2 for the level
modules, 1.1e-2 for LoRA; largest single weight 2.9e-2). With the level modules' dropout off (a sitecustomize.py on PYTHONPATH
of both runs) what is left is the order of floating-point sums (DDP averages two half-batch gradients), amplified by Adam on a
few weights: measured over two tiny bases, relative norm <= 1.95e-5 (level modules) and <= 5.4e-7 (LoRA), largest single weight
1.8e-4 (0.03% of the level-module weights differ by more than 1e-5), on the class stage; on the kingdom stage (the first level
since Kingdom-first, what the tests train) one run gave 1.96e-7 and 1.63e-6. The tests allow REL_TOL and ABS_TOL below.
"""
import json, os, signal, socket, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REL_TOL = 1e-4                 # |w2 - w1| / |w1| per weights file, 2 processes (batch 4) vs 1 (batch 8), dropout off; measured <= 1.9e-5
ABS_TOL = 1e-3                 # largest single-weight difference; measured <= 1.8e-4
NO_DROPOUT = '''import torch.nn as nn
_init = nn.TransformerEncoderLayer.__init__
def _no_dropout(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, *a, **k): _init(self, d_model, nhead, dim_feedforward, 0.0, *a, **k)
nn.TransformerEncoderLayer.__init__ = _no_dropout   # test only: the level modules without dropout
'''
SMOKE = ["--preset", "smoke", "--no-progress", "--no-evaluate"]

pytestmark = pytest.mark.skipif(not __import__("torch").distributed.is_available(), reason="torch.distributed not built")


def _port() -> int:
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


def _env(no_dropout=None) -> dict:
    path = [str(no_dropout)] if no_dropout else []
    path += [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1", "HF_HUB_OFFLINE": "1"}


def launch_cmd(*args, n=2) -> list:
    return [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", str(n), "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "--main_process_port", str(_port()), "-m", "taxanb", "train", *args]


def launch(*args, no_dropout=None, timeout=240):
    return subprocess.run(launch_cmd(*args), capture_output=True, text=True, timeout=timeout, env=_env(no_dropout))


def one(*args, no_dropout=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "taxanb", "train", *args], capture_output=True, text=True, timeout=timeout, env=_env(no_dropout))


def weight_diff(a: Path, b: Path) -> tuple:
    "(largest relative norm of the difference over the weights files, largest single-weight difference) of two stage folders."
    import torch
    from safetensors.torch import load_file
    rel, mx, files = 0.0, 0.0, sorted(a.rglob("*.safetensors"))
    assert files
    for f in files:
        A, B = load_file(f), load_file(b / f.relative_to(a))
        assert A.keys() == B.keys()
        d = torch.cat([(A[k].double() - B[k].double()).flatten() for k in A]); w = torch.cat([A[k].double().flatten() for k in A])
        rel, mx = max(rel, (d.norm() / w.norm()).item()), max(mx, d.abs().max().item())
    return rel, mx


def one_writer(run: Path, stage: str, steps: int, attempts: int = 1):
    "Each step logged once by one process, no temporary folder left, one TensorBoard file per attempt."
    rows = [l.split(",") for l in (run / "logs" / "loss.csv").read_text().splitlines()]
    assert rows[0][:2] == ["stage", "step"] and sum(r == rows[0] for r in rows) == 1
    assert [int(r[1]) for r in rows[1:] if r[0] == stage] == list(range(1, steps + 1))
    assert not [p for p in run.rglob("*") if ".tmp" in p.name], "a temporary file or folder was left"
    assert len(list((run / "logs" / "tensorboard").glob("events.out.tfevents.*"))) == attempts
    return rows[1:]


STEPS, EVERY = 40, 10


@pytest.fixture(scope="module")
def no_dropout(tmp_path_factory):
    d = tmp_path_factory.mktemp("no-dropout"); (d / "sitecustomize.py").write_text(NO_DROPOUT); return d


@pytest.fixture(scope="module")
def reference(tmp_path_factory, train_cache, no_dropout):
    "One process, batch 8, dropout off: what 2 processes with batch 4 must give."
    run = tmp_path_factory.mktemp("ref") / "run"
    r = one(*SMOKE, "--level", "kingdom", "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--batch-size", "8",
            "--run-dir", str(run), "--cache-dir", str(train_cache), no_dropout=no_dropout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return run


@pytest.fixture(scope="module")
def two(tmp_path_factory, train_cache, no_dropout):
    "(run folder, launch result): 2 processes, batch 4 each, dropout off, uninterrupted."
    run = tmp_path_factory.mktemp("two") / "run"
    r = launch(*SMOKE, "--level", "kingdom", "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--batch-size", "4",
               "--run-dir", str(run), "--cache-dir", str(train_cache), no_dropout=no_dropout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return run, r


def test_two_processes_one_writer_same_weights_as_one(train_cache, two, reference):
    run, r = two
    assert r.stdout.count(f"{STEPS} steps on 2 process(es), effective batch 8") == 1, r.stdout   # printed once, by the main process
    rows = one_writer(run, "stage-00-kingdom", STEPS)
    info = json.loads((run / "stage-00-kingdom" / "stage.json").read_text())
    assert (info["num_processes"], info["batch_size"], info["grad_accum"], info["effective_batch"]) == (2, 4, 1, 8)
    ref = [l.split(",") for l in (reference / "logs" / "loss.csv").read_text().splitlines()[1:]]
    assert [int(r[5]) for r in rows] == [int(r[5]) for r in ref]
    assert max(abs(float(a[3]) - float(b[3])) for a, b in zip(rows, ref)) < 1e-4   # the same loss at every step
    rel, mx = weight_diff(reference / "stage-00-kingdom", run / "stage-00-kingdom")
    print(f"2 processes x batch 4 vs 1 x batch 8, {STEPS} steps: relative difference {rel:.3g}, largest {mx:.3g}")
    assert rel < REL_TOL and mx < ABS_TOL, (rel, mx)
    import torch
    from taxanb.train import load_stage
    from taxanb.guidance import sample
    from taxanb.guidance import taxa_to_draw
    model, bb, got = load_stage(run / "stage-00-kingdom", cache_dir=train_cache)    # a stage of 2 processes loads in one
    assert got["num_processes"] == 2
    _, labels = taxa_to_draw(model.texts.tax, got["level"], 2)
    assert torch.isfinite(sample(model, bb, labels, 0, steps=2)).all()


def test_random_on_two_processes(tmp_path, train_cache):
    "strategy random: DDP with unused levels; the level of each step is the same on every process (= one process with the global batch)."
    run = tmp_path / "run"
    r = launch("--preset", "smoke", "--no-progress", "--strategy", "random", "--steps", "6", "--batch-size", "4",
               "--run-dir", str(run), "--cache-dir", str(train_cache))            # with samples, drawn by the main process
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    rows = one_writer(run, "stage-random", 6)
    info = json.loads((run / "stage-random" / "stage.json").read_text())
    assert info["num_processes"] == 2 and info["effective_batch"] == 8 and (run / "stage-random" / "samples.png").is_file()
    levels = [r[2] for r in rows]
    assert set(levels) <= set(info["levels"]) and len(set(levels)) > 1, levels
    from taxanb.train import train_level, read_losses
    py = train_level(None, tmp_path / "one", preset="smoke", strategy="random", steps=6, batch_size=8, progress=False,
                     evaluate=False, cache_dir=train_cache)
    assert [x["level"] for x in read_losses(py.parent)] == levels                  # the same level at every step


def _workers(launcher: subprocess.Popen) -> dict:
    "{rank: psutil.Process} of the training processes under an accelerate launch."
    import psutil
    out = {}
    for p in psutil.Process(launcher.pid).children(recursive=True):
        try:
            env = p.environ()
            if "-m" in p.cmdline() and "taxanb" in p.cmdline() and "RANK" in env: out[int(env["RANK"])] = p
        except psutil.Error: pass
    return out


def test_resume_after_sigkill_of_one_rank(tmp_path, train_cache, no_dropout, reference, two):
    run = tmp_path / "run"
    args = [*SMOKE, "--level", "kingdom", "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--batch-size", "4",
            "--run-dir", str(run), "--cache-dir", str(train_cache)]
    p = subprocess.Popen(launch_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(no_dropout))
    ck = run / "checkpoints" / "stage-00-kingdom"
    t0, killed = time.time(), None
    try:
        while time.time() - t0 < 180 and p.poll() is None:
            if (ck / f"checkpoint-{EVERY:07d}" / "trainer_state.json").is_file():
                w = _workers(p)
                if 1 in w: w[1].send_signal(signal.SIGKILL); killed = time.time(); break
            time.sleep(0.02)
        out = p.communicate(timeout=120)[0]
    finally:
        if p.poll() is None: p.kill()
    assert killed, "no checkpoint appeared, or rank 1 was not found: " + out[-2000:]
    assert p.returncode != 0 and not (run / "stage-00-kingdom").exists(), "the run ended before the kill (too fast): " + out[-1000:]
    r = one(*args)                                                     # the same command without --resume is refused
    assert r.returncode == 2 and "--resume" in r.stderr, r.stderr
    r = launch(*args, "--resume", no_dropout=no_dropout)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    info = json.loads((run / "stage-00-kingdom" / "stage.json").read_text())
    assert info["resumed_from"] >= EVERY and info["resumed_from"] % EVERY == 0 and info["num_processes"] == 2, info
    one_writer(run, "stage-00-kingdom", STEPS, attempts=2)                   # the rows after the checkpoint were dropped, each step once
    print(f"killed at {killed - t0:.1f} s, resumed from step {info['resumed_from']}")
    assert weight_diff(two[0] / "stage-00-kingdom", run / "stage-00-kingdom") == (0.0, 0.0)   # bit-identical to the uninterrupted 2-process run
    rel, mx = weight_diff(reference / "stage-00-kingdom", run / "stage-00-kingdom")
    assert rel < REL_TOL and mx < ABS_TOL, (rel, mx)
