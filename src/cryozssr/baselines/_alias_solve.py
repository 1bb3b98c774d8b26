r"""The alias solve of :mod:`cryozssr.baselines.misr` at the cost of a few aligned sums.

With one shift ``s_t`` per frame (per tile with local motion) the phases of the four aliases of an
LR frequency ``k`` differ by *integers* times the shift: ``f K_a . s_t = k . s_t + n_a(k) . s_t``
with ``n_a`` an integer vector that changes only with the half-plane ``k`` lies in. The exposure
filter is ``q_t(K) = exp(-D_t g(|K|))`` (``g = 1 / (2 N_e)``, ``D_t`` the mid-frame dose). So

* every Gram entry ``G_ab(k) = conj(B_a) B_b / (qbar_a qbar_b) F_{n_a - n_b}(g_a + g_b)`` with
  ``F_d(u) = sum_t exp(2 pi i d . s_t) exp(-D_t u)``: a handful of 1D functions of ``u``,
  tabulated finely (``TABLE_POINTS``, linear interpolation: relative error < 1e-6 at 80 e/A^2)
  and looked up per pixel; ``qbar_a^2 = F_0(2 g_a) / t`` comes from the same table. No per-frame,
  per-pixel outer product.
* the right-hand side is ``conj(B_a) / qbar_a`` times ``R_a = sum_t exp(2 pi i f K_a . s_t)
  q_t(K_a) Y_t(k)``: four dose-weighted, phase-weighted sums of the frames' spectra.

The sums are raw (not divided by ``qbar``), so sums over disjoint frame sets (even and odd frames)
add up to the sum over their union: :class:`AliasSums` supports ``+``. Everything lives on the
``rfft2`` half plane of the LR tile (the HR image is real: the solve at ``-k`` is the conjugate of
the one at ``k``), and the 4x4 Hermitian systems are solved in closed form (``LDL^H``), batched
over all frequencies.

Precision: frames' spectra and the sums are complex64; the Gram tables and the solve are complex128
by default (``SOLVE_DTYPE``), see ``bench/results/throughput.json`` for the measured difference.
"""

from __future__ import annotations

import cmath
import itertools
import math
from dataclasses import dataclass

import torch

from cryozssr.dose import Exposure, critical_exposure, movie_frame_doses
from cryozssr.fourier import alias_frequencies, box_response, shell_index, zero_padding_weights

TABLE_POINTS = 16384
"""Points of the ``F_d(u)`` tables (linear interpolation)."""

BLOCK_ELEMENTS = 16384
"""Frequencies solved at a time (intermediates stay in cache)."""

SOLVE_DTYPE = torch.complex128
"""dtype of the Gram matrices and the 4x4 solves."""

UNIT_TRANSFER_FLOOR = 1e-2
"""Smallest mean gain a shell is divided by (shells the movie cannot resolve are not blown up)."""


@dataclass(frozen=True)
class AliasGrid:
    """What depends only on an ``(h, w)`` LR tile's shape and the exposure, on the rfft half plane.

    Alias-indexed arrays are ``(f, f, h, w // 2 + 1)`` (``[a, b]`` = HR frequency ``(ky + a h,
    kx + b w)``); ``g`` is the exposure exponent per unit dose (0 without dose weighting).
    """

    h: int
    w: int
    factor: int
    fy: torch.Tensor  # (h, f) signed alias frequencies, cycles/HR px
    fx: torch.Tensor  # (wr, f)
    ky: torch.Tensor  # (h,) unsigned LR frequencies i / h, cycles/LR px (the sums' alignment)
    kx: torch.Tensor  # (wr,)
    m_y: torch.Tensor  # (h,) integers: signed (fftfreq) minus unsigned LR frequency
    m_x: torch.Tensor  # (wr,)
    n_y: torch.Tensor  # (h, f) integers f fy - ky
    n_x: torch.Tensor  # (wr, f)
    base: torch.Tensor  # (f, f, h, wr) complex128: box response product / f^2
    g_hr: torch.Tensor  # (f, f, h, wr) float64
    g_lr: torch.Tensor  # (h, wr) float64
    rad_hr: torch.Tensor  # (f, f, h, wr) float64, cycles/HR px
    d_range: tuple[int, int]  # largest |n_a - n_b| along y and x
    u_step: float  # spacing of the F_d(u) tables
    lookup_index: torch.Tensor  # (P, h, wr) long: flat table index (d, u) of every looked-up value
    lookup_frac: torch.Tensor  # (P, h, wr) float64: linear interpolation weight

    @property
    def wr(self) -> int:
        return self.w // 2 + 1


