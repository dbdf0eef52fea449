# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the package with its dev extras the first time.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/escpredict demo

test: $(STAMP)
	@# the report test opens its HTML in headless Chromium (Debian package)
	command -v chromium >/dev/null || ! command -v apt-get >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@# two workers (CI's two cores), one test file each at a time: files share their fixtures
	@# and servers; the 15 slowest tests are listed so creep shows
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

clean:
	rm -rf $(VENV) models/mlflow.db models/artifacts data reports
