"""`taxanb reproduce` on a reader's dataset: every notebook at the smoke size (a file of its own, so that pytest-xdist runs it beside
the other slow reproduction tests)."""
import json, os, subprocess, sys
from pathlib import Path
import pytest
from test_experiments import write_world_as_fishnet

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_reproduce_every_notebook_on_a_real_format_dataset(tmp_path):
    "`taxanb reproduce --preset smoke --dataset fishnet --data-root DIR` on a reader's dataset (FishNet layout) runs every notebook, 0 failed: "
    "a judge trained on its training images scores the tables, its held-out accuracy stated, its test split the reference."
    from taxanb.reproduce import NOTEBOOKS
    root, w = write_world_as_fishnet(tmp_path / "fish")
    run = tmp_path / "run"
    r = subprocess.run([str(BIN / "taxanb"), "reproduce", "--preset", "smoke", "--dataset", "fishnet", "--data-root", str(root), "--out", str(run),
                        "--no-progress", "--jobs", "2"], capture_output=True, text=True, timeout=2300, cwd=ROOT, env={**os.environ, "MPLBACKEND": "Agg"})
    rep = json.loads((run / "report.json").read_text())
    assert [(n["name"], n["status"]) for n in rep["notebooks"]] == [(n, "ok") for n in NOTEBOOKS], r.stdout[-3000:] + r.stderr[-3000:]
    assert r.returncode == 0 and "Traceback" not in (run / "REPORT.md").read_text()
    assert json.loads((run / "taxa_models" / "metrics.json").read_text())["jobs"] == 2       # every model trained here, two at a time,
    assert len([d for d in (run / "models").iterdir() if (d / "settings.json").exists()]) >= 6   # into the run's own models/
    for d in ("taxa_guidance", "taxa_strategies", "taxa_table1"):
        m = json.loads((run / d / "metrics.json").read_text())
        assert m["judge"].startswith("a judge: the oracle's small CNN") and "held-out accuracy" in m["judge"], m["judge"]
        assert "its test split, kept out of training" in m["reference"], m["reference"]   # test.csv is the reference, as the paper
        assert "a judge" in (run / d / "table.md").read_text()
    assert "Guide: the species head of a judge" in (run / "dct_tables" / "table.md").read_text()
    s = json.loads((run / "taxa_strategies" / "metrics.json").read_text())
    assert set(s["per_seed"]["progressive/seed0"]) >= {"genus_all", "species_all", "few_species", "few_genus", "few_family", "fid"}
    assert len(s["few_shot"]) == 2                                    # the world's two few-shot species, found from the data alone
