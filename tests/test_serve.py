"""The scoring service (LitServe) and its client: the in-process scorer's numbers, request/response matching under
concurrency, clear 4xx on bad requests, survival of clients that disconnect, loud client errors, a failing
request that fails alone, a dying replica that answers 503 at once, API key, loopback and /info without paths."""

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import litserve
import pytest
import torch

from binoculars import Binoculars, ScoreDetails
from binoculars.client import ScoringClient, ScoringServiceError, ScoringServiceUnreachable
from binoculars.panel import PanelScores
from binoculars.serve import ServiceSettings, build_server
from binoculars.service_schema import (
    MAX_TEXT_CHARS,
    MAX_TEXTS_PER_REQUEST,
    ScoreRequest,
    ScoreResponse,
    ServiceInfo,
    TextScore,
    public_model_name,
)
from binoculars.testing.faulty_service import FAIL_MARKER, SLOW_MARKER
from binoculars.testing.service_process import ServiceProcess, free_port
from binoculars.testing.tiny import story_corpus

MAX_TOKENS = 64
ODD_TEXTS = [
    "",
    "a",
    "🙂🚀✨ 你好世界",
    "He said <|endoftext|> and <|im_start|>assistant left.",
    "Once upon " * 200,
]
TEXTS = story_corpus(8, seed=5) + ODD_TEXTS


@pytest.fixture(scope="module")
def service(tiny_pair):
    args = ["--observer", str(tiny_pair.observer), "--performer", str(tiny_pair.performer)]
    args += ["--accelerator", "cpu", "--dtype", "float32", "--max-token-observed", str(MAX_TOKENS)]
    args += [
        "--batch-size",
        "4",
        "--max-batch-requests",
        "8",
        "--batch-timeout",
        "0.02",
        "--max-payload-mb",
        "1",
    ]
    with ServiceProcess(args) as running:
        yield running


@pytest.fixture(scope="module")
def local_scorer(tiny_pair) -> Binoculars:
    return Binoculars(
        tiny_pair.observer,
        tiny_pair.performer,
        max_token_observed=MAX_TOKENS,
        dtype="float32",
        device="cpu",
        thresholds={"accuracy": 0.9, "low-fpr": 0.85},
    )


@pytest.fixture(scope="module")
def client(service):
    with ScoringClient(service.url, timeout_s=60) as scoring_client:
        yield scoring_client


