"""Reproduction notebooks: bad input gives a clear error, trained models are reused across notebooks."""
import json, os, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def papermill(nb, out, *params, timeout=900):
    args = [str(BIN / "papermill"), str(ROOT / "nbs" / nb), str(out), "--cwd", str(ROOT)]
    for k, v in params: args += ["-p", k, str(v)]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env={**os.environ, "MPLBACKEND": "Agg"})


def test_gpu_preset_without_data_names_the_fix():
    from taxanb.experiments import run_settings
    from taxanb.core import RunError
    with pytest.raises(RunError, match="data_root"): run_settings("gpu")
    with pytest.raises(RunError, match="smoke, cpu, cpu-full, cpu-cub, gpu-synth, gpu"): run_settings("fast")


def test_seeds_are_checked():
    from taxanb.experiments import preset_seeds
    from taxanb.core import RunError
    assert preset_seeds("cpu", "0,2") == [0, 2] and preset_seeds("smoke", 3) == [3]
    assert preset_seeds("cpu", "[0, 1]") == [0, 1]      # what `papermill -p seeds '[0, 1]'` passes (its own error message suggested it)
    with pytest.raises(RunError, match="integers"): preset_seeds("smoke", "zero")


def test_unknown_species_is_a_clear_error(tmp_path):
    r = papermill("taxa_table3.ipynb", tmp_path / "o.ipynb", ("species", "['Nosuchus fictus']"), ("models_dir", tmp_path / "m"))
    assert r.returncode != 0
    assert "Nosuchus fictus" in (r.stdout + r.stderr)


