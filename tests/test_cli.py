"""The `taxanb` console script: help, bad settings, and the main job end to end (smoke preset)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def taxanb(*args, **kw):
    return subprocess.run([str(BIN / "taxanb"), *args], capture_output=True, text=True, **kw)


def test_help_lists_commands():
    r = taxanb("--help")
    assert r.returncode == 0 and "demo" in r.stdout


def test_unknown_command_is_a_clear_error():
    r = taxanb("train-everything")
    assert r.returncode == 2 and "invalid choice" in r.stderr and "demo" in r.stderr


def test_bad_image_size_is_one_line_not_a_traceback(tmp_path):
    r = taxanb("demo", "--image-size", "48", "--preset", "smoke", "--out-dir", str(tmp_path), "--no-progress")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "48" in r.stderr and "32" in r.stderr and "64" in r.stderr


def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path / "runs"; f.write_text("not a folder")
    r = taxanb("demo", "--preset", "smoke", "--out-dir", str(f), "--no-progress")
    assert r.returncode == 2 and "is a file" in r.stderr


def test_demo_smoke_writes_a_new_run_each_time(tmp_path):
    outs = []
    for _ in range(2):
        r = taxanb("demo", "--preset", "smoke", "--out-dir", str(tmp_path), "--no-progress", timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        outs.append(sorted(p.name for p in tmp_path.iterdir()))
    assert len(outs[0]) == 1 and len(outs[1]) == 2, outs      # the second run did not overwrite the first
    for run in tmp_path.iterdir():
        assert {"report.md", "metrics.json", "tree_grid.png", "samples.png"} <= {p.name for p in run.iterdir()}
        m = json.loads((run / "metrics.json").read_text())
        assert m["preset"] == "smoke" and m["evidence"] is False
        assert set(m["oracle"]["accuracy"]) == set(m["world"]["ranks"])
        assert all(0.0 <= v <= 1.0 for v in m["oracle"]["accuracy"].values())
        assert "not evidence" in (run / "report.md").read_text()


# ---------------------------------------------------------------- taxanb train

def test_train_help_lists_every_setting():
    import dataclasses
    from fastcore.docments import docments
    from taxanb.train import TrainConfig
    r = taxanb("train", "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())                     # argparse wraps lines
    docs = docments(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag + " " in text or flag + "," in text, flag
        assert docs[f.name], f"TrainConfig.{f.name} has no comment (its --help text)"
        assert " ".join(docs[f.name].split())[:40].replace("%%", "%") in text, f.name
    for flag in ("--run-dir", "--level", "--resume", "--cache-dir", "--init-from", "--no-evaluate", "--prepare-only"):
        assert flag in text, flag


@pytest.mark.parametrize("args, words", [
    (["--preset", "large"], ["invalid choice", "smoke"]),
    (["--steps", "abc"], ["--steps", "invalid int value"]),
    (["--strategy", "best"], ["invalid choice", "progressive"]),
    (["--mixed-precision", "fp8"], ["mixed_precision", "bf16"]),
    (["--batch-size", "0", "--preset", "smoke"], ["batch_size must be >= 1"]),
    (["--grad-accum", "0", "--preset", "smoke"], ["grad_accum must be >= 1"]),
    (["--resume", "--preset", "smoke"], ["--resume", "--run-dir"]),
])
def test_train_bad_value_is_one_line_exit_2(tmp_path, args, words):
    r = taxanb("train", *args, "--cache-dir", str(tmp_path / "cache"), "--run-dir", str(tmp_path / "run"), "--no-progress")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("taxanb train: error:") and all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "run").exists()                # checked before any folder is made


def test_train_cli_gives_the_weights_of_train_all(tmp_path, train_cache):
    "`taxanb train` and `train_all` in Python, same settings (seeded): every saved tensor equal."
    import torch
    from safetensors.torch import load_file
    from taxanb.train import train_all
    args = dict(preset="smoke", levels=("class", "order"), steps=3, batch_size=6, seed=3)
    r = taxanb("train", "--preset", "smoke", "--levels", "class,order", "--steps", "3", "--batch-size", "6", "--seed", "3",
               "--run-dir", str(tmp_path / "cli"), "--cache-dir", str(train_cache), "--no-progress", "--no-evaluate", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("3 steps on 1 process(es), effective batch 6") == 2, r.stdout
    py = train_all(tmp_path / "py", progress=False, cache_dir=train_cache, evaluate=False, **args)
    assert [p.name for p in py] == ["stage-00-class", "stage-01-order"]
    n = 0
    for stage in py:
        for f in sorted(stage.rglob("*.safetensors")):
            A, B = load_file(f), load_file(tmp_path / "cli" / stage.name / f.relative_to(stage))
            assert A.keys() == B.keys() and all(torch.equal(A[k], B[k]) for k in A), f
            n += len(A)
    assert n > 100
    a = json.loads((tmp_path / "cli" / "config.json").read_text()); b = json.loads((tmp_path / "py" / "config.json").read_text())
    assert a == b


def test_train_refuses_a_part_trained_run_without_resume(tmp_path):
    run = tmp_path / "run"; ck = run / "checkpoints" / "stage-00-class" / "checkpoint-0000002"
    ck.mkdir(parents=True); (ck / "trainer_state.json").write_text('{"step": 2}'); (run / "config.json").write_text("{}")
    r = taxanb("train", "--preset", "smoke", "--run-dir", str(run), "--cache-dir", str(tmp_path / "c"), "--no-progress")
    assert r.returncode == 2 and "--resume" in r.stderr and "stage-00-class" in r.stderr, r.stderr


def _notebook_parameters() -> dict:
    import ast
    nb = json.loads((ROOT / "nbs" / "train_level.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    return {n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse("".join(cell["source"])).body if isinstance(n, ast.Assign)}


def test_train_level_notebook_has_a_parameter_per_flag():
    "Every TrainConfig field (a `taxanb train` flag --a-b) is a parameter a_b of nbs/train_level.ipynb, with TrainConfig's default."
    import dataclasses
    from taxanb.train import TrainConfig
    params = _notebook_parameters()
    for f in dataclasses.fields(TrainConfig):
        assert f.name in params, f.name
        if f.name != "preset": assert params[f.name] == f.default, (f.name, params[f.name], f.default)   # the notebook's preset is smoke
    assert {"run_dir", "level", "init_from", "allow_changes", "cache_dir", "evaluate"} <= set(params)


def test_train_cli_gives_the_weights_of_the_notebook(tmp_path, train_cache):
    "`taxanb train` and `papermill nbs/train_level.ipynb` with the same settings: every saved tensor equal."
    import re, torch
    from safetensors.torch import load_file
    r = taxanb("train", "--preset", "smoke", "--level", "kingdom", "--steps", "3", "--lora-rank", "2", "--run-dir", str(tmp_path / "cli"),
               "--cache-dir", str(train_cache), "--no-progress", "--no-evaluate", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([str(BIN / "papermill"), str(ROOT / "nbs" / "train_level.ipynb"), str(tmp_path / "out.ipynb"), "--cwd", str(ROOT),
                        "-p", "level", "kingdom", "-p", "steps", "3", "-p", "lora_rank", "2", "-p", "run_dir", str(tmp_path / "nb"),
                        "-p", "cache_dir", str(train_cache), "-p", "evaluate", "False", "--no-progress-bar"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", r.stderr)[-3000:]
    a, b = tmp_path / "cli" / "stage-00-kingdom", tmp_path / "nb" / "stage-00-kingdom"
    files = sorted(a.rglob("*.safetensors"))
    assert len(files) == 2
    for f in files:
        A, B = load_file(f), load_file(b / f.relative_to(a))
        assert A.keys() == B.keys() and all(torch.equal(A[k], B[k]) for k in A), f


def test_train_resume_on_another_number_of_processes_is_refused(tmp_path, train_cache):
    "A part-trained stage of 2 processes does not continue on 1 (it would change the data order and the RNG states)."
    run = tmp_path / "run"
    args = ["--preset", "smoke", "--level", "kingdom", "--run-dir", str(run), "--cache-dir", str(train_cache), "--no-progress", "--no-evaluate"]
    assert taxanb("train", *args, timeout=600).returncode == 0
    import shutil
    shutil.rmtree(run / "stage-00-kingdom")                                  # as if killed after its last checkpoint
    for f in (run / "checkpoints" / "stage-00-kingdom").glob("checkpoint-*/trainer_state.json"):
        s = json.loads(f.read_text()); s["settings"]["num_processes"] = 2; f.write_text(json.dumps(s))
    r = taxanb("train", *args, "--resume", timeout=600)
    assert r.returncode == 2 and "num_processes 2 (now 1)" in r.stderr, r.stderr


def _fish_rows():
    "12 images of 6 species in 4 genera, 3 families, 2 orders (FishNet's column names)."
    tree = [("Perciformes", "Sparidae", "Diplodus", ["sargus", "vulgaris"]), ("Perciformes", "Sciaenidae", "Pogonias", ["cromis"]),
            ("Perciformes", "Sciaenidae", "Pennahia", ["aneus"]), ("Tetraodontiformes", "Balistidae", "Balistes", ["capriscus", "vetula"])]
    return [dict(species=f"{g} {e}", image=f"{g[:3]}{e[:3]}{k}.jpg", Genus=g, Family=f, Order=o, Class="Actinopterygii", Folder=f)
            for o, f, g, eps in tree for e in eps for k in range(2)]


def test_generate_from_a_stage_whose_dataset_is_gone(tmp_path, train_cache):
    "A stage trained on a real-format dataset keeps its taxonomy: `taxanb generate` draws from it after the data folder is removed."
    import pandas as pd
    sys.path.insert(0, str(Path(__file__).parent))
    from test_data import write_fishnet
    data = write_fishnet(tmp_path / "fishnet", rows=_fish_rows(), name="train.csv")
    run = tmp_path / "run"
    r = taxanb("train", "--dataset", "fishnet", "--data-root", str(data), "--preset", "smoke", "--levels", "order,family", "--steps", "2",
               "--run-dir", str(run), "--cache-dir", str(train_cache), "--no-progress", "--no-evaluate", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    stage = run / "stage-01-family"
    assert (stage / "taxonomy.json").exists() and json.loads((stage / "stage.json").read_text())["data"].startswith("fishnet:")
    data.rename(tmp_path / "moved-away")                           # the dataset is gone
    r = taxanb("generate", str(stage), "--list-taxa", "--cache-dir", str(train_cache))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["order (2): Perciformes; Tetraodontiformes", "family (3): Sciaenidae; Sparidae; Balistidae"], r.stdout
    out = tmp_path / "gen"
    r = taxanb("generate", str(stage), "--level", "family", "--taxa", "order: Perciformes", "--n", "2", "--steps", "2", "--out", str(out),
               "--cache-dir", str(train_cache), "--no-progress")
    assert r.returncode == 2 and "not both" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()                                        # refused before anything was written
    r = taxanb("generate", str(stage), "--taxa", "order: Perciformes; family: Balistidae", "--n", "2", "--steps", "2", "--guidance", "cfg",
               "--seed", "5", "--out", str(out), "--cache-dir", str(train_cache), "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    t = pd.read_csv(out / "images.csv")
    assert t.taxon.tolist() == ["Perciformes", "Perciformes", "Balistidae", "Balistidae"] and t.seed.tolist() == [5, 6, 7, 8]
    assert t.lineage[2] == "class: Actinopterygii > order: Tetraodontiformes > family: Balistidae", t.lineage[2]
    assert all((out / f).stat().st_size > 0 for f in t.file)
    r = taxanb("generate", str(stage), "--taxa", "species: Diplodus sargus", "--out", str(tmp_path / "g2"), "--cache-dir", str(train_cache))
    assert r.returncode == 2 and "not trained in this model" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = taxanb("generate", str(stage), "--level", "family", "--out", str(out), "--cache-dir", str(train_cache))
    assert r.returncode == 2 and "runs never overwrite" in r.stderr, r.stderr
