r"""A no-truth score of detail past the LR Nyquist: predict held-out frames' aliasing (pure tensors).

What is judged is the output a method makes from (nearly) all the frames. Cross-validation in the
data domain, leave-k-frames-out: the movie's frames are split into ``K`` folds (fold ``j`` holds out
frames ``j, j + K, j + 2K, ...``: interleaved, so every fit spans the whole exposure, early and late
frames alike). For each fold the method is run as it runs on the movie (its motion, each frame's
own dose: :meth:`cryozssr.dose.Exposure.subset`) on all frames *but* the held-out ones, and its 2x
image ``X`` is pushed through the forward model of every held-out frame (its measured sub-pixel
shift, its exposure filter, the 2x2 pixel aperture; the model of :mod:`cryozssr.baselines.misr`):

.. math::

   Y_t(k) = \sum_{ab} A_{t,ab}(k) X(K_{ab}) + N_t(k),

with ``K_ab`` the 4 HR frequencies that fold onto the LR frequency ``k``; ``ab = 00`` is the one
inside the LR band (the square ``|K_y|, |K_x| <`` LR Nyquist), the other three lie past the
Nyquist. Only those three enter the prediction ``P_t = sum_{ab != 00} A_{t,ab} X(K_ab)``. Each fit
uses ``(K - 1) / K`` of the frames (75% with the default ``K = 4``; the older half-set score,
``K = 2``, judged outputs from half the frames, and a method that gains more from more frames was
ranked by its half-frame output). A fold needs at least 5 held-out frames (4 alias unknowns per
frequency, and noise), so ``K <= t / 5``; more folds bring the fits closer to the full set at a cost
of ``K`` method runs on ``(K - 1) / K`` of the frames (about ``K - 1`` runs of the movie). The
price of small held-out sets is the noise of the bound below (its noise estimate has ``n - 4``
dimensions per frequency, 1 for 5 frames): "what the frames allow" is significant on fewer movies.

At every ``k`` the held-out frames form a vector over ``t``. Everything along the in-band
direction ``u_t = A_{t,00}`` is projected out (``Pi``), in the frames and in the prediction, so
the in-band content and any error of the method there (blur, attenuation) cannot count: what is
left of the frames is the aliased signal, which changes with each frame's sub-pixel shift, plus
their own noise. The noise is independent of ``X`` (other frames), so, summed over folds,

* ``C = Re <Pi P, Pi Y>`` (over held-out frames and frequencies) is an unbiased estimate of how
  much of the frames' aliased signal ``X``'s past-Nyquist detail predicts;
* the noise power ``sigma^2`` per frequency is measured in the part of the held-out frames
  orthogonal to all 4 alias directions (``n - 4`` dimensions: pure noise in the model), so the
  aliased signal power they hold is ``S = |Pi Y|^2 - 3 sigma^2``, ``Pi Y`` the frames' part in
  the 3 alias directions (where ``Pi P`` lies). The held-out frames' own noise, not the fit
  frames' (more dimensions): on the real-texture movie two frame sets' noise differs by 0.5%, a
  quarter of the aliased signal's share (~2%);
* the score is the noise-debiased correlation ``rho = C / sqrt(|Pi P|^2 S)``: 1 when ``X``'s
  detail past the Nyquist is the specimen's (up to a gain), 0 when it is unrelated to it.
  ``rho^2`` is the share of the held-out frames' aliased signal power it explains;
  ``z = C / sqrt(sigma^2 |Pi P|^2)`` is its significance (``z ~ N(0, 1)`` when nothing is recovered).

The truth itself scores ``rho ~ 1``, but no estimate made from the fit frames can: their noise
limits it. The bound is the Wiener limit *for the fit's size*: at each frequency the fit frames
(all but the held-out ones) hold aliased signal power ``S_fit`` against noise ``3 sigma_fit^2`` in
the 3-dimensional subspace the aliases span, so the best linear estimate (Gaussian prior:
independent frequencies, no knowledge of the specimen) explains at most
``w = S_fit / (S_fit + 3 sigma_fit^2)`` of the aliased signal; pooled over the band and the folds,
``W = sum w S_held`` and ``rho_max^2 = W / sum S_held``. ``S_fit`` and ``sigma_fit^2`` are
measured on the fit frames themselves (independent of the held-out frames, so ``W`` is unbiased),
averaged over a small window of frequencies (CTF rings vary the signal within a shell). In ``W``
the held-out signal ``S_held = |Pi Y|^2 - 3 sigma^2`` is debiased by the held-out frames' own
per-frame noise averaged over the same 5x5 window: 25x the ``n - 4`` dimensions (1 for 5 frames)
of one frequency, so ``W``'s variance per frequency is ``2 (3 + 9 / (25 (n - 4))) sigma^4``
(6.7 ``sigma^4``) instead of ``2 (3 + 9 / (n - 4)) sigma^4`` (24), at the price of the noise's
variation within the window (white counting noise: none). Any other frames' noise estimate is not
independent of the fit frames' ``w`` (all frames include the fit frames): it biased ``W`` by +5 SD
on a noise-only movie. ``rho^2 / rho_max^2 = C |C| / (|Pi P|^2 W)`` (the
held-out signal cancels) is "what the frames allow" in the report: 100% for a Wiener-optimal
estimate from the fit frames, more only with prior knowledge of the specimen (a network's, or the
truth's). It is given where ``W`` is significant (``bound_z >= 3``).

**Beyond interpolation (the verdict).** Where a specimen's detail past the Nyquist is partly a
mirror of its in-band content, an interpolation of the fit frames' average predicts part of the
held-out frames' aliasing too, and its raw ``z`` can be large (on one real-texture movie bilinear
scored ``z`` 14.8, and the truth agrees its past-Nyquist content correlates with the specimen).
What a user asks is whether a method recovered detail an interpolation of the same frames cannot
give. Each fold's baseline is the bilinear 2x of the dose-weighted average of its fit frames
(:func:`interpolation_baselines`, exactly what ``--method bilinear`` makes of them), and the
verdict asks that the method's prediction correlate with the held-out aliased signal better than
*both* baselines an interpolation offers: predicting nothing (``rho = 0``: the raw ``z``) and the
bilinear's (``rho_base``). The second is a paired test: with both predictions normalised to unit
power over the band (a correlation does not depend on the scale), ``rho - rho_base =
<P^ - B^, Pi Y> / sqrt(S)`` and its noise is the held-out frames' own along ``P^ - B^``, so
``z_pair = <P^ - B^, Y> / sqrt(sum sigma^2 |P^ - B^|^2) ~ N(0, 1)`` when the two correlate
equally. ``z_beyond = min(z, z_pair)``, ``rho_beyond = rho - max(rho_base, 0)``, and the rule
(:func:`is_recovered`, thresholds as before, not tuned): **"yes" needs ``z_beyond >= 4`` and, where
``rho`` is measurable, ``rho^2 - max(rho_base, 0)^2 >= 1%``** (at least 1% more of the held-out
aliased signal explained). Bilinear itself scores ``z_pair = 0`` by construction; the raw ``rho``,
``z`` stay in the record. (A per-frequency projection of the baseline's direction was tried and
rejected: at most frequencies one alias dominates, so the baseline's direction *is* the aliased
signal's and the projection removed 60-85% of a real reconstruction's, and the truth's, score.)

An interpolated image's past-Nyquist content is a fixed mirror of its in-band content: it cannot
follow the frame-to-frame changes of the aliasing, and scores ~0. Frequencies are binned by the LR
radius ``|k|``: LR ``|k|`` in ``[1/3, 1/2]`` cycles/LR px receives the aliases at 1-1.33x the LR
Nyquist, ``[1/6, 1/3]`` those at 1.33-1.67x (along the axes), as
:data:`cryozssr.evaluate.frc.FRC_BANDS` does on the HR grid.

The prediction is made on the whole (periodic) grid, exactly, then every held-out frame and its
prediction are cut at the integer part of the frame's shift (as misr's tiles are) and given the
same soft edge, so the periodic model holds up to the sub-pixel remainder; frequencies next to the
LR Nyquist (a few bins) and on the axes are skipped. Where the movie's motion has a local part,
each held-out frame's prediction is the image moved by it as well (a tiled Fourier warp,
:func:`cryozssr.motion.warp.tiled_shift`, of the exposure-filtered past-Nyquist detail, cut past
the Nyquist again) before the global shift and the aperture; the in-band direction, the noise
and the bound keep the global model (the local part is a fraction of a pixel). A local
displacement of ``d`` HR px turns an alias at ``K`` cycles/HR px by ``2 pi K d``: ignored, it
scrambles the aliasing the score predicts (the truth's ``rho`` 0.64 instead of 0.95 in
``tests/test_score.py``; a Falcon 4 movie's truth ``z`` 6 instead of 13 given the simulator's
field). The warp (single precision) costs about 4 HR FFTs per held-out frame and method: one
method's score of a 384 px movie takes 6-7 s with it, ~3 s without (the warp of one 2048 px
prediction, a K3 movie's scored square, 1.4 s on 2 threads).
Known limit: in-band content that fades from frame to frame otherwise than the exposure filter says
(radiation damage on the simulated sets) lands mostly outside the alias directions and inflates
``sigma^2``: there the measured aliased signal ``S`` is biased low (negative), so ``rho`` and the
bound are not given, while ``z`` (a ratio to ``sigma``) is only made conservative.
Cost: the ``K`` method runs on ``(K - 1) / K`` of the frames, plus the frames' side
(:func:`measure_frames`, once per movie: ``K`` measurements of all the frames) and each method's
predictions (``bench/bench_score.py`` states them); the baselines' predictions are made once per
movie and kept (as much memory again as the frames' spectra).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from cryozssr.dose import Exposure
from cryozssr.evaluate._alias_folds import (
    LOCAL_TILE_HR_PX,
    MIN_HELD_OUT,
    FrameSide,
    measure_frames,
    prediction_sums,
)
from cryozssr.evaluate._alias_pairs import (
    MIN_PAIR_MOVIES,
    PAIR_LEVEL,
    MethodComparison,
    compare_methods,
)
from cryozssr.evaluate._alias_result import (
    FRACTION_RECOVERED,
    HEADLINE_BAND,
    SCORE_BANDS,
    Z_BOUND,
    Z_RECOVERED,
    Z_WEAK,
    AliasScore,
    is_recovered,
    pooled_z,
    summarise,
)
from cryozssr.motion.field import MotionField

#: Folds of the cross-validation: each fit uses 3/4 of the frames.
DEFAULT_FOLDS = 4
#: Fewest frames the score works with (2 folds of 5).
MIN_FRAMES = 10
#: Largest side (LR px) of the region the score measures: the central square of a larger movie.
#: The frames' side keeps ~24 bytes per LR pixel and frame (their spectra, each fold's in-band
#: directions and baseline prediction): 22 GB for a 40-frame K3 movie (5760 x 4092), 1 GB in a
#: 1024 px square. Its ``z`` grows as the square root of the pixels: a 1024 px square has twice a
#: 512 px movie's.
MAX_REGION_LR_PX = 1024
#: LR px of the movie kept around that square when the method's fold runs are made on it rather
#: than on the whole movie (:func:`score_box`): the method's own treatment of the image's edges
#: and the frames' drift stay outside the square.
SCORE_MARGIN_LR_PX = 64

__all__ = [
    "DEFAULT_FOLDS",
    "FRACTION_RECOVERED",
    "HEADLINE_BAND",
    "MAX_REGION_LR_PX",
    "MIN_FRAMES",
    "MIN_PAIR_MOVIES",
    "PAIR_LEVEL",
    "SCORE_BANDS",
    "SCORE_MARGIN_LR_PX",
    "Z_BOUND",
    "Z_RECOVERED",
    "Z_WEAK",
    "AliasScore",
    "FrameSide",
    "MethodComparison",
    "alias_score",
    "check_folds",
    "compare_methods",
    "fit_frames",
    "interpolation_baselines",
    "is_recovered",
    "local_tile_shifts",
    "measure_frames",
    "plan_folds",
    "pooled_z",
    "score_box",
    "score_record",
    "score_region",
]


def plan_folds(n_frames: int, *, n_folds: int = DEFAULT_FOLDS) -> list[list[int]]:
    """The held-out frames of each fold: ``j, j + K, j + 2K, ...`` for ``j < K``.

    ``K = min(n_folds, n_frames // 5)``: at least 5 held-out frames per fold (4 alias unknowns
    per frequency, and noise); a movie with fewer frames than ``5 n_folds`` gets fewer folds
    (:func:`check_folds` is the strict form for a user's option). Needs 10 frames.
    """
    if n_folds < 2:
        raise ValueError(f"the alias score needs at least 2 folds, got {n_folds}")
    if n_frames < MIN_FRAMES:
        raise ValueError(f"the alias score needs at least {MIN_FRAMES} frames, got {n_frames}")
    k = min(n_folds, n_frames // MIN_HELD_OUT)
    return [list(range(j, n_frames, k)) for j in range(k)]


def check_folds(n_folds: int, n_frames: int | None = None) -> None:
    """``ValueError`` (one line) unless ``n_folds`` folds can score a movie of ``n_frames``."""
    if n_folds < 2:
        raise ValueError(f"the alias score needs at least 2 folds, got {n_folds}")
    if n_frames is not None and n_folds > n_frames // MIN_HELD_OUT:
        raise ValueError(
            f"{n_folds} folds need at least {MIN_HELD_OUT * n_folds} frames ({MIN_HELD_OUT} held"
            f" out per fold); the movie has {n_frames}: use at most {n_frames // MIN_HELD_OUT}"
        )


def interpolation_baselines(
    frames: torch.Tensor,
    motion: MotionField,
    held_out: Sequence[Sequence[int]],
    *,
    exposure: Exposure | None = None,
) -> Iterable[torch.Tensor]:
    """Per fold, the baseline every method is judged against: the bilinear 2x interpolation of
    the dose-weighted average of the fold's fit frames (``cryozssr run --method bilinear`` on
    them). A generator: one image in memory at a time."""
    from cryozssr.baselines.interpolate import upsample
    from cryozssr.motion.averages import dose_weighted_average

    if exposure is None:  # no dose weighting; the pixel size does not enter
        exposure = Exposure(pixel_size_angstrom=1.0, dose_per_frame_e_per_a2=None)
    for held in held_out:
        fit = fit_frames(frames.shape[0], held)
        average = dose_weighted_average(
            frames[fit], motion.select(fit), exposure=exposure.subset(fit)
        )
        yield upsample(average, method="bilinear", factor=2)


def fit_frames(n_frames: int, held_out: Sequence[int]) -> list[int]:
    """The frames a fold's fit is made from: all but ``held_out``."""
    held = set(int(i) for i in held_out)
    return [i for i in range(n_frames) if i not in held]


