"""Assistant messages as sanitized HTML: Markdown rendered server-side, then cleaned by nh3.

Raw HTML in the Markdown is not rendered (it shows as text), and the result is cleaned again with
an allow-list, so no script, no event handler and no ``javascript:`` link reaches the page. Links
open in a new tab with ``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

from typing import Final

import nh3
from markdown_it import MarkdownIt

_MARKDOWN: Final = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)

ALLOWED_TAGS: Final = frozenset(
    {
        "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
        "hr", "i", "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead",
        "tr", "ul",
    }
)  # fmt: skip


def render_markdown(text: str) -> str:
    """``text`` (Markdown) as sanitized HTML."""
    html = _MARKDOWN.render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={"a": {"href", "title"}, "code": set(), "th": {"align"}, "td": {"align"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    ).strip()
