#!/usr/bin/env bash
# Opt-in check (not part of the default test run or .ci/run): prime-rl's own code, at the commit the configs pin,
# runs this env. With a prime-rl checkout (default: a clone of the pinned commit) it
#   1. installs prime-rl's venv (CPU: the parts the env server, Env client and eval path import; --gpu: prime-rl's
#      README install, `uv sync --all-extras`) and this env into it as docs/primerl.md does (`--no-deps -e`, then
#      its other requirements),
#   2. derives the per-process configs from the layout's rl.toml with prime-rl's own dry run, its env blocks pointed
#      at a tiny scorer pair on CPU and the shipped sample stories as one `data_files` file,
#   3. starts a scripted OpenAI-compatible policy server on 127.0.0.1 that records every request,
#   4. runs (a) prime-rl's env server for the train source with its Env client for a few rollouts and (b) the eval
#      path: on main `evals` itself (it starts its own env server), on v0.8.0 the env server for the eval source
#      driven by the orchestrator's EvalEnvs + EvalSource,
#   5. checks every reward against binoculars_env.reward.score_completions on the same completions, that eval
#      requests carry chat_template_kwargs.enable_thinking = false at their top level, and that every process it
#      started has stopped; prints a short table and exits non-zero on any mismatch.
# About 2-4 minutes per version on 2 CPU cores once the venv exists.
#
#   scripts/check_primerl.sh --version v0.8.0                          # clones v0.8.0 into ~/.cache/binoculars-rl
#   scripts/check_primerl.sh --prime-rl ~/prime-rl-559b447 --version main
#
# Environment: PRIME_RL_REPO / VERIFIERS_REPO (clone URLs; default GitHub https), PRIME_RL_PYTHON (the Python 3.12
# interpreter for prime-rl's venv, default `3.12`), BINOCULARS_TINY_MODELS (reuse a built tiny pair).
# With --gpu and a visible GPU it also runs `rl` (vLLM inference, orchestrator, trainer) for 2 steps of the layout.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
usage: scripts/check_primerl.sh [--prime-rl DIR] [--version v0.8.0|main] [--gpu] [--keep]

  --prime-rl DIR   prime-rl checkout to use (default: clone the pinned commit into
                   ${XDG_CACHE_HOME:-~/.cache}/binoculars-rl/prime-rl-VERSION)
  --version V      v0.8.0 (tag v0.8.0, configs/binoculars) or main (commit 559b447, configs/binoculars-v1);
                   default v0.8.0
  --gpu            also run prime-rl's `rl` launcher (vLLM, orchestrator, trainer) for 2 steps; needs GPUs
  --keep           keep the work directory (configs, logs, recorded requests) and print its path
  -h, --help       show this help
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

VERSION=v0.8.0
PRIME_RL_DIR=""
GPU=0
KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --prime-rl) [[ $# -ge 2 ]] || die "--prime-rl needs a directory"; PRIME_RL_DIR="$2"; shift 2 ;;
    --version) [[ $# -ge 2 ]] || die "--version needs v0.8.0 or main"; VERSION="$2"; shift 2 ;;
    --gpu) GPU=1; shift ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument $1" ;;
  esac
done
case "$VERSION" in
  v0.8.0) PIN=v0.8.0; PIN_COMMIT=60bc295; LAYOUT=configs/binoculars; EXT=toml ;;
  main) PIN=559b447; PIN_COMMIT=559b447; LAYOUT=configs/binoculars-v1; EXT=json ;;
  *) die "--version must be v0.8.0 or main, got $VERSION" ;;
esac
command -v uv >/dev/null || die "uv is not on PATH (prime-rl installs and runs through uv)"
REPO_PY="$REPO/.venv/bin/python"
[[ -x $REPO_PY ]] || die "no venv in $REPO: create it first (uv sync), the check scores with it"
export UV_NO_SYNC=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OPENAI_API_KEY="${OPENAI_API_KEY:-check}" VLLM_API_KEY="${VLLM_API_KEY:-check}"

# 1. prime-rl at the pinned commit, its verifiers submodule, its venv, this env installed into it
if [[ -z $PRIME_RL_DIR ]]; then
  PRIME_RL_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/binoculars-rl/prime-rl-$VERSION"
  if [[ ! -d $PRIME_RL_DIR/.git ]]; then
    echo "cloning prime-rl into $PRIME_RL_DIR"
    git clone -q "${PRIME_RL_REPO:-https://github.com/PrimeIntellect-ai/prime-rl.git}" "$PRIME_RL_DIR"
  fi
  git -C "$PRIME_RL_DIR" checkout -q "$PIN"
