"""The scoring service with injected faults, for tests of its failure handling: the same CLI as
`python -m binoculars.serve`, but a request holding a text with `FAIL_MARKER` makes scoring raise (as a text the
tokenizer rejects would), and one holding `SLOW_MARKER` takes `SLOW_S` seconds (to kill a replica mid-request).

    ServiceProcess(args, module="binoculars.testing.faulty_service")
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from binoculars.detector import Binoculars, ScoreDetails
from binoculars.serve import BinocularsAPI, main

FAIL_MARKER = "<<injected scoring failure>>"
SLOW_MARKER = "<<injected slow scoring>>"
SLOW_S = 60.0


class InjectedScoringFailure(RuntimeError):
    """Raised for a text holding `FAIL_MARKER`."""


class FaultyScorer:
    """Wraps a `Binoculars` scorer: fails or stalls a call whose texts hold a marker, else scores as it does."""

    def __init__(self, scorer: Binoculars) -> None:
        self.scorer = scorer

    def score_details(self, texts: Sequence[str]) -> list[ScoreDetails]:
        if any(FAIL_MARKER in text for text in texts):
            raise InjectedScoringFailure(f"a text holds {FAIL_MARKER!r}")
        if any(SLOW_MARKER in text for text in texts):
            time.sleep(SLOW_S)
        return self.scorer.score_details(texts)


class FaultyBinocularsAPI(BinocularsAPI):
    def setup(self, device: str | list[str]) -> None:
        super().setup(device)
        self.scorer = FaultyScorer(self.scorer)


if __name__ == "__main__":
    # Imported by its module name, so that the spawned replicas can unpickle the API class.
    from binoculars.testing.faulty_service import FaultyBinocularsAPI as ImportedAPI

    sys.exit(main(api_class=ImportedAPI))
