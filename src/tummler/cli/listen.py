"""`tummler listen`: train, evaluate and try the text models (sentiment, emotion, moderation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from tummler.cli.context import console, state

if TYPE_CHECKING:
    from tummler.app.listening.models import ClassificationScores

listen_app = typer.Typer(
    help="What people say about the brand: the text models.", no_args_is_help=True
)

_Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
_Model = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="A shipped model (sentiment, emotion, offensive, hate) or a .npz file.",
    ),
]


def _data_dir(ctx: typer.Context, data: Path | None) -> Path:
    """``--data``, else the settings' ``data_dir``/sentiment."""
    if data is not None:
        return data
    configured = state(ctx).settings.data_dir
    if configured is None:
        raise typer.BadParameter(
            "give --data DIR (laid out as ../shared/data/sentiment) or set TUMMLER_DATA_DIR",
            param_hint="--data",
        )
    return configured / "sentiment"


@listen_app.command()
def train(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Labeled posts, laid out as ../shared/data/sentiment (default: data_dir/sentiment).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            file_okay=False, help="Where to write the models (default: the package's own)."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split and the samples.")] = 0,
    model: Annotated[
        list[str] | None, typer.Option("--model", "-m", help="Only these models (repeatable).")
    ] = None,
    as_json: _Json = False,
) -> None:
    """Train the text models from public labeled posts; reproducible with the same data and seed."""
    from importlib import resources

    from tummler.app.listening.training import MODEL_NAMES, train_models

    directory = _data_dir(ctx, data)
    target = out if out is not None else Path(str(resources.files("tummler.listen.models")))
    names = tuple(model) if model else MODEL_NAMES
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown:
        raise typer.BadParameter(
            f"unknown model {', '.join(unknown)}; choose among {', '.join(MODEL_NAMES)}",
            param_hint="--model",
        )
    say = (lambda _: None) if as_json else (lambda text: console.print(f"[dim]{text}…[/dim]"))
    trained = train_models(directory, target, seed=seed, names=names, step=say)
    if as_json:
        print(json.dumps([{"path": str(t.path), **t.model.card} for t in trained]))
        return
    table = Table(title="Text models (held-out posts)")
    for column in ("model", "held-out data", "posts", "macro-F1", "VADER macro-F1", "file"):
        table.add_column(column)
    for t in trained:
        for entry in t.model.card["held_out"]:
            vader = entry.get("vader")
            table.add_row(
                t.model.name,
                entry["data"],
                f"{entry['model']['n']:,}",
                f"{entry['model']['macro_f1']:.3f}",
                "" if vader is None else f"{vader['macro_f1']:.3f}",
                f"{t.path.name} ({t.path.stat().st_size / 1e6:.1f} MB, {t.seconds:.0f} s)",
            )
    console.print(table)


@listen_app.command()
def evaluate(
    data: Annotated[Path, typer.Option(dir_okay=False, help="A CSV file with text,label columns.")],
    model: _Model = "sentiment",
    as_json: _Json = False,
) -> None:
    """Score a model on labeled posts: macro-F1, recall per class, confusion; VADER beside it."""
    from tummler.app.listening.models import evaluate_model

    result = evaluate_model(data, model)
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    console.print(f"[bold]{result.model}[/bold] on {data} ({result.scores.n:,} posts)")
    _print_scores("tummler", result.scores)
    if result.vader is not None:
        _print_scores("VADER", result.vader)
        gain = result.scores.macro_f1 - result.vader.macro_f1
        console.print(f"macro-F1 {gain:+.3f} against VADER on the same posts")


def _print_scores(who: str, scores: ClassificationScores) -> None:
    table = Table(title=f"{who}: macro-F1 {scores.macro_f1:.3f}")
    table.add_column("true \\ predicted")
    for label in scores.labels:
        table.add_column(label, justify="right")
    table.add_column("recall", justify="right")
    for label, row, recall in zip(scores.labels, scores.confusion, scores.recall, strict=True):
        table.add_row(label, *(f"{v:,}" for v in row), f"{recall:.2f}")
    console.print(table)
    if scores.unknown:
        console.print(f"{scores.unknown:,} posts not in a language the model knows (counted wrong)")


