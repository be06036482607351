#!/usr/bin/env bash
# medrepro main entry point.
#
#   ./run_all.sh [--profile smoke|demo|paper] [--data phantom|kaggle|PATH] [--only NN ...]
#                [--seed N] [--seeds N ...] [--studies X ...] [--cache-dir DIR] [--state-dir DIR]
#                [--resume-from DIR] [--fast-dev-run] [--yes] [--no-venv]
#       Prints the plan (data, disk, projected time), then runs the notebooks in number order
#       with papermill; executed notebooks (.ipynb, .html), figures and tables go to
#       reports/<profile>/. A run that does not fit the disks, or --profile paper without a GPU
#       and without --yes (or MEDREPRO_YES=1), stops before writing anything. --state-dir keeps
#       the training runs and reports elsewhere (a mounted Google Drive); --resume-from names an
#       earlier session's output to continue from (on Kaggle attached outputs are found anyway).
#   ./run_all.sh --plan [--profile P] [--data D] [--only NN ...] [--cache-dir DIR]
#       Prints the plan only.
#   ./run_all.sh --profile paper --fast-dev-run [--data D]
#       The paper profile's code at its sizes on a few hundred items per dataset, every fit
#       2 epochs of 2 steps, one training killed mid-epoch and resumed: finds the bugs in
#       minutes, before the GPU hours. Reports go to reports/fast-dev-run/, stamped as a dev run.
#   ./run_all.sh --tests [pytest args...]
#       Runs the test suite: the library's unit tests and every notebook under nbval in the
#       smoke profile.
#   ./run_all.sh --bench [--only NAME ...] [--quick]
#       Runs every benchmark; writes reports/benchmarks.json and reports/benchmarks.md.
#
# On a fresh clone with only Python and pip it creates .venv and installs the package into it,
# unless already inside a virtualenv/conda env, on Kaggle or Colab, or given --no-venv.
set -euo pipefail
cd "$(dirname "$0")"

usage() { sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

mode=run
use_venv=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --tests) mode=tests ;;
    --bench) mode=bench ;;
    --no-venv) use_venv=0 ;;
    *) args+=("$1") ;;
  esac
  shift
done

PY=${PYTHON:-python3}
if ! command -v "$PY" >/dev/null 2>&1; then PY=python; fi

in_managed_env() {
  [ -n "${VIRTUAL_ENV:-}" ] || [ -n "${CONDA_PREFIX:-}" ] || [ -n "${KAGGLE_KERNEL_RUN_TYPE:-}" ] \
    || [ -d /kaggle/input ] || [ -n "${COLAB_RELEASE_TAG:-}" ] || [ -n "${COLAB_GPU:-}" ] || [ -d /content ]
}

if [ "$use_venv" = 1 ] && ! in_managed_env; then
  if [ ! -x .venv/bin/python ]; then
    echo "medrepro: creating .venv"
    "$PY" -m venv .venv
  fi
  PY=.venv/bin/python
fi

extras=""
[ "$mode" = tests ] && extras="[dev,dicom-codecs]"
# Does this interpreter import medrepro from this checkout (and, for tests, pytest and nbval)?
import_check="import os, sys, medrepro; sys.exit(not os.path.realpath(medrepro.__file__).startswith(os.path.realpath('lib') + os.sep))"
[ "$mode" = tests ] && import_check="import pytest, nbval; $import_check"
if [ "$PY" = .venv/bin/python ]; then
  # Reinstall when pyproject.toml changed since the last install into .venv.
  stamp=".venv/.venv-installed${extras:+-tests}"
  needs_install() { [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; }
else
  # Kaggle, Colab, conda, --no-venv: install unless this Python already imports this checkout
  # (a re-run in the same kernel session), or pyproject.toml changed since the last install.
  stamp=".medrepro-installed${extras:+-tests}"
  needs_install() { { [ -f "$stamp" ] && [ pyproject.toml -nt "$stamp" ]; } \
    || ! "$PY" -c "$import_check" >/dev/null 2>&1; }
fi
if needs_install; then
  echo "medrepro: installing the package${extras:+ with $extras} (first run takes a few minutes)"
  # Our own .venv may get a newer pip; an image's pip and packages are left as they are
  # (lib/medrepro/run/install.py pins them on Kaggle and Colab and adds only what is missing).
  [ "$PY" = .venv/bin/python ] && "$PY" -m pip install --quiet --upgrade pip
  "$PY" lib/medrepro/run/install.py ${extras:+--extras "${extras:1:${#extras}-2}"} .
  touch "$stamp"
fi

export MPLBACKEND=${MPLBACKEND:-Agg}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

if [ "$mode" = tests ]; then
  exec "$PY" -m pytest "${args[@]+"${args[@]}"}"
elif [ "$mode" = bench ]; then
  exec "$PY" benchmarks/run_benchmarks.py "${args[@]+"${args[@]}"}"
else
  exec "$PY" -m medrepro.run.runner "${args[@]+"${args[@]}"}"
fi
