"""The audience expression language: parsed, never executed; evaluated over columns into a mask."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.strategy import (
    And,
    Compare,
    ContactColumns,
    Expression,
    ExpressionError,
    Field,
    Membership,
    Not,
    Or,
    Predicate,
    Truthy,
    attribute_names,
    evaluate,
    matches,
    parse_duration,
    parse_expression,
    predicate_arguments,
    unmet_conditions,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)

CONTACTS: list[dict[str, Any]] = [
    {  # 0: German customer, engaged 3 days ago, email consent
        "external_id": "c0",
        "stage": "customer",
        "locale": "de-DE",
        "attributes": {"country": "DE", "orders": 3, "vip": True},
        "consents": {"email"},
        "identities": {"email", "sms"},
        "last_engaged_at": NOW - timedelta(days=3),
    },
    {  # 1: French advocate, engaged 40 days ago
        "external_id": "c1",
        "stage": "advocate",
        "attributes": {"country": "FR", "orders": 12},
        "consents": {"email", "sms"},
        "identities": {"email"},
        "last_engaged_at": NOW - timedelta(days=40),
    },
    {  # 2: German prospect, never engaged, no attributes
        "external_id": "c2",
        "stage": "prospect",
        "attributes": {},
        "consents": set(),
        "identities": set(),
        "last_engaged_at": None,
    },
    {  # 3: German subscriber with a string where a number is expected
        "external_id": "c3",
        "stage": "subscriber",
        "attributes": {"country": "DE", "orders": "many", "vip": False},
        "consents": {"sms"},
        "identities": {"sms"},
        "last_engaged_at": NOW - timedelta(days=29, hours=23),
    },
]
VIEW = ContactColumns.from_records(CONTACTS, now=NOW)


@pytest.mark.parametrize(
    ("text", "selected"),
    [
        ('stage in ["customer", "advocate"]', [0, 1]),
        ('stage in ["customer", "advocate"] and attributes.country == "DE"', [0]),
        (
            'stage in ["customer", "advocate"] and attributes.country == "DE" '
            'and engaged_within("30d")',
            [0],
        ),
        ('engaged_within("30d")', [0, 3]),
        ('engaged_within("5w")', [0, 3]),
        ('engaged_within("4w")', [0]),  # 28 days: contact 3 engaged 29 days 23 hours ago
        ('engaged_within("41d")', [0, 1, 3]),
        ('consent("email")', [0, 1]),
        ('not consent("email")', [2, 3]),
        ('has_identity("sms")', [0, 3]),
        ('attributes.country == "DE" or stage == "advocate"', [0, 1, 3]),
        ('attributes.country != "DE"', [1, 2]),  # missing counts as "not DE"
        ("attributes.country == null", [2]),
        ("attributes.country != null", [0, 1, 3]),
        ("attributes.orders > 2", [0, 1]),  # "many" is not a number: false, not an error
        ("attributes.orders >= 3 and attributes.orders < 12", [0]),
        ("attributes.orders <= 3.5", [0]),
        ("attributes.vip", [0]),
        ("not attributes.vip", [1, 2, 3]),
        ("attributes.vip == false", [3]),
        ('attributes.country not in ["DE"]', [1, 2]),
        ('attributes.country in ["DE", "FR"] and not (stage == "customer" or consent("sms"))', []),
        ('(stage == "prospect")', [2]),
        ('locale == "de-DE"', [0]),
        ('external_id in ["c1", "c3"]', [1, 3]),
        ('attributes.country > "E"', [1]),  # strings compare with strings
        ("attributes.orders == 3.0", [0]),  # 3 == 3.0
        ("attributes.orders == true", []),  # a number is not a boolean
        ("attributes.unknown == 1", []),
        ("not not attributes.vip", [0]),
        (
            'stage == "customer" or stage == "advocate" and consent("sms")',
            [0, 1],
        ),  # and binds first
    ],
)
def test_evaluates_to_the_known_audience(text: str, selected: list[int]) -> None:
    mask = evaluate(text, VIEW)
    assert mask.dtype == np.bool_
    assert mask.shape == (len(CONTACTS),)
    assert np.flatnonzero(mask).tolist() == selected
    for i, record in enumerate(CONTACTS):
        assert matches(text, record, now=NOW) is (i in selected)


def test_parses_the_issue_example_into_its_tree() -> None:
    tree = parse_expression(
        'stage in ["customer", "advocate"] and attributes.country == "DE" and engaged_within("30d")'
    )
    assert tree == And(
        (
            Membership(Field("stage"), ("customer", "advocate")),
            Compare(Field("attributes.country"), "==", "DE"),
            Predicate("engaged_within", "30d"),
        )
    )
    assert attribute_names(tree) == {"country"}


def test_reports_what_it_reads() -> None:
    tree = parse_expression('consent("email") and not has_identity("sms") or attributes.a in [1]')
    assert predicate_arguments(tree, "consent") == {"email"}
    assert predicate_arguments(tree, "has_identity") == {"sms"}
    assert attribute_names(tree) == {"a"}


def test_strings_accept_single_quotes_and_escapes() -> None:
    assert parse_expression("attributes.name == 'O\\'Brien'") == Compare(
        Field("attributes.name"), "==", "O'Brien"
    )
    assert parse_expression('attributes.name == "say \\"hi\\""') == Compare(
        Field("attributes.name"), "==", 'say "hi"'
    )


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("", 1, "empty"),
        ("stage ==", 9, "expected a literal"),
        ('stage = "customer"', 7, "unexpected character '='"),
        ('stage in "customer"', 10, "a list"),
        ('stage in ["a" "b"]', 15, "expected ',' or ']'"),
        ('(stage == "a"', 14, "')' to close the '(' at column 1"),
        ('stage == "a")', 13, "'and', 'or' or the end"),
        ('country == "DE"', 1, "unknown field 'country'"),
        ('attributes == "DE"', 12, "'.' and an attribute name"),
        ('attributes."x" == 1', 12, "an attribute name"),
        ('engaged_within("30 days")', 16, "is not a duration"),
        ('engaged_within("0d")', 16, "is zero"),
        ("engaged_within(30)", 16, "a quoted string"),
        ('consent("")', 9, "needs a channel name"),
        ('consent "email"', 9, "'(' after consent"),
        ('stage == "customer', 10, "string is not closed"),
        ('stage == "a\\qb"', 12, "unknown escape"),
        ("attributes.x < true", 16, "needs a number or a string"),
        ("attributes.x >= null", 17, "needs a number or a string"),
        ('stage not "a"', 11, "'in' after 'not'"),
        ("and stage", 1, "a field (stage"),
        ('__import__("os")', 1, "unknown field '__import__'"),
        ("attributes.x == 1e999", 17, "out of range"),
        ("stage == customer", 10, "expected a literal"),
        ('stage == "a" and', 17, "the end of the expression"),
    ],
)
def test_parse_errors_name_the_column_and_what_was_expected(
    text: str, column: int, fragment: str
) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    assert caught.value.column == column
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"column {column}: ")


def test_refuses_too_deep_nesting_and_too_long_text_with_a_clear_error() -> None:
    with pytest.raises(ExpressionError, match="nested deeper than 32"):
        parse_expression("(" * 40 + "attributes.vip" + ")" * 40)
    with pytest.raises(ExpressionError, match="nested deeper than 32"):
        parse_expression("not " * 40 + "attributes.vip")
    with pytest.raises(ExpressionError, match="at most 4000"):
        parse_expression(" or ".join(["attributes.vip"] * 400))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", timedelta(minutes=90)), ("12h", timedelta(hours=12)), (" 2w ", timedelta(days=14))],
)
def test_parses_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "d", "1.5d", "-1d", "30 days", "0h", "999999d"])
def test_refuses_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|zero"):
        parse_duration(text)


def test_contact_columns_refuse_mismatched_lengths_and_naive_times() -> None:
    with pytest.raises(ExpressionError, match="has 1 values for 2 contacts"):
        ContactColumns(size=2, now=NOW, attributes={"a": [1]})
    with pytest.raises(ExpressionError, match=r"consents\['email'\] has 3 values for 2"):
        ContactColumns(size=2, now=NOW, consents={"email": [True, False, True]})
    with pytest.raises(ExpressionError, match="timezone-aware"):
        ContactColumns(size=0, now=datetime(2026, 1, 1))
    with pytest.raises(ExpressionError, match="no time zone"):
        ContactColumns.from_records([{"last_engaged_at": datetime(2026, 1, 1)}], now=NOW)


def test_evaluates_an_empty_view_to_an_empty_mask() -> None:
    mask = evaluate('stage == "customer" and engaged_within("1d")', ContactColumns(size=0, now=NOW))
    assert mask.shape == (0,)


# ------------------------------------------------------------------------------- property tests

_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda n: n not in {"and", "or", "not", "in", "true", "false", "null"}
)
_fields = st.one_of(
    st.sampled_from(["stage", "locale", "time_zone", "external_id"]).map(Field),
    _names.map(lambda n: Field(f"attributes.{n}")),
)
_strings = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"), max_size=12
)
_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
)
_scalars = st.one_of(_strings, _numbers, st.booleans(), st.none())
_leaves = st.one_of(
    st.builds(Compare, _fields, st.sampled_from(["==", "!="]), _scalars),
    st.builds(
        Compare, _fields, st.sampled_from(["<", "<=", ">", ">="]), st.one_of(_strings, _numbers)
    ),
    st.builds(Membership, _fields, st.lists(_scalars, max_size=4).map(tuple), st.booleans()),
    st.builds(Predicate, st.sampled_from(["consent", "has_identity"]), _names),
    st.builds(
        Predicate,
        st.just("engaged_within"),
        st.tuples(st.integers(1, 400), st.sampled_from("mhdw")).map(lambda t: f"{t[0]}{t[1]}"),
    ),
    st.builds(Truthy, _fields),
)


def _trees(children: st.SearchStrategy[Expression]) -> st.SearchStrategy[Expression]:
    return st.one_of(
        st.builds(Not, children),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
        st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
    )


_expressions = st.recursive(_leaves, _trees, max_leaves=8)


@given(_expressions)
@settings(max_examples=300, deadline=None)
def test_printing_then_parsing_gives_the_same_tree(tree: Expression) -> None:
    assert parse_expression(str(tree)) == tree


@given(_expressions)
@settings(max_examples=150, deadline=None)
def test_evaluation_is_boolean_logic_over_the_columns(tree: Expression) -> None:
    mask = evaluate(tree, VIEW)
    assert mask.shape == (len(CONTACTS),)
    assert (evaluate(Not(tree), VIEW) == ~mask).all()
    assert not (evaluate(And((tree, Not(tree))), VIEW)).any()
    assert evaluate(Or((tree, Not(tree))), VIEW).all()


_fragments = st.sampled_from(
    [
        "stage",
        "attributes",
        ".",
        "country",
        "==",
        "!=",
        "<",
        ">=",
        "in",
        "not",
        "and",
        "or",
        "(",
        ")",
        "[",
        "]",
        ",",
        '"DE"',
        "'x'",
        "1",
        "2.5",
        "-3",
        "true",
        "null",
        "consent",
        'engaged_within("30d")',
        "__import__",
        "os",
        "system",
        "lambda",
        ";",
        "{",
        "}",
        "\\",
        '"',
        "'",
        "exec",
        "eval",
        "__class__",
        "`",
        "$",
        "\n",
        " ",
    ]
)


@given(st.one_of(st.text(max_size=80), st.lists(_fragments, max_size=25).map(" ".join)))
@settings(max_examples=600, deadline=None)
def test_any_text_parses_or_fails_with_a_clear_error(text: str) -> None:
    """Fuzz: nothing crashes with anything but ExpressionError, and nothing is ever executed."""
    error: ExpressionError | None = None
    try:
        tree = parse_expression(text)
    except ExpressionError as exc:
        error = exc
    if error is not None:
        assert str(error)
        assert error.column is None or 1 <= error.column <= len(text) + 1
        return
    assert evaluate(tree, VIEW).dtype == np.bool_


def test_code_in_an_expression_is_never_run(tmp_path: Any) -> None:
    marker = tmp_path / "ran"
    attempts = [
        f'__import__("os").system("touch {marker}")',
        f'stage == "a" or open("{marker}", "w")',
        f'attributes.x == (lambda: open("{marker}", "w"))()',
        "().__class__.__bases__[0].__subclasses__()",
    ]
    for text in attempts:
        with pytest.raises(ExpressionError):
            parse_expression(text)
    assert not marker.exists()


def test_the_strategy_package_exports_what_its_modules_define() -> None:
    import tummler.strategy as package

    for name in package.__all__:
        assert hasattr(package, name), name
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith("tummler.strategy")
    }
    assert public <= set(package.__all__)


def test_numpy_scalars_compare_like_python_ones() -> None:
    view = ContactColumns(
        size=3,
        now=NOW,
        fields={"stage": np.array(["customer", "prospect", "customer"], dtype=object)},
        attributes={
            "orders": np.array([np.int64(3), np.float64(1.5), None], dtype=object),
            "vip": np.array([np.bool_(True), np.bool_(False), True], dtype=object),
            "country": np.array([np.str_("DE"), "FR", None], dtype=object),
        },
    )
    assert evaluate("attributes.orders >= 2", view).tolist() == [True, False, False]
    assert evaluate("attributes.orders == 1.5", view).tolist() == [False, True, False]
    assert evaluate("attributes.vip", view).tolist() == [True, False, True]
    assert evaluate("attributes.vip == false", view).tolist() == [False, True, False]
    assert evaluate('attributes.country in ["DE", 1]', view).tolist() == [True, False, False]
    assert evaluate('attributes.country == "DE"', view).tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("text", "index", "unmet"),
    [
        ('stage == "customer"', 0, []),
        (
            'stage in ["customer", "advocate"] and engaged_within("7d")',
            3,
            [
                'stage in ["customer", "advocate"] (stage is "subscriber")',
                'engaged_within("7d") (last engaged 2026-01-30 13:00 UTC)',
            ],
        ),
        ('consent("email") and attributes.vip', 2, [
            'consent("email") (consent to email not granted)',
            "attributes.vip (attributes.vip is missing)",
        ]),
        (
            'attributes.orders >= 5 and has_identity("sms")',
            1,
            ['has_identity("sms") (no identity on sms)'],
        ),
        ('engaged_within("7d") or attributes.country == "FR"', 2, [
            'engaged_within("7d") or attributes.country == "FR" '
            "(never engaged; attributes.country is missing)",
        ]),
        ('not attributes.vip', 0, ["not attributes.vip (attributes.vip is true)"]),
    ],
)  # fmt: skip
def test_unmet_conditions_name_each_failed_condition_and_the_contacts_value(
    text: str, index: int, unmet: list[str]
) -> None:
    one = ContactColumns.from_records([CONTACTS[index]], now=NOW)
    assert unmet_conditions(text, one) == unmet


def test_unmet_conditions_explain_one_contact_at_a_time() -> None:
    with pytest.raises(ExpressionError, match="explains one contact; the view holds 4"):
        unmet_conditions('stage == "customer"', VIEW)
