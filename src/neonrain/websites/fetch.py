"""Fetching a website under the SSRF rules of ``quality.md``.

Every hop (the first request and each redirect, which we follow ourselves) goes through the same
steps: parse and check the URL (http/https, allowed port), resolve the host once, refuse the hop if
*any* of its addresses is loopback, private, link-local, multicast, reserved, unspecified or
otherwise not public (IPv4-mapped/6to4/NAT64 IPv6 forms are unwrapped first), then connect to the
checked address itself — the request goes to the IP with the ``Host`` header and TLS SNI /
certificate check set to the hostname, so a second DNS answer (DNS rebinding) can never change
where we connect. :class:`_PinnedTransport` re-checks the address right before the connection.

Limits: 10 s for the whole fetch (DNS, redirects and body), at most 5 redirects, at most 5 MB of
(decoded) body — more is cut off, not an error — and only ``text/html``,
``application/xhtml+xml`` or ``text/plain``.

Errors are :class:`FetchError` with a sentence a person can act on; they never contain the query
string or credentials of the URL.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# A resolver maps (hostname, port) to the IP addresses (as strings) it would connect to.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

ALLOWED_SCHEMES = ("http", "https")
ALLOWED_CONTENT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
USER_AGENT = "Mozilla/5.0 (compatible; NeonrainBot/0.1; reads pages its users listed)"
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)

ErrorKind = Literal["refused", "dns", "network", "timeout", "http", "content"]


class FetchError(Exception):
    """A fetch that failed or was refused; ``str(error)`` is the sentence shown to the user."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        status_code: int | None = None,
        redirected: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.status_code = status_code
        self.redirected = redirected

    @property
    def refused(self) -> bool:
        """True when the fetcher refused on its own rules (nothing was sent)."""
        return self.kind == "refused"

    @property
    def url_refused(self) -> bool:
        """True when the rules refuse the URL itself, not where the site redirected to: asking
        again gets the same answer."""
        return self.refused and not self.redirected


@dataclass(frozen=True)
class FetchLimits:
    timeout: float = 10.0
    max_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    dns_timeout: float = 5.0


@dataclass(frozen=True)
class FetchedPage:
    url: str
    final_url: str
    status_code: int
    media_type: str
    charset: str | None
    body: bytes
    truncated: bool
    redirects: int
    elapsed: float


# -- addresses ------------------------------------------------------------------------------------


def _special(blocks: tuple[tuple[str, str], ...]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(block), name) for block, name in blocks)


