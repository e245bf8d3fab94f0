"""The application around the detector (`binoculars`) and the environment (`binoculars_env`): what main.py and the
scripts run.

- `smoke`: main.py's smoke rollouts (policy server, sampling, rewards from the env's own reward function).
- `report`: everything printed with rich (rollout table and summary, degeneracy report table).
- `calibration_sources`: labelled human/AI text for scripts/calibrate.py (files, the hub, a policy's stories).
- `degeneracy`: diversity metrics and a template-collapse verdict for a set of texts.
- `completions`: reading completion texts from JSONL files (main.py's rollouts, training samples).
- `generation`, `evaluation`: sampling from a local checkpoint and scoring it on held-out prompts.
- `trl_args`, `trl_reward`, `trl_callbacks`, `trl_training`: scripts/train.py's pieces (TRL's GRPOTrainer with
  the environment's own prompts and reward).
"""
