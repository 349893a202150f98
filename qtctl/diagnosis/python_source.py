"""Reading one Python module as the import analysis needs it: parsed once (cached by size and
mtime), its package from the `__init__.py` folders above it, its module-level imports."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from functools import lru_cache

from qtctl.adapters import safe_walk

MAX_SOURCE = 4 * 2**20


def imports(tree: ast.Module, package: str, main: bool = True) -> Iterator[tuple[str, int, bool]]:
    """Module-level imports that are not optional (try/except ImportError, TYPE_CHECKING):
    (module, line, required). `from m import x` also yields m.x, not required: x may be a
    submodule to follow or just a name defined in m. Relative imports are resolved against
    `package` (the importing module's __package__); those Python refuses are `relative_errors`.
    An `if __name__ == "__main__":` block counts only in the module that runs as __main__."""
    for node in _module_level(tree.body, main):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, True
        elif isinstance(node, ast.ImportFrom):
            base, error = resolve_relative(node.level, node.module or "", package)
            if base and not error:
                yield base, node.lineno, True
                for alias in node.names:
                    if alias.name != "*":
                        yield f"{base}.{alias.name}", node.lineno, False


def relative_errors(
    tree: ast.Module, package: str, main: bool = True
) -> Iterator[tuple[str, int, str]]:
    """Module-level relative imports Python refuses in a module of this package: (the import
    as written, line, Python's ImportError message)."""
    for node in _module_level(tree.body, main):
        if isinstance(node, ast.ImportFrom) and node.level:
            error = resolve_relative(node.level, node.module or "", package)[1]
            if error:
                yield "." * node.level + (node.module or ""), node.lineno, error


def resolve_relative(level: int, module: str, package: str) -> tuple[str, str]:
    """`from <level dots><module> import` as `importlib.util.resolve_name` resolves it inside
    `package`: (the absolute module, "") or ("", the ImportError Python raises)."""
    if not level:
        return module, ""
    if not package:
        return "", "attempted relative import with no known parent package"
    bits = package.rsplit(".", level - 1)
    if len(bits) < level:
        return "", "attempted relative import beyond top-level package"
    return (f"{bits[0]}.{module}" if module else bits[0]), ""


def package_for(name: str, file: str) -> str:
    """The __package__ of module `name` loaded from `file`: itself for a package's __init__.py,
    its parent otherwise."""
    if os.path.basename(file) == "__init__.py":
        return name
    return name.rpartition(".")[0]


def _module_level(body: list[ast.stmt], main: bool = True) -> Iterator[ast.stmt]:
    for node in body:
        if not main and isinstance(node, ast.If) and _is_main_guard(node.test):
            yield from _module_level(node.orelse, main)  # the body runs only as __main__
            continue
        if isinstance(node, ast.Try) and _guards_import_error(node):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        yield node
        if isinstance(node, ast.If | ast.With):
            yield from _module_level(node.body, main)
            yield from _module_level(getattr(node, "orelse", []), main)
        elif isinstance(node, ast.Try):
            yield from _module_level(node.body, main)


def _is_main_guard(test: ast.expr) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
    ):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    mains = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


def _guards_import_error(node: ast.Try) -> bool:
    names = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
    return any(h.type is None or any(n in ast.dump(h.type) for n in names) for h in node.handlers)


def package_of(file: str) -> str:
    parts: list[str] = []
    folder = os.path.dirname(file)
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        parts.insert(0, os.path.basename(folder))
        folder = os.path.dirname(folder)
    return ".".join(parts)


def unparseable(file: str) -> str:
    """Why a service's script cannot be analysed (it will not start either)."""
    if not os.path.exists(file):
        return f"the script {file} does not exist"
    if not os.path.isfile(file):
        return f"the script {file} is not a plain file"
    raw = safe_walk.read_head(file, MAX_SOURCE + 1)  # never blocks on a FIFO swapped in
    if len(raw) > MAX_SOURCE:
        return f"{file} is larger than {MAX_SOURCE // 2**20} MiB: not analysed"
    try:
        ast.parse(raw.decode("utf-8", "replace"), filename=file)
    except SyntaxError as exc:
        hint = " (Python 2 code?)" if "print" in (exc.text or "") else ""
        return f"{file} does not parse: {exc.msg} at line {exc.lineno}{hint}"
    return f"{file} could not be analysed"


def parse_text(source: str, file: str) -> ast.Module | None:
    try:
        return ast.parse(source, filename=file)
    except (SyntaxError, ValueError):
        return None


def parse(file: str) -> tuple[ast.Module | None, str]:
    """Parse a file; the cache is keyed on its size and mtime, so a patched file is re-read."""
    try:
        info = os.stat(file)
    except OSError:
        return None, ""
    return _parse_cached(file, info.st_mtime_ns, info.st_size)


@lru_cache(maxsize=4096)
def _parse_cached(file: str, mtime_ns: int, size: int) -> tuple[ast.Module | None, str]:
    try:
        raw = safe_walk.read_head(file, MAX_SOURCE + 1)  # a FIFO named like a module: b""
        if len(raw) > MAX_SOURCE:
            return None, ""
        source = raw.decode("utf-8", "replace")
        return ast.parse(source, filename=file), source
    except (OSError, SyntaxError, ValueError):
        return None, ""  # Python 2, syntax errors, binaries: nothing to resolve
