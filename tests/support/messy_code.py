"""The messy fleet's files: tiny real programs in a grown repository's layouts, and unit files.

Every program is generated here (no copied code) and really runs in the sandbox: it imports its
modules the way its layout needs (a `__file__`-relative root through a variable, `"../.."`,
PYTHONPATH, relative imports inside packages, `-m pkg.sub.main`), then sleeps. The ones planted
as faults fail for exactly their planted reason.
"""

from __future__ import annotations

ROOT = "/home/qt/quantum_trader"
PY3 = "/usr/bin/python3"
SLEEP = "import time\n\nwhile True:\n    time.sleep(3600)\n"

SHARED = {
    "shared/__init__.py": "",
    "shared/settings.py": (
        'STREAM_PREFIX = "quantum:stream:"\n\n\n'
        "def stream_name(name: str) -> str:\n    return STREAM_PREFIX + name\n"
    ),
    "backend/__init__.py": "",
    "backend/common/__init__.py": "",
    "backend/common/clock.py": "import time\n\n\ndef now() -> float:\n    return time.time()\n",
    "backend/ledger/__init__.py": "",
    "backend/ledger/schema.py": 'TABLES = ("fills", "positions")\n',
    "backend/ledger/store.py": (
        "from .schema import TABLES\nfrom ..common import clock\n\n\n"
        "def open_store() -> dict:\n    return {name: clock.now() for name in TABLES}\n"
    ),
    "ai_engine/__init__.py": "",
    "ai_engine/risk_kernel.py": (
        "def compute_stops(price: float, sigma: float) -> tuple[float, float]:\n"
        "    return price * (1 - 2 * sigma), price * (1 + 3 * sigma)\n"
    ),
    "ai_engine/agents/__init__.py": "",
    "ai_engine/agents/models/__init__.py": "",
    "ai_engine/agents/models/registry.py": (
        "NAMES: list[str] = []\n\n\ndef register(name: str) -> None:\n    NAMES.append(name)\n"
    ),
    # The ai-engine service's own folder: a package `ai_engine` without risk_kernel. With
    # microservices/ first on sys.path it shadows the real package (the incident): a PYTHONPATH
    # later on the path cannot cure that, the root the script computes must be right.
    "microservices/ai_engine/__init__.py": "",
    "microservices/ai_engine/main.py": "from shared.settings import stream_name\n\n" + SLEEP,
}

# How a gen-1 service finds the repository root (its main.py is ROOT/microservices/NAME/).
ROOT_BY_VARIABLE = """\
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from backend.ledger.store import open_store  # noqa: E402
from shared.settings import stream_name  # noqa: E402
from handlers import handle  # noqa: E402
"""
ROOT_BY_DIRNAME = """\
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from shared.settings import stream_name  # noqa: E402
from handlers import handle  # noqa: E402
"""
ROOT_BY_PYTHONPATH = """\
from backend.ledger.store import open_store
from shared.settings import stream_name
from handlers import handle
"""
HANDLERS = 'def handle(entry: dict) -> dict:\n    return {"seen": len(entry)}\n'
# The incident: parents[1] is microservices/, not the root; ai_engine resolves to the service
# folder microservices/ai_engine and risk_kernel is not there.
INCIDENT = """\
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

from ai_engine.risk_kernel import compute_stops  # noqa: E402
"""
# gen-3 flat layout: ROOT/services/NAME_service.py, where parents[1] *is* the root.
FLAT_SERVICE = """\
import sys
from pathlib import Path

BASE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE))

from shared.settings import stream_name  # noqa: E402
"""
AGENT_MAIN = """\
from .config import SETTINGS
from ..models import registry

registry.register(SETTINGS["name"])
"""
AGENT_CONFIG = 'SETTINGS = {{"name": "{name}", "stream": "quantum:stream:ai.signal_generated"}}\n'
REDIS_FEED = """\
import socket
import time


def ping() -> None:
    with socket.create_connection(("127.0.0.1", 6379), timeout=2) as conn:
        conn.sendall(b"PING\\r\\n")
        if not conn.recv(64).startswith(b"+PONG"):
            raise ConnectionError("Redis did not answer PONG")


ping()  # no Redis: ConnectionRefusedError, exit 1
while True:
    time.sleep(5)
    ping()
"""
WRAPPER = (
    '#!/bin/bash\nset -e\ncd "$(dirname "$0")/.."\nexport PYTHONPATH="$PWD"\n'
    "exec /usr/bin/python3 {script}\n"
)
EXIT_WATCH = "#!/bin/bash\necho watching exits\nexec sleep 3600\n"
MIGRATE = 'print("schema up to date")\n'


def gen1_main(style: str) -> str:
    """A gen-1 service's main.py: its imports by root-finding style, then a sleep loop."""
    head = {
        "variable": ROOT_BY_VARIABLE,
        "dirname": ROOT_BY_DIRNAME,
        "pythonpath": ROOT_BY_PYTHONPATH,
    }
    return head[style] + "\n" + SLEEP


def crlf(text: str) -> bytes:
    """The same text with Windows line endings."""
    return text.replace("\n", "\r\n").encode()


def agent_files(agent: str) -> dict[str, str]:
    """A package started with `-m ai_engine.agents.AGENT.main`, relative imports inside."""
    base = f"ai_engine/agents/{agent}"
    return {
        f"{base}/__init__.py": "",
        f"{base}/config.py": AGENT_CONFIG.format(name=agent),
        f"{base}/main.py": AGENT_MAIN + "\n" + SLEEP,
    }


def unit(
    exec_start: str,
    *,
    workdir: str = ROOT,
    extra: str = "",
    unit_extra: str = "",
    restart: str = "on-failure",
    restart_sec: int = 2,
    limits: str = "MemoryMax=256M\nCPUQuota=50%\n",
) -> str:
    """A service unit as the fleet writes them: a service account, a restart policy, limits."""
    where = f"WorkingDirectory={workdir}\n" if workdir else ""
    return (
        f"[Unit]\nDescription=quantum trader service\n{unit_extra}\n[Service]\n"
        f"ExecStart={exec_start}\n{where}User=daemon\nRestart={restart}\nRestartSec={restart_sec}\n"
        f"{limits}{extra}\n[Install]\nWantedBy=multi-user.target\n"
    )


def folder_of(name: str) -> str:
    """`harvest` -> `harvest`, `policy-gate` -> `policy_gate` (Python package names)."""
    return name.replace("-", "_")
