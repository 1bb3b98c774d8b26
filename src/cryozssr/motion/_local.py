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
motion alone. The model is *accepted* only if its held-out gain over ``K = 0`` exceeds every gain
the same procedure finds on the movie with its frames in random order (a permutation test: the
shuffled frames keep the patches' noise and destroy smooth motion, so their gains are what noise
alone achieves). Otherwise there is no local motion that the patches can see, and global motion is
kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LocalFit:
    """``shifts_px``: ``(gh, gw, t, 2)`` the model at the patch centres (zero at ``t = 0``).

    ``accepted``: whether the held-out gain beats the permuted-frames null; ``rank``: the number
    of shared temporal components chosen (``0``: none); ``gain``/``null_gain``: the held-out
    gain over global motion and the largest gain on permuted frames (noise-weighted squared
    pixels); ``outliers``: patches given the smooth part; ``noise_px``: ``(gh, gw)`` per-patch
    noise per frame and axis.
    """

    shifts_px: torch.Tensor
    accepted: bool
    rank: int
    gain: float
    null_gain: float
    outliers: int
    noise_px: torch.Tensor


def _spatial_terms(gh: int, gw: int, degree: int, *, device) -> torch.Tensor:
    """``(gh * gw, m)``: the monomials ``y^i x^j`` (``i + j <= degree``) at the patch centres."""
    yy = (torch.arange(gh, dtype=torch.float64, device=device) + 0.5) / gh * 2 - 1
    xx = (torch.arange(gw, dtype=torch.float64, device=device) + 0.5) / gw * 2 - 1
    y, x = torch.meshgrid(yy, xx, indexing="ij")
    y, x = y.flatten(), x.flatten()
    max_y = min(degree, gh - 1)  # a single row of patches cannot see a slope in y
    max_x = min(degree, gw - 1)
    terms = [y**i * x**j for i in range(max_y + 1) for j in range(max_x + 1) if i + j <= degree]
    return torch.stack(terms, dim=-1)


@dataclass(frozen=True)
class _Data:
    """What every fit shares: centred trajectories ``r (p, t, 2)``, noise ``(p,)``, designs."""

    r: torch.Tensor
    noise_var: torch.Tensor
    design: torch.Tensor  # (t, D): tau^1 .. tau^D (zero at t = 0)
    spatial: torch.Tensor  # (p, m)
    use: torch.Tensor  # (p,) bool: not an outlier


def _fit(data: _Data, rows: torch.Tensor, rank: int) -> torch.Tensor:
    """Polynomial coefficients ``(p, D, 2)`` of the rank-``rank`` model fitted on frames ``rows``."""
    p, d = data.r.shape[0], data.design.shape[1]
    if rank == 0:
        return data.r.new_zeros(p, d, 2)
    x = data.design[rows]
    xc = x - x.mean(dim=0)
    y = data.r[:, rows] - data.r[:, rows].mean(dim=1, keepdim=True)
    pinv = torch.linalg.pinv(xc)  # (D, n)
    coef = torch.einsum("kt,ptc->pkc", pinv, y)
    weight = data.use / data.noise_var
    fitted = torch.einsum("tk,pkc->ptc", xc, coef) * weight.sqrt()[:, None, None]
    u = torch.linalg.svd(fitted.permute(1, 0, 2).reshape(len(rows), -1), full_matrices=False)[0]
    u = u[:, :rank]  # (n, K) shared temporal components, orthonormal
    amp = torch.einsum("tk,ptc->pkc", u, y)  # (p, K, 2)
    beta = torch.linalg.lstsq(
        data.spatial.T @ (data.spatial * weight[:, None]),
        torch.einsum("pm,p,pkc->mkc", data.spatial, weight, amp).flatten(1),
    ).solution
    smooth = (data.spatial @ beta).reshape(amp.shape)
    amp = torch.where(data.use[:, None, None], amp, smooth)  # outliers: the smooth part
    return torch.einsum("dk,pkc->pdc", pinv @ u, amp)


def _held_out_errors(data: _Data, max_rank: int) -> list[float]:
    """Noise-weighted even/odd cross-validation error of every rank ``0 .. max_rank``."""
    t = data.r.shape[1]
    halves = [torch.arange(i, t, 2, device=data.r.device) for i in (0, 1)]
    errors = []
    for rank in range(max_rank + 1):
        total = 0.0
        for train, test in ((halves[0], halves[1]), (halves[1], halves[0])):
            pred = torch.einsum("tk,pkc->ptc", data.design[test], _fit(data, train, rank))
            held = data.r[:, test]
            miss = (held - held.mean(1, keepdim=True)) - (pred - pred.mean(1, keepdim=True))
            total += float((miss.pow(2).sum(dim=(1, 2)) / data.noise_var)[data.use].sum())
        errors.append(total)
    return errors


