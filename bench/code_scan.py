"""Code-root scan (line endings + sys.path lines) against `grep -rlI $'\\r'` on the same tree.

Builds a synthetic tree like a fleet's code base: 15,000 files, ~200 MB, mostly Python, some
shell, JSON/Markdown/CSV, and binary model files; ~10 % of the text files have CRLF.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile

from bench.harness import Comparison, interleave
from qtctl.diagnosis.code_scan import scan

MIX = (  # extension, count, mean size (bytes), binary
    (".py", 9000, 10_000, False),
    (".sh", 1500, 3_000, False),
    (".json", 1200, 8_000, False),
    (".md", 1300, 8_000, False),
    (".csv", 1500, 7_000, False),
    (".pkl", 500, 160_000, True),
)
SYS_PATH_HACK = b"sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
PY_LINES = [
    b"import os\n",
    b"def handler(event):\n",
    b"    return event.get('x', 0) + 1\n",
    b"class Strategy:\n",
    b"    '''docstring for the strategy'''\n",
]


def build(root: str, seed: int = 7) -> tuple[int, int]:
    """Write the tree; returns (files, bytes)."""
    rng = random.Random(seed)
    files = size = 0
    for ext, count, mean, binary in MIX:
        for i in range(count):
            folder = os.path.join(root, f"svc{i % 60:02d}", f"pkg{i % 7}")
            os.makedirs(folder, exist_ok=True)
            data = _content(rng, mean, binary, ext)
            with open(os.path.join(folder, f"f{i}{ext}"), "wb") as handle:
                handle.write(data)
            files, size = files + 1, size + len(data)
    return files, size


def _content(rng: random.Random, mean: int, binary: bool, ext: str) -> bytes:
    length = max(64, int(rng.gauss(mean, mean / 4)))
    if binary:
        return rng.randbytes(length)
    lines = PY_LINES if ext == ".py" else [b"echo some text, value=42\n", b"a,b,c,1,2,3\n"]
    body = b"".join(rng.choice(lines) for _ in range(length // 15 + 1))[:length]
    if ext == ".py" and rng.random() < 0.03:  # about 330 files of the real fleet do this
        body = SYS_PATH_HACK + body
    return body.replace(b"\n", b"\r\n") if rng.random() < 0.1 else body


def run(rounds: int = 5) -> list[Comparison]:
    """Median of both scans over the same warm tree."""
    root = tempfile.mkdtemp(prefix="qtctl-bench-tree-")
    try:
        files, size = build(root)

        def ours() -> None:
            scan([root], max_bytes=50 * 2**20)

        def grep() -> None:
            subprocess.run(["grep", "-rlI", "\r", root], stdout=subprocess.DEVNULL, check=False)

        cand, base = interleave(ours, grep, max(3, rounds // 3), warmup=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        Comparison(
            name=f"code scan, {files} files, {size / 2**20:.0f} MiB",
            candidate="qtctl code scan (CRLF, mixed, BOM, sys.path lines)",
            baseline="grep -rlI $'\\r'",
            target="<= 2x grep",
            candidate_times=cand,
            baseline_times=base,
        )
    ]