fi
grep -qs '^name = "prime-rl"$' "$PRIME_RL_DIR/pyproject.toml" || die "not a prime-rl checkout: $PRIME_RL_DIR"
PRIME_RL_DIR="$(cd "$PRIME_RL_DIR" && pwd)"
HEAD="$(git -C "$PRIME_RL_DIR" rev-parse --short=7 HEAD 2>/dev/null || echo unknown)"
[[ $HEAD == "$PIN_COMMIT"* ]] || echo "note: $PRIME_RL_DIR is at $HEAD, the $LAYOUT configs pin $PIN_COMMIT"
if [[ ! -f $PRIME_RL_DIR/deps/verifiers/pyproject.toml ]]; then
  # .gitmodules names an ssh URL; clone the pinned verifiers commit over https (or VERIFIERS_REPO) instead
  git -C "$PRIME_RL_DIR" -c protocol.file.allow=always \
    -c submodule.verifiers.url="${VERIFIERS_REPO:-https://github.com/PrimeIntellect-ai/verifiers.git}" \
    submodule update --init deps/verifiers
fi
VENV="$PRIME_RL_DIR/.venv"
if [[ $GPU -eq 1 ]]; then
  command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || die "--gpu: no GPU visible (nvidia-smi -L)"
  echo "installing prime-rl as its README says (uv sync --all-extras)"
  (cd "$PRIME_RL_DIR" && git -c url."https://github.com/".insteadOf="git@github.com:" submodule update --init \
    && uv sync --all-extras)
elif [[ ! -x $VENV/bin/env-server ]]; then
  # CPU only: what the env server, the Env client and the eval path import (no vLLM, flash-attn or trainer kernels)
  echo "creating a CPU venv for prime-rl in $VENV"
  TRANSFORMERS="$(sed -n 's/^ *"\(transformers==[0-9.]*\)".*/\1/p' "$PRIME_RL_DIR/pyproject.toml" | head -n 1)"
  uv venv -q -p "${PRIME_RL_PYTHON:-3.12}" "$VENV"
  (cd "$PRIME_RL_DIR" && uv pip install -q --python "$VENV/bin/python" torch "$TRANSFORMERS" \
    -e packages/prime-rl-configs -e deps/verifiers loguru psutil setproctitle nvidia-ml-py tomli-w pyzmq msgspec \
    orjson aiolimiter tenacity rich uvloop pybase64 pandas pyarrow datasets prometheus_client modelexpress prime \
    wandb==0.27.0 wandb-workspaces==0.4.3 && uv pip install -q --python "$VENV/bin/python" --no-deps -e .)
fi
uv pip install -q --python "$VENV/bin/python" --no-deps -e "$REPO/binoculars" -e "$REPO/environments/binoculars_env"
# --no-deps keeps prime-rl's own verifiers (v0.8.0's is 0.2.2.dev, below the env's >=0.3.0 for plain installs); the
# env's other requirements (its defenses' libraries) come from its pyproject
mapfile -t ENV_REQUIREMENTS < <("$REPO_PY" -c '
import sys, tomllib
from packaging.requirements import Requirement
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]
print("\n".join(d for d in deps if Requirement(d).name not in ("verifiers", "binoculars-detector")))
' "$REPO/environments/binoculars_env/pyproject.toml")
uv pip install -q --python "$VENV/bin/python" "${ENV_REQUIREMENTS[@]}"
PRIME_PY="$VENV/bin/python"

