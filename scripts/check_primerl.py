"""Helpers of scripts/check_primerl.sh (run it, not this file): each subcommand runs in the venv that has what it
imports. `config`, `policy-server` and `compare` run in this repository's venv; `rollouts` runs in the prime-rl
checkout's venv, where it drives prime-rl's own Env client and eval code against running env servers.

  config         the layout's rl.toml with every env block pointed at the tiny scorer pair, the shipped sample stories
                 (one file: defect 1's form) and CPU, and reward guards a tiny model passes (so rewards vary)
  policy-server  a scripted OpenAI-compatible chat server on 127.0.0.1 that records every request body
  rollouts       rollouts through prime-rl's Env client (`client`) or its eval path (`eval`, v0.8.0: EvalEnvs +
                 EvalSource as the orchestrator drives them); writes completions and rewards as JSON lines
  evals-config   (main) the `evals` config for the derived orchestrator's eval block against the policy server
  evals-records  (main) completions and rewards of the eval traces `evals` wrote
  compare        rewards against binoculars_env.reward.score_completions on the same completions; the table
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
import threading
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Reward settings the tiny pair can pass (its perplexity is far above real text's), so rewards are not all -2;
# the length term stays on. The same keys exist in both stacks (classic args, v1 task fields).
CHECK_REWARD = {
    "threshold": 1.0,
    "min_tokens": 4,
    "max_log_ppl": 100.0,
    "min_distinct_2": 0.0,
    "scorer_device": "cpu",
}
CHECK_DATA = {"num_train_examples": 4, "num_eval_examples": 3, "seed": 0}
TOLERANCE = 1e-5
# The scripted policy's replies, in turn: prose, prose after a reasoning block (stripped before scoring), prose with
# an emoji, and one too short for min_tokens (the guard's -2). verifiers' classic client aborts a rollout whose reply
# is empty, so there is none.
CHECK_REPLIES = [
    "The little fox ran to the river and found a friend. They played with a red ball until the sun went down.",
    "<think>I should write a happy ending.</think>Mia smiled at Tom, and they walked home together, holding hands.",
    "Then the bird sang a song for everyone in the garden, and all the animals danced in the warm sun. 🙂",
    "The end.",
]


def env_blocks(rl: dict):
    """(split, source, data dict, reward dict) for every env block of an rl.toml (v0.8.0 legacy or main v1)."""
    for split in ("train", "eval"):
        for source in rl["orchestrator"].get(split, {}).get("source", []):
            if "legacy" in source:
                args = source["legacy"]["args"]
                yield split, source, args, args
            else:
                taskset = source["env"]["taskset"]
                yield split, source, taskset, taskset["task"]


def make_config(args: argparse.Namespace) -> None:
    import tomli_w
    from binoculars_env.data import SAMPLE_DATA_FILE

    from binoculars.testing.tiny import build_tiny_pair

    pair = build_tiny_pair(args.models)
    rl = tomllib.loads(Path(args.rl_toml).read_text())
    for _, _, data, reward in env_blocks(rl):
        data.pop("dataset_name", None)
        data.update(CHECK_DATA, data_files=str(SAMPLE_DATA_FILE))
        reward.update(CHECK_REWARD, observer_model=str(pair.observer), performer_model=str(pair.performer))
    rl["orchestrator"]["eval"]["interval"] = 1
    rl["orchestrator"]["env_server_base_port"] = free_port_pair()
    Path(args.out).write_text(tomli_w.dumps(rl))


def free_port_pair() -> int:
    """A port p on 127.0.0.1 with p and p + 1 free (the train and eval env servers' addresses)."""
    import random
    import socket

    for _ in range(100):
        port = random.randint(20000, 60000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("found no two free neighbouring ports on 127.0.0.1")


def policy_server(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "environments" / "binoculars_env" / "tests"))
    from openai_stub import ScriptedChatServer

    server = ScriptedChatServer(CHECK_REPLIES, model=args.model, record_to=Path(args.requests)).start()
    Path(args.url_file).write_text(server.base_url)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


def trace_record(trace) -> dict:
    """Completion text and reward of one rollout: a verifiers v1 trace (object or its JSON record), whose nodes hold
    the messages (the sampled one is the policy's reply) and whose `rewards` the weighted reward terms."""
    data = trace.model_dump(mode="json") if hasattr(trace, "model_dump") else trace
    replies = [node["message"] for node in data["nodes"] if node.get("sampled")]
    if len(replies) != 1:
        raise ValueError(
            f"expected one sampled reply in a single-turn rollout, got {len(replies)}: {data['nodes']}"
        )
    text = replies[0].get("content") or ""
    if isinstance(text, list):
        text = "".join(part.get("text", "") for part in text)
    if data.get("errors"):
        raise ValueError(f"a rollout failed: {data['errors']}")
    reward = sum(term["score"] * term["weight"] for term in data["rewards"].values())
    return {"completion": text, "reward": reward}


async def run_rollouts(args: argparse.Namespace) -> None:
    from itertools import islice

    import verifiers.v1 as vf
    from prime_rl.configs.orchestrator import OrchestratorConfig
    from prime_rl.orchestrator.envs import Env, EvalEnvs
    from prime_rl.utils.config import cli

    config = cli(OrchestratorConfig, args=["@", args.orch])
    client = vf.EvalClientConfig(base_url=args.base_url)
    records: list[dict] = []

    async def run_legacy(env, task_idx: int, group_size: int) -> list:
        if env.requires_group_scoring:
            return await env.run_group(
                client=client,
                task_idx=task_idx,
                model_name=args.model,
                group_size=group_size,
                cache_salt=None,
            )
        return [
            rollout
            for _ in range(group_size)
            for rollout in await env.run(
                client=client, model_name=args.model, cache_salt=None, task_idx=task_idx
            )
        ]

    async def run_task(env, task) -> list:
        episode = await env.run(
            client=client, model_name=args.model, cache_salt=None, task_data=task.data.model_dump(mode="json")
        )
        return list(episode.traces)

    if args.path == "client":  # the train source's env server, driven by prime-rl's Env client
        (source,) = config.train.source
        env = Env(source, config.env_addresses[("train", source.resolved_name)])
        env.sampling_args = source.sampling.to_sampling_args()
        await env.start()
        if getattr(source, "is_legacy", False):  # prime-rl main has no legacy sources
            for task_idx in range(args.tasks):
                records += [trace_record(r) for r in await run_legacy(env, task_idx, args.group_size)]
        else:
            for task in islice(env.tasks, args.tasks):
                for _ in range(args.group_size):
                    records += [trace_record(t) for t in await run_task(env, task)]
    else:  # v0.8.0's eval path: the orchestrator's EvalEnvs and EvalSource, one epoch, run as its dispatcher does
        from prime_rl.orchestrator.eval_source import EvalSource

        eval_envs = EvalEnvs(config.eval.source, config.env_addresses)
        await eval_envs.start()
        source = EvalSource(eval_envs, config.eval)
        source.trigger(0)
        while (example := source.next_example(available_permits=1 << 30)) is not None:
            env = eval_envs.get(example["env_name"])
            records += [
                trace_record(r) for r in await run_legacy(env, example["task_idx"], env.config.group_size)
            ]
    with open(args.out, "w") as out:
        out.writelines(json.dumps(record) + "\n" for record in records)


def evals_config(args: argparse.Namespace) -> None:
    """prime-rl main's `evals` config: the derived orchestrator's eval block (sources, sampling) against the
    scripted server. It has no vLLM /metrics, so concurrency is pinned (evals requires that, and says so)."""
    orch = json.loads(Path(args.orch).read_text())
    config = {
        "model": args.model,
        "output_dir": args.output_dir,
        "eval": {
            **orch["eval"],
            "client": {"base_url": args.base_url, "api_key_var": "OPENAI_API_KEY"},
            "env_server_base_port": args.port,
            "concurrency": {"min_inflight": 2, "max_inflight": 2},
        },
    }
    Path(args.out).write_text(json.dumps(config, indent=2))


def evals_records(args: argparse.Namespace) -> None:
    """The traces of the one eval epoch `evals` ran (its file monitor: rollouts/step_0/eval/all/traces.jsonl)."""
    path = Path(args.output_dir) / "rollouts" / "step_0" / "eval" / "all" / "traces.jsonl"
    if not path.exists():
        raise SystemExit(f"error: evals wrote no traces at {path}")
    records = []
    for line in path.read_text().splitlines():
        episode = json.loads(line)
        records += [trace_record(trace) for trace in episode["traces"]]
    with open(args.out, "w") as out:
        out.writelines(json.dumps(record) + "\n" for record in records)


def compare(args: argparse.Namespace) -> None:
    from binoculars_env.reward import RewardConfig, score_completions
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    rl = tomllib.loads(Path(args.rl_toml).read_text())
    reward_args = {
        split: {k: v for k, v in reward.items() if k in RewardConfig.model_fields}
        for split, _, _, reward in env_blocks(rl)
    }
    failed = False
    print(f"{'path':<30} {'rollouts':>8}  {'max |reward - score_completions|':>32}  rewards")
    for spec in args.rollouts:
        label, split, path = spec.split("=", 2)
        records = [json.loads(line) for line in Path(path).read_text().splitlines()]
        expected = score_completions([r["completion"] for r in records], RewardConfig(**reward_args[split]))
        gaps = [abs(r["reward"] - e.reward) for r, e in zip(records, expected, strict=True)]
        gap = max(
            (g if math.isfinite(g) else math.inf for g in gaps), default=math.inf
        )  # no rollouts: a failure
        ok = gap <= TOLERANCE
        failed |= not ok
        rewards = " ".join(f"{r:+.3f}" for r in sorted({round(r["reward"], 3) for r in records}))
        print(f"{label:<30} {len(records):>8}  {gap:>32.1e}  {rewards}  {'ok' if ok else 'MISMATCH'}")
    sampling = rl["orchestrator"]["eval"]["sampling"]
    requests = [json.loads(line) for line in Path(args.eval_requests).read_text().splitlines()]
    wanted = {
        "chat_template_kwargs": {"enable_thinking": False},
        "temperature": sampling["temperature"],
        "max tokens": sampling["max_completion_tokens"],
    }
    good = [
        request
        for request in requests
        if request.get("chat_template_kwargs") == wanted["chat_template_kwargs"]
        and "chat_template_kwargs" not in (request.get("extra_body") or {})
        and request.get("temperature") == wanted["temperature"]
        and request.get("max_tokens", request.get("max_completion_tokens")) == wanted["max tokens"]
    ]
    ok = bool(requests) and len(good) == len(requests)
    failed |= not ok
    print(
        f"eval requests with {wanted} at the top level: {len(good)}/{len(requests)}  {'ok' if ok else 'MISMATCH'}"
    )
    if not ok and requests:
        print(f"  e.g. { ({k: v for k, v in requests[0].items() if k != 'messages'}) }")
    if failed:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("config")
    p.add_argument("rl_toml")
    p.add_argument("out")
    p.add_argument("--models", required=True, help="directory of the tiny scorer pair (built when missing)")
    p = commands.add_parser("policy-server")
    p.add_argument("--model", required=True)
    p.add_argument("--requests", required=True, help="JSONL file every request body is appended to")
    p.add_argument(
        "--url-file", required=True, help="file the server's base URL is written to once it listens"
    )
    p = commands.add_parser("rollouts")
    p.add_argument("path", choices=("client", "eval"))
    p.add_argument("--orch", required=True, help="prime-rl's derived orchestrator config")
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--group-size", type=int, default=2)
    p = commands.add_parser("evals-config")
    p.add_argument("orch")
    p.add_argument("out")
    p.add_argument("--base-url", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--output-dir", required=True)
    p.add_argument(
        "--port", type=int, required=True, help="env_server_base_port: where evals starts its env server"
    )
    p = commands.add_parser("evals-records")
    p.add_argument("output_dir")
    p.add_argument("out")
    p = commands.add_parser("compare")
    p.add_argument("rl_toml")
    p.add_argument("rollouts", nargs="+", help="LABEL=SPLIT=FILE")
    p.add_argument(
        "--eval-requests", required=True, help="request bodies the policy server got from the eval path"
    )
    args = parser.parse_args()
    if args.command == "config":
        make_config(args)
    elif args.command == "policy-server":
        policy_server(args)
    elif args.command == "rollouts":
        asyncio.run(run_rollouts(args))
    elif args.command == "evals-config":
        evals_config(args)
    elif args.command == "evals-records":
        evals_records(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