def alias_grid(h: int, w: int, *, factor: int, exposure: Exposure | None, device) -> AliasGrid:
    """The :class:`AliasGrid` of an ``(h, w)`` LR tile."""
    f, wr = factor, w // 2 + 1
    fy = alias_frequencies(h, f, device=device)
    fx = alias_frequencies(w, f, device=device)[:wr]
    ky_signed = torch.fft.fftfreq(h, device=device, dtype=torch.float64)
    kx_signed = torch.fft.fftfreq(w, device=device, dtype=torch.float64)[:wr]
    ky = torch.arange(h, device=device, dtype=torch.float64) / h
    kx = torch.arange(wr, device=device, dtype=torch.float64) / w
    base = box_response(fy, f).T[:, None, :, None] * box_response(fx, f).T[None, :, None, :] / f**2
    rad_hr = torch.sqrt(fy.T[:, None, :, None] ** 2 + fx.T[None, :, None, :] ** 2)
    rad_lr = torch.sqrt(ky_signed[:, None] ** 2 + kx_signed[None, :] ** 2)
    pix = exposure.pixel_size_angstrom if exposure is not None else 1.0
    if _doses_known(exposure):
        assert exposure is not None
        volt = exposure.voltage_kv
        g_hr = 0.5 / critical_exposure(rad_hr / (pix / f), voltage_kv=volt)
        g_lr = 0.5 / critical_exposure(rad_lr / pix, voltage_kv=volt)
    else:
        g_hr, g_lr = torch.zeros_like(rad_hr), torch.zeros_like(rad_lr)
    n_y = (f * fy - ky[:, None]).round().long()
    n_x = (f * fx - kx[:, None]).round().long()
    dy, dx = int(n_y.max() - n_y.min()), int(n_x.max() - n_x.min())
    u_step = (2.0 * float(g_hr.max()) + 1e-12) / (TABLE_POINTS - 2)
    # looked up: G's upper entries (pairs a <= b), then qbar^2 of every alias, then of the LR grid
    aliases = [(a, b) for a in range(f) for b in range(f)]
    d_index, u = [], []
    for i, a in enumerate(aliases):
        for b in aliases[i:]:
            ddy = n_y[:, a[0]] - n_y[:, b[0]] + dy
            ddx = n_x[:, a[1]] - n_x[:, b[1]] + dx
            d_index.append(ddy[:, None] * (2 * dx + 1) + ddx[None, :])
            u.append(g_hr[a] + g_hr[b])
    zero = torch.full((h, wr), dy * (2 * dx + 1) + dx, device=device)  # d = (0, 0)
    for g in [*(g_hr[a] for a in aliases), g_lr]:
        d_index.append(zero)
        u.append(2 * g)
    pos = torch.stack(u) / u_step
    i0 = pos.floor().long().clamp(max=TABLE_POINTS - 2)
    index = torch.stack(d_index) * TABLE_POINTS + i0
    return AliasGrid(
        h,
        w,
        f,
        fy,
        fx,
        ky,
        kx,
        (ky_signed - ky).round().long(),
        (kx_signed - kx).round().long(),
        n_y,
        n_x,
        base,
        g_hr,
        g_lr,
        rad_hr,
        (dy, dx),
        u_step,
        index,
        pos - i0,
    )


def _doses_known(exposure: Exposure | None) -> bool:
    return exposure is not None and exposure.dose_per_frame_e_per_a2 is not None


