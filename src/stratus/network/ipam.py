"""Pure IP address management: subnet validation, pools and address choice.

No database here. The guarantee that an address is handed out once comes
from the ``ip_allocations`` primary key; this module only proposes
candidates (randomised among the first free ones, so concurrent workers
rarely propose the same address) and checks what users ask for.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import socket
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stratus.errors import BadRequest, Conflict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
# Modes in which addresses come from the MAC (EUI-64) rather than the pools.
AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
CANDIDATE_WINDOW = 16


def invalid(message: str) -> BadRequest:
    return BadRequest(f"Invalid input for operation: {message}", kind="InvalidInput")


def parse_ip(value: Any, what: str = "ip_address") -> IPAddress:
    if not isinstance(value, str):
        raise invalid(f"'{value}' is not a valid IP address for {what}.")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP address.") from None


def parse_cidr(value: Any, what: str = "cidr") -> IPNetwork:
    if not isinstance(value, str) or "/" not in value:
        raise invalid(f"'{value}' is not a valid IP subnet.")
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise invalid(f"'{value}' is not a valid IP subnet.") from None
    if str(net) != value.lower() and what == "cidr":
        raise invalid(f"'{value}' isn't a recognized IP subnet cidr, '{net}' is recommended.")
    return net


@dataclass(frozen=True)
class Pool:
    start: IPAddress
    end: IPAddress

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start), "end": str(self.end)}

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, type(self.start)) and self.start <= ip <= self.end

    @property
    def size(self) -> int:
        return int(self.end) - int(self.start) + 1


def host_bounds(net: IPNetwork) -> tuple[IPAddress, IPAddress]:
    """First and last address a host may have (v4 skips network and broadcast)."""
    if net.version == 4 and net.prefixlen <= 30:
        return net.network_address + 1, net.broadcast_address - 1
    if net.version == 6 and net.prefixlen < 128:
        return net.network_address + 1, net.broadcast_address
    return net.network_address, net.broadcast_address


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[Pool]:
    first, last = host_bounds(net)
    if gateway is None or not first <= gateway <= last:
        return [Pool(first, last)]
    pools = []
    if gateway > first:
        pools.append(Pool(first, gateway - 1))
    if gateway < last:
        pools.append(Pool(gateway + 1, last))
    return pools


def parse_pools(raw: Any, net: IPNetwork) -> list[Pool]:
    if not isinstance(raw, list):
        raise invalid("allocation_pools must be a list of {'start', 'end'} objects.")
    pools = []
    first, last = host_bounds(net)
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise invalid(f"Invalid allocation pool {item!r}; it needs exactly start and end.")
        start, end = parse_ip(item["start"]), parse_ip(item["end"])
        if start.version != net.version or end.version != net.version or start > end:
            raise BadRequest(f"The allocation pool {item['start']}-{item['end']} spans beyond "
                             f"the subnet cidr {net}.", kind="InvalidAllocationPool")
        if not (first <= start and end <= last):
            raise BadRequest(f"The allocation pool {start}-{end} spans beyond the subnet "
                             f"cidr {net}.", kind="OutOfBoundsAllocationPool")
        pools.append(Pool(start, end))
    pools.sort(key=lambda p: int(p.start))
    for a, b in itertools.pairwise(pools):
        if b.start <= a.end:
            raise BadRequest(f"Found overlapping allocation pools: {a.start}-{a.end} and "
                             f"{b.start}-{b.end}.", kind="OverlappingAllocationPools")
    return pools


def check_gateway(gateway: IPAddress, net: IPNetwork, pools: Sequence[Pool]) -> None:
    if gateway.version != net.version or gateway not in net:
        raise invalid(f"Gateway IP {gateway} is not in subnet {net}.")
    if net.version == 4 and net.prefixlen <= 30 and gateway in (net.network_address,
                                                               net.broadcast_address):
        raise invalid(f"Gateway is not valid on subnet: {gateway} is the network or "
                      f"broadcast address of {net}.")
    for pool in pools:
        if gateway in pool:
            raise Conflict(f"Gateway ip {gateway} conflicts with allocation pool "
                           f"{pool.start}-{pool.end}.", kind="GatewayConflictWithAllocationPools")


def check_ipv6_modes(ip_version: int, ra_mode: Any, address_mode: Any,
                     net: IPNetwork) -> None:
    for name, mode in (("ipv6_ra_mode", ra_mode), ("ipv6_address_mode", address_mode)):
        if mode is None:
            continue
        if ip_version != 6:
            raise invalid(f"{name} set to '{mode}' with ip_version set to '4' is not valid. "
                          "Modes are only valid for IPv6.")
        if mode not in IPV6_MODES:
            raise invalid(f"'{mode}' is not in {list(IPV6_MODES)}")
    if ra_mode is not None and address_mode is not None and ra_mode != address_mode:
        raise invalid(f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to "
                      f"'{address_mode}' is not valid. If both attributes are set, they must "
                      "be the same value.")
    if address_mode in AUTO_ADDRESS_MODES and net.prefixlen != 64:
        raise invalid(f"Invalid CIDR {net} for IPv6 address mode. OpenStack uses the EUI-64 "
                      "address format, which requires the prefix to be /64.")


def check_dns(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise invalid("dns_nameservers must be a list of IP addresses.")
    seen: list[str] = []
    for item in raw:
        ip = str(parse_ip(item, "dns_nameservers"))
        if ip in seen:
            raise invalid(f"Duplicate nameserver '{item}'.")
        seen.append(ip)
    return seen


def check_host_routes(raw: Any, ip_version: int | None = None) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise invalid("host_routes/routes must be a list of {'destination', 'nexthop'}.")
    out: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise invalid(f"Invalid route {item!r}; it needs exactly destination and nexthop.")
        dest = parse_cidr(item["destination"], "destination")
        hop = parse_ip(item["nexthop"], "nexthop")
        if ip_version is not None and (dest.version != ip_version or hop.version != ip_version):
            raise invalid(f"Route {item!r} does not match the subnet's IP version.")
        route = {"destination": str(dest), "nexthop": str(hop)}
        if route in out:
            raise invalid(f"Duplicate route {route}.")
        out.append(route)
    return out


def check_overlap(net: IPNetwork, others: Iterable[str], network_id: str) -> None:
    for other in others:
        if net.overlaps(ipaddress.ip_network(other)):
            raise invalid(f"Requested subnet with cidr: {net} for network: {network_id} "
                          "overlaps with another subnet.")


def eui64(net: IPNetwork, mac: str) -> IPAddress:
    """The SLAAC address a host with ``mac`` takes in the /64 ``net``."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = octets[:3] + [0xFF, 0xFE] + octets[3:]
    value = int.from_bytes(bytes(iid), "big")
    return ipaddress.ip_address(int(net.network_address) | value)


