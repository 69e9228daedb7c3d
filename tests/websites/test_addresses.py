"""The address rule against every IANA special-purpose block, and the IPv4 addresses that hide
inside IPv6 ones (mapped, 6to4, Teredo, NAT64)."""

from __future__ import annotations

import ipaddress

import pytest

from neonrain.websites.fetch import Fetcher, FetchError, address_problem
from tests.websites.conftest import Connections, FakeResolver

#: Written out here, apart from the code's table, from the IANA IPv4 and IPv6 Special-Purpose
#: Address Registries (plus multicast and the deprecated site-local range).
IANA_SPECIAL_PURPOSE = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.0.8/32",
    "192.0.0.9/32",
    "192.0.0.10/32",
    "192.0.0.170/32",
    "192.0.0.171/32",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:1::3/128",
    "2001:2::/48",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:30::/28",
    "2001:db8::/32",
    "2002::/16",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
]


@pytest.mark.parametrize("block", IANA_SPECIAL_PURPOSE)
def test_every_special_purpose_block_is_refused(block: str) -> None:
    network = ipaddress.ip_network(block)
    middle = network.network_address + network.num_addresses // 2
    for address in (network.network_address, middle, network.broadcast_address):
        assert address_problem(address) is not None, address


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",  # just below 100.64.0.0/10
        "100.128.0.0",  # just above
        "192.0.1.1",
        "192.88.98.255",
        "192.88.100.0",
        "198.17.255.255",
        "198.20.0.0",
        "2606:4700::1111",
        "2001:200::1",  # just above 2001::/23
        "2620:4f:8001::1",
        "3fff:1000::1",  # just above 3fff::/20
        "::ffff:8.8.8.8",  # IPv4-mapped: the IPv4 address decides
        "64:ff9b::808:808",  # NAT64 of a public address (IPv6-only networks need these)
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("::ffff:192.0.0.9", "special-purpose (IETF protocol assignments, 192.0.0.0/24)"),
        ("64:ff9b::c058:6301", "special-purpose (deprecated 6to4 relay anycast, 192.88.99.0/24)"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of the metadata address
        ("2002:808:808::1", "special-purpose (6to4, 2002::/16)"),  # 6to4 of a public one
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
    ],
)
def test_ipv4_inside_ipv6_is_judged(address: str, problem: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://192.0.0.9/", "refused: the address 192.0.0.9 is special-purpose"),
        ("http://192.88.99.1/", "refused: the address 192.88.99.1 is special-purpose"),
        ("http://[3fff::1]/", "refused: the address 3fff::1 is special-purpose"),
        ("http://198.18.0.1/", "refused: the address 198.18.0.1 is "),
        ("http://[2001:db8::1]/", "refused: the address 2001:db8::1 is "),
    ],
)
async def test_special_purpose_addresses_are_refused_without_connecting(
    url: str, message: str, connections: Connections
) -> None:
    with pytest.raises(FetchError) as raised:
        await Fetcher(resolver=FakeResolver()).fetch(url)
    assert raised.value.refused
    assert raised.value.message.startswith(message), raised.value.message
    assert connections.attempts == []


async def test_a_name_resolving_into_a_special_purpose_block_is_refused(
    connections: Connections,
) -> None:
    resolver = FakeResolver({"docs.example": ["93.184.216.34", "3fff::10"]})
    with pytest.raises(FetchError) as raised:
        await Fetcher(resolver=resolver).fetch("https://docs.example/")
    assert raised.value.message == (
        "refused: docs.example resolves to 3fff::10, which is special-purpose "
        "(documentation, 3fff::/20)"
    )
    assert connections.attempts == []
