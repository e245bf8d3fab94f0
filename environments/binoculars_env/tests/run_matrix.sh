#!/usr/bin/env bash
# The env's verifiers test matrix, one venv per stack (called by .ci/run; runnable alone from the repo root):
#   .venvs/vf-0.3.0  classic stack (what prime-rl v0.8.0 runs)       pip install -e    (editable, pip)
#   .venvs/vf-0.3.1  classic + v1 + the stack-independent tests       uv pip install    (wheel, uv)
#   .venvs/vf-0.4.0  v1 only (no classic stack)                        uv pip install -e (editable, uv)
# Each venv gets the CPU torch wheel first (from /opt/wheels when present), so no CUDA torch is pulled.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export BINOCULARS_ENV_TINY_MODELS="$PWD/.venvs/tiny_models"   # built once, shared by the three runs
ENV_DIR=environments/binoculars_env
TESTS=$ENV_DIR/tests
TORCH=(torch==2.13.0)
[ -d /opt/wheels ] && TORCH=(--find-links /opt/wheels torch==2.13.0)

make_venv() {  # make_venv <name> <installer: pip|uv> <editable: -e|""> <verifiers version>
  local venv=.venvs/$1
  uv venv --quiet --seed --allow-existing --python 3.11 "$venv"
  VIRTUAL_ENV=$venv uv pip install --quiet "${TORCH[@]}"
  if [ "$2" = pip ]; then
    "$venv/bin/pip" install --quiet $3 "$ENV_DIR[test]" "verifiers==$4"
  else
    # --reinstall-package: uv would otherwise keep a wheel built from an older checkout
    VIRTUAL_ENV=$venv uv pip install --quiet --reinstall-package binoculars-env $3 "$ENV_DIR[test]" "verifiers==$4"
  fi
}

make_venv vf-0.3.0 pip -e 0.3.0
make_venv vf-0.3.1 uv "" 0.3.1
make_venv vf-0.4.0 uv -e 0.4.0

# bin/pytest (not `python -m pytest`) so the repo root is not on sys.path: imports come from the install.
.venvs/vf-0.3.1/bin/pytest -q -p no:cacheprovider $TESTS/test_packaging.py $TESTS/test_data.py \
  $TESTS/test_reward.py $TESTS/test_batching.py $TESTS/test_classic.py $TESTS/test_v1.py
.venvs/vf-0.3.0/bin/pytest -q -p no:cacheprovider $TESTS/test_packaging.py $TESTS/test_classic.py
.venvs/vf-0.4.0/bin/pytest -q -p no:cacheprovider $TESTS/test_packaging.py $TESTS/test_v1.py \
  $TESTS/test_no_classic.py
