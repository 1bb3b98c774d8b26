r"""One model of local motion fitted to all patches' residual trajectories at once.

Each patch ``p`` gives a raw residual trajectory ``r_p(t)`` (after the global motion, with a free
constant, noisy). The model, per axis,

.. math::

   r_p(t) = a_p + \sum_{k=1}^{K} A_{pk}\, u_k(t), \qquad
   u_k(t) = \sum_{d=1}^{D} W_{dk}\, \tau^d, \quad \tau = t / (T - 1),

has ``K`` temporal components ``u_k`` *shared by all patches* (smooth: polynomials of degree
``D`` without a constant, so the local shift of frame 0 is zero), each patch moving along them with
its own amplitudes ``A_p`` (``K`` per axis) and a free offset ``a_p`` (the gauge). The components are
the leading singular vectors of the patches' polynomial fits (each patch weighted by its measured
noise: a patch with too little signal counts for little), so their shape is learnt from the movie,
not assumed: beam-induced motion has a time course shared across the field of view (fast at first,
then slowing) with a direction and amplitude that vary from region to region. ``K = D`` is every
patch's own polynomial fit; ``K = 1`` pools the time course over all patches and leaves two
numbers per patch. (The project's simulator draws its local field as one time profile times a
spatial field, i.e. ``K = 1`` exactly; the rank is chosen from the data below, so a movie whose
regions follow different time courses gets a higher rank.)

The per-patch noise variance comes from the second differences of the raw trajectory (white noise
of variance ``s^2`` gives second differences of variance ``6 s^2``; smooth motion barely
contributes). Outlier patches (their own fit far, in robust deviations and by more than a pixel,
from a smooth polynomial over the grid of degree ``space_degree``) get that smooth part instead of
their own amplitudes.

The rank is chosen by cross-validation between the even and the odd frames (fit on one half,
predict the other half's raw trajectories, noise-weighted squared error): ``K = 0`` is the global
motion alone. The test statistic is the held-out gain over global motion of the fit scaled by the
share of it that predicts the held-out frames (:func:`_best_model`), so a fit's own noise does not
count against it. The model is *accepted* only if that gain exceeds every gain the same procedure
(noise estimate, outliers and rank included) finds on the movie with its frames in random order,
49 of them (a permutation test at 2%: the shuffled frames keep the patches' noise and destroy
smooth motion, so their gains are what noise alone achieves). Otherwise there is no local motion
that the patches can see, and global motion is kept. The model applied is the least-squares fit
from all frames, *not* scaled: scaling it by the cross-validated share (James-Stein-like), the
better estimate of the trajectories in squared error, cost every benchmark movie with a strong
local field 0.0005-0.0009 in FRC past the Nyquist.

The arrays are tiny (a few dozen patches by tens of frames), so the fit runs in NumPy on the CPU:
torch's per-operation overhead, and its threads' contention on a busy node, made the thousands of
small solves of the permutation test 50 times slower.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class LocalFit:
    """``shifts_px``: ``(gh, gw, t, 2)`` the model at the patch centres (zero at ``t = 0``).

    ``accepted``: whether the held-out gain beats the permuted-frames null; ``rank``: the number
    of shared temporal components (``0``: none); ``shrink``: the share of the half-frame fits
    that predicts held-out frames (the scale of the test statistic, :func:`_best_model`; not
    applied to the model); ``gain``/``null_gain``: the held-out gain over
    global motion and the largest gain on permuted frames (noise-weighted squared pixels);
    ``outliers``: patches given the smooth part; ``noise_px``: ``(gh, gw)`` per-patch noise per
    frame and axis. Tensors are float64 on the device of the input.
    """

    shifts_px: torch.Tensor
    accepted: bool
    rank: int
    gain: float
    null_gain: float
    outliers: int
    noise_px: torch.Tensor
    shrink: float = 0.0


def _spatial_terms(gh: int, gw: int, degree: int) -> np.ndarray:
    """``(gh * gw, m)``: the monomials ``y^i x^j`` (``i + j <= degree``) at the patch centres."""
    yy = (np.arange(gh) + 0.5) / gh * 2 - 1
    xx = (np.arange(gw) + 0.5) / gw * 2 - 1
    y, x = (a.ravel() for a in np.meshgrid(yy, xx, indexing="ij"))
    max_y = min(degree, gh - 1)  # a single row of patches cannot see a slope in y
    max_x = min(degree, gw - 1)
    terms = [y**i * x**j for i in range(max_y + 1) for j in range(max_x + 1) if i + j <= degree]
    return np.stack(terms, axis=-1)


@dataclass(frozen=True)
class _Data:
    """What every fit shares: centred trajectories ``r (p, t, 2)``, noise ``(p,)``, designs."""

    r: np.ndarray
    noise_var: np.ndarray
    design: np.ndarray  # (t, D): tau^1 .. tau^D (zero at t = 0)
    spatial: np.ndarray  # (p, m)
    use: np.ndarray  # (p,) bool: not an outlier

    @property
    def weight(self) -> np.ndarray:
        return self.use / self.noise_var


def _smooth_part(data: _Data, values: np.ndarray) -> np.ndarray:
    """The noise-weighted least-squares polynomial over the grid of per-patch ``values (p, ...)``."""
    w = data.weight
    flat = values.reshape(len(values), -1)
    beta = np.linalg.lstsq(
        data.spatial.T @ (data.spatial * w[:, None]),
        data.spatial.T @ (flat * w[:, None]),
        rcond=None,
    )[0]
    return (data.spatial @ beta).reshape(values.shape)


def _fit(data: _Data, rows: np.ndarray, rank: int) -> np.ndarray:
    """Polynomial coefficients ``(p, D, 2)`` of the rank-``rank`` model fitted on frames ``rows``."""
    p, d = data.r.shape[0], data.design.shape[1]
    if rank == 0:
        return np.zeros((p, d, 2))
    xc = data.design[rows] - data.design[rows].mean(axis=0)
    y = data.r[:, rows] - data.r[:, rows].mean(axis=1, keepdims=True)
    pinv = np.linalg.pinv(xc)  # (D, n)
    coef = np.einsum("kt,ptc->pkc", pinv, y)
    fitted = np.einsum("tk,pkc->ptc", xc, coef) * np.sqrt(data.weight)[:, None, None]
    u = np.linalg.svd(fitted.transpose(1, 0, 2).reshape(len(rows), -1), full_matrices=False)[0]
    u = u[:, :rank]  # (n, K) shared temporal components, orthonormal
    amp = np.einsum("tk,ptc->pkc", u, y)  # (p, K, 2)
    if not data.use.all():  # outliers: the smooth part
        amp = np.where(data.use[:, None, None], amp, _smooth_part(data, amp))
    return np.einsum("dk,pkc->pdc", pinv @ u, amp)


@dataclass(frozen=True)
class _Choice:
    """The rank chosen by cross-validation, the share of its held-out fit that is signal, its gain."""

    rank: int
    shrink: float
    gain: float


def _held_out_terms(data: _Data, rank: int) -> tuple[float, float]:
    """Even/odd cross-validation sums of the rank-``rank`` model as a predictor of the held-out
    half's trajectories: ``(sum w <held, pred>, sum w |pred|^2)``, noise-weighted."""
    t = data.r.shape[1]
    halves = (np.arange(0, t, 2), np.arange(1, t, 2))
    cross = power = 0.0
    for train, test in ((halves[0], halves[1]), (halves[1], halves[0])):
        pred = np.einsum("tk,pkc->ptc", data.design[test], _fit(data, train, rank))
        pred = pred - pred.mean(axis=1, keepdims=True)
        held = data.r[:, test] - data.r[:, test].mean(axis=1, keepdims=True)
        cross += float(((held * pred).sum(axis=(1, 2)) * data.weight).sum())
        power += float((np.square(pred).sum(axis=(1, 2)) * data.weight).sum())
    return cross, power


