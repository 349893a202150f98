"""Atomic checkpoints: temp file, fsync, rename; the last K kept; a corrupt one moved aside."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("qtctl.rl_agent")


def save(folder: Path, step: int, payload: dict[str, Any], keep: int) -> Path:
    """Write `ckpt-<step>.pt` atomically; a failure leaves every earlier checkpoint intact."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"ckpt-{step:012d}.pt"
    tmp = folder / f".{final.name}.tmp"
    try:
        with open(tmp, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except Exception as exc:  # torch wraps a full disk in its own errors: find the OSError
        tmp.unlink(missing_ok=True)
        cause: BaseException | None = exc
        while cause is not None and not isinstance(cause, OSError):
            cause = cause.__context__ or cause.__cause__
        errno = cause.errno if isinstance(cause, OSError) else None
        raise OSError(errno, f"checkpoint {final} not written: {cause or exc}") from exc
    for old in sorted(folder.glob("ckpt-*.pt"))[:-keep]:
        old.unlink(missing_ok=True)
    return final


def load_latest(folder: Path) -> tuple[dict[str, Any] | None, Path | None]:
    """The newest readable checkpoint (weights_only); corrupt ones are renamed `.corrupt`."""
    for path in sorted(folder.glob("ckpt-*.pt"), reverse=True):
        try:
            return torch.load(path, weights_only=True), path
        except Exception as exc:  # truncated, garbage, or not ours: never fatal
            aside = path.with_suffix(".corrupt")
            os.replace(path, aside)
            log.error("checkpoint %s is unreadable (%s); moved to %s", path, exc, aside)
    return None, None