# Every process started below is recorded here (its own process group) and stopped on exit.
WORK="$(mktemp -d)"
PGIDS=()
STOPPED=0
cleanup() {
  local pgid
  for pgid in "${PGIDS[@]}"; do
    kill -TERM -- "-$pgid" 2>/dev/null || true
  done
  if [[ $KEEP -eq 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
start() {  # NAME COMMAND...: run in its own process group, output to $WORK/logs/NAME.log
  local name="$1"
  shift
  setsid "$@" >"$WORK/logs/$name.log" 2>&1 &
  PGIDS+=("$!")
  eval "PID_${name//-/_}=$!"
}
stop() {  # NAME: SIGTERM its process group, wait up to 60 s for every process of it to exit
  local pid_var="PID_${1//-/_}" waited=0
  local pgid="${!pid_var}"
  kill -TERM -- "-$pgid" 2>/dev/null || true
  while pgrep -g "$pgid" >/dev/null && [[ $waited -lt 60 ]]; do sleep 1; waited=$((waited + 1)); done
  if pgrep -g "$pgid" >/dev/null; then
    pgrep -g "$pgid" -a >&2
    die "$1 (process group $pgid) did not stop within 60 s of SIGTERM"
  fi
  STOPPED=$((STOPPED + 1))
}
wait_for_port() {  # SERVE_ADDRESS (tcp://host:port) NAME: until something listens there
  local port="${1##*:}" waited=0
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    local pid_var="PID_${2//-/_}"
    kill -0 "${!pid_var}" 2>/dev/null || { tail -n 30 "$WORK/logs/$2.log" >&2; die "$2 exited (its log above)"; }
    [[ $waited -lt 300 ]] || die "$2 did not listen on $1 within 300 s (log: $WORK/logs/$2.log)"
    sleep 1
    waited=$((waited + 1))
  done
}
mkdir -p "$WORK/logs" "$WORK/layout"
CHECK="$REPO/scripts/check_primerl.py"

# 2. the layout's rl.toml on the tiny pair and one local data file; prime-rl's dry run derives the process configs
echo "deriving the configs of $LAYOUT with prime-rl $VERSION ($HEAD)"
"$REPO_PY" "$CHECK" config "$REPO/$LAYOUT/rl.toml" "$WORK/layout/rl.toml" \
  --models "${BINOCULARS_TINY_MODELS:-$WORK/models}"
"$REPO/scripts/derive_configs.sh" --prime-rl "$PRIME_RL_DIR" "$WORK/layout" "$WORK/derived" >/dev/null
MODEL="$("$PRIME_PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["model"]["name"])' \
  "$WORK/layout/rl.toml")"
address_of() {  # an env-server config's serve address (TOML on v0.8.0, JSON on main)
  sed -n 's/.*"\{0,1\}address"\{0,1\} *[=:] *"\(tcp:[^"]*\)".*/\1/p' "$1" | head -n 1
}

# 3. the policy
start policy "$REPO_PY" "$CHECK" policy-server --model "$MODEL" --requests "$WORK/requests.jsonl" \
  --url-file "$WORK/policy-url"
for _ in $(seq 60); do [[ -s $WORK/policy-url ]] && break; sleep 1; done
[[ -s $WORK/policy-url ]] || die "the policy server did not start (log: $WORK/logs/policy.log)"
BASE_URL="$(cat "$WORK/policy-url")"

# 4a. the train source's env server and prime-rl's Env client
echo "(a) env server + Env client, train source"
cd "$WORK"
start env-train "$VENV/bin/env-server" @ "$WORK/derived/env-train.$EXT"
wait_for_port "$(address_of "$WORK/derived/env-train.$EXT")" env-train
"$PRIME_PY" "$CHECK" rollouts client --orch "$WORK/derived/orch.$EXT" --base-url "$BASE_URL" --model "$MODEL" \
  --out "$WORK/client.jsonl" >"$WORK/logs/client.log" 2>&1 \
  || { tail -n 30 "$WORK/logs/client.log" >&2; die "the Env client failed (log above)"; }
stop env-train
mv "$WORK/requests.jsonl" "$WORK/requests-client.jsonl"

# 4b. the eval path
if [[ $VERSION == main ]]; then
  echo "(b) evals (it starts the eval source's env server itself)"
  PORT="$("$REPO_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  "$REPO_PY" "$CHECK" evals-config "$WORK/derived/orch.json" "$WORK/evals.json" --base-url "$BASE_URL" \
    --model "$MODEL" --output-dir "$WORK/evals" --port "$PORT"
  PATH="$VENV/bin:$PATH" start evals "$VENV/bin/evals" @ "$WORK/evals.json"
  waited=0
  while kill -0 "$PID_evals" 2>/dev/null && [[ $waited -lt 600 ]]; do sleep 2; waited=$((waited + 2)); done
  grep -q "Evals finished" "$WORK/logs/evals.log" || { tail -n 30 "$WORK/logs/evals.log" >&2; die "evals failed (log above)"; }
  stop evals  # already exited: checks that its env server went with it
  "$REPO_PY" "$CHECK" evals-records "$WORK/evals" "$WORK/eval.jsonl"
  EVAL_LABEL="evals"
else
  echo "(b) eval source's env server + the orchestrator's EvalEnvs/EvalSource"
  start env-eval "$VENV/bin/env-server" @ "$WORK/derived/env-eval.toml"
  wait_for_port "$(address_of "$WORK/derived/env-eval.toml")" env-eval
  "$PRIME_PY" "$CHECK" rollouts eval --orch "$WORK/derived/orch.toml" --base-url "$BASE_URL" --model "$MODEL" \
    --out "$WORK/eval.jsonl" >"$WORK/logs/eval.log" 2>&1 \
    || { tail -n 30 "$WORK/logs/eval.log" >&2; die "the eval run failed (log above)"; }
  stop env-eval
  EVAL_LABEL="eval (EvalEnvs + EvalSource)"
fi
mv "$WORK/requests.jsonl" "$WORK/requests-eval.jsonl"
stop policy
cd "$REPO"

# 5. the table
echo
echo "prime-rl $VERSION ($HEAD) · $LAYOUT · scripted policy · tiny scorer pair on CPU · one data_files file"
"$REPO_PY" "$CHECK" compare "$WORK/layout/rl.toml" --eval-requests "$WORK/requests-eval.jsonl" \
  "env server + Env client=train=$WORK/client.jsonl" "$EVAL_LABEL=eval=$WORK/eval.jsonl"
echo "processes started and stopped: $STOPPED/${#PGIDS[@]}"
[[ $STOPPED -eq ${#PGIDS[@]} ]] || die "not every process stopped"

if [[ $GPU -eq 1 ]]; then
  echo "--gpu: prime-rl's rl launcher, 2 steps of $LAYOUT (tiny scorer on CPU, policy $MODEL from the hub)"
  (cd "$PRIME_RL_DIR" && env -u HF_HUB_OFFLINE -u HF_DATASETS_OFFLINE uv run rl @ "$WORK/layout/rl.toml" \
    --max-steps 2) || die "prime-rl's rl launcher failed"
fi
