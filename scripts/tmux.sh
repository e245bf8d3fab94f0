#!/usr/bin/env bash
# Launch a Binoculars RL run as separate prime-rl processes in one tmux session, one pane per process:
# inference (vLLM), one env server per train/eval source (each holds one Binoculars scorer), orchestrator, trainer.
#
#   PRIME_RL_DIR=~/prime-rl scripts/tmux.sh                                 # configs/binoculars on GPUs 0,1
#   scripts/tmux.sh --prime-rl ~/prime-rl configs/binoculars-v1-4gpu 4,5,6,7  # prime-rl main, GPUs 4-7
#   scripts/tmux.sh --dry-run configs/binoculars-8gpu 0,1,2,3,4,5,6,7       # derive configs, print the commands
#   scripts/tmux.sh configs/binoculars-v1 0,1 -- --resume                   # arguments after -- go to `rl`
#
# The per-process configs come from prime-rl itself: `uv run rl @ CONFIG_DIR/rl.toml --dry-run` (in the prime-rl
# checkout) checks the run directory and writes them to <run dir>/configs/, exactly as `uv run rl` does before it
# starts its processes; each pane then runs one of them. The GPU split comes from rl.toml's [deployment]:
# inference gets the first num_infer_gpus ids, the trainer the next num_train_gpus; env servers and the
# orchestrator see every id, so an env's `scorer_device = "cuda:K"` is the K-th id of GPU_IDS, as under
# `CUDA_VISIBLE_DEVICES=GPU_IDS uv run rl`. Each pane also writes its output to <run dir>/logs/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
usage: scripts/tmux.sh [--dry-run] [--prime-rl DIR] [--session NAME] [CONFIG_DIR [GPU_IDS]] [-- RL_ARGS...]

  CONFIG_DIR        directory with the layout's rl.toml (default: configs/binoculars of this checkout)
  GPU_IDS           comma-separated physical GPU ids, as many as the layout uses (default: 0,1,... for its count)
  RL_ARGS           extra arguments for prime-rl's `rl ... --dry-run` (e.g. --resume, --clean, --max-steps 10)
  --prime-rl DIR    prime-rl checkout to run in (default: $PRIME_RL_DIR, else the current directory)
  --session NAME    tmux session name (default: binoculars)
  --dry-run         derive the per-process configs, print each pane's command, start no process
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
RL_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1; shift ;;
    --prime-rl) [[ $# -ge 2 ]] || die "--prime-rl needs a directory"; PRIME_RL_DIR="$2"; shift 2 ;;
    --session) [[ $# -ge 2 ]] || die "--session needs a name"; SESSION="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; RL_ARGS=("$@"); break ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
if [[ ${#POSITIONAL[@]} -gt 2 ]]; then
  usage >&2
  die "expected at most CONFIG_DIR and GPU_IDS, got ${#POSITIONAL[@]} arguments"
fi
CONFIG_DIR="${POSITIONAL[0]:-$REPO/configs/binoculars}"
GPU_IDS="${POSITIONAL[1]:-}"

[[ -f "$CONFIG_DIR/rl.toml" ]] || die "no rl.toml in $CONFIG_DIR"
CONFIG_DIR="$(cd "$CONFIG_DIR" && pwd)"
LAYOUT_NAME="$(realpath --relative-to="$REPO/configs" "$CONFIG_DIR")"
[[ $LAYOUT_NAME != ..* ]] || LAYOUT_NAME="$CONFIG_DIR"
[[ -z "$GPU_IDS" || "$GPU_IDS" =~ ^[0-9]+(,[0-9]+)*$ ]] || die "GPU_IDS must be comma-separated integers like 0,1 (got '$GPU_IDS')"
grep -qs '^name = "prime-rl"$' "$PRIME_RL_DIR/pyproject.toml" \
  || die "not a prime-rl checkout: $PRIME_RL_DIR (set --prime-rl or PRIME_RL_DIR)"
PRIME_RL_DIR="$(cd "$PRIME_RL_DIR" && pwd)"

# The GPU split from rl.toml (Python >= 3.11 for tomllib; both prime-rl versions need 3.12).
PYTHON="${PYTHON:-python3}"
LAYOUT="$("$PYTHON" - "$CONFIG_DIR/rl.toml" <<'PY'
import sys
try:
    import tomllib
except ModuleNotFoundError:
    sys.exit("error: reading rl.toml needs Python >= 3.11 (tomllib); set PYTHON=/path/to/python3.11+")

path = sys.argv[1]
try:
    with open(path, "rb") as f:
        rl = tomllib.load(f)
except tomllib.TOMLDecodeError as error:
    sys.exit(f"error: {path} is not valid TOML: {error}")
deployment = rl.get("deployment", {})
if not {"num_infer_gpus", "num_train_gpus"} <= set(deployment):
    sys.exit(f"error: {path} must set [deployment] num_infer_gpus and num_train_gpus")

def scorer(source):  # where a source's env server puts its scorer: cuda:N, cpu, or the scoring service
    args = source.get("legacy", {}).get("args") or source.get("env", {}).get("taskset", {}).get("task", {})
    if "scorer_url" in args:
        return "service"
    device = args.get("scorer_device") or "cuda:0"  # the env's default when a GPU is visible
    device = "cuda:0" if device == "cuda" else device
    if device != "cpu" and not (device.startswith("cuda:") and device[5:].isdigit()):
        sys.exit(f"error: {path}: scorer_device {device!r} is not cpu, cuda or cuda:N")
    return device

orch = rl.get("orchestrator", {})
scorers = [scorer(s) for split in ("train", "eval") for s in orch.get(split, {}).get("source", [])]
print(deployment["num_infer_gpus"], deployment["num_train_gpus"], *scorers)
PY
)" || exit 1
read -r N_INFER N_TRAIN SCORERS <<<"$LAYOUT"

NEEDED=$((N_INFER + N_TRAIN))
for device in $SCORERS; do
  if [[ $device == cuda:* ]] && (( ${device#cuda:} + 1 > NEEDED )); then NEEDED=$((${device#cuda:} + 1)); fi
done
if [[ -z "$GPU_IDS" ]]; then
  GPU_IDS="$(seq -s, 0 $((NEEDED - 1)))"
fi
IFS=',' read -r -a IDS <<<"$GPU_IDS"
if [[ ${#IDS[@]} -ne $NEEDED ]]; then
  die "$LAYOUT_NAME uses $NEEDED GPUs ($N_INFER inference, $N_TRAIN trainer, scorers on ${SCORERS// / and }), got ${#IDS[@]}: $GPU_IDS"
fi
join() { local IFS=','; echo "$*"; }
INFER_IDS="$(join "${IDS[@]:0:N_INFER}")"
TRAIN_IDS="$(join "${IDS[@]:N_INFER:N_TRAIN}")"
SCORER_GPUS=()
for device in $SCORERS; do
  if [[ $device == cuda:* ]]; then SCORER_GPUS+=("GPU ${IDS[${device#cuda:}]}"); else SCORER_GPUS+=("$device"); fi
done

# prime-rl's own dry run writes the per-process configs into the run directory and says where.
command -v uv >/dev/null || die "uv is not on PATH (prime-rl runs through uv)"
DRY_LOG="$(mktemp)"
trap 'rm -f "$DRY_LOG"' EXIT
if ! (cd "$PRIME_RL_DIR" && uv run rl @ "$CONFIG_DIR/rl.toml" --dry-run "${RL_ARGS[@]}") >"$DRY_LOG" 2>&1; then
  tail -n 40 "$DRY_LOG" >&2
  die "prime-rl's dry run failed for $CONFIG_DIR/rl.toml (its output above)"
fi
CONFIGS="$(sed 's/\x1b\[[0-9;]*m//g' "$DRY_LOG" | sed -n 's/.*Wrote subconfigs to \(.*\)$/\1/p' | tail -n 1)"
[[ -n "$CONFIGS" ]] || die "prime-rl's dry run did not say where it wrote the per-process configs ('Wrote subconfigs to ...')"
[[ $CONFIGS == /* ]] || CONFIGS="$PRIME_RL_DIR/$CONFIGS"
ORCH_FILE="$(ls "$CONFIGS"/orchestrator.* 2>/dev/null | head -n 1)"
[[ -n "$ORCH_FILE" ]] || die "no orchestrator config in $CONFIGS after prime-rl's dry run"
EXT="${ORCH_FILE##*.}"  # toml on prime-rl v0.8.0, json on main
RUN_DIR="$(dirname "$CONFIGS")"
LOG_DIR="$RUN_DIR/logs"

q() { printf '%q' "$1"; }
# One command per pane, each in the prime-rl checkout with the launcher's common environment.
pane_command() {  # gpus log command...
  local gpus="$1" log="$2"
  shift 2
  echo "cd $(q "$PRIME_RL_DIR") && mkdir -p $(q "$(dirname "$log")") && CUDA_DEVICE_ORDER=PCI_BUS_ID" \
    "CUDA_VISIBLE_DEVICES=$gpus $* 2>&1 | tee $(q "$log")"
}
NAMES=(inference)
COMMANDS=("$(pane_command "$INFER_IDS" "$LOG_DIR/inference.log" uv run inference @ "$(q "$CONFIGS/inference.$EXT")")")
for split in train eval; do
  files=("$CONFIGS/envs/$split"/*."$EXT")
  [[ -f "${files[0]}" ]] || die "prime-rl's dry run wrote no $split env server config under $CONFIGS/envs/$split"
  for file in "${files[@]}"; do
    source_name="$(basename "$file" ".$EXT")"
    if [[ ${#files[@]} -eq 1 ]]; then NAMES+=("env-$split"); else NAMES+=("env-$split-$source_name"); fi
    COMMANDS+=("$(pane_command "$GPU_IDS" "$LOG_DIR/envs/$split/$source_name.log" uv run env-server @ "$(q "$file")")")
  done
done
NAMES+=(orchestrator trainer)
COMMANDS+=(
  "$(pane_command "$GPU_IDS" "$LOG_DIR/orchestrator.log" uv run orchestrator @ "$(q "$CONFIGS/orchestrator.$EXT")")"
  "$(pane_command "$TRAIN_IDS" "$LOG_DIR/trainer.log" PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \
    uv run torchrun --standalone --nproc-per-node "$N_TRAIN" -m prime_rl.trainer.rl.train @ "$(q "$CONFIGS/trainer.$EXT")")"
)

if [[ $DRY_RUN -eq 1 ]]; then
  echo "# tmux session '$SESSION': $LAYOUT_NAME on GPUs $GPU_IDS (inference $INFER_IDS, trainer $TRAIN_IDS," \
    "scorers: $(IFS=/; echo "${SCORER_GPUS[*]}")), configs in $CONFIGS, logs in $LOG_DIR"
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
echo "started tmux session '$SESSION' (configs in $CONFIGS, logs in $LOG_DIR)"
if [[ -n "${TMUX:-}" ]]; then
  exec tmux switch-client -t "$SESSION"
fi
exec tmux attach-session -t "$SESSION"
