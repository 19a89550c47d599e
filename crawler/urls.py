"""URL helpers: canonical form of article URLs, and the address check that keeps the crawler off private networks."""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import courlan
from w3lib.url import canonicalize_url

# Hostnames that reach cloud instance metadata or the machine itself whatever DNS says.
BLOCKED_HOSTNAMES = {"localhost", "metadata.google.internal", "metadata", "instance-data"}


def canonical_url(url: str) -> str:
    """Canonical URL: lower-case host, tracking parameters and fragment dropped, query sorted."""
    normalized = courlan.normalize_url(url.strip(), strict=False)
    return canonicalize_url(normalized)


def host_port(url: str) -> str:
    """'host:port' of a URL (port defaulted from the scheme)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (incl. 169.254.169.254 metadata), reserved, multicast."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def is_allowlisted(url: str, allowlist: list[str] | tuple[str, ...]) -> bool:
    """An allowlist entry is 'host' (any port) or 'host:port'."""
    hp = host_port(url)
    host = hp.rsplit(":", 1)[0]
    return hp in allowlist or host in allowlist
