"""`chalice local` as users type it: the Chalice internals its hook relies on (a canary), reloads
under load, Ctrl-C, SIGTERM, the guard against real AWS, a database that cannot start, and the
other chalice commands starting nothing."""
from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set

import chalice
import pytest
from chalice.cli import create_local_server as chalice_create_local_server, reloader
from chalice.cli.factory import CLIFactory
from chalice.local import HTTPServerThread

from devserver.__main__ import chalice_local_command
from devserver.db_process import free_port
from devserver.local_config import PROJECT_DIR
from devserver.processes import process_alive
from devserver.testing.api import Api, http, wait_for
from infra.chalice_cli import current_command

ORDER = {"table": 4, "items": [{"dish": "insalata", "qty": 1}]}
CHALICE = str(Path(sys.executable).with_name("chalice"))


# --- the canary: what devserver/chalice_local.py and infra/chalice_cli.py rely on in Chalice ----------

def test_chalice_is_the_version_the_hook_was_written_for():
    assert chalice.__version__ == "1.34.0", (
        "Chalice was upgraded: re-check docs/chalice.md CHALICE-201 and CHALICE-202 against the new release, then "
        "update this pin")


def test_chalice_builds_the_local_server_through_the_factory_after_importing_the_app():
    source = inspect.getsource(chalice_create_local_server)
    assert "app_obj = config.chalice_app" in source  # imports app.py (and so runs our hook) first
    assert "factory.create_local_server(app_obj, config, host, port)" in source
    assert list(inspect.signature(CLIFactory.create_local_server).parameters) == [
        "self", "app_obj", "config", "host", "port"]


def test_chalice_runs_the_server_in_a_thread_and_shuts_it_down_on_reload():
    assert "self._server = self._server_factory()" in inspect.getsource(HTTPServerThread.run)
    assert "self._server.shutdown()" in inspect.getsource(HTTPServerThread.shutdown)
    assert "CHALICE_WORKER" in inspect.getsource(reloader.ParentProcess.main)


def test_the_command_is_found_without_a_click_context():
    found: List[Optional[str]] = []
    thread = threading.Thread(target=lambda: found.append(current_command(["--project-dir", "x", "local"])))
    thread.start()
    thread.join()
    assert found == ["local"]
    assert current_command(["--debug", "package", "out"]) == "package"
    assert current_command([]) is None


# --- processes -------------------------------------------------------------------------------------

