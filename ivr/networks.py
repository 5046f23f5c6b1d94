"""IP networks from settings (CIDR strings) and membership tests, shared by SIP and media checks."""

from __future__ import annotations

import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(specs: tuple[str, ...]) -> tuple[Network, ...]:
    """CIDR strings (validated by settings) as network objects; a bare address is a /32 or /128."""
    return tuple(ipaddress.ip_network(spec, strict=False) for spec in specs)


def in_networks(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