def movie_doses(n_frames: int, exposure: Exposure | None, *, device) -> torch.Tensor:
    """Mid-frame dose of every frame ``(t,)`` float64, zeros without dose weighting."""
    if not _doses_known(exposure):
        return torch.zeros(n_frames, dtype=torch.float64, device=device)
    assert exposure is not None and exposure.dose_per_frame_e_per_a2 is not None
    doses = movie_frame_doses(exposure, n_frames, device=device)
    return doses.to(device=device, dtype=torch.float64)


@dataclass
class AliasSums:
    """Raw sums over a set of frames of one tile (module docstring); ``a + b`` is the union's."""

    rhs: torch.Tensor  # (f, f, h, wr) complex64: R_ab
    average: torch.Tensor  # (h, wr) complex64: sum_t q_t(k) Y_t(k) aligned on frame 0
    nyquist_row: torch.Tensor  # (wr,) the LR Nyquist row of ``average`` aligned with +1/2 (even h)
    nyquist_col: torch.Tensor  # (h,) its Nyquist column aligned with +1/2 (even w; rfftfreq's)
    shifts: torch.Tensor  # (n, 2) float64, LR px, this tile's frames
    doses: torch.Tensor  # (n,) float64
    counts: float  # sum of all counts

    def __add__(self, other: AliasSums) -> AliasSums:
        return AliasSums(
            self.rhs + other.rhs,
            self.average + other.average,
            self.nyquist_row + other.nyquist_row,
            self.nyquist_col + other.nyquist_col,
            torch.cat([self.shifts, other.shifts]),
            torch.cat([self.doses, other.doses]),
            self.counts + other.counts,
        )

    @property
    def n_frames(self) -> int:
        return int(self.doses.numel())


def empty_sums(grid: AliasGrid, *, device) -> AliasSums:
    f = grid.factor
    c64 = torch.complex64
    return AliasSums(
        torch.zeros(f, f, grid.h, grid.wr, dtype=c64, device=device),
        torch.zeros(grid.h, grid.wr, dtype=c64, device=device),
        torch.zeros(grid.wr, dtype=c64, device=device),
        torch.zeros(grid.h, dtype=c64, device=device),
        torch.zeros(0, 2, dtype=torch.float64, device=device),
        torch.zeros(0, dtype=torch.float64, device=device),
        0.0,
    )


def _runs(values: torch.Tensor) -> tuple[tuple[int, int, int], ...]:
    """``(start, stop, value)`` of the runs of equal integers in ``(n,)`` ``values``."""
    v = values.tolist()
    edges = [0] + [i for i in range(1, len(v)) if v[i] != v[i - 1]] + [len(v)]
    return tuple((a, b, int(v[a])) for a, b in itertools.pairwise(edges))


class DoseFilters:
    """Exposure filters ``q_t`` of every frame on a grid's aliases and LR frequencies, complex64.

    ``cache=True`` keeps them for all frames (tiles of the same shape share them): ``(t, f^2 + 1,
    h, wr)``; otherwise they are computed per frame.
    """

    def __init__(self, grid: AliasGrid, doses: torch.Tensor, *, cache: bool) -> None:
        f = grid.factor
        self.g = torch.cat([grid.g_hr.reshape(f * f, grid.h, grid.wr), grid.g_lr[None]]).float()
        self.doses = doses
        self.table = None
        if cache:
            self.table = torch.stack([self._compute(i) for i in range(doses.numel())])

    def _compute(self, frame: int) -> torch.Tensor:
        # complex64 (as the sums): a real table would halve it, but mixed-dtype multiply-adds
        # were measured 1.4x slower
        return torch.exp(-float(self.doses[frame]) * self.g).to(torch.complex64)

    def __call__(self, frame: int) -> torch.Tensor:
        """``(f^2 + 1, h, wr)``: the aliases' filters (order ``a f + b``), then the LR one."""
        return self.table[frame] if self.table is not None else self._compute(frame)