def _best_model(data: _Data) -> _Choice:
    """The rank whose half-frame fits explain most of the held-out trajectories.

    Predicting the held-out trajectories ``y`` by ``c * pred`` lowers their noise-weighted squared
    error by ``2 c <y, pred> - c^2 |pred|^2``, largest at ``c = <y, pred> / |pred|^2`` (kept in
    ``[0, 1]``: the share of the fit that is signal rather than the patches' noise). That largest
    gain is the test statistic: a fit's own noise, which the scale absorbs, does not count against
    it, so a field that is real but weak against the patches' noise is detected where the
    unscaled fit (``c = 1``) would predict worse than global motion.
    """
    best = _Choice(0, 0.0, 0.0)
    for rank in range(1, data.design.shape[1] + 1):
        cross, power = _held_out_terms(data, rank)
        if cross <= 0 or power <= 0:
            continue
        shrink = min(cross / power, 1.0)
        gain = 2 * shrink * cross - shrink**2 * power
        if gain > best.gain:
            best = _Choice(rank, shrink, gain)
    return best


def _outliers(data: _Data, *, outlier_z: float, min_outlier_px: float) -> np.ndarray:
    """``use (p,)``: each patch's own polynomial fit against the smooth part over the grid."""
    centred = data.design - data.design.mean(axis=0)
    own = np.einsum("kt,ptc->pkc", np.linalg.pinv(centred), data.r)
    use = data.use
    for _ in range(3):
        smooth = _smooth_part(replace(data, use=use), own)
        apart = np.einsum("tk,pkc->ptc", centred, own - smooth)  # in trajectory space
        z = np.sqrt(np.square(apart).sum(axis=-1).mean(axis=-1))  # RMS px over the frames
        centre = float(np.median(z[use]))
        spread = float(np.median(np.abs(z[use] - centre))) * 1.4826
        limit = max(centre + outlier_z * max(spread, 0.25 * centre), min_outlier_px)
        new_use = z <= limit
        if np.array_equal(new_use, use) or int(new_use.sum()) <= data.spatial.shape[1]:
            break
        use = new_use
    return use


