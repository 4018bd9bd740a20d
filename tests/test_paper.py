"""taxanb.paper: published numbers read back from the primary texts in shared/papers (skipped without them), and the look-up API."""
import copy, os, re
from pathlib import Path
import pytest
from taxanb.core import RunError
from taxanb.paper import PAPERS, PUBLISHED, LOST, DASH, published, cite, beside, verify, table_levels

ROOT = Path(__file__).resolve().parents[1]
PAPERS_DIR = Path(os.environ.get("TAXANB_SHARED_PAPERS", ROOT.parent / "shared" / "papers"))


@pytest.fixture(scope="module")
def papers_dir():
    "The primary texts; every test that reads them skips, saying where it looked, when they are absent."
    if not (PAPERS_DIR / "taxadiffusion-paper.txt").is_file():
        pytest.skip(f"primary texts not found in {PAPERS_DIR} (set TAXANB_SHARED_PAPERS to the folder holding "
                    "taxadiffusion-paper.txt, dct-paper.txt and largo-report.md)")
    return PAPERS_DIR


def _line(folder, key, n):
    return (folder / PUBLISHED[key]["file"]).read_text(encoding="utf-8").split("\n")[n - 1]


# (table, row key, level, column, the value's token exactly as printed on the cited line)
SAMPLES = [
    ("taxadiffusion/table1", "SD (Zero-shot)", "Order", "FID", "74.98"),
    ("taxadiffusion/table1", "SD + LoRA", "Genus", "BioCLIP", "12.20"),
    ("taxadiffusion/table1", "SD + Full", "Species", "LPIPS", "0.7574"),
    ("taxadiffusion/table1", "TaxaDiffusion", "Family", "LPIPS", "0.7324"),
    ("taxadiffusion/table2", "SD (Zero-shot)", "Species", "BioCLIP", "6.1"),
    ("taxadiffusion/table2", "TaxaDiffusion", "Genus", "FID", "48.94"),
    ("taxadiffusion/table3", "FineDiffusion (DiT-XL/2)", None, "LPIPS", "0.7613"),
    ("taxadiffusion/table3", "TaxaDiffusion (U-Net)", None, "FID", "43.71"),
    ("taxadiffusion/table4", "Random", None, "FID", "29.53"),
    ("taxadiffusion/table5", "TaxaGuide", None, "BioCLIP", "11.53"),
    ("taxadiffusion/tableS1", "Model Size", None, "TaxaDiffusion", "915.45"),
    ("taxadiffusion/tableS1", "Trainable Parameters", None, "SD + LoRA", "0.80"),
    ("taxadiffusion/tableS1", "Batch Size", None, "SD + Full", "192"),
    ("taxadiffusion/tableS2", "Dipneusti", None, "FID", "159.77"),
    ("taxadiffusion/tableS2", "Myxini", None, "generated", "1050"),
    ("dct/table1", "iNat179 / iNat / CUB", None, "Top-5", "63.5"),
    ("dct/sd21", "ImageNet / ImageNet / ImageNet (SD v2.1)", None, "Top-1", "57.1"),
    ("dct/sd21", "CUB / CUB / - (SD v2.1)", None, "Top-1", "44.0"),
    ("dct/table2", "iNat179, 15 real", None, "Baseline T-1", "28.7"),
    ("dct/table2", "CUB, 9 real", None, "Ours T-1", "76.3"),
    ("dct/table3", "Ours (SD v2.1)", None, "KID", "0.00775"),
    ("dct/table4", "batch 5", None, "CUB", "54.2"),
    ("dct/table4", "Baseline", None, "iNat", "4.8"),
    ("dct/table5", "iNat / SD + Guidance", None, "CUB / iNat", "207.3"),
    ("largo/table1", "Total Images", None, "Value", "8,189"),
    ("largo/table2", "Down 4", None, "Channels", "512"),
    ("largo/table3", "EMA", None, "Value", "0.9999"),
    ("largo/table3", "Schedule", None, "beta_end", "0.02"),
    ("largo/table4", "LARGO", None, "FID", "162.0"),
    ("largo/table4", "LARGO", None, "KID spread", "0.006"),
    ("largo/table4", "Stable Diffusion (Base)", None, "KID", "0.082"),
]


def test_samples_cover_every_table():
    assert {s[0] for s in SAMPLES} == set(PUBLISHED)


