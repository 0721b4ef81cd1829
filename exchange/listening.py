"""Whether ``puente serve`` and ``puente demo`` can listen where they are told, asked before
they print or create anything (gunicorn itself says so only in English, after five seconds of
retries), and whether an address reaches beyond this machine."""

from __future__ import annotations

import errno
import ipaddress
import socket


def cannot_listen(bind: str) -> tuple[str, str] | None:
    """Why gunicorn could not listen on ``bind`` (Spanish, English), or None if it can.

    The address is bound as gunicorn binds it (its parsing and socket family, SO_REUSEADDR)
    and let go at once, so a command can refuse before it prints or creates anything: gunicorn
    itself only says so in English after five seconds of retries. A Unix socket or an inherited
    file descriptor is left to gunicorn."""
    from gunicorn.util import is_ipv6, parse_address

    if bind.startswith(("unix:", "fd://")):
        return None
    try:
        host, port = parse_address(bind)
        family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except (RuntimeError, OverflowError):  # not a port number, or not one from 0 to 65535
        return (
            "el puerto no es un número de 1 a 65535",
            "the port is not a number from 1 to 65535",
        )
    except socket.gaierror:
        return ("no se conoce ese nombre de máquina", "no such host name")
    except OSError as error:
        return _bind_refusal(error)
    return None


#: Why a command cannot listen on an address another program listens on.
ADDRESS_IN_USE = (
    "la dirección ya está en uso (otro programa escucha en ese puerto)",
    "the address is already in use (another program listens on that port)",
)


def _bind_refusal(error: OSError) -> tuple[str, str]:
    if error.errno == errno.EADDRINUSE:
        return ADDRESS_IN_USE
    if error.errno == errno.EACCES:
        return (
            "no hay permiso para ese puerto (los menores de 1024 requieren privilegios)",
            "no permission for that port (those below 1024 need privileges)",
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return ("esa dirección no es de esta máquina", "that address is not one of this machine's")
    reason = error.strerror or str(error)
    return reason, reason


def free_neighbour(bind: str, tries: int = 20) -> str | None:
    """The first of the next ``tries`` ports of ``bind``'s host that can be listened on."""
    host, _colon, port = bind.rpartition(":")
    if not (host and port.isdigit()):
        return None
    for candidate in range(int(port) + 1, min(int(port) + 1 + tries, 65536)):
        if cannot_listen(f"{host}:{candidate}") is None:
            return f"{host}:{candidate}"
    return None


def listens_beyond_this_machine(bind: str) -> bool:
    """Whether ``bind`` is reached from other machines: not only loopback addresses (every
    interface, a network address, a host name that resolves to one). A Unix socket or an
    inherited file descriptor is not taken for one."""
    from gunicorn.util import parse_address

    if bind.startswith(("unix:", "fd://")):
        return False
    try:
        host, port = parse_address(bind)
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except (RuntimeError, OSError):
        return True  # not to be resolved here: gunicorn will say; warn rather than not
    addresses = [str(info[4][0]).split("%")[0] for info in found]
    return not host or not all(ipaddress.ip_address(a).is_loopback for a in addresses)
