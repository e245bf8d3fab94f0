#!/usr/bin/env bash
# Opt-in check (not part of the default test run): every configs/**/rl.toml through the prime-rl version its header
# names. For each layout, prime-rl's own dry run derives the per-process configs (scripts/derive_configs.sh) and
# each derived file is loaded again with the config class of the process that reads it (InferenceConfig,
# OrchestratorConfig, TrainerConfig, EnvServerConfig), as `uv run inference @ …` etc. would. configs/binoculars'
# committed per-process files must equal a fresh derivation. No GPU is needed; about 15-30 s per layout on 2 cores.
#
#   PRIME_RL_V080_DIR=~/prime-rl-v0.8.0 PRIME_RL_MAIN_DIR=~/prime-rl-559b447 scripts/validate_configs_with_prime_rl.sh
#
# Each checkout needs its venv with binoculars-env installed (main resolves the taskset's config class from it).
# A CPU-only venv is enough (no torch, no vLLM): prime-rl's config package and its launcher modules, e.g.
#   cd ~/prime-rl-v0.8.0 && uv venv -p 3.12 && uv pip install -e packages/prime-rl-configs -e deps/verifiers \
#       loguru psutil setproctitle nvidia-ml-py tomli-w && uv pip install --no-deps -e . \
#       -e /path/to/binoculars-rl/binoculars -e /path/to/binoculars-rl/environments/binoculars_env
# and then run this script with UV_NO_SYNC=1 (so `uv run` does not install prime-rl's full GPU dependency set).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

die() {
  echo "error: $*" >&2
  exit 1
}

[[ $# -eq 0 ]] || { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; [[ $1 == -h || $1 == --help ]] && exit 0; die "no arguments expected"; }
for var in PRIME_RL_V080_DIR PRIME_RL_MAIN_DIR; do
  [[ -n "${!var:-}" ]] || die "set $var to a prime-rl checkout (see --help)"
  grep -qs '^name = "prime-rl"$' "${!var}/pyproject.toml" || die "$var is not a prime-rl checkout: ${!var}"
done
PRIME_RL_V080_DIR="$(cd "$PRIME_RL_V080_DIR" && pwd)"
PRIME_RL_MAIN_DIR="$(cd "$PRIME_RL_MAIN_DIR" && pwd)"

CHECK="$(mktemp -d)"
trap 'rm -rf "$CHECK"' EXIT
cat >"$CHECK/load.py" <<'PY'
import sys
from pathlib import Path

from prime_rl.configs.env_server import EnvServerConfig
from prime_rl.configs.inference import InferenceConfig
from prime_rl.configs.orchestrator import OrchestratorConfig
from prime_rl.configs.trainer import TrainerConfig
from prime_rl.utils.config import cli

classes = {"infer": InferenceConfig, "orch": OrchestratorConfig, "train": TrainerConfig,
           "env-train": EnvServerConfig, "env-eval": EnvServerConfig}
for path in sorted(Path(sys.argv[1]).iterdir()):
    cli(classes[path.stem], args=["@", str(path)])
PY

failed=0
while read -r rl_toml; do
  layout="$(realpath --relative-to="$REPO/configs" "$(dirname "$rl_toml")")"
  case "$(head -n 3 "$rl_toml")" in
    *"prime-rl v0.8.0"*) prime_rl="$PRIME_RL_V080_DIR" ;;
    *"prime-rl main"*) prime_rl="$PRIME_RL_MAIN_DIR" ;;
    *) die "$layout/rl.toml names neither prime-rl v0.8.0 nor prime-rl main in its header" ;;
  esac
  start=$SECONDS
  out="$CHECK/$layout"
  if ! "$REPO/scripts/derive_configs.sh" --prime-rl "$prime_rl" "$(dirname "$rl_toml")" "$out" >/dev/null; then
    echo "FAIL  $layout: prime-rl's dry run"; failed=1; continue
  fi
  if ! (cd "$CHECK" && uv run --project "$prime_rl" python load.py "$out") >"$CHECK/load.log" 2>&1; then
    tail -n 20 "$CHECK/load.log"; echo "FAIL  $layout: a derived file does not load"; failed=1; continue
  fi
  if [[ $layout == binoculars ]]; then
    for name in infer orch train env-train env-eval; do
      if ! diff -q <(sed '1,/^$/d' "$REPO/configs/binoculars/$name.toml") "$out/$name.toml" >/dev/null; then
        echo "FAIL  binoculars/$name.toml differs from prime-rl's output (scripts/derive_configs.sh --in-place)"
        failed=1
      fi
    done
  fi
  echo "ok    $layout ($((SECONDS - start)) s, $(basename "$prime_rl"))"
done < <(find "$REPO/configs" -name rl.toml | sort)
[[ $failed -eq 0 ]] || die "some layouts failed (above)"
