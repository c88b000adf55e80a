"""File-borne names are text: control and bidi characters go, HTML and markdown are escaped."""
from vizattn.text import html_text, markdown_text, plain


def test_plain_drops_control_and_bidi_characters_and_bounds_length():
    assert plain("road\x1b[31m\u202e\nside\twalk") == "road [31m side walk"
    assert plain("x" * 500, 10) == "x" * 9 + "…"


def test_html_text_escapes_every_element():
    assert html_text("<iframe srcdoc=\"<script>x</script>\">") == '&lt;iframe srcdoc="&lt;script&gt;x&lt;/script&gt;"&gt;'
    assert html_text("the query's class & more") == "the query's class &amp; more"


def test_markdown_text_renders_as_itself():
    text = markdown_text("**b** [a](javascript:x) :red[y] $x$ <b>")
    assert "**" not in text.replace("\\*", "") and "](" not in text and "<b>" not in text
    assert text.replace("\\", "").replace("&lt;", "<").replace("&gt;", ">") == "**b** [a](javascript:x) :red[y] $x$ <b>"
