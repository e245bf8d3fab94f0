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
bad request gets a 4xx and never fails other clients' batch; should scoring still fail inside a batch, each of its
requests is scored alone and only the failing one gets a 500 naming the error.

It listens on 127.0.0.1 unless told otherwise, and with `BINOCULARS_API_KEY` set (or LitServe's
`LIT_SERVER_API_KEY`) every endpoint needs that key in the `X-API-Key` header. A replica that dies stops the
service (exit code 1, one `error:` line); requests in flight then get 503 at once instead of hanging.

`--devices` on GPUs: `auto` (all visible), a count (`2`: cuda:0 and cuda:1), or replicas separated by commas,
each one GPU or `OBSERVER+PERFORMER` GPUs (`0,1`: two replicas; `0+1`: one replica, observer on cuda:0 and
performer on cuda:1).
"""

# No `from __future__ import annotations`: LitServe reads decode_request's annotation as the request model.
import argparse
import asyncio
import contextlib
import hmac
import json
import logging
import os
import signal
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import litserve as ls
from fastapi import Header, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from binoculars.defaults import DEFAULT_OBSERVER, DEFAULT_PERFORMER
from binoculars.detector import ModelLoadError, ScoreDetails
from binoculars.service_schema import (
    API_KEY_ENV,
    API_KEY_HEADER,
    HEALTH_PATH,
    INFO_PATH,
    SCORE_PATH,
    ScoreRequest,
    ScoreResponse,
    ServiceInfo,
    TextScore,
    public_model_name,
)

DTYPES = ("auto", "float32", "bfloat16", "float16")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds
PORTS = range(1024, 65536)  # what LitServe binds
LITSERVE_API_KEY_ENV = "LIT_SERVER_API_KEY"
logger = logging.getLogger(__name__)


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

    def info(self, show_paths: bool = False) -> ServiceInfo:
        """What `/info` shows: local model directories as `public_model_name` unless `show_paths`."""
        shown = (lambda name: name) if show_paths else public_model_name
        return ServiceInfo(
            observer=shown(self.observer),
            performer=shown(self.performer),
            max_token_observed=self.max_token_observed,
            dtype=self.dtype,
        )


@dataclass(frozen=True)
class ScoringFailure:
    """A request of a batch that could not be scored (the others of the batch were)."""

    message: str


class BinocularsAPI(ls.LitAPI):
    """LitServe API: decode a validated `ScoreRequest`, score a batch of requests at once, split the results."""

    def __init__(
        self,
        settings: ServiceSettings,
        max_batch_requests: int = 32,
        batch_timeout: float = 0.01,
        api_key: str | None = None,
    ):
        if max_batch_requests < 2:
            raise ValueError(
                f"max_batch_requests must be >= 2 (requests merged per batch), got {max_batch_requests}"
            )
        if not batch_timeout > 0:
            # LitServe's batch collector polls its queue without sleeping when the timeout is 0.
            raise ValueError(f"batch_timeout must be > 0 seconds, got {batch_timeout}")
        super().__init__(max_batch_size=max_batch_requests, batch_timeout=batch_timeout, api_path=SCORE_PATH)
        self.settings = settings
        self.api_key = api_key

    def authorize(self, x_api_key: str | None = Header(default=None)) -> None:
        """LitServe's auth hook (a FastAPI dependency of every endpoint): 401 unless the service has no key or the
        request's `X-API-Key` header holds it."""
        if self.api_key is None:
            return
        if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), self.api_key.encode()):
            raise HTTPException(
                status_code=401,
                detail=f"missing or wrong {API_KEY_HEADER} header: this service needs the API key it was started "
                f"with; binoculars.client.ScoringClient sends ${API_KEY_ENV} (or its api_key argument)",
            )

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

    def predict(self, requests: list[list[str]]) -> list[list[ScoreDetails] | ScoringFailure]:
        """All requests' texts in one `score_details` call; if that fails, each request alone, so that only the
        request that fails gets an error."""
        try:
            details = self.scorer.score_details([text for texts in requests for text in texts])
        except Exception:
            if len(requests) == 1:
                return [self._score_alone(requests[0])]
            logger.exception("scoring a batch of %d requests failed; scoring each alone", len(requests))
            return [self._score_alone(texts) for texts in requests]
        per_request, start = [], 0
        for texts in requests:
            per_request.append(details[start : start + len(texts)])
            start += len(texts)
        return per_request

    def _score_alone(self, texts: list[str]) -> list[ScoreDetails] | ScoringFailure:
        try:
            return self.scorer.score_details(texts)
        except Exception as error:
            logger.exception("scoring a request of %d texts failed", len(texts))
            return ScoringFailure(
                f"scoring this request ({len(texts)} texts) failed: {type(error).__name__}: {error}"
            )

    def encode_response(self, details: list[ScoreDetails] | ScoringFailure) -> ScoreResponse:
        # The annotation is the endpoint's response model for LitServe; a JSONResponse is passed through as it is.
        if isinstance(details, ScoringFailure):  # only this request's answer; its batch's others are scored
            return JSONResponse({"detail": details.message}, status_code=500)
        return ScoreResponse(results=[TextScore.from_details(d) for d in details])


