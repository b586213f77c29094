"""Almgren–Chriss optimal execution: the closed form and a numerical optimiser.

Source: R. Almgren and N. Chriss, "Optimal execution of portfolio transactions",
Journal of Risk 3 (2000), sections 2–3. Notation as in the paper: sell (or buy) X units
over T split in N periods of length tau = T/N; holdings x_0 = X, ..., x_N = 0; trades
n_j = x_{j-1} - x_j. Price dynamics per period: permanent impact g(v) = gamma v and
temporary impact h(v) = epsilon sgn(v) + eta v (linear case) with v = n_j / tau.

Expected cost and variance of the trading cost (the paper's eq. (3)-(4)):

    E[x] = 1/2 gamma X^2 + epsilon sum|n_j| + (eta~ / tau) sum n_j^2,  eta~ = eta - gamma tau / 2
    V[x] = sigma^2 tau sum x_j^2

Minimising E + lambda V gives (eq. (18)-(19))

    x_j = sinh(kappa (T - t_j)) / sinh(kappa T) * X,  2/tau^2 (cosh(kappa tau) - 1) = lambda sigma^2 / eta~

For a square-root (or any power-law) temporary impact h(v) = epsilon + eta v^beta there is
no closed form; `optimal_trajectory` minimises the same E + lambda V numerically (Newton's
method on the convex objective over the N-1 interior holdings). With beta = 1 it reproduces
the closed form, which a test checks.

Units: quantities in base units (floats here: a schedule is a statistic; children are
rounded to lots by the algorithm that places them), sigma in price units per sqrt(time
unit), eta in price per (quantity / time unit), gamma in price per quantity, lambda in
1/price. Time unit: whatever tau is in (the paper uses days; the algorithm uses seconds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class ImpactModel:
    """Market-impact parameters of the paper (section 2); all >= 0.

    `beta` is the temporary impact exponent: 1 = linear (closed form), 0.5 = square root.
    """

    sigma: float  # price volatility per sqrt(time unit)
    eta: float  # temporary impact coefficient
    gamma: float = 0.0  # permanent impact coefficient (linear)
    epsilon: float = 0.0  # fixed cost per unit traded (half spread plus fees)
    beta: float = 1.0  # temporary impact exponent

    def __post_init__(self) -> None:
        for name in ("sigma", "eta", "gamma", "epsilon"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"Almgren-Chriss {name}={value!r}: expected a finite number >= 0")
        if not 0 < self.beta <= 2:
            raise ConfigError(f"Almgren-Chriss beta={self.beta!r}: expected 0 < beta <= 2")
        if self.eta <= 0:
            raise ConfigError("Almgren-Chriss eta must be > 0 (no temporary impact: trade everything at once)")


def kappa(model: ImpactModel, risk_aversion: float, tau: float) -> float:
    """kappa from 2/tau^2 (cosh(kappa tau) - 1) = lambda sigma^2 / eta~ (the paper's eq. (19)).

    Raises ConfigError when eta~ = eta - gamma tau / 2 <= 0 (the paper's condition for a
    convex problem: permanent impact must not outweigh temporary impact).
    """
    if risk_aversion < 0:
        raise ConfigError(f"Almgren-Chriss risk_aversion={risk_aversion!r}: expected >= 0")
    eta_tilde = model.eta - model.gamma * tau / 2
    if eta_tilde <= 0:
        raise ConfigError(f"Almgren-Chriss: eta - gamma*tau/2 = {eta_tilde} <= 0; use more periods or a larger eta")
    kappa_tilde_sq = risk_aversion * model.sigma**2 / eta_tilde
    return math.acosh(1 + kappa_tilde_sq * tau * tau / 2) / tau


def closed_form_trajectory(quantity: float, horizon: float, periods: int, model: ImpactModel,
                           risk_aversion: float) -> list[float]:
    """Holdings x_0..x_N (x_0 = quantity, x_N = 0) of the linear-impact optimum.

    With lambda = 0 (or sigma = 0) kappa = 0 and the limit is the straight line
    x_j = (1 - j/N) X: TWAP.
    """
    _check(quantity, horizon, periods)
    tau = horizon / periods
    k = kappa(model, risk_aversion, tau)
    if k * horizon < 1e-12:
        return [quantity * (1 - j / periods) for j in range(periods + 1)]
    denom = math.sinh(k * horizon)
    return [quantity * math.sinh(k * (horizon - j * tau)) / denom for j in range(periods)] + [0.0]


def expected_cost(holdings: list[float], horizon: float, model: ImpactModel) -> float:
    """E[x]: permanent (exact for linear g: gamma sum x_j n_j) plus temporary sum n_j h(n_j/tau)."""
    tau = horizon / (len(holdings) - 1)
    cost = 0.0
    for j in range(1, len(holdings)):
        n = holdings[j - 1] - holdings[j]
        cost += model.gamma * holdings[j] * n
        cost += model.epsilon * abs(n) + model.eta * abs(n) * (abs(n) / tau) ** model.beta
    return cost


def variance(holdings: list[float], horizon: float, model: ImpactModel) -> float:
    """V[x] = sigma^2 tau sum_{j>=1} x_j^2."""
    tau = horizon / (len(holdings) - 1)
    return model.sigma**2 * tau * sum(x * x for x in holdings[1:])


def optimal_trajectory(quantity: float, horizon: float, periods: int, model: ImpactModel,
                       risk_aversion: float, *, tolerance: float = 1e-12, max_iterations: int = 200) -> list[float]:
    """Holdings minimising E + lambda V for any impact exponent beta (numerical).

    Newton's method over the interior holdings x_1..x_{N-1}: the Hessian is tridiagonal,
    so each step is one O(N) Thomas solve; a backtracking line search keeps every trade
    n_j strictly positive (a monotone liquidation, where the power-law cost is smooth and
    convex). Starts from the straight line (TWAP). Raises ConfigError on bad inputs.

    Convexity: the permanent term gamma sum x_j n_j equals 1/2 gamma X^2 - 1/2 gamma sum n_j^2,
    concave in the trades; with linear temporary impact eta~ > 0 keeps the sum convex (the
    paper's condition), with beta < 1 it needs c''(n) = eta (1+beta) beta n^(beta-1) / tau^beta
    >= gamma over the trades considered. Where it is not, the result is a local minimum.
    """
    _check(quantity, horizon, periods)
    if quantity == 0 or periods == 1:
        return [quantity * (1 - j / periods) for j in range(periods + 1)]
    sign = 1.0 if quantity > 0 else -1.0
    big_x = abs(quantity)
    tau = horizon / periods
    beta, eta, gamma = model.beta, model.eta, model.gamma
    lam_var = risk_aversion * model.sigma**2 * tau

    def objective(x: list[float]) -> float:
        return expected_cost(x, horizon, model) + lam_var * sum(v * v for v in x[1:])

    # temporary cost of a trade n > 0: c(n) = eta n^(1+beta) / tau^beta (+ epsilon n, constant in total)
    scale = eta / tau**beta

    def dc(n: float) -> float:
        return scale * (1 + beta) * n**beta

    def d2c(n: float) -> float:
        return scale * (1 + beta) * beta * max(n, 1e-300) ** (beta - 1)

    x = [big_x * (1 - j / periods) for j in range(periods + 1)]
    m = periods - 1
    for _ in range(max_iterations):
        n = [x[j - 1] - x[j] for j in range(1, periods + 1)]
        # d/dx_i of sum c(n_j) + gamma sum x_j n_j + lam_var sum x_j^2, i = 1..N-1
        grad = []
        diag = []
        off = []  # off[i] couples x_i and x_{i+1}
        for i in range(1, periods):
            left, right = n[i - 1], n[i]  # n_i = x_{i-1} - x_i, n_{i+1} = x_i - x_{i+1}
            g = -dc(left) + dc(right) + gamma * (left - x[i]) + gamma * x[i + 1] + 2 * lam_var * x[i]
            # gamma terms: d/dx_i [x_i (x_{i-1} - x_i) + x_{i+1} (x_i - x_{i+1})]
            grad.append(g)
            diag.append(d2c(left) + d2c(right) - 2 * gamma + 2 * lam_var)
            if i < periods - 1:
                off.append(-d2c(right) + gamma)
        step = _thomas(off, diag, off, [-g for g in grad])
        decrement = -sum(g * s for g, s in zip(grad, step, strict=True))  # Newton decrement^2
        if decrement <= tolerance * (1 + abs(objective(x))):
            break
        # fraction to the boundary: no trade may shrink by more than 90% in one step, so the
        # iterate stays well inside n_j > 0, where a power-law cost is smooth
        full = [0.0] + step + [0.0]
        t = 1.0
        for j in range(1, periods + 1):
            dn = full[j - 1] - full[j]
            if dn < 0:
                t = min(t, 0.9 * n[j - 1] / -dn)
        f0 = objective(x)
        while True:
            trial = [x[0]] + [x[i + 1] + t * step[i] for i in range(m)] + [0.0]
            if objective(trial) <= f0 - 1e-4 * t * decrement:
                break
            t /= 2
            if t < 1e-12:
                break
        if t < 1e-12:
            break
        x = trial
    return [sign * v for v in x]


def _thomas(lower: list[float], diag: list[float], upper: list[float], rhs: list[float]) -> list[float]:
    """Solve a tridiagonal system (lower[i] at row i+1, upper[i] at row i)."""
    n = len(diag)
    c = [0.0] * n
    d = [0.0] * n
    c[0] = upper[0] / diag[0] if n > 1 else 0.0
    d[0] = rhs[0] / diag[0]
    for i in range(1, n):
        denom = diag[i] - lower[i - 1] * c[i - 1]
        c[i] = upper[i] / denom if i < n - 1 else 0.0
        d[i] = (rhs[i] - lower[i - 1] * d[i - 1]) / denom
    out = [0.0] * n
    out[-1] = d[-1]
    for i in range(n - 2, -1, -1):
        out[i] = d[i] - c[i] * out[i + 1]
    return out


def _check(quantity: float, horizon: float, periods: int) -> None:
    if not isinstance(periods, int) or periods < 1:
        raise ConfigError(f"Almgren-Chriss periods={periods!r}: expected an integer >= 1")
    if not horizon > 0:
        raise ConfigError(f"Almgren-Chriss horizon={horizon!r}: expected > 0")
    if not math.isfinite(quantity):
        raise ConfigError(f"Almgren-Chriss quantity={quantity!r}: expected a finite number")
