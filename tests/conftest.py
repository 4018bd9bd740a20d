"""Shared pytest set-up: offline hubs, a private cache per test session, the optional real data."""
import os
from pathlib import Path
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"          # nothing may hang on hub retries
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def taxanb_cache(tmp_path_factory):
    "Every test session gets its own world/oracle cache, so tests never depend on (or fill) ~/.cache: $TAXANB_TEST_CACHE when "
    "`tests/run_all.py` made one for the whole test command (the notebooks filled it first), else an empty folder."
    d = Path(os.environ["TAXANB_TEST_CACHE"]) if os.environ.get("TAXANB_TEST_CACHE") else tmp_path_factory.mktemp("taxanb-cache")
    old = os.environ.get("TAXANB_CACHE")
    os.environ["TAXANB_CACHE"] = str(d)
    yield d
    if old is None: os.environ.pop("TAXANB_CACHE", None)
    else: os.environ["TAXANB_CACHE"] = old


@pytest.fixture(scope="session")
def shared_data():
    "The real data folder (../shared/data or $TAXANB_SHARED_DATA); tests that need it skip without it."
    d = Path(os.environ.get("TAXANB_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not d.is_dir(): pytest.skip(f"real data folder {d} not present")
    return d


# ---------------------------------------------------------------- outcome tally of the bad-input and fault suites (tests/outcomes.py)

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    import outcomes
    if not outcomes.in_suite(item.nodeid): return
    if rep.skipped: outcomes.ENDED.setdefault(item.nodeid, 'skipped')
    elif rep.failed:
        outcomes.ENDED[item.nodeid] = 'wrong result' if call.excinfo.errisinstance(AssertionError) else 'raw traceback'
    elif rep.when == 'call': outcomes.ENDED.setdefault(item.nodeid, 'passed')


def pytest_terminal_summary(terminalreporter):
    import outcomes
    if line := outcomes.summary(): terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory):
    "A cache folder for training runs: the synthetic world and tokenizer of the test command's cache (else ~/.cache/taxanb) linked in when there (not rebuilt), the rest built once per session."
    d = tmp_path_factory.mktemp("train-cache")
    home = Path(os.environ["TAXANB_TEST_CACHE"]) if os.environ.get("TAXANB_TEST_CACHE") else Path.home() / ".cache" / "taxanb"
    for name in ("synth", "clip-tokenizer"):
        if (home / name).is_dir(): (d / name).symlink_to(home / name)
    return d


# ---------------------------------------------------------------- the long test files first, so the two workers end together

# Test files by their time in the test command, longest first (pytest --durations of a fresh-clone run, 2026-12-07, after the
# CLI learnt to check its input before importing torch). pytest-xdist (`--dist loadfile --no-loadscope-reorder`, see
# tests/run_all.py) hands files to the two workers in this order, so the short files fill the end instead of one long file
# running alone; files not listed follow in their usual order. A stale list only costs speed, never a check.
LONGEST_FIRST = ("test_experiments.py", "test_train.py", "test_reproduce.py", "test_reproduce_real.py", "test_cli.py",
                 "test_distributed.py", "test_metrics.py", "test_faults.py", "test_bad_input.py", "test_dct.py", "test_ddpm.py",
                 "test_guidance.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # a stable sort: tests keep their order within a file
