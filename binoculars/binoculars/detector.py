"""The Binoculars detector: load an observer/performer pair, score texts in memory-bounded batches.

Score of a text x_1..x_L (L >= 2 tokens after truncation to `max_token_observed`), over the L-1 predicted positions:
    log_ppl = mean_t -log P_perf(x_t | x_<t)
    x_ppl   = mean_t sum_v P_obs(v | x_<t) * -log P_perf(v | x_<t)
    score   = log_ppl / x_ppl            (low = machine-like; texts under 2 tokens score NaN)

Memory stays bounded: the models run without their LM heads, and the [rows, vocab] logits of both models are
built from the hidden states a slice of positions at a time, never for a whole batch at once. Work per text is
bounded too: only a head of `char_budget` characters reaches the tokenizer (see `Binoculars.char_budget`).

When observer and performer are the same model (same resolved path or hub id, device and dtype), it is loaded
once and each text takes one forward pass: x_ppl is then the performer's own entropy, score = log-ppl / entropy,
the same value the two-pass computation gives.

With `panel=True` (the default) the same logits slices also give the detector panel of `binoculars.panel`
(Fast-DetectGPT, log-rank, log-likelihood, entropy) in `ScoreDetails.panel`: no extra forward pass, a few more
passes over each slice (docs/panel.md has the measured cost).

One bad text never sinks a batch: code points UTF-8 cannot encode (lone surrogates) become U+FFFD before
tokenizing, and a text the tokenizer still rejects gets NaN with `ScoreDetails.error` saying why (and a warning);
the other texts keep the scores they get alone.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from binoculars.defaults import DEFAULT_OBSERVER, DEFAULT_PERFORMER
from binoculars.metrics import binoculars_terms, panel_terms
from binoculars.panel import PanelScores
from binoculars.utils import (
    FALCON_7B_THRESHOLDS,
    MODES,
    check_tokenizers_consistent,
    clean_text,
    load_thresholds,
    max_token_chars,
    resolve_device,
    resolve_dtype,
)

AI_LABEL = "Most likely AI-generated"
HUMAN_LABEL = "Most likely human-generated"
UNDETERMINED_LABEL = "Undetermined (fewer than 2 tokens)"
# fp32 temporaries per logits row in binoculars_terms: two models' logits, softmax, log-softmax.
_TEMPORARIES_PER_ROW = 4
# Tokens a cut head must hold beyond max_token_observed for its scored tokens to be those of the whole text.
_CUT_MARGIN_TOKENS = 16


class ModelLoadError(OSError):
    """A model or tokenizer could not be loaded (bad path, or the hub is unreachable)."""


@dataclass(frozen=True)
class ScoreDetails:
    """One text's Binoculars score and its parts; NaN score/log_ppl/x_ppl when num_tokens < 2."""

    score: float
    log_ppl: float
    x_ppl: float
    num_tokens: int
    scored_chars: int | None = None
    """The scored tokens cover text[:scored_chars] (less than the whole text when it was truncated): whatever
    judges the text beside the score should judge that span. None when a scorer does not report it."""
    error: str | None = None
    """Why the text could not be scored (the tokenizer rejected it); score, log_ppl and x_ppl are then NaN."""
    panel: PanelScores | None = None
    """The other detectors' criteria from the same forward passes (NaN where the score is NaN); None when the
    scorer ran without the panel (`Binoculars(panel=False)`)."""

    def criteria(self) -> dict[str, float]:
        """Every criterion of the panel by name (`binoculars.panel.CRITERIA`), the Binoculars score first; a
        ValueError when the scorer computed no panel."""
        if self.panel is None:
            raise ValueError(
                "these scores carry no detector panel (scored with Binoculars(panel=False), or by a scoring "
                "service from before the panel)"
            )
        return {"binoculars": self.score, **self.panel.as_dict()}


@dataclass(frozen=True)
class _Encoded:
    """A text's scored token ids and the characters they cover, or why it could not be tokenized."""

    ids: list[int]
    scored_chars: int
    error: str | None = None


def _load_or_explain(loader, name_or_path: str, role: str, **kwargs):
    try:
        return loader(name_or_path, **kwargs)
    except OSError as error:
        raise ModelLoadError(
            f"could not load the {role} {name_or_path!r}: {error}\n"
            f"If the Hugging Face hub is unreachable (offline machine, HF_HUB_OFFLINE=1), download the model "
            f"elsewhere (`hf download {name_or_path}`) and pass its local directory instead of the hub id."
        ) from error


