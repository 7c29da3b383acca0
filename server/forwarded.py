"""The client's address, which behind a reverse proxy is not the connection's.

``request.remote`` is the peer: behind nginx, nginx. The client's address is taken from
``X-Forwarded-For`` only when the peer is in ``server.trusted_proxies``, walking the header from
the right (the entry the nearest proxy appended) and skipping entries that are themselves
trusted proxies; the first one that is not is the client. Entries further left were written by
whoever connected to the outermost proxy, so a client can put anything there, and the walk never
gets that far unless every proxy on the way is trusted.

An entry that is not an IP address stops the walk at the trusted proxy that passed it on:
skipping it would move on to entries a client may have written.

``X-Forwarded-Proto`` is not read. Liaison decides ``Secure`` cookies and the allowed origins
from ``server.public_url``, never from the request's scheme; the only use of the scheme is HSTS
on connections Liaison terminates itself (server/http.py), which the proxy adds on its own.

Everything that needs the client's address calls :func:`client_address`; the audit trail reads
:data:`client_address_var`, which the middleware sets for the whole request (socket.io events
run in tasks started from the socket's request, and inherit its address with the context).
Limits that count per client count per :func:`throttle_key`, which groups an IPv6 client's
addresses; the audit trail keeps the full address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final

from aiohttp import web
from aiohttp.typedefs import Middleware

if TYPE_CHECKING:  # the audit log imports this module and needs none of the HTTP plumbing
    from server.http import Handler

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CLIENT_ADDRESS: Final = web.RequestKey[str | None]("client_address")
client_address_var: ContextVar[str | None] = ContextVar("client_address", default=None)

# The longest textual IP address (IPv6 with an embedded IPv4 address): longer is not one.
_MAX_ADDRESS_CHARS: Final = 45

# What one IPv6 client is given (RFC 6177: a home line, a phone or a cloud server gets a /64 or
# more) and can pick any address inside.
IPV6_CLIENT_PREFIX: Final = 64


def parse_address(text: str) -> Address | None:
    """An address as a proxy writes it, or None for anything else (a port, a zone, a name)."""
    text = text.strip()
    if not text or len(text) > _MAX_ADDRESS_CHARS or "%" in text:
        return None
    try:
        return unmapped(ipaddress.ip_address(text))
    except ValueError:
        return None


def unmapped(address: Address) -> Address:
    """A dual-stack listener sees IPv4 peers as ``::ffff:a.b.c.d``: the IPv4 address they are."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def throttle_key(address: str) -> str:
    """What a per-client limit counts for ``address``: an IPv4 address as it is, an IPv6
    address by its /64 (``2001:db8:1:2::/64``), an IPv4-mapped one as its IPv4 address.

    Counting IPv6 addresses one by one would give a client that rotates through its /64 a fresh
    budget per address. Anything that is not an IP address (a missing peer's ``"unknown"``) is
    counted as it is.
    """
    parsed = parse_address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


def in_networks(address: Address, networks: Iterable[Network]) -> bool:
    return any(address in network for network in networks)


def forwarded_client(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str | None:
    """The client's address, given the peer's, the ``X-Forwarded-For`` header values in the
    order received and the trusted proxies' networks."""
    nearest = parse_address(peer) if peer else None
    if nearest is None or not in_networks(nearest, trusted):
        return peer
    # Several headers are one list, in order (RFC 9110 5.3).
    entries = [entry for value in forwarded_for for entry in value.split(",")]
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            break
        nearest = address
        if not in_networks(address, trusted):
            break
    return str(nearest)


def parse_networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs as networks; settings have validated them (ValueError otherwise)."""
    return tuple(ipaddress.ip_network(cidr) for cidr in cidrs)


def client_address(request: web.Request) -> str | None:
    """The client's address as the middleware worked it out; the peer's without it."""
    if CLIENT_ADDRESS in request:
        return request[CLIENT_ADDRESS]
    return request.remote


def client_address_middleware(trusted_proxies: Iterable[str]) -> Middleware:
    trusted = parse_networks(trusted_proxies)

    @web.middleware
    async def set_client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
        if trusted:
            address = forwarded_client(
                request.remote, request.headers.getall("X-Forwarded-For", ()), trusted
            )
        else:
            address = request.remote
        request[CLIENT_ADDRESS] = address
        token = client_address_var.set(address)
        try:
            return await handler(request)
        finally:
            client_address_var.reset(token)

    return set_client_address
