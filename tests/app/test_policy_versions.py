"""Policy versions (tummler.app.policies): one numbering rule, one reader, one promotion."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from tummler.app import policies
from tummler.app.policies import CampaignPolicy
from tummler.core.errors import InputError
from tummler.decide import ContextFeaturizer, LogisticThompson
from tummler.store.models import AuditEntry, PolicyVersion

NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
FEATURIZER = ContextFeaturizer(numeric=("age",), channels=("email", "sms"))


def prior() -> LogisticThompson:
    return LogisticThompson(len(FEATURIZER.feature_names()), 2, 2)


def test_numbering_prior_from_0_learned_from_1_then_one_past_the_highest(engine: Engine) -> None:
    with sessionmaker(engine).begin() as session:
        first = policies.record_prior(session, "reorder", prior(), FEATURIZER, NOW)
        # an identical prior is reused, not numbered again
        assert policies.record_prior(session, "reorder", prior(), FEATURIZER, NOW) == first
        learned = policies.record_version(
            session,
            name="reorder",
            kind="logistic_thompson",
            parameters={},
            parent_id=first,
            now=NOW,
        )
        logged = policies.record_version(
            session, name="mail", kind="linear_thompson", parameters={}, parent_id=None, now=NOW
        )
        prior_row = session.get(PolicyVersion, first)
        assert prior_row is not None
        assert (prior_row.version, learned.version, logged.version) == (0, 1, 1)
        assert policies.next_version(session, "reorder", prior=True) == 2
        assert prior_row.promoted


def test_find_by_spec_or_id_and_promote_with_an_audit_entry(engine: Engine) -> None:
    with sessionmaker(engine, expire_on_commit=False).begin() as session:
        old = policies.record_prior(session, "reorder", prior(), FEATURIZER, NOW)
        new = policies.record_version(
            session,
            name="reorder",
            kind="logistic_thompson",
            parameters={},
            parent_id=old,
            now=NOW,
        )
    with Session(engine) as session:
        by_spec = policies.find_version(session, "reorder@1")
        by_id = policies.find_version(session, str(new.id))
        assert by_spec is not None
        assert by_spec.id == new.id
        assert by_id is not None
        assert by_id.id == new.id
        assert policies.find_version(session, "reorder@9") is None
        assert policies.find_version(session, "uniform") is None
    entry = policies.promote_version(
        engine, new.id, replacing=old, actor="test", details={"why": "better"}, now=NOW
    )
    with Session(engine) as session:
        promoted = policies.promoted_version(session, "reorder")
        replaced = session.get(PolicyVersion, old)
        assert promoted is not None
        assert replaced is not None
        assert policies.spec_of(promoted) == "reorder@1"
        assert not replaced.promoted
        audit = session.scalars(select(AuditEntry)).one()
    assert (audit.id, audit.action, audit.subject) == (
        entry,
        policies.PROMOTE_ACTION,
        "policy:reorder@1",
    )


@pytest.mark.parametrize("layout", ["planning", "format-2", "bare"])
def test_one_reader_for_every_stored_layout(layout: str) -> None:
    policy = prior()
    featurizer = policies.featurizer_to_dict(FEATURIZER)
    data = {
        "planning": {"policy": policy.to_dict(), "featurizer": featurizer},
        "format-2": CampaignPolicy(policy, FEATURIZER).to_dict(),
        "bare": policy.to_dict(),
    }[layout]
    read = policies.read_policy(data)
    assert isinstance(read, CampaignPolicy)
    assert read.policy.to_dict() == policy.to_dict()
    assert read.featurizer == (None if layout == "bare" else FEATURIZER)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "must be a JSON object"),
        ({"format": "other/9"}, "not a tummler policy file"),
        ({"policy": {"kind": "nope"}, "featurizer": {}}, "parts cannot be read"),
    ],
)
def test_the_reader_names_what_is_wrong(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        policies.read_policy(data, origin="test")


def test_choose_the_latest_promoted_version_that_fits(engine: Engine) -> None:
    with sessionmaker(engine).begin() as session:
        policies.record_prior(session, "reorder", prior(), FEATURIZER, NOW)
        policies.record_version(
            session,
            name="reorder",
            kind="logistic_thompson",
            parameters={"format": "x"},
            parent_id=None,
            now=NOW,
            promoted=True,
        )
    with engine.connect() as connection:
        chosen, notes = policies.choose_promoted(connection, "reorder", lambda p: True)
        assert chosen is not None
        assert chosen.spec == "reorder@0"
        assert len(notes) == 1
        assert notes[0].startswith("policy version reorder@1 cannot be loaded: ")
        assert "not a tummler policy file (format 'x'" in notes[0]
        chosen, notes = policies.choose_promoted(connection, "reorder", lambda p: False)
        assert chosen is None
        assert "reorder@0 was made for other channels" in notes[-1]
