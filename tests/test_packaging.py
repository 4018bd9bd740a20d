"""Packaging promises: declared dependencies, loose ranges (GPU machine: torch 2.11), the lock, nbdev settings."""
import configparser, json, subprocess, sys, tomllib
from pathlib import Path
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEPS = {Requirement(d).name.lower().replace("_", "-"): Requirement(d) for d in PYPROJECT["project"]["dependencies"]}
PINS = {l.split("==")[0].lower().replace("_", "-"): l.split("==")[1].strip()
        for l in (ROOT / "constraints.txt").read_text().splitlines() if "==" in l and not l.startswith("#")}


def test_runtime_dependencies_declared():
    need = "torch torchvision diffusers transformers peft accelerate jupyterlab papermill nbdev matplotlib torchmetrics lpips open-clip-torch".split()
    assert not [n for n in need if n not in DEPS]


def test_ranges_admit_the_gpu_machine_and_exclude_nbdev3():
    assert DEPS["torch"].specifier.contains(Version("2.11.0"))
    assert DEPS["torch"].specifier.contains(Version("2.14.1"))
    assert not DEPS["nbdev"].specifier.contains(Version("3.0.0"))   # nbdev 3 dropped settings.ini and nbdev_test


def test_lock_pins_the_exact_versions_and_satisfies_the_ranges():
    assert (PINS["torch"], PINS["torchvision"], PINS["nbdev"]) == ("2.14.1", "0.29.1", "2.4.14")
    assert Version(PINS["fastcore"]) >= Version("1.12.3") and Version(PINS["fastcore"]) < Version("2")
    bad = [f"{n}=={PINS[n]} vs {r}" for n, r in DEPS.items() if n in PINS and not r.specifier.contains(Version(PINS[n]))]
    assert not bad
    assert not [n for n in DEPS if n not in PINS], "every runtime dependency is pinned in constraints.txt"


def test_nbdev_settings():
    cfg = configparser.ConfigParser(); cfg.read(ROOT / "settings.ini")
    d = cfg["DEFAULT"]
    assert d["lib_name"] == "taxanb" and d["nbs_path"] == "nbs" and d["lib_path"] == "taxanb"
    assert d["tst_flags"].split() == ["slow", "gpu"]
    assert "tags" in d["allowed_cell_metadata_keys"].split()


def test_nbdev_clean_keeps_papermill_parameters_tag(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": 3, "id": "abc", "outputs": [],
                     "metadata": {"tags": ["parameters"], "scrolled": True}, "source": "level = 'genus'"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    f = ROOT / "nbs" / f"_tmp_clean_test_{tmp_path.name}.ipynb"
    f.write_text(json.dumps(nb))
    try:
        r = subprocess.run([str(BIN / "nbdev_clean"), "--fname", str(f)], cwd=ROOT, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        cell = json.loads(f.read_text())["cells"][0]
    finally:
        f.unlink()
    assert cell["metadata"] == {"tags": ["parameters"]}          # tag kept, other cell metadata cleaned
    assert cell["execution_count"] is None
