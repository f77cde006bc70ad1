"""One POST to a checked address: connect to that IP, speak to the host by its name.

TLS still verifies the certificate for the host name (SNI and hostname checks use the
name while the socket goes to the address resolved and checked before). Redirects are
not followed: a 3xx is an answer, and could point anywhere.
"""

from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

TIMEOUT = (3, 10)  # seconds to connect, seconds to answer


class _PinnedTLS(HTTPAdapter):
    def __init__(self, hostname: str):
        self.hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self.hostname
        kwargs["assert_hostname"] = self.hostname
        super().init_poolmanager(*args, **kwargs)


def post(url: str, address: str, body: bytes, headers: dict) -> requests.Response:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    with requests.Session() as session:
        session.trust_env = False  # no proxy from the environment between us and the check
        if parts.scheme == "https":
            session.mount("https://", _PinnedTLS(parts.hostname))
        return session.post(
            pinned,
            data=body,
            headers={**headers, "Host": parts.netloc.rpartition("@")[2]},
            timeout=TIMEOUT,
            allow_redirects=False,
            stream=True,
        )
