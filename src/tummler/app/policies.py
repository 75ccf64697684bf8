"""Policy versions: the one home of choosing, recording, finding, reading and promoting them.

A :class:`~tummler.store.models.PolicyVersion` row is one policy's parameters at one version of a
name (an objective's name for the policies that plan campaigns). Every service that touches these
rows goes through this module: planning chooses and records its prior here, ``tummler learn``
records what it learned here, ``tummler evaluate`` finds and reads versions here and promotion
flips the flag here. So there is one numbering rule, one parser and one audit trail.

Numbering
    A version's number is one past the highest of its name. A name's first version is 0 when it is
    planning's untrained prior (it has learned nothing yet) and 1 when it was learned: version 0 is
    the prior's, and the learned versions count from 1. Stores written before this module follow
    the same rule, so they read as they are.

Parameters
    A version's ``parameters`` hold a *policy object*, the same one a policy file holds:
    ``tummler.policy/2`` (``{"format", "policy", "featurizer", ...}``), where a featurizer of
    ``type`` ``logged-bandit`` marks a policy learned from a log file
    (:class:`~tummler.app.learning.LearnedPolicy`) and any other a campaign's
    (:class:`CampaignPolicy`); planning's ``{"policy", "featurizer"}`` without a format; a bare
    ``Policy.to_dict()`` of the first stores (its featurizer rebuilt from the strategy); and the
    flat ``tummler.policy/1`` policy files. :func:`read_policy` is the one reader of all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tummler.app.policy_file import (
    LOG_FEATURIZER,
    POLICY_FILE_FORMAT,
    POLICY_FILE_FORMAT_1,
    LearnedPolicy,
)
from tummler.core.errors import InputError, NotFoundError, PolicyError
from tummler.decide import ContextFeaturizer, Policy, policy_from_dict
from tummler.learn.harm import ChannelHarm
from tummler.store.models import AuditEntry, PolicyVersion

__all__ = [
    "LOG_FEATURIZER",
    "POLICY_FILE_FORMAT",
    "POLICY_FILE_FORMAT_1",
    "PROMOTE_ACTION",
    "CampaignPolicy",
    "ChosenVersion",
    "choose_promoted",
    "featurizer_to_dict",
    "find_version",
    "get_version",
    "is_version_spec",
    "load_policy_file",
    "next_version",
    "promote_version",
    "promoted_version",
    "read_policy",
    "record_prior",
    "record_version",
    "spec_of",
    "version_numbers",
    "versions_of",
]

#: The audit action recorded when a policy version is promoted.
PROMOTE_ACTION = "policy.promote"

_SPEC = re.compile(r"^(?P<name>[^@\s]+)@(?P<version>\d+)$")


# --- reading: the one parser of policy objects ------------------------------------------------


@dataclass(frozen=True, eq=False)
class CampaignPolicy:
    """A policy that decides campaigns: planning's policy with the featurizer it reads contexts by.

    Attributes
    ----------
    policy
        The :class:`~tummler.decide.Policy`.
    featurizer
        The fitted :class:`~tummler.decide.ContextFeaturizer` of the plans it made; ``None`` for a
        version of the first stores, which kept the bare policy (planning rebuilds the featurizer
        from the strategy).
    learned_from
        Metadata of the learning run that made it (empty for planning's fresh prior).
    channel_harm
        Per channel, the sends and the unsubscribe and complaint penalties that a logistic
        policy's clipped rewards could not carry (:mod:`tummler.learn.harm`); planning adds the
        harm per send to each channel's cost.
    """

    policy: Policy
    featurizer: ContextFeaturizer | None
    learned_from: Mapping[str, Any] = field(default_factory=dict)
    channel_harm: ChannelHarm = field(default_factory=ChannelHarm)

    @property
    def kind(self) -> str:
        """The policy's kind, e.g. ``logistic_thompson``."""
        return self.policy.kind

    def to_dict(self) -> dict[str, Any]:
        """Planning's ``{"policy", "featurizer"}`` object, with the format and metadata."""
        return {
            "format": POLICY_FILE_FORMAT,
            "policy": self.policy.to_dict(),
            "featurizer": None if self.featurizer is None else featurizer_to_dict(self.featurizer),
            "learned_from": dict(self.learned_from),
            "channel_harm": self.channel_harm.to_dict(),
        }


def featurizer_to_dict(featurizer: ContextFeaturizer) -> dict[str, Any]:
    """A campaign featurizer as JSON: its fields, tuples as lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(featurizer).items()}


def read_policy(data: Any, *, origin: str = "policy") -> LearnedPolicy | CampaignPolicy:
    """Read a policy file's object or a stored version's ``parameters``: the one reader of both.

    Accepted: every layout of the module's notes. A policy learned from a log comes back as a
    :class:`~tummler.app.learning.LearnedPolicy`, any other as a :class:`CampaignPolicy`.

    Raises
    ------
    InputError
        Naming ``origin`` and what is wrong, when the object is none of these.
    """
    if not isinstance(data, Mapping):
        raise InputError(
            f"a policy must be a JSON object, got {type(data).__name__}",
            file=origin,
            field="format",
        )
    featurizer = data.get("featurizer")
    is_log = data.get("format") == POLICY_FILE_FORMAT_1 or (
        isinstance(featurizer, Mapping) and featurizer.get("type") == LOG_FEATURIZER
    )
    first_stores = "format" not in data and ("policy" in data or "kind" in data)
    if is_log or not (isinstance(featurizer, Mapping) or first_stores):
        return LearnedPolicy.from_dict(data, origin=origin)
    return _campaign_policy(data, featurizer, origin)


def _campaign_policy(data: Mapping[str, Any], featurizer: Any, origin: str) -> CampaignPolicy:
    try:
        policy = policy_from_dict(dict(data.get("policy", data)))
        context = None
        if isinstance(featurizer, Mapping):
            values = {k: tuple(v) if isinstance(v, list) else v for k, v in featurizer.items()}
            context = ContextFeaturizer(**values)  # type: ignore[arg-type]  # checked by the class
    except (KeyError, TypeError, ValueError, PolicyError, InputError) as exc:
        raise InputError(
            f"the policy's parts cannot be read ({exc}); store it again with tummler learn",
            file=origin,
        ) from exc
    n_features = None if context is None else len(context.feature_names())
    if n_features is not None and policy.n_context_features != n_features:
        raise InputError(
            f"the policy reads {policy.n_context_features} context features but its featurizer "
            f"makes {n_features}; store it again with tummler learn",
            file=origin,
            field="featurizer",
        )
    learned_from = data.get("learned_from")
    return CampaignPolicy(
        policy,
        context,
        dict(learned_from) if isinstance(learned_from, Mapping) else {},
        ChannelHarm.from_dict(data.get("channel_harm"), origin=origin),
    )


# --- finding -----------------------------------------------------------------------------------


def spec_of(row: PolicyVersion) -> str:
    """A version's ``name@version``, the way every message and audit entry names it."""
    return f"{row.name}@{row.version}"


def is_version_spec(spec: str) -> bool:
    """Whether ``spec`` names a stored version: ``name@version`` or a numeric id."""
    return _SPEC.match(spec) is not None or spec.isdigit()


def find_version(session: Session, spec: str) -> PolicyVersion | None:
    """The version ``spec`` names (``name@version`` or its id); ``None`` when there is none."""
    match = _SPEC.match(spec)
    if match is not None:
        return session.scalars(
            select(PolicyVersion).where(
                PolicyVersion.name == match["name"],
                PolicyVersion.version == int(match["version"]),
            )
        ).first()
    if spec.isdigit():
        return session.get(PolicyVersion, int(spec))
    return None


def get_version(session: Session, version_id: int) -> PolicyVersion:
    """The version of id ``version_id``, which a decision or a run just named."""
    row = session.get(PolicyVersion, version_id)
    if row is None:
        raise NotFoundError(f"policy version id {version_id} disappeared; run learn again")
    return row


def promoted_version(session: Session, name: str) -> PolicyVersion | None:
    """The promoted version of ``name`` with the highest number; ``None`` before any."""
    return session.scalars(
        select(PolicyVersion)
        .where(PolicyVersion.name == name, PolicyVersion.promoted.is_(True))
        .order_by(PolicyVersion.version.desc(), PolicyVersion.id.desc())
    ).first()


def versions_of(session: Session, name: str) -> list[PolicyVersion]:
    """Every version of ``name``, the highest number first."""
    return list(
        session.scalars(
            select(PolicyVersion)
            .where(PolicyVersion.name == name)
            .order_by(PolicyVersion.version.desc())
        )
    )


def version_numbers(connection: Connection, name: str) -> dict[int, int]:
    """Version id → number, for every version of ``name`` (to tell which made a decision)."""
    rows = connection.execute(
        select(PolicyVersion.id, PolicyVersion.version).where(PolicyVersion.name == name)
    )
    return {int(row.id): int(row.version) for row in rows}


# --- choosing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChosenVersion:
    """The promoted version planning decides with: its id, ``name@version`` and policy."""

    id: int
    spec: str
    policy: CampaignPolicy


def choose_promoted(
    connection: Connection, name: str, fits: Callable[[CampaignPolicy], bool]
) -> tuple[ChosenVersion | None, tuple[str, ...]]:
    """The latest promoted version of ``name`` that ``fits`` (the campaign's action set), and
    notes on the promoted versions passed over (unreadable, learned from a log, or made for
    other channels); ``None`` when none fits, for planning to start from a fresh prior."""
    notes: list[str] = []
    rows = connection.execute(
        select(
            PolicyVersion.id, PolicyVersion.name, PolicyVersion.version, PolicyVersion.parameters
        )
        .where(PolicyVersion.name == name, PolicyVersion.promoted.is_(True))
        .order_by(PolicyVersion.version.desc(), PolicyVersion.id.desc())
    ).all()
    for row in rows:
        spec = f"{row.name}@{row.version}"
        try:
            policy = read_policy(row.parameters or {}, origin=f"policy version {spec}")
        except InputError as exc:
            notes.append(f"policy version {spec} cannot be loaded: {exc}")
            continue
        if isinstance(policy, CampaignPolicy) and fits(policy):
            return ChosenVersion(int(row.id), spec, policy), tuple(notes)
        notes.append(
            f"policy version {spec} was made for other channels, variants or features than "
            "this campaign's; planned with a fresh prior instead"
        )
    return None, tuple(notes)


# --- recording -----------------------------------------------------------------------------------


def next_version(session: Session, name: str, *, prior: bool = False) -> int:
    """The number the next version of ``name`` gets: one past the highest; a name's first is 0
    for planning's prior and 1 for a learned version (the module's numbering rule)."""
    highest = session.scalar(
        select(func.max(PolicyVersion.version)).where(PolicyVersion.name == name)
    )
    if highest is None:
        return 0 if prior else 1
    return int(highest) + 1


def record_version(
    session: Session,
    *,
    name: str,
    kind: str,
    parameters: dict[str, Any],
    parent_id: int | None,
    now: datetime,
    promoted: bool = False,
    prior: bool = False,
) -> PolicyVersion:
    """Add the next version of ``name`` (numbered by :func:`next_version`) and flush it."""
    if not name or "@" in name or len(name) > 128 or name.strip() != name:
        raise InputError(
            f"policy name {name!r} must be 1-128 characters without '@' or surrounding spaces",
            field="name",
        )
    row = PolicyVersion(
        name=name,
        version=next_version(session, name, prior=prior),
        kind=kind,
        parameters=parameters,
        parent_id=parent_id,
        promoted=promoted,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def record_prior(
    session: Session, name: str, policy: Policy, featurizer: ContextFeaturizer, now: datetime
) -> int:
    """The id of planning's fresh prior for ``name``: an identical earlier one, else a new version
    (promoted, as the objective's only policy so far)."""
    parameters = {"policy": policy.to_dict(), "featurizer": featurizer_to_dict(featurizer)}
    for row in reversed(versions_of(session, name)):  # the oldest identical one
        if row.parent_id is None and row.kind == policy.kind and row.parameters == parameters:
            return int(row.id)
    row = record_version(
        session,
        name=name,
        kind=policy.kind,
        parameters=parameters,
        parent_id=None,
        now=now,
        promoted=True,
        prior=True,
    )
    return int(row.id)


# --- promoting -----------------------------------------------------------------------------------


def promote_version(
    engine: Engine,
    version_id: int,
    *,
    replacing: int | None,
    actor: str,
    details: dict[str, Any],
    now: datetime,
) -> int:
    """Promote version ``version_id`` in place of ``replacing``, with its audit entry; its id.

    The flag flip and the entry commit together: a promotion is never unaudited.
    """
    with sessionmaker(engine).begin() as session:
        if replacing is not None:
            previous = session.get(PolicyVersion, replacing)
            if previous is not None:
                previous.promoted = False
        chosen = session.get(PolicyVersion, version_id)
        if chosen is None:  # deleted meanwhile
            raise NotFoundError(f"policy version id {version_id} disappeared during the promotion")
        chosen.promoted = True
        entry = AuditEntry(
            at=now,
            actor=actor,
            action=PROMOTE_ACTION,
            subject=f"policy:{spec_of(chosen)}",
            details=details,
        )
        session.add(entry)
        session.flush()
        return int(entry.id)


def load_policy_file(path: str | Path) -> LearnedPolicy:
    """Read a policy file written by :func:`save_policy_file` (``tummler learn --out``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError("policy file not found; check the path", file=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a JSON policy file ({exc})", file=path) from exc
    if not isinstance(data, Mapping) or "format" not in data:  # every policy file says its format
        return LearnedPolicy.from_dict(data, origin=str(path))  # which says what is wrong
    policy = read_policy(data, origin=str(path))
    if not isinstance(policy, LearnedPolicy):
        raise InputError(
            "this policy file holds a campaign policy (a stored version's parameters), which "
            "acts on the store's contacts, not on a log; evaluate it without --log",
            file=path,
        )
    return policy