def accumulate(
    sums: AliasSums,
    spectra: torch.Tensor,
    shifts: torch.Tensor,
    frames: list[int],
    grid: AliasGrid,
    filters: DoseFilters,
) -> None:
    """Add ``(c, h, wr)`` frame spectra (``rfft2``) with ``(c, 2)`` LR shifts (movie ``frames``).

    Per frame: one aligned spectrum (unsigned LR frequencies), then fused multiply-adds: the alias
    phase relative to it is a constant on each run of ``n_a`` (one run per alias for ``f = 2``),
    the signed (``fftfreq``) alignment of the average one on each run of ``m``.
    """
    f = grid.factor
    s = shifts.to(torch.float64)
    ramp_y = torch.exp(2j * math.pi * grid.ky[None] * s[:, 0, None]).to(torch.complex64)
    ramp_x = torch.exp(2j * math.pi * grid.kx[None] * s[:, 1, None]).to(torch.complex64)
    aligned = spectra * ramp_y[:, :, None]
    aligned *= ramp_x[:, None, :]
    runs_y = [_runs(grid.n_y[:, a]) for a in range(f)]
    runs_x = [_runs(grid.n_x[:, b]) for b in range(f)]
    single = all(len(r) == 1 for r in runs_y + runs_x)
    rhs = sums.rhs.reshape(f * f, grid.h, grid.wr)
    ny = grid.h // 2
    two_pi_i = 2j * math.pi
    nyquist_q: list[torch.Tensor] = []
    for j, (sy, sx) in enumerate(s.tolist()):
        y, q = aligned[j], filters(frames[j])
        if single:  # all aliases in one multiply-add
            phase = [
                cmath.exp(two_pi_i * (runs_y[a][0][2] * sy + runs_x[b][0][2] * sx))
                for a in range(f)
                for b in range(f)
            ]
            c = torch.tensor(phase, dtype=torch.complex64, device=y.device)[:, None, None]
            rhs.addcmul_(q[:-1], y * c)
        else:
            for a in range(f):
                for b in range(f):
                    for y0, y1, n_y in runs_y[a]:
                        for x0, x1, n_x in runs_x[b]:
                            phase = cmath.exp(two_pi_i * (n_y * sy + n_x * sx))
                            rhs[a * f + b, y0:y1, x0:x1].addcmul_(
                                q[a * f + b, y0:y1, x0:x1], y[y0:y1, x0:x1], value=phase
                            )
        for y0, y1, m_y in _runs(grid.m_y):
            for x0, x1, m_x in _runs(grid.m_x):
                sums.average[y0:y1, x0:x1].addcmul_(
                    q[-1, y0:y1, x0:x1],
                    y[y0:y1, x0:x1],
                    value=cmath.exp(two_pi_i * (m_y * sy + m_x * sx)),
                )
        if grid.h % 2 == 0:  # the Nyquist row aligned with +1/2: the unsigned convention
            sums.nyquist_row.addcmul_(q[-1, ny], y[ny])
        if grid.w % 2 == 0:
            nyquist_q.append(q[-1, :, -1])
    if grid.w % 2 == 0:  # the Nyquist column aligned with +1/2 (rows signed, as ``average``)
        row_phase = torch.exp(2j * math.pi * s[:, :1] * grid.m_y[None].to(s)).to(torch.complex64)
        column = torch.stack(nyquist_q) * aligned[:, :, -1] * row_phase  # (c, h), all frames
        sums.nyquist_col += column.sum(0)
    sums.shifts = torch.cat([sums.shifts, s])
    sums.doses = torch.cat([sums.doses, filters.doses[frames].to(torch.float64)])
    sums.counts += float(spectra[:, 0, 0].real.double().sum())


def gram_tables(sums: AliasSums, grid: AliasGrid) -> torch.Tensor:
    """``F_d(u)`` (module docstring) for every ``d`` of the grid, ``TABLE_POINTS`` each, flat."""
    dev = sums.rhs.device
    dy, dx = grid.d_range
    dys = torch.arange(-dy, dy + 1, device=dev, dtype=torch.float64)
    dxs = torch.arange(-dx, dx + 1, device=dev, dtype=torch.float64)
    d = torch.stack(torch.meshgrid(dys, dxs, indexing="ij"), -1).reshape(-1, 2)  # (nd, 2)
    phase = torch.exp(2j * math.pi * (sums.shifts @ d.T))  # (t, nd)
    u = torch.arange(TABLE_POINTS, device=dev, dtype=torch.float64) * grid.u_step
    decay = torch.exp(-u[:, None] * sums.doses[None, :]).to(phase.dtype)  # (M, t)
    return (decay @ phase).T.contiguous().flatten()


