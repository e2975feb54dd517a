"""The one sandboxed Jinja2 environment and the lookup of templates/NAME[.LANG].EXT.j2 files."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from crmlist.errors import BadInputError, NotFoundError
from crmlist.letters.eml import mark_line_breaks
from crmlist.letters.filters import make_filters
from crmlist.letters.limits import (
    INTERCEPTED_BINOPS,
    BoundedCodeGenerator,
    bound_filters,
    bounded_binop,
    bounded_lipsum,
    check_call,
    check_concat,
)
from crmlist.letters.markdown import markdown_escape
from crmlist.letters.pdf import typst_finalize, typst_string
from crmlist.workspace import Workspace

TEMPLATE_EXTS = ("txt", "md", "html", "eml")
AUTOESCAPED_EXTS = ("html", "eml")
_AUTOESCAPED_SUFFIXES = tuple(f".{e}.j2" for e in AUTOESCAPED_EXTS)
_STEM_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
# Language parts of file names and of customers' language values; anything else never reaches a path.
_LANG_RE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")


_HTML_BODY = re.compile(r"^content-type:\s*text/html", re.IGNORECASE | re.MULTILINE)


def _autoescape(folder: str, template_name: str | None) -> bool:
    """html templates escape what they print; eml ones only when their header block declares an HTML
    body (Content-Type: text/html): a plain-text message shows "&" as "&", not "&amp;"."""
    if template_name is None or not template_name.endswith(_AUTOESCAPED_SUFFIXES):
        return False
    if not template_name.endswith(".eml.j2"):
        return True
    path = Path(folder) / template_name
    try:
        return _html_body(path, path.stat().st_mtime_ns)
    except (OSError, UnicodeDecodeError):  # the loader reports it when it compiles the template
        return True


@lru_cache(maxsize=1024)  # by file and modification time: a changed template is read again
def _html_body(path: Path, mtime_ns: int) -> bool:
    head = path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n\n", 1)[0]
    return _HTML_BODY.search(head) is not None


class LetterSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, reading `customer.x` of a plain dict as its key without a failed getattr
    first: the row's own data is always safe to read, and this is the hot path of every letter.

    What a template builds is bounded (crmlist.letters.limits): `*`, `+`, `**`, `%` and `~`, the str
    methods and filters that pad or join, so that `'a' * 10**10` fails its letter instead of the machine.
    Intercepted operators are never folded at compile time either, so `check` cannot hang on them.
    """

    intercepted_binops = INTERCEPTED_BINOPS
    code_generator_class = BoundedCodeGenerator

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        return bounded_binop(operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    @staticmethod
    def check_concat(value: str) -> str:
        return check_concat(value)

    _overlays: dict[str, LetterSandbox] | None = None

    def for_file(self, name: str) -> LetterSandbox:
        """The environment a template file compiles in: eml templates print values with their line
        breaks marked (crmlist.letters.eml), so that none can start a header of its own; md templates
        print them escaped for Markdown, so that a value is only ever words."""
        kind = next((k for k in _FINALIZE_BY_KIND if name.endswith(k)), None)
        if kind is None or self.finalize is not present:
            return self
        if self._overlays is None:
            self._overlays = {}
        if kind not in self._overlays:
            overlay = self.overlay(finalize=_FINALIZE_BY_KIND[kind], cache_size=400)  # a cache of its own
            assert isinstance(overlay, LetterSandbox)
            overlay.filters = self.filters
            self._overlays[kind] = overlay
        return self._overlays[kind]

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


MISSING = (
    "a value printed is missing (NULL): print it inside {% if value %}...{% endif %}, "
    "or give it a default with |default('...', true)"
)


def present(value: Any) -> Any:
    """Every {{ value }} of a letter: a missing one (None) fails the letter, as an undefined name does,
    instead of printing "None" ("code None" for a cell without an offer)."""
    if value is None:
        raise UndefinedError(MISSING)
    return value


def _present_then(escape: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A finalize that fails a missing value (present) and escapes the others for the template's kind."""

    def finalize(value: Any) -> Any:
        return escape(present(value))

    return finalize


# the kinds of template whose printed values are escaped for their format (typ: build_typst_environment)
_FINALIZE_BY_KIND = {".eml.j2": _present_then(mark_line_breaks), ".md.j2": _present_then(markdown_escape)}


def build_environment(ws: Workspace) -> LetterSandbox:
    """The sandboxed environment over ws.templates_dir with the letter filters (Jinja's default whitespace)."""
    env = LetterSandbox(
        loader=FileSystemLoader(str(ws.templates_dir), encoding="utf-8"),
        undefined=StrictUndefined,
        finalize=present,
        autoescape=functools.partial(_autoescape, str(ws.templates_dir)),
        auto_reload=False,  # templates are compiled once per run; no stat() per letter
    )
    env.filters.update(make_filters(ws.locale, ws.currency))
    bound_filters(env.filters)
    env.globals["lipsum"] = bounded_lipsum
    return env


def build_typst_environment(env: LetterSandbox) -> LetterSandbox:
    """The same sandbox for NAME.typ.j2 templates: every value printed is escaped for Typst markup."""
    overlay = env.overlay(finalize=_present_then(typst_finalize))
    assert isinstance(overlay, LetterSandbox)
    overlay.filters = dict(env.filters, typst_str=typst_string)  # overlays share the dict otherwise
    return overlay


def split_template_name(name: str) -> tuple[str, str | None]:
    """A rule file's template name into NAME and the explicit EXT, if any ('winback.html')."""
    stem, dot, ext = name.strip().rpartition(".")
    if not dot:
        stem, ext = ext, ""
    if ext and ext not in TEMPLATE_EXTS:
        stem, ext = name.strip(), ""
    if not _STEM_RE.match(stem):
        raise BadInputError(
            f"template {name!r}",
            "not a template name",
            'name a file of templates/ without folders, language or .j2: template = "winback"',
        )
    return stem, ext or None


def normalise_language(language: str | None) -> str | None:
    """A language value as file names spell it ('pl_PL' -> 'pl-pl'), None when it cannot be one."""
    if not isinstance(language, str):
        return None
    lang = language.strip().lower().replace("_", "-")
    return lang if _LANG_RE.match(lang) else None


def template_index(
    ws: Workspace, stem: str, exts: tuple[str, ...] = TEMPLATE_EXTS
) -> dict[tuple[str | None, str], Path]:
    """Every templates/STEM[.LANG].EXT.j2 file with EXT in `exts`, keyed by (language or None, EXT)."""
    found: dict[tuple[str | None, str], Path] = {}
    directory = ws.templates_dir
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob(f"{stem}.*.j2")):
        parts = path.name[len(stem) + 1 : -len(".j2")].split(".")
        if path.name.startswith((".", "#")) or not path.is_file() or parts[-1] not in exts:
            continue
        if len(parts) == 1:
            found[(None, parts[0])] = path
        elif len(parts) == 2 and (lang := normalise_language(parts[0])) is not None:
            found[(lang, parts[1])] = path
    return found


def _ext_for(stem: str, ext: str | None, index: dict[tuple[str | None, str], Path]) -> str:
    exts = sorted({e for (_, e) in index})
    if not exts:
        raise NotFoundError(
            f"templates/{stem}", "no template of this name", f"create templates/{stem}.txt.j2 (or .md, .html, .eml)"
        )
    if ext is None:
        if len(exts) > 1:
            raise BadInputError(
                f"templates/{stem}",
                f"several formats exist ({', '.join(exts)}) and the rule file names none",
                f'name one in the rule file, e.g. template = "{stem}.{exts[0]}"',
            )
        return exts[0]
    if ext not in exts:
        raise NotFoundError(
            f"templates/{stem}.{ext}.j2", f"no {ext} template (found: {', '.join(exts)})", "create it, or name another"
        )
    return ext


def template_ext(ws: Workspace, name: str) -> str:
    """txt, md, html or eml: the format of a rule file's template name (for letter file names)."""
    stem, ext = split_template_name(name)
    return _ext_for(stem, ext, template_index(ws, stem))


def language_candidates(language: str | None) -> list[str]:
    """Languages to try for a customer, most specific first: 'pl-pl', then 'pl'."""
    lang = normalise_language(language)
    if lang is None:
        return []
    primary = lang.split("-")[0]
    return [lang] if primary == lang else [lang, primary]


def pick_template(index: dict[tuple[str | None, str], Path], stem: str, ext: str, language: str | None) -> Path:
    """The file for a language from an index: NAME.LANG.EXT.j2, else NAME.EXT.j2."""
    for lang in language_candidates(language):
        if (lang, ext) in index:
            return index[(lang, ext)]
    if (None, ext) in index:
        return index[(None, ext)]
    lang = normalise_language(language) or "none"
    raise NotFoundError(
        f"templates/{stem}.{ext}.j2",
        f"no template for language {lang!r} and no default",
        f"create templates/{stem}.{ext}.j2 as the fallback",
    )


def find_template(ws: Workspace, name: str, language: str | None) -> Path:
    """The template file for a customer's language, falling back to the one without a language."""
    stem, ext = split_template_name(name)
    index = template_index(ws, stem)
    return pick_template(index, stem, _ext_for(stem, ext, index), language)


# What the filters read of a customer passed to them whole.
_FILTER_COLUMNS = {"salutation": frozenset({"language", "gender", "first_name", "last_name"})}
_SHARES_CONTEXT = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def _is_customer(node: nodes.Node, attribute: bool = False) -> bool:
    if attribute:
        return isinstance(node, nodes.Getattr) and _is_customer(node.node)
    return isinstance(node, nodes.Name) and node.name == "customer" and node.ctx == "load"


def _tree(env: ImmutableSandboxedEnvironment, source: str | nodes.Template) -> nodes.Template:
    return env.parse(source) if isinstance(source, str) else source


def customer_columns(env: ImmutableSandboxedEnvironment, source: str | nodes.Template) -> set[str] | None:
    """The customer columns a template (its text or its parsed tree) reads (customer.x, customer['x'],
    customer|salutation), or None when it may read any: it uses `customer` another way, or shares its
    context with another template."""
    used: set[str] = set()

    def walk(node: nodes.Node, parent: nodes.Node | None) -> bool:
        if isinstance(node, _SHARES_CONTEXT) or (isinstance(node, nodes.Call) and _is_customer(node.node, True)):
            return False  # another template sees the context; a method call such as customer.get(...)
        if _is_customer(node):
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                used.add(parent.attr)
            elif isinstance(parent, nodes.Getitem) and parent.node is node and isinstance(parent.arg, nodes.Const):
                used.add(str(parent.arg.value))
            elif isinstance(parent, nodes.Filter) and parent.node is node and parent.name in _FILTER_COLUMNS:
                used.update(_FILTER_COLUMNS[parent.name])
            else:
                return False
        return all(walk(child, node) for child in node.iter_child_nodes())

    return used if walk(_tree(env, source), None) else None


def reads_variable(env: ImmutableSandboxedEnvironment, source: str | nodes.Template, name: str) -> bool:
    """Whether a template (its text or its parsed tree) reads the context variable `name`, or may: it
    shares its context with another."""
    ast = _tree(env, source)
    if next(ast.find_all(_SHARES_CONTEXT), None) is not None:
        return True
    return any(node.name == name and node.ctx == "load" for node in ast.find_all(nodes.Name))


def compile_template(env: ImmutableSandboxedEnvironment, ws: Workspace, path: Path) -> Template:
    """Compile a template file once; a syntax error, or a template that includes itself, is bad input
    naming the file and line."""
    if isinstance(env, LetterSandbox):
        env = env.for_file(path.name)
    name = path.relative_to(ws.templates_dir).as_posix()
    try:
        template = env.get_template(name)
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, path.name) from None
    loop = include_loop(env, name)
    if loop is not None:
        raise loop
    return template


