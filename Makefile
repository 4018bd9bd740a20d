# taxanb: `make demo` runs the main job on the embedded default (`taxanb reproduce --preset cpu`: every
# table and figure of the papers on the synthetic world, ~30 min on 2 cores), `make test` runs every test.
# Both depend on `make install`, which creates or reuses .venv and installs taxanb (editable)
# with the exact versions pinned in constraints.txt. All targets are safe to run twice.
# Tests always run offline (HF_HUB_OFFLINE=1: no hub retries); other targets use your environment.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.taxanb-installed
PRESET ?= cpu
# models taxa_models trains at once, one process each: 2 suits the 2-core CPU demo; JOBS=1 on one GPU
JOBS   ?= 2
export PYTHONUNBUFFERED = 1

.PHONY: install demo world test nbtest pytest export check-sync lab

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip check
	@touch $(STAMP)

demo: install
	$(BIN)/taxanb reproduce --preset $(PRESET) --jobs $(JOBS)

world: install
	$(BIN)/taxanb demo

test: install
	$(BIN)/python tests/run_all.py

nbtest: install
	$(BIN)/python tests/run_all.py --only nbs

pytest: install
	$(BIN)/python tests/run_all.py --only pytest

export: install
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

check-sync: install
	$(BIN)/python tests/run_all.py --only sync

lab: install
	$(BIN)/jupyter lab nbs
