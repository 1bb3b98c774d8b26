"""Detector response: measured MTF tables (shipped with the package) and the pixel aperture.

A counting detector assigns each electron to one pixel, displaced at random by the event's
spread: the expected image is blurred by the detector's point spread and each pixel's count stays
an independent Poisson variable (a randomly displaced Poisson process is Poisson). The measured
MTF includes the square pixel's aperture ``sinc(kx) sinc(ky)``; we split it as
``MTF(k) = sinc(k) g(k)`` along an axis and apply ``sinc(kx) sinc(ky) g(|k|)`` in 2D. Above the
tabulated Nyquist frequency (0.5 cycles/pixel), where the image formed on a finer grid still has
signal that the pixel aliases, ``g`` continues as a Gaussian fitted to the table's last third.
"""

from __future__ import annotations

import functools
from importlib.resources import files

import numpy as np
import torch

from cryozssr.errors import OptionError

_TABLES = {
    ("k3", 300): "mtf_k3_standard_300kV_FL2.star",
    ("k3", 200): "mtf_k3_standard_200kV_FL2.star",
    ("k2", 300): "mtf_k2_300kV.star",
    ("k2", 200): "mtf_k2_200kV_FL2.star",
    ("falcon4ec", 300): "mtf_falcon4EC_300kV.star",
    ("falcon4ec", 200): "mtf_falcon4EC_200kV.star",
    ("falcon3ec", 300): "mtf_falcon3EC_300kV.star",
    ("falcon3ec", 200): "mtf_falcon3EC_200kV.star",
}


def mtf_table_name(detector: str, voltage_kv: float) -> str | None:
    """File name of the MTF table used for ``detector`` at ``voltage_kv`` (None for ``ideal``)."""
    if detector == "ideal":
        return None
    kv = 300 if voltage_kv >= 250 else 200
    try:
        return _TABLES[(detector, kv)]
    except KeyError:
        raise OptionError(f"no MTF table for detector {detector!r}") from None


@functools.lru_cache(maxsize=16)
def read_mtf_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(k cycles/pixel, mtf)`` of a shipped RELION MTF STAR table."""
    import starfile

    path = files("cryozssr") / "data" / "detector_mtf" / name
    table = starfile.read(str(path))
    k = table["rlnResolutionInversePixel"].to_numpy(dtype=np.float64)
    mtf = table["rlnMtfValue"].to_numpy(dtype=np.float64)
    order = np.argsort(k)
    return k[order], mtf[order]


def _g_function(detector: str, voltage_kv: float, k: np.ndarray) -> np.ndarray:
    """Non-aperture part ``g(k) = MTF(k) / sinc(k)`` at radial frequencies ``k`` (cycles/pixel)."""
    name = mtf_table_name(detector, voltage_kv)
    if name is None:
        return np.ones_like(k)
    kt, mtf = read_mtf_table(name)
    keep = kt <= 0.5 + 1e-9
    kt, g = kt[keep], mtf[keep] / np.sinc(kt[keep])
    tail = kt >= kt[-1] * 2 / 3
    # log g ~ log g_end - alpha (k^2 - k_end^2) beyond the table, alpha >= 0
    x = kt[tail] ** 2 - kt[-1] ** 2
    y = np.log(np.clip(g[tail], 1e-6, None)) - np.log(max(g[-1], 1e-6))
    alpha = max(0.0, float(-(x @ y) / max(x @ x, 1e-12)))
    inside = np.interp(k, kt, g)
    outside = g[-1] * np.exp(-alpha * (k**2 - kt[-1] ** 2))
    return np.where(k <= kt[-1], inside, outside)


def detector_transfer_rfft(
    shape: tuple[int, int],
    *,
    oversample: int,
    detector: str,
    voltage_kv: float = 300.0,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Detector transfer ``(h, w//2+1)`` on the rfft grid of an image sampled ``oversample`` times
    finer than the detector pixel: ``sinc(kx) sinc(ky) g(|k|)``, k in cycles per detector pixel."""
    ky = torch.fft.fftfreq(shape[0], dtype=torch.float64) * oversample
    kx = torch.fft.rfftfreq(shape[1], dtype=torch.float64) * oversample
    k = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    g = torch.from_numpy(_g_function(detector, voltage_kv, k.numpy()))
    out = torch.sinc(ky)[:, None] * torch.sinc(kx)[None, :] * g
    return out.to(device=device, dtype=torch.float32)


def detector_mtf_1d(k: np.ndarray, *, detector: str, voltage_kv: float = 300.0) -> np.ndarray:
    """The radial MTF ``sinc(k) g(k)`` along an axis that the simulator applies (for reports)."""
    return np.sinc(k) * _g_function(detector, voltage_kv, np.asarray(k, dtype=np.float64))
