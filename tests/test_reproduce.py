"""`taxanb reproduce`: bad input, the run of a registry of tiny notebooks (ok, failing, skipped), REPORT.md, --list,
and (once every registry notebook exists) the real smoke preset end to end."""
import json, subprocess, sys
from pathlib import Path
import nbformat, pytest
from taxanb import cli, reproduce as rp
from taxanb.reproduce import Notebook, NOTEBOOKS, reproduce

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def taxanb(*args, **kw):
    return subprocess.run([str(BIN / "taxanb"), *args], capture_output=True, text=True, **kw)


PARAMS = ("preset = 'smoke'\ndataset = None\ndata_root = None\nbackbone = None\nseeds = None\n"
          "out_dir = None\nmodels_dir = None\ncache_dir = None")
GOOD = """from pathlib import Path
import json
from PIL import Image
out = Path(out_dir); out.mkdir(parents=True, exist_ok=True)
for n in ('curve', 'extra'): Image.new('RGB', (4, 4), 'red').save(out/f'{n}.png')
(out/'table.md').write_text('## Good table\\n\\n| metric | value |\\n|---|---|\\n| answer | 42 |\\n\\n![curve](curve.png)\\n')
(out/'metrics.json').write_text(json.dumps(dict(seeds=seeds, preset=preset, models_dir=models_dir)))"""


def notebook(path, body):
    cell = nbformat.v4.new_code_cell(PARAMS); cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(body)],
                                  metadata=dict(kernelspec=dict(name="python3", display_name="Python 3", language="python")))
    nbformat.write(nb, str(path))


@pytest.fixture
def fake(tmp_path, monkeypatch):
    "A registry of tiny notebooks: `good` writes a table and figures, `bad` raises, `after` needs `bad`, `later` needs `good`."
    nbs = tmp_path / "nbs"; nbs.mkdir()
    notebook(nbs / "good.ipynb", GOOD)
    notebook(nbs / "bad.ipynb", "raise ValueError('this notebook fails on purpose')")
    notebook(nbs / "after.ipynb", GOOD)
    notebook(nbs / "later.ipynb", GOOD)
    reg = {n.name: n for n in [Notebook("good", "a table and two figures"), Notebook("bad", "fails on purpose"),
                               Notebook("after", "needs bad", ("bad",)), Notebook("later", "needs good", ("good",))]}
    monkeypatch.setattr(rp, "NOTEBOOKS", reg)      # what the CLI runs
    monkeypatch.chdir(tmp_path)                    # default runs/<preset>/<time>/ land in tmp_path
    return nbs


def test_help_lists_reproduce():
    r = taxanb("--help")
    assert r.returncode == 0 and "reproduce" in r.stdout
    r = taxanb("reproduce", "--help")
    assert r.returncode == 0 and "--preset" in r.stdout and "--only" in r.stdout and "--list" in r.stdout