def project_copy(tmp_path: Path) -> Path:
    """The project's app in a folder of its own, so a test can edit its code; devserver and infra
    are linked (Chalice's file watcher does not follow links)."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(PROJECT_DIR / "app.py", project)
    shutil.copytree(PROJECT_DIR / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(PROJECT_DIR / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployed"))
    for linked in ("devserver", "infra"):
        (project / linked).symlink_to(PROJECT_DIR / linked)
    return project


def environment(state: Path, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREFIRST_")}
    return {**env, "STOREFIRST_STATE_DIR": str(state), "PYTHONDONTWRITEBYTECODE": "1", **extra}


def chalice_local(project: Path, state: Path, port: int, log: Path, *, autoreload: bool = True,
                  **extra: str) -> "subprocess.Popen[bytes]":
    """`chalice local` in a process group of its own, as a terminal starts a foreground job."""
    command = [CHALICE, "--project-dir", str(project), "local", "--port", str(port)]
    if not autoreload:
        command.append("--no-autoreload")
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=project, env=environment(state, **extra), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def ready(url: str, process: "subprocess.Popen[bytes]", log: Path, timeout: float = 60) -> None:
    def up() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return bool(http("GET", f"{url}/_local/status", timeout=2)[1]["ready"])
        except OSError:
            return False
    wait_for(up, timeout, "chalice local ready")


def descendants(root: int) -> Set[int]:
    children: Dict[int, List[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" ", 1)
            children.setdefault(int(rest.rsplit(")", 1)[1].split()[1]), []).append(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Dict[str, Any]]:
    """`chalice local` (autoreload, as typed) on a copy of the project, after one request went through."""
    project, state, log = project_copy(tmp_path), tmp_path / "state", tmp_path / "chalice-local.log"
    port = free_port()
    process = chalice_local(project, state, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        ready(url, process, log)
        api = Api(url)
        assert api.finished(api.accepted(ORDER))["status"] == "SUCCEEDED"
        yield {"process": process, "url": url, "api": api, "project": project, "state": state, "log": log}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def ours(process: "subprocess.Popen[bytes]", state: Path) -> Set[int]:
    pids = {process.pid} | descendants(process.pid)
    database = json.loads((state / "db.json").read_text())["PID"]
    assert int(database) in pids and len(pids) >= 5, pids  # parent, worker, instances, database host, moto
    return pids


@pytest.mark.stack
def test_ctrl_c_stops_everything_within_2_s(running):
    process, pids = running["process"], ours(running["process"], running["state"])

    began = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C

    wait_for(lambda: not any(process_alive(pid) for pid in pids), 2.0, "every process gone")
    assert time.monotonic() - began < 2.0
    process.wait(timeout=1)


@pytest.mark.stack
def test_sigterm_to_chalice_local_alone_leaves_nothing_of_ours_after_5_s(running):
    process, pids = running["process"], ours(running["process"], running["state"])

    process.send_signal(signal.SIGTERM)  # Chalice's parent dies alone; its worker is orphaned

    wait_for(lambda: not any(process_alive(pid) for pid in pids), 5.0, "every process gone")


@pytest.mark.stack
def test_a_reload_under_load_loses_nothing(running):
    api, log = running["api"], running["log"]
    total, sent = 150, [0]
    accepted: Set[str] = set()
    lock = threading.Lock()

    def client(numbers: range) -> None:
        for n in numbers:
            key = f"reload-{n}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the client's contract: retry with the same key
                try:
                    status, _ = api.put({**ORDER, "n": n}, {"Idempotency-Key": key})
                except OSError:  # refused or reset while the worker restarts
                    status = 0
                if status in (202, 409):
                    with lock:
                        accepted.add(key)
                        sent[0] += 1
                    break
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(range(i, total, 4),)) for i in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sent[0] >= total // 3, 30, "a third of the requests sent")
    edited = running["project"] / "chalicelib" / "orders.py"
    edited.write_text(edited.read_text() + "\n# edited while requests are in flight\n")
    for thread in threads:
        thread.join(timeout=90)

    def finished() -> bool:
        try:
            return all(api.get(key)[1].get("status") in ("SUCCEEDED", "FAILED") for key in sorted(accepted))
        except OSError:
            return False
    wait_for(finished, 60, "every accepted request finished")
    reloads = log.read_text().count("storefirst: reloaded in")
    results = [api.get(key)[1] for key in sorted(accepted)]
    print(f"\nreload under load: {len(accepted)} accepted of {total}, {reloads} reload(s), "
          f"{sum(r['status'] == 'SUCCEEDED' for r in results)} succeeded, "
          f"{sum(r['status'] == 'PENDING' for r in results)} lost")
    assert len(accepted) == total
    assert reloads >= 1
    assert {r["status"] for r in results} == {"SUCCEEDED"}


@pytest.mark.stack
def test_the_app_never_reaches_real_aws(tmp_path):
    state, log, port = tmp_path / "state", tmp_path / "log", free_port()
    process = chalice_local(PROJECT_DIR, state, port, log, autoreload=False,
                            STOREFIRST_FUNCTION_ENV=json.dumps(
                                {"STOREFIRST_BUSINESS_LOGIC": "devserver.testing.logic:aws_probe"}))
    try:
        url = f"http://127.0.0.1:{port}"
        ready(url, process, log)
        api = Api(url)

        result = api.finished(api.accepted({"probe": True}))["result"]

        assert result["defaultClientAccount"] == "123456789012"  # moto's fake account: the local endpoint
        assert result["realEndpoint"].startswith("RealAwsRefused: Refused to send a request to "
                                                 '"https://dynamodb.us-east-1.amazonaws.com')
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=5)


def test_the_guard_refuses_a_real_endpoint_in_any_process(tmp_path):
    probe = ("from devserver import aws_guard; aws_guard.install(); import boto3;"
             "c = boto3.client('dynamodb', region_name='us-east-1', aws_access_key_id='a', aws_secret_access_key='b',"
             " endpoint_url='https://dynamodb.us-east-1.amazonaws.com');"
             "\ntry:\n c.list_tables()\nexcept Exception as e: print(type(e).__name__)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "RealAwsRefused", out.stderr


@pytest.mark.stack
def test_a_database_that_cannot_start_gets_a_clear_503_not_a_500(tmp_path):
    state, log, port = tmp_path / "state", tmp_path / "log", free_port()
    nothing_there = f"http://127.0.0.1:{free_port()}"
    process = chalice_local(PROJECT_DIR, state, port, log, autoreload=False, STOREFIRST_BACKEND="url",
                            STOREFIRST_ENDPOINT_URL=nothing_there)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url), 60, "chalice local answering")

        for method, path, body in (("GET", "/requests/abc", None), ("PUT", "/requests", json.dumps(ORDER).encode())):
            status, answer = http(method, url + path, body)
            assert status == 503, (method, status, answer)
            assert nothing_there in answer["message"] and "python -m devserver db" in answer["message"]
        assert "Traceback" not in log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=5)


def _answers(url: str) -> bool:
    try:
        http("GET", f"{url}/_local/status", timeout=2)
        return True
    except OSError:
        return False


@pytest.mark.stack
def test_a_second_chalice_local_on_the_same_state_is_refused_with_the_fix(running, tmp_path):
    log = tmp_path / "second.log"
    second = chalice_local(running["project"], running["state"], free_port(), log, autoreload=False)

    assert second.wait(timeout=30) == 1
    assert "another chalice local" in log.read_text() and "STOREFIRST_STATE_DIR" in log.read_text()


@pytest.mark.stack
def test_chalice_package_imports_the_app_and_starts_nothing(tmp_path):
    state = tmp_path / "state"
    env = environment(state, AWS_DEFAULT_REGION="us-east-1")

    done = subprocess.run([CHALICE, "--project-dir", str(PROJECT_DIR), "package", "--stage", "dev",
                           str(tmp_path / "out")], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                          timeout=120)

    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "sam.json").exists()
    assert not state.exists()  # no database host, no lock, no checkpoint


def test_make_run_passes_the_auth_options_to_chalice_local():
    command, env = chalice_local_command(["--auth", "iam", "--operators", "OPS, AUDIT", "--secret-key", "s3"])

    assert command[-4:] == ["--port", "8000", "--stage", "dev"]
    assert (env["STOREFIRST_AUTH"], env["STOREFIRST_OPERATORS"], env["STOREFIRST_SECRET_KEY"]) == (
        "iam", "AUDIT,OPS", "s3")


@pytest.mark.stack
def test_plain_chalice_local_requires_signatures_when_told(tmp_path):
    state, log, port = tmp_path / "state", tmp_path / "auth.log", free_port()
    process = chalice_local(PROJECT_DIR, state, port, log, autoreload=False, STOREFIRST_AUTH="iam",
                            STOREFIRST_OPERATORS="OPS")
    url = f"http://127.0.0.1:{port}"
    try:
        ready(url, process, log)

        assert Api(url).put(ORDER) == (403, {"message": "Missing Authentication Token"})
        signed = Api(url, "ALICE")
        request_id = signed.accepted(ORDER)
        assert signed.finished(request_id)["status"] == "SUCCEEDED"
        assert Api(url, "OPS").operator_get("iam-ALICE", request_id)[1]["owner"] == "iam-ALICE"
        assert "auth       iam: SigV4 for execute-api in us-east-1" in log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=10)
