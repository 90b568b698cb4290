#!/usr/bin/env python3
"""A Braid worker serving demo task types, for tests and drills (the Python twin of
``braid-example-worker``).

    python example_worker.py --endpoint 127.0.0.1:7400 --name py-1 --slots 2 \\
        --types noop,echo,sleep,fail,chain --ledger /tmp/py-1.jsonl

Task types (``--types``, comma-separated; ``chain`` stands for ``py-a``):

- ``noop``: returns ``{}``.
- ``echo``: returns ``{"input": <run input>, "deps": <dependency outputs>}``.
- ``sleep``: ``{"ms": N}``; sleeps N ms unless cancelled (then a retryable error of type
  ``cancelled``); returns ``{"slept_ms": N, "attempt": A, "worker": NAME}``.
- ``fail``: ``{"times": N, "fatal": bool, "always": bool}``; fails (type ``injected``) while
  the attempt is ``<= times`` (or always), non-retryable when ``fatal``; else returns
  ``{"attempt": A}``. With ``--heal`` it always succeeds.
- ``py-a``: the first step of the polyglot chain: ``{"value": input.value * 2, "path": ["python"]}``.
- ``blob``: ``{"bytes": N, "seed": S}``; returns ``{"blob": <N letters from S>, "sha256": <hex>}``
  (the same letters as ``braid-example-worker``'s ``blob``).
- ``digest``: returns ``{"input": D, "deps": {"name": D, ...}}``, D being ``{"bytes", "sha256"}``
  of a value's ``blob`` string if it has one, else of its compact JSON (large payloads in tests).

Prints ``worker NAME connected`` on stdout when a stream is established. ``--ledger FILE``
appends one flushed JSON line per task start, finish and result ack. SIGTERM/SIGINT drain.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import braid
except ImportError:  # run from a checkout without installing: use ../src
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    import braid
from braid.client import resolve_token
from braid.worker import default_name

KNOWN = ("noop", "echo", "sleep", "fail", "py-a", "blob", "digest")
ALIASES = {"chain": "py-a"}


class Ledger:
    """An append-only JSON-lines file: one line per task start, finish and result ack."""

    def __init__(self, path: str, worker: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the process
        self._worker = worker
        self._worker_id = ""
        self._lock = threading.Lock()

    def record(self, event: braid.WorkerEvent) -> None:
        extra: dict[str, Any] = {}
        if isinstance(event, braid.Connected):
            self._worker_id = event.worker_id
            return
        if isinstance(event, braid.TaskStarted):
            name, task, outcome = "start", event.task, None
        elif isinstance(event, braid.TaskFinished):
            name, task, outcome = "finish", event.task, event.outcome
            extra["started"] = event.started
            if event.error is not None:
                extra.update(error_type=event.error.type, retryable=event.error.retryable, message=event.error.message)
        elif isinstance(event, braid.ResultAcked):
            name, task = "ack", event.task
            outcome = "accepted" if event.accepted else "rejected"
            extra.update(code=event.code, reason=event.reason)
        else:
            return
        line = {
            "event": name,
            "task_id": task.task_id,
            "attempt": task.attempt,
            "lease_id": task.lease_id,
            "task_type": task.task_type,
            "worker": self._worker,
            "worker_id": self._worker_id,
            "outcome": outcome,
            "ts": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            **extra,
        }
        with self._lock:
            self._file.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._file.flush()


def blob_text(size: int, seed: int) -> str:
    """``size`` lowercase letters made from ``seed``, the same in every example worker: letter
    ``i`` is ``(31 i + 17 seed + i // 97) mod 26``. Built 97 letters at a time (within such a
    block each letter is 5 after the previous one, mod 26), so 5 MiB take milliseconds."""
    runs = ["".join(chr(ord("a") + (start + 5 * j) % 26) for j in range(97)) for start in range(26)]
    blocks = ((31 * 97 * k + 17 * seed + k) % 26 for k in range(size // 97 + 1))
    return "".join(runs[start] for start in blocks)[:size]


def digest(value: Any) -> dict[str, Any]:
    """Size and SHA-256 of ``value``'s ``blob`` string, or of its compact JSON."""
    if isinstance(value, dict) and isinstance(value.get("blob"), str):
        text = value["blob"]
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    data = text.encode()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def register(worker: braid.Worker, kind: str, heal: bool) -> None:
    name = worker.name

    if kind == "noop":

        @worker.task("noop")
        async def noop(_input: Any, _ctx: braid.TaskContext) -> dict[str, Any]:
            return {}

    elif kind == "echo":

        @worker.task("echo")
        async def echo(input: Any, ctx: braid.TaskContext) -> dict[str, Any]:
            return {"input": input, "deps": ctx.deps}

    elif kind == "sleep":

        @worker.task("sleep")
        async def sleep(input: Any, ctx: braid.TaskContext) -> dict[str, Any]:
            ms = int((input or {}).get("ms", 0)) if isinstance(input, dict) else 0
            try:
                await asyncio.wait_for(ctx.wait_cancelled(), ms / 1000)
            except TimeoutError:
                return {"slept_ms": ms, "attempt": ctx.attempt, "worker": name}
            why = str(ctx.cancel_reason or "")
            raise braid.TaskError("cancelled", type="cancelled", retryable=True, details={"why": why})

    elif kind == "fail":

        @worker.task("fail")
        async def fail(input: Any, ctx: braid.TaskContext) -> dict[str, Any]:
            if heal:
                return {"attempt": ctx.attempt, "healed": True}
            opts = input if isinstance(input, dict) else {}
            attempt = ctx.attempt
            if opts.get("always"):
                raise braid.TaskError(f"injected failure (always), attempt {attempt}", type="injected")
            times = int(opts.get("times") or 0)
            if attempt <= times:
                message = f"injected failure {attempt} of {times}"
                raise braid.TaskError(message, type="injected", retryable=not opts.get("fatal", False))
            return {"attempt": attempt}

    elif kind == "py-a":

        @worker.task("py-a")
        async def py_a(input: Any, _ctx: braid.TaskContext) -> dict[str, Any]:
            if not isinstance(input, dict) or not isinstance(input.get("value"), (int, float)):
                raise braid.FatalError('py-a needs an input like {"value": 3}', type="bad_input")
            return {"value": input["value"] * 2, "path": ["python"]}

    elif kind == "blob":

        @worker.task("blob")
        async def blob(input: Any, _ctx: braid.TaskContext) -> dict[str, Any]:
            opts = input if isinstance(input, dict) else {}
            text = blob_text(int(opts.get("bytes") or 0), int(opts.get("seed") or 0))
            return {"blob": text, "sha256": hashlib.sha256(text.encode()).hexdigest()}

    elif kind == "digest":

        @worker.task("digest")
        async def digest_task(input: Any, ctx: braid.TaskContext) -> dict[str, Any]:
            return {"input": digest(input), "deps": {name: digest(v) for name, v in ctx.deps.items()}}

    else:  # pragma: no cover - parse_types rejects it
        raise ValueError(kind)


