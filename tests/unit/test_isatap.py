from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from fleet.isatap import (
    embedded_ipv4,
    interface_id,
    is_globally_unique,
    isatap_address,
    link_local_address,
    parse_ipv4,
    parse_prefix,
)

ARTICLE_PREFIX = IPv6Network("2002:ca0c:1e01::/64")


def test_article_addresses():
    assert isatap_address(ARTICLE_PREFIX, IPv4Address("172.31.14.146")) == \
        IPv6Address("2002:ca0c:1e01::5efe:ac1f:e92")
    assert isatap_address(ARTICLE_PREFIX, IPv4Address("172.31.14.147")) == \
        IPv6Address("2002:ca0c:1e01::5efe:ac1f:e93")


def test_globally_unique_ipv4_sets_the_u_bit():
    assert isatap_address(ARTICLE_PREFIX, IPv4Address("192.0.43.10")) == \
        IPv6Address("2002:ca0c:1e01:0:200:5efe:c000:2b0a")


@pytest.mark.parametrize("ipv4", ["0.1.2.3", "10.0.0.1", "127.0.0.1", "169.254.1.1", "172.16.0.1",
                                  "172.31.255.255", "192.0.2.1", "192.88.99.1", "192.168.1.1",
                                  "198.18.0.1", "198.19.255.254", "224.0.0.1", "239.1.1.1",
                                  "255.255.255.255"])
def test_kernel_list_of_not_globally_unique(ipv4):
    assert not is_globally_unique(IPv4Address(ipv4))
    assert interface_id(IPv4Address(ipv4)) >> 32 == 0x5EFE


@pytest.mark.parametrize("ipv4", ["100.64.0.1", "100.127.255.254", "172.32.0.1", "172.15.255.255",
                                  "198.20.0.1", "8.8.8.8", "192.0.3.1", "223.255.255.255"])
def test_everything_else_is_globally_unique(ipv4):
    # 100.64/10 included: the kernel sets the u bit where Python's is_private says "private".
    assert is_globally_unique(IPv4Address(ipv4))
    assert interface_id(IPv4Address(ipv4)) >> 32 == 0x0200_5EFE


def test_link_local_matches_what_the_kernel_adds():
    assert link_local_address(IPv4Address("172.31.0.11")) == IPv6Address("fe80::5efe:ac1f:b")


def test_embedded_ipv4_round_trips_and_rejects_non_isatap():
    for text in ("172.31.14.146", "8.8.8.8"):
        assert embedded_ipv4(isatap_address(ARTICLE_PREFIX, IPv4Address(text))) == IPv4Address(text)
    assert embedded_ipv4(IPv6Address("2002:ca0c:1e01::1")) is None


@pytest.mark.parametrize("text, message", [
    ("2002:ca0c:1e01::/48", "/48; ISATAP needs a /64"),
    ("2002:ca0c:1e01::1/64", "host bits"),
    ("10.0.0.0/8", "not an IPv6 prefix"),
    ("nonsense", "not an IPv6 prefix"),
])
def test_bad_prefixes(text, message):
    with pytest.raises(ValueError, match=message.replace("/", "/")):
        parse_prefix(text)


def test_prefix_is_compared_as_an_object():
    assert parse_prefix("2002:CA0C:1E01:0000::/64") == ARTICLE_PREFIX


@pytest.mark.parametrize("text, message", [
    ("300.1.1.1", "not an IPv4 address"),
    ("abc", "not an IPv4 address"),
    ("::1", "not an IPv4 address"),
    ("10.0.0.1; reboot", "not an IPv4 address"),
    ("0.0.0.0", "in 'this network', not a host address (0.0.0.0/8)"),
    ("0.1.2.3", "in 'this network', not a host address (0.0.0.0/8)"),
    ("127.0.0.1", "loopback (127.0.0.0/8)"),
    ("127.255.255.254", "loopback (127.0.0.0/8)"),
    ("169.254.0.1", "link-local (169.254.0.0/16)"),
    ("169.254.255.254", "link-local (169.254.0.0/16)"),
    ("224.0.0.1", "multicast (224.0.0.0/4)"),
    ("239.255.255.255", "multicast (224.0.0.0/4)"),
    ("240.0.0.1", "reserved (240.0.0.0/4)"),
    ("255.255.255.254", "reserved (240.0.0.0/4)"),
    ("255.255.255.255", "the limited broadcast address (255.255.255.255/32)"),
])
def test_bad_tunnel_ipv4_says_why(text, message):
    with pytest.raises(ValueError) as caught:
        parse_ipv4(text)
    assert message in str(caught.value)


@pytest.mark.parametrize("text", ["1.0.0.0", "10.0.0.1", "126.255.255.255", "128.0.0.0", "169.253.255.255",
                                  "169.255.0.0", "172.31.14.146", "223.255.255.255", "100.64.0.1"])
def test_unicast_tunnel_ipv4_is_accepted(text):
    assert parse_ipv4(text) == IPv4Address(text)


def test_python_keeps_a_scope_id_in_a_prefix():
    # Why parse_prefix must look for one itself: ipaddress takes it and keeps it in the text.
    assert str(IPv6Network("fd00::%1/64")) == "fd00::%1/64"


@pytest.mark.parametrize("text", ["fe80::%eth0/64", "fd00::%1/64", "2002:ca0c:1e01::%sit1/64"])
def test_prefix_with_a_scope_id_is_refused(text):
    with pytest.raises(ValueError, match="has a scope id"):
        parse_prefix(text)
