"""Website URLs: validation and the normal form they are stored (and compared) in.

Pure functions, no I/O: the API uses them when a website is added, the scraper when it follows
redirects. Address checks (private networks, SSRF) happen at fetch time, not here.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidUrl(ValueError):
    """The text is not an http(s) URL we accept; the message says why, for a person."""


def normalize_url(raw: str) -> str:
    """The normal form of ``raw``: lower-case scheme and host, no default port, no fragment.

    Also: surrounding whitespace removed, an empty path becomes ``/``, internationalised host names
    are written in IDNA (punycode). Raises :class:`InvalidUrl` for anything that is not an
    absolute http(s) URL of at most :data:`MAX_URL_LENGTH` characters.
    """
    text = raw.strip()
    if not text:
        raise InvalidUrl("Enter the website's address, starting with https://.")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidUrl(f"The address is longer than {MAX_URL_LENGTH} characters.")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text):
        raise InvalidUrl("The address must not contain spaces or control characters.")
    try:
        parts = urlsplit(text)
    except ValueError:
        raise InvalidUrl("That is not a valid web address.") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidUrl("Only http:// and https:// addresses can be added.")
    if parts.username is not None or parts.password is not None:
        raise InvalidUrl("Addresses with a user name or password cannot be added.")
    host = _host(parts)
    port = _port(parts)
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path or "/"
    normalized = urlunsplit((scheme, netloc, path, parts.query, ""))
    if len(normalized) > MAX_URL_LENGTH:
        raise InvalidUrl(f"The address is longer than {MAX_URL_LENGTH} characters.")
    return normalized


def _host(parts: SplitResult) -> str:
    try:
        hostname = parts.hostname
    except ValueError:
        hostname = None
    if not hostname:
        raise InvalidUrl("The address has no host name (like https://example.com/).")
    if ":" in hostname:  # an IPv6 literal; urlsplit already checked the brackets
        return f"[{hostname.lower()}]"
    hostname = hostname.rstrip(".").lower()
    if not hostname or ".." in hostname:
        raise InvalidUrl("The address has an invalid host name.")
    if not hostname.isascii():
        try:
            hostname = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidUrl("The address has an invalid host name.") from None
    if any(not (ch.isalnum() or ch in "-._~") for ch in hostname):
        raise InvalidUrl("The address has an invalid host name.")
    return hostname


def _port(parts: SplitResult) -> int | None:
    try:
        port = parts.port
    except ValueError:
        raise InvalidUrl("The address has an invalid port.") from None
    if port is not None and port == 0:
        raise InvalidUrl("The address has an invalid port.")
    return port


def is_http_url(raw: str) -> bool:
    """Whether :func:`normalize_url` accepts ``raw``."""
    try:
        normalize_url(raw)
    except InvalidUrl:
        return False
    return True
