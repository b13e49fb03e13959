"""What a tool's docstring tells the model: its summary, and what each argument means.

Argument descriptions are read from the three docstring styles Python tools are written in, as LangChain's
``parse_docstring`` and the OpenAI Agents SDK read them: Google (``Args:``), NumPy (``Parameters`` over a dashed
line) and Sphinx (``:param name:``). A small model picks arguments far better when each one says what it is.
"""

from __future__ import annotations

import inspect
import re

_GOOGLE_HEADINGS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
# "order_id (int): the order" or "order_id: the order"; the type in brackets is the signature's business.
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")
_SPHINX_ENTRY = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_SPHINX_FIELD = re.compile(r"^:\w+")
_DASHES = re.compile(r"^-{3,}$")


def summary(doc: str | None) -> str:
    """The docstring's first paragraph: the tool's description."""
    return inspect.cleandoc(doc or "").split("\n\n")[0].strip()


def argument_docs(doc: str | None) -> dict[str, str]:
    """Each documented argument's description, by name, from a Google, NumPy or Sphinx docstring."""
    lines = inspect.cleandoc(doc or "").splitlines()
    found: dict[str, str] = {}
    for read in (_google, _numpy, _sphinx):
        for name, description in read(lines).items():
            found.setdefault(name, description)
    return found


def _google(lines: list[str]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    inside, entry_indent, current = False, None, None
    for line in lines:
        text, indent = line.strip(), _indent(line)
        if not inside:
            inside = text.rstrip(":").lower() in _GOOGLE_HEADINGS and text.endswith(":")
            entry_indent = None
            continue
        if not text:
            continue
        if entry_indent is None:
            entry_indent = indent
        if indent < entry_indent or (indent == 0 and text.endswith(":")):
            inside, current = text.rstrip(":").lower() in _GOOGLE_HEADINGS, None
            entry_indent = None
            continue
        match = _GOOGLE_ENTRY.match(text) if indent == entry_indent else None
        if match:
            current = match.group(1)
            found[current] = [match.group(2)]
        elif current is not None:
            found[current].append(text)
    return _joined(found)


def _numpy(lines: list[str]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    inside, current = False, None
    for index, line in enumerate(lines):
        text = line.strip()
        following = lines[index + 1].strip() if index + 1 < len(lines) else ""
        if _DASHES.match(following):
            inside, current = text.lower() in ("parameters", "other parameters"), None
            continue
        if not inside or not text or _DASHES.match(text):
            continue
        match = _NUMPY_ENTRY.match(text) if _indent(line) == 0 else None
        if match:
            current = match.group(1)
            found[current] = []
        elif current is not None:
            found[current].append(text)
    return _joined(found)


def _sphinx(lines: list[str]) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current = None
    for line in lines:
        text = line.strip()
        match = _SPHINX_ENTRY.match(text)
        if match:
            current = match.group(1)
            found[current] = [match.group(2)]
        elif _SPHINX_FIELD.match(text) or not text:
            current = None
        elif current is not None:
            found[current].append(text)
    return _joined(found)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _joined(found: dict[str, list[str]]) -> dict[str, str]:
    return {name: " ".join(part for part in parts if part) for name, parts in found.items() if any(parts)}
