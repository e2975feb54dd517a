"""What a template may build and spend: sizes checked by the sandbox, a time limit per letter, a memory
limit per rendering worker. A letter over a limit fails with the reason; the other letters go on."""

from __future__ import annotations

import contextlib
import functools
import itertools
import operator
import os
import re
import resource
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

from jinja2 import Template
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.nodes import Concat
from jinja2.utils import generate_lorem_ipsum

MAX_VALUE = 1_000_000  # characters of a string, items of a list, that one operation of a template may build
MAX_LETTER = 10_000_000  # characters of one rendered letter
MAX_INT_BITS = 4096  # bits of an integer a template may compute (10**1233 or so)
MAX_LIPSUM = 100  # paragraphs of lipsum()
MAX_SECONDS = 10  # seconds one letter may take to render (crmlist.toml [letters] max_seconds)
MAX_MEMORY = 2 << 30  # bytes of address space a rendering worker may add to what it had when it started
_TICK = 0.1  # seconds between two looks at the letter being rendered
_JOIN_PIECES = 64  # pieces of a letter's output added up at a time (a look every piece would slow letters)
_SIZED = (str, list, tuple)
_BIG_WIDTH = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format string
_NESTED = re.compile(r"\{[^{}]*\{|%[^a-zA-Z%]*\*")  # a width taken from an argument: '{:{w}}', '%*d'
# str methods whose result a small argument can make huge, and the size of their result
_STR_METHODS: dict[str, Callable[..., int]] = {
    "center": lambda s, width=0, *_: max(len(s), width),
    "ljust": lambda s, width=0, *_: max(len(s), width),
    "rjust": lambda s, width=0, *_: max(len(s), width),
    "zfill": lambda s, width=0, *_: max(len(s), width),
    "expandtabs": lambda s, tabsize=8, **_: len(s) + s.count("\t") * max(tabsize, 0),
    "join": lambda s, items=(), *_: _joined_size(s, items),
    "replace": lambda s, old="", new="", count=-1, *_: _replaced_size(s, old, new),
}


class TemplateLimitError(SecurityError):
    """A template tried to build more than crmlist allows (a memory bomb) or ran too long."""


# What rendering one letter may raise because of its template or the customer's data: that letter fails
# (failed.csv) and the others go on. Anything else is a bug in crmlist and stops the run as one.
# - TemplateError: Jinja's own, StrictUndefined's UndefinedError, the sandbox's SecurityError and the
#   limits here (TemplateLimitError, LetterTimeout), TemplateNotFound (an OSError too) for an include of
#   a template that is not there.
# - ValueError: the filters' FilterError and eml's HeaderError, Python's own refusals of a value
#   ('{:d}'.format(text), text.index('x')).
# - TypeError: an operator or call on a value of another type ('x' + 1, '%d' % text), a filter given
#   the wrong arguments.
# - ArithmeticError: division by zero, decimal's InvalidOperation, the sandbox's range() limit
#   (OverflowError).
# - LookupError: a format naming a key or position its values lack ('%(a)s' % d, '{1}'.format(x)), an
#   unknown codec; Jinja turns a missing item or attribute into UndefinedError itself.
# - RecursionError (the one RuntimeError here): a macro calling itself as deep as the data says, or an
#   include loop through a computed name (the loops of named templates are refused before any letter:
#   environment.include_loop).
# - MemoryError: a rendering worker's address-space limit (limit_worker_memory) fails the letter that
#   allocates too much.
# Not here, so an internal error (exit 1, never a "partial" run): AttributeError and NameError (the
# sandbox turns a missing attribute into an undefined, so they come from crmlist's code), AssertionError,
# other OSErrors and RuntimeErrors, ImportError. A bug of crmlist's raising one of the kinds above still
# fails letters: from a filter it looks like a template's mistake; the filters raise FilterError on purpose.
LETTER_ERRORS: tuple[type[BaseException], ...] = (
    TemplateError,
    ValueError,
    TypeError,
    ArithmeticError,
    LookupError,
    RecursionError,
    MemoryError,
)


def _too_big(what: str, size: int, limit: int = MAX_VALUE) -> TemplateLimitError:
    return TemplateLimitError(f"{what} would be {size:,} long, over the limit of {limit:,}")


def _joined_size(sep: str, items: Any) -> int:
    if not isinstance(items, list | tuple):
        return 0  # a generator or range: bounded by what made it
    return sum(len(x) if isinstance(x, str) else 0 for x in items) + len(sep) * max(len(items) - 1, 0)


