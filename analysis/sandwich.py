"""Sandwich covariances of least-squares and logit fits on aggregated cells; CR2 degrees of freedom.

A *cell* holds ``n_c`` visits with the same regressors ``x_c`` (a row of ``x``), ``s_c`` successes
and fitted value ``f_c``. Every visit-level sum in a sandwich covariance collapses to a sum over
cells (see :mod:`analysis.adjust`), so these functions return the visit-level values exactly:

- :func:`hc` — HC0 ``B[Σ_c x_c x_c' Σᵢ∈c eᵢ²]B`` or HC2, each square divided by ``1 − h_c``,
  ``h_c = x_c' B x_c`` (MacKinnon & White 1985), with ``B = (Σ_c w_c x_c x_c')⁻¹`` the bread.
- :func:`cr1` — ``q·B[Σ_g u_g u_g']B``, ``u_g = Σ_{c∈g} x_c(s_c − n_c f_c)``,
  ``q = G/(G − 1)·(N − 1)/(N − K)`` (Stata's and statsmodels' default; Cameron & Miller 2015).
- :func:`cr2` — the bias-reduced linearization of Bell & McCaffrey (2002):
  ``B[Σ_g X_g'A_g e_g e_g'A_g X_g]B`` with ``A_g = (I − H_gg)^{-1/2}`` (a symmetric, Moore-Penrose
  inverse square root when ``I − H_gg`` is singular, as Pustejovsky & Tipton 2018 recommend) and
  ``H_gg = X_g B X_g'`` the visits-by-visits block of the hat matrix of cluster ``g``.
- :func:`bell_mccaffrey_df` — the Satterthwaite degrees of freedom of ``c'V c`` under the
  working model of independent, homoskedastic errors:
  ``ν = (Σλ)²/Σλ²`` with ``λ`` the eigenvalues of ``Γ'(I − H)Γ``, ``Γ = [A_g X_g B c]_g``
  (Bell & McCaffrey 2002, section 3; Pustejovsky & Tipton 2018, equation 11 with Φ = I).

**CR2 on cells.** In cluster ``g`` let ``E`` map cells to visits (``E'E = D = diag(n_c)``),
``X_g = E X̃`` and ``C = D^{1/2} X̃ B X̃' D^{1/2}`` (cells × cells). ``H_gg = E X̃ B X̃'E'`` vanishes
on the visit vectors orthogonal to the columns of ``E`` and equals ``C`` on the orthonormal basis
``E D^{-1/2}`` of those columns, so ``A_g = I + E D^{-1/2}[(I − C)^{-1/2} − I]D^{-1/2}E'`` and

    X_g'A_g e_g    = X̃' D^{1/2} (I − C)^{-1/2} D^{-1/2} r      (r_c = s_c − n_c f_c)
    X_g'A_g X_g    = X̃' D^{1/2} (I − C)^{-1/2} D^{1/2} X̃
    X_g'A_g² X_g   = X̃' D^{1/2} (I − C)^{-1}   D^{1/2} X̃

which are all the sums CR2 and its degrees of freedom need: ``Γ'(I − H)Γ`` has diagonal
``c'B X_g'A_g²X_g B c`` and off-diagonal part ``−w_g'B w_h`` with ``w_g = X_g'A_g X_g B c``.
The work per cluster is an eigen-decomposition of a cells × cells matrix, never visits × visits.
The tests check every formula against a visit-level computation (``scipy.linalg.sqrtm`` of
``I − H_gg`` on the expanded visits) and a closed form (two arms, equal clusters).

References: MacKinnon JG, White H (1985) J Econometrics 29:305–325. Bell RM, McCaffrey DF (2002)
Bias reduction in standard errors for linear regression with multi-stage samples, Survey
Methodology 28:169–181. Pustejovsky JE, Tipton E (2018) Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models, J Business & Economic
Statistics 36:672–683. Cameron AC, Miller DL (2015) J Human Resources 50:317–372.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ClusterBlock", "bell_mccaffrey_df", "cr1", "cr2", "hc"]

#: Eigenvalues of ``I − C`` below this count as zero (a cluster that fits some term exactly).
SINGULAR = 1e-10
#: A leverage this close to 1 makes HC2 undefined (a visit fitted exactly).
EXACT_FIT = 1e-10


def hc(
    x: np.ndarray, n: np.ndarray, s: np.ndarray, fitted: np.ndarray, bread: np.ndarray, hc2: bool
) -> np.ndarray:
    """HC0 or HC2 covariance from cells; HC2 is NaN when a visit has leverage 1."""
    squares = s * (1 - fitted) ** 2 + (n - s) * fitted**2
    if hc2:
        leverage = np.einsum("ij,jk,ik->i", x, bread, x)
        if np.any(leverage > 1 - EXACT_FIT):
            return np.full_like(bread, np.nan)
        squares = squares / (1 - leverage)
    return bread @ (x.T @ (x * squares[:, None])) @ bread


def cr1(
    x: np.ndarray,
    n: np.ndarray,
    s: np.ndarray,
    fitted: np.ndarray,
    bread: np.ndarray,
    groups: np.ndarray,
) -> np.ndarray:
    """CR1 covariance ``q·B[Σ_g u_g u_g']B`` (``groups``: cluster code 0 … G − 1 per cell)."""
    scores = x * (s - n * fitted)[:, None]
    sums = np.zeros((groups.max() + 1, x.shape[1]))
    np.add.at(sums, groups, scores)
    g, total, k = sums.shape[0], n.sum(), x.shape[1]
    factor = g / (g - 1) * (total - 1) / (total - k)
    return factor * bread @ (sums.T @ sums) @ bread


@dataclass(frozen=True)
class ClusterBlock:
    """What CR2 and its degrees of freedom need of one cluster (see the module docstring).

    ``xax`` is ``X_g'A_g X_g``, ``xaax`` is ``X_g'A_g² X_g`` (parameters × parameters);
    ``singular`` says that ``I − H_gg`` had to be pseudo-inverted.
    """

    xax: np.ndarray
    xaax: np.ndarray
    singular: bool


def _inverse_roots(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """``(M^{+1/2}, M^{+})`` of a symmetric positive semi-definite matrix, and whether singular."""
    values, vectors = np.linalg.eigh(matrix)
    keep = values > SINGULAR
    root = np.where(keep, 1 / np.sqrt(np.where(keep, values, 1.0)), 0.0)
    inverse = root**2
    return (vectors * root) @ vectors.T, (vectors * inverse) @ vectors.T, bool(not keep.all())


def cr2(
    x: np.ndarray,
    n: np.ndarray,
    s: np.ndarray,
    fitted: np.ndarray,
    bread: np.ndarray,
    groups: np.ndarray,
) -> tuple[np.ndarray, list[ClusterBlock]]:
    """CR2 covariance of an OLS fit on cells, and per-cluster blocks for the degrees of freedom.

    ``bread`` is ``(Σ_c n_c x_c x_c')⁻¹``; ``groups`` the cluster code of each cell.
    """
    meat = np.zeros_like(bread)
    blocks = []
    residuals = s - n * fitted
    for g in range(groups.max() + 1):
        rows = groups == g
        xg, root_n = x[rows], np.sqrt(n[rows])
        scaled = xg * root_n[:, None]  # D^{1/2} X̃
        inner = np.eye(len(xg)) - scaled @ bread @ scaled.T  # I − C
        half, full, singular = _inverse_roots(inner)
        u = scaled.T @ (half @ (residuals[rows] / root_n))
        meat += np.outer(u, u)
        blocks.append(ClusterBlock(scaled.T @ half @ scaled, scaled.T @ full @ scaled, singular))
    return bread @ meat @ bread, blocks


def bell_mccaffrey_df(blocks: list[ClusterBlock], bread: np.ndarray, contrast: np.ndarray) -> float:
    """Satterthwaite degrees of freedom ``(tr Ω)²/tr Ω²`` of the CR2 variance of ``contrast'β``.

    ``Ω = Γ'(I − H)Γ`` (clusters × clusters): diagonal ``c'B X_g'A_g²X_g B c`` minus
    ``w_g'B w_h`` with ``w_g = X_g'A_g X_g B c`` (Bell & McCaffrey 2002).
    """
    direction = bread @ contrast
    w = np.column_stack([block.xax @ direction for block in blocks])
    omega = -(w.T @ bread @ w)
    omega[np.diag_indices_from(omega)] += [direction @ b.xaax @ direction for b in blocks]
    trace = float(np.trace(omega))
    squares = float(np.sum(omega * omega))
    return trace**2 / squares if squares > 0 else float("nan")
