"""The logged-bandit file reader: encoding, both file types, and a table of bad files."""

from __future__ import annotations

import re
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tummler.app.ingest import LoggedBandit, experiment_to_log, read_logged_bandit
from tummler.core.errors import InputError

LOG = """\
action,reward,propensity,timestamp,position,age,plan,city
email,1,0.5,2024-05-01T09:00:00Z,1,31,free,Paris
sms,0,0.25,2024-05-01T10:30:00Z,2,45,pro,Lyon
none,0,0.25,2024-05-01T11:00:00+02:00,1,28,free,Nice
email,0.5,1,2024-05-02T00:00:00Z,3,60,pro,Brest
"""

ACTIONS = """\
action,cost,channel
sms,0.05,phone
email,0.001,inbox
none,0,none
push,0.01,phone
"""


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_every_role_and_encodes_features(tmp_path: Path) -> None:
    logs = read_logged_bandit(write(tmp_path, LOG), max_categories=2)
    assert logs.n_rounds == 4
    assert logs.action_names == ("email", "none", "sms")
    assert logs.action.tolist() == [0, 2, 1, 0]
    assert logs.reward.tolist() == [1.0, 0.0, 0.0, 0.5]
    assert logs.propensity.tolist() == [0.5, 0.25, 0.25, 1.0]
    assert logs.position is not None
    assert logs.position.tolist() == [0, 1, 0, 2]
    assert logs.n_positions == 3
    assert logs.timestamp is not None
    assert logs.timestamp.tolist()[2] == np.datetime64("2024-05-01T09:00:00", "us").tolist()
    assert logs.timestamp.dtype == np.dtype("datetime64[us]")
    # age numeric; plan has 2 values: one-hot; city has 4 > max_categories=2: hashed.
    assert logs.feature_names[:3] == ("age", "plan=free", "plan=pro")
    assert logs.feature_names[3:] == tuple(f"city#{b}" for b in range(16))
    assert logs.context.shape == (4, 19)
    assert logs.context[:, 0].tolist() == [31.0, 45.0, 28.0, 60.0]
    assert logs.context[:, 1:3].tolist() == [[1, 0], [0, 1], [1, 0], [0, 1]]
    paris = 3 + zlib.crc32(b"Paris") % 16
    assert logs.context[0, paris] == 1.0
    assert logs.context[:, 3:].sum(axis=1).tolist() == [1.0] * 4
    assert logs.action_context is None
    assert logs.source.endswith("log.csv")


def test_parquet_reads_the_same_as_csv(tmp_path: Path) -> None:
    csv_path = write(tmp_path, LOG)
    parquet_path = tmp_path / "log.parquet"
    pq.write_table(pa_csv.read_csv(csv_path), parquet_path)
    from_csv = read_logged_bandit(csv_path)
    from_parquet = read_logged_bandit(parquet_path)
    for field in ("context", "action", "reward", "propensity", "position", "timestamp"):
        assert np.array_equal(getattr(from_csv, field), getattr(from_parquet, field)), field
    assert from_csv.feature_names == from_parquet.feature_names


def test_action_features_set_the_action_order(tmp_path: Path) -> None:
    logs = read_logged_bandit(
        write(tmp_path, LOG), action_features=write(tmp_path, ACTIONS, "a.csv")
    )
    assert logs.action_names == ("sms", "email", "none", "push")
    assert logs.action.tolist() == [1, 0, 2, 1]
    assert logs.n_actions == 4  # an action never logged still counts
    assert logs.action_feature_names == ("cost", "channel=inbox", "channel=none", "channel=phone")
    assert logs.action_context is not None
    assert logs.action_context.tolist() == [
        [0.05, 0, 0, 1],
        [0.001, 1, 0, 0],
        [0.0, 0, 1, 0],
        [0.01, 0, 0, 1],
    ]


def test_renamed_columns_and_a_pandas_index(tmp_path: Path) -> None:
    text = ",item_id,click,propensity_score,x\n0,10,0,0.5,1.5\n1,2,1,0.5,2.5\n2,10,0,0.5,3.5\n"
    items = ",item_id,weight\n0,2,1.0\n1,10,2.0\n"
    logs = read_logged_bandit(
        write(tmp_path, text),
        action_features=write(tmp_path, items, "items.csv"),
        columns={"action": "item_id", "reward": "click", "propensity": "propensity_score"},
    )
    assert logs.feature_names == ("x",)
    assert logs.action_names == ("2", "10")
    assert logs.action.tolist() == [1, 0, 1]
    assert logs.action_feature_names == ("weight",)
    # Without an action file, whole-number actions sort as numbers, not as text.
    assert read_logged_bandit(
        write(tmp_path, text, "plain.csv"),
        columns={"action": "item_id", "reward": "click", "propensity": "propensity_score"},
    ).action_names == ("2", "10")