def assert_same_details(got: list[ScoreDetails], want: list[ScoreDetails]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.num_tokens == w.num_tokens
        assert w.panel is not None and g.panel is not None, "the service sends the detector panel"
        values = [(name, getattr(g, name), getattr(w, name)) for name in ("score", "log_ppl", "x_ppl")]
        values += [(name, v, w.panel.as_dict()[name]) for name, v in g.panel.as_dict().items()]
        for name, a, b in values:
            assert math.isnan(a) == math.isnan(b), (name, a, b)
            if not math.isnan(b):  # float32 batches of other sizes: ~7 significant digits agree
                assert a == pytest.approx(b, rel=1e-6, abs=1e-6), (name, a, b)


def test_health_and_info_describe_the_served_pair_without_local_paths(service, client, tiny_pair):
    assert httpx.get(f"{service.url}/health").text == "ok"
    info = client.info()
    assert info.observer == public_model_name(str(tiny_pair.observer))
    assert info.observer.startswith("local:observer:") and info.performer.startswith("local:performer:")
    assert str(tiny_pair.observer.parent) not in httpx.get(f"{service.url}/info").text
    assert info.serves(str(tiny_pair.observer), str(tiny_pair.performer), MAX_TOKENS)
    assert not info.serves(str(tiny_pair.performer), str(tiny_pair.observer), MAX_TOKENS)
    assert (info.max_token_observed, info.dtype, info.max_texts_per_request) == (MAX_TOKENS, "float32", 1024)


def test_info_shows_hub_ids_as_they_are_and_paths_only_when_asked():
    settings = ServiceSettings(observer="/data/models/obs", performer="Qwen/Qwen2.5-0.5B-Instruct")
    hidden, shown = settings.info(), settings.info(show_paths=True)
    assert hidden.performer == shown.performer == "Qwen/Qwen2.5-0.5B-Instruct"
    assert hidden.observer.startswith("local:obs:") and "/data" not in hidden.observer
    assert shown.observer == "/data/models/obs"
    for info in (hidden, shown):  # a client comparing its configured strings accepts both forms
        assert info.serves("/data/models/obs", "Qwen/Qwen2.5-0.5B-Instruct", 512)
        assert not info.serves("/data/models/other/obs", "Qwen/Qwen2.5-0.5B-Instruct", 512)
    assert public_model_name("./obs") != public_model_name("obs")
    assert ServiceInfo.model_validate(hidden.model_dump()) == hidden


def test_build_server_listens_on_loopback_by_default(monkeypatch):
    calls = []
    monkeypatch.setattr(litserve.LitServer, "run", lambda self, **kwargs: calls.append(kwargs))
    build_server(ServiceSettings(), accelerator="cpu").run()
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8000
    with pytest.raises(ValueError, match="--port 70000 is out of range"):
        build_server(ServiceSettings(), accelerator="cpu").run(port=70000)


def test_scores_equal_the_in_process_scorer(client, local_scorer):
    want = local_scorer.score_details(TEXTS)
    assert_same_details(client.score_details(TEXTS), want)
    assert [d.num_tokens for d in want][-5:-2] == [0, 1, want[-3].num_tokens]  # NaN cases are in the test
    assert math.isnan(want[-5].score) and math.isnan(want[-4].score)


def test_nan_travels_as_null_in_json(service):
    response = httpx.post(f"{service.url}/score", json={"texts": ["", "a", TEXTS[0]]})
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {
        "score": None, "log_ppl": None, "x_ppl": None, "num_tokens": 0, "scored_chars": 0, "error": None,
        "panel": {"fast_detectgpt": None, "log_rank": None, "log_likelihood": None, "entropy": None},
    }  # fmt: skip
    assert results[1]["score"] is None and results[1]["num_tokens"] == 1
    assert isinstance(results[2]["score"], float)


def test_concurrent_clients_each_get_the_scores_of_their_own_texts(service, local_scorer):
    """16 clients at once, each with its own texts: requests are merged into batches server-side (at most 8
    requests per batch) and every response must still carry exactly its request's scores."""
    per_client = [story_corpus(3, seed=100 + i) + [f"Client {i} says hello {i} times."] for i in range(16)]
    want = {i: local_scorer.score_details(texts) for i, texts in enumerate(per_client)}

    def run(i: int) -> list[list[ScoreDetails]]:
        with ScoringClient(service.url, timeout_s=60) as own_client:
            return [own_client.score_details(per_client[i]) for _ in range(3)]

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(run, range(16)))
    for i, rounds in enumerate(answers):
        for got in rounds:
            assert_same_details(got, want[i])


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"texts": []}, 422, "at least 1 item"),
        ({"texts": ["ok", 3]}, 422, "valid string"),
        ({"texts": "one string"}, 422, "valid list"),
        ({"texts": [None]}, 422, "valid string"),
        ({"text": ["typo in the field name"]}, 422, "Field required"),
        ({"texts": ["a"], "extra": 1}, 422, "Extra inputs"),
        ({"texts": ["x"] * (MAX_TEXTS_PER_REQUEST + 1)}, 422, f"at most {MAX_TEXTS_PER_REQUEST}"),
        ({"texts": ["x" * (MAX_TEXT_CHARS + 1)]}, 422, f"at most {MAX_TEXT_CHARS}"),
        ({"texts": ["abc" * 400] * 1000}, 413, "Payload too large"),  # 1.2 MB, over the 1 MB limit
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_service_keeps_serving(
    service, client, local_scorer, body, status, says
):
    response = httpx.post(f"{service.url}/score", json=body, timeout=60)
    assert response.status_code == status, response.text[:500]
    assert says in response.text
    assert_same_details(client.score_details(TEXTS[:3]), local_scorer.score_details(TEXTS[:3]))