def fit_local_model(
    raw_px: torch.Tensor,
    *,
    time_degree: int = 4,
    space_degree: int = 2,
    outlier_z: float = 4.0,
    min_outlier_px: float = 1.0,
    n_permutations: int = 49,
) -> LocalFit:
    """Fit the module's model to ``(gh, gw, t, 2)`` raw residual trajectories (pixels).

    A patch is an outlier when its own fit departs from the smooth part by more than
    ``outlier_z`` robust deviations of all patches' departures *and* by more than
    ``min_outlier_px`` RMS (a patch within a pixel of its neighbours' smooth field is local motion,
    not a runaway). Deterministic (the permutations come from a fixed seed). Needs ``t >= 8``;
    with fewer frames nothing is accepted.
    """
    gh, gw, t, _ = raw_px.shape
    n_patch = gh * gw
    r = raw_px.detach().to("cpu", torch.float64).numpy().reshape(n_patch, t, 2)
    r = r - r.mean(axis=1, keepdims=True)  # the free offset a_p
    degree = max(1, min(time_degree, t // 2 - 2))  # each half keeps more frames than terms
    noise_var = _noise_var(r)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(raw_px.device)

    noise_px = tensor(np.sqrt(noise_var).reshape(gh, gw))
    if t < 8:
        return LocalFit(tensor(np.zeros((gh, gw, t, 2))), False, 0, 0.0, 0.0, 0, noise_px)
    tau = np.arange(t) / (t - 1)
    design = tau[:, None] ** np.arange(1, degree + 1)
    spatial = _spatial_terms(gh, gw, space_degree)

    def prepare(trajectories: np.ndarray) -> _Data:
        """The data as the fit sees them: noise and outliers measured on ``trajectories``."""
        data = _Data(
            trajectories, _noise_var(trajectories), design, spatial, np.ones(n_patch, bool)
        )
        use = _outliers(data, outlier_z=outlier_z, min_outlier_px=min_outlier_px)
        return replace(data, use=use)

    # the statistic (noise, outliers and the choice of model included) is computed the same way
    # on the frames in order and in random orders, so under no local motion all are exchangeable
    data = prepare(r)
    choice = _best_model(data)
    rng = np.random.default_rng(0)  # the same permutations everywhere
    null = 0.0
    for _ in range(n_permutations):
        null = max(null, _best_model(prepare(r[:, rng.permutation(t)])).gain)
    accepted = choice.gain > null
    shifts = np.zeros((n_patch, t, 2))
    if accepted:  # the least-squares fit from all frames, not scaled (module docstring)
        shifts = np.einsum("tk,pkc->ptc", design, _fit(data, np.arange(t), choice.rank))
    return LocalFit(
        shifts_px=tensor(shifts.reshape(gh, gw, t, 2)),
        accepted=accepted,
        rank=choice.rank if accepted else 0,
        shrink=choice.shrink if accepted else 0.0,
        gain=choice.gain,
        null_gain=null,
        outliers=int((~data.use).sum()),
        noise_px=noise_px,
    )


def _noise_var(r: np.ndarray) -> np.ndarray:
    """Per-patch noise variance per frame and axis from second differences of ``r (p, t, 2)``
    (white noise of variance ``s^2`` gives second differences of variance ``6 s^2``)."""
    if r.shape[1] < 3:
        return np.ones(r.shape[0])
    d2 = r[:, 2:] - 2 * r[:, 1:-1] + r[:, :-2]
    noise_var = np.square(d2).mean(axis=(1, 2)) / 6
    return np.maximum(noise_var, max(float(np.median(noise_var)) * 1e-2, 1e-8))
