"""Fault injection for tests: a tokenizer wrapper that records what reaches the tokenizer and rejects chosen texts.

monkeypatch.setattr(scorer, "tokenizer", RecordingTokenizer(scorer.tokenizer, reject="POISON"))
"""

from __future__ import annotations

from typing import Any


class RecordingTokenizer:
    """Wraps a tokenizer: records every text it is asked to encode (`seen`) and raises TypeError for texts that
    contain `reject`; everything else is the wrapped tokenizer's."""

    def __init__(self, tokenizer: Any, reject: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.reject = reject
        self.seen: list[str] = []

    def __call__(self, text: str, **kwargs: Any) -> Any:
        self.seen.append(text)
        if self.reject is not None and self.reject in text:
            raise TypeError(f"injected tokenizer failure (text contains {self.reject!r})")
        return self.tokenizer(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)