def _lookup(table: torch.Tensor, grid: AliasGrid, which: slice, rows: slice) -> torch.Tensor:
    """Interpolated table values ``(P', rows, wr)`` of the grid's lookups ``which``."""
    index = grid.lookup_index[which, rows]
    frac = grid.lookup_frac[which, rows].to(table.real.dtype)
    pairs = torch.view_as_real(table).unfold(0, 2, 1).transpose(1, 2).reshape(-1, 4)  # (N-1, 4)
    v = pairs.index_select(0, index.flatten())
    out = torch.lerp(v[:, :2], v[:, 2:], frac.flatten()[:, None]).contiguous()
    return torch.view_as_complex(out).reshape(index.shape)


def qbar_lr(table: torch.Tensor, grid: AliasGrid, n_frames: int) -> torch.Tensor:
    """``sqrt(mean_t q_t(k)^2)`` on the LR half plane ``(h, wr)``."""
    return (_lookup(table, grid, slice(-1, None), slice(None))[0].real / n_frames).sqrt()


def average_image(sums: AliasSums, grid: AliasGrid) -> torch.Tensor:
    """The tile's motion-corrected, dose-weighted LR average ``(h, w)``, float32.

    ``sum_t q_t(k) Y_t(k) / sqrt(t sum_t q_t(k)^2)`` aligned on frame 0: the weights and the
    frequency convention (signed rows, ``rfftfreq`` columns) of
    :func:`~cryozssr.motion.averages.dose_weighted_average`, which it equals on a whole frame (to
    float rounding), formed from the sums the solve reads anyway (no second transform of a frame).
    """
    t = sums.n_frames
    qbar = qbar_lr(gram_tables(sums, grid), grid, t)
    spectrum = sums.average.clone()
    if grid.w % 2 == 0:
        spectrum[:, -1] = sums.nyquist_col
    spectrum /= (t * qbar).to(torch.float32)
    return torch.fft.irfft2(spectrum, s=(grid.h, grid.w))


GramCache = dict
"""Gram blocks kept across tiles whose frames have the same shifts up to integers (global motion)."""


def normal_equations(
    sums: AliasSums,
    grid: AliasGrid,
    table: torch.Tensor,
    rows: slice,
    *,
    cache: GramCache | None = None,
    key: object = None,
) -> tuple[dict[tuple[int, int], torch.Tensor], list[torch.Tensor]]:
    """Gram entries ``{(i, j): (rows, wr)}`` (``i <= j``, flattened alias index) and right-hand
    sides of the module's model normalised by ``qbar``, on a block of rows. With a ``cache`` and
    a ``key`` naming the frames (their shifts modulo integers), the Gram block is kept and reused."""
    n = grid.factor**2
    if cache is not None and (key, rows.start) in cache:
        gram, scale = cache[key, rows.start]
    else:
        values = _lookup(table, grid, slice(None, -1), rows)
        qbar = (values[-n:].real / sums.n_frames).sqrt()
        base = grid.base.reshape(n, grid.h, grid.wr)[:, rows]
        scale = base.to(SOLVE_DTYPE) / qbar  # B_a / qbar_a
        gram = {}
        k = 0
        for i in range(n):
            for j in range(i, n):
                gram[i, j] = scale[i].conj() * scale[j] * values[k]
                k += 1
        if cache is not None:
            cache[key, rows.start] = (gram, scale)
    rhs = sums.rhs.reshape(n, grid.h, grid.wr)[:, rows]
    return gram, [scale[i].conj() * rhs[i] for i in range(n)]