def alias_score(side: FrameSide, fits: Iterable[torch.Tensor]) -> AliasScore:
    """Score a method's fold images ``fits`` on the frames measured in ``side``.

    ``side``: :func:`measure_frames` of the ``(t, h, w)`` LR frames, their shifts ``(t, 2)`` (the
    specimen position in frame ``t`` relative to frame 0, LR px, as
    :class:`~cryozssr.motion.field.MotionField`), the folds' held-out frames (:func:`plan_folds`)
    and, for the verdict, the folds' baselines (:func:`interpolation_baselines`).
    ``fits``: per fold, the method's ``(2h, 2w)`` image from all frames but the fold's held-out
    ones, at the frame-0 position, in counts per HR pixel per frame; any iterable (a generator
    keeps one image in memory at a time). ``side`` serves any number of methods.
    """
    sums = prediction_sums(side, fits).cpu()
    return summarise(
        sums,
        n_folds=len(side.folds),
        n_fit=min(len(f.fit) for f in side.folds),
        beyond=side.folds[0].base is not None,
    )


def local_tile_shifts(motion: MotionField, region: Sequence[int]) -> torch.Tensor | None:
    """The local part of ``motion`` (beyond its global shift) at the tile centres of the 2x grid
    of an LR ``region`` ``[y0, x0, h, w]``: ``(t, ny, nx, 2)`` in HR px, ``None`` without local
    motion (:attr:`cryozssr.evaluate._alias_folds.FrameSide.local_hr_px`)."""
    from cryozssr.motion.warp import tile_centres

    if motion.local_shifts_px is None:
        return None
    y0, x0, h, w = region
    cy, cx = tile_centres((2 * h, 2 * w), LOCAL_TILE_HR_PX)
    yy, xx = torch.meshgrid(y0 + (cy + 0.5) / 2 - 0.5, x0 + (cx + 0.5) / 2 - 0.5, indexing="ij")
    yx = torch.stack([yy.flatten(), xx.flatten()], dim=-1).to(motion.local_shifts_px.device)
    local = motion.shifts_at(yx) - motion.global_shifts_px[:, None, :]
    return 2 * local.reshape(motion.n_frames, len(cy), len(cx), 2).double()


