"""Level-wise training: Table S1 counts, the offline sd15 path, resume after a real kill, papermill `-p level kingdom` .. `species` in order."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch
from safetensors.torch import load_file

from taxanb.backbone import BackboneError, build_backbone, save_backbone, tiny_configs
from taxanb.conditioning import table_s1
from taxanb.core import RunError
from taxanb.train import train_level, checkpoints, read_losses

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(preset="smoke", progress=False)


def same_weights(a: Path, b: Path):
    for f in ("conditioner/model.safetensors", "lora/pytorch_lora_weights.safetensors"):
        A, B = load_file(a / f), load_file(b / f)
        assert A.keys() == B.keys()
        for k in A: assert torch.equal(A[k], B[k]), f"{f}:{k} differs"


def test_table_s1_parameter_counts():
    s1 = table_s1()
    assert (s1["unet"], s1["lora"], s1["per_level"]) == (859_520_964, 797_184, 11_027_969)   # a level: 2 layers + its gate
    # the paper's 915.45 M total / 55.93 M trainable are these exact counts truncated to two decimals
    assert int(s1["total"] / 1e4) / 100 == 915.45 and int(s1["trainable"] / 1e4) / 100 == 55.93
    assert round(s1["lora"] / 1e6, 2) == 0.80


def test_sd15_hub_id_offline_fails_fast_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("TAXANB_SD15", raising=False)
    t0 = time.time()
    with pytest.raises(BackboneError) as e:
        train_level(None, tmp_path / "run", backbone="sd15", image_size=64, **SMOKE)
    assert time.time() - t0 < 60 and "TAXANB_SD15" in str(e.value) and "stable-diffusion-v1-5" in str(e.value)


def test_sd15_layout_folder_trains_through_from_pretrained(tmp_path, monkeypatch):
    "Tiny random components of Stable Diffusion's classes (VAE included), saved in its layout, load via TAXANB_SD15."
    save_backbone(build_backbone(tiny_configs(32, latent=True), kind="sd15", seed=5), tmp_path / "sd15")
    monkeypatch.setenv("TAXANB_SD15", str(tmp_path / "sd15"))
    s0 = train_level(None, tmp_path / "run", backbone="sd15", image_size=32, evaluate=False, **SMOKE)
    s1 = train_level("phylum", tmp_path / "run", backbone="sd15", image_size=32, **SMOKE)
    info = json.loads((s1 / "stage.json").read_text())
    assert info["base"] == str(tmp_path / "sd15") and info["level"] == "phylum" and (s1 / "samples.png").exists()
    # the LoRA it wrote loads into a diffusers pipeline built from the same folder
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "sd15", safety_checker=None)
    pipe.load_lora_weights(s0 / "lora")


def test_unknown_level_lists_the_valid_ones(tmp_path):
    with pytest.raises(RunError, match="valid levels: kingdom, phylum, class, order, family, genus, species"):
        train_level("tribe", tmp_path / "run", **SMOKE)


def test_bad_setting_is_named(tmp_path):
    with pytest.raises(RunError, match="unknown settings.*learning_rate"):
        train_level(None, tmp_path / "run", learning_rate=1e-4, **SMOKE)


def test_projection_gate_trains_saves_and_loads(tmp_path):
    "level_gate='projection': a later level starts at exactly zero output, learns a non-zero map, and its stage loads back."
    from taxanb.train import load_stage
    with pytest.raises(RunError, match="level_gate='vector'.*choose 'scalar'"):
        train_level(None, tmp_path / "bad", level_gate="vector", **SMOKE)
    run = tmp_path / "run"
    for lv in ("kingdom", "phylum"): stage = train_level(lv, run, level_gate="projection", evaluate=False, **SMOKE)
    sd = load_file(stage / "conditioner/model.safetensors")
    assert "level_modules.0.gate" in sd and "level_modules.1.gate" not in sd                  # the top level keeps its scalar gate at 1
    assert sd["level_modules.1.projection.weight"].abs().sum() > 0                            # the level below learnt a map from 0
    model, bb, info = load_stage(stage)
    assert model.conditioner.level_modules[1].projection is not None and info["settings"]["level_gate"] == "projection"
    with pytest.raises(RunError, match="level_gate 'projection' \\(yours 'scalar'\\)"):   # one gate kind per run folder
        train_level("class", run, level_gate="scalar", evaluate=False, **SMOKE)


KILL_STEPS = 120   # the killed run stops at a checkpoint >= 20: 100 steps (seconds) of margin before it would finish on its own
KILLED = textwrap.dedent("""
    import sys, torch
    torch.set_num_threads(1)
    from taxanb.train import train_level
    train_level(None, sys.argv[1], preset='smoke', steps=int(sys.argv[2]), checkpoint_every=5, progress=False, evaluate=False)