@pytest.mark.parametrize("key,row,level,column,token", SAMPLES, ids=[f"{s[0]}:{s[1]}:{s[2] or ''}:{s[3]}" for s in SAMPLES])
def test_sample_cell_is_printed_on_its_cited_line(papers_dir, key, row, level, column, token):
    rows = published(key, row=row, **({"level": level} if level else {}))
    assert len(rows) == 1, rows
    r = rows[0]
    assert r[column] == float(token.replace(",", "")), f"recorded {r[column]!r}, printed {token!r}"
    n = r.get("at", {}).get(column, r["line"])
    line = _line(papers_dir, key, n)
    assert re.search(rf"(?<![\d.,]){re.escape(token)}(?![\d])", line), f"{token!r} is not on {PUBLISHED[key]['file']} line {n}: {line!r}"
    assert cite(key, row, column, level).endswith(f"({PUBLISHED[key]['file']} line {n})")


@pytest.mark.parametrize("key", sorted(PUBLISHED))
def test_every_recorded_cell_matches_its_source(papers_dir, key):
    assert verify(key, papers_dir) == []


def test_lost_cells_are_blank_and_dashes_are_printed(papers_dir):
    r = published("taxadiffusion/tableS1", row="Learning Rate")[0]
    assert [r[c] for c in ("SD", "SD + LoRA", "SD + Full", "TaxaDiffusion")] == [DASH, LOST, LOST, LOST]
    cells = [c.strip() for c in _line(papers_dir, "taxadiffusion/tableS1", r["line"]).split("|")]
    assert cells[:5] == ["Learning Rate", DASH, "", "", ""]


def test_verify_can_fail(papers_dir, monkeypatch):
    "A wrong value, a wrong line, a number claimed for a blank cell or a wrong group label is reported."
    for key, i, change in [("taxadiffusion/table1", 5, dict(FID=52.8)), ("dct/table2", 1, dict(line=129)),
                           ("taxadiffusion/tableS1", 7, dict(TaxaDiffusion=1e-5)), ("dct/sd21", 0, {"Top-1": 54.7}),
                           ("largo/table4", 2, {"KID spread": 0.007}), ("largo/table2", 0, dict(Operations="Conv")),
                           ("dct/table2", 5, dict(under="CUB"))]:
        e = copy.deepcopy(PUBLISHED[key]); e["rows"][i].update(change)
        monkeypatch.setitem(PUBLISHED, key, e)
        assert verify(key, papers_dir), (key, change)
    assert verify("dct/table1", papers_dir / "nowhere")


def test_papers_as_the_primary_texts_give_them():
    assert PAPERS["dct"]["authors"].split(", ") == ["Idan Schwartz", "Vésteinn Snæbjarnarson", "Hila Chefer",
                                                     "Serge Belongie", "Lior Wolf", "Sagie Benaim"]
    assert PAPERS["largo"]["title"] == "LARGO: Flower Image Generation Using a Denoising Diffusion Model"
    assert PAPERS["largo"]["authors"] == "Zaher Yassin, Boulaouane Salaheddine"
    assert "2506.01923" in PAPERS["taxadiffusion"]["url"]
    for e in PUBLISHED.values():
        assert e["via"] is None and e["table_verified"] and e["file"] == PAPERS[e["paper"]]["file"]


def test_levels_select_rows_in_any_case():
    assert table_levels("taxadiffusion/table1") == ["Order", "Family", "Genus", "Species"]
    assert published("taxadiffusion/table1", row="TaxaDiffusion", level="order")[0]["FID"] == 41.92
    ours = [dict(method=m, level=lv) for m in ("SD (Zero-shot)", "TaxaDiffusion") for lv in ("order", "family", "genus", "species")]
    b = beside(ours, "taxadiffusion/table2", dict(method="row", level="level"), ["FID", "BioCLIP"])
    assert [r["paper: FID"] for r in b] == [69.34, 72.85, 72.03, 73.13, 47.85, 49.21, 48.94, 46.39]
    assert beside([dict(method="TaxaDiffusion")], "taxadiffusion/table1", dict(method="row"), ["LPIPS"], level="Genus")[0]["paper: LPIPS"] == 0.7349
    with pytest.raises(RunError, match="pass level="):
        cite("taxadiffusion/table1", "TaxaDiffusion", "FID")
    # the callers' row keys are kept
    assert {r["row"] for r in published("taxadiffusion/table1")} == {"SD (Zero-shot)", "SD + LoRA", "SD + Full", "TaxaDiffusion"}
    assert {r["row"].lower() for r in published("taxadiffusion/table4")} == {"all", "random", "progressive"}
    assert {r["row"] for r in published("taxadiffusion/table5")} == {"Vanilla CFG", "TaxaGuide"}
