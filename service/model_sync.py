"""Every worker of `cxnlp serve --workers N` on the model last asked for, and proof that it is.

A reload request reaches one worker. That worker loads the model first (a bad folder is refused before
anything changes), then publishes ``{generation, folder}`` in the server's private state folder. Every
worker checks the state a few times a second, loads a newer generation and writes its own status
(generation, model version, pid, error); the worker that took the request answers once all statuses
show its generation, or says which workers did not confirm. SIGHUP to the server publishes the current
folder again (reload it everywhere).

Small JSON files rather than pipes or shared memory: each is written whole (temporary + rename), any
process can read them at any time, a worker that forks or dies leaves nothing inconsistent, and the
folder (mode 0700, made by the server) is all there is to clean up.
"""
from __future__ import annotations

import asyncio
import atexit
import fcntl
import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cxnlp.errors import CxnlpError
from cxnlp.store import LoadedModel, load_model

STATE_FILE = "state.json"
LOCK_FILE = "state.lock"
POLL_SECONDS = 0.2


@dataclass
class WorkerStatus:
    """What one worker serves: the generation it caught up with and the model it loaded for it."""

    worker: int
    pid: int
    generation: int
    model_version: str | None
    model_dir: str | None
    error: str | None = None


class ModelSync:
    """The shared state of one server: the published folder and every worker's status."""

    def __init__(self, folder: Path, workers: int) -> None:
        self.folder = folder
        self.workers = workers

    @classmethod
    def create(cls, model_dir: Path, workers: int) -> "ModelSync":
        folder = Path(tempfile.mkdtemp(prefix="cxnlp-serve-"))  # 0700: no other user can publish a folder
        atexit.register(shutil.rmtree, folder, True)  # the parent's exit; forked workers leave with os._exit
        sync = cls(folder, workers)
        sync._write(STATE_FILE, {"generation": 0, "model_dir": str(model_dir)})
        return sync

    def published(self) -> tuple[int, str]:
        state = json.loads((self.folder / STATE_FILE).read_text(encoding="utf-8"))
        return int(state["generation"]), str(state["model_dir"])

    def publish(self, model_dir: str | None = None) -> int:
        """Ask every worker for ``model_dir`` (default: the published folder, again); the new generation."""
        with open(self.folder / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            generation, current = self.published()
            generation += 1
            self._write(STATE_FILE, {"generation": generation, "model_dir": model_dir or current})
        return generation

    def report(self, status: WorkerStatus) -> None:
        self._write(f"worker-{status.worker}.json", asdict(status))

    def statuses(self) -> list[WorkerStatus | None]:
        """Each worker's last status, in worker order (None for one that has not reported yet)."""
        out: list[WorkerStatus | None] = []
        for worker in range(self.workers):
            try:
                out.append(WorkerStatus(**json.loads((self.folder / f"worker-{worker}.json").read_text("utf-8"))))
            except (OSError, ValueError, TypeError):
                out.append(None)
        return out

    def _write(self, name: str, value: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{name}-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(value, fh)
        os.replace(tmp, self.folder / name)


class ModelFollower:
    """One worker's side: keeps ``state.model`` (the app's state) at the published generation."""

    def __init__(self, state: Any, sync: ModelSync, worker: int) -> None:
        self.state = state
        self.sync = sync
        self.worker = worker
        self.generation = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        self.generation = self.sync.published()[0]
        self.sync.report(self.status())
        threading.Thread(target=self._run, name="cxnlp-model-follower", daemon=True).start()

    def status(self, error: str | None = None) -> WorkerStatus:
        model: LoadedModel | None = getattr(self.state, "model", None)
        return WorkerStatus(worker=self.worker, pid=os.getpid(), generation=self.generation,
                            model_version=model.version if model else None,
                            model_dir=str(model.path) if model else None, error=error)

    def _run(self) -> None:
        while True:
            time.sleep(POLL_SECONDS)
            try:
                self.catch_up()
            except (OSError, ValueError, KeyError):  # state written by a newer server, or being removed
                continue

    def catch_up(self) -> None:
        """Load the published folder if it is newer than what this worker serves."""
        if self.sync.published()[0] <= self.generation:
            return
        with self._lock:
            generation, folder = self.sync.published()
            if generation <= self.generation:
                return
            error = None
            try:
                model = load_model(folder)
                model.warm_up()
                self.state.model = model
            except CxnlpError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 - the worker keeps serving its model, and says why
                error = f"{type(exc).__name__}: {exc}"
            self.generation = generation
            self.sync.report(self.status(error))

    def adopt(self, model: LoadedModel) -> int:
        """Serve ``model`` (already loaded here) at once and publish its folder to the other workers."""
        with self._lock:
            generation = self.sync.publish(str(model.path))
            self.state.model = model
            self.generation = generation
            self.sync.report(self.status())
        return generation

    async def confirm(self, generation: int, timeout: float) -> list[WorkerStatus | None]:
        """Every worker's status once all have reached ``generation`` (or ``timeout`` seconds have passed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            statuses = self.sync.statuses()
            if all(s is not None and s.generation >= generation for s in statuses) or loop.time() > deadline:
                return statuses
            await asyncio.sleep(0.05)


def follow(app: Any, sync: ModelSync, worker: int) -> ModelFollower:
    """In a freshly forked worker: follow the published model, and answer SIGHUP like the server does."""
    import signal

    follower = ModelFollower(app.state, sync, worker)
    app.state.worker = worker
    app.state.model_follower = follower
    follower.start()
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=sync.publish, daemon=True).start())
    return follower