class BinocularsServer(ls.LitServer):
    """LitServer whose `run()` listens on loopback unless told otherwise (LitServe's default is 0.0.0.0) and
    checks the address first."""

    def run(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, **kwargs) -> None:
        check_listen_address(host, port)
        kwargs.setdefault("generate_client_file", False)
        super().run(host=host, port=port, **kwargs)


class ReplicaDeathGuard:
    """ASGI middleware (it runs in the HTTP server processes): a `/score` request still waiting when a scoring
    replica has died gets 503 at once. LitServe then stops the service, but its HTTP server would hold the
    request until its 30 s shutdown grace period ends and close the connection without an answer."""

    def __init__(self, app, server: ls.LitServer, poll_s: float = 0.25) -> None:
        self.app = app
        self.server = server
        self.poll_s = poll_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != SCORE_PATH:
            await self.app(scope, receive, send)
            return
        answered = False

        async def send_and_note(message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, send_and_note))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=self.poll_s)
                if not task.done() and not answered and (dead := dead_replicas(self.server)):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    detail = (
                        f"scoring replica {dead} died while this request was waiting; the service is stopping"
                    )
                    await JSONResponse({"detail": detail}, status_code=503)(scope, receive, send)
                    return
            task.result()
        finally:
            task.cancel()


def dead_replicas(server: ls.LitServer) -> str:
    """The replicas (LitServe's inference workers) that have exited, as `pid N, ...`; '' when none has."""
    pids = [worker.pid for worker in getattr(server, "inference_workers", []) if worker.pid is not None]
    return ", ".join(f"pid {pid}" for pid in pids if _process_gone(pid))


def _process_gone(pid: int) -> bool:
    """True for a process that has exited (a zombie not yet reaped by LitServe's monitor included); works from any
    process, unlike `multiprocessing.Process.is_alive` (parent only)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    with contextlib.suppress(OSError, IndexError):  # Linux: the state letter after the command's ")"
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    return False


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
    api_key: str | None = None,
    info_paths: bool = False,
    api_class: type[BinocularsAPI] = BinocularsAPI,
) -> BinocularsServer:
    """A server for `settings`; start it with `.run()` (127.0.0.1:8000) or `.run(host=..., port=...)`.
    `api_key`: None takes `api_key_from_environment()` (no key if that is None too). `info_paths`: `/info` shows
    the model strings as given, local paths included. `api_class`: a `BinocularsAPI` subclass (tests)."""
    _disable_half_installed_mcp()
    api = api_class(
        settings,
        max_batch_requests=max_batch_requests,
        batch_timeout=batch_timeout,
        api_key=api_key if api_key is not None else api_key_from_environment(),
    )
    server = BinocularsServer(
        api,
        accelerator=accelerator,
        devices=devices,
        workers_per_device=workers_per_device,
        timeout=request_timeout,
        healthcheck_path=HEALTH_PATH,
        info_path=INFO_PATH,
        model_metadata=settings.info(show_paths=info_paths).model_dump(),
        max_payload_size=int(max_payload_mb * 2**20),
        fast_queue=True,  # ZeroMQ between the HTTP server and the replicas instead of multiprocessing queues
    )
    server.app.add_exception_handler(RequestValidationError, _validation_error_response)
    server.app.add_middleware(ReplicaDeathGuard, server=server)
    return server


def api_key_from_environment() -> str | None:
    """`$BINOCULARS_API_KEY`, else LitServe's `$LIT_SERVER_API_KEY` (which LitServe itself would ignore here: the
    API's `authorize` replaces its check); None when neither is set."""
    keys = {name: os.environ.get(name) for name in (API_KEY_ENV, LITSERVE_API_KEY_ENV)}
    given = {name: key for name, key in keys.items() if key is not None}
    if any(not key for key in given.values()):
        raise ValueError(f"{' and '.join(given)} is set but empty: give the API key, or unset it for no key")
    if len(set(given.values())) > 1:
        raise ValueError(f"{API_KEY_ENV} and {LITSERVE_API_KEY_ENV} hold different keys: set only one")
    return next(iter(given.values()), None)


