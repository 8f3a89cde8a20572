# Two commands do everything from a fresh clone:
#   make demo   install into .venv, analyse pyoxynet's 139 bundled real tests
#   make test   install into .venv, run the whole test suite, every notebook under nbval and
#               the Binder check (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/cpet-nb: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[plot,test,jupyter,browser]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null  # papermill, nbval
	touch $@

demo: $(BIN)/cpet-nb
	$(BIN)/cpet-nb demo --out demo-output
	@echo "Open demo-output/report.html in a browser; the table is demo-output/results.csv"

lint: $(BIN)/cpet-nb
	$(BIN)/ruff check cpet_nb tests tools benchmarks

test: lint
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest -p no:cacheprovider -o addopts= --nbval-lax \
	    --nbval-sanitize-with notebooks/nbval-sanitize.cfg notebooks/
	bash binder/check.sh

bench: $(BIN)/cpet-nb
	$(BIN)/python benchmarks/bench_single.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
