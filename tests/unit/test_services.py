"""The helper that starts a test server when its port is closed."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from tests.support.cloud import free_port
from tests.support.services import ensure_service, port_open

# Forks a listener that outlives the command, as `rabbitmq-server -detached` does.
DAEMON = """
import os, socket, sys, time
if os.fork():
    sys.exit(0)
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
open(sys.argv[2], "w").write(str(os.getpid()))
time.sleep(30)
"""


def test_a_closed_port_is_started_by_the_command_and_waited_for(tmp_path: Path) -> None:
    port, pidfile = free_port(), tmp_path / "pid"
    ensure_service("Fake", port, [sys.executable, "-c", DAEMON, str(port), str(pidfile)],
                   timeout=10)
    try:
        assert port_open(port)
    finally:
        os.kill(int(pidfile.read_text()), signal.SIGTERM)


def test_an_open_port_runs_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        ensure_service("Fake", sock.getsockname()[1], ["false"], timeout=1)


def test_a_server_that_never_comes_up_fails_naming_it() -> None:
    port = free_port()
    with pytest.raises(RuntimeError, match=rf"Fake did not open 127.0.0.1:{port} within 0.5s"):
        ensure_service("Fake", port, [sys.executable, "-c", "print('no luck')"], timeout=0.5)


def test_a_missing_command_fails_naming_it() -> None:
    with pytest.raises(RuntimeError, match="Fake is not running .* `/nonexistent/server` failed"):
        ensure_service("Fake", free_port(), ["/nonexistent/server"], timeout=1)
