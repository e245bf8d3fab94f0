"""Wire format of the Binoculars scoring service (`binoculars.serve`), shared by the server and its client.

    POST /score   {"texts": ["...", ...]}
              ->  {"results": [{"score": 0.93, "log_ppl": 2.1, "x_ppl": 2.26, "num_tokens": 87,
                                "scored_chars": 412, "error": null,
                                "panel": {"fast_detectgpt": 1.3, "log_rank": 1.1, "log_likelihood": -2.1,
                                          "entropy": 2.4}}, ...]}

One result per text, in request order; `panel` holds the other detectors' criteria (`binoculars.panel`), null
from a scorer run without the panel. JSON has no NaN: a score, log-ppl or x-ppl that is not a finite number
(NaN for texts under 2 tokens) is sent as `null` and read back as NaN by `ScoreResponse.to_details()`.
Requests are checked before they reach a batch (a bad request must not fail other clients' requests): a non-empty
list of at most `MAX_TEXTS_PER_REQUEST` strings, each at most `MAX_TEXT_CHARS` characters of valid Unicode.

A service started with an API key (`BINOCULARS_API_KEY`) answers 401 to any request without it in the
`X-API-Key` header; the client sends `$BINOCULARS_API_KEY`. `GET /info` names a model given as a local directory
by `public_model_name` (its basename and a fingerprint of the path string, not the path), so a client that knows
the string it expects checks it with `ServiceInfo.serves`.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from binoculars.detector import ScoreDetails
from binoculars.panel import PanelScores

SCORE_PATH = "/score"
HEALTH_PATH = "/health"
INFO_PATH = "/info"
MAX_TEXTS_PER_REQUEST = 1024
MAX_TEXT_CHARS = 200_000  # far above any max_token_observed; bounds tokenizer work per text
API_KEY_ENV = "BINOCULARS_API_KEY"
API_KEY_HEADER = "X-API-Key"

# `name` or `org/name` of letters, digits, `_`, `.`, `-`: what the hub accepts, and never an absolute path.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def public_model_name(name: str) -> str:
    """`name` as `/info` shows it: a hub id as it is; anything else (a local path) as
    `local:<basename>:<sha256 of the string, 12 hex digits>`, which reveals no directory but is the same wherever
    the same string is configured (computed from the string alone: the path need not exist on the client)."""
    if _HUB_ID.fullmatch(name) and ".." not in name:
        return name
    basename = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return f"local:{basename}:{hashlib.sha256(name.encode()).hexdigest()[:12]}"


# pydantic rejects strings holding lone surrogates (valid JSON escapes such as "\ud800" that no tokenizer can
# encode) when it checks their length, in JSON and in Python mode (tested).
Text = Annotated[StrictStr, StringConstraints(max_length=MAX_TEXT_CHARS)]


class ScoreRequest(BaseModel):
    """Texts to score."""

    model_config = ConfigDict(extra="forbid")

    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS_PER_REQUEST)


class PanelScore(BaseModel):
    """The panel criteria of one text (`binoculars.panel.PanelScores`); `null` where not finite."""

    fast_detectgpt: float | None
    log_rank: float | None
    log_likelihood: float | None
    entropy: float | None


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else value


class TextScore(BaseModel):
    """One text's Binoculars score and its parts; `null` where the value is not finite (NaN)."""

    score: float | None
    log_ppl: float | None
    x_ppl: float | None
    num_tokens: int
    scored_chars: int | None = None
    error: str | None = None
    panel: PanelScore | None = None

    @classmethod
    def from_details(cls, details: ScoreDetails) -> TextScore:
        panel = details.panel
        return cls(
            score=_finite_or_none(details.score),
            log_ppl=_finite_or_none(details.log_ppl),
            x_ppl=_finite_or_none(details.x_ppl),
            num_tokens=details.num_tokens,
            scored_chars=details.scored_chars,
            error=details.error,
            panel=None
            if panel is None
            else PanelScore(**{k: _finite_or_none(v) for k, v in panel.as_dict().items()}),
        )

    def to_details(self) -> ScoreDetails:
        panel = self.panel
        return ScoreDetails(
            _nan_if_none(self.score),
            _nan_if_none(self.log_ppl),
            _nan_if_none(self.x_ppl),
            self.num_tokens,
            self.scored_chars,
            self.error,
            None
            if panel is None
            else PanelScores(**{k: _nan_if_none(v) for k, v in panel.model_dump().items()}),
        )


class ScoreResponse(BaseModel):
    """One result per requested text, in request order."""

    results: list[TextScore]

    def to_details(self) -> list[ScoreDetails]:
        return [result.to_details() for result in self.results]


class ServiceInfo(BaseModel):
    """What a running service scores with (`GET /info` -> {"model": ServiceInfo, "server": {...}})."""

    observer: str
    performer: str
    max_token_observed: int
    dtype: str | None
    max_texts_per_request: int = MAX_TEXTS_PER_REQUEST

    def serves(self, observer: str, performer: str, max_token_observed: int) -> bool:
        """Whether this service scores with the pair configured as these strings (shown as they are, with
        `--info-paths`, or as `public_model_name`)."""
        return (
            self.observer in (observer, public_model_name(observer))
            and self.performer in (performer, public_model_name(performer))
            and self.max_token_observed == max_token_observed
        )
