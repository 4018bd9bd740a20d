"""LARGO DDPM: resume after a real kill is bit-identical, and bad input gets a clear error."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file

from taxanb.core import RunError
from taxanb.ddpm import LargoUNet, DDPMConfig, train, load_model, sample, checkpoints, read_losses

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(dataset="synth", image_size=32, preset="smoke", progress=False)

KILLED = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from taxanb.ddpm import train
    train(sys.argv[1], dataset='synth', image_size=32, preset='smoke', steps=400, checkpoint_every=5, progress=False)
""")


@pytest.fixture(autouse=True)
def one_thread():
    "Tiny models: one intra-op thread (a shared 2-core machine is far slower with two)."
    n = torch.get_num_threads(); torch.set_num_threads(1); yield; torch.set_num_threads(n)


def test_resume_after_kill_is_bit_identical(tmp_path):
    "A run killed with SIGKILL between checkpoints resumes from the newest one and ends where an uninterrupted run ends."
    run = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        cks = checkpoints(run / "checkpoints")
        if cks and int(cks[-1].name.split("-")[1]) >= 10: break
        time.sleep(0.02)
    assert p.poll() is None, "the run finished before it could be killed: " + (p.stderr.read() or "")
    time.sleep(0.3)                                          # a few steps past the checkpoint: those are lost and redone
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not (run / "model").exists()
    killed_at = int(checkpoints(run / "checkpoints")[-1].name.split("-")[1])
    logged = [r["step"] for r in read_losses(run)]
    assert killed_at >= 10 and max(logged) >= killed_at
    steps = killed_at + 7                                    # resume and stop between two later checkpoints
    m = train(run, steps=steps, checkpoint_every=5, **SMOKE)
    info = json.loads((m / "train.json").read_text())
    assert info["resumed_from"] == killed_at and info["steps"] == steps
    assert [r["step"] for r in read_losses(run)] == list(range(1, steps + 1))   # each step logged once, none lost
    straight = train(tmp_path / "straight", steps=steps, checkpoint_every=5, **SMOKE)
    A, B = load_file(m / "diffusion_pytorch_model.safetensors"), load_file(straight / "diffusion_pytorch_model.safetensors")
    assert A.keys() == B.keys() and all(torch.equal(A[k], B[k]) for k in A)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    n = torch.get_num_threads(); torch.set_num_threads(1)   # restored: the thread count must not leak into other test modules
    try: return train(tmp_path_factory.mktemp("ddpm") / "run", steps=2, **SMOKE)
    finally: torch.set_num_threads(n)


def test_unknown_class_id_and_name(model_dir):
    m = load_model(model_dir)
    with pytest.raises(RunError, match=r"unknown class id 48: the model has 48 classes, ids 0..47 \(id 48 is the null class"):
        sample(m, [48], "dpm++-25")
    name = m.config.class_names[3]
    with pytest.raises(RunError, match=f"unknown class name '{name}x'; did you mean '{name}'"):
        sample(m, [name + "x"], "dpm++-25")
    assert sample(m, [name, 0], "dpm++-25").shape == (2, 3, 32, 32)     # names and ids both work


def test_negative_guidance(model_dir):
    with pytest.raises(RunError, match="guidance must be a number >= 0"):
        sample(load_model(model_dir), [0], "dpm++-25", guidance=-0.5)


def test_image_size_not_divisible_by_8():
    with pytest.raises(RunError, match="image_size=60 is not a multiple of 8"):
        DDPMConfig(image_size=60)
    with pytest.raises(RunError, match="image_size=36 is not divisible by 8"):
        LargoUNet(num_classes=3, image_size=36)


def test_wrong_architecture_checkpoint(model_dir, tmp_path):
    with pytest.raises(RunError, match="base_channels=16 in the checkpoint but 64 here"):
        load_model(model_dir, base_channels=64, image_size=32)
    with pytest.raises(RunError, match="channels='table' in the checkpoint but 'multipliers' here"):
        load_model(model_dir, channels="multipliers")
    # resuming a run folder with another architecture names the setting, before any weights are touched
    with pytest.raises(RunError, match="layers_per_block=1 there but 2 here"):
        train(model_dir.parent, steps=2, layers_per_block=2, **SMOKE)
    # a diffusers model of another class in the folder
    from diffusers import UNet2DModel
    UNet2DModel(sample_size=8, block_out_channels=(32, 32), down_block_types=("DownBlock2D",) * 2,
                up_block_types=("UpBlock2D",) * 2).save_pretrained(tmp_path / "other")
    with pytest.raises(RunError, match="holds a 'UNet2DModel', not a LargoUNet"):
        load_model(tmp_path / "other")


def test_unknown_sampler_and_setting(model_dir, tmp_path):
    with pytest.raises(RunError, match="sampler='euler-10'; use one of ddpm-1000, ddim-250, ddim-50, dpm\\+\\+-25"):
        sample(load_model(model_dir), [0], "euler-10")
    with pytest.raises(RunError, match="unknown settings \\['learning_rate'\\]"):
        train(tmp_path / "r", learning_rate=1e-3, **SMOKE)
    with pytest.raises(RunError, match="needs data_root"):
        train(tmp_path / "r2", dataset="oxford102", **{k: v for k, v in SMOKE.items() if k != "dataset"})


BF16 = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from taxanb.ddpm import train, load_model, sample
    m = train(sys.argv[1], dataset='synth', image_size=32, preset='smoke', steps=2, mixed_precision='bf16', progress=False)
    assert sample(load_model(m), [0, 1], 'dpm++-25').shape == (2, 3, 32, 32)
""")


def test_bf16_training_and_sampling(tmp_path):
    "The bf16 option (accelerate autocast) trains and the saved model samples (own process: accelerate fixes the precision per process)."
    import math
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", BF16, str(tmp_path / "bf16")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    info = json.loads((tmp_path / "bf16" / "model" / "train.json").read_text())
    assert info["steps"] == 2 and math.isfinite(info["final_loss"])
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["mixed_precision"] == "bf16"