""")


def test_resume_after_kill_is_bit_identical(tmp_path):
    "A stage killed with SIGKILL mid-run resumes from its newest checkpoint and ends where an uninterrupted run ends."
    n = torch.get_num_threads(); torch.set_num_threads(1)    # the same thread count in both processes: same float reductions
    try: _resume_after_kill(tmp_path)
    finally: torch.set_num_threads(n)


def _resume_after_kill(tmp_path):
    run = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-c", KILLED, str(run), str(KILL_STEPS)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ck = run / "checkpoints" / "stage-00-kingdom"
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        cks = checkpoints(ck)
        if cks and int(cks[-1].name.split("-")[1]) >= 20: break
        time.sleep(0.05)
    assert p.poll() is None, "the run finished before it could be killed: " + (p.stderr.read() or "")
    os.kill(p.pid, signal.SIGKILL); p.wait()
    assert not (run / "stage-00-kingdom" / "stage.json").exists()
    killed_at = int(checkpoints(ck)[-1].name.split("-")[1])
    resumed = train_level(None, run, steps=KILL_STEPS, checkpoint_every=5, evaluate=False, **SMOKE)
    info = json.loads((resumed / "stage.json").read_text())
    assert info["resumed_from"] == killed_at and info["steps"] == KILL_STEPS
    steps = [r["step"] for r in read_losses(run) if r["stage"] == "stage-00-kingdom"]
    assert steps == list(range(1, KILL_STEPS + 1))         # each step logged once, none lost
    straight = train_level(None, tmp_path / "straight", steps=KILL_STEPS, checkpoint_every=5, evaluate=False, **SMOKE)
    same_weights(resumed, straight)


def papermill(*args):
    return subprocess.run([str(Path(sys.executable).parent / "papermill"), str(ROOT / "nbs" / "train_level.ipynb"), *args],
                          capture_output=True, text=True, cwd=ROOT)


LEVELS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")


@pytest.mark.timeout(1200)
def test_papermill_levels_kingdom_first(tmp_path):
    "The paper's protocol on the embedded default: `-p level kingdom` trains stage 0 (LoRA + kingdom), then phylum .. species in order."
    run = tmp_path / "run"
    r = papermill(str(tmp_path / "p0.ipynb"), "-p", "level", "phylum", "-p", "run_dir", str(run), "-p", "preset", "smoke")
    assert r.returncode != 0 and "-p level kingdom" in (r.stdout + r.stderr)       # a level before its parent: the command that trains it
    for k, lv in enumerate(LEVELS):
        out = tmp_path / f"{lv}.ipynb"
        r = papermill(str(out), "-p", "level", lv, "-p", "run_dir", str(run), "-p", "preset", "smoke")
        assert r.returncode == 0, f"{lv}: " + r.stderr[-2000:]
        info = json.loads((run / f"stage-{k:02d}-{lv}" / "stage.json").read_text())
        assert info["level"] == lv and info["level_index"] == k and info["levels"] == list(LEVELS)
        assert info["init_from"] is None if k == 0 else info["init_from"].endswith(f"stage-{k - 1:02d}-{LEVELS[k - 1]}")
        stage = run / f"stage-{k:02d}-{lv}"
        lora = sum(t.numel() for t in load_file(stage / "lora" / "pytorch_lora_weights.safetensors").values())
        level = sum(t.numel() for n, t in load_file(stage / "conditioner" / "model.safetensors").items() if n.startswith(f"level_modules.{k}."))
        assert info["trainable_params"] == (lora + level if k == 0 else level), (lv, info["trainable_params"], lora, level)   # LoRA trains with kingdom only
    assert info["oracle_accuracy"]["species"]["n"] > 0
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2    # the loss curve and the sample grid
    assert (run / "logs" / "loss.png").exists()
    # the earlier default stays an option: the leading one-taxon ranks left out, stage 0 is class
    r = papermill(str(tmp_path / "drop.ipynb"), "-p", "level", "class", "-p", "run_dir", str(tmp_path / "drop"), "-p", "preset", "smoke",
                  "-p", "single_taxon_ranks", "drop")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "drop" / "stage-00-class" / "stage.json").read_text())["levels"] == list(LEVELS[2:])


BASE = textwrap.dedent("""
    import sys
    from taxanb.train import TrainConfig, load_data, tiny_base, data_key
    cfg = TrainConfig(preset='smoke', base_steps=12)
    data, _, _ = load_data(cfg)   # the world from the session cache; the base into a fresh one
    print(tiny_base(cfg, data, data_key(cfg, data), cache_dir=sys.argv[1], progress=False))
