"""Who may use the player: the Host and Origin checks that keep other web pages out.

The player has no login, so two browser attacks matter even on 127.0.0.1:
- cross-site WebSocket hijacking: any page the user visits may open `ws://127.0.0.1:PORT/ws` (browsers
  send its Origin but do not block it), then play and read the dataset's frames. The socket is
  accepted only when its Origin is the page's own, `http://<the Host it was sent to>`.
- DNS rebinding: a page on evil.example re-points its name at 127.0.0.1 and becomes same-origin with
  the player. Its requests then carry `Host: evil.example:PORT`, so every request (page, static files,
  socket) is answered only for the host the player was bound to or a loopback name.

A host bound to every interface (0.0.0.0, ::) is reached through names this code cannot know in
advance; there any IP literal is accepted as well as the machine's own names (rebinding needs a name
the attacker's DNS answers, which an IP literal is not).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


def split_host(host_header: str) -> tuple[str, int | None] | None:
    """'Example.org:8080' -> ('example.org', 8080), '[::1]:80' -> ('::1', 80); None if malformed."""
    try:
        parts = urlsplit(f"//{host_header}")
        return (parts.hostname or "").lower().rstrip("."), parts.port
    except ValueError:  # a port that is not a number, an unbalanced bracket
        return None


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """True for a host that only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    return is_ip_literal(host) and ipaddress.ip_address(host).is_loopback


@dataclass(frozen=True)
class AccessPolicy:
    bound_host: str  # the host= the player listens on
    bound_port: int  # the port it listens on
    own_names: frozenset[str] = field(default_factory=frozenset)  # this machine's names (wildcard binds)

    @classmethod
    def for_address(cls, bound_host: str, bound_port: int) -> AccessPolicy:
        own_names = frozenset()
        if bound_host in WILDCARD_HOSTS:
            own_names = frozenset(name.lower() for name in (socket.gethostname(), socket.getfqdn()) if name)
        return cls(bound_host.lower(), bound_port, own_names)

    def allows_host(self, host_header: str | None) -> bool:
        """The request's Host names this player: the bound host or a loopback name (any port: an ssh
        tunnel may forward another local port to it)."""
        parsed = split_host(host_header or "")
        if parsed is None or not parsed[0]:
            return False
        name = parsed[0]
        if name in LOOPBACK_NAMES or name == self.bound_host:
            return True
        return self.bound_host in WILDCARD_HOSTS and (is_ip_literal(name) or name in self.own_names)

    def allows_origin(self, origin: str | None, host_header: str | None) -> bool:
        """A WebSocket's Origin is the player's own page: http://<Host> with the Host allowed, or a
        loopback name at the bound port. A page of another site or of another port of this machine, a
        sandboxed frame ('null') and a client sending no Origin are refused."""
        if not origin or not self.allows_host(host_header):
            return False
        try:
            parts = urlsplit(origin)
            origin_name, origin_port = (parts.hostname or "").lower().rstrip("."), parts.port or 80
        except ValueError:
            return False
        if parts.scheme != "http" or parts.path or parts.query:
            return False
        name, port = split_host(host_header or "")
        is_own_page = (origin_name, origin_port) == (name, port or 80)
        return is_own_page or (origin_name in LOOPBACK_NAMES and origin_port == self.bound_port)