def _replaced_size(text: str, old: str, new: str) -> int:
    if not isinstance(text, str) or not isinstance(new, str) or not isinstance(old, str):
        return 0
    return len(text) + (len(text) + 1 if not old else text.count(old)) * len(new)


def _format_args_too_big(fmt: str, args: Any) -> bool:
    """Whether a format string asks for a huge width or precision, itself or through an argument."""
    if _BIG_WIDTH.search(fmt):
        return True
    if not _NESTED.search(fmt):
        return False
    values = args.values() if isinstance(args, Mapping) else args if isinstance(args, tuple | list) else (args,)
    return any(isinstance(v, int) and abs(v) >= MAX_VALUE for v in values)


def check_format(fmt: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse str.format, format_map, % and |format calls that would pad a value to a huge width."""
    if isinstance(fmt, str) and _format_args_too_big(fmt, (*args, *kwargs.values())):
        raise TemplateLimitError(f"a format with a width of {MAX_VALUE:,} or more is over the limit")


def _product_size(left: Any, right: Any) -> int | None:
    """The length of `left * right` when one side is a sequence and the other a count, else None."""
    if isinstance(left, _SIZED) and isinstance(right, int):
        return len(left) * right
    if isinstance(right, _SIZED) and isinstance(left, int):
        return len(right) * left
    return None


def bounded_binop(op: str, left: Any, right: Any) -> Any:
    """left OP right, refused when its result would be over the limits."""
    if op == "*":
        size = _product_size(left, right)
        if size is not None and size > MAX_VALUE:
            raise _too_big("a repeated value", size)
        if type(left) is int and type(right) is int and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(f"a product over {MAX_INT_BITS} bits is over the limit")
    elif op == "**":
        ints = isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0
        if ints and (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise TemplateLimitError(f"a power over {MAX_INT_BITS} bits is over the limit")
    elif op == "+":
        if isinstance(left, _SIZED) and isinstance(right, _SIZED) and len(left) + len(right) > MAX_VALUE:
            raise _too_big("a joined value", len(left) + len(right))
    elif op == "%" and isinstance(left, str):
        check_format(left, right if isinstance(right, tuple) else (right,), right if isinstance(right, Mapping) else {})
    return _BINOPS[op](left, right)


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": operator.pow,
    "%": operator.mod,
}
INTERCEPTED_BINOPS = frozenset(_BINOPS)


def check_call(obj: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse a call of a str method (center, join, format, ...) whose result would be over the limit."""
    owner = getattr(obj, "__self__", None)
    if owner is None:  # the sandbox's wrapper of str.format
        owner = getattr(getattr(obj, "__wrapped__", None), "__self__", None)
    if type(owner) is not str:
        return
    name = getattr(obj, "__name__", "")
    if name in ("format", "format_map"):
        check_format(owner, args, kwargs if name == "format" else (args[0] if args else {}))
        return
    size_of = _STR_METHODS.get(name)
    if size_of is not None:
        try:
            size = size_of(owner, *args, **kwargs)
        except TypeError:
            return  # wrong arguments: the call itself says so
        if size > MAX_VALUE:
            raise _too_big(f"str.{name}()", size)


def check_concat(value: str) -> str:
    """The result of `~`, refused when over the limit (it is built by then, but never doubled again)."""
    if len(value) > MAX_VALUE:
        raise _too_big("a value joined with ~", len(value))
    return value


class BoundedCodeGenerator(CodeGenerator):
    """Jinja's code generator with every `a ~ b` passed through the environment's check_concat."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.check_concat(")
        super().visit_Concat(node, frame)
        self.write(")")


def _bounded_filter(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """A Jinja filter refusing arguments that would make its result over the limit."""
    eval_ctx = getattr(original, "jinja_pass_arg", None) is not None

    @functools.wraps(original)  # keeps jinja_pass_arg (pass_eval_ctx) too
    def bounded(*args: Any, **kwargs: Any) -> Any:
        value, *rest = args[1:] if eval_ctx else args
        with contextlib.suppress(TypeError, ValueError):  # wrong arguments: the filter itself says so
            _check_filter(name, value, rest, kwargs)
        return original(*args, **kwargs)

    return bounded


def _check_filter(name: str, value: Any, rest: list[Any], kwargs: Mapping[str, Any]) -> None:
    if name == "format":
        check_format(value, tuple(rest), kwargs)
        return
    text = value if isinstance(value, str) else ""
    if name == "center":
        size = max(len(text), int(rest[0] if rest else kwargs.get("width", 80)))
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else int(width)
        size = len(text) + (text.count("\n") + 1) * width
    elif name == "join":
        items = value if isinstance(value, list | tuple) else ()
        size = _joined_size(str(rest[0] if rest else kwargs.get("d", "")), items)
    else:  # replace
        old, new = [*rest, kwargs.get("old", ""), kwargs.get("new", "")][:2]
        size = _replaced_size(text, str(old), str(new))
    if size > MAX_VALUE:
        raise _too_big(f"|{name}", size)


BOUNDED_FILTERS = ("center", "indent", "format", "join", "replace")


def bound_filters(filters: dict[str, Callable[..., Any]]) -> None:
    """Replace the filters whose result an argument can make huge with bounded ones, in place."""
    for name in BOUNDED_FILTERS:
        if name in filters:
            filters[name] = _bounded_filter(name, filters[name])


def bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    """Jinja's lipsum() with at most MAX_LIPSUM paragraphs of at most 1,000 words."""
    if n > MAX_LIPSUM or max > 1000:
        raise TemplateLimitError(f"lipsum() of more than {MAX_LIPSUM} paragraphs of 1,000 words is over the limit")
    return str(generate_lorem_ipsum(n, html, min, max))


def bounded_join(pieces: Iterator[str]) -> str:
    """A template's output pieces joined, failing as soon as they add up to more than MAX_LETTER."""
    parts: list[str] = []
    size = 0
    while chunk := list(itertools.islice(pieces, _JOIN_PIECES)):
        size += sum(map(len, chunk))
        if size > MAX_LETTER:
            raise _too_big("the letter", size, MAX_LETTER)
        parts += chunk
    return "".join(parts)


def render_template(template: Template, context: dict[str, Any]) -> str:
    """Template.render(context) with the output bounded (bounded_join)."""
    try:
        return bounded_join(template.root_render_func(template.new_context(context)))
    except Exception:
        template.environment.handle_exception()  # re-raises with the template's own line numbers
        raise


class LetterTimeout(TemplateLimitError):
    """A letter took longer than its time limit to render."""


def _resident() -> int:
    """This process's resident memory in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class LetterClock:
    """Stops a letter that renders for longer than `seconds`, or makes the process grow by more than
    MAX_MEMORY (where no worker's RLIMIT_AS does: letters rendered in the parent): a SIGALRM ten times
    a second looks at which letter is being rendered, so a letter costs two attribute stores.

    The renderer counts `letter` up and sets `busy` while a template renders. It works in the main
    thread only (where signals arrive) and does nothing elsewhere.
    """

    def __init__(self, seconds: float = MAX_SECONDS) -> None:
        self.seconds = seconds
        self.letter = 0
        self.busy = False
        self._seen = -1
        self._waited = 0.0
        self._baseline = 0

    def _tick(self, signum: int, frame: FrameType | None) -> None:
        if not self.busy or self.letter != self._seen:
            self._seen, self._waited = self.letter, 0.0
            return
        self._waited += _TICK
        if self._waited >= self.seconds:
            self._waited = 0.0
            raise LetterTimeout(f"the letter took more than {self.seconds:g} seconds to render")
        if self._baseline and _resident() - self._baseline > MAX_MEMORY:
            raise TemplateLimitError(f"the letter took more than {MAX_MEMORY >> 20:,} MB of memory to render")

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Look at the letters rendered inside this block."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._baseline = _resident()
        before = signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, _TICK, _TICK)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)
            self.busy = False

    def render(self, template: Template, context: dict[str, Any]) -> str:
        """render_template() as one letter of this clock, which looks at it however it is called."""
        with self.running():
            self.letter += 1
            self.busy = True
            try:
                return render_template(template, context)
            finally:
                self.busy = False


def letter_seconds(config: Mapping[str, Any]) -> float:
    """crmlist.toml [letters] max_seconds, else MAX_SECONDS."""
    value = config.get("max_seconds", MAX_SECONDS)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else MAX_SECONDS


def limit_worker_memory(headroom: int = MAX_MEMORY) -> None:
    """Cap this process's address space at what it uses now plus `headroom` (RLIMIT_AS): a template
    that allocates more gets a MemoryError, which fails its letter, not the machine."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[0])
        now = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return  # not Linux: the sandbox's size limits still hold
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = now + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
