"""Sampling chat completions from a local causal LM (a training checkpoint or any hub/local model)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm


@torch.no_grad()
def generate_completions(
    model,
    tokenizer,
    prompts: Sequence[list[dict[str, str]]],
    max_new_tokens: int,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 16,
    chat_template_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    desc: str = "generating",
) -> list[str]:
    """One sampled completion per chat prompt (greedy when `temperature` is 0), decoded without special tokens.

    `chat_template_kwargs` go to `apply_chat_template` (e.g. `{"enable_thinking": False}` for Qwen3)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    padding_side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only generation continues from the right edge
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {}
    completions = []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc=desc, unit="batch"):
            rendered = [
                tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
                )
                for messages in prompts[start : start + batch_size]
            ]
            batch = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False).to(
                device
            )
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                do_sample=bool(sampling),
                **{k: v for k, v in sampling.items() if k != "do_sample"},
            )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            completions.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = padding_side
        torch.random.set_rng_state(generator_state)
        model.train(was_training)
    return completions


def prompt_stories(
    model_dir: str, count: int, seed: int, max_new_tokens: int, device: str | None = None
) -> list[str]:
    """Stories `model_dir` writes from up to `count` of the environment's held-out shipped story prompts (the
    seeded hold-out of `seed`; one sampled story per prompt, seed `seed`), stripped, empty ones dropped."""
    from binoculars_env.data import SAMPLE_DATA_FILE, DataConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from binoculars_rl.evaluation import eval_prompts

    prompts = eval_prompts(DataConfig(data_files=str(SAMPLE_DATA_FILE), num_eval_examples=count, seed=seed))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device or "cpu")
    texts = generate_completions(
        model, tokenizer, [p.messages() for p in prompts], max_new_tokens=max_new_tokens, seed=seed,
        desc="AI stories",
    )  # fmt: skip
    return [t.strip() for t in texts if t.strip()]
