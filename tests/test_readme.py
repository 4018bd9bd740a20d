"""The README's promises: its Python example runs as written, and it names exactly two set-up commands."""
import os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has a Python example"
    script = tmp_path / "example.py"
    script.write_text("\n".join(blocks))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "MPLBACKEND": "Agg"})   # TAXANB_CACHE: the session cache (conftest)
    assert r.returncode == 0, r.stderr[-3000:]


def test_readme_has_the_two_setup_commands():
    first = re.search(r"```bash\n(.*?)```", README, flags=re.S).group(1)
    cmds = [l.split("#")[0].strip() for l in first.splitlines() if l.split("#")[0].strip()]
    assert cmds == ["make demo", "make test"]
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: install$", make, re.M) and re.search(r"^test: install$", make, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
