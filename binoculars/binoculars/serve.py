"""The Binoculars scoring service: one scorer (or a few replicas) shared by many clients, served by LitServe.

    python -m binoculars.serve --observer Qwen/Qwen2.5-0.5B --performer Qwen/Qwen2.5-0.5B-Instruct \
        --accelerator cuda --devices 0 --port 8000
    curl -s localhost:8000/health                                   # "ok" once every replica has loaded
    curl -s localhost:8000/score -d '{"texts": ["Once upon a time..."]}'

LitServe runs one inference worker process per replica (`--devices` x `--workers-per-device`); each loads the
observer/performer pair once. Concurrent requests are merged into batches of up to `--max-batch-requests`
requests (waiting at most `--batch-timeout` seconds for a batch to fill); the merged texts are scored by the
library's `Binoculars.score_details` in forward passes of `--batch-size` texts, so every number is the one the
in-process scorer gives. Requests are validated (see `binoculars.service_schema`) before they are queued, so a
bad request gets a 4xx and never fails other clients' batch.

`--devices` on GPUs: `auto` (all visible), a count (`2`: cuda:0 and cuda:1), or replicas separated by commas,
each one GPU or `OBSERVER+PERFORMER` GPUs (`0,1`: two replicas; `0+1`: one replica, observer on cuda:0 and
performer on cuda:1).
"""

# No `from __future__ import annotations`: LitServe reads decode_request's annotation as the request model.
import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass

import litserve as ls
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError

from binoculars.defaults import DEFAULT_OBSERVER, DEFAULT_PERFORMER
from binoculars.detector import ModelLoadError, ScoreDetails
from binoculars.service_schema import (
    HEALTH_PATH,
    INFO_PATH,
    SCORE_PATH,
    ScoreRequest,
    ScoreResponse,
    ServiceInfo,
    TextScore,
)

DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ServiceSettings:
    """What every replica loads (picklable: LitServe starts replicas in spawned processes)."""

    observer: str = DEFAULT_OBSERVER
    performer: str = DEFAULT_PERFORMER
    max_token_observed: int = 512
    dtype: str | None = None
    """None: bf16 on GPU, fp32 on CPU (the library's default)."""
    batch_size: int = 32
    """Texts per forward pass."""

    def info(self) -> ServiceInfo:
        return ServiceInfo(
            observer=self.observer,
            performer=self.performer,
            max_token_observed=self.max_token_observed,
            dtype=self.dtype,
        )


class BinocularsAPI(ls.LitAPI):
    """LitServe API: decode a validated `ScoreRequest`, score a batch of requests at once, split the results."""

    def __init__(self, settings: ServiceSettings, max_batch_requests: int = 32, batch_timeout: float = 0.01):
        if max_batch_requests < 2:
            raise ValueError(
                f"max_batch_requests must be >= 2 (requests merged per batch), got {max_batch_requests}"
            )
        if not batch_timeout > 0:
            # LitServe's batch collector polls its queue without sleeping when the timeout is 0.
            raise ValueError(f"batch_timeout must be > 0 seconds, got {batch_timeout}")
        super().__init__(max_batch_size=max_batch_requests, batch_timeout=batch_timeout, api_path=SCORE_PATH)
        self.settings = settings

    def setup(self, device: str | list[str]) -> None:
        from binoculars.detector import Binoculars
        from binoculars.utils import FALCON_7B_THRESHOLDS

        observer_device, performer_device = (device, device) if isinstance(device, str) else device
        self.scorer = Binoculars(
            self.settings.observer,
            self.settings.performer,
            max_token_observed=self.settings.max_token_observed,
            observer_device=observer_device,
            performer_device=performer_device,
            dtype=self.settings.dtype,
            batch_size=self.settings.batch_size,
            # The service returns scores and never calls predict(): the thresholds are unused (and this silences
            # the detector's "uncalibrated thresholds" warning).
            thresholds=FALCON_7B_THRESHOLDS,
        )

    def decode_request(self, request: ScoreRequest) -> list[str]:
        return request.texts

    def predict(self, requests: list[list[str]]) -> list[list[ScoreDetails]]:
        details = self.scorer.score_details([text for texts in requests for text in texts])
        per_request, start = [], 0
        for texts in requests:
            per_request.append(details[start : start + len(texts)])
            start += len(texts)
        return per_request

    def encode_response(self, details: list[ScoreDetails]) -> ScoreResponse:
        return ScoreResponse(results=[TextScore.from_details(d) for d in details])


def parse_devices(devices: str) -> str | int | list[int] | list[list[int]]:
    """`auto`, a count, or comma-separated replicas, each `GPU` or `OBSERVER_GPU+PERFORMER_GPU`."""
    if devices == "auto":
        return "auto"
    if devices.isdigit():
        return int(devices)
    try:
        replicas = [[int(gpu) for gpu in replica.split("+")] for replica in devices.split(",")]
    except ValueError:
        raise ValueError(f"--devices must be auto, a count, or e.g. 0,1 or 0+1; got {devices!r}") from None
    if any(len(gpus) > 2 for gpus in replicas):
        raise ValueError(f"a replica has at most two GPUs (observer+performer); got {devices!r}")
    if all(len(gpus) == 1 for gpus in replicas):
        return [gpus[0] for gpus in replicas]
    if any(len(gpus) == 1 for gpus in replicas):
        raise ValueError(f"give every replica the same number of GPUs (1 or 2); got {devices!r}")
    return replicas


