"""Per-position detector terms from a slice of logits (pure tensor functions, fp32).

For a predicted position with observer logits `o`, performer logits `p` and actual next token `y`
(q = softmax(o) the observer's distribution, log P = log_softmax(p) the performer's log-probabilities):
    nll      = -log P[y]                                    (performer log-perplexity term)
    xent     = sum_v q[v] * -log P[v]                       (observer -> performer cross-perplexity term)
    variance = sum_v q[v] * (log P[v] + xent)^2             (variance of log P under q; -xent is its mean)
    log_rank = log(1 + #{v : p[v] > p[y]})                  (log of y's rank under the performer)
    entropy  = sum_v P[v] * -log P[v]                       (the performer's predictive entropy)
A text's Binoculars score is mean(nll) / mean(xent); `binoculars.panel` builds the other criteria from these
sums (Fast-DetectGPT: (sum xent - sum nll) / sqrt(sum variance)).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PanelTerms(NamedTuple):
    """Per-row terms of every panel criterion, each of shape [rows], fp32."""

    nll: torch.Tensor
    xent: torch.Tensor
    variance: torch.Tensor
    log_rank: torch.Tensor
    entropy: torch.Tensor


def binoculars_terms(
    observer_logits: torch.Tensor, performer_logits: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (nll, xent), each of shape [rows], for logits of shape [rows, vocab] and targets [rows].

    Logits may be bf16; everything is computed in fp32.
    """
    _check_shapes(observer_logits, performer_logits, targets)
    performer_log_probs = torch.log_softmax(performer_logits.float(), dim=-1)
    observer_probs = torch.softmax(observer_logits.float(), dim=-1)
    nll = -performer_log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    xent = -_row_dot(observer_probs, performer_log_probs)
    return nll, xent


def panel_terms(
    observer_logits: torch.Tensor, performer_logits: torch.Tensor, targets: torch.Tensor
) -> PanelTerms:
    """Every panel term (see the module docstring) for logits [rows, vocab] and targets [rows], in the two fp32
    [rows, vocab] temporaries `binoculars_terms` uses (no third: the extra terms are computed in place) and with
    the same nll and xent. When the observer logits ARE the performer logits (one model), entropy = xent.

    Logits may be bf16; everything is computed in fp32 (the rank compares the logits as given).
    """
    _check_shapes(observer_logits, performer_logits, targets)
    log_probs = torch.log_softmax(performer_logits.float(), dim=-1)
    work = torch.softmax(observer_logits.float(), dim=-1)  # q now; reused below once q is done with
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    xent = -_row_dot(work, log_probs)
    # Variance of log P under q, centred in place (log P - mean, the mean being -xent): no fp32 cancellation
    # of E[(log P)^2] - E[log P]^2.
    log_probs.add_(xent.unsqueeze(-1))
    variance = work.mul_(log_probs).mul_(log_probs).sum(dim=-1)
    log_probs.sub_(xent.unsqueeze(-1))
    if observer_logits is performer_logits:
        entropy = xent
    else:
        torch.exp(log_probs, out=work)
        entropy = -work.mul_(log_probs).sum(dim=-1)
    # rank = 1 + #{v : logit[v] > logit[y]}, counted as a sum of fp32 0/1 (exact below 2^24 rows of vocabulary).
    torch.gt(performer_logits, performer_logits.gather(-1, targets.unsqueeze(-1)), out=work)
    rank = work.sum(dim=-1) + 1
    return PanelTerms(nll, xent, variance, torch.log(rank), entropy)


def _row_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise dot product of two [rows, vocab] tensors as a batched matmul: no third [rows, vocab] temporary."""
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).reshape(-1)


def _check_shapes(
    observer_logits: torch.Tensor, performer_logits: torch.Tensor, targets: torch.Tensor
) -> None:
    if observer_logits.shape != performer_logits.shape:
        raise ValueError(
            f"observer and performer logits differ in shape: {tuple(observer_logits.shape)} vs "
            f"{tuple(performer_logits.shape)} (do the models share a vocabulary?)"
        )
    if observer_logits.dim() != 2 or targets.shape != observer_logits.shape[:1]:
        raise ValueError("expected logits [rows, vocab] and targets [rows]")
