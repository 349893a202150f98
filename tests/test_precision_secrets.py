"""QT703 `secrets-readable` judged by name and value, through the CLI: configuration under a
secret-looking name is not a secret, a credential is one whatever its name; `secrets.*` allow
lists; output masking unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.conftest import run_cli

NOT_SECRETS = {  # name=value under names that match services.secret_patterns
    "stream": "STREAM_KEY=quantum:stream:trade_intents",
    "heat": "HEAT_STATE_KEY=quantum:heat:state",
    "redis-pass-key": "REDIS_PASSWORD_KEY=quantum:cfg:redis",
    "path": "SECRET_PATH=/etc/quantum/secret.pem",
    "key-file": "API_KEY_FILE=./keys/binance.key",
    "url": "TOKEN_URL=https://auth.example.com/oauth/token",
    "number": "TOKEN_TTL=3600",
    "boolean": "USE_AUTH=true",
    "empty": "BINANCE_API_SECRET=",
}
SECRETS = {  # name=value that are secrets
    "password": "REDIS_PASSWORD=hunter2hunter2",
    "numeric-password": "DB_PASSWORD=48151623",
    "user-pass": "BASIC_AUTH=admin:hunter2hunter2",
    "api-key": "BINANCE_API_KEY=Zx8kQ2mP9vL4tR7wN1bY6cJ3",
    "url-password": "REDIS_URL=redis://:hunter2hunter2@127.0.0.1:6379/0",
    "token-any-name": "UPSTREAM=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "pem": "SIGNER=-----BEGIN PRIVATE KEY-----MIIEvQIBADANBg-----END PRIVATE KEY-----",
}


def doctor(config: Path, folder: Path, extra: str = "") -> dict[str, Any]:
    config.write_text(
        f'[fleet]\nunits = ["qtctl-precision-none-*.service"]\n'
        f"[services]\nenv_dirs = [{json.dumps(str(folder))}]\n{extra}"
    )
    res = run_cli("--format", "json", "doctor", "--select", "QT703")
    assert res.returncode in (0, 1), res.stderr
    return {f["subject"]: f for f in json.loads(res.stdout)["findings"]}


def env_folder(tmp_path: Path, cases: dict[str, str]) -> Path:
    folder = tmp_path / "env"
    folder.mkdir()
    for name, line in cases.items():
        path = folder / f"{name}.env"
        path.write_text(f"{line}\n")
        os.chmod(path, 0o644)  # any user can read it
    return folder


def readable_secrets(found: dict[str, Any], folder: Path) -> set[str]:
    return {
        Path(subject).stem
        for subject, f in found.items()
        if subject.startswith(str(folder)) and "secrets-readable" in f["cause"]
    }


def test_values_that_are_configuration_are_not_secrets(tmp_path: Path, isolated_env: Path) -> None:
    folder = env_folder(tmp_path, {**NOT_SECRETS, **SECRETS})
    found = doctor(isolated_env, folder)
    assert readable_secrets(found, folder) == set(SECRETS)
    out = json.dumps(found)
    for secret in ("hunter2hunter2", "48151623", "Zx8kQ2mP9vL4tR7wN1bY6cJ3", "MIIEvQIBADANBg"):
        assert secret not in out  # the finding names the key, the value stays masked
    assert found[str(folder / "password.env")]["severity"] == "error"
    assert "any user can read REDIS_PASSWORD" in found[str(folder / "password.env")]["detail"][0]


def test_allow_lists_in_config(tmp_path: Path, isolated_env: Path) -> None:
    folder = env_folder(tmp_path, {**SECRETS, "odd": "SESSION_SECRET=quantum_plain_word"})
    assert "odd" in readable_secrets(doctor(isolated_env, folder), folder)
    extra = '[secrets]\nallow_names = ["session_*"]\nnot_secret_values = ["admin:*"]\n'
    assert readable_secrets(doctor(isolated_env, folder, extra), folder) == set(SECRETS) - {
        "user-pass"
    }
