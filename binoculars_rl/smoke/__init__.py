"""Smoke rollouts (`uv run main.py`): how does a policy do against the Binoculars reward before training?

Prompts come from the environment's own data builder, completions from any OpenAI-compatible policy server (an
embedded vLLM or `transformers serve` that main.py starts and stops, or `--base-url`), and rewards from the
environment's own `score_completions`, the function both verifiers stacks call during training.
"""
