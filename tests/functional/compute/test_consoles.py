"""Remote consoles on the all-in-one (fake driver): the console URL as Nova hands it
out, its errors and policy, and the noVNC proxy relaying a websocket to the fake
host's VNC server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from tests.functional.compute.helpers import User, upload_image
from tests.support.cloud import CloudProcess
from tests.support.openstack import IdentityAdmin, Persona

BINARY = Subprotocol("binary")
VNC = {"remote_console": {"protocol": "vnc", "type": "novnc"}}


@pytest.fixture(scope="module")
def user(cloud: CloudProcess) -> Iterator[User]:
    u = User(cloud)
    upload_image(u, "console-img")
    yield u


@pytest.fixture(scope="module")
def server(user: User) -> str:
    sid = str(user.osc("server", "create", "--flavor", "m1.tiny", "--image", "console-img",
                       "--nic", "none", "console-vm")["id"])
    user.wait(sid, "ACTIVE")
    return sid


@pytest.fixture(scope="module")
def identity(cloud: CloudProcess) -> Iterator[IdentityAdmin]:
    admin = IdentityAdmin(cloud)
    yield admin
    admin.close()


def post(user: User, path: str, body: Any, version: str, token: str | None = None
         ) -> httpx.Response:
    headers = {"OpenStack-API-Version": f"compute {version}"}
    if token:
        headers["X-Auth-Token"] = token
    return user.api("POST", path, json=body, headers=headers)


def token_in(url: str) -> str:
    path = parse_qs(urlsplit(url).query)["path"][0]
    return parse_qs(urlsplit(path).query)["token"][0]


def ws_url(cloud: CloudProcess, token: str) -> str:
    return f"ws://127.0.0.1:{cloud.ports['novncproxy']}/?token={token}"


def rfb_handshake(url: str, **kw: Any) -> tuple[bytes, bytes]:
    """(server banner, security types) of the VNC server behind the proxy."""
    with connect(url, subprotocols=[BINARY], open_timeout=15, **kw) as ws:
        assert ws.subprotocol == "binary"
        banner = ws.recv(timeout=15)
        ws.send(b"RFB 003.008\n")
        types = ws.recv(timeout=15)
    assert isinstance(banner, bytes) and isinstance(types, bytes)
    return banner, types


def refused(url: str, **kw: Any) -> int:
    with pytest.raises(InvalidStatus) as err:
        with connect(url, open_timeout=15, **kw):
            pass
    return err.value.response.status_code


def test_console_url_show_gives_a_novnc_url_of_this_clouds_proxy(user: User, server: str,
                                                                  cloud: CloudProcess) -> None:
    base = f"http://127.0.0.1:{cloud.ports['novncproxy']}/vnc_lite.html?path=%3Ftoken%3D"
    legacy = user.osc("console", "url", "show", "--novnc", server)  # microversion 2.1
    assert legacy["type"] == "novnc" and legacy["url"].startswith(base)
    remote = user.osc("--os-compute-api-version", "2.6", "console", "url", "show", "--novnc",
                      server)
    assert remote["protocol"] == "vnc" and remote["type"] == "novnc"
    assert remote["url"].startswith(base)
    assert token_in(legacy["url"]) != token_in(remote["url"])  # a fresh token every time


def test_remote_consoles_exist_from_microversion_2_6(user: User, server: str) -> None:
    resp = post(user, f"/servers/{server}/remote-consoles", VNC, "2.6")
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["remote_console"]) == {"protocol", "type", "url"}
    assert post(user, f"/servers/{server}/remote-consoles", VNC, "2.5").status_code == 404


def test_legacy_console_actions_exist_until_microversion_2_5(user: User, server: str) -> None:
    body = {"os-getVNCConsole": {"type": "novnc"}}
    resp = post(user, f"/servers/{server}/action", body, "2.5")
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["console"]) == {"type", "url"}
    assert post(user, f"/servers/{server}/action", body, "2.6").status_code == 404


@pytest.mark.parametrize(("body", "version", "message"), [
    ({"remote_console": {"protocol": "vnc", "type": "xvpvnc"}}, "2.6", "Invalid console type"),
    ({"remote_console": {"protocol": "spice", "type": "spice-html5"}}, "2.6",
     "Unavailable console type spice-html5."),
    ({"remote_console": {"protocol": "serial", "type": "serial"}}, "2.6",
     "Unavailable console type serial."),
    ({"remote_console": {"protocol": "mks", "type": "webmks"}}, "2.6", "is not one of"),
    ({"remote_console": {"protocol": "mks", "type": "webmks"}}, "2.8",
     "Unavailable console type webmks."),
    ({"remote_console": {"protocol": "vnc"}}, "2.6", "'type' is a required property"),
    ({"remote_console": {"protocol": "telnet", "type": "novnc"}}, "2.6", "is not one of"),
    ({"remote_console": {"protocol": "vnc", "type": "novnc", "x": 1}}, "2.6",
     "Additional properties"),
    ({"remote_console": "vnc"}, "2.6", "remote_console"),
])
def test_consoles_this_cloud_cannot_serve_are_bad_requests(user: User, server: str,
                                                            body: Any, version: str,
                                                            message: str) -> None:
    resp = post(user, f"/servers/{server}/remote-consoles", body, version)
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["badRequest"]["message"]


@pytest.mark.parametrize(("action", "kind", "message"), [
    ("os-getVNCConsole", "xvpvnc", "Invalid console type xvpvnc"),
    ("os-getSPICEConsole", "spice-html5", "Unavailable console type spice-html5."),
    ("os-getRDPConsole", "rdp-html5", "Unavailable console type rdp-html5."),
    ("os-getSerialConsole", "serial", "Unavailable console type serial."),
    ("os-getVNCConsole", "spice-html5", "is not one of"),
])
def test_legacy_actions_for_unavailable_consoles_are_bad_requests(
        user: User, server: str, action: str, kind: str, message: str) -> None:
    resp = post(user, f"/servers/{server}/action", {action: {"type": kind}}, "2.1")
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["badRequest"]["message"]


def test_no_console_for_a_stopped_or_missing_server(user: User) -> None:
    sid = user.osc("server", "create", "--flavor", "m1.tiny", "--image", "console-img",
                   "--nic", "none", "console-stopped")["id"]
    user.wait(sid, "ACTIVE")
    user.osc("server", "stop", sid, parse=False)
    user.wait(sid, "SHUTOFF")
    resp = post(user, f"/servers/{sid}/remote-consoles", VNC, "2.6")
    assert resp.status_code == 409 and "is not ready" in resp.json()["conflictingRequest"][
        "message"]
    assert post(user, f"/servers/{sid}/action", {"os-getVNCConsole": {"type": "novnc"}},
                "2.1").status_code == 409
    cli = user.osc("console", "url", "show", "--novnc", sid, parse=False, check=False)
    assert cli.returncode != 0 and "409" in cli.stderr
    missing = "00000000-0000-0000-0000-000000000000"
    assert post(user, f"/servers/{missing}/remote-consoles", VNC, "2.6").status_code == 404
    user.osc("server", "delete", sid, parse=False)


def test_another_projects_server_has_no_console_for_you(user: User, server: str,
                                                        identity: IdentityAdmin) -> None:
    stranger = identity.persona("console-stranger")
    resp = post(user, f"/servers/{server}/remote-consoles", VNC, "2.6", token=stranger.token)
    assert resp.status_code == 404, resp.text
    resp = post(user, f"/servers/{server}/action", {"os-getVNCConsole": {"type": "novnc"}},
                "2.1", token=stranger.token)
    assert resp.status_code == 404, resp.text


def test_a_reader_may_see_the_server_but_not_open_its_console(
        user: User, identity: IdentityAdmin) -> None:
    member = identity.persona("console-member")
    reader = identity.persona("console-reader", role="reader", project=member)
    image = user.osc("image", "show", "console-img")["id"]
    resp = httpx.post(f"{user.cloud.url('compute')}/v2.1/servers", headers={
        "X-Auth-Token": member.token}, json={"server": {
            "name": "members-vm", "imageRef": image, "flavorRef": "1", "networks": "none"}},
        timeout=30)
    assert resp.status_code == 202, resp.text
    sid = resp.json()["server"]["id"]
    user.wait(sid, "ACTIVE")
    assert post(user, f"/servers/{sid}/remote-consoles", VNC, "2.6",
                token=member.token).status_code == 200
    resp = post(user, f"/servers/{sid}/remote-consoles", VNC, "2.6", token=reader.token)
    assert resp.status_code == 403, resp.text
    user.api("DELETE", f"/servers/{sid}")


def _show_token(user: User, token: str, version: str, auth: Persona | None = None
                ) -> httpx.Response:
    headers = {"OpenStack-API-Version": f"compute {version}"}
    if auth is not None:
        headers["X-Auth-Token"] = auth.token
    return user.api("GET", f"/os-console-auth-tokens/{token}", headers=headers)


def test_console_auth_tokens_are_for_admins(user: User, server: str,
                                            identity: IdentityAdmin) -> None:
    url = post(user, f"/servers/{server}/remote-consoles", VNC, "2.6").json()[
        "remote_console"]["url"]
    token = token_in(url)
    shown = _show_token(user, token, "2.31")
    assert shown.status_code == 200, shown.text
    console = shown.json()["console"]
    assert console["instance_uuid"] == server
    assert console["host"] == "127.0.0.1" and isinstance(console["port"], int)
    assert "internal_access_path" in console
    cli = user.osc("--os-compute-api-version", "2.31", "console", "connection", "show", token)
    assert cli["instance_uuid"] == server and int(cli["port"]) == console["port"]
    # Before 2.31 only RDP tokens could be shown (Nova's rule).
    assert _show_token(user, token, "2.30").status_code == 401
    assert _show_token(user, "not-a-token", "2.31").status_code == 404
    member = identity.persona("console-tokens")
    assert _show_token(user, token, "2.31", auth=member).status_code == 403


def test_the_proxy_relays_the_vnc_handshake_for_a_valid_token(user: User, server: str,
                                                               cloud: CloudProcess) -> None:
    url = user.osc("console", "url", "show", "--novnc", server)["url"]
    banner, types = rfb_handshake(ws_url(cloud, token_in(url)))
    assert banner == b"RFB 003.008\n"
    assert types[0] >= 1 and len(types) == 1 + types[0]
    # The token may also ride in noVNC's own "path" parameter, as the page URL has it.
    query = urlsplit(url).query
    assert rfb_handshake(f"ws://127.0.0.1:{cloud.ports['novncproxy']}/websockify?{query}"
                         )[0] == b"RFB 003.008\n"


def test_the_proxy_refuses_bad_tokens_and_foreign_origins(user: User, server: str,
                                                          cloud: CloudProcess) -> None:
    assert refused(ws_url(cloud, "00000000-1111-2222-3333-444444444444")) == 403
    assert refused(f"ws://127.0.0.1:{cloud.ports['novncproxy']}/") == 403
    url = user.osc("console", "url", "show", "--novnc", server)["url"]
    token = token_in(url)
    assert refused(ws_url(cloud, token), origin=Origin("http://evil.example")) == 403
    banner, _ = rfb_handshake(ws_url(cloud, token),
                              origin=Origin("http://127.0.0.1:6080"))
    assert banner == b"RFB 003.008\n"


def test_a_deleted_servers_console_token_stops_working(user: User, cloud: CloudProcess
                                                       ) -> None:
    sid = user.osc("server", "create", "--flavor", "m1.tiny", "--image", "console-img",
                   "--nic", "none", "console-doomed")["id"]
    user.wait(sid, "ACTIVE")
    token = token_in(user.osc("console", "url", "show", "--novnc", sid)["url"])
    assert rfb_handshake(ws_url(cloud, token))[0] == b"RFB 003.008\n"
    user.osc("server", "delete", sid, parse=False)
    user.wait(sid, "DELETED")
    assert refused(ws_url(cloud, token)) == 403
    assert _show_token(user, token, "2.31").status_code == 404


def test_the_proxy_serves_the_novnc_page(cloud: CloudProcess) -> None:
    resp = httpx.get(f"http://127.0.0.1:{cloud.ports['novncproxy']}/vnc_lite.html")
    if resp.status_code == 404:
        assert "apt-get install novnc" in resp.text
        pytest.skip("Debian's novnc package is not installed here; scripts/install.sh "
                    "installs it (apt-get install novnc), then this test runs")
    assert resp.status_code == 200 and "noVNC" in resp.text
    core = httpx.get(f"http://127.0.0.1:{cloud.ports['novncproxy']}/core/rfb.js")
    assert core.status_code == 200