def check_listen_address(host: str, port: int) -> None:
    if host not in HOSTS:
        raise ValueError(f"--host {host} is not one LitServe can bind: use one of {', '.join(HOSTS)}")
    if port not in PORTS:
        raise ValueError(
            f"--port {port} is out of range: use a port from {PORTS.start} to {PORTS.stop - 1} (LitServe binds "
            f"no privileged port)"
        )


def check_accelerator(accelerator: str, devices: str | int | list) -> None:
    """`--accelerator cuda` needs a visible GPU for every device named (LitServe's own error is about
    num_api_servers)."""
    if accelerator != "cuda":
        return
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        raise ValueError(
            "--accelerator cuda, but torch sees no CUDA GPU (torch.cuda.device_count() is 0): use --accelerator "
            "cpu (or auto), or check the NVIDIA driver and CUDA_VISIBLE_DEVICES"
        )
    if isinstance(devices, int):
        wanted = devices
    elif isinstance(devices, list):
        wanted = 1 + max(
            gpu for replica in devices for gpu in (replica if isinstance(replica, list) else [replica])
        )
    else:
        return
    if wanted > count:
        raise ValueError(
            f"--devices asks for {wanted} GPUs, but torch sees {count}: name GPUs 0 to {count - 1}"
        )


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
    parser.add_argument("--host", default=DEFAULT_HOST, help="127.0.0.1, 0.0.0.0 (all interfaces) or ::")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="1024 to 65535")
    parser.add_argument(
        "--info-paths",
        action="store_true",
        help="GET /info shows local model paths as given (default: basename and fingerprint only)",
    )
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    parser.epilog = (
        f"API key: set {API_KEY_ENV} (or {LITSERVE_API_KEY_ENV}) in the environment; every request must then send "
        f"it in the {API_KEY_HEADER} header (the Python client sends ${API_KEY_ENV})."
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, api_class: type[BinocularsAPI] = BinocularsAPI) -> int:
    """The CLI: 2 and one `error:` line on bad usage, 1 when a replica fails to start or dies."""
    args = parse_args(argv)
    try:
        server = _server_from_args(args, api_class)
    except (ValueError, ModelLoadError) as error:
        print(f"error: {error}".splitlines()[0], file=sys.stderr)
        return 2
    return _run(server, args)


def _server_from_args(args: argparse.Namespace, api_class: type[BinocularsAPI]) -> BinocularsServer:
    if args.max_token_observed < 2 or args.batch_size < 1 or args.workers_per_device < 1:
        raise ValueError("--max-token-observed must be >= 2, --batch-size and --workers-per-device >= 1")
    check_listen_address(args.host, args.port)
    devices = parse_devices(args.devices)
    check_accelerator(args.accelerator, devices)
    settings = ServiceSettings(
        observer=args.observer,
        performer=args.performer,
        max_token_observed=args.max_token_observed,
        dtype=None if args.dtype == "auto" else args.dtype,
        batch_size=args.batch_size,
    )
    check_model_pair(settings)
    logger.info("serving %s", asdict(settings))
    return build_server(
        settings,
        accelerator=args.accelerator,
        devices=devices,
        workers_per_device=args.workers_per_device,
        max_batch_requests=args.max_batch_requests,
        batch_timeout=args.batch_timeout,
        request_timeout=args.request_timeout,
        max_payload_mb=args.max_payload_mb,
        info_paths=args.info_paths,
        api_class=api_class,
    )


def _run(server: BinocularsServer, args: argparse.Namespace) -> int:
    try:
        server.run(host=args.host, port=args.port, log_level=args.log_level, num_api_servers=None)
    except (
        RuntimeError
    ) as error:  # LitServe: "One or more workers failed to start" (their traceback is above)
        print(f"error: {error}; see the replica's traceback above".splitlines()[0], file=sys.stderr)
        return 1
    except EOFError:
        # LitServe's monitor saw a replica exit and shut everything down, its process manager included; run()
        # then fails waiting on that manager.
        print(
            f"error: scoring replica {_exited_replicas(server)} died, so the service stopped (requests in flight "
            f"got 503); see the log above, then restart it",
            file=sys.stderr,
        )
        return 1
    return 0


def _exited_replicas(server: BinocularsServer) -> str:
    """The replicas that exited by themselves (not by the shutdown's SIGTERM), with how they ended."""

    def how(exitcode: int) -> str:
        return f"killed by {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exit code {exitcode}"

    ended = [w for w in server.inference_workers if w.exitcode not in (None, -signal.SIGTERM)]
    return ", ".join(f"{w.name} (pid {w.pid}, {how(w.exitcode)})" for w in ended) or "(unknown)"


if __name__ == "__main__":
    sys.exit(main())
