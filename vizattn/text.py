"""File-borne text made safe to show: a class name from a checkpoint or a config is never markup.

Names enter through `plain` (no control or bidi characters, bounded length) and leave through `html_text`
or `markdown_text`, whichever the place that shows them renders.
"""
from __future__ import annotations

import html
import re
import unicodedata

MAX_NAME = 120
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=^])")


def plain(text, limit: int = MAX_NAME) -> str:
    """One line of printable text: control, format (bidi overrides, zero-width) and line characters dropped,
    runs of whitespace as one space, at most `limit` characters."""
    text = "".join(c if unicodedata.category(c)[0] not in "CZ" or c == " " else " " for c in str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def html_text(text) -> str:
    """`plain` text escaped for HTML element content (plotly's titles and hover texts): what the reader sees is
    the characters, never elements. Not for attribute values."""
    return html.escape(plain(text), quote=False)


def markdown_text(text) -> str:
    """`plain` text with every character markdown (or Streamlit's directives, LaTeX, emoji codes) would read
    escaped, so it renders as itself."""
    return _MARKDOWN.sub(r"\\\1", html.escape(plain(text), quote=False))