@listen_app.command()
def classify(
    texts: Annotated[list[str], typer.Argument(help="Posts to classify.")],
    model: _Model = "sentiment",
    as_json: _Json = False,
) -> None:
    """Classify posts given on the command line, with each label's probability."""
    from tummler.app.listening.models import load_model

    classifier = load_model(model)
    labels = classifier.predict(texts)
    probabilities = classifier.predict_proba(texts)
    rows: list[dict[str, Any]] = [
        {
            "text": text,
            "label": label,
            "probabilities": dict(zip(classifier.labels, map(float, p), strict=True)),
        }
        for text, label, p in zip(texts, labels, probabilities, strict=True)
    ]
    if as_json:
        print(json.dumps({"model": classifier.name, "posts": rows}))
        return
    table = Table(title=classifier.name)
    table.add_column("post")
    table.add_column("label")
    for label in classifier.labels:
        table.add_column(label, justify="right")
    for row in rows:
        table.add_row(
            row["text"], row["label"], *(f"{v:.2f}" for v in row["probabilities"].values())
        )
    console.print(table)


@listen_app.command()
def score(
    ctx: typer.Context,
    model: _Model = "sentiment",
    rescore: Annotated[
        bool, typer.Option("--rescore", help="Score every mention again, imported scores too.")
    ] = False,
    as_json: _Json = False,
) -> None:
    """Score the sentiment of stored mentions that have none, for planning to read."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tummler.app.listening.scoring import score_mentions

    engine = state(ctx).engine
    with Progress(
        TextColumn("scoring mentions"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=as_json,
        transient=True,
    ) as bar:
        task = bar.add_task("score", total=None)
        report = score_mentions(
            engine,
            model=model,
            rescore=rescore,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print(json.dumps(report.__dict__))
        return
    console.print(
        f"scored {report.scored:,} mentions with {report.model}; "
        f"{report.unknown_language:,} in a language the model does not know were left unscored"
    )


@listen_app.command()
def report(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, help="The period: the last DAYS days.")] = 7,
    false_alarms: Annotated[
        float,
        typer.Option(
            "--false-alarms",
            min=0.01,
            max=100,
            help="Spike alarms by chance at most this often in 30 days.",
        ),
    ] = 1.0,
    html: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write a self-contained HTML page.")
    ] = None,
    as_json: _Json = False,
) -> None:
    """What people said: mentions and sentiment by day, themes, what to fix first, spikes."""
    from tummler.app.listening.report import listen_report

    cli = state(ctx)
    found = listen_report(
        cli.engine,
        workspace=cli.settings.workspace,
        days=days,
        false_alarms_per_30_days=false_alarms,
    )
    if html is not None:
        from tummler.web.listening import write_listen_html

        write_listen_html(found, html)
    if as_json:
        print(json.dumps(found.to_dict()))
        return
    console.print(
        f"[bold]{found.mentions:,} mentions[/bold] from {found.since[:10]} to {found.until[:10]}, "
        f"{found.scored:,} scored; mean sentiment "
        + ("—" if found.mean_sentiment is None else f"{found.mean_sentiment:+.2f}")
        + ", negative "
        + ("—" if found.negative_share is None else f"{found.negative_share:.0%}")
    )
    table = Table(title="What to fix first: themes by negative mentions")
    for column in ("theme", "mentions", "negative", "most negative post"):
        table.add_column(column)
    for theme in found.what_to_fix()[:5]:
        table.add_row(
            theme.label,
            f"{theme.mentions:,}",
            f"{theme.negative_share or 0.0:.0%}",
            theme.examples[0] if theme.examples else "",
        )
    console.print(table)
    if found.spikes:
        for spike in found.spikes:
            console.print(
                f"spike {spike.hour}: {spike.mentions:,} mentions, {spike.expected:.1f} expected"
            )
    else:
        console.print(f"no spike ({found.spike_note})" if found.spikes == () else found.spike_note)
    if html is not None:
        console.print(f"wrote {html}")
