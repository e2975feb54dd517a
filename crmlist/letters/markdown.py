"""Markdown letters for PDF: parsed by markdown-it-py (CommonMark, raw HTML off) and laid out as Typst markup.

Every piece of text is escaped for Typst, so a letter's words (and the values printed into them) are
only ever words; structure comes from Markdown alone: headings, paragraphs, emphasis, lists, links,
quotes, code and rules. Images print their alternative text: a letter fetches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from markupsafe import Markup

from crmlist.letters.typstmarkup import typst_markup, typst_string

# Characters that may start Markdown structure anywhere in a line (CommonMark lets any ASCII punctuation be
# escaped with a backslash), and the starts of a line that make a list, a heading, a quote or a rule.
_MD_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#~|!&])")
_LINE_START = re.compile(r"^(\s*)(?:([-+=>])|(\d+)([.)]))", re.MULTILINE)


def markdown_escape(value: object) -> object:
    """A value printed into an md template: its text escaped so that Markdown reads it as words alone
    ("Anna_*x*" stays "Anna_*x*"); numbers and dates come through as they print."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    return _LINE_START.sub(_escape_line_start, _MD_PUNCTUATION.sub(r"\\\1", value))


def _escape_line_start(m: re.Match[str]) -> str:
    indent, mark, digits, dot = m.groups()
    return f"{indent}\\{mark}" if mark else f"{indent}{digits}\\{dot}"


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False})


def markdown_as_markup(text: str) -> str:
    """A Markdown letter as Typst markup."""
    tree = SyntaxTreeNode(_parser().parse(text))
    return _blocks(tree.children).strip()


def _blocks(nodes: list[SyntaxTreeNode]) -> str:
    return "".join(_block(node) for node in nodes)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "heading":
        return "=" * int(node.tag[1]) + " " + _blocks(node.children) + "\n\n"
    if kind == "paragraph":
        # A tight list's paragraphs are hidden: its items are lines, not paragraphs.
        return _blocks(node.children) + ("" if node.hidden else "\n\n")
    if kind in ("bullet_list", "ordered_list"):
        items = ", ".join(f"[{_blocks(item.children).strip()}]" for item in node.children)
        start = node.attrs.get("start") if kind == "ordered_list" else None
        call = "#list(" if kind == "bullet_list" else f"#enum(start: {int(start or 1)}, "
        return f"{call}{items})\n\n"
    if kind == "blockquote":
        return f"#quote(block: true)[{_blocks(node.children).strip()}]\n\n"
    if kind in ("fence", "code_block"):
        return f"#raw(block: true, {typst_string(node.content.rstrip(chr(10)))})\n\n"
    if kind == "hr":
        return "#line(length: 100%)\n\n"
    if kind == "inline":
        return _inline(node.children)
    return typst_markup(node.content) + "\n\n"  # nothing else reaches here with raw HTML off


def _inline(nodes: list[SyntaxTreeNode]) -> str:
    return "".join(_INLINE.get(node.type, _text)(node) for node in nodes)


def _text(node: SyntaxTreeNode) -> str:
    return typst_markup(node.content)


def _wrapped(function: str) -> Callable[[SyntaxTreeNode], str]:
    return lambda node: f"#{function}[{_inline(node.children)}]"


def _link(node: SyntaxTreeNode) -> str:
    return f"#link({typst_string(str(node.attrs.get('href', '')))})[{_inline(node.children)}]"


def _image(node: SyntaxTreeNode) -> str:
    return _inline(node.children)


_INLINE: dict[str, Callable[[SyntaxTreeNode], str]] = {
    "text": _text,
    "softbreak": lambda node: " ",
    "hardbreak": lambda node: " \\\n",
    "strong": _wrapped("strong"),
    "em": _wrapped("emph"),
    "code_inline": lambda node: f"#raw({typst_string(node.content)})",
    "link": _link,
    "image": _image,
}