def _best_gain(data: _Data, max_rank: int) -> tuple[int, float]:
    """The rank with the smallest held-out error (``>= 1``) and its gain over rank 0 (may be < 0)."""
    errors = _held_out_errors(data, max_rank)
    best = min(range(1, len(errors)), key=errors.__getitem__)
    return best, errors[0] - errors[best]


def fit_local_model(
    raw_px: torch.Tensor,
    *,
    time_degree: int = 4,
    space_degree: int = 2,
    outlier_z: float = 4.0,
    min_outlier_px: float = 1.0,
    n_permutations: int = 19,
) -> LocalFit:
    """Fit the module's model to ``(gh, gw, t, 2)`` raw residual trajectories (pixels).

    A patch is an outlier when its own fit departs from the smooth part by more than
    ``outlier_z`` robust deviations of all patches' departures *and* by more than
    ``min_outlier_px`` RMS (a patch within a pixel of its neighbours' smooth field is local motion,
    not a runaway). Deterministic (the permutations come from a fixed seed). Needs ``t >= 8``;
    with fewer frames nothing is accepted.
    """
    gh, gw, t, _ = raw_px.shape
    dev = raw_px.device
    n_patch = gh * gw
    r = raw_px.to(torch.float64).reshape(n_patch, t, 2)
    r = r - r.mean(dim=1, keepdim=True)  # the free offset a_p
    degree = max(1, min(time_degree, t // 2 - 2))  # each half keeps more frames than terms
    if t >= 3:
        d2 = r[:, 2:] - 2 * r[:, 1:-1] + r[:, :-2]
        noise_var = d2.pow(2).mean(dim=(1, 2)) / 6
    else:
        noise_var = torch.ones(n_patch, dtype=torch.float64, device=dev)
    noise_var = noise_var.clamp(min=max(float(noise_var.median()) * 1e-2, 1e-8))
    nothing = LocalFit(
        r.new_zeros(gh, gw, t, 2), False, 0, 0.0, float("inf"), 0, noise_var.sqrt().reshape(gh, gw)
    )
    if t < 8:
        return nothing
    tau = torch.arange(t, dtype=torch.float64, device=dev) / (t - 1)
    design = tau[:, None] ** torch.arange(1, degree + 1, dtype=torch.float64, device=dev)
    spatial = _spatial_terms(gh, gw, space_degree, device=dev)
    use = torch.ones(n_patch, dtype=torch.bool, device=dev)
    everything = torch.arange(t, device=dev)

    # outliers: each patch's own polynomial fit against the smooth part over the grid
    for _ in range(3):
        centred = design - design.mean(0)
        own = torch.einsum("kt,ptc->pkc", torch.linalg.pinv(centred), r)
        weight = use / noise_var
        beta = torch.linalg.lstsq(
            spatial.T @ (spatial * weight[:, None]),
            torch.einsum("pm,p,pkc->mkc", spatial, weight, own).flatten(1),
        ).solution
        smooth = (spatial @ beta).reshape(own.shape)
        apart = torch.einsum("tk,pkc->ptc", centred, own - smooth)  # in trajectory space
        z = apart.pow(2).sum(dim=-1).mean(dim=-1).sqrt()  # RMS px over the frames
        centre = float(z[use].median())
        spread = float((z[use] - centre).abs().median()) * 1.4826
        limit = max(centre + outlier_z * max(spread, 0.25 * centre), min_outlier_px)
        new_use = z <= limit
        if torch.equal(new_use, use) or int(new_use.sum()) <= spatial.shape[1]:
            break
        use = new_use
    data = _Data(r, noise_var, design, spatial, use)

    rank, gain = _best_gain(data, degree)
    generator = torch.Generator(device="cpu").manual_seed(0)  # the same permutations everywhere
    null = -float("inf")
    for _ in range(n_permutations):
        order = torch.randperm(t, generator=generator, device="cpu").to(dev)
        shuffled = _Data(r[:, order], noise_var, design, spatial, use)
        null = max(null, _best_gain(shuffled, degree)[1])
    accepted = gain > max(null, 0.0)
    coef = _fit(data, everything, rank if accepted else 0)
    shifts = torch.einsum("tk,pkc->ptc", design, coef).reshape(gh, gw, t, 2)
    return LocalFit(
        shifts_px=shifts,
        accepted=accepted,
        rank=rank if accepted else 0,
        gain=gain,
        null_gain=null,
        outliers=int((~use).sum()),
        noise_px=noise_var.sqrt().reshape(gh, gw),
    )
