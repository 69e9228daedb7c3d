"""Turning a fetched page into the Markdown the agent reads.

HTML goes through trafilatura's main-content extraction (``output_format="markdown"``, links,
formatting and tables kept) with the page title as a ``# Title`` heading; when extraction finds
nothing (a page that is all navigation, say) the whole visible text is used instead. Plain text
passes through. The result is capped at :data:`MAX_CHARS` characters, the marker line included, and
a visible marker line says what was cut.

trafilatura is CPU-bound, so :func:`extract_page` runs it in a worker thread.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import anyio.to_thread
import trafilatura
import trafilatura.metadata
import trafilatura.utils

from neonrain.websites.fetch import FetchedPage

MAX_CHARS = 20_000
# trafilatura's time grows faster than linearly with the page (measured on 2 cores: 1.6 s for
# 0.7 MB of HTML, 41 s for 3.5 MB), while 20,000 characters of Markdown never need that much: past
# 500 KB (after dropping inline scripts and styles) the page is cut before extraction and marked
# truncated; ``length`` then counts the Markdown of that first part. Worst case seen: about 2 s.
MAX_HTML_CHARS = 500_000
# Above this size the readability comparison (about a third of the time) is skipped.
FAST_HTML_CHARS = 200_000
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Extracted:
    content: str
    # Characters of Markdown before the cap (what the page really holds).
    length: int
    truncated: bool
    title: str | None


async def extract_page(page: FetchedPage, *, max_chars: int = MAX_CHARS) -> Extracted:
    """:func:`extract` for a fetched page, in a worker thread so the event loop stays free."""
    return await anyio.to_thread.run_sync(
        lambda: extract(
            page.body,
            media_type=page.media_type,
            charset=page.charset,
            url=page.final_url,
            body_truncated=page.truncated,
            max_chars=max_chars,
        )
    )


def extract(
    body: bytes,
    *,
    media_type: str,
    charset: str | None = None,
    url: str | None = None,
    body_truncated: bool = False,
    max_chars: int = MAX_CHARS,
) -> Extracted:
    """The Markdown of a page body (blocking; see :func:`extract_page`)."""
    text = decode_body(
        body, charset, sniff_html=media_type != "text/plain", truncated=body_truncated
    )
    title: str | None = None
    notes: list[str] = []
    if media_type == "text/plain":
        markdown = _clean_text(text)
    else:
        if len(text) > MAX_HTML_CHARS:
            # Inline scripts and styles (often most of a big page) are dropped by extraction
            # anyway; removing them first keeps the content that follows them within the limit.
            text = drop_scripts(text)
        if len(text) > MAX_HTML_CHARS:
            text = text[:MAX_HTML_CHARS]
            body_truncated = False
            notes.append("[… the page is larger than 500 KB of HTML; only its beginning was used]")
        markdown, title = html_to_markdown(text, url)
    if body_truncated:
        notes.append("[… the page is larger than the 5 MB read limit; only its beginning was used]")
    return cap(markdown, max_chars, notes=notes, title=title)


def html_to_markdown(html: str, url: str | None = None) -> tuple[str, str | None]:
    """Main content as Markdown under a ``# Title`` heading, or all visible text as a fallback."""
    tree = trafilatura.load_html(html)
    if tree is None:
        return _clean_text(html), None
    title = _clean_line(trafilatura.metadata.extract_title(tree) or "") or None
    body = trafilatura.extract(
        tree,
        url=url,
        output_format="markdown",
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        with_metadata=False,
        fast=len(html) > FAST_HTML_CHARS,
    )
    body = _clean_text(body or "")
    if not body:
        body = _clean_text(trafilatura.html2txt(html))
    if title and not _starts_with_heading(body, title):
        body = f"# {title}\n\n{body}" if body else f"# {title}"
    return body, title


def drop_scripts(html: str) -> str:
    """``html`` without ``<script>``/``<style>`` elements, in linear time (no regex backtracking
    on hostile input); an unclosed one runs to the end."""
    lower = html.lower()
    parts: list[str] = []
    position = 0
    next_at = {"script": lower.find("<script"), "style": lower.find("<style")}
    while True:
        for tag, at in next_at.items():
            if 0 <= at < position:
                next_at[tag] = lower.find(f"<{tag}", position)
        found = [(at, tag) for tag, at in next_at.items() if at >= 0]
        if not found:
            parts.append(html[position:])
            break
        start, tag = min(found)
        parts.append(html[position:start])
        end = lower.find(f"</{tag}", start)
        if end < 0:
            break
        close = lower.find(">", end)
        position = len(html) if close < 0 else close + 1
    return "".join(parts)


def cap(
    markdown: str, max_chars: int, *, notes: list[str] | None = None, title: str | None = None
) -> Extracted:
    """Cut ``markdown`` so that it plus its marker lines fit in ``max_chars`` characters."""
    length = len(markdown)
    lines = list(notes or [])
    truncated = bool(lines)
    if length + sum(len(line) + 2 for line in lines) > max_chars:
        truncated = True
        lines.insert(
            0, f"[… truncated: the page has {length:,} characters; the first part is shown]"
        )
        room = max(0, max_chars - sum(len(line) + 2 for line in lines))
        head = markdown[:room]
        # Prefer to cut at a line or word boundary near the limit.
        for boundary in ("\n", " "):
            position = head.rfind(boundary)
            if position >= room - 500 and position > 0:
                head = head[:position]
                break
        markdown = head.rstrip()
    content = "\n\n".join([markdown, *lines]) if lines else markdown
    return Extracted(content=content[:max_chars], length=length, truncated=truncated, title=title)


def decode_body(
    body: bytes, charset: str | None, *, sniff_html: bool = True, truncated: bool = False
) -> str:
    """Decode with the declared charset, a BOM, a ``<meta charset>``, UTF-8, then a guess."""
    if truncated:
        body = _trim_partial_utf8(body)
    for candidate in (charset, _bom_charset(body), _meta_charset(body) if sniff_html else None):
        if candidate and _known_codec(candidate):
            return body.decode(candidate, errors="replace").lstrip("\ufeff")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for guess in trafilatura.utils.detect_encoding(body[:65536]):
        if _known_codec(guess):
            try:
                return body.decode(guess)
            except UnicodeDecodeError:
                continue
    return body.decode("utf-8", errors="replace")


def _trim_partial_utf8(body: bytes) -> bytes:
    """Drop a multi-byte character cut in half by the size limit."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return body[: exc.start]
    return body


def _bom_charset(body: bytes) -> str | None:
    if body.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii").lower() if match else None


def _known_codec(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


def _clean_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _clean_text(text: str) -> str:
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _starts_with_heading(markdown: str, title: str) -> bool:
    first = markdown.lstrip().split("\n", 1)[0]
    if not first.startswith("#"):
        return False
    return _clean_line(first.lstrip("#")).casefold() == title.casefold()