def score_record(
    frames: torch.Tensor,
    motion: MotionField | torch.Tensor,
    *,
    fits: Iterable[torch.Tensor],
    held_out: Sequence[Sequence[int]],
    exposure: Exposure | None = None,
    baselines: Iterable[torch.Tensor] | None = None,
    region: Sequence[int] | None = None,
    origin_lr_px: Sequence[int] = (0, 0),
) -> dict:
    """:func:`alias_score` as a run record's JSON entry; a movie it cannot score gets ``error``.

    ``motion``: the movie's :class:`~cryozssr.motion.field.MotionField` (its local part moves
    each held-out frame's prediction), or its global shifts ``(t, 2)`` alone.
    A movie larger than :data:`MAX_REGION_LR_PX` is scored on its central square (the frames,
    and the fits and baselines on the same region at 2x): ``region_lr_px`` in the record,
    ``[y0, x0, h, w]`` on the LR grid. ``frames`` may be a box cut from the movie around it
    (:func:`score_box`): ``region`` is then the square inside ``frames`` and ``origin_lr_px`` the
    box's corner in the movie, which the record's ``region_lr_px`` is given in.
    """
    region = score_region(tuple(frames.shape[-2:])) if region is None else list(region)
    y0, x0, h, w = region
    field = motion if isinstance(motion, MotionField) else None
    try:
        side = measure_frames(
            frames[:, y0 : y0 + h, x0 : x0 + w],
            motion if field is None else field.global_shifts_px,
            held_out=held_out,
            exposure=exposure,
            baselines=None if baselines is None else _cropped(baselines, region),
            local_hr_px=None if field is None else local_tile_shifts(field, region),
        )
        record = alias_score(side, _cropped(fits, region)).to_dict()
    except (ValueError, RuntimeError) as exc:  # an optional figure must not fail the movie
        return {"error": str(exc), "verdict": f"not scored: {exc}"}
    return {**record, "region_lr_px": [y0 + origin_lr_px[0], x0 + origin_lr_px[1], h, w]}