#: Every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its
#: updates), plus multicast and the deprecated site-local range, refused whatever Python's
#: ``is_global`` says: its answer changes between versions, and 3.11 took 192.0.0.0/24,
#: 192.88.99.0/24 and 3fff::/20 for public. None of them holds a website. (IPv4-mapped
#: ``::ffff:0:0/96`` and NAT64 ``64:ff9b::/96`` addresses are judged by the IPv4 address inside.)
SPECIAL_PURPOSE_NETWORKS: tuple[tuple[IPNetwork, str], ...] = _special(
    (
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private-use"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private-use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112-v4"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private-use"),
        ("192.175.48.0/24", "direct delegation AS112 service"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "limited broadcast"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("2620:4f:8000::/48", "direct delegation AS112 service"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "deprecated site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4, Teredo (client) or NAT64 IPv6 address stands for, if any."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def special_purpose_block(address: IPAddress) -> tuple[IPNetwork, str] | None:
    """The most specific special-purpose block holding ``address``, with its name."""
    found: tuple[IPNetwork, str] | None = None
    for network, name in SPECIAL_PURPOSE_NETWORKS:
        inside = network.version == address.version and address in network
        if inside and (found is None or network.prefixlen > found[0].prefixlen):
            found = (network, name)
    return found


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is not a public internet address ("private", "loopback", …), or None.

    IPv4-mapped and NAT64 (``64:ff9b::/96``) addresses are judged by the IPv4 address inside;
    6to4 and Teredo ones are refused in any case, naming the IPv4 address inside when that is
    itself refused.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address_problem(address.ipv4_mapped)
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            if problem is not None:
                return problem
            if address in _NAT64:
                return None
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not a public address"
    block = special_purpose_block(address)
    if block is not None:
        return f"special-purpose ({block[1]}, {block[0]})"
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "outside the global unicast range (2000::/3)"
    return None


class AddressPolicy:
    """Decides which addresses may be connected to. Subclass it to add allow rules (tests)."""

    def __init__(self, *, allow_private: bool = False) -> None:
        self.allow_private = allow_private

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """The refusal sentence for connecting to ``address`` for ``host``, or None if allowed."""
        if self.allow_private:
            return None
        problem = address_problem(address)
        if problem is None:
            return None
        if _is_ip_literal(host):
            return f"refused: the address {show_address(address)} is {problem}"
        return f"refused: {host} resolves to {show_address(address)}, which is {problem}"


def show_address(address: IPAddress) -> str:
    """The address as people write it (``::ffff:127.0.0.1`` rather than ``::ffff:7f00:1``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the event loop's ``getaddrinfo`` (in a thread); callers bound the time."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def loggable_url(url: str | httpx.URL) -> str:
    """scheme://host[:port]/path — never the credentials, query string or fragment."""
    try:
        parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        host = parsed.host
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port is not None else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


def url_host(url: str) -> str:
    """The lowercase host of ``url`` ('' when it has none), e.g. for per-host limits."""
    try:
        return httpx.URL(url).host.lower().rstrip(".")
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""


# -- the fetcher ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    host: str  # the ASCII (IDNA) hostname or IP literal from the URL
    port: int
    addresses: tuple[IPAddress, ...]


class _PinnedTransport(httpx.AsyncBaseTransport):
    """Sends a request for ``host`` to one already-checked address, checking it once more."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        host: str,
        address: IPAddress,
        policy: AddressPolicy,
    ) -> None:
        self._inner = inner
        self._host = host
        self._address = address
        self._policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.raw_host.decode("ascii").lower() != self._host.lower():
            raise FetchError("refused: the request left the checked host", kind="refused")
        refusal = self._policy.refusal(self._host, self._address)
        if refusal is not None:
            raise FetchError(refusal, kind="refused")
        # httpx already set the Host header from the hostname URL; keep it, connect to the IP.
        request.url = request.url.copy_with(host=str(self._address))
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": self._host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Fetcher:
    """Fetches one page at a time under the SSRF rules; safe to share between tasks."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        policy: AddressPolicy | None = None,
        resolver: Resolver | None = None,
        limits: FetchLimits | None = None,
        verify: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.policy = policy or AddressPolicy(allow_private=allow_private)
        self.limits = limits or FetchLimits()
        self._resolver = resolver
        self._verify = verify
        self._user_agent = user_agent

    @functools.cached_property
    def _ssl(self) -> ssl.SSLContext:
        # One TLS context for every fetch: loading the CA bundle is the expensive part (and
        # a fetcher that only checks addresses never pays it).
        return self._verify or ssl.create_default_context()

    async def check(self, url: str) -> None:
        """Apply the rules of a fetch's first hop to ``url`` without sending anything: scheme,
        port, and every address its host resolves to. Raises :class:`FetchError` (``refused``,
        or ``dns`` when the host cannot be resolved). For other clients of a URL a user gives
        (e.g. an account's model endpoint)."""
        await self._check(_parse(url))

    async def fetch(self, url: str) -> FetchedPage:
        """GET ``url`` following up to ``max_redirects`` redirects; raises :class:`FetchError`."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.limits.timeout):
                return await self._fetch(url, started)
        except TimeoutError:
            raise FetchError(
                f"the site took longer than {self.limits.timeout:g} seconds to answer",
                kind="timeout",
            ) from None

    async def _fetch(self, url: str, started: float) -> FetchedPage:
        current = _parse(url)
        redirects = 0
        while True:
            try:
                target = await self._check(current)
            except FetchError as exc:
                if redirects and exc.refused:
                    raise FetchError(
                        f"{exc.message} (where the site redirected to)",
                        kind=exc.kind,
                        redirected=True,
                    ) from None
                raise
            response, client = await self._send(current, target)
            try:
                location = self._redirect_location(response, redirects)
                if location is None:
                    return await self._read(url, current, response, redirects, started)
                redirects += 1
                try:
                    current = _parse(str(current.join(location)))
                except (FetchError, httpx.InvalidURL) as exc:
                    message = exc.message if isinstance(exc, FetchError) else "not a valid URL"
                    raise FetchError(
                        f"{message} (where the site redirected to)",
                        kind="refused",
                        status_code=response.status_code,
                        redirected=True,
                    ) from None
            finally:
                await response.aclose()
                await client.aclose()

    def _redirect_location(self, response: httpx.Response, redirects: int) -> str | None:
        """Where a redirect points (None when the response is not a redirect)."""
        status = response.status_code
        if status not in _REDIRECT_STATUSES:
            return None
        location: str | None = response.headers.get("location")
        if not location:
            raise FetchError(
                f"the site answered {status} (a redirect) without saying where to",
                kind="http",
                status_code=status,
            )
        if redirects >= self.limits.max_redirects:
            raise FetchError(
                f"too many redirects (more than {self.limits.max_redirects})",
                kind="http",
                status_code=status,
            )
        return location

    async def _check(self, url: httpx.URL) -> _Target:
        return await _checked_target(url, self.policy, self._resolver, self.limits.dns_timeout)

    async def _send(
        self, url: httpx.URL, target: _Target
    ) -> tuple[httpx.Response, httpx.AsyncClient]:
        """Connect to the first reachable checked address; returns the streaming response."""
        last_error: Exception | None = None
        for address in target.addresses:
            # A fresh client per hop and address: pooled connections are keyed by IP, and a TLS
            # connection made for one hostname must never be reused for another.
            inner = httpx.AsyncHTTPTransport(verify=self._ssl, trust_env=False, retries=0)
            client = httpx.AsyncClient(
                transport=_PinnedTransport(inner, target.host, address, self.policy),
                timeout=httpx.Timeout(self.limits.timeout),
                follow_redirects=False,
                trust_env=False,
                headers={
                    "User-Agent": self._user_agent,
                    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
                    # Only the encodings whose bombs we can live with (see docs/websites.md).
                    "Accept-Encoding": "gzip, deflate",
                },
            )
            try:
                request = client.build_request("GET", url)
                response = await client.send(request, stream=True)
            except httpx.ConnectError as exc:
                await client.aclose()
                last_error = exc
                continue
            except httpx.TimeoutException:
                await client.aclose()
                raise FetchError(
                    f"the site {target.host} did not answer in time", kind="timeout"
                ) from None
            except FetchError:
                await client.aclose()
                raise
            except httpx.HTTPError as exc:
                await client.aclose()
                raise FetchError(
                    f"could not talk to {target.host}: {_reason(exc)}", kind="network"
                ) from None
            return response, client
        raise FetchError(
            f"could not connect to {target.host} on port {target.port}: "
            f"{_reason(last_error) if last_error else 'no address'}",
            kind="network",
        )

    async def _read(
        self,
        url: str,
        final: httpx.URL,
        response: httpx.Response,
        redirects: int,
        started: float,
    ) -> FetchedPage:
        status = response.status_code
        if not 200 <= status < 300:
            phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
            raise FetchError(f"the site answered {status}{phrase}", kind="http", status_code=status)
        content_type = response.headers.get("content-type", "")
        media_type, charset = _parse_content_type(content_type)
        if media_type not in ALLOWED_CONTENT_TYPES:
            shown = media_type or "no content type given"
            raise FetchError(
                f"the page is not HTML or text ({shown})", kind="content", status_code=status
            )
        chunks: list[bytes] = []
        size = 0
        truncated = False
        try:
            async for chunk in response.aiter_bytes():
                room = self.limits.max_bytes - size
                if len(chunk) > room:
                    chunks.append(chunk[:room])
                    size += room
                    truncated = True
                    break
                chunks.append(chunk)
                size += len(chunk)
        except httpx.TimeoutException:
            raise FetchError(
                "the site stopped sending the page (timed out)", kind="timeout", status_code=status
            ) from None
        except httpx.HTTPError as exc:
            raise FetchError(
                f"the page could not be read completely: {_reason(exc)}",
                kind="network",
                status_code=status,
            ) from None
        return FetchedPage(
            url=url,
            final_url=str(final),
            status_code=status,
            media_type=media_type,
            charset=charset,
            body=b"".join(chunks),
            truncated=truncated,
            redirects=redirects,
            elapsed=time.perf_counter() - started,
        )


async def _checked_target(
    url: httpx.URL, policy: AddressPolicy, resolver: Resolver | None, dns_timeout: float
) -> _Target:
    """The host's addresses, each allowed by ``policy``; raises a :class:`FetchError` (refused,
    or dns when the name does not resolve in time)."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    if _is_ip_literal(host):
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    else:
        addresses = await _resolve(resolver or system_resolver, host, port, dns_timeout)
    for address in addresses:
        refusal = policy.refusal(host, address)
        if refusal is not None:
            raise FetchError(refusal, kind="refused")
    return _Target(host=host, port=port, addresses=tuple(addresses))


async def _resolve(resolver: Resolver, host: str, port: int, timeout: float) -> list[IPAddress]:
    try:
        answers = await asyncio.wait_for(resolver(host, port), timeout)
    except TimeoutError:
        raise FetchError(f"looking up {host} took too long (DNS)", kind="dns") from None
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise FetchError(
            f"could not find the site {host} (DNS: {_reason(exc)})", kind="dns"
        ) from None
    addresses: list[IPAddress] = []
    for answer in answers:
        try:
            addresses.append(ipaddress.ip_address(answer))
        except ValueError:
            continue
    if not addresses:
        raise FetchError(f"could not find the site {host} (DNS: no address)", kind="dns")
    return addresses


async def url_refusal(
    url: str,
    policy: AddressPolicy,
    *,
    resolver: Resolver | None = None,
    dns_timeout: float = FetchLimits.dns_timeout,
) -> str | None:
    """Why the rules refuse to fetch ``url`` before sending anything (scheme, port, or a host
    that is, or resolves to, a refused address), or None. A host that does not resolve (in
    ``dns_timeout``) is not refused here: the fetch will say what went wrong."""
    try:
        await _checked_target(_parse(url), policy, resolver, dns_timeout)
    except FetchError as exc:
        return exc.message if exc.refused else None
    return None


def _parse(url: str) -> httpx.URL:
    """Parse and check scheme and port; raises a 'refused' :class:`FetchError`."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise FetchError("refused: this is not a valid web address", kind="refused") from None
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme or "no scheme"
        raise FetchError(
            f"refused: only http and https addresses can be fetched (not {shown})",
            kind="refused",
        )
    if not parsed.raw_host:
        raise FetchError("refused: the address has no host name", kind="refused")
    port = parsed.port
    if port is not None and not (port in (80, 443) or 1024 <= port <= 65535):
        raise FetchError(
            f"refused: port {port} is not allowed (only 80, 443 and 1024–65535)",
            kind="refused",
        )
    return parsed


def _parse_content_type(value: str) -> tuple[str, str | None]:
    parts = [part.strip() for part in value.split(";")]
    media_type = parts[0].lower() if parts else ""
    charset: str | None = None
    for part in parts[1:]:
        key, _, raw = part.partition("=")
        if key.strip().lower() == "charset" and raw.strip():
            charset = raw.strip().strip("\"'").lower()
    return media_type, charset


def _reason(exc: BaseException) -> str:
    """A short human reason, from the most specific exception in the chain."""
    if isinstance(exc, socket.gaierror) and exc.args[1:]:
        return str(exc.args[1])
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return f"secure connection failed: certificate problem ({item.verify_message})"
        if isinstance(item, ssl.SSLError):
            return f"secure connection failed ({item.reason or item})"
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, ConnectionResetError):
            return "the connection was reset"
        if isinstance(item, OSError) and item.strerror:
            return item.strerror.lower()
    text = str(exc).strip()
    return text or type(exc).__name__
