"""mkdocs hook: mkdocs.yml's nav less the pages that do not exist yet, plus every page it omits.

Topic pages (docs/<topic>.md) are written by whoever builds the feature; mkdocs.yml names them in
their place. Until one exists its entry is dropped (so `--strict` passes), and a page the nav does
not name yet is listed under "More" (so no page is ever unreachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NavItem = str | dict[str, Any]


def on_config(config: Any, **_: Any) -> Any:
    """Filter and complete `config["nav"]` against the files in `docs_dir`."""
    docs = Path(config["docs_dir"])
    pages = {p.relative_to(docs).as_posix() for p in docs.rglob("*.md")}
    nav = _existing(config["nav"] or [], pages)
    named = set(_paths(nav))
    more = sorted(pages - named)
    if more:
        nav.append({"More": more})
    config["nav"] = nav
    return config


def _existing(items: list[NavItem], pages: set[str]) -> list[NavItem]:
    kept: list[NavItem] = []
    for item in items:
        if isinstance(item, str):
            if item in pages:
                kept.append(item)
            continue
        for title, target in item.items():
            if isinstance(target, list):
                children = _existing(target, pages)
                if children:
                    kept.append({title: children})
            elif target in pages or "://" in str(target):
                kept.append({title: target})
    return kept


def _paths(items: list[NavItem]) -> list[str]:
    found: list[str] = []
    for item in items:
        if isinstance(item, str):
            found.append(item)
        else:
            for target in item.values():
                found += _paths(target) if isinstance(target, list) else [str(target)]
    return found
