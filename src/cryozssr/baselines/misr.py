r"""Frequency-domain multi-frame super-resolution (Tsai & Huang 1984), dose-weighted and regularised.

Model (global shift per frame, ``factor`` f = 2 below; see :mod:`cryozssr.fourier`).
``x`` is the HR image (counts per HR pixel per frame) at the frame-0 position, *with the signal
filter of a dose-weighted average* (``qbar(K) = sqrt(mean_t q_t(K)^2)``), so that its LR box sum
is what the dose-weighted LR average estimates. Frame ``t`` (LR, counts) is the f x f box sum of
the specimen moved by ``s_t`` (LR px; ``2 s_t`` HR px) and damaged by the exposure filter ``q_t``:

.. math::

   Y_t(k) = \sum_{a,b} \underbrace{\tfrac{1}{f^2} B(K_{ab}) e^{-2\pi i K_{ab}\cdot 2 s_t}
            \tfrac{q_t(K_{ab})}{\bar q(K_{ab})}}_{A_{t,ab}(k)} X(K_{ab}) + N_t(k)

with ``K_ab = (k_y + a h, k_x + b w)`` the f^2 HR frequencies that fold onto the LR frequency ``k``
(signed, cycles/HR px in the phase), ``B`` the f x f box sum's transfer (aperture and half-pixel
phase) and ``N_t`` Poisson noise, white with variance ``sigma^2 = mu h w`` per coefficient
(``mu`` = mean counts per LR pixel per frame: Poisson variance = mean). At every ``k`` we solve

.. math::

   \min_X \sum_t |Y_t - A_t X|^2 + \lambda \|X - X_0\|^2, \qquad
   \lambda = \rho\, \sigma^2 / P = \rho\, \mu / v,

a 4-unknown (f^2) Tikhonov problem, batched over all ``k`` with the normal equations. ``X_0`` is the
Fourier (zero-padding) upsampling of the aligned, dose-weighted average, so whatever the frames
cannot determine falls back to the ``fourier`` baseline (no motion: the system has rank 1 at
every ``k``). ``P = v h w`` is the per-frame signal power per coefficient of a white-spectrum
prior, ``v`` the signal variance per LR pixel (variance of the aligned average minus its noise
variance ``mu / t``), so ``lambda`` is the inverse per-frame SNR: ``rho = 1`` would be the Wiener
(MSE) weight for that prior. The default ``rho`` (``regularisation``) is lighter, 0.25: on
development movies (a simulated 256-px movie, a low-contrast synthetic texture) the FRC past the
LR Nyquist rose as ``rho`` fell from 3 to ~0.1 and flattened there; a per-ring (coloured) Wiener
weight, tried first, over-regularised the weak high frequencies and did worse than shift-and-add.

With a ``signal`` spectrum (:class:`RadialSpectrum`, the signal power per HR pixel on radial
shells) the weight becomes the Gaussian prior of that spectrum and the solve the MMSE (Wiener)
estimate, coefficient by coefficient and alias by alias:

.. math::

   \min_X \sum_t |Y_t - A_t X|^2 + \sum_{ab} \frac{\sigma^2}{S(K_{ab})} |X(K_{ab})|^2 .

Its per-coefficient posterior mean is what maximises the FRC within a shell, so it weighs every
alias by how well this movie's shifts and dose determine it. The result is then divided, shell by
shell, by its mean signal gain (the diagonal of the resolution matrix ``(G + \Lambda)^{-1} G``):
the within-shell weighting stays, while the radial transfer is one, as in the data, so that a
CTF-aware step downstream (3D reconstruction, CTF fitting) sees the data's own radial transfer
(CTF, detector MTF, dose envelope) and no extra filter. The output is then not the minimum-MSE
image (its noise past the Nyquist is about twice the unrescaled one's). Without the rescaling
the output carries a CTF^2-like radial filter that differs between micrographs and mis-weights their
particles in 3D. :mod:`cryozssr.baselines.mmse`
estimates ``S`` from the movie itself (even/odd half reconstructions).

Local motion and large frames: the model is solved on overlapping tiles, each with the shifts at
its centre (``MotionField.shifts_at``), frames cut at the integer part of that shift, tiles
blended with raised-cosine windows. Memory is bounded by the tile size and ``frame_chunk``.

How it is computed (:mod:`cryozssr.baselines._alias_solve`, issue 14): the Gram matrices come from
a few tabulated functions of the dose exponent (no per-frame outer products), the right-hand sides
are per-alias dose- and phase-weighted sums of the frames' spectra on the ``rfft2`` half plane,
and the 4x4 systems are solved in closed form; every frame of a tile is transformed once, also by
``mmse`` (:func:`cryozssr.baselines.mmse.misr_halves_then_mmse`). Equal to the direct solve to ~1e-7 relative
(``tests/test_misr_fast.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cryozssr.baselines._alias_solve import (
    AliasGrid,
    AliasSums,
    DoseFilters,
    GramCache,
    accumulate,
    alias_grid,
    average_image,
    empty_sums,
    movie_doses,
    noise_from_halves,
    solve_mmse,
    solve_tikhonov,
)
from cryozssr.baselines._common import check_movie
from cryozssr.dose import Exposure
from cryozssr.errors import OptionError
from cryozssr.fourier import shell_index
from cryozssr.motion.field import MotionField
from cryozssr.tiling import blend_window, tile_starts

FILTER_CACHE_BYTES = 512 * 2**20
"""Largest table of per-frame exposure filters kept across tiles of the same shape."""

BLEND_BLOCK_ELEMENTS = 2**22
"""Pixels of a blended image normalised at a time."""


def smooth_shells(power: torch.Tensor, width: int) -> torch.Tensor:
    """Running mean of a radial table over ``width`` (odd) shells, the ends padded by replication."""
    if width <= 1:
        return power
    kernel = torch.ones(1, 1, width, dtype=power.dtype, device=power.device) / width
    padded = torch.nn.functional.pad(power[None, None], (width // 2,) * 2, mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel)[0, 0]


@dataclass(frozen=True)
class RadialSpectrum:
    """Signal power per HR pixel (``E|fft2(x)(K)|^2 / n_pixels``) on radial shells of ``|K|``.

    ``power_per_px[i]`` is the power on the shell ``|K| ~ i * shell_width_cycles`` (cycles/HR
    px); beyond the last shell the last value holds. Per pixel, so one spectrum serves every tile
    of a micrograph, once blurred to the tile's coarser frequency grid (:meth:`for_grid`; on a
    whole frame that is a 3-shell running mean, which left the benchmark FRC unchanged).
    """

    power_per_px: torch.Tensor
    shell_width_cycles: float

    def for_grid(self, n_px: int) -> RadialSpectrum:
        """The spectrum as an ``n_px``-pixel tile sees it: averaged over ~3 of its frequency steps.

        Looked up unblurred, a 64-px tile lost ~0.02 FRC past the Nyquist against the whole frame
        (a reviewer's check); averaged over 1 step it still lost 0.02, over 3 or 6 steps ~0.004.
        """
        width = round(3.0 / (n_px * self.shell_width_cycles))  # 3 tile steps: measured best
        if width <= 1:
            return self
        width += 1 - width % 2  # odd
        table = self.power_per_px
        return RadialSpectrum(
            torch.cat([table[:1], smooth_shells(table[1:], width)]), self.shell_width_cycles
        )

    def at(self, radius_cycles_per_px: torch.Tensor) -> torch.Tensor:
        """The power per pixel at ``radius_cycles_per_px`` (nearest shell)."""
        table = self.power_per_px.to(radius_cycles_per_px.device, torch.float64)
        index = shell_index(radius_cycles_per_px, 1.0 / self.shell_width_cycles)
        return table[index.clamp(0, table.numel() - 1)]


def misr(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure | None = None,
    factor: int = 2,
    regularisation: float = 0.25,
    tile_size_px: int | None = None,
    tile_overlap_px: int = 32,
    frame_chunk: int = 8,
    signal: RadialSpectrum | None = None,
) -> torch.Tensor:
    """Multi-frame SR of ``(t, h, w)`` LR frames -> ``(factor h, factor w)`` (counts per HR px per frame).

    ``motion`` is in LR pixels (``shifts[t]`` = specimen position in frame t relative to frame 0).
    ``exposure=None`` (or an unknown dose per frame) means no dose weighting. ``regularisation``
    scales the noise-based Tikhonov weight (module docstring). Tiles are ``tile_size_px`` LR
    pixels, overlapping by ``tile_overlap_px``; ``None``: the whole frame (periodic) when the motion
    is global and the frames are at most 1024 px, else 512 px tiles, or 128 px with local motion.
    ``signal``: solve for the MMSE estimate under that signal spectrum instead (module docstring);
    ``regularisation`` is then unused. ``frames`` may be any real dtype (integer counts included);
    ``frame_chunk`` frames are transformed at a time.
    """
    solver = _solver(
        frames, motion, exposure, factor, tile_size_px, tile_overlap_px, frame_chunk, regularisation
    )
    return _solve_tiles(solver, regularisation, signal, None).to(_out_dtype(frames))


def misr_with_average(
    frames: torch.Tensor,
    motion: MotionField,
    *,
    exposure: Exposure | None = None,
    factor: int = 2,
    regularisation: float = 0.25,
    tile_size_px: int | None = None,
    tile_overlap_px: int = 32,
    frame_chunk: int = 8,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`misr` and the motion-corrected, dose-weighted LR average ``(h, w)`` of the frames,
    both from one pass over the movie (every frame cut and transformed once).

    The average has the weights of :func:`~cryozssr.motion.averages.dose_weighted_average` and
    equals it on a whole frame (to float rounding); on tiles it is blended from the tiles'
    averages like the HR image, so it differs from the whole-frame one near tile seams by the
    periodic-tile error the HR image has too, and within the drift of the frame edges.
    """
    solver = _solver(
        frames, motion, exposure, factor, tile_size_px, tile_overlap_px, frame_chunk, regularisation
    )
    average = solver.blend(factor=1)
    image = _solve_tiles(solver, regularisation, None, average)
    return image.to(_out_dtype(frames)), average.image().to(_out_dtype(frames))


def _out_dtype(frames: torch.Tensor) -> torch.dtype:
    return frames.dtype if frames.is_floating_point() else torch.float32


def _solver(
    frames, motion, exposure, factor, tile_size_px, tile_overlap_px, frame_chunk, regularisation
):
    if regularisation < 0:
        raise ValueError(f"regularisation must be >= 0, got {regularisation}")
    check_movie(frames, motion, factor=factor, min_frames=2, method="misr")
    return TileSolver(
        frames,
        motion,
        exposure=exposure,
        factor=factor,
        tile_size_px=tile_size_px,
        tile_overlap_px=tile_overlap_px,
        frame_chunk=frame_chunk,
    )


def _solve_tiles(
    solver: TileSolver,
    regularisation: float,
    signal: RadialSpectrum | None,
    average: Blend | None,
) -> torch.Tensor:
    """The blended HR image of every tile's solve; each tile's LR average into ``average``."""
    out = solver.blend()
    for tile in solver.tiles:
        (sums,) = solver.sums(tile)
        if signal is None:
            out.add(tile, solver.tikhonov(tile, sums, regularisation=regularisation))
        else:
            out.add(tile, solver.mmse(tile, sums, signal))
        if average is not None:
            average.add(tile, solver.average(tile, sums))
    return out.image()


@dataclass(frozen=True)
class Tile:
    """A tile of the LR frame: rows ``y0 .. y0 + ly - 1``, columns ``x0 .. x0 + lx - 1``."""

    y0: int
    ly: int
    x0: int
    lx: int


class TileSolver:
    """The tiles of a movie, their alias sums and solves (:mod:`cryozssr.baselines._alias_solve`).

    Every frame of a tile is cut at the integer part of the shift at the tile centre, transformed
    once and added to the sums of its half (``split=True``: even and odd frames apart), so the
    explicit regime's three solves read and transform every frame once.
    """

    def __init__(
        self,
        frames: torch.Tensor,
        motion: MotionField,
        *,
        exposure: Exposure | None,
        factor: int,
        tile_size_px: int | None,
        tile_overlap_px: int,
        frame_chunk: int,
    ) -> None:
        t, h, w = frames.shape
        if tile_size_px is None:
            local = motion.local_shifts_px is not None
            tile_size_px = 128 if local else (1024 if max(h, w) <= 1024 else 512)
        if not 0 <= 2 * tile_overlap_px < tile_size_px:
            raise OptionError(
                f"tile overlap ({tile_overlap_px} px) must be below half the tile size"
                f" ({tile_size_px} px)"
            )
        self.frames, self.motion, self.exposure = frames, motion, exposure
        self.factor, self.overlap, self.frame_chunk = int(factor), tile_overlap_px, frame_chunk
        self.tiles = [
            Tile(y0, ly, x0, lx)
            for y0, ly in tile_starts(h, tile_size_px, tile_overlap_px)
            for x0, lx in tile_starts(w, tile_size_px, tile_overlap_px)
        ]
        self.doses = movie_doses(t, exposure, device=frames.device)
        self._grids: dict[tuple[int, int], AliasGrid] = {}
        self._filters: dict[tuple[int, int], DoseFilters] = {}
        self._grams: GramCache = {}

    def grid(self, tile: Tile) -> AliasGrid:
        key = (tile.ly, tile.lx)
        if key not in self._grids:
            self._grids[key] = alias_grid(
                tile.ly,
                tile.lx,
                factor=self.factor,
                exposure=self.exposure,
                device=self.frames.device,
            )
        return self._grids[key]

    def filters(self, tile: Tile) -> DoseFilters:
        """The frames' exposure filters on the tile's grid, kept when several tiles share it."""
        key = (tile.ly, tile.lx)
        if key not in self._filters:
            size = 8 * self.doses.numel() * (self.factor**2 + 1) * tile.ly * (tile.lx // 2 + 1)
            cache = len(self.tiles) > 1 and size <= FILTER_CACHE_BYTES
            self._filters[key] = DoseFilters(self.grid(tile), self.doses, cache=cache)
        return self._filters[key]

    def sums(self, tile: Tile, *, split: bool = False) -> list[AliasSums]:
        """The tile's alias sums over all frames, or ``[even, odd]`` with ``split``."""
        frames, dev = self.frames, self.frames.device
        t, h, w = frames.shape
        centre = torch.tensor(
            [[tile.y0 + (tile.ly - 1) / 2, tile.x0 + (tile.lx - 1) / 2]],
            device=self.motion.global_shifts_px.device,
        )
        s = self.motion.shifts_at(centre)[:, 0].to(dev, torch.float64)  # (t, 2)
        lo = torch.tensor([-tile.y0, -tile.x0], device=dev)
        hi = torch.tensor([h - tile.ly - tile.y0, w - tile.lx - tile.x0], device=dev)
        offset = torch.minimum(torch.maximum(s.round().long(), lo), hi)  # (t, 2) integer cut
        grid = self.grid(tile)
        filters = self.filters(tile)
        parts = [empty_sums(grid, device=dev) for _ in range(2 if split else 1)]
        whole = tile.ly == h and tile.lx == w and not bool(offset.any())
        ar_y = torch.arange(tile.ly, device=dev)
        ar_x = torch.arange(tile.lx, device=dev)
        for part, sums in enumerate(parts):
            step = len(parts)
            index = torch.arange(part, t, step, device=dev)
            for c0 in range(0, index.numel(), self.frame_chunk):
                idx = index[c0 : c0 + self.frame_chunk]
                if whole:
                    chunk = frames[idx]
                else:
                    rows = tile.y0 + offset[idx, 0, None] + ar_y
                    cols = tile.x0 + offset[idx, 1, None] + ar_x
                    chunk = frames[idx[:, None, None], rows[:, :, None], cols[:, None, :]]
                spectra = torch.fft.rfft2(chunk.to(torch.float32))
                accumulate(sums, spectra, s[idx] - offset[idx], idx.tolist(), grid, filters)
        return parts

    def tikhonov(self, tile: Tile, sums: AliasSums, *, regularisation: float) -> torch.Tensor:
        """The tile's Tikhonov estimate ``(f ly, f lx)`` (module docstring)."""
        cache, key = self._gram_cache(tile, sums)
        grid = self.grid(tile)
        return solve_tikhonov(sums, grid, regularisation=regularisation, cache=cache, key=key)

    def _gram_cache(self, tile: Tile, sums: AliasSums) -> tuple[GramCache | None, object]:
        """With global motion the Gram matrices depend on the frames only through their shifts
        modulo integers: tiles of one shape share them (``None`` with local motion or one tile)."""
        if self.motion.local_shifts_px is not None or len(self.tiles) == 1:
            return None, None
        fractional = (sums.shifts % 1.0 * 1e9).round().long() % 1_000_000_000
        return self._grams, (tile.ly, tile.lx, *sums.doses.tolist(), *fractional.flatten().tolist())

    def mmse(
        self,
        tile: Tile,
        sums: AliasSums,
        signal: RadialSpectrum,
        *,
        halves_difference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The tile's MMSE estimate under ``signal``, its noise measured from ``halves_difference``
        (even minus odd frames' average sums; ``None``: Poisson), rescaled per shell (module
        docstring)."""
        grid = self.grid(tile)
        spectrum = signal.for_grid(self.factor * max(grid.h, grid.w))
        f = self.factor
        power = [spectrum.at(grid.rad_hr[a, b]) for a in range(f) for b in range(f)]
        cache, key = self._gram_cache(tile, sums)
        return solve_mmse(
            sums, grid, power, halves_difference=halves_difference, cache=cache, key=key
        )

    def average(self, tile: Tile, sums: AliasSums) -> torch.Tensor:
        """The tile's motion-corrected, dose-weighted LR average ``(ly, lx)``."""
        return average_image(sums, self.grid(tile))

    def noise(self, tile: Tile, even: AliasSums, odd: AliasSums) -> torch.Tensor:
        """The tile's noise power per frame and LR coefficient, from its even and odd sums."""
        return noise_from_halves(even, odd, self.grid(tile))

    def blend(self, *, factor: int | None = None) -> Blend:
        """An empty blend of the tiles at ``factor`` (default: the solver's; 1: LR)."""
        _, h, w = self.frames.shape
        f = self.factor if factor is None else factor
        return Blend((h, w), f, self.overlap, device=self.frames.device)


class Blend:
    """Tiles blended with raised-cosine windows (:func:`_window`) into one HR image, float32."""

    def __init__(self, shape: tuple[int, int], factor: int, overlap: int, *, device) -> None:
        h, w = shape
        self.shape, self.f, self.overlap = shape, factor, overlap
        self.total = torch.zeros(factor * h, factor * w, dtype=torch.float32, device=device)
        self.weight_y = torch.zeros(factor * h, dtype=torch.float64, device=device)
        self.weight_x = torch.zeros(factor * w, dtype=torch.float64, device=device)
        self._seen_y: set[int] = set()
        self._seen_x: set[int] = set()
        self._spent = False

    def add(self, tile: Tile, image: torch.Tensor) -> None:
        f, (h, w), dev = self.f, self.shape, self.total.device
        win_y = _window(tile.y0, tile.ly, h, self.overlap * f, f, device=dev)
        win_x = _window(tile.x0, tile.lx, w, self.overlap * f, f, device=dev)
        ys, xs = (
            slice(f * tile.y0, f * (tile.y0 + tile.ly)),
            slice(f * tile.x0, f * (tile.x0 + tile.lx)),
        )
        self.total[ys, xs] += (win_y[:, None] * win_x[None, :] * image).to(torch.float32)
        if tile.y0 not in self._seen_y:  # the tiles form a grid: the weights are separable
            self._seen_y.add(tile.y0)
            self.weight_y[ys] += win_y
        if tile.x0 not in self._seen_x:
            self._seen_x.add(tile.x0)
            self.weight_x[xs] += win_x

    def image(self) -> torch.Tensor:
        """The blended image (the sum divided by the weights in place, a block of rows at a time:
        no full-size weight table); the blend is spent."""
        if self._spent:
            raise RuntimeError("Blend.image() was already taken")
        self._spent = True
        rows = max(1, BLEND_BLOCK_ELEMENTS // self.total.shape[1])
        for r0 in range(0, self.total.shape[0], rows):
            r1 = r0 + rows
            weight = self.weight_y[r0:r1, None] * self.weight_x[None, :]
            self.total[r0:r1] /= weight.to(torch.float32)
        return self.total


def _window(
    start: int, length: int, n: int, overlap_hr: int, f: int, *, device=None
) -> torch.Tensor:
    """Blending weights ``(f length,)`` on HR pixels for a tile overlapping its neighbours by
    ``overlap_hr``: zero on the outer quarter of the overlap (where the periodic tile model is
    wrong), a raised cosine over the middle half (:func:`cryozssr.tiling.blend_window`)."""
    margin = overlap_hr // 4
    ramp = max(overlap_hr - 2 * margin, 1)
    rise, fall = start > 0, start + length < n
    return blend_window(f * length, margin=margin, ramp=ramp, rise=rise, fall=fall, device=device)
