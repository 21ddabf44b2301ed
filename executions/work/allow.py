"""REDRIVE_HTTP_ALLOW: the addresses HTTP work may connect to.

A comma-separated list of host names, IP addresses or CIDR ranges, each with an optional `:port`
(IPv6 in brackets when it has one: `[fd00::/8]:443`), and `*` for any public address. Private,
loopback, link-local and other special-purpose addresses are refused unless an entry names them
(by address, range, or the host name that resolves to them).

No Django here: project/settings.py parses the variable with it at start-up.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$"
)
# 64:ff9b::/96 (NAT64) carries an IPv4 address a gateway will connect to.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def normalize(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def is_public(ip: IPAddress) -> bool:
    """A globally reachable unicast address: not private, loopback, link-local, shared (CGNAT),
    reserved or multicast, and not an IPv6 form of an IPv4 address that is one of those."""
    ip = normalize(ip)
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return True


def literal_addresses(host: str) -> list[IPAddress]:
    """The addresses a host stands for without asking DNS: an IP literal, or `localhost`
    (RFC 6761: always loopback). Empty for any other name."""
    host = host.strip("[]").lower().rstrip(".")
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    if host == "localhost" or host.endswith(".localhost"):
        return [ipaddress.IPv4Address("127.0.0.1"), ipaddress.IPv6Address("::1")]
    return []


@dataclass(frozen=True)
class Rule:
    host: str | None = None
    network: IPNetwork | None = None
    public: bool = False
    port: int | None = None

    def permits(self, host: str, ip: IPAddress, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return self.host == host
        if self.network is not None:
            return ip in self.network
        return is_public(ip)


@dataclass(frozen=True)
class AllowList:
    rules: tuple[Rule, ...]
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """Raises ValueError naming the entry that is not valid."""
        entries = [e.strip() for e in text.split(",") if e.strip()]
        return cls(tuple(_parse_entry(e) for e in entries), text)

    @classmethod
    def of(cls, value: AllowList | str) -> AllowList:
        return value if isinstance(value, AllowList) else cls.parse(value)

    def permits(self, host: str, ip: IPAddress, port: int) -> bool:
        host = host.strip("[]").lower().rstrip(".")
        ip = normalize(ip)
        return any(rule.permits(host, ip, port) for rule in self.rules)

    def __str__(self) -> str:
        return self.text


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"bad port in {entry!r}")
    return int(text)


def _parse_entry(entry: str) -> Rule:
    body, port = entry, None
    if entry.startswith("["):
        inside, sep, rest = entry[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"bad entry {entry!r}")
        body, port = inside, _port(rest[1:], entry) if rest else None
    elif entry.count(":") == 1:
        body, text = entry.split(":")
        port = _port(text, entry)
    if body == "*":
        return Rule(public=True, port=port)
    try:
        return Rule(network=ipaddress.ip_network(body, strict=False), port=port)
    except ValueError:
        pass
    host = body.lower().rstrip(".")
    if ":" in host or not _HOSTNAME_RE.match(host):
        raise ValueError(f"{entry!r} is not a host name, an IP address or a CIDR range")
    return Rule(host=host, port=port)
