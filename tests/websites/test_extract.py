"""HTML → Markdown: structure kept, boilerplate dropped, fallback, cap, encodings."""

from __future__ import annotations

import time

from neonrain.websites.extract import (
    MAX_CHARS,
    cap,
    decode_body,
    drop_scripts,
    extract,
    extract_page,
)
from neonrain.websites.fetch import FetchedPage

ARTICLE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Neon Bakery</title>
<style>body { color: red }</style><script>var tracking = "secret-script";</script></head>
<body>
<nav><a href="/">Home</a> · <a href="/about">About us</a> · <a href="/jobs">Jobs</a></nav>
<article>
<h1>Neon Bakery</h1>
<p>We bake <strong>sourdough</strong> every morning in the old harbour district. See the
<a href="https://neon.example/menu">menu page</a> for prices and seasonal specials.</p>
<h2>Opening hours</h2>
<p>Monday to Friday from 7:00 to 18:00. Saturday from 8:00 to 14:00. Closed on Sundays and on
public holidays, except the week before the winter festival.</p>
<ul><li>Croissants</li><li>Rye bread</li><li>Cinnamon buns</li></ul>
<h2>Contact</h2>
<p>Call us at 555-0100 or write to hello@neon.example; we answer every message within a day.</p>
</article>
<footer>© 2024 Neon Bakery · <a href="/privacy">Privacy</a></footer>
</body></html>
"""


def test_article_becomes_markdown() -> None:
    result = extract(ARTICLE.encode(), media_type="text/html", url="https://neon.example/")
    md = result.content
    assert md.startswith("# Neon Bakery\n")
    assert md.count("# Neon Bakery") == 1  # the title is not repeated
    assert "## Opening hours" in md
    assert "## Contact" in md
    assert "**sourdough**" in md
    assert "[menu page](https://neon.example/menu)" in md
    assert "- Croissants" in md
    assert "secret-script" not in md and "color: red" not in md
    assert "Privacy" not in md  # boilerplate dropped
    assert result.title == "Neon Bakery"
    assert result.length == len(md)
    assert not result.truncated


def test_title_is_added_as_heading_when_page_has_none() -> None:
    html = (
        "<html><head><title>Opening hours</title></head><body><div><p>"
        + "We are open every weekday from nine to five, and on Saturday mornings. " * 5
        + "</p></div></body></html>"
    )
    md = extract(html.encode(), media_type="text/html").content
    assert md.startswith("# Opening hours\n\nWe are open every weekday")


def test_falls_back_to_visible_text_when_extraction_finds_nothing() -> None:
    html = (
        "<html><head><title>Links</title><script>hidden()</script></head><body>"
        "<table><tr><td>Menu</td><td>Price list</td></tr></table></body></html>"
    )
    md = extract(html.encode(), media_type="text/html").content
    assert md.startswith("# Links")
    assert "Menu" in md and "Price list" in md
    assert "hidden()" not in md


def test_empty_page_gives_empty_content() -> None:
    result = extract(b"", media_type="text/html")
    assert result.content == ""
    assert result.length == 0


def test_plain_text_passes_through() -> None:
    text = "Line one\r\nLine two\x00\n\n\n\nLine three  \n"
    result = extract(text.encode(), media_type="text/plain")
    assert result.content == "Line one\nLine two\n\nLine three"
    assert result.title is None


def test_long_page_is_capped_with_a_visible_marker() -> None:
    body = "".join(
        f"<h2>Section {i}</h2><p>{'Lorem ipsum dolor sit amet, consectetur adipiscing. ' * 20}</p>"
        for i in range(100)
    )
    html = f"<html><head><title>Long</title></head><body><article>{body}</article></body></html>"
    result = extract(html.encode(), media_type="text/html")
    assert result.truncated
    assert result.length > 100_000
    assert len(result.content) <= MAX_CHARS
    last_line = result.content.rsplit("\n", 1)[1]
    assert last_line == (
        f"[… truncated: the page has {result.length:,} characters; the first part is shown]"
    )
    assert result.content.startswith("# Long\n")


def test_cap_exactly_at_the_limit_is_not_truncated() -> None:
    assert not cap("x" * 100, 100).truncated
    capped = cap("word " * 100, 100)
    assert capped.truncated and len(capped.content) <= 100
    assert capped.length == 500


def test_body_cut_at_5_mb_is_marked() -> None:
    result = extract(b"short text", media_type="text/plain", body_truncated=True)
    assert result.truncated
    assert result.content.endswith(
        "[… the page is larger than the 5 MB read limit; only its beginning was used]"
    )


def test_encodings() -> None:
    latin = "Café crème".encode("latin-1")
    assert decode_body(latin, "iso-8859-1") == "Café crème"
    meta = b'<html><head><meta charset="windows-1252"></head><body>Caf\xe9</body></html>'
    assert "Café" in decode_body(meta, None)
    assert decode_body("naïve".encode(), None) == "naïve"
    assert decode_body(b"\xef\xbb\xbfbom", None) == "bom"
    # A multi-byte character cut in half by the size limit is dropped, not mangled.
    assert decode_body("ab€".encode()[:-1], None, truncated=True) == "ab"
    assert decode_body(b"x", "no-such-charset") == "x"


async def test_extract_page_runs_in_a_thread_and_is_quick() -> None:
    page = FetchedPage(
        url="https://neon.example/",
        final_url="https://neon.example/",
        status_code=200,
        media_type="text/html",
        charset="utf-8",
        body=ARTICLE.encode() * 1,
        truncated=False,
        redirects=0,
        elapsed=0.0,
    )
    started = time.perf_counter()
    result = await extract_page(page)
    assert time.perf_counter() - started < 2.0
    assert "## Opening hours" in result.content


def test_very_large_html_is_cut_before_extraction() -> None:
    """trafilatura is superlinear: more than 1 MB of HTML is cut first (after dropping inline
    scripts and styles, so content behind a huge inline bundle survives)."""
    bundle = "<script>" + "var x = 1;" * 200_000 + "</script>"
    html = f"<html><head><title>App</title>{bundle}</head><body>{ARTICLE}</body></html>"
    started = time.perf_counter()
    result = extract(html.encode(), media_type="text/html")
    assert "## Opening hours" in result.content
    assert not result.truncated

    filler = "<p>" + "Plenty of paragraph text to read here. " * 50 + "</p>"
    huge = f"<html><head><title>Huge</title></head><body><article>{filler * 1500}</article>"
    result = extract(huge.encode(), media_type="text/html")
    assert result.truncated
    assert "only its beginning was used" in result.content
    assert len(result.content) <= MAX_CHARS
    assert time.perf_counter() - started < 15


def test_drop_scripts_is_linear_on_hostile_input() -> None:
    assert drop_scripts("a<script>x</script>b<STYLE a=1>y</style >c<script>z") == "abc"
    assert drop_scripts("no tags") == "no tags"
    started = time.perf_counter()
    drop_scripts("<script>" * 200_000 + "<style>" * 200_000)
    assert time.perf_counter() - started < 2
