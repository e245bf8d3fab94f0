"""Load test of the scoring service on 127.0.0.1: many concurrent clients, every answer checked against the
in-process scorer, throughput reported as a ratio to in-process scoring of the same texts in this process.

    uv run python benchmarks/bench_service.py                          # tiny pair, CPU, 32 clients x 8 requests
    uv run python benchmarks/bench_service.py --clients 64 --requests 16 --texts-per-request 4 \
        --accelerator cuda --devices 0 --observer /models/obs --performer /models/perf --dtype bfloat16

Each client sends its own distinct texts (the client and request ids are part of every text), so a score that
reached the wrong client cannot pass the check. Baselines, timed in this process on the same texts:
  - in-process, one call: everything in one `score_details` call (the best a single scorer can do);
  - in-process, per request: each request's texts scored alone (what an env worker does with its own scorer).
Meanwhile a few clients send a request and hang up (whole request sent, or half a body); the service must keep
answering everyone else. Exits non-zero if any answer is wrong or missing.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from binoculars import Binoculars, ScoreDetails
from binoculars.client import ScoringClient
from binoculars.testing.service_process import ServiceProcess
from binoculars.testing.tiny import build_tiny_pair, story_corpus


def client_texts(client: int, request: int, count: int, corpus: list[str]) -> list[str]:
    return [
        f"Client {client}, request {request}, text {i}. {corpus[(client * 7 + request * 3 + i) % len(corpus)]}"
        for i in range(count)
    ]


def same(got: ScoreDetails, want: ScoreDetails, tolerance: float) -> bool:
    if got.num_tokens != want.num_tokens:
        return False
    for a, b in ((got.score, want.score), (got.log_ppl, want.log_ppl), (got.x_ppl, want.x_ppl)):
        if math.isnan(a) != math.isnan(b) or (not math.isnan(b) and abs(a - b) > tolerance):
            return False
    return True


def hang_up(port: int, texts: list[str], half: bool) -> None:
    """Send a scoring request and close the connection before the answer (optionally mid-body)."""
    body = json.dumps({"texts": texts}).encode()
    head = (
        f"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + (body[: len(body) // 2] if half else body))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--observer", help="observer model directory (default: a tiny test pair built here)")
    parser.add_argument("--performer", help="performer model directory (with --observer)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--texts-per-request", type=int, default=4)
    parser.add_argument("--hang-ups", type=int, default=4, help="clients that disconnect mid-request")
    parser.add_argument("--accelerator", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--devices", default="auto", help="as for `python -m binoculars.serve`")
    parser.add_argument("--workers-per-device", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument(
        "--batch-size", type=int, default=32, help="texts per forward pass (service and baseline)"
    )
    parser.add_argument("--max-batch-requests", type=int, default=16)
    parser.add_argument("--max-token-observed", type=int, default=128)
    parser.add_argument(
        "--tolerance", type=float, default=1e-6, help="largest accepted difference (fp32: 1e-6)"
    )
    args = parser.parse_args(argv)
    if (args.observer is None) != (args.performer is None):
        parser.error("give both --observer and --performer, or neither")

    with tempfile.TemporaryDirectory() as tmp:
        if args.observer is None:
            pair = build_tiny_pair(Path(tmp))
            args.observer, args.performer = str(pair.observer), str(pair.performer)
        return run(args)


def run(args: argparse.Namespace) -> int:
    corpus = story_corpus(64, seed=21)
    requests = {
        (c, r): client_texts(c, r, args.texts_per_request, corpus)
        for c in range(args.clients)
        for r in range(args.requests)
    }
    all_texts = [text for texts in requests.values() for text in texts]
    device = "cpu" if args.accelerator == "cpu" else "cuda:0"
    scorer = Binoculars(
        args.observer,
        args.performer,
        device=device,
        dtype=args.dtype,
        max_token_observed=args.max_token_observed,
        batch_size=args.batch_size,
        thresholds={"low-fpr": 0.5},
    )
    scorer.score_details(all_texts[:4])  # warm-up
    start = time.perf_counter()
    expected = dict(zip(all_texts, scorer.score_details(all_texts), strict=True))
    one_call_s = time.perf_counter() - start
    start = time.perf_counter()
    for texts in requests.values():
        scorer.score_details(texts)
    per_request_s = time.perf_counter() - start
    del scorer  # free the baseline's memory (and device) for the service

    service_args = ["--observer", args.observer, "--performer", args.performer]
    service_args += ["--accelerator", args.accelerator, "--devices", args.devices, "--dtype", args.dtype]
    service_args += [
        "--workers-per-device",
        str(args.workers_per_device),
        "--batch-size",
        str(args.batch_size),
    ]
    service_args += ["--max-batch-requests", str(args.max_batch_requests)]
    service_args += ["--max-token-observed", str(args.max_token_observed), "--batch-timeout", "0.005"]
    print(f"starting: python -m binoculars.serve {' '.join(service_args)}", flush=True)
    with ServiceProcess(service_args) as service:
        latencies: list[float] = []
        wrong: list[tuple[int, int]] = []
        lock = threading.Lock()
        progress = tqdm(total=len(requests), desc="requests", unit="req")

        def one_client(client: int) -> None:
            with ScoringClient(service.url, timeout_s=300, max_retries=0) as scoring:
                for request in range(args.requests):
                    texts = requests[client, request]
                    sent = time.perf_counter()
                    got = scoring.score_details(texts)
                    elapsed = time.perf_counter() - sent
                    ok = len(got) == len(texts) and all(
                        same(g, expected[t], args.tolerance) for g, t in zip(got, texts, strict=False)
                    )
                    with lock:
                        latencies.append(elapsed)
                        if not ok:
                            wrong.append((client, request))
                    progress.update()

        with ScoringClient(service.url) as warm:
            warm.score_details(all_texts[:4])
        hang_up_threads = [
            threading.Thread(target=hang_up, args=(service.port, requests[i % args.clients, 0], i % 2 == 1))
            for i in range(args.hang_ups)
        ]
        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [pool.submit(one_client, c) for c in range(args.clients)]
            for thread in hang_up_threads:
                thread.start()
            for future in futures:
                future.result()  # re-raises a client's error (timeout, HTTP error)
        service_s = time.perf_counter() - start
        progress.close()
        for thread in hang_up_threads:
            thread.join()
        with ScoringClient(service.url, timeout_s=60) as after:
            survived = after.is_ready() and all(
                same(g, expected[t], args.tolerance)
                for g, t in zip(after.score_details(all_texts[:8]), all_texts[:8], strict=True)
            )

    n = len(all_texts)
    print(f"\n{args.clients} clients x {args.requests} requests x {args.texts_per_request} texts = {n} texts")
    print(f"service: {args.accelerator} devices={args.devices} x{args.workers_per_device} dtype={args.dtype}")
    print(f"{'':34}{'seconds':>9}{'texts/s':>10}")
    rows = [
        ("service, concurrent clients", service_s),
        ("in-process, one call", one_call_s),
        ("in-process, request by request", per_request_s),
    ]
    for name, seconds in rows:
        print(f"{name:34}{seconds:9.2f}{n / seconds:10.1f}")
    print(f"throughput ratio service / in-process one call:       {one_call_s / service_s:.2f}")
    print(f"throughput ratio service / in-process request by request: {per_request_s / service_s:.2f}")
    quantiles = statistics.quantiles(latencies, n=20)
    print(f"request latency s: p50 {statistics.median(latencies):.3f}  p95 {quantiles[18]:.3f}")
    print(f"answers checked: {len(latencies)}/{len(requests)}, wrong or mixed up: {len(wrong)}")
    print(f"{args.hang_ups} clients hung up mid-request; service still answering correctly after: {survived}")
    if wrong or len(latencies) != len(requests) or not survived:
        print(f"FAILED: wrong answers for (client, request) {wrong[:10]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