_VERBS = {nodes.Include: "includes", nodes.Extends: "extends", nodes.Import: "imports", nodes.FromImport: "imports"}


def _named_templates(env: ImmutableSandboxedEnvironment, name: str) -> list[tuple[str, int, str]]:
    """The templates a template's include, extends and import tags name as text: (name, line, verb).
    Of a list (`{% include ['a', 'b'] %}`), the first that exists, as Jinja picks it."""
    assert env.loader is not None
    try:
        tree = env.parse(env.loader.get_source(env, name)[0], name)
    except (TemplateNotFound, TemplateSyntaxError):  # a failed letter, or a syntax error reported as one
        return []
    found = []
    for node in tree.find_all(_SHARES_CONTEXT):
        assert isinstance(node, _SHARES_CONTEXT)  # for mypy: find_all types its nodes as Stmt
        target = node.template
        items = target.items if isinstance(target, nodes.List | nodes.Tuple) else [target]
        names = [i.value for i in items if isinstance(i, nodes.Const) and isinstance(i.value, str)]
        existing = [n for n in names if _exists(env, n)][:1]
        found += [(n, node.lineno, _VERBS[type(node)]) for n in existing]
    return found


def _exists(env: ImmutableSandboxedEnvironment, name: str) -> bool:
    assert env.loader is not None
    try:
        env.loader.get_source(env, name)
    except TemplateNotFound:
        return False
    return True


