"""Text from plans, servers and users is data: made safe before any terminal sees it.

A Prometheus error, a flag name or a `--reason` can carry escape sequences (retitle the
terminal, move the cursor, hide a line) or bidi overrides that make text read otherwise
than it is. Every string that did not come from warroom itself goes through
`terminal_safe` before it is printed or drawn. Markup and HTML escaping are separate
concerns, done where the markup language is known (Textual widgets, the HTML report).
"""

from __future__ import annotations

import re

# Whole escape sequences first (CSI, OSC, DCS/SOS/PM/APC strings, two-byte ESC x), so
# what is left of them is not shown as stray text; then any remaining control character.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"                     # CSI … final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"          # OSC … BEL or ST (or cut short)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"                # DCS, SOS, PM, APC … ST
    r"|\x1b[@-Z\\-_]"                                # two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"                        # 8-bit CSI
)
# C0 and C1 controls, DEL, and the bidi/invisible format characters that reorder or hide text.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
# Anything terminal_safe changes: _CONTROL's characters with tab and LF (every escape starts with one of them).
_TOUCHED = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def terminal_safe(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every escape sequence and control character removed.

    Tabs become a space; newlines too, unless `keep_newlines` (multi-line output such as
    a report body keeps its lines, each of them cleaned).
    """
    s = str(text)
    if not _TOUCHED.search(s):  # most text: a report cleans millions of cells
        return s
    s = _ESCAPE.sub("", s)
    s = s.replace("\t", " ").replace("\r\n", "\n").replace("\r", "\n")
    if not keep_newlines:
        s = s.replace("\n", " ")
    return _CONTROL.sub("", s)


# Markdown: what would be emphasis, a link, code, strikethrough or a table cell's end in
# outside text is backslash-escaped; `_` only where it could open or close emphasis
# (intraword `error_rate` stays readable); HTML becomes entities so no renderer runs it.
_MD_PUNCT = re.compile(r"[\\`*\[\]~|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_HTML_CHARS = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML = re.compile(r"[&<>]")
_MD_SPECIAL = re.compile(r"[\\`*\[\]~|_&<>]")  # any character either substitution below could touch


def markdown_safe(text: object) -> str:
    """One line of outside text for a Markdown document: shown as written, never as markup or HTML."""
    s = terminal_safe(text)
    if not _MD_SPECIAL.search(s):
        return s
    s = _MD_PUNCT.sub(lambda m: "\\" + m.group(0), s)
    return _HTML.sub(lambda m: _HTML_CHARS[m.group(0)], s)


def markdown_code(text: object) -> str:
    """Outside text as a Markdown code span: a fence longer than any backtick run inside it."""
    s = terminal_safe(text)
    fence = "`" * (max((len(run) for run in re.findall(r"`+", s)), default=0) + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    # A `|` ends a table cell even inside a code span (GFM), and the escape is shown as `|`.
    return f"{fence}{pad}{s.replace('|', chr(92) + '|')}{pad}{fence}"


def markdown_block(lines: list[str]) -> list[str]:
    """Outside text as a fenced code block, each line cleaned; the fence outlasts any backtick run."""
    clean = [terminal_safe(line) for line in lines]
    longest = max((len(run) for line in clean for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *clean, fence]