def parse_types(text: str) -> list[str]:
    kinds = []
    for raw in text.split(","):
        kind = ALIASES.get(raw.strip(), raw.strip())
        if not kind:
            continue
        if kind not in KNOWN:
            raise argparse.ArgumentTypeError(f"unknown task type {raw!r} (known: {', '.join(KNOWN)}, chain)")
        if kind not in kinds:
            kinds.append(kind)
    if not kinds:
        raise argparse.ArgumentTypeError("no task types")
    return sorted(kinds)


def parse_seconds(text: str) -> float:
    from braid.durations import parse_nanos

    try:
        return parse_nanos(text) / 1e9
    except (TypeError, ValueError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="A Braid worker serving demo task types.")
    p.add_argument("--endpoint", default=os.environ.get("BRAID_ENDPOINT", braid.DEFAULT_ENDPOINT))
    p.add_argument("--name", default=None, help="the worker's name (default: HOSTNAME-PID)")
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--types", type=parse_types, default=parse_types("noop,echo,sleep,fail"))
    p.add_argument("--ledger", default=None, help="append one JSON line per task start, finish and ack")
    p.add_argument("--heal", action="store_true", help="serve `fail` as if fixed: it always succeeds")
    p.add_argument("--drain-timeout", type=parse_seconds, default=30.0, help='e.g. "30s"')
    p.add_argument(
        "--ca-cert",
        default=os.environ.get("BRAID_CA_CERT"),
        help="PEM CA certificate the server's certificate must chain to (an https:// endpoint)",
    )
    p.add_argument(
        "--client-cert",
        default=os.environ.get("BRAID_CLIENT_CERT"),
        help="PEM client certificate for a server that requires one (mTLS); with --client-key",
    )
    p.add_argument("--client-key", default=os.environ.get("BRAID_CLIENT_KEY"), help="PEM private key of --client-cert")
    p.add_argument(
        "--token",
        default=None,
        help="API token (a worker token of the tenant whose tasks to serve; default $BRAID_TOKEN)",
    )
    args = p.parse_args(argv)
    try:
        resolve_token(args.token)
    except ValueError as e:
        p.error(str(e))

    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("BRAID_LOG", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    name = args.name or default_name()
    ledger = Ledger(args.ledger, name) if args.ledger else None

    def on_event(event: braid.WorkerEvent) -> None:
        if isinstance(event, braid.Connected):
            print(f"worker {name} connected", flush=True)
        if ledger is not None:
            ledger.record(event)

    worker = braid.Worker(
        args.endpoint,
        name=name,
        slots=args.slots,
        drain_timeout=args.drain_timeout,
        on_event=on_event,
        ca_cert=args.ca_cert,
        client_cert=args.client_cert,
        client_key=args.client_key,
        token=args.token,
    )
    for kind in args.types:
        register(worker, kind, args.heal)
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
