"""Rewards from a shared Binoculars scoring service (`python -m binoculars.serve`) instead of an in-process scorer.

Used when `RewardConfig.scorer_url` is set: this process then loads no model. One client per configuration,
created on first use after checking that the service scores with the configured observer, performer and
`max_token_observed` (otherwise the rewards would silently come from another detector). Errors are loud:
`binoculars.client.ScoringServiceUnreachable` after the bounded retries, never a default reward.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from binoculars.client import ScoringClient


@dataclass(frozen=True)
class RemoteScorerSpec:
    url: str
    timeout_s: float
    max_retries: int
    observer: str
    performer: str
    max_token_observed: int


_clients: dict[RemoteScorerSpec, ScoringClient] = {}
_creating = threading.Lock()


def get_remote_scorer(spec: RemoteScorerSpec) -> ScoringClient:
    """The process's client for `spec` (an object with `.score_details(texts)`), checked against the service."""
    if (client := _clients.get(spec)) is not None:
        return client
    with _creating:
        if spec not in _clients:
            _clients[spec] = _checked_client(spec)
        return _clients[spec]


def _checked_client(spec: RemoteScorerSpec) -> ScoringClient:
    from binoculars.client import ScoringClient

    client = ScoringClient(spec.url, timeout_s=spec.timeout_s, max_retries=spec.max_retries)
    try:
        info = client.info()
        if not info.serves(spec.observer, spec.performer, spec.max_token_observed):
            raise ValueError(
                f"the scoring service at {spec.url} serves observer={info.observer!r}, "
                f"performer={info.performer!r}, max_token_observed={info.max_token_observed}, but this "
                f"environment is configured with observer_model={spec.observer!r}, "
                f"performer_model={spec.performer!r}, max_token_observed={spec.max_token_observed}; "
                f"set them to the service's values (the same strings) or start the service with these"
            )
    except BaseException:
        client.close()
        raise
    return client
