"""Secrets never leave the host's protected places, proved on a real systemd: one of each kind
is planted in a failing unit's journal, an env file, a unit's Environment= (and a drop-in), a
health endpoint's body and the Redis URL; every format of doctor, fix (preview, apply, undo)
and report (written to a file and published to Redis) runs, also against Redis URLs that fail;
then every byte qtctl wrote (stdout, stderr, report files, the fix journal, all of Redis) is
searched for the planted values. Backups of files fix changed are the one exception: they are
the protected originals, byte for byte, root's only (0600 in a 0700 folder)."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import redis

from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

pytestmark = pytest.mark.sandbox
PY = "/usr/bin/python3"
REDIS_PASSWORD = "Rd1s/Pass@word:9x"
WRONG_PASSWORD = "Wr0ngRedis/Pw@x:1"
RAW_PASSWORD = "RawSeg1/RawSeg2@RawSeg3:RawSeg4"  # unencoded: URL parsers cut it at the `/`
SOCKET = "/run/qt-redis.sock"
STATE = "/var/lib/qtctl"
REPORTS = "/var/lib/qt-report"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqb3VybmFsIn0.J0urnalSig_x9"
JOURNAL_LINES = [
    "DB_PASSWORD=J0urnalPassw0rd1",
    "connecting to postgres://app:J0urnal/Url@Pass:w0rd@db.internal:5432/trades",
    "Authorization: Bearer J0urnalBearerT0ken.abc",
    "Authorization: Basic SjB1cm5hbDpCYXNpYw==",
    "stripe sk-live-J0urnalStripe1234 and sk_live_J0urnalStripe5678",
    "aws AKIAJ0URNALKEY123456",
    f"session {JWT}",
    '{"passphrase": "journal horse battery staple", "level": "debug"}',
    "EXCHANGE_PRIVATE_KEY=J0urnalPrivKey7 AWS_CREDENTIALS=J0urnalCreds7 AUTH_COOKIE=J0urnalCook7",
    "STREAM_KEY=quantum:stream:trade.intent",  # configuration, not a secret: stays readable
]
LEAK_SCRIPT = (
    "import sys\n"
    f"lines = {JOURNAL_LINES!r}\n"
    "for i, line in enumerate(lines):\n"
    "    print(line, file=sys.stderr if i % 2 else sys.stdout, flush=True)\n"
    "raise RuntimeError('login failed for token=J0urnalExcToken9')\n"
)
ENV_FILE = (
    "export EXCHANGE_PASSPHRASE=Env-Passphrase-77\n"
    "LOGIN_TOKEN=Env-Token-88 # rotated 2026-11\n"
    f"SESSION_BLOB={JWT.replace('J0urnal', 'Env')}\n"
    "DSN=mysql://svc:Env/Url@Pw:66@db/x\n"
    "STREAM_KEY=quantum:stream:trade.intent\n"
)
HEALTH_BODY = json.dumps(  # all within the 160 characters a finding quotes
    {
        "aws": "AKIAHTTPBODYKEY12345",
        "stripe": "sk_live_HttpStripe5566",
        "auth": "Bearer Http-Bearer-55.x",
        "dsn": "redis://u:Http/Url@Pw:44@r:6379/0",
        "api_key": "Http-Api-Key-33x",
    }
)
HEALTH_SCRIPT = f"""
from http.server import BaseHTTPRequestHandler, HTTPServer
BODY = {HEALTH_BODY.encode()!r}
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        self.send_response(500 if self.path == "/health" else 404)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
HTTPServer(("127.0.0.1", 8031), H).serve_forever()
"""
PLANTED = [
    "J0urnalPassw0rd1",
    "J0urnal/Url@Pass:w0rd",
    "J0urnalBearerT0ken",
    "SjB1cm5hbDpCYXNpYw",
    "J0urnalStripe1234",
    "J0urnalStripe5678",
    "AKIAJ0URNALKEY123456",
    "J0urnalSig_x9",
    "eyJzdWIiOiJqb3VybmFsIn0",
    "journal horse battery staple",
    "J0urnalPrivKey7",
    "J0urnalCreds7",
    "J0urnalCook7",
    "J0urnalExcToken9",
    "Env-Passphrase-77",
    "Env-Token-88",
    "EnvSig_x9",
    "Env/Url@Pw:66",
    "Unit-Env-Token-11",
    "Unit-DropIn-Pw-22",
    "Http-Api-Key-33x",
    "Http/Url@Pw:44",
    "Http-Bearer-55",
    "AKIAHTTPBODYKEY12345",
    "HttpStripe5566",
    *(p for pw in (REDIS_PASSWORD, WRONG_PASSWORD) for p in (pw, quote(pw, safe=""))),
    *RAW_PASSWORD.replace("@", "/").replace(":", "/").split("/"),
]


def url(password: str, port: int = 6390, encode: bool = True) -> str:
    return f"redis://default:{quote(password, safe='') if encode else password}@127.0.0.1:{port}/0"


BAD_URLS = (url(WRONG_PASSWORD), url(REDIS_PASSWORD, 6391), url(RAW_PASSWORD, encode=False))


def spec() -> SandboxSpec:
    leaky = (
        "[Unit]\nDescription=leaks secrets\n[Service]\n"
        f"ExecStart={PY} -u /opt/leak/leak.py\nEnvironmentFile=/etc/quantum/leaky.env\n"
        'Environment="API_TOKEN=Unit-Env-Token-11" # the old token\n'
    )
    units = {
        "quantum-leaky.service": leaky,
        "quantum-leaky-api.service": f"[Service]\nExecStart={PY} /opt/leak/health.py\n",
        "qt-redis.service": "[Service]\nExecStart=/usr/bin/redis-server /etc/qt-redis.conf\n",
    }
    redis_conf = (
        f'port 6390\nbind 127.0.0.1\nrequirepass "{REDIS_PASSWORD}"\nsave ""\nappendonly no\n'
        f"unixsocket {SOCKET}\nunixsocketperm 700\ndir /tmp\n"
    )
    config = f"[redis]\nurl = '{url(REDIS_PASSWORD)}'\n[systemd]\njournal_lines = 40\n"
    files = {
        "/opt/leak/leak.py": LEAK_SCRIPT,
        "/opt/leak/health.py": HEALTH_SCRIPT,
        "/etc/quantum/leaky.env": BoxFile(ENV_FILE, 0o644),
        "/etc/systemd/system/quantum-leaky.service.d/creds.conf": (
            "[Service]\nEnvironment=DB_PASSWORD=Unit-DropIn-Pw-22 # from the vault\n"
        ),
        "/etc/qt-redis.conf": BoxFile(redis_conf, 0o600),
        "/etc/qtctl/qtctl.toml": BoxFile(config + "[streams]\nexpected = []\n", 0o600),
        f"{REPORTS}/.keep": "",
    }
    return SandboxSpec(units=units, files=files, wants=sorted(units))


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox(spec()) as sandbox:
        sandbox.wait_for("quantum-leaky.service", ["failed"])
        sandbox.wait_for("quantum-leaky-api.service", ["active"])
        sandbox.wait_for("qt-redis.service", ["active"])
        deadline = time.monotonic() + 10
        while "8031" not in sandbox.run("ss", "-Htln").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        sandbox.run("journalctl", "--sync")
        yield sandbox


def box_redis(box: Sandbox) -> redis.Redis:
    return redis.Redis(unix_socket_path=str(box.host_path(SOCKET)), password=REDIS_PASSWORD)


def run_everything(box: Sandbox) -> dict[str, tuple[str, str]]:
    """Every command and format; its arguments -> what it printed on stdout and stderr."""
    runs: list[tuple[str, ...]] = [
        ("-v", "doctor"),
        ("-vv", "doctor"),
        ("--format", "json", "doctor"),
        ("--format", "markdown", "doctor"),
        *(
            ("report", "--format", f, "--output", f"{REPORTS}/health.{f}", "--redis-publish")
            for f in ("json", "markdown", "prometheus", "nagios")
        ),
        ("report", "--format", "markdown"),
        ("-v", "fix"),
        ("--format", "json", "fix"),
        ("--format", "json", "fix", "--apply", "--unsafe"),
        ("-v", "fix", "--apply", "--unsafe"),
        ("--format", "json", "fix", "--undo", "LAST"),
        ("fix", "--undo", "LAST"),
    ]
    for bad in BAD_URLS:
        runs += [
            ("-v", "doctor", "--redis-url", bad),
            ("--format", "json", "doctor", "--redis-url", bad),
            ("report", "--format", "nagios", "--redis-url", bad, "--redis-publish"),
        ]
    printed = {}
    for args in runs:
        res = box.qtctl(*args)
        assert res.returncode in (0, 1, 2, 3), (args, res.stderr)
        assert "Traceback" not in res.stderr, (args, res.stderr)
        printed[" ".join(args)] = (res.stdout, res.stderr)
    return printed


def written_files(box: Sandbox) -> dict[str, str]:
    """The report files and the fix journal's records; backups are checked to be private."""
    found = {}
    for root in (REPORTS, STATE):
        for path in sorted(box.host_path(root).rglob("*")):
            if not path.is_file():
                continue
            if path.suffix == ".orig":  # the protected original, for undo: root's only
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
                continue
            found[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return found


def everything_in_redis(box: Sandbox) -> dict[str, str]:
    """Every key, uncompressed DUMP plus its readable form."""
    client = box_redis(box)
    client.config_set("rdbcompression", "no")
    found = {}
    for key in client.scan_iter(count=1000):
        readers = {"hash": client.hgetall, "stream": client.xrange, "string": client.get}
        reader = readers.get(client.type(key).decode())
        readable = reader(key) if reader else None
        dump = client.dump(key) or b""
        found[f"redis {key!r}"] = (dump + repr(readable).encode()).decode("utf-8", "replace")
    return found


def test_no_planted_secret_reaches_any_output(box: Sandbox) -> None:
    printed = run_everything(box)
    stored = everything_in_redis(box)
    assert any("quantum:qtctl:health" in key for key in stored)  # the report was published
    haystacks = {
        **{f"stdout of {a}": out for a, (out, _) in printed.items()},
        **{f"stderr of {a}": err for a, (_, err) in printed.items()},
        **written_files(box),
        **stored,
    }
    wanted = [*PLANTED, *(s[:7] for s in PLANTED if " " not in s)]  # a cut secret leaks too
    leaks = [(label, s) for label, text in haystacks.items() for s in wanted if s in text]
    assert leaks == []
    assert_it_was_all_quoted(json.loads(printed["--format json doctor"][0]))
    wrong, closed, raw = (printed[f"-v doctor --redis-url {bad}"] for bad in BAD_URLS)
    assert "authentication failed at redis://default:****@127.0.0.1:6390/0" in wrong[0]
    assert "cannot connect to redis://default:****@127.0.0.1:6391/0" in closed[0]
    assert "the password in the Redis URL must be percent-encoded" in raw[1]


def assert_it_was_all_quoted(doc: dict[str, object]) -> None:
    """The planted places were read and quoted, masked: the search above was not vacuous."""
    findings = doc["findings"]
    assert isinstance(findings, list)
    by = {(f["code"], f["subject"]): f for f in findings}
    journal = by[("QT101", "quantum-leaky.service")]
    assert "STREAM_KEY=quantum:stream:trade.intent" in journal["detail"]
    assert "DB_PASSWORD=****" in journal["detail"]
    assert str(journal["message"]).startswith(
        "unit failed: RuntimeError: login failed for token=****"
    )
    body = " ".join(by[("QT701", "quantum-leaky-api.service")]["detail"])
    assert '{"aws": "****", "stripe": "****", "auth": "Bearer ****"' in body
    assert "redis://u:****@r:6379/0" in body
    lint = " ".join(by[("QT104", "quantum-leaky.service")]["detail"])
    assert "'\"API_TOKEN=****\" # the old token': systemd has no inline comments" in lint
    assert "Environment='DB_PASSWORD=****': systemd has no inline comments" in lint
    env = by[("QT703", "/etc/quantum/leaky.env")]["detail"]
    assert "mode 0644: any user can read LOGIN_TOKEN, SESSION_BLOB, DSN" in env