def pools_of(raw: Sequence[dict[str, str]]) -> list[Pool]:
    return [Pool(ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])) for p in raw]


def candidates(pools: Sequence[Pool], used: set[str], *, rng: random.Random | None = None,
               window: int = CANDIDATE_WINDOW) -> Iterator[IPAddress]:
    """Free addresses in ``pools``, in a shuffled order of the first few free ones.

    Shuffling the first ``window`` free addresses keeps allocation compact
    while making it unlikely that two workers propose the same one.
    """
    rng = rng or random.Random()
    found: list[IPAddress] = []
    for pool in pools:
        want = window - len(found)
        if want <= 0:
            break
        if pool.start.version == 4:
            found += _free_v4(pool, used, want)
            continue
        ip = pool.start
        big = pool.size > 1 << 20
        tries = 0
        while ip <= pool.end and len(found) < window:
            if str(ip) not in used:
                found.append(ip)
            if big:  # IPv6-sized pools: sample instead of walking
                tries += 1
                if tries > 4 * window:
                    break
                ip = type(pool.start)(int(pool.start) + rng.randrange(pool.size))
            else:
                ip += 1
    rng.shuffle(found)
    yield from found


def _free_v4(pool: Pool, used: set[str], want: int) -> list[IPAddress]:
    """The first ``want`` free addresses of an IPv4 pool (walks ints: str(IPv4Address) is slow)."""
    out: list[IPAddress] = []
    value, end = int(pool.start), int(pool.end)
    while value <= end and len(out) < want:
        text = socket.inet_ntoa(value.to_bytes(4, "big"))
        if text not in used:
            out.append(ipaddress.IPv4Address(value))
        value += 1
    return out


def contains(net: IPNetwork, ip: IPAddress) -> bool:
    return ip.version == net.version and ip in net
