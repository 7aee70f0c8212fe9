"""devserver/functions.py's pool without processes: instances are fakes with the Instance surface."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, List, Mapping

from devserver.functions import FunctionConfig, FunctionError, FunctionPool


class SlowInstance:
    """Answers an invocation only once it is killed or released: a batch still running at close()."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.pid = 1
        self.running = threading.Event()
        self.killed = threading.Event()

    def invoke(self, event: Any, context: Mapping[str, Any]) -> Any:
        self.running.set()
        self.killed.wait(5)
        return {"answered": True}

    def alive(self) -> bool:
        return not self.killed.is_set()

    def kill(self) -> None:
        self.killed.set()


def test_an_invocation_that_ends_after_close_is_answered_and_its_instance_killed(tmp_path: Path) -> None:
    made: List[SlowInstance] = []

    def new_instance(config: FunctionConfig) -> Any:
        made.append(SlowInstance(config))
        return made[-1]

    pool = FunctionPool({"process": FunctionConfig("process", {})}, project_dir=tmp_path, new_instance=new_instance)
    answers: List[Any] = []
    caller = threading.Thread(target=lambda: answers.append(pool.invoke("process", {"Records": []})))
    caller.start()
    assert made and made[0].running.wait(5)

    pool.close()  # kills the busy instance (the local stack stopping or reloading mid-batch)
    caller.join(5)

    assert answers == [{"answered": True}]  # no ValueError from releasing an instance close() forgot
    assert made[0].killed.is_set() and pool.status()["process"]["instances"] == 0
    try:
        pool.invoke("process", {})
    except FunctionError as exc:
        assert exc.error_type == "Runtime.ExitError"
    else:
        raise AssertionError("a closed pool invoked a function")
