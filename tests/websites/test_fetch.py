"""The safe fetcher against a local site: limits, redirects, pinning, and every SSRF refusal."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from aiohttp import web

from neonrain.websites.fetch import (
    AddressPolicy,
    Fetcher,
    FetchError,
    FetchLimits,
    address_problem,
    loggable_url,
)
from tests.websites.conftest import (
    AllowHosts,
    Connections,
    FakeResolver,
    Listener,
    Site,
    start_site,
)

PAGE = "<html><head><title>Hello</title></head><body><p>Hi there</p></body></html>"


async def fetch_error(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(url)
    return caught.value


# -- what is fetched ------------------------------------------------------------------------------


async def test_fetches_html_page(site: Site) -> None:
    site.html("/", PAGE)
    page = await Fetcher(allow_private=True).fetch(site.url("/"))
    assert page.status_code == 200
    assert page.media_type == "text/html"
    assert page.charset == "utf-8"
    assert page.body == PAGE.encode()
    assert not page.truncated
    assert page.redirects == 0


async def test_plain_text_and_xhtml_are_accepted(site: Site) -> None:
    site.html("/t", "just text", content_type="text/plain")
    site.html("/x", PAGE, content_type="application/xhtml+xml")
    fetcher = Fetcher(allow_private=True)
    assert (await fetcher.fetch(site.url("/t"))).media_type == "text/plain"
    assert (await fetcher.fetch(site.url("/x"))).media_type == "application/xhtml+xml"


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("application/pdf", "application/pdf"), ("image/png", "image/png")],
)
async def test_non_html_is_refused(site: Site, content_type: str, shown: str) -> None:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"%PDF-1.7 ...", content_type=content_type)

    site.route("/doc", handler)
    error = await fetch_error(Fetcher(allow_private=True), site.url("/doc"))
    assert error.message == f"the page is not HTML or text ({shown})"
    assert error.status_code == 200


async def test_missing_content_type_is_refused(site: Site) -> None:
    async def handler(_request: web.Request) -> web.StreamResponse:
        response = web.Response(body=b"<html></html>")
        response.headers.pop("Content-Type", None)
        response.content_type = ""
        return response

    site.route("/none", handler)
    error = await fetch_error(Fetcher(allow_private=True), site.url("/none"))
    assert "not HTML or text" in error.message


async def test_http_error_status_is_a_failure(site: Site) -> None:
    error = await fetch_error(Fetcher(allow_private=True), site.url("/missing"))
    assert error.message == "the site answered 404 Not Found"
    assert error.status_code == 404
    assert error.kind == "http"


async def test_body_over_5_mb_is_cut_off_not_failed(site: Site) -> None:
    chunk = b"x" * 65536

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for _ in range(6 * 16 + 5):  # a little over 6 MB, streamed without a length
            await response.write(chunk)
        return response

    site.route("/huge", huge)
    page = await Fetcher(allow_private=True).fetch(site.url("/huge"))
    assert page.truncated
    assert len(page.body) == 5 * 1024 * 1024


async def test_compressed_body_limit_counts_decoded_bytes(site: Site) -> None:
    """A gzip bomb is cut at 5 MB of *decoded* content."""

    async def bomb(_request: web.Request) -> web.StreamResponse:
        response = web.Response(body=b"a" * (8 * 1024 * 1024), content_type="text/plain")
        response.enable_compression()
        return response

    site.route("/bomb", bomb)
    page = await Fetcher(allow_private=True).fetch(site.url("/bomb"))
    assert page.truncated
    assert len(page.body) == 5 * 1024 * 1024


# -- redirects ------------------------------------------------------------------------------------


def add_redirect_chain(site: Site) -> None:
    async def chain(request: web.Request) -> web.StreamResponse:
        left = int(request.match_info["tail"].rsplit("/", 1)[1])
        if left == 0:
            return web.Response(text=PAGE, content_type="text/html")
        raise web.HTTPFound(f"/r/{left - 1}")

    site.route("/r/*", chain)


async def test_redirects_are_followed(site: Site) -> None:
    add_redirect_chain(site)
    page = await Fetcher(allow_private=True).fetch(site.url("/r/5?token=abc"))
    assert page.redirects == 5
    assert page.final_url == site.url("/r/0")
    assert site.paths() == ["/r/5?token=abc", "/r/4", "/r/3", "/r/2", "/r/1", "/r/0"]


async def test_more_than_5_redirects_fail(site: Site) -> None:
    add_redirect_chain(site)
    error = await fetch_error(Fetcher(allow_private=True), site.url("/r/6"))
    assert error.message == "too many redirects (more than 5)"
    # The sixth redirect is not followed.
    assert site.paths() == ["/r/6", "/r/5", "/r/4", "/r/3", "/r/2", "/r/1"]


async def test_redirect_to_another_scheme_is_refused(site: Site) -> None:
    async def to_file(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("file:///etc/passwd")

    site.route("/file", to_file)
    error = await fetch_error(Fetcher(allow_private=True), site.url("/file"))
    assert error.refused
    assert "only http and https" in error.message
    assert "redirected" in error.message


# -- pinning --------------------------------------------------------------------------------------


async def test_connects_to_the_checked_address_with_the_hostname(site: Site) -> None:
    """The name is resolved once per hop by our resolver and the connection goes to that IP,
    with the hostname in the Host header (the system resolver never sees ``site.test``)."""
    site.html("/", PAGE)
    resolver = FakeResolver({"site.test": ["127.0.0.1"]})
    page = await Fetcher(allow_private=True, resolver=resolver).fetch(
        f"http://site.test:{site.port}/"
    )
    assert page.status_code == 200
    assert resolver.lookups == ["site.test"]
    assert site.requests == [(f"site.test:{site.port}", "/")]


async def test_the_address_is_checked_again_right_before_connecting(site: Site) -> None:
    """The transport re-checks the pinned address: a policy that only lets the first check
    through is still refused, and nothing reaches the site."""
    resolver = FakeResolver({"rebind.test": ["127.0.0.1"]})
    error = await fetch_error(
        Fetcher(policy=AllowOnce("rebind.test"), resolver=resolver),
        f"http://rebind.test:{site.port}/",
    )
    assert error.message == "refused: rebind.test resolves to 127.0.0.1, which is loopback"
    assert resolver.lookups == ["rebind.test"]
    assert site.requests == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1"])
async def test_numeric_host_spellings_resolve_and_are_refused(
    host: str, listener: Listener, connections: Connections
) -> None:
    """getaddrinfo understands inet_aton spellings; what they resolve to is what is checked."""
    error = await fetch_error(Fetcher(), f"http://{host}:{listener.port}/")
    assert error.refused
    assert "127.0.0.1" in error.message and "loopback" in error.message
    assert listener.accepted == 0
    assert connections.attempts == []


class AllowOnce(AddressPolicy):
    """Allows ``host`` for the first check only."""

    def __init__(self, host: str) -> None:
        super().__init__(allow_private=False)
        self.host = host
        self.used = False

    def refusal(
        self, host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> str | None:
        if host == self.host and not self.used:
            self.used = True
            return None
        return super().refusal(host, address)


def _tls_contexts(tmp_path: Path, hostname: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    client = ssl.create_default_context(cafile=str(cert_path))
    return server, client


@pytest.fixture
async def tls_site(tmp_path: Path) -> AsyncIterator[tuple[Site, ssl.SSLContext]]:
    server_ctx, client_ctx = _tls_contexts(tmp_path, "secure.test")
    server, runner = await start_site(server_ctx)
    server.html("/", PAGE)
    try:
        yield server, client_ctx
    finally:
        await runner.cleanup()


async def test_https_to_pinned_address_verifies_the_hostname(
    tls_site: tuple[Site, ssl.SSLContext],
) -> None:
    """TLS goes to the IP, but SNI and the certificate check use the hostname."""
    server, client_ctx = tls_site
    resolver = FakeResolver({"secure.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    fetcher = Fetcher(allow_private=True, resolver=resolver, verify=client_ctx)
    page = await fetcher.fetch(f"https://secure.test:{server.port}/")
    assert page.status_code == 200
    # The same IP under a name the certificate does not cover is refused by TLS.
    error = await fetch_error(fetcher, f"https://other.test:{server.port}/")
    assert error.kind == "network"
    assert "certificate" in error.message.lower()


# -- failures with a clear message ----------------------------------------------------------------


async def test_slow_site_times_out(site: Site) -> None:
    async def slow(_request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(5)
        return web.Response(text=PAGE, content_type="text/html")

    site.route("/slow", slow)
    fetcher = Fetcher(allow_private=True, limits=FetchLimits(timeout=0.3))
    error = await fetch_error(fetcher, site.url("/slow"))
    assert error.message == "the site took longer than 0.3 seconds to answer"
    assert error.kind == "timeout"


async def test_dns_failure_and_timeout() -> None:
    error = await fetch_error(
        Fetcher(allow_private=True, resolver=FakeResolver()), "http://nowhere.test/"
    )
    assert error.message == "could not find the site nowhere.test (DNS: Name or service not known)"

    async def hanging(_host: str, _port: int) -> Sequence[str]:
        await asyncio.sleep(10)
        return []

    fetcher = Fetcher(resolver=hanging, limits=FetchLimits(dns_timeout=0.1))
    error = await fetch_error(fetcher, "http://slowdns.test/")
    assert error.message == "looking up slowdns.test took too long (DNS)"


async def test_connection_refused(connections: Connections) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await fetch_error(Fetcher(allow_private=True), f"http://127.0.0.1:{port}/")
    assert error.message == f"could not connect to 127.0.0.1 on port {port}: connection refused"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "ftp://example.com/file",
            "refused: only http and https addresses can be fetched (not ftp)",
        ),
        (
            "javascript:alert(1)",
            "refused: only http and https addresses can be fetched (not javascript)",
        ),
        ("http://example.com:22/", "refused: port 22 is not allowed (only 80, 443 and 1024–65535)"),
        (
            "http://example.com:1023/",
            "refused: port 1023 is not allowed (only 80, 443 and 1024–65535)",
        ),
        ("http:///nohost", "refused: the address has no host name"),
    ],
)
async def test_scheme_and_port_rules(url: str, message: str, connections: Connections) -> None:
    resolver = FakeResolver({"example.com": ["93.184.216.34"]})
    error = await fetch_error(Fetcher(allow_private=True, resolver=resolver), url)
    assert error.message == message
    assert error.refused
    assert resolver.lookups == []
    assert connections.attempts == []


# -- SSRF: the address rules (setting off) --------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", "refused: the address 127.0.0.1 is loopback"),
        ("localhost", "refused: localhost resolves to {ip}, which is loopback"),
        ("[::1]", "refused: the address ::1 is loopback"),
        ("[::ffff:127.0.0.1]", "refused: the address ::ffff:127.0.0.1 is loopback"),
        ("127.8.9.10", "refused: the address 127.8.9.10 is loopback"),
        ("0.0.0.0", "refused: the address 0.0.0.0 is unspecified"),
        ("[::]", "refused: the address :: is unspecified"),
    ],
)
async def test_loopback_is_refused_without_connecting(
    host: str, message: str, listener: Listener, connections: Connections
) -> None:
    error = await fetch_error(Fetcher(), f"http://{host}:{listener.port}/")
    assert error.refused
    if "{ip}" in message:
        assert error.message in {message.format(ip="127.0.0.1"), message.format(ip="::1")}
    else:
        assert error.message == message
    assert listener.accepted == 0
    assert connections.attempts == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/", "refused: the address 10.0.0.1 is private"),
        ("http://10.255.1.2:8080/", "refused: the address 10.255.1.2 is private"),
        ("http://172.16.0.1/", "refused: the address 172.16.0.1 is private"),
        ("http://172.31.255.254/", "refused: the address 172.31.255.254 is private"),
        ("http://192.168.1.1/", "refused: the address 192.168.1.1 is private"),
        (
            "http://169.254.169.254/latest/meta-data/",
            "refused: the address 169.254.169.254 is link-local",
        ),
        ("http://[fe80::1]/", "refused: the address fe80::1 is link-local"),
        ("http://[fd00::1]/", "refused: the address fd00::1 is private"),
        ("http://[::ffff:10.0.0.1]/", "refused: the address ::ffff:10.0.0.1 is private"),
        (
            "http://[::ffff:169.254.169.254]/",
            "refused: the address ::ffff:169.254.169.254 is link-local",
        ),
        ("http://224.0.0.1/", "refused: the address 224.0.0.1 is multicast"),
        ("http://[ff02::1]/", "refused: the address ff02::1 is multicast"),
        ("http://240.0.0.1/", "refused: the address 240.0.0.1 is reserved"),
        ("http://100.64.0.1/", "refused: the address 100.64.0.1 is not a public address"),
        ("http://[2002:7f00:1::]/", "refused: the address 2002:7f00:1:: is loopback"),
        ("http://[64:ff9b::a00:1]/", "refused: the address 64:ff9b::a00:1 is private"),
    ],
)
async def test_private_addresses_are_refused_without_connecting(
    url: str, message: str, connections: Connections
) -> None:
    error = await fetch_error(Fetcher(resolver=FakeResolver()), url)
    assert error.message == message
    assert error.refused
    assert connections.attempts == []


async def test_hostname_resolving_to_private_address_is_refused(
    listener: Listener, connections: Connections
) -> None:
    resolver = FakeResolver({"intranet.example.com": ["10.1.2.3"]})
    error = await fetch_error(
        Fetcher(resolver=resolver), f"http://intranet.example.com:{listener.port}/"
    )
    assert error.message == "refused: intranet.example.com resolves to 10.1.2.3, which is private"
    assert connections.attempts == []


async def test_any_private_answer_refuses_the_host(connections: Connections) -> None:
    """A name with a public and a private address is refused (no "pick the good one")."""
    resolver = FakeResolver({"mixed.example.com": ["93.184.216.34", "192.168.0.10"]})
    error = await fetch_error(Fetcher(resolver=resolver), "http://mixed.example.com/")
    assert error.message == (
        "refused: mixed.example.com resolves to 192.168.0.10, which is private"
    )
    assert connections.attempts == []


async def test_public_site_redirecting_to_private_address_is_refused(
    site: Site, listener: Listener, connections: Connections
) -> None:
    """The first hop is allowed (posing as public); its redirect to 127.0.0.1 is refused before
    any connection to the target."""

    async def to_loopback(_request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(f"http://127.0.0.1:{listener.port}/admin")

    site.route("/go", to_loopback)
    resolver = FakeResolver({"public.example.com": ["127.0.0.1"]})
    fetcher = Fetcher(policy=AllowHosts("public.example.com"), resolver=resolver)
    error = await fetch_error(fetcher, f"http://public.example.com:{site.port}/go")
    assert error.message == (
        "refused: the address 127.0.0.1 is loopback (where the site redirected to)"
    )
    assert site.paths() == ["/go"]
    assert listener.accepted == 0
    assert connections.to_port(listener.port) == []


async def test_private_addresses_allowed_with_the_setting(site: Site) -> None:
    site.html("/", PAGE)
    page = await Fetcher(allow_private=True).fetch(site.url("/"))
    assert page.status_code == 200


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.0.2.1", "private"),
        ("fc00::1", "private"),
        ("169.254.0.1", "link-local"),
        ("fe80::abcd", "link-local"),
        ("239.1.2.3", "multicast"),
        ("255.255.255.255", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.100.100.100", "not a public address"),
    ],
)
def test_address_problem(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


def test_loggable_url_drops_credentials_and_query() -> None:
    assert (
        loggable_url("https://user:secret@example.com:8443/a/b?token=x#frag")
        == "https://example.com:8443/a/b"
    )
    assert loggable_url("http://[::1]/x?y") == "http://[::1]/x"