def test_models_are_trained_once_and_reused_across_notebooks(tmp_path):
    m = tmp_path / "models"
    r = papermill("taxa_table3.ipynb", tmp_path / "a.ipynb", ("models_dir", m), ("out_dir", tmp_path / "a"))
    assert r.returncode == 0, r.stderr[-3000:]
    folder = next(m.glob("progressive-seed0-*"))
    stamp = (folder / "stage-06-species" / "stage.json").stat().st_mtime
    r = papermill("taxa_guidance.ipynb", tmp_path / "b.ipynb", ("models_dir", m), ("out_dir", tmp_path / "b"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert (folder / "stage-06-species" / "stage.json").stat().st_mtime == stamp      # reused, not retrained
    assert [p.name for p in m.iterdir()] == [folder.name]
    for d in ("a", "b"):
        assert (tmp_path / d / "table.md").exists() and json.loads((tmp_path / d / "metrics.json").read_text())["evidence"] is False
    # a run folder is never overwritten
    r = papermill("taxa_table3.ipynb", tmp_path / "c.ipynb", ("models_dir", m), ("out_dir", tmp_path / "a"))
    assert r.returncode != 0 and "never overwrite" in (r.stdout + r.stderr)


def test_strategies_with_unequal_seed_counts(tmp_path):
    "Regression (cpu run 20261123-224234): random trains on the first seed only, progressive/all on both; the table must still build."
    # the smoke models' shared folder (the test cache's models/smoke): seed 0's models, trained by the notebooks before, are reused
    r = papermill("taxa_strategies.ipynb", tmp_path / "s.ipynb", ("seeds", "0,1"), ("out_dir", tmp_path / "s"), timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert set(m["per_seed"]) == {"progressive/seed0", "progressive/seed1", "all/seed0", "all/seed1", "random/seed0"}
    assert "seed 1:" in (tmp_path / "s" / "table.md").read_text()


def test_a_model_of_another_tiny_base_is_refused_not_misloaded(tmp_path):
    "Every seed fine-tunes one shared tiny base; a stage trained on a different base must not be loaded onto this one, nor continued."
    from taxanb.train import load_stage, train_level
    from taxanb.core import RunError
    top = train_level("kingdom", tmp_path / "run", preset="smoke", progress=False, evaluate=False)
    info = json.loads((top / "stage.json").read_text())
    assert "tiny-32px" in Path(info["base"]).name
    other_seed = train_level("kingdom", tmp_path / "run1", preset="smoke", seed=1, progress=False, evaluate=False)
    assert json.loads((other_seed / "stage.json").read_text())["base"] == info["base"]      # one base, every seed
    load_stage(top)                                              # the base it was trained on: loads
    (top / "stage.json").write_text(json.dumps(info | dict(base=str(Path(info["base"]).with_name("tiny-32px-0123456789abcdef")))))
    with pytest.raises(RunError, match="retrain"): load_stage(top)
    with pytest.raises(RunError, match="retrain"): train_level("phylum", tmp_path / "run", preset="smoke", progress=False, evaluate=False)
    assert not (tmp_path / "run" / "stage-01-phylum").exists()


def small_world(root):
    "A small synthetic world (16 species, two few-shot), cached under `root`/cache: the content of the real-format test datasets."
    from taxanb.synth import WorldConfig, build_world
    return build_world(WorldConfig(branching=(1, 1, 2, 1, 1, 2, 2), max_count=8, min_count=4, n_few_shot=2, few_shot_counts=(1, 2)),
                       cache_dir=Path(root) / "cache")


def write_world_as_fishnet(root, n_test=2):
    "A small synthetic world written in FishNet's layout (train.csv, Image_Library/<Family>/<file>.jpg, 32 px JPEGs): real-format data "
    "whose rare species are few-shot, plus `n_test` fresh renders per species in test.csv (the held-out split)."
    import numpy as np, pandas as pd
    from PIL import Image
    w = small_world(root)
    tax, ranks = w.taxonomy, ("class", "order", "family", "genus", "species")
    def rows(images, labels, split):
        out = []
        for i, (x, y) in enumerate(zip(images, labels)):
            names = {r: tax.taxon(int(y[tax.level_index(r)]), level=r).name for r in ranks}
            f = f"{split}_{i:04d}.jpg"; d = Path(root) / "Image_Library" / names["family"]; d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)).save(d / f, quality=95)
            out.append(dict(species=names["species"], image=f, Genus=names["genus"], Family=names["family"], Order=names["order"],
                            Class=names["class"], Folder=names["family"]))
        return out
    pd.DataFrame(rows([w[i]["image"] for i in range(len(w))], w.labels.numpy(), "train")).to_csv(Path(root) / "train.csv")
    xt, yt = w.sample(n_test, seed=99)
    pd.DataFrame(rows(xt, yt.numpy(), "test")).to_csv(Path(root) / "test.csv")
    return Path(root), w


def write_world_as_cub(root, n_test=2):
    "A small synthetic world written in CUB-200-2011's layout (CUB_200_2011/ with its text files, one class per species) and, beside it, "
    "cub200_taxonomy.csv giving each class's lineage from kingdom to species, as ../shared/data/cub200 has."
    import numpy as np, pandas as pd
    from PIL import Image
    w = small_world(root)
    tax, cub = w.taxonomy, Path(root) / "CUB_200_2011"
    species = tax.taxa("species"); folder = {t.id: f"{i + 1:03d}.{t.name.replace(' ', '_')}" for i, t in enumerate(species)}
    xt, yt = w.sample(n_test, seed=99)
    items = [(w[i]["image"], w.labels[i], 1) for i in range(len(w))] + [(x, y, 0) for x, y in zip(xt, yt)]
    lines = {k: [] for k in ("images", "image_class_labels", "train_test_split")}
    for k, (x, y, is_train) in enumerate(items, 1):
        sp = int(y[-1]); f = f"{folder[sp]}/{k:05d}.jpg"; (cub / "images" / folder[sp]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)).save(cub / "images" / f, quality=95)
        lines["images"].append(f"{k} {f}"); lines["image_class_labels"].append(f"{k} {species.index(tax.taxon(sp, level='species')) + 1}")
        lines["train_test_split"].append(f"{k} {is_train}")
    for name, ls in lines.items(): (cub / f"{name}.txt").write_text("\n".join(ls) + "\n")
    (cub / "classes.txt").write_text("".join(f"{i + 1} {folder[t.id]}\n" for i, t in enumerate(species)))
    pd.DataFrame([dict(class_id=i + 1, cub_class=folder[t.id], **{a.rank: a.name for a in tax.lineage(t)}) for i, t in enumerate(species)]) \
      .to_csv(Path(root) / "cub200_taxonomy.csv", index=False)
    return Path(root), w


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_table1_on_cub_with_its_taxonomy_table(tmp_path):
    "Table 1 and the DCT tables on CUB's layout with a class -> lineage table (issue 19's path at the smoke size): seven ranks, a judge per rank, every level reported."
    root, w = write_world_as_cub(tmp_path / "cub")
    from taxanb.data import read_dataset
    recs = read_dataset("cub200", root)
    assert recs.ranks == w.taxonomy.ranks and recs.report["n_taxa"]["species"] == w.taxonomy.n_taxa("species")
    r = papermill("taxa_table1.ipynb", tmp_path / "t1.ipynb", ("dataset", "cub200"), ("data_root", root), ("models_dir", tmp_path / "m"),
                  ("cache_dir", tmp_path / "cache"), ("out_dir", tmp_path / "t1"), timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "t1" / "metrics.json").read_text())
    assert m["judge"].startswith("a judge: the oracle's small CNN") and "held-out accuracy" in m["judge"], m["judge"]
    assert "its test split, kept out of training" in m["reference"], m["reference"]
    table = (tmp_path / "t1" / "table.md").read_text()
    assert "judge trait acc." in table and "FID [judge]" in table, table[:3000]
    for lv in ("order", "family", "genus", "species"):                   # every level has a judged accuracy for every method
        assert all(m["results"][f"{lv}/{k}"]["oracle_accuracy"] for k in ("zero-shot", "lora-prompt", "full-finetune", "progressive")), lv
    r = papermill("dct_tables.ipynb", tmp_path / "dct.ipynb", ("dataset", "cub200"), ("data_root", root), ("models_dir", tmp_path / "m"),
                  ("cache_dir", tmp_path / "cache"), ("out_dir", tmp_path / "dct"), timeout=1800)   # DCT on CUB (its paper's Tables 1-2): the same models
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads((tmp_path / "dct" / "metrics.json").read_text())
    assert d["dct_config"]["init_from"] == "bird" and d["species"] and set(d["table1_paired"]) == {"guide", "judge"}   # S_c starts from 'bird', as the paper on CUB

