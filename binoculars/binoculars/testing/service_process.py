"""Start the scoring service (`python -m binoculars.serve`) as a child process and stop it: for tests,
benchmarks and smoke runs that need a service on this machine.

    with ServiceProcess(["--observer", obs, "--performer", perf, "--accelerator", "cpu"]) as service:
        ScoringClient(service.url).score_details(["Once upon a time..."])

`api_key` starts it with that key (and no other: the caller's `BINOCULARS_API_KEY`/`LIT_SERVER_API_KEY` are not
passed on); `module` runs another entry point with the same CLI (`binoculars.testing.faulty_service`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """`python -m MODULE ARGS --host 127.0.0.1 --port <free>`, ready (all replicas loaded) on enter, stopped with
    its worker processes on exit. Its output goes to `log_path` (removed on exit)."""

    def __init__(
        self,
        args: list[str],
        *,
        ready_timeout_s: float = 180.0,
        port: int | None = None,
        api_key: str | None = None,
        module: str = "binoculars.serve",
    ) -> None:
        self.args = list(args)
        self.api_key = api_key
        self.module = module
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_timeout_s = ready_timeout_s
        log_fd, log_path = tempfile.mkstemp(prefix="binoculars-serve-", suffix=".log")
        os.close(log_fd)
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        from binoculars.client import ScoringClient

        command = [sys.executable, "-m", self.module, *self.args, "--host", "127.0.0.1"]
        command += ["--port", str(self.port)]
        with self.log_path.open("wb") as log:
            # Own session: on exit the service's whole process group (uvicorn, replicas) is stopped.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=self._environment()
            )
        deadline = time.monotonic() + self.ready_timeout_s
        with ScoringClient(self.url, timeout_s=5, api_key=self.api_key or "") as client:
            while not client.is_ready():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    state = (
                        f"exited with {self.process.returncode}"
                        if self.process.returncode is not None
                        else f"not ready after {self.ready_timeout_s} s"
                    )
                    raise RuntimeError(f"scoring service {state}; its log:\n{self.log_text()[-4000:]}")
                time.sleep(0.25)
        return self

    def _environment(self) -> dict[str, str]:
        environment = {
            name: value
            for name, value in os.environ.items()
            if name not in ("BINOCULARS_API_KEY", "LIT_SERVER_API_KEY")
        }
        if self.api_key is not None:
            environment["BINOCULARS_API_KEY"] = self.api_key
        return environment

    def replica_pids(self) -> list[int]:
        """The scoring replicas' process ids (LitServe starts them with multiprocessing's spawn; Linux only)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # LitServe shuts its workers down on KeyboardInterrupt
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        with contextlib.suppress(ProcessLookupError):  # anything of the service's group still running
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
