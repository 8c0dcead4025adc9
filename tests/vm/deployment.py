"""A multi-process QEMU deployment for tests/vm, as an operator runs one.

The all-in-one (``stratus up``, compute host ``vmhost``) on MariaDB and
RabbitMQ, plus compute agents in their own processes (``stratus serve
compute-agent --host NAME``) sharing its data dir, so its instances dir is
shared storage. Each deployment gets its own database and its own RabbitMQ
virtual host: runs sharing the servers never see each other's messages.
Everything it made (processes, QEMUs, database, vhost, data dir) goes at
:meth:`QemuDeployment.stop`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stratus.guest.builder import GuestArtifacts
from tests.support.databases import mariadb_database
from tests.support.services import ensure_rabbitmq
from tests.vm.qemu_cloud import QemuCloud


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """The bus URL of a new RabbitMQ virtual host for guest/guest, deleted afterwards."""
    ensure_rabbitmq()
    name = f"stratus-test-{uuid.uuid4().hex[:12]}"

    def ctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)

    ctl("add_vhost", name)
    try:
        ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        ctl("delete_vhost", name)


class AgentProcess:
    """One `stratus serve compute-agent --host HOST` process of the deployment."""

    def __init__(self, cloud: QemuCloud, host: str) -> None:
        self.cloud, self.host = cloud, host
        self.log_path = cloud.data / f"agent-{host}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {k: v for k, v in self.cloud.cloud.env.items()
               if k != "STRATUS_COMPUTE__FAKE_HOSTS"}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stratus", "serve", "compute-agent", "--host", self.host],
                env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """The host dies: SIGKILL, no chance to clean up."""
        if self.alive:
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class QemuDeployment:
    """``cloud`` (the all-in-one, host ``vmhost``) plus ``agents`` by host name."""

    def __init__(self, guest_image: GuestArtifacts, vm_data_dir: Path, *,
                 agents: tuple[str, ...] = ("node2",), env: dict[str, str] | None = None) -> None:
        self.guest_image, self.vm_data_dir = guest_image, vm_data_dir
        self.agent_hosts, self.env = agents, dict(env or {})
        self._stack = contextlib.ExitStack()
        self.cloud: QemuCloud
        self.agents: dict[str, AgentProcess] = {}

    def start(self) -> None:
        try:
            db_url = self._stack.enter_context(mariadb_database())
            bus_url = self._stack.enter_context(rabbitmq_vhost())
            self.cloud = QemuCloud(self.guest_image, self.vm_data_dir, env={
                "STRATUS_DATABASE_URL": db_url, "STRATUS_BUS_URL": bus_url,
                # a multi-process deployment configures the service users' password
                "STRATUS_IDENTITY__SERVICE_PASSWORD": "stratus-test-service", **self.env})
            self._stack.callback(self._stop_cloud)
            self.cloud.start()
            for host in self.agent_hosts:
                self.agents[host] = AgentProcess(self.cloud, host)
                self.agents[host].start()
            for host in self.agent_hosts:
                self.wait_service(host, "up")
        except BaseException:
            self.stop()
            raise

    def _stop_cloud(self) -> None:
        for agent in self.agents.values():
            agent.stop()
            if agent.log_path.exists():
                (self.vm_data_dir / f"last-{agent.log_path.name}").write_bytes(
                    agent.log_path.read_bytes())
        self.cloud.stop()

    def stop(self) -> None:
        self._stack.close()

    def services(self) -> dict[str, dict[str, Any]]:
        """The compute services by host, as `openstack compute service list` shows them."""
        rows = self.cloud.cli_json("compute", "service", "list", "--service", "nova-compute")
        return {r["Host"]: r for r in rows}

    def start_agent(self, host: str, timeout: float = 90) -> None:
        """Start HOST's agent process again; returns once that process has heartbeated
        (a service still shown up may only be the dead process's last heartbeat)."""
        before = self.services()[host]["Updated At"]
        self.agents[host].start()
        deadline = time.monotonic() + timeout
        while (row := self.services()[host])["Updated At"] == before or row["State"] != "up":
            assert self.agents[host].alive, self.agents[host].log()[-3000:]
            assert time.monotonic() < deadline, \
                f"{host} sent no heartbeat: {row}\n{self.agents[host].log()[-3000:]}"
            time.sleep(0.5)

    def wait_service(self, host: str, state: str, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            row = self.services().get(host)
            if row is not None and row["State"] == state:
                return row
            agent = self.agents.get(host)
            assert time.monotonic() < deadline, \
                f"compute service of {host} not {state}: {row}\n{agent.log()[-3000:] if agent else ''}"
            time.sleep(0.5)