def test_every_reproduction_preset_has_every_setting():
    "One settings table: each reproduction preset holds the DCT tables' sizes, Table S2's caps and its LARGO settings (the cpu-full run once stopped at taxa_supplement: KeyError 'cpu-full', when these lived in the notebooks)."
    from taxanb.experiments import PRESETS
    from taxanb.ddpm import PRESETS as LARGO
    keys = set(PRESETS["smoke"])
    for name, p in PRESETS.items():
        assert set(p) == keys, f"{name}: {sorted(keys ^ set(p))}"
        assert set(p["dct"]) == set(PRESETS["gpu"]["dct"]) and len(p["s2"]) == 2 and p["largo"]["preset"] in LARGO, name


@pytest.mark.parametrize("nb", sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb")))
def test_parameters_cells_parse(nb):
    "Every line of a `parameters` cell is one papermill can read (`papermill --help-notebook` lists it; an '=' in a comment made it warn 'Unable to parse line')."
    from papermill.translators import PythonTranslator
    for cell in json.loads((ROOT / "nbs" / nb).read_text())["cells"]:
        if "parameters" not in cell.get("metadata", {}).get("tags", []): continue
        for line in "".join(cell["source"]).splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                assert PythonTranslator.inspect({"source": line}), f"{nb}: papermill cannot parse {line!r} (no '=' in a parameter's comment)"


EXPERIMENT_NOTEBOOKS = sorted(p.name for p in (ROOT / "nbs").glob("*.ipynb") if not p.name[:2].isdigit())


@pytest.mark.parametrize("nb", EXPERIMENT_NOTEBOOKS)
def test_experiment_notebooks_hold_no_library_logic(nb):
    "Experiment notebooks stay thin: no classes, and functions only as small display helpers (at most 8 lines); logic lives in the library, where it is tested."
    import ast
    for cell in json.loads((ROOT / "nbs" / nb).read_text())["cells"]:
        if cell["cell_type"] != "code": continue
        src = "".join(cell["source"])
        if src.lstrip().startswith(("%", "!")): continue
        for node in ast.walk(ast.parse(src)):
            assert not isinstance(node, ast.ClassDef), f"{nb}: class {node.name} belongs in a library notebook (nbs/NN_*.ipynb)"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                assert n <= 8, f"{nb}: function {node.name} has {n} lines; move it into a library notebook and import it"


def test_the_pipeline_module_draws_for_every_table():
    "One sampling loop: the pipeline's `denoise` is `guidance.denoise_latents`, which DCT on plain Stable Diffusion uses too; no experiment notebook defines its own."
    import inspect
    import taxanb.guidance as G, taxanb.dct as D
    assert "denoise_latents(" in inspect.getsource(G.TaxaDiffusionPipeline.denoise)
    assert "denoise_latents(" in inspect.getsource(D._images)
    for nb in EXPERIMENT_NOTEBOOKS:
        assert "scheduler.step(" not in (ROOT / "nbs" / nb).read_text(), f"{nb} runs its own sampling loop"