def include_loop(env: ImmutableSandboxedEnvironment, name: str) -> BadInputError | None:
    """A loop of include, extends and import tags reachable from a template, which would make every
    letter recurse until Python gives up: bad input at the tag that closes it. Only names written as
    text are followed; a computed name is a failed letter (RecursionError) when it loops."""
    seen: set[str] = set()

    def visit(trail: list[str]) -> BadInputError | None:
        here = trail[-1]
        seen.add(here)
        for target, line, verb in _named_templates(env, here):
            if target in trail:
                chain = " -> ".join([*trail[trail.index(target) :], target])
                what = f"{verb} itself" if target == here else f"{verb} {target}, which leads back here: {chain}"
                return BadInputError(
                    f"templates/{here}:{line}",
                    what,
                    "a template cannot include, extend or import itself, directly or through others: "
                    "remove that tag, or move the shared part into a template of its own",
                )
            if target not in seen and (loop := visit([*trail, target])) is not None:
                return loop
        return None

    return visit([name])


def syntax_error(exc: TemplateSyntaxError, fallback_name: str) -> BadInputError:
    """A Jinja syntax error as bad input at templates/FILE:LINE."""
    name = Path(exc.filename).name if exc.filename else (exc.name or fallback_name)
    return BadInputError(
        f"templates/{name}:{exc.lineno}",
        f"template syntax error: {exc.message}",
        "fix the template; see https://jinja.palletsprojects.com/en/stable/templates/",
    )
