"""The action distributions of the baseline policies a candidate is compared with.

``tummler evaluate --policy uniform|logged|best-single`` evaluates these on the same logs as a
candidate, so a team sees what "do what we did", "pick at random" and "always the one best action"
are worth next to what tummler would have done.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from tummler.core.errors import PolicyError
from tummler.evaluate._checks import check_rounds

__all__ = [
    "BASELINES",
    "Baseline",
    "baseline_action_dist",
    "context_free_policy",
    "logging_shares",
]

Baseline = Literal["uniform", "logged", "best-single"]
#: The names ``tummler evaluate --policy`` accepts for a baseline.
BASELINES: tuple[str, ...] = get_args(Baseline)

FloatArray = npt.NDArray[np.float64]


def baseline_action_dist(
    name: str,
    *,
    reward: npt.ArrayLike,
    action: npt.ArrayLike,
    propensity: npt.ArrayLike,
    n_actions: int,
    eligible: npt.ArrayLike | None = None,
) -> FloatArray:
    """Return the ``(n, k)`` action distribution of a baseline policy on logged rounds.

    Parameters
    ----------
    name
        ``"uniform"``: every action with probability ``1/k``. ``"logged"``: the logging policy as
        far as the logs reveal it: the logged action with its propensity, the rest of the mass
        spread over the other actions in proportion to how often the logging policy chose each
        (:func:`logging_shares`, the average probability its propensities reveal, exact when it
        was context-free); its importance weights are all 1, so IPS and SNIPS give the on-policy
        mean reward exactly, and DM and DR weigh the actions as the logging policy did. Spreading
        the rest evenly instead would value a non-uniform logging policy as a more uniform one.
        ``"best-single"``: always the one action with the highest IPS estimate on these logs; it
        is the best *in hindsight*, an optimistic yardstick.
    reward, action, propensity
        The logged rounds, as for :func:`ips`.
    n_actions
        Number of actions ``k``.
    eligible
        Optional ``(n, k)`` booleans: the actions each round could take (a plan's eligibility,
        *no send* included). ``"uniform"`` then spreads over a round's eligible actions and
        ``"logged"`` its rest over the other eligible ones, in the same proportions (evenly when
        the log never took any of them; a round with none left puts all on the logged action).
        ``"best-single"`` has no masked form.

    Examples
    --------
    >>> baseline_action_dist("logged", reward=[1.0, 0.0], action=[0, 2], propensity=[0.5, 0.8],
    ...                      n_actions=3, eligible=[[1, 0, 1], [0, 0, 1]])
    array([[0.5, 0. , 0.5],
           [0. , 0. , 1. ]])
    >>> baseline_action_dist("logged", reward=[1.0, 0.0, 1.0], action=[0, 1, 1],
    ...                      propensity=[0.2, 0.8, 0.8], n_actions=2)
    array([[0.2, 0.8],
           [0.2, 0.8],
           [0.2, 0.8]])
    >>> baseline_action_dist("best-single", reward=[1.0, 0.0, 0.0], action=[1, 0, 0],
    ...                      propensity=[0.5, 0.5, 0.5], n_actions=2)
    array([[0., 1.],
           [0., 1.],
           [0., 1.]])
    """
    if name not in BASELINES:
        raise PolicyError(f"unknown baseline {name!r}; choose among {', '.join(BASELINES)}")
    if isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1:
        raise PolicyError(f"n_actions = {n_actions!r} must be a positive integer")
    n = np.asarray(reward).shape[0] if np.ndim(reward) == 1 else 0
    uniform = np.full((n, n_actions), 1.0 / n_actions)
    rounds = check_rounds(reward, action, propensity, uniform)
    if name == "logged":
        mask = (
            np.ones((n, n_actions), dtype=bool)
            if eligible is None
            else _eligible(eligible, n, n_actions)
        )
        return _logged(rounds.action, rounds.propensity, mask)
    if eligible is not None:
        return _masked(name, _eligible(eligible, n, n_actions))
    if name == "uniform":
        return uniform
    value = np.bincount(
        rounds.action, weights=rounds.reward / rounds.propensity, minlength=n_actions
    )
    dist = np.zeros((n, n_actions))
    dist[:, int(np.argmax(value))] = 1.0
    return dist


def _eligible(eligible: npt.ArrayLike, n: int, n_actions: int) -> npt.NDArray[np.bool_]:
    mask = np.asarray(eligible, dtype=bool)
    if mask.shape != (n, n_actions):
        raise PolicyError(f"eligible must be (n, k) = ({n}, {n_actions}), got {mask.shape}")
    return mask


def _masked(name: str, eligible: npt.NDArray[np.bool_]) -> FloatArray:
    """The uniform baseline restricted to each round's eligible actions."""
    if name != "uniform":
        raise PolicyError(f"baseline {name!r} has no form restricted to eligible actions")
    m = eligible.sum(axis=1, keepdims=True)
    if (m == 0).any():
        raise PolicyError("every round needs an eligible action for the uniform baseline")
    return np.asarray(eligible / m, dtype=np.float64)


