#!/usr/bin/env bash
# Launch a Binoculars RL run as separate prime-rl processes in one tmux session, one pane per process:
# inference (vLLM), the train and eval env servers (each holds one Binoculars scorer), orchestrator, trainer.
#
#   scripts/tmux.sh configs/binoculars 0,1                                  # prime-rl v0.8.0, 2 GPUs
#   scripts/tmux.sh --prime-rl ~/prime-rl configs/binoculars-v1-4gpu 4,5,6,7  # prime-rl main, GPUs 4-7
#   scripts/tmux.sh --dry-run configs/binoculars-8gpu 0,1,2,3,4,5,6,7       # print the commands only
#
# The GPU split comes from the config directory, so the same files serve `uv run rl` and this script:
# inference gets the first N ids (N = the data-parallel size in infer.toml), the trainer the next M
# (M = num_train_workers in orch.toml); env servers and the orchestrator see every id, so an env's
# `scorer_device = "cuda:K"` is the K-th id of GPU_IDS, exactly as under `CUDA_VISIBLE_DEVICES=GPU_IDS uv run rl`.
# Each pane also writes its output to <output_dir>/logs/ (output_dir from train.toml, relative to the
# prime-rl checkout), in the layout `uv run rl` uses.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/tmux.sh [--dry-run] [--prime-rl DIR] [--session NAME] CONFIG_DIR GPU_IDS

  CONFIG_DIR        directory with infer.toml, orch.toml, train.toml, env-train.toml, env-eval.toml
                    (configs/binoculars* in this repository)
  GPU_IDS           comma-separated physical GPU ids, as many as the layout uses (e.g. 0,1)
  --prime-rl DIR    prime-rl checkout to run in (default: $PRIME_RL_DIR, else the current directory)
  --session NAME    tmux session name (default: binoculars)
  --dry-run         print each pane's command and exit without starting anything
  -h, --help        show this help
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

