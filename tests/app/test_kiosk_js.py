"""The kiosk page's script: its event queue runs under node against a fake server
(``tests/app/js/kiosk_queue.test.js``), and the page tells it the server's batch limit."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from tests.app.visitor import Visitor

JS_TESTS = Path(__file__).with_name("js") / "kiosk_queue.test.js"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def test_the_event_queue_loses_nothing() -> None:
    node = shutil.which("node")
    if node is None:
        if IN_CI:
            pytest.fail("node is not installed (CI=true: the kiosk script's tests must run)")
        pytest.skip("node is not installed; the kiosk script's queue tests need it")
    result = subprocess.run(
        [node, "--test", str(JS_TESTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def test_the_page_tells_the_script_the_servers_batch_limit(
    make_app: Callable[..., Flask], kiosk_path_a: str
) -> None:
    visitor = Visitor(make_app(MAX_EVENTS_PER_REQUEST=7), kiosk_path_a)
    visitor.arrives()
    visitor.starts_in("en")
    assert 'data-batch="7"' in visitor.text
