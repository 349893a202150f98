"""`qtctl lint` on a 15,000-file checkout against doctor's code scan of the same tree.

The tree is `bench.code_scan`'s (mostly Python, shell, data and binary files, ~10 % CRLF, some
sys.path hacks) plus 60 unit files, half of them running a script of the tree. lint walks the
tree for unit files, reads each unit, script and env file, and runs the same code scan, so
the scan alone is its floor."""

from __future__ import annotations

import os
import shutil
import tempfile

from bench.code_scan import build
from bench.harness import Comparison, interleave
from qtctl.config import load_config
from qtctl.diagnosis.code_scan import scan
from qtctl.lint.run import run_lint

UNIT = """[Unit]
Description=service {i}
Requires=network-online.target
[Service]
ExecStart={exec}
WorkingDirectory=/home/qt/quantum_trader
User=qt
Restart=on-failure
MemoryMax=1G # a comment lint reports
CPUQuota=50%
"""


def add_units(root: str, count: int = 60) -> None:
    """Unit files under units/, half running a shell script of the tree, half Python."""
    os.makedirs(os.path.join(root, "units"), exist_ok=True)
    for i in range(count):
        script = f"/home/qt/quantum_trader/svc{i % 60:02d}/pkg{i % 7}/f{9000 + i}.sh"
        python = f"/usr/bin/python3 /home/qt/quantum_trader/svc{i % 60:02d}/pkg{i % 7}/f{i}.py"
        text = UNIT.format(i=i, exec=f"/bin/bash {script}" if i % 2 else python)
        with open(os.path.join(root, "units", f"quantum-svc{i}.service"), "w") as handle:
            handle.write(text)


def run(rounds: int = 5) -> list[Comparison]:
    """Median of lint and of the code scan over the same warm tree."""
    root = tempfile.mkdtemp(prefix="qtctl-bench-lint-")
    try:
        files, size = build(root)
        add_units(root)
        config = load_config(os.devnull, env={})

        def lint() -> None:
            run_lint(config, [root])

        def code_scan() -> None:
            scan([root], max_bytes=50 * 2**20)

        cand, base = interleave(lint, code_scan, max(3, rounds // 3), warmup=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return [
        Comparison(
            name=f"lint, {files + 60} files, {size / 2**20:.0f} MiB, 60 units",
            candidate="qtctl lint (units, scripts, sources, imports, env files)",
            baseline="doctor's code scan of the same tree",
            target="<= 2x the code scan",
            candidate_times=cand,
            baseline_times=base,
        )
    ]
