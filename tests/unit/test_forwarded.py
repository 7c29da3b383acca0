"""The client's address from the peer and X-Forwarded-For (server/forwarded.py)."""

from __future__ import annotations

import ipaddress

import pytest

from server.forwarded import forwarded_client, parse_address, parse_networks, throttle_key
from server.settings import ConfigError, load_settings

PROXIES = parse_networks(["10.0.0.0/24", "fd00::/64"])
NGINX = "10.0.0.2"


def client(peer: str | None, *headers: str) -> str | None:
    return forwarded_client(peer, headers, PROXIES)


def test_without_a_header_a_trusted_peer_is_the_client() -> None:
    assert client(NGINX) == NGINX


def test_a_trusted_peer_forwards_its_client() -> None:
    assert client(NGINX, "203.0.113.7") == "203.0.113.7"
    assert client("fd00::2", "2001:db8::7") == "2001:db8::7"


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert client("198.51.100.3", "10.0.0.9") == "198.51.100.3"
    assert client("198.51.100.3", "203.0.113.7, 10.0.0.2") == "198.51.100.3"


def test_entries_a_client_wrote_left_of_the_real_one_are_ignored() -> None:
    # nginx with $proxy_add_x_forwarded_for appends the address it saw to what the client sent.
    assert client(NGINX, "127.0.0.1, 10.0.0.9, 203.0.113.7") == "203.0.113.7"


def test_the_walk_skips_trusted_proxies_from_the_right() -> None:
    # client -> edge proxy (10.0.0.3) -> nginx (10.0.0.2) -> Liaison
    assert client(NGINX, "198.51.100.1, 203.0.113.7, 10.0.0.3") == "203.0.113.7"


def test_several_headers_are_one_list_in_order() -> None:
    assert client(NGINX, "198.51.100.1", "203.0.113.7, 10.0.0.3") == "203.0.113.7"
    assert client(NGINX, "203.0.113.7, 10.0.0.3", "10.0.0.4") == "203.0.113.7"


def test_when_every_entry_is_a_proxy_the_farthest_one_is_the_client() -> None:
    assert client(NGINX, "10.0.0.5, 10.0.0.3") == "10.0.0.5"


@pytest.mark.parametrize(
    "header",
    [
        "unknown",
        "203.0.113.7:51234",
        "[2001:db8::7]",
        "fe80::1%eth0",
        "",
        " , ",
        "203.0.113.7 198.51.100.1",
        "1" * 100,
    ],
)
def test_a_malformed_entry_stops_the_walk_at_the_proxy_that_passed_it(header: str) -> None:
    assert client(NGINX, header) == NGINX
    # What lies beyond it could have been written by anyone.
    assert client(NGINX, f"203.0.113.7, {header}, 10.0.0.3") == "10.0.0.3"


def test_addresses_are_written_the_one_canonical_way() -> None:
    assert client(NGINX, " 2001:DB8:0:0::7 ") == "2001:db8::7"
    assert client(NGINX, "::ffff:203.0.113.7") == "203.0.113.7"
    # A dual-stack listener reports an IPv4 proxy as ::ffff:a.b.c.d; it is still trusted.
    assert client("::ffff:10.0.0.2", "203.0.113.7") == "203.0.113.7"


def test_a_peer_that_is_no_ip_address_is_kept_as_it_is() -> None:
    assert client(None, "203.0.113.7") is None
    assert client("", "203.0.113.7") == ""


def test_with_no_trusted_proxies_the_header_is_never_read() -> None:
    assert forwarded_client("127.0.0.1", ["203.0.113.7"], ()) == "127.0.0.1"


def test_parse_address_takes_only_plain_addresses() -> None:
    assert parse_address("203.0.113.7") == ipaddress.ip_address("203.0.113.7")
    assert parse_address("example.org") is None
    assert parse_address("203.0.113.7/32") is None


# --- What a per-client limit counts ---------------------------------------------------------------


def test_an_ipv4_client_is_counted_by_its_address() -> None:
    assert throttle_key("203.0.113.7") == "203.0.113.7"
    assert throttle_key("203.0.113.8") != throttle_key("203.0.113.7")


def test_an_ipv6_client_is_counted_by_its_64() -> None:
    assert throttle_key("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert throttle_key("2001:DB8:1:2:0:0:0:1") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::7") == "2001:db8:1:3::/64"
    assert throttle_key("::1") == "::/64"


def test_an_ipv4_mapped_address_is_counted_as_its_ipv4_address() -> None:
    assert throttle_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert throttle_key("::ffff:203.0.113.8") == "203.0.113.8"


def test_what_is_no_ip_address_is_counted_as_it_is() -> None:
    assert throttle_key("unknown") == "unknown"
    assert throttle_key("fe80::1%eth0") == "fe80::1%eth0"


def test_a_malformed_trusted_proxy_stops_the_server_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies .*10\.0\.0\.1/8"):
        load_settings(environ={"LIAISON_SERVER__TRUSTED_PROXIES": '["10.0.0.0/8", "10.0.0.1/8"]'})
    with pytest.raises(ConfigError, match=r"LIAISON_SERVER__TRUSTED_PROXIES"):
        load_settings(environ={"LIAISON_SERVER__TRUSTED_PROXIES": '["nginx.internal"]'})


def test_trusted_proxies_default_to_none() -> None:
    assert load_settings(environ={}).server.trusted_proxies == []
