"""Hostile text is data: no escape sequence or control character survives terminal_safe."""

import pytest

from warroom.core.text import terminal_safe


@pytest.mark.parametrize("hostile, shown", [
    ("err \x1b]0;pwned\x07 here", "err  here"),                 # OSC: retitles the terminal
    ("\x1b[2J\x1b[Hcleared", "cleared"),                         # CSI: clears the screen
    ("red \x1b[31mtext\x1b[0m", "red text"),
    ("bell\x07 nul\x00 del\x7f", "bell nul del"),
    ("8-bit \x9b2Jcsi", "8-bit csi"),
    ("\u202etxt.exe", "txt.exe"),                                # bidi override reorders what is read
    ("two\nlines\ttab\rcr", "two lines tab cr"),
    ("dcs \x1bPq#0;2;0;0;0\x1b\\ end", "dcs  end"),
])
def test_escape_sequences_and_controls_are_removed(hostile, shown):
    assert terminal_safe(hostile) == shown


def test_newlines_kept_on_request_and_plain_text_untouched():
    assert terminal_safe("a\r\nb\x1b[1m", keep_newlines=True) == "a\nb"
    text = "Check [PROD] dashboards: p95 ≤ 500 ms · 5% → 25%"
    assert terminal_safe(text) == text


def test_markdown_safe_shows_outside_text_as_written():
    from warroom.core.text import markdown_block, markdown_code, markdown_safe

    assert markdown_safe("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert markdown_safe("a | b *c* [d](e) `f` ~~g~~ _h_ \\ & \x1b]0;pwned\x07") == \
        "a \\| b \\*c\\* \\[d\\](e) \\`f\\` \\~\\~g\\~\\~ \\_h\\_ \\\\ &amp; "
    assert markdown_safe("error_rate p95-latency 5% → 25%") == "error_rate p95-latency 5% → 25%"  # plain text stays readable
    assert markdown_code("sum(rate(x[5m])) | `y`") == "`` sum(rate(x[5m])) \\| `y` ``"
    assert markdown_block(["a ``` b\x1b[2J"]) == ["````", "a ``` b", "````"]
