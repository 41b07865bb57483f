"""Helpers and the real Prefect server fixture shared by the orchestration tests.

``test_flow``, ``test_incremental``, ``test_safety``, ``test_server`` and ``test_dask`` import
from here. ``prefect_server`` starts one real ``prefect server start`` on 127.0.0.1 at a free
port (``PREFECT_HOME`` in a temporary folder) the first time a test asks for it, and stops it
by its PID when the last module using it is done (a module-level refcount, because a fixture
imported into two modules is two fixtures to pytest).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEED_LEXICON = REPO / "tests" / "fixtures" / "lexicons" / "seed.yaml"
TABLES = ("documents", "ledger", "term_counts", "scores", "cooccurrence")
MOBILIZE = str(Path(sys.executable).parent / "mobilize")


def copy_corpus(src: Path, dst: Path, *, skip: Sequence[str] = (), only: Sequence[str] = ()) -> Path:
    """A private copy of a shared corpus (its files and metadata rows), minus ``skip`` doc ids."""
    dst.mkdir(parents=True, exist_ok=True)
    with (src / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = [r for r in reader if r["doc_id"] not in skip and (not only or r["doc_id"] in only)]
    for r in rows:
        shutil.copy2(src / f"{r['doc_id']}.txt", dst / f"{r['doc_id']}.txt")
    write_metadata(dst, fields, rows)
    return dst


def write_metadata(folder: Path, fields: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    with (folder / "metadata.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fields), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def add_document(src: Path, dst: Path, doc_id: str) -> None:
    """Add one document of ``src`` (file and metadata row) to the corpus copy ``dst``."""
    with (src / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["doc_id"] == doc_id)
    with (dst / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    shutil.copy2(src / f"{doc_id}.txt", dst / f"{doc_id}.txt")
    write_metadata(dst, fields, rows + [row])


def csv_bytes(run_dir: Path) -> dict[str, bytes]:
    """The bytes of each CSV table of a run folder."""
    return {t: (run_dir / f"{t}.csv").read_bytes() for t in TABLES}


def run_env(**extra: str) -> dict[str, str]:
    """The environment for a ``mobilize`` subprocess: this session's private dirs, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/health", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def stop_process(proc: subprocess.Popen[bytes], *, group: bool = True, grace: float = 20.0) -> None:
    """SIGTERM (the process group when it has its own), then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.terminate()
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait()
    except ProcessLookupError:
        pass


class PrefectServer:
    def __init__(self, home: Path, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.home, self.port, self.proc, self.log = home, port, proc, log
        self.api_url = f"http://127.0.0.1:{port}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """A subprocess environment that talks to this server."""
        return run_env(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home),
                       PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", **extra)


_STATE: dict[str, object] = {"server": None, "users": 0}


def _start_server() -> PrefectServer:
    home = Path(tempfile.mkdtemp(prefix="mobilize-prefect-"))
    port = free_port()
    log = home / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               DO_NOT_TRACK="1", PREFECT_UI_ENABLED="false", PREFECT_LOGGING_LEVEL="WARNING")
    prefect = str(Path(sys.executable).parent / "prefect")
    with log.open("wb") as fh:
        proc = subprocess.Popen([prefect, "server", "start", "--host", "127.0.0.1", "--port",
                                 str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = PrefectServer(home, port, proc, log)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if healthy(server.api_url):
            return server
        time.sleep(0.5)
    stop_process(proc)
    raise RuntimeError(f"prefect server did not become healthy: {log.read_text(errors='replace')[-2000:]}")


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[PrefectServer]:
    """A real Prefect server on 127.0.0.1 (started once, stopped by PID at the end)."""
    if _STATE["server"] is None:
        _STATE["server"] = _start_server()
    _STATE["users"] = int(_STATE["users"]) + 1  # type: ignore[call-overload]
    server = _STATE["server"]
    assert isinstance(server, PrefectServer)
    try:
        yield server
    finally:
        _STATE["users"] = int(_STATE["users"]) - 1  # type: ignore[call-overload]
        if _STATE["users"] == 0:
            stop_process(server.proc)
            shutil.rmtree(server.home, ignore_errors=True)
            _STATE["server"] = None