DRY_RUN=0
PRIME_RL_DIR="${PRIME_RL_DIR:-$PWD}"
SESSION="binoculars"
POSITIONAL=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --prime-rl) [[ $# -ge 2 ]] || die "--prime-rl needs a directory"; PRIME_RL_DIR="$2"; shift 2 ;;
    --session) [[ $# -ge 2 ]] || die "--session needs a name"; SESSION="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
if [[ ${#POSITIONAL[@]} -ne 2 ]]; then
  usage >&2
  die "expected CONFIG_DIR and GPU_IDS, got ${#POSITIONAL[@]} argument(s)"
fi
CONFIG_DIR="${POSITIONAL[0]}"
GPU_IDS="${POSITIONAL[1]}"

[[ -d "$CONFIG_DIR" ]] || die "config directory not found: $CONFIG_DIR"
CONFIG_DIR="$(cd "$CONFIG_DIR" && pwd)"
for name in infer orch train env-train env-eval; do
  [[ -f "$CONFIG_DIR/$name.toml" ]] || die "$CONFIG_DIR has no $name.toml"
done
[[ "$GPU_IDS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "GPU_IDS must be comma-separated integers like 0,1 (got '$GPU_IDS')"
[[ -d "$PRIME_RL_DIR" ]] || die "prime-rl checkout not found: $PRIME_RL_DIR (set --prime-rl or PRIME_RL_DIR)"
PRIME_RL_DIR="$(cd "$PRIME_RL_DIR" && pwd)"

# Read the layout from the TOMLs (Python >= 3.11 for tomllib; both prime-rl versions need 3.12).
PYTHON="${PYTHON:-python3}"
LAYOUT="$("$PYTHON" - "$CONFIG_DIR" <<'PY'
import sys
try:
    import tomllib
except ModuleNotFoundError:
    sys.exit("error: reading the configs needs Python >= 3.11 (tomllib); set PYTHON=/path/to/python3.11+")
from pathlib import Path

d = Path(sys.argv[1])
def load(name):
    try:
        return tomllib.loads((d / f"{name}.toml").read_text())
    except tomllib.TOMLDecodeError as error:
        sys.exit(f"error: {d / name}.toml is not valid TOML: {error}")

infer, orch, train = load("infer"), load("orch"), load("train")
# prime-rl v0.8.0: [parallel] dp; main: [vllm] data_parallel_size.
n_infer = infer.get("parallel", {}).get("dp") or infer.get("vllm", {}).get("data_parallel_size") or 1
n_train = orch.get("num_train_workers", 1)

def scorer_index(name):
    doc = load(name)
    args = doc.get("legacy", {}).get("args") or doc.get("env", {}).get("taskset", {}).get("task", {})
    device = args.get("scorer_device")
    if device is None:  # the env's default: cuda:0 when a GPU is visible
        return 0
    if device == "cpu":
        return -1
    if device == "cuda":
        return 0
    if device.startswith("cuda:") and device[5:].isdigit():
        return int(device[5:])
    sys.exit(f"error: {name}.toml: scorer_device {device!r} is not cpu, cuda or cuda:N")

def source_name(split):
    sources = orch.get(split, {}).get("source", [])
    if len(sources) != 1:
        sys.exit(f"error: orch.toml must have exactly one [[{split}.source]] (it has {len(sources)})")
    return sources[0]["name"]

print(n_infer, n_train, scorer_index("env-train"), scorer_index("env-eval"),
      source_name("train"), source_name("eval"), train.get("output_dir", "outputs"))
PY
)" || exit 1
read -r N_INFER N_TRAIN SCORER_TRAIN SCORER_EVAL TRAIN_ENV EVAL_ENV OUTPUT_DIR <<<"$LAYOUT"

IFS=',' read -r -a IDS <<<"$GPU_IDS"
NEEDED=$((N_INFER + N_TRAIN))
for index in "$SCORER_TRAIN" "$SCORER_EVAL"; do
  if (( index + 1 > NEEDED )); then NEEDED=$((index + 1)); fi
done
if [[ ${#IDS[@]} -ne $NEEDED ]]; then
  die "$(basename "$CONFIG_DIR") uses $NEEDED GPUs ($N_INFER inference, $N_TRAIN trainer, scorers on cuda:$SCORER_TRAIN and cuda:$SCORER_EVAL), got ${#IDS[@]}: $GPU_IDS"
fi
join() { local IFS=','; echo "$*"; }
INFER_IDS="$(join "${IDS[@]:0:N_INFER}")"
TRAIN_IDS="$(join "${IDS[@]:N_INFER:N_TRAIN}")"

scorer_gpu() {  # cuda index -> "GPU <physical id>" (or cpu)
  if [[ "$1" -lt 0 ]]; then echo "cpu"; else echo "GPU ${IDS[$1]}"; fi
}

LOG_DIR="$OUTPUT_DIR/logs"
q() { printf '%q' "$1"; }
# One command per pane, each in the prime-rl checkout with the launcher's common environment.
pane_command() {  # gpus log command...
  local gpus="$1" log="$2"
  shift 2
  echo "cd $(q "$PRIME_RL_DIR") && mkdir -p $(q "$(dirname "$log")") && CUDA_DEVICE_ORDER=PCI_BUS_ID" \
    "CUDA_VISIBLE_DEVICES=$gpus $* 2>&1 | tee $(q "$log")"
}
NAMES=(inference env-train env-eval orchestrator trainer)
COMMANDS=(
  "$(pane_command "$INFER_IDS" "$LOG_DIR/inference.log" uv run inference @ "$(q "$CONFIG_DIR/infer.toml")")"
  "$(pane_command "$GPU_IDS" "$LOG_DIR/envs/train/$TRAIN_ENV.log" uv run env-server @ "$(q "$CONFIG_DIR/env-train.toml")")"
  "$(pane_command "$GPU_IDS" "$LOG_DIR/envs/eval/$EVAL_ENV.log" uv run env-server @ "$(q "$CONFIG_DIR/env-eval.toml")")"
  "$(pane_command "$GPU_IDS" "$LOG_DIR/orchestrator.log" uv run orchestrator @ "$(q "$CONFIG_DIR/orch.toml")")"
  "$(pane_command "$TRAIN_IDS" "$LOG_DIR/trainer.log" PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \
    uv run torchrun --standalone --nproc-per-node "$N_TRAIN" -m prime_rl.trainer.rl.train @ "$(q "$CONFIG_DIR/train.toml")")"
)

if [[ $DRY_RUN -eq 1 ]]; then
  echo "# tmux session '$SESSION': $(basename "$CONFIG_DIR") on GPUs $GPU_IDS (inference $INFER_IDS, trainer $TRAIN_IDS," \
    "train scorer $(scorer_gpu "$SCORER_TRAIN"), eval scorer $(scorer_gpu "$SCORER_EVAL")), logs in $PRIME_RL_DIR/$LOG_DIR"
  for i in "${!NAMES[@]}"; do
    echo "${NAMES[$i]}: ${COMMANDS[$i]}"
  done
  exit 0
fi

command -v tmux >/dev/null || die "tmux is not installed (use --dry-run to print the commands)"
tmux has-session -t "$SESSION" 2>/dev/null && die "tmux session '$SESSION' already exists (attach: tmux attach -t $SESSION)"

tmux new-session -d -s "$SESSION" -n rl -c "$PRIME_RL_DIR"
for i in "${!NAMES[@]}"; do
  if [[ $i -gt 0 ]]; then
    tmux split-window -t "$SESSION:rl" -c "$PRIME_RL_DIR"
    tmux select-layout -t "$SESSION:rl" tiled >/dev/null
  fi
  tmux select-pane -t "$SESSION:rl.$i" -T "${NAMES[$i]}"
  tmux send-keys -t "$SESSION:rl.$i" "${COMMANDS[$i]}" C-m
done
tmux set-option -t "$SESSION" pane-border-status top >/dev/null
tmux set-option -t "$SESSION" pane-border-format " #{pane_title} " >/dev/null
echo "started tmux session '$SESSION' (logs in $PRIME_RL_DIR/$LOG_DIR)"
if [[ -n "${TMUX:-}" ]]; then
  exec tmux switch-client -t "$SESSION"
fi
exec tmux attach-session -t "$SESSION"
