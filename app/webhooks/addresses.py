"""No server-side request forgery: where an endpoint may point.

An endpoint's host is resolved, and every address it resolves to must be a public one:
loopback, private, link-local (the cloud metadata service at 169.254.169.254 included),
shared, reserved and multicast addresses are refused, at save and again at every
delivery, after DNS. The delivery then connects to the address that was checked, so
a name that resolves differently a moment later (DNS rebinding) gains nothing.
``WEBHOOKS_ALLOW_LOOPBACK`` lets loopback through, for development and tests only.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l


class Refused(ValueError):
    """The address may not receive webhooks; the message says why."""


def _allowed(address: ipaddress._BaseAddress) -> bool:
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    if address.is_loopback:
        return bool(current_app.config.get("WEBHOOKS_ALLOW_LOOPBACK"))
    return address.is_global and not address.is_multicast


def check_url(url: str) -> tuple[str, int]:
    """(host, port) of a well-formed http(s) URL, or ``Refused``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(_l("Give an http:// or https:// address."))
    if parts.username or parts.password:
        raise Refused(_l("Leave credentials out of the address; the signature authenticates."))
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Refused(_l("The port is not valid.")) from None
    return parts.hostname, port


def resolve(url: str) -> str:
    """The checked address to connect to, or ``Refused``."""
    host, port = check_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise Refused(_l("This host name does not resolve.")) from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses or not all(_allowed(address) for address in addresses):
        raise Refused(
            _l("This address is private, local or reserved: webhooks go to public hosts.")
        )
    return str(addresses[0])
