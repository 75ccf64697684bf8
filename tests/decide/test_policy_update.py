"""The logistic Laplace update against its textbook form on the explicit design matrix.

``LogisticThompson`` never builds the ``(n, d_x · d_a)`` design ``z_j = vec(x_j φ_jᵀ)``; this test
does, and solves Chapelle & Li's (2011) Algorithm 3 on it directly.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize

from tummler.decide import POLICIES, LogisticThompson, build_action_set


def test_logistic_update_matches_the_explicit_design() -> None:
    actions = build_action_set(
        ["email", "sms"], [9, 18], {"email": ["A", "B"], "sms": ["A"]}, message_attributes={}
    )
    rng = np.random.default_rng(4)
    n, d_x = 400, 5
    x = rng.standard_normal((n, d_x))
    x[:, 0] = 1.0
    action = rng.integers(0, actions.k, n)
    reward = (rng.random(n) < 0.3).astype(np.float64)
    assert POLICIES["logistic_thompson"] is LogisticThompson
    policy = LogisticThompson(
        n_context_features=d_x,
        n_action_features=actions.n_features,
        n_channels=actions.n_channels,
        prior_precision=2.0,
    )
    m0, q0 = policy.m.copy(), policy.q.copy()
    policy.update(x, actions, action, reward)

    phi = actions.features[action].astype(np.float64)
    z = (x[:, :, None] * phi[:, None, :]).reshape(n, -1)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = z @ w
        p = 1.0 / (1.0 + np.exp(-s))
        loss = 0.5 * q0 @ (w - m0) ** 2 + np.sum(np.logaddexp(0.0, s) - reward * s)
        return float(loss), q0 * (w - m0) + z.T @ (p - reward)

    mode = optimize.minimize(objective, m0, jac=True, method="L-BFGS-B", tol=1e-10).x
    p = 1.0 / (1.0 + np.exp(-(z @ mode)))
    np.testing.assert_allclose(policy.m, mode, atol=1e-4)
    np.testing.assert_allclose(policy.q, q0 + (z**2).T @ (p * (1 - p)), rtol=1e-4)
    assert not np.allclose(policy.m, m0)
