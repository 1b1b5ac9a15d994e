"""A griffe extension: render the reST idioms of rh-parallel's docstrings as Markdown.

The docstrings are written to read well in ``help()``: ``code`` in double backticks (already
Markdown), ``::`` literal blocks, ``>>>`` examples and Sphinx roles such as ``:class:`X```.
mkdocstrings renders Markdown, so before it does, this extension turns a literal block into a
fenced code block (Python when it parses as Python, text otherwise), a ``>>>`` paragraph into
a ``pycon`` block, and a role into inline code that links to the object's entry when the
reference documents it (an optional cross-reference: no link, and no warning, when it does
not). The source docstrings stay as they are.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import griffe

PACKAGE = "rh_parallel"

# :class:`x.Y` reads ``x.Y``, :class:`~x.Y` reads ``Y`` (as Sphinx shows them)
ROLE = re.compile(r":(?:py:)?[a-z]+:`(?:~[\w.]*?([^`.]+)|([^`]+))`")


Resolver = Callable[[str], str | None]


def _no_links(target: str) -> str | None:
    return None


def _roles(line: str, resolve: Resolver) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(1) or match.group(2)
        target = match.group(0).split("`")[1].lstrip("~")
        identifier = resolve(target)
        if identifier is None:
            return f"`{text}`"
        return f'<autoref identifier="{identifier}" optional><code>{text}</code></autoref>'

    return ROLE.sub(replace, line)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _language(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError:
        return "text"
    return "python"


def _fence(code_lines: list[str], language: str, indent: int) -> list[str]:
    pad = " " * indent
    code = textwrap.dedent("\n".join(code_lines))
    language = language or _language(code)
    body = [pad + line if line else "" for line in code.splitlines()]
    return ["", f"{pad}```{language}", *body, f"{pad}```", ""]


def to_markdown(text: str, resolve: Resolver = _no_links) -> str:
    """The docstring ``text`` with its reST idioms turned into Markdown; ``resolve`` gives a
    role's target the identifier to link to (``None``: no link)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(">>>") and (not out or not out[-1].strip()):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            out += _fence(block, "pycon", _indent(line))
            continue
        if stripped.endswith("::") and i + 1 < len(lines) and not lines[i + 1].strip():
            base = _indent(line)
            j = i + 1
            block = []
            while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            while block and not block[0].strip():
                block.pop(0)
            if block:
                if stripped != "::":
                    # "Example::" reads "Example:"; "text ::" reads "text"
                    head = line.rstrip()[:-2]
                    out.append(_roles(head.rstrip() if head.endswith(" ") else head + ":", resolve))
                out += _fence(block, "", base)
                i = j
                continue
        out.append(_roles(line, resolve))
        i += 1
    return "\n".join(out)


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not isinstance(member, griffe.Alias):
            yield from _objects(member)


def _resolver(obj: griffe.Object) -> Resolver:
    def resolve(target: str) -> str | None:
        try:
            return obj.resolve(target)
        except griffe.NameResolutionError:
            return target if target.startswith(f"{PACKAGE}.") else None

    return resolve


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _hide_init_value(obj: griffe.Object) -> None:
    """An attribute set only in ``__init__`` (``self.store = store``) shows its name and
    annotation, not the code that computes it: that code is the implementation, not a value
    (a class attribute, an enum member's for one, keeps its value)."""
    if isinstance(obj, griffe.Attribute) and obj.labels == {"instance-attribute"}:
        obj.value = None


def _hide_private(obj: griffe.Object) -> None:
    """Keep private names out of the reference: a parameter such as ``_clock=`` (a test hook,
    with a default) leaves the signature, a validator such as ``_known_fields`` the model's
    list of validators (griffe_pydantic lists every validator by label)."""
    if isinstance(obj, griffe.Function):
        if _private(obj.name):
            obj.labels.discard("pydantic-validator")
        for parameter in list(obj.parameters):
            if _private(parameter.name) and parameter.default is not None:
                del obj.parameters[parameter.name]


class RstDocstrings(griffe.Extension):
    """Convert the package's docstrings once it is loaded (every name can be resolved then),
    hide private parameters and validators, and the code that sets instance attributes.
    Listed after the ``dataclasses`` extension in mkdocs.yml, so that a dataclass's generated
    ``__init__`` exists when this runs."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        for obj in _objects(pkg):
            _hide_private(obj)
            _hide_init_value(obj)
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj.docstring.value, _resolver(obj))
