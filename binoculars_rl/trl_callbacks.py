"""A TrainerCallback that shows and saves sample completions with their Binoculars scores every N steps."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback

from binoculars_rl.trl_reward import BinocularsReward


def sample_rows(reward: BinocularsReward, step: int, limit: int | None = None) -> list[dict]:
    """The reward's last scored batch as JSON-ready rows (the first `limit` of them)."""
    if reward.last_batch is None:
        return []
    pairs = list(zip(reward.last_batch.texts, reward.last_batch.results, strict=True))[:limit]
    return [
        {"step": step, "completion": text, "reward": r.reward, **r.metrics(), "guard": r.guard}
        for text, r in pairs
    ]


class SampleLogCallback(TrainerCallback):
    """Every `every_steps` optimizer steps: print `num_samples` completions of the latest generation batch with
    reward, score and guard, and append the whole batch to `<output_dir>/samples.jsonl`."""

    def __init__(
        self, reward: BinocularsReward, every_steps: int, num_samples: int, console: Console | None = None
    ):
        if every_steps < 1:
            raise ValueError(f"sample_log_steps must be >= 1, got {every_steps}")
        self.reward = reward
        self.every_steps = every_steps
        self.num_samples = num_samples
        self.console = console or Console()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every_steps or not state.is_world_process_zero:
            return
        rows = sample_rows(self.reward, state.global_step)
        if not rows:
            return
        path = Path(args.output_dir) / "samples.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
        table = Table(title=f"step {state.global_step}: sample completions", show_lines=True)
        for column in ("completion", "reward", "score", "tokens", "guard"):
            table.add_column(column, overflow="fold")
        for row in rows[: self.num_samples]:
            table.add_row(
                row["completion"][:400],
                f"{row['reward']:+.3f}",
                f"{row['binoculars_score']:.3f}",
                str(int(row["num_tokens"])),
                row["guard"] or "",
            )
        self.console.print(table)
