"""The README's tour, run as written in a fresh directory: each command's exit code and a key line.

The commands are read from the shell block under "A short tour" in README.md, so a change there
changes what runs here. Each one must match an entry of ``STEPS`` (the longest prefix wins) that says
what its output must show; a README command without one fails the test, and so does an entry that no
README command matches any more. Every command runs as a real process of the installed ``tummler``
entry point, with a time limit, so a command that hangs fails instead of hanging CI.

The lines that set up the shell are checked for what they do: ``source .venv/bin/activate`` puts the
entry point's directory on the PATH (which starts without it), ``pip install -e '.[EXTRA]'`` must have
installed the extra's packages, ``cd`` changes the directory of the commands after it. The brand's
files the tour imports are written into the workspace right after ``tummler init``: the seeded example
brand of ``example_files`` (its last four weeks ending two days ago), a randomized e-mail experiment
(``past.csv``) and a uniform-logging log (``logs.csv``). ``tummler serve`` gets a free port, must answer
``GET /v1/health`` and is stopped; ``tummler person forget`` is answered "y".

Every step runs, even after one failed, and the failure lists each step that went wrong.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from example_files import write_example_data

README = Path(__file__).parents[1] / "README.md"
#: Seconds any one command may take; one that takes longer fails the step.
TIMEOUT = 120
#: Seconds ``tummler serve`` has to answer its health check.
SERVE_TIMEOUT = 60
#: People in the example brand (``write_example_data``'s default).
CONTACTS = 200
ROUNDS = 3000

#: Box-drawing characters of Rich's tables, read as spaces so that a row is its words.
_BOX = re.compile("[\u2500-\u257f]")


def _written(path: Path) -> str | None:
    return None if path.is_file() and path.stat().st_size > 0 else f"{path.name} was not written"


def _dry_run_file(workspace: Path) -> str | None:
    return _written(workspace / "outbox" / "dry-run.jsonl")


def _html_report(workspace: Path) -> str | None:
    return _written(workspace / "report.html")


def _policy_file(workspace: Path) -> str | None:
    return _written(workspace / "policy.json")


@dataclass(frozen=True)
class Step:
    """What a README command starting with ``prefix`` must do.

    ``shows``: regular expressions its output (stdout and stderr, table borders read as spaces,
    whitespace collapsed) must match; ``answer``: typed at its prompt; ``check``: a look at the
    workspace afterwards, returning what is wrong or ``None``.
    """

    prefix: str
    shows: tuple[str, ...]
    answer: str | None = None
    check: Callable[[Path], str | None] | None = None


_IMPORTED = (r"rejected 0\b", r"inserted [1-9][\d,]*")

STEPS = (
    Step("tummler init", (r"Workspace ready in my-brand",)),
    Step("tummler import contacts", (rf"read {CONTACTS}\b", *_IMPORTED)),
    Step("tummler import identities", _IMPORTED),
    Step("tummler import consent", _IMPORTED),
    Step("tummler import events", _IMPORTED),
    Step("tummler import edges", _IMPORTED),
    Step("tummler import mentions", _IMPORTED),
    Step("tummler listen classify", (r"negative",)),
    Step("tummler listen score", (r"scored [\d,]+ mentions with sentiment",)),
    Step(
        "tummler listen report",
        (r"[\d,]+ mentions.* from \d{4}-\d\d-\d\d", r"wrote listening\.html"),
    ),
    Step("tummler status", (rf"contacts {CONTACTS}\b", r"schema: \w+ \(newest: \w+\)")),
    Step("tummler strategy check", (r"strategy check passed",)),
    Step("tummler strategy show", (r"fresh-roast-reorder \(audience active-customers",)),
    Step("tummler plan", (r"fresh-roast-reorder: decided for [1-9][\d,]* contacts",)),
    Step("tummler explain", (r"cust-00001 in fresh-roast-reorder \(decided ",)),
    Step(
        "tummler send --dry-run",
        (r"dry run: [1-9][\d,]* messages written to \S*dry-run\.jsonl",),
        check=_dry_run_file,
    ),
    Step("tummler serve", (r"tummler API on http://",)),
    Step("tummler report --html", (r"holdout lift", r"wrote report\.html"), check=_html_report),
    Step("tummler report --log", (r"over No E-Mail", r"Mens E-Mail")),
    # the tour sends only a dry run: nothing went out, so nothing is learned, weighed or promoted
    Step(
        "tummler learn",
        (
            r"learned from the store's decisions",
            r"repeat-purchase: left out [1-9][\d,]* decisions whose message never went out",
        ),
    ),
    Step("tummler evaluate --promote", (r"nothing to evaluate yet.*the promoted version stays",)),
    Step("tummler learn --log", (rf"from {ROUNDS:,} rounds",), check=_policy_file),
    Step("tummler evaluate --log", (rf"logs\.csv: {ROUNDS:,} rounds", r"switch_dr")),
    Step("tummler export contacts", (rf"exported {CONTACTS} contacts",)),
    Step("tummler person show", (r'"external_id": "cust-00002"',)),
    Step("tummler person forget", (r"forgot contact #\d+",), answer="y\n"),
)


def tour_commands() -> list[list[str]]:
    """The tour's commands as argument lists, comments dropped, in the README's order."""
    section = README.read_text(encoding="utf-8").split("\n## A short tour\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "README.md's tour has no ```sh block"
    return [words for line in block[1].splitlines() if (words := shlex.split(line, comments=True))]


def _step(words: list[str]) -> Step | None:
    line = shlex.join(words)
    matches = [s for s in STEPS if line == s.prefix or line.startswith(s.prefix + " ")]
    return max(matches, key=lambda s: len(s.prefix), default=None)


def _shown(output: str) -> str:
    return " ".join(_BOX.sub(" ", output).split())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --------------------------------------------------------------------------------- the brand's files


def _write_log(path: Path, actions: tuple[str, ...], rates: tuple[float, ...], seed: int) -> None:
    """A randomized log: each action drawn with probability 1/k, a click at its rate, higher for
    people with more ``history`` under the first action (so a context-aware policy can learn)."""
    rng = np.random.default_rng(seed)
    history = rng.gamma(2.0, 100.0, size=ROUNDS)
    action = rng.integers(len(actions), size=ROUNDS)
    rate = np.asarray(rates)[action] + 0.2 * ((action == 0) & (history > 200))
    reward = (rng.random(ROUNDS) < rate).astype(int)
    rows = [
        f"{actions[a]},{r},{1 / len(actions)!r},{h:.2f}"
        for a, r, h in zip(action, reward, history, strict=True)
    ]
    path.write_text("\n".join(["action,reward,propensity,history", *rows]) + "\n", "utf-8")


def _write_brand(workspace: Path) -> None:
    """The files the tour imports and reads, into the workspace ``tummler init`` just made."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    write_example_data(workspace, contacts=CONTACTS, start=today - timedelta(days=30))
    _write_log(
        workspace / "past.csv", ("Mens E-Mail", "Womens E-Mail", "No E-Mail"), (0.18, 0.15, 0.1), 1
    )
    _write_log(workspace / "logs.csv", ("email", "sms", "none"), (0.1, 0.12, 0.05), 2)


