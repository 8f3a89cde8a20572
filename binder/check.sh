#!/usr/bin/env bash
# The Binder check, where no Docker runs: a fresh virtual environment made only from
# binder/'s files (runtime.txt's Python, requirements.txt, postBuild and start when there
# are some, as repo2docker uses them) executes every notebook in notebooks/ headless with
# nbval, and finds the panel in quickstart.ipynb's outputs. It installs every package
# afresh from the index: slow (minutes); CI runs it as a step of its own.
#
#   binder/check.sh            # PYTHON=python3.11 binder/check.sh to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
work="$(mktemp -d "${TMPDIR:-/tmp}/cpet_nb-binder-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

wanted="$(sed -n 's/^python-//p' binder/runtime.txt)"
have="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$have" != "$wanted" ]; then
    echo "binder/check.sh: binder/runtime.txt asks for Python $wanted, $python is $have" >&2
    exit 1
fi

unset PYTHONPATH  # only what binder/ installs may be imported
"$python" -m venv "$work/venv"
export PATH="$work/venv/bin:$PATH" VIRTUAL_ENV="$work/venv"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -r binder/requirements.txt     # from the root, as repo2docker
if [ -x binder/postBuild ]; then binder/postBuild; fi
python -m ipykernel install --sys-prefix >/dev/null           # this environment's kernel
# what the check itself needs, beyond Binder's image: the notebook runner
python -m pip install --quiet "pytest>=8" "nbval>=0.11"
echo "binder/check.sh: environment built in $(( $(date +%s) - started )) s"

run=(python -m pytest -p no:cacheprovider -o addopts= --nbval-lax
     --nbval-sanitize-with notebooks/nbval-sanitize.cfg notebooks/)
if [ -x binder/start ]; then binder/start "${run[@]}"; else "${run[@]}"; fi

if [ -f notebooks/quickstart.ipynb ]; then  # the panel must be in quickstart's outputs
    papermill notebooks/quickstart.ipynb "$work/quickstart.ipynb" -k python3 --cwd notebooks \
        --no-progress-bar
    python - "$work/quickstart.ipynb" <<'PY'
import sys, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
widgets = [o for c in notebook.cells for o in c.get("outputs", [])
           if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
if not widgets:
    sys.exit("binder/check.sh: quickstart.ipynb shows no panel (no widget in its outputs)")
print(f"binder/check.sh: quickstart.ipynb shows the panel ({len(widgets)} widget output(s))")
PY
fi
echo "binder/check.sh: passed in $(( $(date +%s) - started )) s"
