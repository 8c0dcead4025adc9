"""Start the database and broker servers integration tests need, if they are down.

Tests never skip because a server is not running: they start it with the
command the README documents and wait for its port, or fail saying why.
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import tempfile
import time


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_service(name: str, port: int, command: list[str], *, timeout: float = 60.0) -> None:
    """Run ``command`` unless ``port`` answers, then wait for the port until ``timeout``."""
    if port_open(port):
        return
    # Output goes to a file, not a pipe: a daemonised server keeps inherited
    # descriptors open and a pipe would never reach EOF.
    with tempfile.TemporaryFile(mode="w+") as output:
        try:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT, timeout=timeout,
                                    start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"{name} is not running on 127.0.0.1:{port} and "
                               f"`{' '.join(command)}` failed: {exc}") from exc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(port):
                return
            time.sleep(0.25)
        output.seek(0)
        raise RuntimeError(
            f"{name} did not open 127.0.0.1:{port} within {timeout:g}s after "
            f"`{' '.join(command)}` (exit {result.returncode}):\n{output.read()[-4000:]}"
        )


def ensure_rabbitmq() -> None:
    ensure_service("RabbitMQ", 5672, ["rabbitmq-server", "-detached"])


def ensure_mariadb() -> None:
    ensure_service("MariaDB", 3306, ["start-stop-daemon", "--start", "--oknodo", "--background",
                                     "--exec", "/usr/sbin/mariadbd"])


def ensure_postgres() -> None:
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions and not port_open(5432):
        raise RuntimeError("PostgreSQL is not running and no cluster is configured in "
                           "/etc/postgresql; install postgresql")
    version = versions[-1] if versions else ""
    ensure_service("PostgreSQL", 5432, ["pg_ctlcluster", "--skip-systemctl-redirect", version,
                                        "main", "start"])


if __name__ == "__main__":
    # scripts/test.sh: start whatever of the three servers is down, loudly.
    for ensure in (ensure_mariadb, ensure_postgres, ensure_rabbitmq):
        ensure()
    print("services: MariaDB, PostgreSQL and RabbitMQ are answering")
