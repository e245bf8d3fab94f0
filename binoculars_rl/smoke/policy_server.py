"""An OpenAI-compatible policy server that main.py starts and stops itself.

`vllm` when it is installed and a GPU is visible, otherwise `transformers serve` (a maintained server that runs on
CPU; needs `transformers[serving]`). Either way the server runs as a child process on 127.0.0.1 and a free port,
its output goes to a log file, and it is stopped (its whole process group) when the block ends, also on errors
and Ctrl-C. `transformers serve` pins itself to the model it was started with, so requests must name the model
exactly as given here; `vllm serve` is started with the same `--served-model-name`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from binoculars_rl.smoke.errors import SmokeError

Backend = Literal["auto", "vllm", "transformers"]


@dataclass(frozen=True)
class PolicyServer:
    base_url: str
    """OpenAI API root, e.g. http://127.0.0.1:8000/v1."""
    model: str
    """The name requests must use."""
    backend: str
    """`vllm`, `transformers serve`, or `external`."""
    log_path: Path | None = None


def external_server(base_url: str, model: str) -> PolicyServer:
    return PolicyServer(base_url=base_url.rstrip("/"), model=model, backend="external")


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _executable(name: str) -> str | None:
    """A console script of this interpreter's environment first, then one on PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


def choose_backend(requested: Backend) -> Literal["vllm", "transformers"]:
    if requested != "auto":
        return requested
    return "vllm" if _executable("vllm") is not None and gpu_available() else "transformers"


def server_command(
    backend: Literal["vllm", "transformers"],
    model: str,
    port: int,
    *,
    device: str | None,
    gpu_memory_utilization: float,
    max_model_len: int | None,
) -> list[str]:
    if backend == "vllm":
        executable = _executable("vllm")
        if executable is None:
            raise SmokeError(
                "--policy-backend vllm: the `vllm` command is not installed (`uv pip install vllm`)"
            )
        command = [executable, "serve", model, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--served-model-name", model, "--gpu-memory-utilization", str(gpu_memory_utilization)]
        if max_model_len is not None:
            command += ["--max-model-len", str(max_model_len)]
        return command
    executable = _executable("transformers")
    if executable is None:
        raise SmokeError(
            "the `transformers` command is not installed; `uv pip install 'transformers[serving]'`"
        )
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:
        raise SmokeError(
            f"the embedded CPU server needs `transformers serve` from transformers >= 5 (installed: "
            f"{transformers.__version__}); upgrade it, or start a server yourself and pass --base-url"
        )
    command = [executable, "serve", model, "--host", "127.0.0.1", "--port", str(port)]
    return command + ["--device", device or "auto", "--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_server(
    model: str,
    *,
    backend: Backend = "auto",
    log_path: Path,
    device: str | None = None,
    startup_timeout_s: float = 900.0,
    gpu_memory_utilization: float = 0.5,
    max_model_len: int | None = 4096,
) -> Iterator[PolicyServer]:
    """Start a policy server for `model`, wait until it answers `/health`, yield it, stop it."""
    chosen = choose_backend(backend)
    port = free_port()
    command = server_command(
        chosen,
        model,
        port,
        device=device,
        gpu_memory_utilization=gpu_memory_utilization,
        max_model_len=max_model_len,
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:  # a resumed run adds to the log
        # Own process group: stopping the server also stops the workers it spawns.
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    name = "vllm" if chosen == "vllm" else "transformers serve"
    server = PolicyServer(f"http://127.0.0.1:{port}/v1", model, name, log_path)
    try:
        _wait_until_healthy(process, f"http://127.0.0.1:{port}/health", name, log_path, startup_timeout_s)
        yield server
    finally:
        _stop(process)


def _wait_until_healthy(
    process: subprocess.Popen, health_url: str, name: str, log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SmokeError(
                f"the embedded {name} policy server exited with code {process.returncode} before it was ready. "
                f"Its log ({log_path}) ends with:\n{_tail(log_path)}"
            )
        try:
            with urllib.request.urlopen(health_url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SmokeError(
        f"the embedded {name} policy server was not ready after {timeout_s:.0f} s "
        f"(--server-startup-timeout); its log: {log_path}"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])
