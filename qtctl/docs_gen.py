"""The reference pages generated from the code: checks, config keys and the CLI, in docs/reference/.

`python -m qtctl.docs_gen` rewrites them; `--check` changes nothing and exits 1 naming every page
that differs from a fresh generation (tests/test_docs.py runs it). The sources of truth stay in the
code: each check's `CodeDoc` (what `qtctl explain` prints), the section dataclasses of
`qtctl/config.py` with their defaults and `field(metadata=...)` limits, and the typer app.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qtctl.docs_cli import cli_page
from qtctl.docs_text import GENERATED, cell, code, prose

REGENERATE = "python -m qtctl.docs_gen"
DOCS = Path(__file__).resolve().parents[1] / "docs"


def checks_page() -> str:
    """One section per code, anchored `#qtNNN`, with exactly the text `qtctl explain` prints."""
    from qtctl.catalog import all_codes

    codes = all_codes()
    lines = [
        "# Checks reference",
        "",
        GENERATED,
        "Every check code, generated from the checks' own `CodeDoc`s: `qtctl explain CODE`",
        "prints the same text. Codes are `QT<area><nn>`: 1 systemd units, 2 Python imports,",
        "3 line endings, 4 Redis streams, 5 daemon health, 6 host, 7 services at run time.",
        "`--select QT4` and `--ignore QT402` work by prefix. The overview, with more detail per",
        "code, is [Check codes](../checks.md).",
        "",
        "| code | severity | title | `qtctl fix` |",
        "|---|---|---|---|",
    ]
    for doc in codes.values():
        fixable = "repairs it" if doc.repair is not None else ""
        link = f"[{doc.code}](#{doc.code.lower()})"
        lines.append(f"| {link} | {doc.severity} | {cell(doc.title)} | {fixable} |")
    for doc in codes.values():
        lines += ["", f"## {doc.code}", "", f"**{prose(doc.title)}** ({doc.severity})", ""]
        if doc.repair is not None:
            facts = doc.repair.__name__
            lines += [f"Fixable: `qtctl fix` plans from the finding's facts (`{facts}`).", ""]
        for label, text in (("What", doc.meaning), ("Why it matters", doc.why), ("Fix", doc.fix)):
            lines += [f"**{label}:** {prose(text)}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def config_page() -> str:
    """One table per section: key, type, default, limits, environment variable, code comment."""
    lines = [
        "# Config reference",
        "",
        GENERATED,
        "Every key of the config schema (the section dataclasses of `qtctl/config.py` and",
        "`qtctl/config_rl.py`), with its default and the limits its value is checked against.",
        "Precedence, the removed keys and what each key means:",
        "[Configuration](../configuration.md). `qtctl config show` prints each key's effective",
        "value and where it came from.",
    ]
    for name, kind in _sections():
        lines += ["", f"## [{name}]", "", prose(_first_line(kind.__doc__)), ""]
        lines += ["| key | type | default | limits | environment | note |", "|" + "---|" * 6]
        lines += _config_rows(name, kind)
    return "\n".join(lines) + "\n"


def _config_rows(name: str, kind: type[Any]) -> list[str]:
    from qtctl.config import ENV_PREFIX

    hints = typing.get_type_hints(kind)
    comments = _field_comments(kind)
    return [
        f"| `{name}.{item.name}` | {_type_name(hints[item.name])} | {_default(item)} "
        f"| {_limits(item.metadata)} | `{ENV_PREFIX}{name.upper()}__{item.name.upper()}` "
        f"| {cell(comments.get(item.name, ''))} |"
        for item in dataclasses.fields(kind)
    ]


def pages() -> dict[str, str]:
    """Path under docs/ -> the page's text, freshly generated."""
    return {
        "reference/checks.md": checks_page(),
        "reference/config.md": config_page(),
        "reference/cli.md": cli_page(),
    }


def stale(docs: Path = DOCS, fresh: Mapping[str, str] | None = None) -> list[str]:
    """The generated pages whose committed text differs from a fresh generation (or is missing)."""
    fresh = pages() if fresh is None else fresh
    return [
        name
        for name, text in fresh.items()
        if not (docs / name).is_file() or (docs / name).read_text(encoding="utf-8") != text
    ]


def write(docs: Path = DOCS) -> list[str]:
    """Rewrite every generated page that changed; returns their names."""
    fresh = pages()
    changed = stale(docs, fresh)
    for name in changed:
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(fresh[name], encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m qtctl.docs_gen [--check] [--docs DIR]`."""
    parser = argparse.ArgumentParser(prog=REGENERATE, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default: ours)")
    args = parser.parse_args(argv)
    if args.check:
        names = stale(args.docs)
        for name in names:
            print(f"{args.docs / name}: stale; run `{REGENERATE}`", file=sys.stderr)
        return 1 if names else 0
    for name in write(args.docs):
        print(f"wrote {args.docs / name}")
    return 0


def _sections() -> list[tuple[str, type[Any]]]:
    """(section name, its dataclass) in the order of `Config`'s fields."""
    from qtctl.config import Config

    hints = typing.get_type_hints(Config)
    return [
        (f.name, hints[f.name])
        for f in dataclasses.fields(Config)
        if isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name])
    ]


def _type_name(hint: Any) -> str:
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if hint in names:
        return names[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and args and args[-1] is Ellipsis:
        return f"list of {names.get(args[0], 'values')}s"
    if isinstance(origin or hint, type) and issubclass(origin or hint, Mapping):
        return "table"
    return cell(str(hint))


def _default(item: dataclasses.Field[Any]) -> str:
    if item.default is not dataclasses.MISSING:
        value = item.default
    elif item.default_factory is not dataclasses.MISSING:
        value = item.default_factory()
    else:
        return ""
    return code(_toml(value))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return repr(value)


_LIMITS = {
    "redis_url": "a `redis://`, `rediss://` or `unix://` URL",
    "file_mode": "an octal file mode",
    "key_seconds": "`KEY=SECONDS` rules",
    "per_stream": 'tables `."NAME"` of per-stream overrides',
    "per_route": 'tables `."SOURCE"` of per-route options',
}


def _limits(metadata: Mapping[str, Any]) -> str:
    parts = []
    if "min" in metadata:
        parts.append(f"≥ {metadata['min']}")
    if "max" in metadata:
        parts.append(f"≤ {metadata['max']}")
    if "choices" in metadata:
        parts.append("one of " + ", ".join(code(_toml(c)) for c in metadata["choices"]))
    for key, value in metadata.items():
        if key in _LIMITS:
            parts.append(_LIMITS[key])
        elif key not in ("min", "max", "choices"):
            parts.append(f"{key}: {code(_toml(value))}")
    return cell("; ".join(parts))


def _field_comments(kind: type[Any]) -> dict[str, str]:
    """The `# comment` on the line declaring each field, read from the class's source."""
    import inspect
    import io
    import tokenize

    try:
        source = inspect.getsource(kind)
    except (OSError, TypeError):
        return {}
    declared = {}
    for number, line in enumerate(source.splitlines(), 1):
        match = re.match(r"    (\w+): ", line)
        if match:
            declared[number] = match.group(1)
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.start[0] in declared:
            found[declared[token.start[0]]] = token.string.lstrip("#").strip()
    return found


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text and text.strip() else ""


if __name__ == "__main__":
    raise SystemExit(main())
