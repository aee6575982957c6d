from ipaddress import IPv4Address, IPv6Interface
from pathlib import Path

import pytest

from fleet.tunnel.iproute import ABSENT, ParseError, parse_global_ipv6, parse_tunnel

# captured from the lab's guests (iproute2 6.1)
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "ip"


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def test_isatap_tunnel():
    state = parse_tunnel(golden("link-isatap.json"), golden("addr-isatap.json"))
    assert state.exists and state.kind == "sit" and state.isatap and state.up
    assert state.local == IPv4Address("172.31.0.11") and state.remote == "any"
    assert state.mtu == 1480
    # the kernel's own fe80::5efe:... is left out
    assert state.addresses == (IPv6Interface("fd00:5efe:1ab::5efe:ac1f:b/64"),)


def test_plain_sit_is_not_isatap():
    state = parse_tunnel(golden("link-plain-sit.json"), "")
    assert state.kind == "sit" and not state.isatap


def test_down_link_without_address():
    state = parse_tunnel(golden("link-down.json"), golden("addr-none.json"))
    assert state.exists and not state.up and state.addresses == ()


def test_no_device_is_empty_output():
    assert parse_tunnel("", "") == ABSENT


def test_garbage_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_tunnel("Device \"sit1\" does not exist.", "")
    with pytest.raises(ParseError):
        parse_global_ipv6('{"not": "a list"}')
