r"""One smooth model of local motion fitted to all patches' residual trajectories at once.

Each patch ``p`` (centre ``(y_p, x_p)`` on the grid, normalised to ``[-1, 1]``) gives a raw residual
trajectory ``r_p(t)`` (after the global motion, free constant, noisy). The model, per axis,

.. math::

   r_p(t) = a_p + \sum_{k=1}^{K} \sum_{m} \beta_{km}\, \phi_m(y_p, x_p)\, \tau^k,
   \qquad \tau = t / (T - 1),

is a polynomial of degree ``K`` in time with no constant (so the local shift of frame 0 is zero)
and of total degree ``space_degree`` in space (``phi_m``: 1, y, x, y^2, xy, x^2, ...), with a free
offset ``a_p`` per patch (the gauge). It is MotionCor2's model (cubic in time, quadratic in space).

Every patch's time coefficients are first fitted on their own (least squares); its noise variance
per frame comes from the second differences of its raw trajectory (white noise of variance ``s^2``
gives second differences of variance ``6 s^2``; smooth motion barely contributes; the patches'
per-frame errors were measured white, with heavy tails, so the plain variance is used, not a robust
one). The smooth spatial part is fitted to those coefficients, each patch weighted by its noise (a
patch with too little signal counts for little); patches whose coefficients sit far from it (more
than ``outlier_z`` robust deviations) are outliers and get no weight. Then the data choose, by
cross-validation between the even and the odd frames (fit on one, predict the other's raw
trajectories), between every patch's own fit (outliers replaced by the smooth part) and the smooth
part alone: a smooth field (doming) gets the smooth model's noise reduction, a rough one keeps its
patch-to-patch detail. (Half-data cross-validation favours the smoother model somewhat: on the
project's simulator, whose local field is random from node to node, it picked the smooth part
where each patch's own fit scored 0.003 FRC higher; measured, not tuned.)

The model is *accepted* only if it explains significantly more than noise: on pure noise the
weighted power (weights ``1/s^2``) of a fit with ``n`` effective parameters is ~chi-square with
``n`` degrees of freedom; the model is kept when it exceeds ``n + 4 sqrt(2 n)``. Otherwise there is
no local motion to correct that the patches can see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LocalFit:
    """``shifts_px``: ``(gh, gw, t, 2)`` the model at the patch centres (zero at ``t = 0``).

    ``accepted``: whether the model explains significantly more than the patches' noise;
    ``explained``/``expected_from_noise``: the weighted RSS drop and its chi-square threshold;
    ``outliers``: number of patches given no weight; ``noise_px``: ``(gh, gw)`` per-patch noise.
    """

    shifts_px: torch.Tensor
    accepted: bool
    explained: float
    expected_from_noise: float
    outliers: int
    noise_px: torch.Tensor
    per_patch: bool = False


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


def fit_local_model(
    raw_px: torch.Tensor,
    *,
    time_degree: int = 3,
    space_degree: int = 2,
    outlier_z: float = 4.0,
) -> LocalFit:
    """Fit the module's model to ``(gh, gw, t, 2)`` raw residual trajectories (pixels)."""
    gh, gw, t, _ = raw_px.shape
    dev = raw_px.device
    n_patch = gh * gw
    r = raw_px.to(torch.float64).reshape(n_patch, t, 2)
    r = r - r.mean(dim=1, keepdim=True)  # the free offset a_p
    # per-patch noise variance per frame and axis, from second differences (white: var 6 s^2)
    if t >= 3:
        d2 = r[:, 2:] - 2 * r[:, 1:-1] + r[:, :-2]
        noise_var = d2.pow(2).mean(dim=(1, 2)) / 6
    else:
        noise_var = torch.ones(n_patch, dtype=torch.float64, device=dev)
    noise_var = noise_var.clamp(min=max(float(noise_var.median()) * 1e-2, 1e-6))

    # per-patch least squares in time: coefficients (p, k, 2) and their noise variances (p, k)
    tau = torch.arange(t, dtype=torch.float64, device=dev) / max(t - 1, 1)
    k = min(time_degree, t - 1)
    temporal = tau[:, None] ** torch.arange(1, k + 1, dtype=torch.float64, device=dev)
    temporal = temporal - temporal.mean(dim=0)  # centred, as the data
    pinv = torch.linalg.pinv(temporal)  # (k, t)
    coef = torch.einsum("kt,ptc->pkc", pinv, r)
    var = noise_var[:, None] * torch.linalg.inv(temporal.T @ temporal).diagonal()[None, :]
    if t >= 4 * (k + 1):
        # calibrate the white-noise variance: the even and the odd frames' fits share the
        # motion, not the noise, so their difference measures the noise the fit really sees
        half = [torch.linalg.pinv(temporal[i::2] - temporal[i::2].mean(0)) for i in (0, 1)]
        c_even, c_odd = (
            torch.einsum("kt,ptc->pkc", m, r[:, i::2] - r[:, i::2].mean(1, keepdim=True))
            for i, m in enumerate(half)
        )
        measured = (c_even - c_odd).pow(2).mean(dim=-1) / 4  # (p, k): variance of the full fit
        calibration = float(measured.sum() / var.sum())
        var = var * max(calibration, 1.0)
        noise_var = noise_var * max(calibration, 1.0)

    # the smooth spatial part, each patch weighted by its noise; outlier patches rejected
    spatial = _spatial_terms(gh, gw, space_degree, device=dev)  # (p, m)
    use = torch.ones(n_patch, dtype=torch.bool, device=dev)
    for _ in range(3):
        w = use / noise_var  # (p,)
        normal = spatial.T @ (spatial * w[:, None])
        beta = torch.linalg.lstsq(
            normal, torch.einsum("pm,p,pkc->mkc", spatial, w, coef).flatten(1)
        )
        smooth = (spatial @ beta.solution).reshape(n_patch, k, 2)
        z = ((coef - smooth).pow(2) / var[..., None]).mean(dim=(1, 2)).sqrt()  # ~1: noise only
        centre = float(z[use].median())
        spread = float((z[use] - centre).abs().median()) * 1.4826
        new_use = z <= centre + outlier_z * max(spread, 0.25 * centre, 1e-9)
        if torch.equal(new_use, use) or int(new_use.sum()) <= spatial.shape[1]:
            break
        use = new_use

    # each patch's own fit, or the smooth part: chosen by cross-validation between the even and
    # the odd frames (fit on one, predict the other), so that a smooth field (doming) gets the
    # smooth model's noise reduction and a rough one keeps its patch-to-patch detail
    own_error = smooth_error = 0.0
    if t >= 4 * (k + 1):
        for train, test in ((0, 1), (1, 0)):
            basis = temporal[train::2] - temporal[train::2].mean(0)
            c = torch.einsum("kt,ptc->pkc", torch.linalg.pinv(basis), r[:, train::2])
            w = use / noise_var
            beta = torch.linalg.lstsq(
                spatial.T @ (spatial * w[:, None]),
                torch.einsum("pm,p,pkc->mkc", spatial, w, c).flatten(1),
            )
            c_smooth = (spatial @ beta.solution).reshape(n_patch, k, 2)
            held = temporal[test::2] - temporal[test::2].mean(0)
            data = r[:, test::2] - r[:, test::2].mean(dim=1, keepdim=True)
            for candidate, name in ((c, "own"), (c_smooth, "smooth")):
                miss = (data - held @ candidate).pow(2).sum(dim=(1, 2))[use].sum()
                if name == "own":
                    own_error += float(miss)
                else:
                    smooth_error += float(miss)
    own = own_error < smooth_error
    final = torch.where(use[:, None, None], coef, smooth) if own else smooth
    effective = float(use.sum()) * k if own else spatial.shape[1] * k

    # significance: explained weighted power against what noise alone would give
    gram = temporal.T @ temporal
    power = torch.einsum("pkc,kl,plc->p", final, gram, final)
    explained = float((power / noise_var)[use].sum())
    dof = 2 * effective
    threshold = dof + 4 * math.sqrt(2 * dof)
    tt = tau[:, None] ** torch.arange(1, k + 1, dtype=torch.float64, device=dev)  # uncentred
    shifts = torch.einsum("tk,pkc->ptc", tt, final).reshape(gh, gw, t, 2)
    return LocalFit(
        shifts_px=shifts,
        accepted=explained > threshold,
        explained=explained,
        expected_from_noise=threshold,
        outliers=int((~use).sum()),
        noise_px=noise_var.sqrt().reshape(gh, gw),
        per_patch=own,
    )
