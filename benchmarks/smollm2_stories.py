"""SmolLM2-135M-Instruct's stories: the AI class of the real-model benchmarks (real_auroc.py, attacks.py).

    uv run python benchmarks/smollm2_stories.py --rounds 5 --output benchmarks/results/smollm2_stories_rounds.jsonl

Round r writes one story per held-out shipped story prompt (the environment's seeded hold-out with seed r, up to
--per-round prompts) with sampling seed r, exactly as `benchmarks/attacks.py --seed r` generates its AI stories
(`binoculars_rl.generation.prompt_stories`). Each line is `{"text", "seed"}`. Every round is appended as it
finishes; a rerun resumes after the last seed in the file. CPU, 2 cores: ~2 min per round of 40 stories.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from binoculars_rl.generation import prompt_stories
from binoculars_rl.real_model import RealModelError, smollm2_dir


def done_seeds(path: Path) -> set[int]:
    """Seeds of the rounds already in `path` (none when it does not exist)."""
    if not path.exists():
        return set()
    seeds = set()
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        record = json.loads(line)
        if not isinstance(record.get("seed"), int):
            raise SystemExit(f"error: {path}:{number} has no integer `seed`: not written by this script")
        seeds.add(record["seed"])
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds (seeds 0..rounds-1)")
    parser.add_argument("--per-round", type=int, default=40, help="prompts per round")
    parser.add_argument(
        "--max-new-tokens", type=int, default=200, help="tokens per story (attacks.py's default)"
    )
    parser.add_argument("--output", type=Path, required=True, help="JSONL to append the stories to")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.per_round < 1 or args.max_new_tokens < 1:
        parser.error("--rounds, --per-round and --max-new-tokens must be at least 1")
    try:
        model = str(smollm2_dir())
    except RealModelError as error:
        print(f"smollm2_stories.py: error: {error}", file=sys.stderr)
        return 1
    done = done_seeds(args.output)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for seed in range(args.rounds):
        if seed in done:
            continue
        stories = prompt_stories(model, args.per_round, seed, args.max_new_tokens, device="cpu")
        with args.output.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps({"text": text, "seed": seed}) + "\n" for text in stories)
        print(f"seed {seed}: {len(stories)} stories appended to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
