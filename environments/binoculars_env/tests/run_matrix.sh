#!/usr/bin/env bash
# The env's verifiers test matrix, one venv per stack (called by .ci/run; runnable alone from the repo root).
# The project's own venv (verifiers 0.3.1, editable) runs every env test through `uv run pytest`; these add:
#   .venvs/vf-0.3.0  classic stack (what prime-rl v0.8.0 runs)       pip install -e    (editable, pip)
#   .venvs/vf-0.3.1  the packaging check on non-editable installs     uv pip install    (wheels, uv)
#   .venvs/vf-0.4.0  v1 only (no classic stack)                        uv pip install -e (editable, uv)
# The env depends on the detector distribution (./binoculars) by name, so each venv installs both.
# Each venv gets the CPU torch wheel first (from /opt/wheels when present), so no CUDA torch is pulled.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export BINOCULARS_TINY_MODELS="$PWD/.venvs/tiny_models"   # built once, shared by the three runs
ENV_DIR=environments/binoculars_env
TESTS=$ENV_DIR/tests
TORCH=(torch==2.13.0)
[ -d /opt/wheels ] && TORCH=(--find-links /opt/wheels torch==2.13.0)

make_venv() {  # make_venv <name> <installer: pip|uv> <editable: -e|""> <verifiers version>
  local venv=.venvs/$1
  uv venv --quiet --seed --allow-existing --python 3.11 "$venv"
  VIRTUAL_ENV=$venv uv pip install --quiet "${TORCH[@]}"
  if [ "$2" = pip ]; then
    "$venv/bin/pip" install --quiet $3 ./binoculars $3 "$ENV_DIR[test]" "verifiers==$4"
  else
    # --reinstall-package: uv would otherwise keep a wheel built from an older checkout
    VIRTUAL_ENV=$venv uv pip install --quiet --reinstall-package binoculars-env --reinstall-package binoculars-detector \
      $3 ./binoculars $3 "$ENV_DIR[test]" "verifiers==$4"
  fi
}

make_venv vf-0.3.0 pip -e 0.3.0
make_venv vf-0.3.1 uv "" 0.3.1
make_venv vf-0.4.0 uv -e 0.4.0

# bin/pytest (not `python -m pytest`) so the repo root is not on sys.path: imports come from the install.
.venvs/vf-0.3.1/bin/pytest -q -p no:cacheprovider $TESTS/test_packaging.py
.venvs/vf-0.3.0/bin/pytest -q -p no:cacheprovider $TESTS/test_packaging.py $TESTS/test_classic.py
.venvs/vf-0.4.0/bin/pytest -q -p no:cacheprovider $TESTS/test_packaging.py $TESTS/test_v1.py \
  $TESTS/test_no_classic.py