def same_model(first: str | Path, second: str | Path) -> bool:
    """Whether two model names name the same model: the same resolved directory for local paths, the same
    string for hub ids."""
    first_path, second_path = Path(first).expanduser(), Path(second).expanduser()
    if first_path.exists() or second_path.exists():
        return first_path.exists() and second_path.exists() and first_path.resolve() == second_path.resolve()
    return str(first) == str(second)


def load_tokenizer(name_or_path: str | Path, role: str = "tokenizer"):
    from transformers import AutoTokenizer

    tokenizer = _load_or_explain(AutoTokenizer.from_pretrained, str(name_or_path), role)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError(
                f"{role} {name_or_path!r} has neither a pad nor an eos token to pad batches with"
            )
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_frozen_model(name_or_path: str | Path, device: torch.device, dtype: torch.dtype, role: str):
    """A causal LM in eval mode with gradients off for its own parameters (no global grad switch)."""
    from transformers import AutoModelForCausalLM

    model = _load_or_explain(AutoModelForCausalLM.from_pretrained, str(name_or_path), role, dtype=dtype)
    if model.get_output_embeddings() is None:
        raise ValueError(f"{role} {name_or_path!r} has no LM head (get_output_embeddings() is None)")
    model.to(device)
    model.eval()
    model.requires_grad_(False)
    return model


