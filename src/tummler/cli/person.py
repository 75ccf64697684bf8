"""`tummler person`: a person's rights: see everything held about them, or forget them."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from tummler.cli.context import console, state
from tummler.core.errors import InputError

if TYPE_CHECKING:
    from tummler.app.privacy import ForgetReport

person_app = typer.Typer(
    help="A person's rights: see everything held about them, or forget them.", no_args_is_help=True
)

_PersonArgument = Annotated[
    str,
    typer.Argument(
        metavar="ID",
        help="External id, or CHANNEL:ADDRESS to find the person by an identity "
        "(email:ana@example.org, sms:+33612345678).",
        show_default=False,
    ),
]

#: Labels of the counts a forget reports, in the order they are shown.
_LABELS = {
    "identities": "identities deleted",
    "consent_events": "consent events deleted",
    "social_edges": "social edges deleted (in and out)",
    "mentions": "mentions stripped of text, handle and link",
    "mention_texts_redacted": "other people's mentions redacted",
    "attributes": "attributes cleared",
    "decision_reasons_redacted": "decision reasons redacted",
    "deliveries_cleared": "deliveries cleared of provider data",
    "audit_entries_redacted": "audit entries redacted",
    "contact_changes": "history rows cleared of attributes",
    "file_records": "records removed or redacted in tummler's files",
}


@person_app.command("show")
def show(
    ctx: typer.Context,
    person: _PersonArgument,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", dir_okay=False, help="Write the JSON to this file."),
    ] = None,
) -> None:
    """Everything held about one person, as one JSON document (a data access request)."""
    from tummler.app.privacy import person_record
    from tummler.app.strategy import strategy_channels

    cli = state(ctx)
    channels = strategy_channels(cli.settings.workspace)
    record = person_record(cli.engine, person=person, channels=channels)
    text = json.dumps(record, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
        return
    from tummler.app.personal_files import remember_personal_file
    from tummler.core.clock import SystemClock

    # recorded before it is written: forgetting the person must find this copy too
    remember_personal_file(cli.engine, out, "person_record", now=SystemClock().now())
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}; choose another --out", file=out) from exc
    console.print(
        f"wrote everything held about contact #{record['contact']['id']} to {out}", markup=False
    )


@person_app.command("forget")
def forget(
    ctx: typer.Context,
    person: _PersonArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    actor: Annotated[
        str | None,
        typer.Option(help="Who asks, for the audit log (default: cli:<your user name>)."),
    ] = None,
) -> None:
    """Erase a person's personal data everywhere; anonymous aggregates stay; the act is audited.

    Identities, consent, social edges, attributes and mention texts go; events, decisions and deliveries stay, linked to an anonymous contact. The person's old identifiers find nobody afterwards.

    Without --yes, shows what will be erased and asks first.
    """
    from tummler.app.privacy import forget_person

    engine = state(ctx).engine
    who = actor or _default_actor()
    if not yes:
        plan = forget_person(engine, person=person, actor=who, dry_run=True)
        if plan.already_forgotten:
            _already(plan)
            return
        console.print(
            _table(plan, title=f"forgetting contact #{plan.contact_id} will erase", identities=True)
        )
        _files(plan)
        typer.confirm("Forget this person? This cannot be undone.", abort=True)
    report = forget_person(engine, person=person, actor=who)
    if report.already_forgotten:
        _already(report)
        return
    console.print(_table(report, title=f"forgot contact #{report.contact_id}", identities=False))
    _files(report)
    console.print(
        f"contact #{report.contact_id} is now {report.token}; "
        f"audit entry #{report.audit_entry_id} records it; their identifiers are suppressed, "
        "so no import, API call or callback brings them back.",
        highlight=False,
    )
    if report.sent_on:
        console.print(
            f"they were sent messages on {', '.join(report.sent_on)}: the providers behind those "
            "channels keep their own copies; ask them to erase the address too.",
            highlight=False,
        )
    if report.store_note:
        console.print(f"note: {report.store_note}", highlight=False)


def _files(report: ForgetReport) -> None:
    """The files tummler wrote that may have held the person, and what became of each."""
    if not report.files:
        return
    table = Table(title="tummler's files")
    for column in ("file", "status", "records removed", "redacted"):
        table.add_column(column, justify="right" if column != "file" else "left")
    for scrub in report.files:
        status = scrub.status if scrub.detail is None else f"{scrub.status}: {scrub.detail}"
        table.add_row(
            escape(scrub.path), escape(status), f"{scrub.removed:,}", f"{scrub.redacted:,}"
        )
    console.print(table)


def _already(report: ForgetReport) -> None:
    console.print(
        f"contact #{report.contact_id} ({report.token}) was already forgotten: nothing to do.",
        highlight=False,
    )


def _table(report: ForgetReport, *, title: str, identities: bool) -> Table:
    """What was (or will be) erased; identities only before, not to leave them in a terminal log."""
    table = Table(title=title, show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for identity in report.identities if identities else ():
        table.add_row(escape(f"identity {identity}"), "")
    for key, label in _LABELS.items():
        table.add_row(label, f"{report.erased.get(key, 0):,}")
    for key, count in report.kept.items():
        table.add_row(f"{key} kept, anonymous", f"{count:,}")
    return table


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in this environment
        return "cli"
