"""An independent Binoculars computation for the tests: plain transformers, the definition in DESIGN.md, applied
to the completion's canonical form (the text the reward scores; binoculars_env.canonical has its own tests).

For tokens x_1..x_L, over the L-1 predicted positions: log_ppl = mean -log P_perf(x_t | x_<t),
x_ppl = mean sum_v P_obs(v | x_<t) * -log P_perf(v | x_<t), score = log_ppl / x_ppl (fp32).
"""

from __future__ import annotations

from functools import cache

import torch
from binoculars_env.canonical import canonical_form
from binoculars_env.reward import strip_think
from transformers import AutoModelForCausalLM, AutoTokenizer


@cache
def _models(observer: str, performer: str):
    tokenizer = AutoTokenizer.from_pretrained(observer)
    load = lambda path: AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()  # noqa: E731
    return tokenizer, load(observer), load(performer)


def reference_score(text: str, observer: str, performer: str, max_tokens: int = 512) -> tuple[float, int]:
    """(score, token count) of the completion's canonical text after think-stripping; NaN score under 2 tokens."""
    tokenizer, observer_model, performer_model = _models(observer, performer)
    ids = tokenizer(canonical_form(strip_think(text)), return_tensors="pt")["input_ids"][:, :max_tokens]
    if ids.shape[1] < 2:
        return float("nan"), ids.shape[1]
    with torch.no_grad():
        observer_logits = observer_model(ids).logits[0, :-1].float()
        performer_logits = performer_model(ids).logits[0, :-1].float()
    performer_logprobs = torch.log_softmax(performer_logits, dim=-1)
    log_ppl = -performer_logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1).mean()
    x_ppl = -(torch.softmax(observer_logits, dim=-1) * performer_logprobs).sum(-1).mean()
    return float(log_ppl / x_ppl), ids.shape[1]


def reference_reward(text: str, observer: str, performer: str, threshold: float) -> float:
    score, _ = reference_score(text, observer, performer)
    return min(2.0, max(-2.0, score - threshold))
