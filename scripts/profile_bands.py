"""Fit the human-profile bands (binoculars_env.profile) on human-written text and write them as JSON.

    uv run python scripts/profile_bands.py                                   # Debian fortunes -> the shipped bands
    uv run python scripts/profile_bands.py --human-file mine.jsonl --output results/bands.json

The reward reads the file through `profile_bands_file`. Without --human-file the texts are Debian's fortunes
prose (`apt-get install fortunes fortunes-min`) and the output is the file shipped with the environment. The
JSON also records a split-half check: bands fitted on the even-numbered texts, and the share of the odd-numbered
texts they would guard (an out-of-sample estimate of how many human texts the guard costs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from binoculars_env.canonical import CANONICAL_STEPS
from binoculars_env.profile import (
    BAND_PADDING,
    BAND_QUANTILES,
    MIN_BAND_PADDING,
    SHIPPED_BANDS,
    STATISTICS,
    canonical_profiles,
    fit_bands,
    outside_band,
)

from binoculars_rl.human_text import HumanTextError, fortune_passages, read_human_file
from binoculars_rl.paths import ensure_writable


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--human-file",
        help="human texts: .txt (one per line) or .jsonl ('text'); default: Debian fortunes prose",
    )
    parser.add_argument("--language", default="en", help="ISO 639-1 code of the texts (default: en)")
    parser.add_argument(
        "--output", default=str(SHIPPED_BANDS), help="JSON to write (default: the bands shipped with the env)"
    )
    return parser.parse_args(argv)


def guarded_share(bands: dict, texts: list[str], language: str) -> float:
    """Share of `texts` whose canonical form lies outside some band."""
    profiles = canonical_profiles(texts, language)
    return sum(outside_band(p, bands, STATISTICS) is not None for p in profiles) / len(texts)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        texts = read_human_file(args.human_file) if args.human_file else fortune_passages()
        output = ensure_writable(Path(args.output))
    except (HumanTextError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    source = (
        args.human_file or "Debian fortunes + fortunes-min prose (binoculars_rl.human_text.fortune_passages)"
    )
    bands = fit_bands(texts, args.language)
    half = fit_bands(texts[::2], args.language)
    held_out = guarded_share(half, texts[1::2], args.language)
    payload = {
        "profile_bands": {name: list(bands[name]) for name in STATISTICS},
        "source": source,
        "num_texts": len(texts),
        "language": args.language,
        "canonical_steps": list(CANONICAL_STEPS),
        "quantiles": list(BAND_QUANTILES),
        "padding": BAND_PADDING,
        "min_padding": MIN_BAND_PADDING,
        "split_half_guarded_share": held_out,
        "command": "uv run python scripts/profile_bands.py" + (" " + " ".join(argv) if argv else ""),
    }
    output.write_text(json.dumps(payload, indent=2) + "\n")
    for name in STATISTICS:
        print(f"{name:24s} {bands[name][0]:.4f} .. {bands[name][1]:.4f}")
    print(f"{len(texts)} texts; split-half: {held_out:.2%} of held-out human texts guarded; wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