def logging_shares(
    action: npt.ArrayLike, propensity: npt.ArrayLike, *, n_actions: int
) -> FloatArray:
    """Each action's average probability under the logging policy, as its propensities reveal it.

    A row shows the logging probability of the action it took only; averaged over every round,
    that probability is ``1 / E[1/p | a taken]`` (:func:`context_free_policy`), which is exact
    when the logging policy was context-free (an A/B split of 55 / 45 reads back as 0.55, 0.45),
    and a fair summary otherwise. Actions never logged get 0.

    >>> logging_shares([0, 1, 1], [0.2, 0.8, 0.8], n_actions=3)
    array([0.2, 0.8, 0. ])
    """
    return context_free_policy(action, propensity, n_actions=n_actions)


def _logged(
    action: npt.NDArray[np.int64], propensity: FloatArray, eligible: npt.NDArray[np.bool_]
) -> FloatArray:
    """The logging policy: the logged action with its propensity, the rest in the logging shares.

    Importance weights are 1, so IPS is the observed mean. The rest of each row, ``1 - p``, goes
    to the other eligible actions in proportion to their logging shares; evenly when none of them
    was ever logged (the logs reveal nothing about them), and to the logged action itself when
    no other action is eligible.
    """
    n, k = eligible.shape
    rows = np.arange(n)
    shares = logging_shares(action, propensity, n_actions=k)
    others = eligible.copy()
    others[rows, action] = False
    weight = others * shares[None, :]
    total = weight.sum(axis=1)
    unseen = total <= 0.0
    weight[unseen] = others[unseen]  # nothing logged among them: spread evenly
    total = weight.sum(axis=1)
    rest = np.where(total > 0, (1.0 - propensity) / np.where(total > 0, total, 1.0), 0.0)
    dist = weight * rest[:, None]
    dist[rows, action] = np.where(total > 0, propensity, 1.0)
    return np.asarray(dist, dtype=np.float64)


def context_free_policy(
    action: npt.ArrayLike,
    propensity: npt.ArrayLike,
    *,
    n_actions: int,
    position: npt.ArrayLike | None = None,
    n_positions: int | None = None,
) -> FloatArray:
    """Estimate a context-free policy's average action distribution from its own logs.

    A context-free policy that learned as it went (Thompson sampling, say) logged, at each round,
    the probability of the action it took. A row shows that probability only when the action was
    taken, which over-represents the times it was likely, so the plain mean of the logged
    propensities overstates it. The average probability over all rounds is their harmonic mean:
    ``E[π_t(a)] = 1 / E[1 / p | a taken]``. The result is normalized per position; an action
    never logged gets probability 0.

    Parameters
    ----------
    action, propensity
        ``(n,)`` the policy's own logged actions and propensities.
    n_actions
        Number of actions ``k``.
    position, n_positions
        For slates: ``(n,)`` 0-based logged positions, and their number ``L`` (by default one
        more than the largest position).

    Returns
    -------
    numpy.ndarray
        ``(k, L)`` with each column summing to 1, or ``(k,)`` without positions. Broadcast it to
        ``(n, k, L)`` as the ``action_dist`` of the rounds to evaluate it on.

    Examples
    --------
    >>> context_free_policy([0, 0, 1], [0.5, 0.25, 0.5], n_actions=2)
    array([0.4, 0.6])
    """
    if isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1:
        raise PolicyError(f"n_actions = {n_actions!r} must be a positive integer")
    propensity_ = np.asarray(propensity, dtype=np.float64)
    positions: npt.NDArray[np.int64]
    if position is None:
        positions = np.zeros(propensity_.shape[0], dtype=np.int64)
    else:
        positions = np.asarray(position)
        if positions.dtype.kind not in "iu" or positions.shape != propensity_.shape:
            raise PolicyError(
                f"position must be (n,) 0-based integer positions like propensity, got shape "
                f"{positions.shape} and dtype {positions.dtype}"
            )
    n_slots = int(positions.max()) + 1 if n_positions is None else n_positions
    if positions.min() < 0 or positions.max() >= n_slots:
        raise PolicyError(f"position must lie in 0..{n_slots - 1}, the positions of the slate")
    # The check of the arrays themselves: a uniform stand-in policy for action_dist.
    rounds = check_rounds(
        np.zeros(propensity_.shape[0]),
        action,
        propensity_,
        np.broadcast_to(np.full(n_actions, 1.0 / n_actions), (propensity_.shape[0], n_actions)),
    )
    cell = rounds.action * n_slots + positions
    inverse_sum = np.bincount(cell, weights=1.0 / rounds.propensity, minlength=n_actions * n_slots)
    count = np.bincount(cell, minlength=n_actions * n_slots)
    average = np.zeros(n_actions * n_slots)
    seen = inverse_sum > 0
    average[seen] = count[seen] / inverse_sum[seen]
    table = average.reshape(n_actions, n_slots)
    totals = table.sum(axis=0)
    table = table / np.where(totals > 0, totals, 1.0)
    return table[:, 0] if position is None else table