def _row_blocks(grid: AliasGrid) -> list[slice]:
    rows = max(1, BLOCK_ELEMENTS // grid.wr)
    return [slice(r, min(r + rows, grid.h)) for r in range(0, grid.h, rows)]


def ldl_solve(
    gram: dict[tuple[int, int], torch.Tensor],
    diagonal: list[torch.Tensor],
    rhs: list[torch.Tensor],
    *,
    inverse_diagonal: bool = False,
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Solve ``(G + diag(diagonal)) x = rhs`` at every frequency (Hermitian positive definite).

    ``gram[i, j]`` (``i <= j``) are the upper entries, each a batch tensor; closed-form ``LDL^H``.
    With ``inverse_diagonal`` also returns the diagonal of ``(G + diag)^-1`` (real).
    """
    n = len(rhs)

    def entry(i: int, j: int) -> torch.Tensor:
        return gram[i, j] if i <= j else gram[j, i].conj()

    low: dict[tuple[int, int], torch.Tensor] = {}
    dd: list[torch.Tensor] = []
    for j in range(n):
        dj = entry(j, j).real + diagonal[j]
        for k in range(j):
            dj = dj - low[j, k].abs().square() * dd[k]
        dd.append(dj)
        for i in range(j + 1, n):
            v = entry(i, j)
            for k in range(j):
                v = v - low[i, k] * low[j, k].conj() * dd[k]
            low[i, j] = v / dj
    z: list[torch.Tensor] = []
    for i in range(n):
        v = rhs[i]
        for k in range(i):
            v = v - low[i, k] * z[k]
        z.append(v)
    x: list[torch.Tensor] = [z[0]] * n
    for i in reversed(range(n)):
        v = z[i] / dd[i]
        for k in range(i + 1, n):
            v = v - low[k, i].conj() * x[k]
        x[i] = v
    if not inverse_diagonal:
        return x, None
    # (G + D)^-1 = L^-H diag(1/d) L^-1; M = L^-1 is unit lower triangular
    inv: dict[tuple[int, int], torch.Tensor] = {}
    for j in range(n):
        for i in range(j + 1, n):
            v = -low[i, j]
            for k in range(j + 1, i):
                v = v - low[i, k] * inv[k, j]
            inv[i, j] = v
    diag = []
    for i in range(n):
        v = 1.0 / dd[i]
        for j in range(i + 1, n):
            v = v + inv[j, i].abs().square() / dd[j]
        diag.append(v)
    return x, diag


def _column_weights(grid: AliasGrid, n_cols: int, n_full: int, *, device) -> torch.Tensor:
    """How many full-plane columns each rfft column stands for (1 for 0 and Nyquist, else 2)."""
    weights = torch.full((n_cols,), 2.0, dtype=torch.float64, device=device)
    weights[0] = 1.0
    if n_full % 2 == 0:
        weights[-1] = 1.0
    return weights


def solve_tikhonov(
    sums: AliasSums,
    grid: AliasGrid,
    *,
    regularisation: float,
    cache: GramCache | None = None,
    key: object = None,
) -> torch.Tensor:
    """``misr``'s Tikhonov estimate of the tile, ``(f h, f w)`` (prior: the aligned average)."""
    f, h, w, wr = grid.factor, grid.h, grid.w, grid.wr
    t = sums.n_frames
    table = gram_tables(sums, grid).to(SOLVE_DTYPE)
    qbar = qbar_lr(table, grid, t)
    average = sums.average.to(SOLVE_DTYPE) / (t * qbar)
    mu = max(sums.counts / (t * h * w), 1e-12)
    weights = _column_weights(grid, wr, w, device=average.device)
    power = average.abs().square()
    total = (power * weights).sum() - power[0, 0]
    if h % 2 == 0:  # the full plane's Nyquist row holds both sign conventions (misr's docstring)
        other = sums.nyquist_row.to(SOLVE_DTYPE) / (t * qbar[h // 2])
        total = total + ((other.abs().square() - power[h // 2]) * (weights - 1)).sum()
    variance = float(total) / (h * w) ** 2
    average = _hermitian_nyquist(average, sums, grid, qbar)
    signal = max(variance - mu / t, 1e-6 * mu / t)
    lam = max(regularisation * mu / signal, 1e-9 * t)
    wy = zero_padding_weights(h, f, device=average.device)
    wx = zero_padding_weights(w, f, device=average.device)[:wr]
    x = torch.empty(f * f, h, wr, dtype=SOLVE_DTYPE, device=average.device)
    for rows in _row_blocks(grid):
        gram, rhs = normal_equations(sums, grid, table, rows, cache=cache, key=key)
        for i in range(f * f):
            a, b = divmod(i, f)
            rhs[i] = rhs[i] + lam * average[rows] * wy[rows, a, None] * wx[None, :, b]
        diagonal = [torch.full_like(qbar[rows], lam)] * (f * f)
        x[:, rows] = torch.stack(ldl_solve(gram, diagonal, rhs)[0])
    return torch.fft.irfft2(hr_half_spectrum(list(x), grid), s=(f * h, f * w))


def _hermitian_nyquist(
    average: torch.Tensor, sums: AliasSums, grid: AliasGrid, qbar_lr: torch.Tensor
) -> torch.Tensor:
    """The aligned average with its LR Nyquist row and column made Hermitian.

    Aligned with the signed frequency ``-1/2`` (``fftfreq``), the Nyquist coefficients of ``k`` and
    ``-k`` are not conjugate; a full-plane solve followed by ``ifft2(...).real`` averages the two,
    which this does on the half plane (the other convention is accumulated on the row).
    """
    h, w = grid.h, grid.w
    out = average.clone()
    if w % 2 == 0:
        col = average[:, -1]
        out[:, -1] = 0.5 * (col + col[(-torch.arange(h, device=col.device)) % h].conj())
    if h % 2 == 0:
        other = sums.nyquist_row.to(average.dtype) / (sums.n_frames * qbar_lr[h // 2])
        out[h // 2] = 0.5 * (average[h // 2] + other)
    return out


NOISE_SMOOTHING_BINS = 9
"""Neighbouring LR frequencies (a square this wide) averaged in the noise spectrum estimate."""


def noise_from_halves(even: AliasSums, odd: AliasSums, grid: AliasGrid) -> torch.Tensor:
    """Noise power per frame and LR coefficient ``(h, wr)`` (``E|N_t(k)|^2``) from the data.

    The even and the odd frames' aligned, dose-weighted sums share the signal, not the noise:
    ``E|A_even - A_odd|^2 = sum_t q_t(k)^2 N(k)`` (all frames), whatever the detector's noise
    spectrum, its pixel correlation or the data's units (counts or not). What the two halves do
    not share of the signal (their damage differs by about one frame's) is counted as noise: small
    where a frame's own signal-to-noise ratio is below one, as in low-dose movies.
    """
    table = gram_tables(even + odd, grid)
    return _noise_spectrum(even.average - odd.average, table, grid)


def _noise_spectrum(difference: torch.Tensor, table: torch.Tensor, grid: AliasGrid) -> torch.Tensor:
    """:func:`noise_from_halves` from the halves' ``difference`` of averages and the ``table`` of
    all their frames: averaged over ``NOISE_SMOOTHING_BINS`` x ``NOISE_SMOOTHING_BINS``
    neighbouring frequencies (the 2D shape, not only radial, is kept); the zero frequency (the
    halves' dose difference) takes its neighbours'."""
    weight = (_lookup(table, grid, slice(-1, None), slice(None))[0].real).clamp(min=1e-12)
    power = difference.to(torch.complex128).abs().square() / weight
    pad = NOISE_SMOOTHING_BINS // 2
    rows = torch.cat([power[-pad:], power, power[:pad]])  # rows wrap (fftfreq order)
    padded = torch.nn.functional.pad(rows[None], (pad, pad), mode="replicate")[0]
    power = torch.nn.functional.avg_pool2d(padded[None, None], NOISE_SMOOTHING_BINS, stride=1)[0, 0]
    power[0, 0] = power[0, 1] if grid.wr > 1 else power[1 % grid.h, 0]
    return power.clamp(min=1e-30)


def solve_mmse(
    sums: AliasSums,
    grid: AliasGrid,
    signal_power: list[torch.Tensor],
    *,
    halves_difference: torch.Tensor | None = None,
    cache: GramCache | None = None,
    key: object = None,
) -> torch.Tensor:
    """The per-alias MMSE estimate under ``signal_power`` (per HR pixel, per alias ``(h, wr)``),
    rescaled per shell to unit mean gain (:mod:`cryozssr.baselines.misr`): ``(f h, f w)``.

    ``halves_difference``: the even minus the odd frames' ``average`` sums, ``(h, wr)``: the noise
    is measured from it (:func:`noise_from_halves`, on this solve's own table); ``None``: Poisson
    counts (white, variance = the mean count).
    """
    f, h, w = grid.factor, grid.h, grid.w
    table = gram_tables(sums, grid).to(SOLVE_DTYPE)
    if halves_difference is None:
        sigma2 = max(sums.counts / (sums.n_frames * h * w), 1e-12) * h * w
    else:
        sigma2 = _noise_spectrum(halves_difference, table, grid)
    precision = [sigma2 / (p * (f * h) * (f * w)).clamp(min=1e-300) for p in signal_power]
    x = torch.empty(f * f, h, grid.wr, dtype=SOLVE_DTYPE, device=table.device)
    gain = torch.empty_like(x)
    for rows in _row_blocks(grid):
        gram, rhs = normal_equations(sums, grid, table, rows, cache=cache, key=key)
        block = [p[rows] for p in precision]
        solution, inverse = ldl_solve(gram, block, rhs, inverse_diagonal=True)
        assert inverse is not None
        x[:, rows] = torch.stack(solution)
        gain[:, rows] = torch.stack([1.0 - p * d for p, d in zip(block, inverse, strict=True)])
    spectrum = hr_half_spectrum(list(x), grid)
    gain_hr = hr_half_spectrum(list(gain), grid).real
    n_hr = (f * h, f * w)
    rad = torch.sqrt(
        torch.fft.fftfreq(n_hr[0], dtype=torch.float64, device=spectrum.device)[:, None] ** 2
        + torch.fft.rfftfreq(n_hr[1], dtype=torch.float64, device=spectrum.device)[None, :] ** 2
    )
    shell = shell_index(rad, max(n_hr))
    cols = _column_weights(grid, spectrum.shape[1], n_hr[1], device=spectrum.device)
    n_shells = int(shell.max()) + 1
    total = torch.zeros(n_shells, dtype=torch.float64, device=spectrum.device)
    total.index_add_(0, shell.flatten(), (gain_hr * cols).flatten())
    count = torch.zeros_like(total).index_add_(
        0, shell.flatten(), cols.expand_as(gain_hr).flatten()
    )
    mean_gain = total / count.clamp(min=1)
    spectrum = spectrum / mean_gain.clamp(min=UNIT_TRANSFER_FLOOR)[shell]
    return torch.fft.irfft2(spectrum, s=n_hr)


def hr_half_spectrum(x: list[torch.Tensor], grid: AliasGrid) -> torch.Tensor:
    """Alias values ``f*f`` x ``(h, wr)`` (order ``a f + b``) -> HR ``rfft2`` spectrum ``(f h, f w//2+1)``.

    HR column ``C`` comes from LR column ``C mod w`` when that is in the half plane, else from the
    conjugate of the mirrored column ``f w - C`` at the negated row.
    """
    f, h, w, wr = grid.factor, grid.h, grid.w, grid.wr
    dev = x[0].device
    stacked = torch.stack(x).reshape(f, f, h, wr).permute(1, 3, 0, 2).reshape(f * wr, f * h)
    cols = torch.arange(f * w // 2 + 1, device=dev)
    direct = cols % w < wr
    mirror = (f * w - cols) % (f * w)
    source = torch.where(direct, (cols // w) * wr + cols % w, (mirror // w) * wr + mirror % w)
    out = stacked[source]  # (n_cols, f h)
    neg_rows = (-torch.arange(f * h, device=dev)) % (f * h)
    out[~direct] = out[~direct][:, neg_rows].conj()
    return out.T
