#!/usr/bin/env python
"""Run every taxanb test and print one closing line `N passed, N failed` that counts them all.

Three parts, each counted:
1. sync: would `nbdev_export` or `nbdev_clean` change a tracked file? (checked on a temporary copy
   of the tracked files, so the working tree is never rewritten) -- one check;
2. `nbdev_test` over `nbs/` -- one check per notebook (flags `slow gpu` are skipped, as configured
   in settings.ini; pass `--flags slow` to run them);
3. `pytest tests/` -- one check per test, spread over the CPU cores with pytest-xdist (one test file per worker).

Every test process runs torch with one thread (OMP_NUM_THREADS=1): two notebooks or two pytest workers at a time
already fill a 2-core machine, and more threads than cores make the tiny models many times slower.

The notebooks and pytest share one cache folder (the world, its oracle, the tiny bases, the latents), made empty
for this command and removed after it: nothing is read from or written to ~/.cache/taxanb, and what the notebooks
built is not built again by pytest. `--cache DIR` keeps it in DIR instead (reused by the next run). Every temporary
file of the tests (TMPDIR: the smoke runs' model and run folders, pytest's tmp_path) goes to one folder that is
removed at the end, so repeated test runs do not fill /tmp.

Usage: python tests/run_all.py [--flags slow] [--only sync|nbs|pytest] [--cache DIR] [--workers N] [-- extra pytest args]
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(cmd, cwd=ROOT, **kw):
    print(f"$ {' '.join(map(str, cmd))}", flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=cwd, **kw)


def check_sync():
    "(passed, failed, skipped): 1 check, does nbdev_export/nbdev_clean leave every tracked file unchanged?"
    print("== sync: notebooks and taxanb/ in sync, notebooks clean", flush=True)
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        print("not a git checkout: sync check skipped")
        return 0, 0, 1
    files = [f for f in files.decode().split("\0") if f and (ROOT / f).is_file()]
    with tempfile.TemporaryDirectory(prefix="taxanb-sync-") as tmp:
        tmp = Path(tmp)
        for f in files:
            (tmp / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, tmp / f)
        for tool in ("nbdev_export", "nbdev_clean"):
            r = _run([BIN / tool], cwd=tmp, capture_output=True, text=True)
            if r.returncode:
                print(r.stdout + r.stderr)
                print(f"FAILED: {tool} exited {r.returncode}")
                return 0, 1, 0
        changed = [f for f in files if not (tmp / f).exists() or (tmp / f).read_bytes() != (ROOT / f).read_bytes()]
        new = [str(p.relative_to(tmp)) for p in (tmp / "taxanb").glob("*.py") if str(p.relative_to(tmp)) not in files]
    if changed or new:
        print("FAILED: these files change under nbdev_export + nbdev_clean:")
        for f in changed + new: print(f"  {f}")
        print("Fix: run `make export` (nbdev_export && nbdev_clean), review and commit the result.")
        return 0, 1, 0
    print(f"ok: {len(files)} tracked files unchanged")
    return 1, 0, 0


def notebooks():
    "Notebooks that nbdev_test would run (same glob rules as nbdev)."
    from nbdev.doclinks import nbglob
    return sorted(p for p in nbglob(ROOT / "nbs", as_path=True) if p.suffix == ".ipynb")


def run_nbdev_test(flags, workers=2):
    "(passed, failed, skipped) over the notebooks run by `nbdev_test`, `workers` notebooks at a time."
    nbs = notebooks()
    print(f"== nbdev_test: {len(nbs)} notebooks", flush=True)
    if not nbs: return 0, 0, 0
    t = time.time()
    cmd = [BIN / "nbdev_test", "--n_workers", str(workers), "--timing"] + (["--flags", flags] if flags else [])
    r = _run(cmd, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(r.stderr)
    if r.returncode == 0: failed = []
    else:
        m = re.search(r"Failed On The Following Notebooks:\n=+\n((?:\t.*\n?)+)", r.stderr)
        failed = m.group(1).split() if m else [p.name for p in nbs]  # no list: count all as failed
    print(f"nbdev_test: {len(nbs) - len(failed)} of {len(nbs)} notebooks passed in {time.time() - t:.0f}s"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return len(nbs) - len(failed), len(failed), 0


def run_pytest(extra, workers=2):
    "(passed, failed, skipped) over pytest's tests, read from its JUnit XML; `workers` processes (pytest-xdist), one test file each at a time."
    print("== pytest", flush=True)
    spread = ["-n", str(workers), "--dist", "loadfile", "--no-loadscope-reorder"] if workers > 1 else []   # files in conftest.LONGEST_FIRST order
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "junit.xml"
        r = _run([sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "--durations=25", f"--junitxml={xml}", *spread, *extra])   # the 25 slowest: where test time goes
        if not xml.exists():
            print(f"pytest produced no report (exit {r.returncode})")
            return 0, 1, 0
        suites = ET.parse(xml).getroot()
        suites = [suites] if suites.tag == "testsuite" else list(suites)
        n = lambda k: sum(int(s.get(k, 0)) for s in suites)
        failed, skipped = n("failures") + n("errors"), n("skipped")
        return n("tests") - failed - skipped, failed, skipped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flags", default=os.environ.get("TAXANB_TEST_FLAGS", ""), help="nbdev_test flags to run, e.g. 'slow'")
    ap.add_argument("--only", choices=["sync", "nbs", "pytest"], help="run one part only")
    ap.add_argument("--cache", help="the tests' cache folder, kept afterwards (default: an empty temporary folder, removed afterwards)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="notebooks / pytest processes run at once (default: 2, or 1 on a 1-core machine)")
    ap.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # one torch thread per process: `--workers` processes share the cores
    scratch = Path(tempfile.mkdtemp(prefix="taxanb-tests-"))   # every temporary file of the tests, removed afterwards
    (scratch/"tmp").mkdir()
    os.environ["TMPDIR"] = str(scratch/"tmp")   # the notebooks' and tests' temporary run and model folders land here, not in /tmp
    cache = Path(a.cache) if a.cache else scratch/"cache"
    cache.mkdir(parents=True, exist_ok=True)
    os.environ["TAXANB_CACHE"] = os.environ["TAXANB_TEST_CACHE"] = str(cache)   # notebooks and pytest (conftest) share it
    print(f"test cache: {cache}" + ("" if a.cache else " (removed afterwards)") + f"; temporary files under {scratch/'tmp'} (removed afterwards)", flush=True)
    try: totals = run_parts(a, parts_of(a))
    finally:
        try: left = sum(f.lstat().st_size for f in scratch.rglob("*") if not f.is_symlink() and f.is_file())
        except OSError: left = float('nan')
        shutil.rmtree(scratch, ignore_errors=True)
        print(f"removed the tests' temporary files and cache: {left / 2**20:.0f} MB", flush=True)
    p, f, s = totals
    print(f"{p} passed, {f} failed" + (f", {s} skipped" if s else ""))
    sys.exit(1 if f else 0)


def parts_of(a):
    "The parts to run, in order: name -> callable returning (passed, failed, skipped)."
    parts = {"sync": check_sync, "nbs": lambda: run_nbdev_test(a.flags, a.workers), "pytest": lambda: run_pytest(a.pytest_args, a.workers)}
    return {n: f for n, f in parts.items() if not a.only or n == a.only}


def run_parts(a, parts):
    "[passed, failed, skipped] summed over `parts`, each part's time printed."
    t, totals = time.time(), [0, 0, 0]
    for name, part in parts.items():
        t0 = time.time()
        for i, v in enumerate(part()): totals[i] += v
        print(f"== {name}: {time.time() - t0:.0f}s", flush=True)
    print(f"\nall tests finished in {time.time() - t:.0f}s")
    return totals


if __name__ == "__main__":
    main()
