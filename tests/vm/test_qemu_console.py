"""The VNC console of a real guest, end to end: `openstack console url show`, then a
websocket through the cloud's noVNC proxy to the guest's own QEMU VNC server."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.support.openstack import openstack
from tests.vm.qemu_cloud import QemuCloud, qemu_argv, qemus_under

pytestmark = pytest.mark.vm
FLAVOR = "m1.small"
BINARY = Subprotocol("binary")


@pytest.fixture(scope="module")
def vm(cloud: QemuCloud) -> str:
    created = json.loads(openstack(cloud.cloud, "server", "create", "--image", "stratus-guest",
                                   "--flavor", FLAVOR, "--nic", "none", "--wait", "vm",
                                   "-f", "json").stdout)
    assert created["status"] == "ACTIVE"
    return str(created["id"])


def console_url(cloud: QemuCloud, server: str) -> str:
    shown = json.loads(openstack(cloud.cloud, "console", "url", "show", "--novnc", server,
                                 "-f", "json").stdout)
    assert shown["type"] == "novnc"
    return str(shown["url"])


def token_of(url: str) -> str:
    path = parse_qs(urlsplit(url).query)["path"][0]
    return parse_qs(urlsplit(path).query)["token"][0]


def proxy(cloud: QemuCloud, token: str) -> str:
    return f"ws://127.0.0.1:{cloud.cloud.ports['novncproxy']}/?token={token}"


class RFBStream:
    """RFB is a byte stream: websocket frames may split or join its messages."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.buffer = ws, b""

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            frame = self.ws.recv(timeout=30)
            assert isinstance(frame, bytes), "the proxy must relay binary frames"
            self.buffer += frame
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def test_console_url_show_opens_the_guests_own_vnc_server(cloud: QemuCloud, vm: str) -> None:
    url = console_url(cloud, "vm")
    port = cloud.cloud.ports["novncproxy"]
    assert url.startswith(f"http://127.0.0.1:{port}/vnc_lite.html?path=%3Ftoken%3D")

    with connect(proxy(cloud, token_of(url)), subprotocols=[BINARY], open_timeout=30) as ws:
        assert ws.subprotocol == "binary"
        rfb = RFBStream(ws)
        assert rfb.read(12) == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        count = rfb.read(1)[0]
        types = rfb.read(count)
        assert count >= 1 and 1 in types, f"QEMU offers no 'None' security: {types!r}"
        ws.send(b"\x01")  # security None
        assert rfb.read(4) == b"\0\0\0\0"  # SecurityResult: OK
        ws.send(b"\x01")  # ClientInit: shared
        width, height = struct.unpack(">HH", rfb.read(4))
        rfb.read(16)  # pixel format
        name = rfb.read(struct.unpack(">I", rfb.read(4))[0]).decode()
    assert width > 0 and height > 0
    server = cloud.server("vm")
    assert name == f"QEMU ({server['OS-EXT-SRV-ATTR:instance_name']})", "not its QEMU"


def test_the_token_names_the_port_qemu_listens_on(cloud: QemuCloud, vm: str) -> None:
    token = token_of(console_url(cloud, "vm"))
    shown = json.loads(openstack(cloud.cloud, "--os-compute-api-version", "2.31", "console",
                                 "connection", "show", token, "-f", "json").stdout)
    assert shown["instance_uuid"] == vm and shown["host"] == "127.0.0.1"
    assert 5900 <= int(shown["port"]) <= 5999
    (pid,) = qemus_under(cloud.guest_dir(vm))
    assert "127.0.0.1:0,to=99" in qemu_argv(pid)


def test_a_wrong_token_is_refused(cloud: QemuCloud, vm: str) -> None:
    good = token_of(console_url(cloud, "vm"))
    wrong = good[:-4] + ("0000" if not good.endswith("0000") else "1111")
    with pytest.raises(InvalidStatus) as err:
        with connect(proxy(cloud, wrong), open_timeout=30):
            pass
    assert err.value.response.status_code == 403


def test_the_novnc_page_is_served(cloud: QemuCloud) -> None:
    base = f"http://127.0.0.1:{cloud.cloud.ports['novncproxy']}"
    page = httpx.get(f"{base}/vnc_lite.html", timeout=30)
    if not Path("/usr/share/novnc/vnc_lite.html").exists():
        assert page.status_code == 404 and "apt-get install novnc" in page.text
        pytest.skip("Debian's novnc package is not installed; scripts/install.sh installs it "
                    "(apt-get install novnc), then this test runs")
    assert page.status_code == 200 and "noVNC" in page.text
    assert httpx.get(f"{base}/core/rfb.js", timeout=30).status_code == 200


def test_after_server_delete_the_token_no_longer_works(cloud: QemuCloud, vm: str) -> None:
    token = token_of(console_url(cloud, "vm"))
    with connect(proxy(cloud, token), open_timeout=30) as ws:
        assert RFBStream(ws).read(12) == b"RFB 003.008\n"
    openstack(cloud.cloud, "server", "delete", "--wait", "vm")
    with pytest.raises(InvalidStatus) as err:
        with connect(proxy(cloud, token), open_timeout=30):
            pass
    assert err.value.response.status_code == 403