class Binoculars:
    """Zero-shot AI-text detector (Hans et al., 2024) with an API compatible with the reference implementation.

    `max_token_observed`: texts are truncated to this many tokens before scoring.
    `batch_size`: texts per forward pass (texts are length-sorted to cut padding; results keep input order).
    `logits_chunk_mb`: memory budget for the fp32 logits of one slice of positions (both models).
    `thresholds`: mode -> threshold, or a calibration JSON path; default: the reference's Falcon-7B values
    (a warning says they do not fit other pairs).
    `panel`: also compute the detector panel (`ScoreDetails.panel`) from the same logits.
    """

    def __init__(
        self,
        observer_name_or_path: str | Path = DEFAULT_OBSERVER,
        performer_name_or_path: str | Path = DEFAULT_PERFORMER,
        use_bfloat16: bool = True,
        max_token_observed: int = 512,
        mode: str = "low-fpr",
        *,
        device: str | torch.device | None = None,
        observer_device: str | torch.device | None = None,
        performer_device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        batch_size: int = 32,
        logits_chunk_mb: float = 512,
        thresholds: dict[str, float] | str | Path | None = None,
        panel: bool = True,
    ) -> None:
        if max_token_observed < 2:
            raise ValueError(f"max_token_observed must be >= 2, got {max_token_observed}")
        if batch_size < 1 or not logits_chunk_mb > 0:
            raise ValueError(
                f"batch_size and logits_chunk_mb must be positive, got {batch_size}, {logits_chunk_mb}"
            )
        self.observer_name_or_path = str(observer_name_or_path)
        self.performer_name_or_path = str(performer_name_or_path)
        self.max_token_observed = max_token_observed
        self.batch_size = batch_size
        self.logits_chunk_mb = logits_chunk_mb
        self.panel = panel
        self.observer_device = resolve_device(observer_device if observer_device is not None else device)
        self.performer_device = resolve_device(performer_device if performer_device is not None else device)

        observer_dtype = resolve_dtype(dtype, self.observer_device, use_bfloat16)
        performer_dtype = resolve_dtype(dtype, self.performer_device, use_bfloat16)
        self.shared_model = (
            same_model(self.observer_name_or_path, self.performer_name_or_path)
            and self.observer_device == self.performer_device
            and observer_dtype == performer_dtype
        )
        """Observer and performer are one model (same resolved path or id, device and dtype): it is loaded
        once and each text takes one forward pass; x-ppl is then the performer's own entropy."""

        self.tokenizer = load_tokenizer(self.observer_name_or_path, "observer tokenizer")
        if not self.shared_model:
            performer_tokenizer = load_tokenizer(self.performer_name_or_path, "performer tokenizer")
            check_tokenizers_consistent(self.tokenizer, performer_tokenizer)
        if not self.tokenizer.is_fast:
            raise ValueError(
                f"observer tokenizer {self.observer_name_or_path!r} is a slow (Python) tokenizer; Binoculars "
                "needs a fast one (character offsets of the scored span): save the model with a tokenizer.json"
            )
        self.tokenizer.truncation_side = (
            "right"  # a text's score is that of its first max_token_observed tokens
        )
        self.char_budget = (max_token_observed + _CUT_MARGIN_TOKENS) * max_token_chars(self.tokenizer)
        """Characters of a text that reach the tokenizer (more only when that head holds too few tokens)."""

        self.observer_model = load_frozen_model(
            self.observer_name_or_path,
            self.observer_device,
            observer_dtype,
            "observer/performer model" if self.shared_model else "observer model",
        )
        self.performer_model = (
            self.observer_model
            if self.shared_model
            else load_frozen_model(
                self.performer_name_or_path, self.performer_device, performer_dtype, "performer model"
            )
        )
        observer_vocab = self.observer_model.get_output_embeddings().weight.shape[0]
        performer_vocab = self.performer_model.get_output_embeddings().weight.shape[0]
        if observer_vocab != performer_vocab:
            raise ValueError(
                f"observer and performer LM heads differ in size: {observer_vocab} vs {performer_vocab}"
            )
        self.vocab_size = observer_vocab

        if thresholds is None:
            warnings.warn(
                "Binoculars thresholds default to the reference's Falcon-7B values, which do not fit other "
                "model pairs; calibrate (scripts/calibrate.py) and pass thresholds=<calibration JSON>",
                stacklevel=2,
            )
            thresholds = FALCON_7B_THRESHOLDS
        elif isinstance(thresholds, (str, Path)):
            thresholds = load_thresholds(thresholds)
        self.thresholds = dict(thresholds)
        self.change_mode(mode)

    # --- reference-compatible API -------------------------------------------------------------------------
    def change_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode not in self.thresholds:
            raise ValueError(f"no threshold for mode {mode!r} (have {sorted(self.thresholds)})")
        self.mode = mode
        self.threshold = self.thresholds[mode]

    def compute_score(self, input_text: str | Sequence[str]) -> float | list[float]:
        """Binoculars score of one text (float) or of each text of a list (list, input order)."""
        details = self.score_details([input_text] if isinstance(input_text, str) else input_text)
        scores = [d.score for d in details]
        return scores[0] if isinstance(input_text, str) else scores

    def predict(self, input_text: str | Sequence[str]) -> str | list[str]:
        scores = self.compute_score(input_text)
        labels = [self._label(s) for s in ([scores] if isinstance(scores, float) else scores)]
        return labels[0] if isinstance(input_text, str) else labels

    def _label(self, score: float) -> str:
        if math.isnan(score):
            return UNDETERMINED_LABEL
        return AI_LABEL if score < self.threshold else HUMAN_LABEL

    # --- scoring ------------------------------------------------------------------------------------------
    def score_details(self, texts: Sequence[str]) -> list[ScoreDetails]:
        """Score, log-ppl, x-ppl, token count (and the panel, with `panel=True`) of each text, in input order."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"expected a sequence of strings, got {type(texts).__name__}")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text #{index} is {type(text).__name__}, not str")
        encoded = [self._encode(index, text) for index, text in enumerate(texts)]
        unscored = (math.nan, math.nan, PanelScores.nan() if self.panel else None)
        parts: list[tuple[float, float, PanelScores | None]] = [unscored] * len(encoded)
        scorable = sorted(
            (i for i, e in enumerate(encoded) if len(e.ids) >= 2), key=lambda i: -len(encoded[i].ids)
        )
        with torch.inference_mode():
            for start in range(0, len(scorable), self.batch_size):
                batch = scorable[start : start + self.batch_size]
                for index, ppls in zip(
                    batch, self._score_batch([encoded[i].ids for i in batch]), strict=True
                ):
                    parts[index] = ppls
        return [
            ScoreDetails(log_ppl / x_ppl, log_ppl, x_ppl, len(e.ids), e.scored_chars, e.error, panel)
            for (log_ppl, x_ppl, panel), e in zip(parts, encoded, strict=True)
        ]

    def _encode(self, index: int, text: str) -> _Encoded:
        """Ids of the text's first max_token_observed tokens; a text the tokenizer rejects gets no ids and the
        error (with a warning), so it alone goes unscored."""
        try:
            encoding = self.tokenizer(
                self._tokenizer_input(text),
                truncation=True,
                max_length=self.max_token_observed,
                return_offsets_mapping=True,
                return_attention_mask=False,
            )
        except Exception as error:  # any rejection: the other texts of the batch must still be scored
            message = f"the tokenizer rejected it: {type(error).__name__}: {error}"
            warnings.warn(f"Binoculars could not score text #{index}; {message}", stacklevel=3)
            return _Encoded([], 0, message)
        scored_chars = max((end for _, end in encoding["offset_mapping"]), default=0)
        return _Encoded(encoding["input_ids"], scored_chars)

    def _tokenizer_input(self, text: str) -> str:
        """The cleaned text, or only its head of `char_budget` characters when that gives the same scored tokens.

        Why the head's first N = max_token_observed tokens are the whole text's: (1) no token covers more than
        `max_token_chars` characters, so the whole text's first N tokens lie in its first N * max_token_chars
        characters, inside the head; (2) tokenization is local: the text is split into words and BPE merges
        within a word, so cutting the text can change only the tokens of the word cut at the join, and the
        check below keeps `_CUT_MARGIN_TOKENS` tokens between the last scored token and the join. (A single
        word longer than that margin at the join relies on BPE merging left to right, as it does for repeated
        characters; tests compare long texts with their token-truncated form.) A normalizer that deletes or
        composes characters can leave the head short of tokens: then the whole text is tokenized (exact, only
        slower)."""
        if len(text) > self.char_budget:
            head = clean_text(text[: self.char_budget])
            head_tokens = len(self.tokenizer(head, add_special_tokens=False)["input_ids"])
            if head_tokens > self.max_token_observed + _CUT_MARGIN_TOKENS:
                return head
        return clean_text(text)

    def _score_batch(self, token_ids: list[list[int]]) -> list[tuple[float, float, PanelScores | None]]:
        """(log_ppl, x_ppl, panel or None) of each text of one forward batch."""
        padded = self.tokenizer.pad({"input_ids": token_ids}, return_tensors="pt")
        input_ids, attention_mask = padded["input_ids"], padded["attention_mask"]
        performer_hidden = self._hidden_states(
            self.performer_model, input_ids, attention_mask, self.performer_device
        )
        observer_hidden = (
            performer_hidden
            if self.shared_model
            else self._hidden_states(self.observer_model, input_ids, attention_mask, self.observer_device)
        )

        # Position t predicts token t+1; both must be real tokens (works for left and right padding).
        predicted = (attention_mask[:, :-1] & attention_mask[:, 1:]).bool()
        text_of_row = torch.arange(len(token_ids)).unsqueeze(1).expand_as(predicted)[predicted]
        targets = input_ids[:, 1:][predicted]
        performer_rows = performer_hidden[:, :-1][predicted.to(self.performer_device)]
        observer_rows = (
            performer_rows
            if self.shared_model
            else observer_hidden[:, :-1][predicted.to(self.observer_device)]
        )
        del observer_hidden, performer_hidden

        observer_head = self.observer_model.get_output_embeddings()
        performer_head = self.performer_model.get_output_embeddings()
        device = self.performer_device
        text_of_row, targets = text_of_row.to(device), targets.to(device)
        terms_of = panel_terms if self.panel else binoculars_terms
        # Per text: the sums of nll, xent (and variance, log_rank, entropy with the panel) over its positions.
        sums = torch.zeros(len(token_ids), 5 if self.panel else 2, dtype=torch.float64, device=device)
        # panel_terms works in binoculars_terms' temporaries: the same slices either way.
        rows_per_chunk = max(
            1, int(self.logits_chunk_mb * 2**20) // (self.vocab_size * 4 * _TEMPORARIES_PER_ROW)
        )
        for start in range(0, targets.shape[0], rows_per_chunk):
            rows = slice(start, start + rows_per_chunk)
            performer_logits = performer_head(performer_rows[rows])
            observer_logits = (
                performer_logits if self.shared_model else observer_head(observer_rows[rows]).to(device)
            )
            terms = terms_of(observer_logits, performer_logits, targets[rows])
            sums.index_add_(0, text_of_row[rows], torch.stack(terms, dim=1).double())

        counts = predicted.sum(dim=1).tolist()
        results = []
        for text_sums, count in zip(sums.tolist(), counts, strict=True):
            nll, xent = text_sums[0], text_sums[1]
            panel = PanelScores.from_sums(*text_sums, positions=count) if self.panel else None
            results.append((nll / count, xent / count, panel))
        return results

    @staticmethod
    def _hidden_states(model, input_ids, attention_mask, device) -> torch.Tensor:
        attention_mask = attention_mask.to(device)
        position_ids = (attention_mask.cumsum(dim=-1) - 1).clamp(min=0)
        output = model.base_model(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        )
        return output.last_hidden_state
