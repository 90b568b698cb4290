"""Fixtures: a real `braid dev` control plane (from $BRAID_BIN), workers in threads and subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import braid

HERE = Path(__file__).resolve().parent
EXAMPLE_WORKER = HERE.parent / "examples" / "example_worker.py"
START_TIMEOUT = 30.0


def braid_bin() -> str:
    path = os.environ.get("BRAID_BIN", "")
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        pytest.fail(
            "BRAID_BIN must name the built `braid` binary (e.g. ~/.cache/braid/target/debug/braid); "
            "run the tests via scripts/test or `BRAID_BIN=... clients/python/test.sh`",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class LineReader:
    """Reads a pipe's lines on a thread, so that tests can wait for one with a deadline."""

    def __init__(self, pipe: Any) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: Any) -> None:
        for raw in iter(pipe.readline, ""):
            self.lines.put(raw.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, pred: Callable[[str], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; saw {self.seen!r}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the process closed stdout before {what}; saw {self.seen!r}")
            self.seen.append(line)
            found = pred(line)
            if found:
                return found


class BraidDev:
    """A `braid dev` process on free ports with its own SQLite data dir.

    ``auth=False`` runs it ``--insecure`` (every call acts as an admin of tenant ``default``);
    ``auth=True`` leaves auth on, and ``token`` is the admin token it printed (``Token brd_…``)."""

    def __init__(self, data_dir: Path, lease_ttl: str = "1s", grpc_port: int = 0, *, auth: bool = False) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "braid.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        cmd = [
            braid_bin(),
            "dev",
            "--data-dir",
            str(data_dir),
            "--grpc-port",
            str(grpc_port),
            "--http-port",
            "0",
            "--no-demo",
            *([] if auth else ["--insecure"]),
            "--lease-ttl",
            lease_ttl,
            "--reaper-interval",
            "200ms",
        ]
        self.data_dir = data_dir
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True)
        reader = LineReader(self.proc.stdout)
        match = reader.wait_for(lambda line: re.match(r"^gRPC\s+(\S+:\d+)\s*$", line), START_TIMEOUT, "gRPC address")
        self.endpoint: str = match.group(1)
        self.token: str | None = None
        if auth:
            token = reader.wait_for(lambda line: re.match(r"^Token\s+(brd_\S+)\s*$", line), START_TIMEOUT, "Token")
            self.token = token.group(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [braid_bin(), *args, "--endpoint", f"http://{self.endpoint}"],
            capture_output=True,
            text=True,
            timeout=30,
        )


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BraidDev]:
    dev = BraidDev(tmp_path_factory.mktemp("braid-session"))
    yield dev
    dev.stop()


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[BraidDev]:
    """A control plane of its own, for tests whose workers serve the example's fixed task types."""
    dev = BraidDev(tmp_path / "braid")
    yield dev
    dev.stop()


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BraidDev]:
    """A control plane with auth on (no ``--insecure``); ``auth_server.token`` is its admin token."""
    dev = BraidDev(tmp_path_factory.mktemp("braid-auth"), auth=True)
    yield dev
    dev.stop()


@pytest.fixture()
def client(server: BraidDev) -> Iterator[braid.Client]:
    with braid.Client(server.endpoint) as c:
        yield c


@contextlib.contextmanager
def running(worker: braid.Worker, timeout: float = 15.0) -> Iterator[braid.Worker]:
    """Runs ``worker`` on a thread (its own event loop) until the block ends, then drains it."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(worker.run_async())
        except BaseException as e:  # noqa: BLE001 - re-raised in the test
            errors.append(e)

    thread = threading.Thread(target=target, name=f"worker-{worker.name}", daemon=True)
    thread.start()
    try:
        if not worker.wait_connected(timeout):
            raise AssertionError(f"worker {worker.name} did not connect within {timeout}s: {errors!r}")
        yield worker
    finally:
        worker.shutdown()
        thread.join(timeout=60)
        assert not thread.is_alive(), f"worker {worker.name} did not stop after shutdown()"
    if errors:
        raise errors[0]


class ExampleWorker:
    """examples/example_worker.py as a subprocess that printed `worker NAME connected`."""

    def __init__(
        self,
        endpoint: str,
        name: str,
        ledger: Path,
        *,
        slots: int = 2,
        types: str = "noop,echo,sleep,fail,chain",
        extra: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.ledger = ledger
        self.log_path = ledger.with_suffix(".log")
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        cmd = [
            sys.executable,
            str(EXAMPLE_WORKER),
            "--endpoint",
            endpoint,
            "--name",
            name,
            "--slots",
            str(slots),
            "--types",
            types,
            "--ledger",
            str(ledger),
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.stdout = LineReader(self.proc.stdout)
        want = f"worker {name} connected"
        self.stdout.wait_for(lambda line: line.strip() == want, START_TIMEOUT, want)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {self.name} did not exit within {timeout}s:\n{self.log_tail()}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self._log.close()

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture()
def example_workers() -> Iterator[Callable[..., ExampleWorker]]:
    started: list[ExampleWorker] = []

    def start(*args: Any, **kwargs: Any) -> ExampleWorker:
        w = ExampleWorker(*args, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def ledger_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def wait_ledger(path: Path, pred: Callable[[dict[str, Any]], bool], timeout: float, what: str) -> dict[str, Any]:
    """The first ledger line satisfying ``pred``; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        for line in ledger_lines(path):
            if pred(line):
                return line
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} in {path}: {ledger_lines(path)!r}")
        time.sleep(0.02)


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
