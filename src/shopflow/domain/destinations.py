"""Where a flow's webhook may go: never into the network Shopflow runs in, unless the workspace says so.

A webhook step sends an HTTP request to a URL a marketer typed. Without a guard that is a
server-side request forgery: `http://127.0.0.1:5432`, `http://169.254.169.254/latest/meta-data/`
(a cloud's metadata service), `http://10.0.0.7/admin` all reach what only Shopflow's own host
should. The rule: a destination must be a *global* address. Loopback, private (RFC 1918, ULA),
link-local, shared (CGNAT), multicast, reserved and unspecified addresses are refused, and so are
IPv6 forms that wrap an IPv4 address (mapped, 6to4, NAT64's well-known prefix) when the address
inside is refused. A workspace may allow them (`webhooks_allow_private: true`) for a receiver on
its own network.

Two checks use this rule. At flow validation, a URL whose host is an address literal or a name that
is local by definition (`localhost`, `*.localhost`, `*.local`, `*.internal`) is refused with the
node's path. At run time, every address the host name resolves to is checked again, and the
connection goes to the checked address itself (flows/webhooks.py), so a name that resolves to a
private address (or changes its answer between check and connect) is refused too.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ALLOW_SETTING = "webhooks_allow_private"

_LOCAL_NAMES = ("localhost",)
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _inner_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: Address) -> str | None:
    """Why a connection to `ip` is refused, or None when it is a global unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _inner_ipv4(ip)
        if inner is not None:
            why = address_refusal(inner)
            return f"{why} (inside {ip})" if why else None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if not ip.is_global:
        return f"{ip} is a private or reserved address"
    return None


def host_refusal(host: str) -> str | None:
    """Why a URL host is refused without resolving it: an address literal that is not global, or
    a name that is local by definition. None when only DNS can tell."""
    name = host.strip("[]").rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return address_refusal(ip)
    if "." not in name and name.isdigit():
        return f"{host} is a numeric host"  # 2130706433 is 127.0.0.1 to many resolvers
    if name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        return f"{host} is a local host name"
    return None


def url_refusal(url: str) -> str | None:
    """`host_refusal` for a URL's host (None for a URL without one; the URL's own validation
    refuses those)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host_refusal(host) if host else None


def private_allowed(settings: dict[str, object]) -> bool:
    return settings.get(ALLOW_SETTING) is True
