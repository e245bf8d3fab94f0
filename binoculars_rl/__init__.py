"""Local RL training around the Binoculars environment: TRL GRPO glue and degeneracy reports.

- `degeneracy`: diversity metrics and a template-collapse verdict for a set of texts (no RL, no env).
- `completions`: reading completion texts from JSONL files (main.py's rollouts, training samples).
- `generation`: sampling chat completions from a local checkpoint.
- `trl_args`, `trl_reward`, `trl_callbacks`, `trl_training`: scripts/train.py's pieces (TRL's GRPOTrainer with
  the environment's own prompts and reward).
"""
