"""The compute side of networking that needs no network service: request parsing,
the addresses view, and the vif-plugged waiter."""

from __future__ import annotations

import asyncio

import pytest

from stratus.compute import network
from stratus.compute.api.microversion import Version
from stratus.errors import BadRequest

NET = "6f1e3a52-0d5b-4c52-9d0e-1b7d3f8f2a11"
PORT = "0b9d4d9e-8b8e-4b83-a3f5-0e8f0b4b5a22"


def v(text: str) -> Version:
    return Version.parse(text)


def test_networks_are_required_from_2_37_and_mean_auto_before() -> None:
    with pytest.raises(BadRequest):
        network.parse_request(None, v("2.37"), present=False)
    assert network.parse_request(None, v("2.36"), present=False) == network.AUTO


def test_a_list_becomes_nics_and_an_empty_one_means_none() -> None:
    nics = network.parse_request([{"uuid": NET, "fixed_ip": "10.0.0.5"}, {"port": PORT}],
                                 v("2.37"), present=True)
    assert nics == [network.Nic(network_id=NET, fixed_ip="10.0.0.5"),
                    network.Nic(port_id=PORT)]
    assert network.parse_request([], v("2.37"), present=True) == network.NONE


@pytest.mark.parametrize("bad", [
    [{"uuid": "not-a-uuid"}], [{"port": PORT, "fixed_ip": "10.0.0.5"}],
    [{"uuid": NET, "fixed_ip": "10.0.0.999"}], [{}], "everything", [{"uuid": NET, "x": 1}]])
def test_bad_network_requests_are_400(bad: object) -> None:
    with pytest.raises(BadRequest):
        network.parse_request(bad, v("2.37"), present=True)


def test_addresses_list_fixed_then_floating_per_network_with_the_mac() -> None:
    vifs = [{"port_id": PORT, "network_id": NET, "network_name": "private",
             "mac": "fa:16:3e:00:00:01", "fixed_ips": [{"address": "10.0.0.5", "version": 4}],
             "floating_ips": [{"address": "172.24.4.9", "version": 4}],
             "security_groups": ["default"]}]
    assert network.addresses(vifs) == {"private": [
        {"version": 4, "addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed",
         "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"},
        {"version": 4, "addr": "172.24.4.9", "OS-EXT-IPS:type": "floating",
         "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01"}]}
    assert network.security_groups(vifs) == [{"name": "default"}]


async def test_vif_events_wait_for_every_port_and_time_out_naming_the_missing() -> None:
    events = network.VifEvents()
    with events.expect("vm", ["p1", "p2"]) as futures:
        assert events.deliver("vm", "network-vif-plugged", "p1", "completed")
        assert not events.deliver("other", "network-vif-plugged", "p2", "completed")
        with pytest.raises(network.VifPlugTimeout, match="p2"):
            await network.VifEvents.wait(futures, 0.05)
    with events.expect("vm", ["p1"]) as futures:
        asyncio.get_running_loop().call_soon(events.deliver, "vm", "network-vif-plugged",
                                             "p1", "completed")
        await network.VifEvents.wait(futures, 1)
    assert not events.deliver("vm", "network-vif-plugged", "p1", "completed")  # forgotten


async def test_a_failed_vif_event_fails_the_wait() -> None:
    events = network.VifEvents()
    with events.expect("vm", ["p1"]) as futures:
        events.deliver("vm", "network-vif-plugged", "p1", "failed")
        with pytest.raises(network.VifPlugTimeout, match="could not plug"):
            await network.VifEvents.wait(futures, 1)
