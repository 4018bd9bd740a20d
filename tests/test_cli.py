"""The `taxanb` console script: help, bad settings, and the main job end to end (smoke preset)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest

BIN = Path(sys.executable).parent


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