# ------------------------------------------------------------------------------ the shell's lines


@dataclass
class Shell:
    """The tour's shell: its directory and environment, changed by ``cd`` and ``activate``."""

    cwd: Path
    env: dict[str, str]

    def run(self, words: list[str], step: Step) -> str | None:
        """Run one ``tummler`` command; what went wrong, or ``None``."""
        executable = shutil.which(words[0], path=self.env["PATH"])
        if executable is None:
            return f"{words[0]!r} is not on the PATH (is the venv activated first?)"
        if step.prefix == "tummler serve":
            return self._serve([executable, *words[1:]], step)
        try:
            done = subprocess.run(
                [executable, *words[1:]],
                cwd=self.cwd,
                env=self.env,
                input=step.answer or "",
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            return f"still running after {TIMEOUT} s; it printed: {_tail(exc.output)}"
        if done.returncode != 0:
            return f"exit code {done.returncode}: {_tail(done.stdout)}"
        return self._expect(step, done.stdout)

    def _serve(self, command: list[str], step: Step) -> str | None:
        port = _free_port()
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            problem = _healthy(f"http://127.0.0.1:{port}/v1/health", server)
        finally:
            server.terminate()
            try:
                output, _ = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                output, _ = server.communicate()
        return problem or self._expect(step, output)

    def _expect(self, step: Step, output: str) -> str | None:
        shown = _shown(output)
        missing = [pattern for pattern in step.shows if re.search(pattern, shown) is None]
        if missing:
            return f"its output lacks {missing}: {_tail(output)}"
        return step.check(self.cwd) if step.check is not None else None

    def activate(self, words: list[str]) -> str | None:
        """``source .venv/bin/activate``: the entry point's directory goes first on the PATH."""
        scripts = Path(sys.executable).parent
        if not (scripts / "tummler").is_file():
            return f"no tummler entry point beside {sys.executable}: install the package first"
        self.env["PATH"] = os.pathsep.join([str(scripts), self.env["PATH"]])
        return None

    def installed(self, words: list[str]) -> str | None:
        """``pip install -e '.[EXTRA]'``: every package the extras name must be installed."""
        spec = words[-1]
        extras = re.findall(r"[\w-]+", spec[spec.index("[") :]) if "[" in spec else []
        missing = [name for name in _extra_packages(extras) if not _is_installed(name)]
        return f"{', '.join(missing)} not installed" if missing else None


def _extra_packages(extras: list[str]) -> set[str]:
    """The distributions tummler's ``extras`` require, following ``tummler[...]`` within them."""
    names: set[str] = set()
    for requirement in importlib.metadata.requires("tummler") or []:
        spec, _, marker = requirement.partition(";")
        if not any(re.search(rf"extra == ['\"]{e}['\"]", marker) for e in extras):
            continue
        name = re.match(r"[\w.-]+", spec.strip())
        assert name is not None, requirement
        if name[0] == "tummler":
            names |= _extra_packages(re.findall(r"[\w-]+", spec[spec.index("[") :]))
        else:
            names.add(name[0])
    return names


def _is_installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def _healthy(url: str, server: subprocess.Popen[str]) -> str | None:
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return f"exited with code {server.returncode} before answering {url}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return None if response.status == 200 else f"{url} answered {response.status}"
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    return f"{url} did not answer within {SERVE_TIMEOUT} s"


def _tail(output: str | bytes | None, limit: int = 600) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    text = " ".join(text.split())
    return text if len(text) <= limit else "…" + text[-limit:]


def _fresh_environment() -> dict[str, str]:
    """This process's environment as a new shell has it: no TUMMLER_* settings, and the entry
    point's directory off the PATH until the tour activates the venv."""
    scripts = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUMMLER_")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != scripts)
    env["COLUMNS"] = "200"  # long lines stay whole, so that a key line is one line
    return env


# ------------------------------------------------------------------------------------------- tests


def test_every_tour_command_has_an_expectation_and_every_expectation_a_command() -> None:
    commands = tour_commands()
    shell = {"cd", "source", "pip"}
    unknown = [shlex.join(w) for w in commands if w[0] not in shell and _step(w) is None]
    assert not unknown, f"README tour commands with no Step in {Path(__file__).name}: {unknown}"
    used = {_step(w) for w in commands}
    unused = [s.prefix for s in STEPS if s not in used]
    assert not unused, f"Steps that no README tour command matches any more: {unused}"


@pytest.mark.slow
def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    shell = Shell(cwd=tmp_path, env=_fresh_environment())
    problems: list[str] = []
    for words in tour_commands():
        line = shlex.join(words)
        if words[0] == "cd":
            shell.cwd = shell.cwd / words[1]
            problem = None if shell.cwd.is_dir() else f"no directory {shell.cwd}"
        elif words[0] == "source":
            problem = shell.activate(words)
        elif words[:2] == ["pip", "install"]:
            problem = shell.installed(words)
        else:
            step = _step(words)
            problem = "no Step says what it must show" if step is None else shell.run(words, step)
            if problem is None and words[:2] == ["tummler", "init"]:
                _write_brand(shell.cwd / words[2])
        if problem is not None:
            problems.append(f"`{line}`: {problem}")
    assert not problems, "README tour steps that failed:\n" + "\n".join(problems)