def build_server(
    settings: ServiceSettings,
    *,
    accelerator: str = "auto",
    devices: str | int | list = "auto",
    workers_per_device: int = 1,
    max_batch_requests: int = 32,
    batch_timeout: float = 0.01,
    request_timeout: float = 120.0,
    max_payload_mb: float = 32.0,
) -> ls.LitServer:
    """A LitServer for `settings` (start it with `.run(host=..., port=...)`)."""
    _disable_half_installed_mcp()
    api = BinocularsAPI(settings, max_batch_requests=max_batch_requests, batch_timeout=batch_timeout)
    server = ls.LitServer(
        api,
        accelerator=accelerator,
        devices=devices,
        workers_per_device=workers_per_device,
        timeout=request_timeout,
        healthcheck_path=HEALTH_PATH,
        info_path=INFO_PATH,
        model_metadata=settings.info().model_dump(),
        max_payload_size=int(max_payload_mb * 2**20),
        fast_queue=True,  # ZeroMQ between the HTTP server and the replicas instead of multiprocessing queues
    )
    server.app.add_exception_handler(RequestValidationError, _validation_error_response)
    return server


async def _validation_error_response(request: Request, error: RequestValidationError) -> Response:
    """FastAPI's 422 with ASCII-escaped JSON: its default handler echoes the input and fails (500) on a text
    holding a lone surrogate, which UTF-8 cannot encode."""
    return Response(
        json.dumps({"detail": error.errors()}, default=str), status_code=422, media_type="application/json"
    )


def _disable_half_installed_mcp() -> None:
    """LitServe 0.2.19 mounts its MCP server when the `mcp` package is installed (verifiers depends on it) but
    imports that server's classes only when `fastmcp` is installed too; with `mcp` alone, `run()` dies with
    NameError: 'MCPServer'. The service exposes no MCP tools, so the integration is switched off in that case."""
    import litserve.mcp
    import litserve.server

    if not getattr(litserve.mcp, "_is_mcp_installed", True):
        litserve.server._MCP_AVAILABLE = False


def check_model_pair(settings: ServiceSettings) -> None:
    """Fail fast, before any worker starts, on a bad path or mismatched tokenizers (tokenizers load in ~1 s)."""
    from binoculars.detector import load_tokenizer
    from binoculars.utils import check_tokenizers_consistent

    check_tokenizers_consistent(
        load_tokenizer(settings.observer, "observer tokenizer"),
        load_tokenizer(settings.performer, "performer tokenizer"),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m binoculars.serve",
        description="Serve Binoculars scores over HTTP (POST /score, GET /health, GET /info).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--observer", default=DEFAULT_OBSERVER, help="observer model (hub id or local directory)"
    )
    parser.add_argument("--performer", default=DEFAULT_PERFORMER, help="performer model; same tokenizer")
    parser.add_argument("--max-token-observed", type=int, default=512, help="texts are truncated to this")
    parser.add_argument("--dtype", choices=DTYPES, default="auto", help="auto: bf16 on GPU, fp32 on CPU")
    parser.add_argument("--accelerator", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--devices", default="auto", help="GPUs: auto, a count, or replicas like 0,1 (two) or 0+1 (obs+perf)"
    )
    parser.add_argument("--workers-per-device", type=int, default=1, help="replicas per device (or per CPU)")
    parser.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    parser.add_argument("--max-batch-requests", type=int, default=32, help="requests merged into one batch")
    parser.add_argument("--batch-timeout", type=float, default=0.01, help="seconds a batch waits to fill")
    parser.add_argument(
        "--request-timeout", type=float, default=120.0, help="seconds a request may wait queued"
    )
    parser.add_argument("--max-payload-mb", type=float, default=32.0, help="larger request bodies get 413")
    parser.add_argument("--host", default="127.0.0.1", help="127.0.0.1, 0.0.0.0 (all interfaces) or ::")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = ServiceSettings(
        observer=args.observer,
        performer=args.performer,
        max_token_observed=args.max_token_observed,
        dtype=None if args.dtype == "auto" else args.dtype,
        batch_size=args.batch_size,
    )
    try:
        if args.max_token_observed < 2 or args.batch_size < 1 or args.workers_per_device < 1:
            raise ValueError("--max-token-observed must be >= 2, --batch-size and --workers-per-device >= 1")
        check_model_pair(settings)
        server = build_server(
            settings,
            accelerator=args.accelerator,
            devices=parse_devices(args.devices),
            workers_per_device=args.workers_per_device,
            max_batch_requests=args.max_batch_requests,
            batch_timeout=args.batch_timeout,
            request_timeout=args.request_timeout,
            max_payload_mb=args.max_payload_mb,
        )
    except (ValueError, ModelLoadError) as error:
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    logging.getLogger(__name__).info("serving %s", asdict(settings))
    try:
        server.run(
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            generate_client_file=False,
            num_api_servers=None,
        )
    except (
        RuntimeError
    ) as error:  # LitServe: "One or more workers failed to start" (their traceback is above)
        print(f"error: {error}; see the replica's traceback above".splitlines()[0], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