@pytest.mark.parametrize(
    ("raw_body", "says"),
    [
        (b"not json", "JSON decode error"),
        (b'{"texts": ["\\ud800 lone surrogate"]}', "unicode string"),
        (b'{"texts": ["unterminated', "JSON decode error"),
    ],
)
def test_malformed_bodies_get_422(service, raw_body, says):
    response = httpx.post(
        f"{service.url}/score", content=raw_body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 422, response.text[:500]
    assert says in response.text


def test_service_survives_clients_that_disconnect_mid_request(service, client, local_scorer):
    big_request = json.dumps({"texts": story_corpus(200, seed=9)}).encode()
    header = (
        f"POST /score HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(big_request)}\r\n\r\n"
    ).encode()
    host, port = "127.0.0.1", service.port
    # 1) the whole request sent, then the connection closed while the service scores it
    with socket.create_connection((host, port)) as sock:
        sock.sendall(header + big_request)
    # 2) half a body, then gone
    with socket.create_connection((host, port)) as sock:
        sock.sendall(header + big_request[: len(big_request) // 2])
    # 3) a client that gives up (read timeout) while its request is being scored
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{service.url}/score",
            content=big_request,
            headers={"Content-Type": "application/json"},
            timeout=httpx.Timeout(5, read=0.005),  # the service waits >= 20 ms for a batch to fill
        )

    assert httpx.get(f"{service.url}/health", timeout=10).status_code == 200
    assert_same_details(client.score_details(TEXTS), local_scorer.score_details(TEXTS))


def test_client_raises_after_bounded_retries_when_nothing_listens():
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with (
        ScoringClient(url, timeout_s=2, max_retries=2, backoff_s=0.05) as unreachable,
        pytest.raises(ScoringServiceUnreachable, match=r"no answer after 3 attempts \(ConnectError"),
    ):
        unreachable.score_details(["some text"])
    assert time.monotonic() - start < 10


def scripted_client(answers: list[httpx.Response], calls: list, max_retries: int = 3) -> ScoringClient:
    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers[min(len(calls), len(answers)) - 1]

    return ScoringClient(
        "http://scorer.test", max_retries=max_retries, backoff_s=0.0, transport=httpx.MockTransport(handler)
    )


def ok_answer(*scores: float | None) -> httpx.Response:
    results = [{"score": s, "log_ppl": s, "x_ppl": 1.0, "num_tokens": 5} for s in scores]
    return httpx.Response(200, json={"results": results})


def test_client_retries_busy_and_starting_answers_then_succeeds():
    calls: list = []
    client = scripted_client(
        [httpx.Response(503, text="not ready"), httpx.Response(504), ok_answer(0.5)], calls
    )
    assert client.score_details(["t"]) == [ScoreDetails(0.5, 0.5, 1.0, 5)]
    assert len(calls) == 3


def test_client_gives_up_after_max_retries_of_503():
    calls: list = []
    client = scripted_client([httpx.Response(503, text="not ready")], calls, max_retries=2)
    with pytest.raises(ScoringServiceUnreachable, match="HTTP 503: not ready"):
        client.score_details(["t"])
    assert len(calls) == 3


@pytest.mark.parametrize("status", [400, 413, 422, 500])
def test_client_does_not_retry_errors_and_reports_the_service_message(status):
    calls: list = []
    client = scripted_client([httpx.Response(status, json={"detail": "the service says why"})], calls)
    with pytest.raises(ScoringServiceError, match=f"HTTP {status}.*the service says why") as raised:
        client.score_details(["t"])
    assert not isinstance(raised.value, ScoringServiceUnreachable)
    assert len(calls) == 1


def test_client_rejects_an_answer_with_the_wrong_number_of_results():
    client = scripted_client([ok_answer(0.5)], [])
    with pytest.raises(ScoringServiceError, match="1 results for 2 texts"):
        client.score_details(["a", "b"])


def test_client_maps_null_to_nan_and_splits_large_lists_into_requests():
    calls: list = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        texts = json.loads(request.content)["texts"]
        return ok_answer(*[None if t == "" else float(len(t)) for t in texts])

    client = ScoringClient("http://scorer.test", transport=httpx.MockTransport(handler))
    texts = ["", *("x" * (i % 7 + 1) for i in range(MAX_TEXTS_PER_REQUEST + 10))]
    details = client.score_details(texts)
    assert len(calls) == 2
    assert math.isnan(details[0].score) and math.isnan(details[0].log_ppl)
    assert [d.score for d in details[1:]] == [float(len(t)) for t in texts[1:]]


def test_client_checks_texts_before_sending():
    client = scripted_client([ok_answer(0.5)], calls := [])
    with pytest.raises(ValueError, match="valid string"):
        client.score_details(["fine", 7])
    with pytest.raises(TypeError, match="one str"):
        client.score_details("not a list")
    assert client.score_details([]) == [] and calls == []


def test_schema_rejects_lone_surrogates_that_no_tokenizer_can_encode():
    with pytest.raises(ValueError, match="unicode string"):
        ScoreRequest(texts=["fine", "\ud800 lone surrogate"])


def test_schema_round_trips_details_with_nan_as_null():
    details = [ScoreDetails(0.8, 2.0, 2.5, 10), ScoreDetails(math.nan, math.nan, math.nan, 1)]
    wire = ScoreResponse(results=[TextScore.from_details(d) for d in details]).model_dump_json()
    assert '"score":null' in wire and "NaN" not in wire
    back = ScoreResponse.model_validate_json(wire).to_details()
    assert back[0] == details[0] and back[1].num_tokens == 1 and math.isnan(back[1].x_ppl)


def test_schema_round_trips_the_detector_panel_with_nan_as_null():
    panel = PanelScores(fast_detectgpt=1.5, log_rank=0.7, log_likelihood=-2.0, entropy=2.2)
    details = [
        ScoreDetails(0.8, 2.0, 2.5, 10, 40, None, panel),
        ScoreDetails(0.9, 2.0, 2.2, 1, 3, None, None),
    ]
    details.append(ScoreDetails(math.nan, math.nan, math.nan, 1, 1, None, PanelScores.nan()))
    wire = ScoreResponse(results=[TextScore.from_details(d) for d in details]).model_dump_json()
    assert '"log_rank":0.7' in wire and '"entropy":null' in wire and "NaN" not in wire
    back = ScoreResponse.model_validate_json(wire).to_details()
    assert back[0] == details[0] and back[1].panel is None
    assert all(math.isnan(v) for v in back[2].panel.as_dict().values())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--observer", "/nonexistent/observer"], "could not load the observer tokenizer"),
        (["--devices", "0,x", "--accelerator", "cuda"], "--devices must be"),
        (["--max-batch-requests", "1"], "max_batch_requests must be >= 2"),
        (["--port", "70000"], "--port 70000 is out of range: use a port from 1024 to 65535"),
        (["--host", "localhost"], "--host localhost is not one LitServe can bind"),
        pytest.param(
            ["--accelerator", "cuda"],
            "--accelerator cuda, but torch sees no CUDA GPU",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible"),
        ),
    ],
)
def test_cli_user_errors_exit_nonzero_with_one_line(tiny_pair, args, says):
    base = [
        "--observer",
        str(tiny_pair.observer),
        "--performer",
        str(tiny_pair.performer),
        "--accelerator",
        "cpu",
    ]
    port = [] if "--port" in args else ["--port", str(free_port())]
    result = subprocess.run(
        [sys.executable, "-m", "binoculars.serve", *base, *args, *port],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_exits_nonzero_when_a_replica_cannot_load_the_models(tiny_pair, tmp_path):
    broken = tmp_path / "performer"
    shutil.copytree(tiny_pair.performer, broken)
    (broken / "model.safetensors").write_text("not weights")  # the tokenizer loads; the model does not
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "binoculars.serve",
            "--observer",
            str(tiny_pair.observer),
            "--performer",
            str(broken),
        ]
        + ["--accelerator", "cpu", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=400,  # several processes import torch; slow on a loaded 2-core machine
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: One or more workers failed to start")
    assert "SafetensorError" in result.stdout + result.stderr  # the replica's own error is logged before


API_KEY = "test-key-7f3a"


@pytest.fixture(scope="module")
def guarded_service(tiny_pair):
    """A service with an API key whose scorer fails on texts holding FAIL_MARKER; batches wait up to 3 s to fill,
    so that concurrent requests share one even on a loaded machine."""
    args = ["--observer", str(tiny_pair.observer), "--performer", str(tiny_pair.performer)]
    args += ["--accelerator", "cpu", "--dtype", "float32", "--max-token-observed", str(MAX_TOKENS)]
    args += ["--max-batch-requests", "8", "--batch-timeout", "3.0", "--log-level", "info"]
    with ServiceProcess(args, api_key=API_KEY, module="binoculars.testing.faulty_service") as running:
        yield running


def test_a_request_that_fails_to_score_fails_alone(guarded_service, local_scorer):
    """1 bad + 7 good concurrent requests in one batch: 7 correct scores and one error naming the problem."""
    per_request = [story_corpus(2, seed=200 + i) + [f"Request {i} is here."] for i in range(8)]
    per_request[3] = [*per_request[3][:2], f"A text the scorer rejects {FAIL_MARKER}"]

    def run(texts: list[str]) -> list[ScoreDetails] | ScoringServiceError:
        with ScoringClient(guarded_service.url, timeout_s=60, api_key=API_KEY) as own_client:
            try:
                return own_client.score_details(texts)
            except ScoringServiceError as error:
                return error

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(run, per_request))
    failed = answers.pop(3)
    assert isinstance(failed, ScoringServiceError) and not isinstance(failed, ScoringServiceUnreachable)
    assert "HTTP 500" in str(failed) and "InjectedScoringFailure" in str(failed), failed
    good_texts = per_request[:3] + per_request[4:]
    for got, texts in zip(answers, good_texts, strict=True):
        assert_same_details(got, local_scorer.score_details(texts))
    # the bad request shared a batch with good ones (all 8 when they arrive within the batch timeout)
    batches = re.findall(
        r"scoring a batch of (\d+) requests failed; scoring each alone", guarded_service.log_text()
    )
    assert batches and int(batches[-1]) >= 2, guarded_service.log_text()[-2000:]


