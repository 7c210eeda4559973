"""Retraining from the 模型 page: `python -m cxnlp train` (the shipped recipe plus the ledger's
corrections) in a background process, into ``models/candidate-<time>``.

A job is a folder beside its candidate (``candidate-<time>.job/``: the command's log, its JSON report
and, once it ended, its exit code), so any worker of the server can show any job's progress, and a
server restart leaves the record of what ran."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from cxnlp.errors import ConfigError
from cxnlp.store import TRAINED_MODELS_DIR, model_roots

PROJECT = Path(__file__).resolve().parents[2]
RECIPE = PROJECT / "training" / "default.toml"
LOG_TAIL = 30


@dataclass
class Job:
    name: str
    folder: Path          # the job's own files
    model_dir: Path       # the candidate model it writes
    state: str            # running / done / failed / lost
    started: float
    exit_code: int | None
    log_tail: list[str]
    report: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "model_dir": str(self.model_dir),
                "elapsed": round((self._ended() or time.time()) - self.started), "exit_code": self.exit_code,
                "log_tail": self.log_tail}

    def _ended(self) -> float | None:
        exit_file = self.folder / "exit_code"
        return exit_file.stat().st_mtime if exit_file.exists() else None


def candidates_root(model_root: str | None) -> Path:
    """Where candidates go: under the first ``CXNLP_MODEL_ROOT`` when one is set, else ``./models``
    (where `cxnlp train` writes): a folder promote is allowed to load from."""
    return model_roots(model_root)[0] if model_root and model_root.strip() else TRAINED_MODELS_DIR


def train_command(model_dir: Path, report: Path) -> list[str]:
    if not RECIPE.exists():
        raise ConfigError(f"the training recipe {RECIPE} is not here: retraining needs the source checkout")
    return [sys.executable, "-m", "cxnlp", "train", "--config", str(RECIPE), "--with-ledger",
            "--out", str(model_dir), "--report-json", str(report)]


def start_job(*, ledger_url: str, root: Path, command: list[str] | None = None) -> Job:
    """Start training in a child process; a thread of this worker waits for it and writes its exit code."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    model_dir = root / f"candidate-{stamp}"
    folder = root / f"candidate-{stamp}.job"
    folder.mkdir(parents=True, exist_ok=False)
    command = command or train_command(model_dir, folder / "report.json")
    env = {**os.environ, "CXNLP_LEDGER_URL": ledger_url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
    (folder / "command.json").write_text(json.dumps(command, ensure_ascii=False), encoding="utf-8")
    log = (folder / "train.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                               cwd=Path.cwd())
    log.close()
    (folder / "pid").write_text(str(process.pid), encoding="utf-8")

    def wait() -> None:
        code = process.wait()
        tmp = folder / "exit_code.tmp"
        tmp.write_text(str(code), encoding="utf-8")
        os.replace(tmp, folder / "exit_code")

    threading.Thread(target=wait, name=f"cxnlp-train-{stamp}", daemon=True).start()
    return read_job(folder)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text(encoding="utf-8")), 0)
    except (OSError, ValueError):
        return False
    return True


def read_job(folder: Path) -> Job:
    exit_file, log_file, report_file = folder / "exit_code", folder / "train.log", folder / "report.json"
    exit_code = int(exit_file.read_text(encoding="utf-8")) if exit_file.exists() else None
    if exit_code is None:
        state = "running" if _alive(folder / "pid") else "lost"
    else:
        state = "done" if exit_code == 0 and report_file.exists() else "failed"
    tail: list[str] = []
    if log_file.exists():
        with log_file.open("rb") as fh:
            fh.seek(max(0, log_file.stat().st_size - 16_384))
            tail = fh.read().decode("utf-8", errors="replace").splitlines()[-LOG_TAIL:]
    report = json.loads(report_file.read_text(encoding="utf-8")) if state == "done" else None
    name = folder.name.removesuffix(".job")
    return Job(name=name, folder=folder, model_dir=folder.parent / name, state=state,
               started=(folder / "command.json").stat().st_mtime, exit_code=exit_code, log_tail=tail, report=report)


def list_jobs(root: Path) -> list[Job]:
    """Every job under ``root``, newest first."""
    if not root.is_dir():
        return []
    return [read_job(f) for f in sorted(root.glob("candidate-*.job"), reverse=True) if f.is_dir()]


def find_job(name: str, root: Path) -> Job | None:
    return next((j for j in list_jobs(root) if j.name == name), None)