def test_bad_preset_is_one_line(tmp_path):
    r = taxanb("reproduce", "--preset", "huge", "--out", str(tmp_path / "run"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert all(p in r.stderr for p in ("huge", "smoke", "cpu", "gpu-synth", "gpu"))
    assert not (tmp_path / "run").exists()                     # nothing made before the inputs are checked


def test_jobs_below_one_is_one_line(tmp_path):
    r = taxanb("reproduce", "--jobs", "0", "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "--jobs 0" in r.stderr and ">= 1" in r.stderr, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr and not (tmp_path / "run").exists()


def test_unknown_only_name_names_the_valid_ones(tmp_path):
    r = taxanb("reproduce", "--only", "taxa_table9", "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "taxa_table9" in r.stderr and all(n in r.stderr for n in NOTEBOOKS)


def test_gpu_without_data_says_where_to_put_it(tmp_path):
    r = taxanb("reproduce", "--preset", "gpu", "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "--data-root" in r.stderr and "TAXANB_SD15" in r.stderr and "gpu-synth" in r.stderr


def test_cpu_cub_needs_the_cub_folder(tmp_path):
    "The real-birds preset reads CUB-200: without --data-root it stops at once naming the flag; with it, models train on CUB with few-shot species."
    r = taxanb("reproduce", "--preset", "cpu-cub", "--out", str(tmp_path / "run"))
    assert r.returncode == 2 and "--data-root" in r.stderr and "cub200" in r.stderr and "Traceback" not in r.stderr, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
    got = rp.check_inputs("cpu-cub", data_root=tmp_path)
    assert got["dataset"] == "cub200" and got["data_root"] == str(tmp_path.resolve()) and got["seeds"] == [0]
    from taxanb.experiments import run_settings
    s = run_settings("cpu-cub", data_root=str(tmp_path))
    assert s["dataset"] == "cub200" and s["few_shot"] > 0 and s["backbone"] == "tiny"
    assert rp.largo_params("cpu-cub", dict(got, out_dir=str(tmp_path)))["preset"] == "cpu"


def test_list_prints_registry_and_presets():
    r = taxanb("reproduce", "--list")
    assert r.returncode == 0, r.stderr
    assert all(n in r.stdout for n in NOTEBOOKS) and all(p in r.stdout for p in ("smoke", "cpu", "gpu-synth", "gpu"))
    assert "Table 4" in r.stdout and "image_size=32" in r.stdout  # titles and the presets' LARGO sizes


def test_a_failing_notebook_is_reported_and_the_rest_run(fake, capsys):
    rc = cli.main(["reproduce", "--preset", "smoke", "--nbs-dir", str(fake), "--seeds", "3"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "good ... ok" in out and "bad ... FAILED" in out and "after ... skipped (needs bad FAILED)" in out
    (run,) = (fake.parent / "runs" / "smoke").iterdir()
    rep = json.loads((run / "report.json").read_text())
    assert [(n["name"], n["status"]) for n in rep["notebooks"]] == [
        ("good", "ok"), ("bad", "FAILED"), ("after", "skipped"), ("later", "ok")]
    assert rep["command"].startswith("taxanb reproduce --preset smoke") and rep["seconds"] > 0
    m = json.loads((run / "good" / "metrics.json").read_text())
    assert m["seeds"] == [3] and m["models_dir"] == str(run / "models")     # the common parameters reached the notebook
    text = (run / "REPORT.md").read_text()
    assert "# taxanb reproduce: preset `smoke`" in text and "not evidence" in text and "total wall time" in text
    assert "| answer | 42 |" in text and "![curve](good/curve.png)" in text and "![extra](good/extra.png)" in text
    assert "| bad | fails on purpose | FAILED |" in text and "ValueError: this notebook fails on purpose" in text
    assert "Skipped: needs bad FAILED" in text
    assert (run / "good" / "good.ipynb").exists() and (run / "bad" / "bad.ipynb").exists()   # executed notebooks kept


def test_only_runs_a_subset_with_its_needs_and_runs_never_overwrite(fake):
    runs = [reproduce("smoke", only=["later"], nbs_dir=fake, progress=False) for _ in range(2)]
    assert runs[0] != runs[1] and all(r.parent == fake.parent.resolve() / "runs" / "smoke" for r in runs)
    for run in runs:
        rep = json.loads((run / "report.json").read_text())
        assert [(n["name"], n["status"]) for n in rep["notebooks"]] == [("good", "ok"), ("later", "ok")]
        assert rep["left_out"] == ["bad", "after"]
    with pytest.raises(ValueError, match="never overwrite"):
        reproduce("smoke", out=runs[0], nbs_dir=fake, progress=False)


def test_missing_notebook_is_a_failure_not_a_crash(fake, tmp_path):
    reg = dict(rp.NOTEBOOKS, ghost=Notebook("ghost", "not written yet"))
    run = reproduce("smoke", out=tmp_path / "run", only=["ghost"], registry=reg, nbs_dir=fake, progress=False)
    rep = json.loads((run / "report.json").read_text())
    assert rep["notebooks"][0]["status"] == "FAILED" and "notebook not found" in rep["notebooks"][0]["error"]
    assert "notebook not found" in (run / "REPORT.md").read_text()


MISSING = [n for n in NOTEBOOKS if not (ROOT / "nbs" / f"{n}.ipynb").is_file()]


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(bool(MISSING), reason=f"registry notebooks not written yet: {', '.join(MISSING)}")
def test_smoke_preset_end_to_end(tmp_path):
    "The real smoke preset over every registry notebook: exit 0, every notebook ok, every table in REPORT.md. Its models are the smoke "
    "models of the test cache (`--models-dir`: those the notebooks trained are reused, the rest trained here); training every model "
    "through `taxanb reproduce` into the run's own models/ is checked by tests/test_reproduce_real.py."
    from taxanb.experiments import models_folder
    shared = models_folder("smoke")               # <test cache>/models/smoke, filled by nbdev_test's notebooks
    r = taxanb("reproduce", "--preset", "smoke", "--out", str(tmp_path / "run"), "--no-progress", "--jobs", "2", "--models-dir", str(shared),
               timeout=3500, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert json.loads((tmp_path / "run" / "taxa_models" / "metrics.json").read_text())["jobs"] == 2   # models trained two at a time
    assert [n["name"] for n in rep["notebooks"]] == list(NOTEBOOKS)
    assert all(n["status"] == "ok" for n in rep["notebooks"]), [(n["name"], n["status"]) for n in rep["notebooks"]]
    text = (tmp_path / "run" / "REPORT.md").read_text()
    assert all(f"## {n}:" in text for n in NOTEBOOKS) and "Traceback" not in text
    assert f"reused from, `{shared.resolve()}`" in text and not (tmp_path / "run" / "models").exists()