def test_optional_columns_may_be_absent_and_timestamps_may_be_unix_seconds(
    tmp_path: Path,
) -> None:
    logs = read_logged_bandit(
        write(tmp_path, "action,reward,propensity,timestamp\na,1,1,0\nb,0,1,86400.5\n")
    )
    assert logs.position is None
    assert logs.n_positions == 1
    assert logs.context.shape == (2, 0)
    assert logs.timestamp is not None
    assert logs.timestamp.tolist()[1] == np.datetime64("1970-01-02T00:00:00.500", "us").tolist()


def test_a_bad_value_after_the_first_block_names_its_line(tmp_path: Path) -> None:
    rows = ["action,reward,propensity"] + ["a,1,0.5"] * 150_000 + ["a,lots,0.5"]
    path = write(tmp_path, "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"line 150002, field 'reward': 'lots' is not a number"):
        read_logged_bandit(path)


def test_parquet_errors_name_the_row(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    table = pa.table({"action": ["a", "b"], "reward": [1.0, 0.0], "propensity": [0.5, 0.0]})
    nan_path = tmp_path / "nan.parquet"
    pq.write_table(table.set_column(1, "reward", pa.array([1.0, float("nan")])), nan_path)
    with pytest.raises(
        InputError, match=r"nan.parquet, field 'reward': row 2: nan is not a finite"
    ):
        read_logged_bandit(nan_path)
    pq.write_table(table, path)
    with pytest.raises(InputError, match=r"log.parquet, field 'propensity': row 2: propensity 0.0"):
        read_logged_bandit(path)


HEADER = "action,reward,propensity,position,score\n"
BAD_FILES: list[tuple[str, str, str]] = [
    (
        "no propensity",
        "action,reward\na,1\n",
        r"log.csv, field 'propensity': no 'propensity' column",
    ),
    ("no rows", "action,reward,propensity\n", r"log.csv: the log has no rows"),
    (
        "propensity 0",
        HEADER + "a,1,0.5,1,0\nb,0,0,1,0\n",
        r"line 3, field 'propensity': propensity 0.0 is outside \(0, 1\]",
    ),
    (
        "propensity above 1",
        HEADER + "a,1,1.2,1,0\n",
        r"line 2, field 'propensity': propensity 1.2 is outside",
    ),
    (
        "text reward",
        HEADER + "a,1,0.5,1,0\na,yes,0.5,1,0\n",
        r"line 3, field 'reward': 'yes' is not a number",
    ),
    (
        "missing reward",
        HEADER + "a,1,0.5,1,0\na,,0.5,1,0\n",
        r"line 3, field 'reward': missing value",
    ),
    (
        "NaN reward",
        HEADER + "a,nan,0.5,1,0\n",
        r"line 2, field 'reward': missing value; every row needs the reward",
    ),
    (
        "NaN feature",
        HEADER + "a,1,0.5,1,0\na,1,0.5,1,nan\n",
        r"line 3, field 'score': missing value",
    ),
    ("missing propensity", HEADER + "a,1,,1,0\n", r"line 2, field 'propensity': missing value"),
    (
        "missing action",
        HEADER + "a,1,0.5,1,0\n,1,0.5,1,0\n",
        r"line 3, field 'action': missing action",
    ),
    ("position 0", HEADER + "a,1,0.5,0,0\n", r"line 2, field 'position': position 0 is below 1"),
    (
        "fractional position",
        HEADER + "a,1,0.5,1.5,0\n",
        r"line 2, field 'position': 1.5 is not a whole number",
    ),
    (
        "bad timestamp",
        "action,reward,propensity,timestamp\na,1,1,2024-05-01T09:00:00Z\na,1,1,yesterday\n",
        r"line 3, field 'timestamp': 'yesterday' is not an ISO 8601 timestamp",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_name_file_line_and_column(
    tmp_path: Path, case: str, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        read_logged_bandit(write(tmp_path, text))


def test_bad_action_files_and_arguments(tmp_path: Path) -> None:
    log = write(tmp_path, LOG)
    with pytest.raises(
        InputError, match=r"log.csv, line 3, field 'action': action 'sms' is not in"
    ):
        read_logged_bandit(
            log, action_features=write(tmp_path, "action,cost\nemail,1\nnone,0\n", "a.csv")
        )
    with pytest.raises(
        InputError, match=r"a2.csv, line 3, field 'action': action 'sms' appears twice"
    ):
        read_logged_bandit(log, action_features=write(tmp_path, "action\nsms\nsms\n", "a2.csv"))
    with pytest.raises(InputError, match=r"a3.csv, field 'action': no 'action' column"):
        read_logged_bandit(log, action_features=write(tmp_path, "name\nsms\n", "a3.csv"))
    with pytest.raises(InputError, match=r"missing.csv: file not found"):
        read_logged_bandit(tmp_path / "missing.csv")
    with pytest.raises(InputError, match=r"log.json: unknown file type; .* \.csv"):
        read_logged_bandit(write(tmp_path, "{}", "log.json"))
    with pytest.raises(
        InputError, match=r"field 'item': no 'item' column \(the column given for 'action'\)"
    ):
        read_logged_bandit(log, columns={"action": "item"})
    with pytest.raises(InputError, match=r"columns maps 'click', which is not a role"):
        read_logged_bandit(log, columns={"click": "reward"})
    with pytest.raises(InputError, match=r"max_categories = 0 must be a positive integer"):
        read_logged_bandit(log, max_categories=0)
    with pytest.raises(InputError, match=r"hash_buckets = 0 must be a positive integer"):
        read_logged_bandit(log, hash_buckets=0)


def test_the_result_is_frozen(tmp_path: Path) -> None:
    logs = read_logged_bandit(write(tmp_path, LOG))
    assert isinstance(logs, LoggedBandit)
    with pytest.raises(AttributeError):
        logs.reward = np.zeros(4)  # type: ignore[misc]


def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "logged-bandit-format.md").read_text("utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", doc, flags=re.DOTALL)
    csvs = [text for kind, text in blocks if kind == "csv"]
    (tmp_path / "sends.csv").write_text(csvs[0], encoding="utf-8")
    (tmp_path / "channels.csv").write_text(csvs[1], encoding="utf-8")
    code = next(text for kind, text in blocks if kind == "python")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"print": lambda *_: None}
    exec(compile(code, "logged-bandit-format.md", "exec"), namespace)
    logs = namespace["logs"]
    assert isinstance(logs, LoggedBandit)
    assert logs.action_names == ("email", "sms", "none")
    assert logs.feature_names == ("age", "plan=free", "plan=pro")
    result = namespace["result"].to_dict()  # type: ignore[attr-defined]
    assert set(result["estimates"]) == {"ips", "snips", "dm", "dr", "switch_dr"}
    assert result["estimates"]["ips"]["estimate"] == pytest.approx((2 * 1 + 0) / 4)


def test_numeric_columns_can_be_declared_categorical(tmp_path: Path) -> None:
    text = "action,reward,propensity,zip,segment\na,1,1,75001,3\na,0,1,69002,3\na,0,1,75001,4\n"
    path = write(tmp_path, text)
    assert read_logged_bandit(path).feature_names == ("zip", "segment")
    logs = read_logged_bandit(path, categorical=["zip", "segment"])
    assert logs.feature_names == ("zip=69002", "zip=75001", "segment=3", "segment=4")
    assert logs.context.tolist() == [[0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]]
    with pytest.raises(InputError, match=r"categorical = 'zip' must be a list of column names"):
        read_logged_bandit(path, categorical="zip")


@settings(max_examples=25, deadline=None)
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            st.lists(st.sampled_from(["email", "sms", "none", "push"]), min_size=n, max_size=n),
            st.lists(st.floats(-10, 10, allow_nan=False), min_size=n, max_size=n),
            st.lists(st.floats(0.001, 1.0), min_size=n, max_size=n),
            st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n),
            st.lists(st.sampled_from(["a", "b", "c"]), min_size=n, max_size=n),
        )
    )
)
def test_csv_and_parquet_round_trip(
    columns: tuple[list[str], list[float], list[float], list[float], list[str]],
) -> None:
    actions, rewards, propensities, amounts, segments = columns
    table = pa.table(
        {
            "action": actions,
            "reward": rewards,
            "propensity": propensities,
            "amount": amounts,
            "segment": segments,
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        pa_csv.write_csv(table, Path(folder) / "log.csv")
        pq.write_table(table, Path(folder) / "log.parquet")
        read = [read_logged_bandit(Path(folder) / name) for name in ("log.csv", "log.parquet")]
    for logs in read:
        assert [logs.action_names[i] for i in logs.action] == actions
        assert logs.action_names == tuple(sorted(set(actions)))
        assert logs.reward.tolist() == rewards
        assert logs.propensity.tolist() == propensities
        assert logs.context[:, 0].tolist() == amounts
        assert logs.feature_names[1:] == tuple(f"segment={s}" for s in sorted(set(segments)))
        assert (logs.context[:, 1:].sum(axis=1) == 1).all()


def test_ignored_columns_stay_out_of_the_context(tmp_path: Path) -> None:
    path = write(tmp_path, "action,reward,propensity,age,spend\na,1,0.5,30,12.5\nb,0,0.5,40,0\n")
    logs = read_logged_bandit(path, ignore=["spend"])
    assert logs.feature_names == ("age",)
    with pytest.raises(InputError, match=r"field 'visits': ignore names 'visits', not a column"):
        read_logged_bandit(path, ignore=["visits"])
    with pytest.raises(InputError, match=r"ignore = 'spend' must be a list of column names"):
        read_logged_bandit(path, ignore="spend")


def test_text_timestamps_with_and_without_offsets(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    stamps = ["2024-05-01T09:00:00", "2024-05-01T09:00:00+02:00", "2024-05-01 10:00:00Z"]
    table = pa.table(
        {"action": ["a", "b", "c"], "reward": ["1", " 0", "2"], "propensity": [1.0] * 3}
    )
    pq.write_table(table.append_column("timestamp", pa.array(stamps)), path)
    logs = read_logged_bandit(path)
    assert logs.reward.tolist() == [1.0, 0.0, 2.0]
    assert logs.timestamp is not None
    assert [str(t) for t in logs.timestamp] == [
        "2024-05-01T09:00:00.000000",
        "2024-05-01T07:00:00.000000",
        "2024-05-01T10:00:00.000000",
    ]
    odd = table.set_column(1, "reward", pa.array(["1", "0", "1_0"]))  # Python reads 1_0 as 10
    pq.write_table(odd, path)
    with pytest.raises(InputError, match=r"field 'reward': not readable as numbers"):
        read_logged_bandit(path)


def test_a_randomized_experiment_becomes_a_logged_bandit(tmp_path: Path) -> None:
    source = tmp_path / "experiment.csv"
    source.write_text(
        "arm,age,city,clicked,spend\n"
        "a,31,Lyon,1,9.5\nb,45,Oslo,0,0\nc,22,Lyon,1,3\na,50,Kyiv,0,0\n",
        encoding="utf-8",
    )
    out = experiment_to_log(
        source, tmp_path / "logs" / "log.csv", action="arm", reward="clicked", outcomes=["spend"]
    )
    logs = read_logged_bandit(out)
    assert logs.action_names == ("a", "b", "c")
    assert logs.action.tolist() == [0, 1, 2, 0]
    assert logs.reward.tolist() == [1.0, 0.0, 1.0, 0.0]
    np.testing.assert_allclose(logs.propensity, 1 / 3)  # three arms, assigned uniformly
    assert not any(name.startswith(("spend", "clicked", "arm")) for name in logs.feature_names)
    assert any(name.startswith("age") for name in logs.feature_names)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"action": "group", "reward": "clicked"}, "no column 'group'"),
        ({"action": "arm", "reward": "clicked", "outcomes": ["revenue"]}, "no column 'revenue'"),
        ({"action": "arm", "reward": "city"}, "reward column must be numeric"),
    ],
)
def test_experiment_columns_are_checked(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    source = tmp_path / "experiment.csv"
    source.write_text("arm,city,clicked\na,Lyon,1\nb,Oslo,0\n", encoding="utf-8")
    with pytest.raises(InputError, match=message):
        experiment_to_log(source, tmp_path / "log.csv", **options)
