"""HTTP client of the Binoculars scoring service (`python -m binoculars.serve`), a drop-in for `score_details`.

    client = ScoringClient("http://127.0.0.1:8000", timeout_s=120, max_retries=3)
    client.score_details(["Once upon a time..."])  # -> [ScoreDetails(score=..., ...)], NaN where the service sent null

Failures are loud: a request that times out, cannot connect, or finds the service busy or starting (502/503/504)
is retried `max_retries` times with exponential backoff, then `ScoringServiceUnreachable` is raised; any other
error answer raises `ScoringServiceError` with the service's message at once. Never a default score.
The API key of a service started with one is taken from `$BINOCULARS_API_KEY` unless given as `api_key`.
Needs `httpx` (the `serve` extra).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from binoculars.detector import ScoreDetails
from binoculars.service_schema import (
    API_KEY_ENV,
    API_KEY_HEADER,
    HEALTH_PATH,
    INFO_PATH,
    MAX_TEXTS_PER_REQUEST,
    SCORE_PATH,
    ScoreRequest,
    ScoreResponse,
    ServiceInfo,
)

RETRIED_STATUSES = frozenset({502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})


class ScoringServiceError(RuntimeError):
    """The scoring service answered with an error, or with something that is not a valid answer."""


class ScoringServiceUnreachable(ScoringServiceError, ConnectionError):
    """No valid answer from the scoring service after every retry (down, unreachable, busy or too slow)."""


class ScoringClient:
    """Scores texts on a running service. Thread-safe; one connection pool per client."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        api_key: str | None = None,
        transport=None,
    ) -> None:
        """`api_key`: sent in the `X-API-Key` header; None takes `$BINOCULARS_API_KEY`; no header when
        that is unset or the key is "".
        `transport`: an `httpx.BaseTransport` to use instead of the network (tests)."""
        try:
            import httpx
        except ImportError as error:
            raise ImportError(
                "the scoring-service client needs httpx: pip install 'binoculars-env[serve]' (or httpx)"
            ) from error
        if not timeout_s > 0 or not connect_timeout_s > 0 or max_retries < 0 or backoff_s < 0:
            raise ValueError(
                f"need timeout_s > 0, connect_timeout_s > 0, max_retries >= 0, backoff_s >= 0; got "
                f"{timeout_s}, {connect_timeout_s}, {max_retries}, {backoff_s}"
            )
        self.url = url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._httpx = httpx
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._client = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s)),
            headers={API_KEY_HEADER: api_key} if api_key else None,
            transport=transport,
        )

    def score_details(self, texts: Sequence[str]) -> list[ScoreDetails]:
        """Score, log-ppl, x-ppl and token count of each text, in input order (requests of at most
        `MAX_TEXTS_PER_REQUEST` texts)."""
        if isinstance(texts, str):
            raise TypeError("expected a sequence of strings, got one str")
        texts = list(texts)
        results: list[ScoreDetails] = []
        for start in range(0, len(texts), MAX_TEXTS_PER_REQUEST):
            chunk = texts[start : start + MAX_TEXTS_PER_REQUEST]
            body = ScoreRequest(texts=chunk).model_dump(mode="json")  # same checks as the service, locally
            response = ScoreResponse.model_validate(self._request("POST", SCORE_PATH, json=body))
            if len(response.results) != len(chunk):
                raise ScoringServiceError(
                    f"{self.url}{SCORE_PATH} returned {len(response.results)} results for {len(chunk)} texts"
                )
            results.extend(response.to_details())
        return results

    def info(self) -> ServiceInfo:
        """The model pair and settings the service scores with."""
        return ServiceInfo.model_validate(self._request("GET", INFO_PATH)["model"])

    def is_ready(self) -> bool:
        """True when every replica has loaded (one try, no retries)."""
        try:
            return self._client.get(HEALTH_PATH).status_code == 200
        except self._httpx.TransportError:
            return False

    def wait_until_ready(self, timeout_s: float, poll_s: float = 0.5) -> None:
        """Block until `/health` says ready; `ScoringServiceUnreachable` after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not self.is_ready():
            if time.monotonic() > deadline:
                raise ScoringServiceUnreachable(
                    f"scoring service at {self.url} not ready after {timeout_s} s"
                )
            time.sleep(poll_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs) -> dict:
        last_problem = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.request(method, path, **kwargs)
            except self._httpx.TransportError as error:  # connect/read timeouts, refused, dropped connections
                last_problem = f"{type(error).__name__}: {error}"
                continue
            if response.status_code in RETRIED_STATUSES:
                last_problem = f"HTTP {response.status_code}: {response.text[:300]}"
                continue
            if response.is_error:
                hint = (
                    f" (set {API_KEY_ENV} to the service's key)"
                    if response.status_code in AUTH_STATUSES
                    else ""
                )
                raise ScoringServiceError(
                    f"{method} {self.url}{path} failed with HTTP {response.status_code}{hint}: "
                    f"{response.text[:1000]}"
                )
            try:
                return response.json()
            except ValueError as error:
                raise ScoringServiceError(f"{method} {self.url}{path} returned non-JSON: {error}") from error
        raise ScoringServiceUnreachable(
            f"{method} {self.url}{path}: no answer after {self.max_retries + 1} attempts ({last_problem}). "
            f"Is the scoring service running? Start it with `python -m binoculars.serve --port ...` and check "
            f"`curl {self.url}{HEALTH_PATH}`."
        )