def test_requests_without_the_api_key_get_401(guarded_service, local_scorer, monkeypatch):
    for path in ("/score", "/info", "/health"):
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = httpx.request(
                "POST" if path == "/score" else "GET",
                guarded_service.url + path,
                json={"texts": ["hi there"]} if path == "/score" else None,
                headers=headers,
            )
            assert response.status_code == 401, (path, headers, response.text)
            assert "X-API-Key" in response.text
    with (
        ScoringClient(guarded_service.url, api_key="", max_retries=0) as keyless,
        pytest.raises(ScoringServiceError, match=r"HTTP 401 \(set BINOCULARS_API_KEY"),
    ):
        keyless.score_details(["hi there"])
    monkeypatch.setenv("BINOCULARS_API_KEY", API_KEY)  # the client's default: what the env's scorer_url uses
    with ScoringClient(guarded_service.url) as keyed:
        assert_same_details(keyed.score_details(TEXTS[:2]), local_scorer.score_details(TEXTS[:2]))


def test_a_killed_replica_answers_its_requests_with_503_and_stops_the_service(tiny_pair):
    args = ["--observer", str(tiny_pair.observer), "--performer", str(tiny_pair.performer)]
    args += ["--accelerator", "cpu", "--dtype", "float32"]
    answers: dict[str, object] = {}

    def ask(name: str, send) -> None:
        start = time.monotonic()
        try:
            answers[name] = send()
        except Exception as error:  # noqa: BLE001 - the test inspects whatever ended the request
            answers[name] = error
        answers[name + "_s"] = time.monotonic() - start

    slow_body = {"texts": [f"Stalls the replica {SLOW_MARKER}"]}
    with ServiceProcess(args, module="binoculars.testing.faulty_service") as service:
        client = ScoringClient(service.url, timeout_s=30, max_retries=2, backoff_s=0.2)
        askers = [
            threading.Thread(
                target=ask,
                args=("raw", lambda: httpx.post(service.url + "/score", json=slow_body, timeout=30)),
            ),
            threading.Thread(target=ask, args=("client", lambda: client.score_details(slow_body["texts"]))),
        ]
        for asker in askers:
            asker.start()
        time.sleep(1.0)  # both requests are now with the replica
        (replica,) = service.replica_pids()
        os.kill(replica, signal.SIGKILL)
        for asker in askers:
            asker.join(timeout=30)
        returncode = service.process.wait(timeout=45)
        log = service.log_text()
    assert isinstance(answers["raw"], httpx.Response), answers["raw"]
    assert answers["raw"].status_code == 503 and "died" in answers["raw"].text, answers["raw"].text
    assert answers["raw_s"] < 10
    assert isinstance(answers["client"], ScoringServiceUnreachable), answers["client"]
    assert answers["client_s"] < 20
    assert returncode == 1
    assert f"error: scoring replica inference-worker (pid {replica}, killed by SIGKILL) died" in log, log[
        -3000:
    ]