def score_region(shape: tuple[int, int], *, max_px: int | None = None) -> list[int]:
    """``[y0, x0, h, w]``: the central region of an LR ``shape`` the score measures, at most
    ``max_px`` (default :data:`MAX_REGION_LR_PX`) on a side; the fits are cut at twice it."""
    limit = MAX_REGION_LR_PX if max_px is None else max_px
    h, w = (min(int(n), limit) for n in shape)
    return [(int(shape[0]) - h) // 2, (int(shape[1]) - w) // 2, h, w]


def score_box(
    shape: tuple[int, int], *, margin_px: int | None = None
) -> tuple[list[int], list[int]]:
    """``(box, region)``: the part of an LR movie of ``shape`` the method's fold runs need, the
    score's square (:func:`score_region`) and ``margin_px`` (default :data:`SCORE_MARGIN_LR_PX`)
    around it within the movie, both ``[y0, x0, h, w]``: ``box`` in the movie, ``region`` in the
    box. A movie no larger than the square is its own box."""
    margin = SCORE_MARGIN_LR_PX if margin_px is None else margin_px
    y0, x0, h, w = score_region(shape)
    by, bx = max(0, y0 - margin), max(0, x0 - margin)
    bh, bw = min(int(shape[0]), y0 + h + margin) - by, min(int(shape[1]), x0 + w + margin) - bx
    return [by, bx, bh, bw], [y0 - by, x0 - bx, h, w]


def _cropped(images: Iterable[torch.Tensor], region: Sequence[int]) -> Iterable[torch.Tensor]:
    """``(2h, 2w)`` images cut to the 2x of an LR ``region`` (one at a time, as they come)."""
    y0, x0, h, w = region
    for image in images:
        yield image[..., 2 * y0 : 2 * (y0 + h), 2 * x0 : 2 * (x0 + w)]
