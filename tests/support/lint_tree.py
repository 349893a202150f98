"""A fleet repository checkout for `qtctl lint` tests: broken as the incident's was, or fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

DEPLOY = "/home/qt/quantum_trader"
AI_UNIT = """[Unit]
Description=AI engine
Requires=network-online.target quantum-redis-bridge.service {missing}

[Service]
ExecStart={deploy}/scripts/start-ai.sh
WorkingDirectory={deploy}
EnvironmentFile={deploy}/deploy/ai.env
User=qt
Restart=on-failure
{memory}
CPUQuota=50%
{typo}

[Install]
WantedBy=multi-user.target
"""
API_UNIT = """[Unit]
Description=API
After=network-online.target

[Service]
ExecStart=/usr/bin/python3 {deploy}/services/api/main.py
WorkingDirectory={deploy}
{env}
User=qt
Restart=on-failure
MemoryMax=1G
CPUQuota=50%
"""
BRIDGE_UNIT = """[Unit]
Description=bridge

[Service]
ExecStart=/usr/bin/python3 -m bridge.main --stream %i
WorkingDirectory={deploy}
User=qt
Restart=on-failure
MemoryMax=256M
CPUQuota=20%
"""
MAIN_PY = """import os
import sys
{hack}
import requests  # third party: the CI runner need not have it
from ai_engine import predict
"""


def write_checkout(root: Path, broken: bool) -> Path:
    """The checkout: two services, a template, a script, an env file, Python packages."""
    files = {
        "units/quantum-ai.service": AI_UNIT.format(
            deploy=DEPLOY,
            missing="quantum-gone.service" if broken else "",
            memory="MemoryMax=2G # two gigabytes" if broken else "# two gigabytes\nMemoryMax=2G",
            typo="Restrat=always" if broken else "",
        ),
        "units/quantum-api.service": API_UNIT.format(
            deploy=DEPLOY, env="" if broken else f"Environment=PYTHONPATH={DEPLOY}"
        ),
        "units/quantum-redis-bridge.service": BRIDGE_UNIT.format(deploy=DEPLOY).replace(
            " --stream %i", ""
        ),
        "units/quantum-bridge@.service": BRIDGE_UNIT.format(deploy=DEPLOY),
        "services/api/main.py": MAIN_PY.format(
            hack="sys.path.insert(0, os.path.dirname(__file__))" if broken else ""
        ),
        "ai_engine/__init__.py": "",
        "ai_engine/predict.py": "VALUE = 1\n",
        "bridge/__init__.py": "",
        "bridge/main.py": "import json\n",
        "deploy/ai.env": "API_KEY=abc # the key\nMODE=paper\n" if broken else "MODE=paper\n",
        "README.md": "fleet\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    script = root / "scripts/start-ai.sh"
    script.parent.mkdir(exist_ok=True)
    body = "#!/bin/bash\nexec python3 -m ai_engine.predict\n"
    script.write_bytes(body.replace("\n", "\r\n").encode() if broken else body.encode())
    script.chmod(0o755)
    return root


def lint(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`qtctl lint ARGS` in a subprocess, run from `cwd` (paths come out relative to it), with
    an empty config (no /etc/qtctl) unless the args name one."""
    config = cwd / ".qtctl-test.toml"
    if not config.exists():
        config.write_text("")
    full = {**os.environ, "PYTHONPATH": str(REPO), "QTCTL_CONFIG": str(config), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "qtctl", "lint", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full,
        timeout=120,
    )
