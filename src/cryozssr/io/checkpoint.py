"""A Cryo-ZSSR network checkpoint: the trained weights with the options that made them.

A dataset-level network (the papers' future work): trained on the first movie of a batch, saved
beside the outputs, then fine-tuned briefly on every other movie (and on every movie of a resumed
batch). The file is a ``torch.save`` dict that describes itself (format tag, cryozssr version, the
:class:`~cryozssr.zssr.ZssrConfig` and a free-form record such as the training movie), read back
with ``weights_only=True`` (no code is executed on load).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cryozssr import __version__
from cryozssr.errors import InputError
from cryozssr.io.write import atomic_path
from cryozssr.zssr.config import ZssrConfig

FORMAT = "cryozssr-zssr-checkpoint"
VERSION = 1
ARCHITECTURE = ("channels", "res_blocks")
"""The options a checkpoint's weights must match to be loaded into a network."""


def save_checkpoint(
    path: str | os.PathLike,
    state: dict[str, torch.Tensor],
    *,
    config: ZssrConfig,
    record: dict[str, Any] | None = None,
) -> Path:
    """Write ``state`` (an ``SRNet`` state dict) with ``config`` atomically to ``path``."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "cryozssr_version": __version__,
        "config": config.to_dict(),
        "record": dict(record or {}),
        "state": {k: v.detach().cpu() for k, v in state.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, *, config: ZssrConfig) -> dict[str, torch.Tensor]:
    """The weights stored at ``path``, checked against the network ``config`` describes.

    Raises :class:`~cryozssr.errors.InputError` for a missing or unreadable file, a file that is
    not a checkpoint, or weights for another architecture (channels, residual blocks).
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"checkpoint not found: {path}") from None
    except Exception as exc:  # torch raises several kinds for a corrupt or foreign file
        raise InputError(f"{path} is not a readable Cryo-ZSSR checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path} is not a Cryo-ZSSR checkpoint")
    if payload.get("version") != VERSION:
        raise InputError(f"{path}: checkpoint version {payload.get('version')} is not supported")
    saved = payload["config"]
    wanted = config.to_dict()
    differ = [k for k in ARCHITECTURE if saved.get(k) != wanted[k]]
    if differ:
        cells = ", ".join(f"{k} {saved.get(k)} (run: {wanted[k]})" for k in differ)
        raise InputError(f"{path} holds another network: {cells}")
    return payload["state"]
