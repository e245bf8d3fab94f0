"""Per-position Binoculars terms from a slice of logits (pure tensor functions, fp32).

For a predicted position with observer logits `o`, performer logits `p` and actual next token `y`:
    nll  = -log softmax(p)[y]                              (performer log-perplexity term)
    xent = sum_v softmax(o)[v] * -log softmax(p)[v]        (observer -> performer cross-perplexity term)
A text's log-ppl and x-ppl are the means of these over its predicted positions; score = log-ppl / x-ppl.
"""

from __future__ import annotations

import torch


def binoculars_terms(
    observer_logits: torch.Tensor, performer_logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (nll, xent), each of shape [rows], for logits of shape [rows, vocab] and targets [rows].

    Logits may be bf16; everything is computed in fp32.
    """
    if observer_logits.shape != performer_logits.shape:
        raise ValueError(
            f"observer and performer logits differ in shape: {tuple(observer_logits.shape)} vs "
            f"{tuple(performer_logits.shape)} (do the models share a vocabulary?)"
        )
    if observer_logits.dim() != 2 or targets.shape != observer_logits.shape[:1]:
        raise ValueError("expected logits [rows, vocab] and targets [rows]")
    performer_log_probs = torch.log_softmax(performer_logits.float(), dim=-1)
    observer_probs = torch.softmax(observer_logits.float(), dim=-1)
    nll = -performer_log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    # Row-wise dot product as a batched matmul: no third [rows, vocab] temporary.
    xent = -torch.bmm(observer_probs.unsqueeze(1), performer_log_probs.unsqueeze(2)).reshape(-1)
    return nll, xent