""")


def test_concurrent_runs_pretrain_the_tiny_base_once(tmp_path):
    "Two runs asking for the same uncached base at once: one trains it, the other waits and loads it (one log, each step once)."
    ps = [subprocess.Popen([sys.executable, "-c", BASE, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
          for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in ps]
    assert all(p.returncode == 0 for p in ps), outs[0][1][-2000:] + outs[1][1][-2000:]
    folders = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(folders) == 1
    steps = [int(l.split(",")[1]) for l in (Path(folders.pop()) / "loss.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 13))


def test_the_test_split_is_the_reference_and_never_trained_on(tmp_path):
    "A dataset with train/test splits: training reads only train; the reference is test, centre-cropped, with unseen taxa counted out."
    import numpy as np
    from PIL import Image
    from taxanb.train import TrainConfig, load_data, reference_data
    rng = np.random.default_rng(0)
    for split, classes in (("train", ["Aa", "Bb", "Cc"]), ("test", ["Aa", "Bb", "Dd"])):   # Dd: a taxon the training split lacks
        for c in classes:
            for i in range(3):
                (tmp_path / split / c).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (20, 28, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{split}{i}.png")
    cfg = TrainConfig(dataset="folder", data_root=str(tmp_path), preset="smoke")
    data, tax, world = load_data(cfg)
    assert world is None and len(data) == 9 and all("/train/" in p for p in data.table["path"])
    assert "cached" not in data.report["images"] and "cached" in load_data(cfg)[0].report["images"]   # checked once, read back after
    ref, what = reference_data(cfg, tax)
    assert len(ref) == 6 and all("/test/" in p for p in ref.table["path"]) and ref.taxonomy is tax
    assert "test split, kept out of training" in what and "3 images of taxa absent from the training split left out" in what
    assert torch.equal(ref[0]["image"], ref[0]["image"]) and ref[0]["image"].shape == (3, 32, 32)   # centre crop, no flip: the same every time
    single = tmp_path / "one"; (single / "Aa").mkdir(parents=True); (single / "Bb").mkdir()
    for c in ("Aa", "Bb"): Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(single / c / "x.png")
    cfg1 = TrainConfig(dataset="folder", data_root=str(single), preset="smoke")
    d1, t1, _ = load_data(cfg1); r1, what1 = reference_data(cfg1, t1)
    assert len(d1) == len(r1) == 2 and "the training images themselves" in what1


def test_few_shot_cuts_a_real_training_split_and_nothing_else(tmp_path):
    "TrainConfig(few_shot=n) on CUB with its lineage table: n species keep 1-3 training images, each with a whole sibling; the test split and the data key tell."
    import numpy as np, pandas as pd
    from PIL import Image
    from taxanb.train import TrainConfig, load_data, reference_data, data_key
    cub, rng = tmp_path / "CUB_200_2011", np.random.default_rng(0)
    classes = [(1, "001.Ga_x", "Ga"), (2, "002.Ga_y", "Ga"), (3, "003.Gb_x", "Gb"), (4, "004.Gb_y", "Gb")]
    imgs, labs, split, k = [], [], [], 0
    for c, folder, _ in classes:
        (cub / "images" / folder).mkdir(parents=True)
        for i in range(7):
            k += 1; f = f"{folder}/{i}.jpg"
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(cub / "images" / f)
            imgs.append(f"{k} {f}"); labs.append(f"{k} {c}"); split.append(f"{k} {int(i < 5)}")
    for name, lines in (("images.txt", imgs), ("image_class_labels.txt", labs), ("train_test_split.txt", split),
                        ("classes.txt", [f"{c} {folder}" for c, folder, _ in classes])):
        (cub / name).write_text("\n".join(lines) + "\n")
    pd.DataFrame([dict(class_id=c, order="O", family="F", genus=g, species=f"{g} {folder[-1]}") for c, folder, g in classes]) \
      .to_csv(tmp_path / "cub200_taxonomy.csv", index=False)
    whole = TrainConfig(dataset="cub200", data_root=str(tmp_path), preset="smoke")
    cut = TrainConfig(dataset="cub200", data_root=str(tmp_path), preset="smoke", few_shot=2)
    d0, d2 = load_data(whole)[0], load_data(cut)[0]
    assert d0.taxonomy.ranks[-2:] == ("genus", "species") and len(d0) == 20
    few = d2.report["few_shot"]["species"]
    assert len(few) == 2 and {v["genus"] for v in few.values()} == {"Ga", "Gb"}       # one per genus: each keeps a whole sibling
    counts = d2.table["species"].value_counts()
    assert all(counts[s] == v["kept"] <= 3 for s, v in few.items())
    assert len(d2) == 10 + sum(v["kept"] for v in few.values())
    assert len(reference_data(cut, d2.taxonomy)[0]) == 8                               # the held-out split is whole
    assert data_key(cut, d2) != data_key(whole, d0)                                  # another base, another judge key
    assert load_data(cut)[0].table["path"].tolist() == d2.table["path"].tolist()       # the same species every time
