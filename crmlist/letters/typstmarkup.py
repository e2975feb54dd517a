"""Values as Typst: literal text in markup, or a string literal for Typst code."""

from __future__ import annotations

import string
from typing import Any

_MARKUP_ESCAPES = str.maketrans({c: "\\" + c for c in string.punctuation})
_STRING_ESCAPES = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    | {chr(c): f"\\u{{{c:x}}}" for c in range(32) if chr(c) not in "\n\r\t"}
)


class TypstMarkup(str):
    """Text that is Typst source already (from `typst_string`); templates' other values get escaped."""


def typst_markup(value: Any) -> str:
    """A value as literal text in Typst markup: every ASCII punctuation mark escaped, so no data is markup."""
    return str(value).translate(_MARKUP_ESCAPES)


def typst_string(value: Any) -> TypstMarkup:
    """A value as a Typst string literal, for templates that pass data to Typst code: #link({{ x|typst_str }})."""
    return TypstMarkup('"' + str(value).translate(_STRING_ESCAPES) + '"')


def typst_finalize(value: Any) -> Any:
    """Every {{ value }} of a .typ.j2 template escaped for Typst markup, unless it is Typst already."""
    return value if isinstance(value, TypstMarkup) else typst_markup(value)
