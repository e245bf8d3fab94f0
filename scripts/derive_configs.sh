#!/usr/bin/env bash
# Derive prime-rl's per-process configs from a layout's rl.toml with prime-rl's own dry run
# (`uv run rl @ rl.toml --dry-run`: it resolves and validates the run, writes one config per process and starts
# nothing; no GPU is needed).
#
#   PRIME_RL_DIR=~/prime-rl scripts/derive_configs.sh configs/binoculars-8gpu /tmp/binoculars-8gpu
#   PRIME_RL_DIR=~/prime-rl scripts/derive_configs.sh --in-place      # regenerate configs/binoculars/*.toml
#
# prime-rl writes <run dir>/configs/{inference,orchestrator,trainer}.EXT and envs/{train,eval}/<source>.EXT
# (EXT: toml on v0.8.0, json on main); they are copied as infer, orch, train, env-train, env-eval. The dry run runs
# in a scratch directory, so rl.toml's relative output_dir stays relative and no run directory is touched.
# Into OUT_DIR the files go as prime-rl wrote them; --in-place writes into CONFIG_DIR (default configs/binoculars) with a header naming rl.toml's sha256, which
# tests/test_configs.py checks, so an edited rl.toml fails the tests until the files are regenerated.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<'EOF'
usage: scripts/derive_configs.sh [--prime-rl DIR] CONFIG_DIR OUT_DIR
       scripts/derive_configs.sh [--prime-rl DIR] --in-place [CONFIG_DIR]

  CONFIG_DIR        directory holding rl.toml (configs/binoculars* in this repository)
  OUT_DIR           where to write infer, orch, train, env-train and env-eval (.toml or .json, as prime-rl writes)
  --in-place        write them into CONFIG_DIR itself (default configs/binoculars), with a "generated" header
  --prime-rl DIR    prime-rl checkout whose `rl` runs the dry run (default: $PRIME_RL_DIR, else the current directory)
  -h, --help        show this help
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

PRIME_RL_DIR="${PRIME_RL_DIR:-$PWD}"
IN_PLACE=0
POSITIONAL=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --in-place) IN_PLACE=1; shift ;;
    --prime-rl) [[ $# -ge 2 ]] || die "--prime-rl needs a directory"; PRIME_RL_DIR="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) POSITIONAL+=("$1"); shift ;;
  esac
done
if [[ $IN_PLACE -eq 1 ]]; then
  [[ ${#POSITIONAL[@]} -le 1 ]] || { usage >&2; die "--in-place takes at most CONFIG_DIR, got ${#POSITIONAL[@]} arguments"; }
  CONFIG_DIR="${POSITIONAL[0]:-$REPO/configs/binoculars}"
  OUT_DIR="$CONFIG_DIR"
else
  [[ ${#POSITIONAL[@]} -eq 2 ]] || { usage >&2; die "expected CONFIG_DIR and OUT_DIR, got ${#POSITIONAL[@]} argument(s)"; }
  CONFIG_DIR="${POSITIONAL[0]}"
  OUT_DIR="${POSITIONAL[1]}"
fi

[[ -f "$CONFIG_DIR/rl.toml" ]] || die "no rl.toml in $CONFIG_DIR"
CONFIG_DIR="$(cd "$CONFIG_DIR" && pwd)"
grep -qs '^name = "prime-rl"$' "$PRIME_RL_DIR/pyproject.toml" \
  || die "not a prime-rl checkout: $PRIME_RL_DIR (set --prime-rl or PRIME_RL_DIR)"
PRIME_RL_DIR="$(cd "$PRIME_RL_DIR" && pwd)"
command -v uv >/dev/null || die "uv is not on PATH (prime-rl runs through uv)"

SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
if ! (cd "$SCRATCH" && uv run --project "$PRIME_RL_DIR" rl @ "$CONFIG_DIR/rl.toml" --dry-run) >"$SCRATCH/dry-run.log" 2>&1; then
  tail -n 40 "$SCRATCH/dry-run.log" >&2
  die "prime-rl's dry run failed for $CONFIG_DIR/rl.toml (its output above)"
fi

# Exactly one orchestrator config tells where prime-rl put the run's configs and in which format.
mapfile -t FOUND < <(find "$SCRATCH" -path '*/configs/orchestrator.*' -type f)
[[ ${#FOUND[@]} -eq 1 ]] || die "prime-rl's dry run wrote ${#FOUND[@]} orchestrator configs under its run dir, expected 1"
GENERATED="$(dirname "${FOUND[0]}")"
EXT="${FOUND[0]##*.}"
[[ $IN_PLACE -eq 0 || $EXT == toml ]] || die "--in-place needs TOML (prime-rl v0.8.0); this prime-rl writes .$EXT"

one_env() {  # split -> the single env-server config prime-rl wrote for it
  local files=("$GENERATED/envs/$1"/*."$EXT")
  [[ ${#files[@]} -eq 1 && -f "${files[0]}" ]] || die "expected one $1 env server config, prime-rl wrote: ${files[*]}"
  echo "${files[0]}"
}
ENV_TRAIN="$(one_env train)"
ENV_EVAL="$(one_env eval)"
declare -A SOURCES=(
  [infer]="$GENERATED/inference.$EXT"
  [orch]="$GENERATED/orchestrator.$EXT"
  [train]="$GENERATED/trainer.$EXT"
  [env-train]="$ENV_TRAIN"
  [env-eval]="$ENV_EVAL"
)

VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$PRIME_RL_DIR/pyproject.toml" | head -n 1)"
COMMIT=""  # named only when PRIME_RL_DIR is itself a git checkout (not a folder inside another repository)
if [[ "$(git -C "$PRIME_RL_DIR" rev-parse --show-toplevel 2>/dev/null)" == "$PRIME_RL_DIR" ]]; then
  COMMIT="$(git -C "$PRIME_RL_DIR" rev-parse --short HEAD)"
fi
RL_SHA="$(sha256sum "$CONFIG_DIR/rl.toml" | cut -d' ' -f1)"
SHOWN_DIR="$(realpath --relative-to="$REPO" "$CONFIG_DIR")"
[[ $SHOWN_DIR != ..* ]] || SHOWN_DIR="$CONFIG_DIR"

mkdir -p "$OUT_DIR"
for name in infer orch train env-train env-eval; do
  source_file="${SOURCES[$name]}"
  target="$OUT_DIR/$name.$EXT"
  if [[ $IN_PLACE -eq 1 ]]; then
    {
      echo "# GENERATED from $SHOWN_DIR/rl.toml by prime-rl v$VERSION${COMMIT:+ ($COMMIT)}'s \`rl --dry-run\` (its ${source_file#"$GENERATED"/}); edit rl.toml, not this file."
      echo "# Regenerate: PRIME_RL_DIR=/path/to/prime-rl scripts/derive_configs.sh --in-place $SHOWN_DIR"
      echo "# rl.toml sha256: $RL_SHA"
      echo
      cat "$source_file"
    } >"$target"
  else
    cp "$source_file" "$target"
  fi
  echo "$target"
done
