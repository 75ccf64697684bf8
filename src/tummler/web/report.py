"""The report as one self-contained HTML page: inline CSS and inline SVG plots, nothing fetched.

The page must open offline, from an e-mail attachment or a shared drive, years later: so no CDN,
no web font, no script, and every plot is SVG drawn here from the report's numbers. Each plot has
a stable ``id`` (``plot-lift``, ``plot-learning``, ``plot-simulated-learning``, ``plot-goals``,
``plot-send-time-<campaign>``,
``plot-channels-<campaign>``; ``plot-means`` for a logged experiment) so that tests and readers
can find it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from tummler.app.reporting import (
    BreadthDepth,
    CampaignReport,
    CellResponse,
    LearningPoint,
    Lift,
    LogReport,
    StageTransitions,
    StoreReport,
)
from tummler.web.charts import (
    BAD,
    GOOD,
    MUTED,
    band_plot,
    bar_plot,
    goals_plot,
    interval_plot,
    lines_plot,
    number_text,
    share_text,
)

__all__ = ["SimulatedCurve", "page", "render_log_html", "render_store_html", "write_html"]


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7fb; color: #1f2933;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background: #18233a; color: #fff; padding: 28px 40px 24px; }
header h1 { margin: 0 0 4px; font-size: 24px; font-weight: 650; letter-spacing: -0.01em; }
header p { margin: 0; color: #c5cee0; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 24px 48px; }
section { background: #fff; border: 1px solid #e3e8f0; border-radius: 10px; padding: 20px 24px;
  margin: 0 0 20px; box-shadow: 0 1px 2px rgba(16, 24, 40, 0.04); }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 8px; color: #3e4c63; }
p.verdict { margin: 6px 0 12px; padding: 10px 14px; border-left: 4px solid #2f6fde;
  background: #f0f5ff; border-radius: 0 6px 6px 0; }
p.verdict.effect { border-color: #1b8a5a; background: #eefaf3; }
p.verdict.warn { border-color: #c2410c; background: #fff4ed; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 4px; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #edf0f5; }
th { color: #5b6b83; font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.04em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.tag { display: inline-block; padding: 1px 8px; border-radius: 99px; font-size: 12px;
  font-weight: 600; }
.tag.causal { background: #e3f6ec; color: #1b6b47; }
.tag.observational { background: #fdecdf; color: #9a3412; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: inherit; fill: #3e4c63; }
.note { color: #5b6b83; font-size: 13px; }
footer { text-align: center; color: #8a94a6; font-size: 12px; padding: 0 0 24px; }
"""


#: An inline icon, so that a browser asks no server for ``/favicon.ico``.
_FAVICON = (
    '<link rel="icon" href="data:image/svg+xml,'
    "%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%232f6fde'/%3E%3C/svg%3E\">"
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


@dataclass(frozen=True)
class SimulatedCurve:
    """A learning curve measured in a simulation, where the true value of every choice is known.

    Attributes
    ----------
    rounds
        The rounds' numbers (the x axis).
    series
        ``(label, values)`` per policy, one value per round; the first is the one being shown
        off, the others its baselines.
    note
        What the values are, in a sentence or two (printed under the plot).
    """

    rounds: tuple[int, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]
    note: str = ""


def _version_ticks(curve: Sequence[LearningPoint]) -> list[tuple[float, str]]:
    """Tick labels for the learning curve: every version while they fit, then every k-th (and the
    last), labelled ``v<n>`` once there are more than a few (the policy's name is in the title)."""
    if len(curve) <= 4:
        return [(float(i), f"{p.policy} v{p.version}") for i, p in enumerate(curve)]
    step = -(-len(curve) // 10)
    shown = {*range(0, len(curve), step), len(curve) - 1}
    return [(float(i), f"v{curve[i].version}") for i in sorted(shown)]


def _simulated_section(curve: SimulatedCurve) -> str:
    x = [float(r) for r in curve.rounds]
    head = "".join(f'<th class="num">{escape(label)}</th>' for label, _ in curve.series)
    rows = "".join(
        f'<tr><td class="num">{number}</td>'
        + "".join(f'<td class="num">{number_text(values[i], 1)}</td>' for _, values in curve.series)
        + "</tr>"
        for i, number in enumerate(curve.rounds)
    )
    totals = "".join(
        f'<td class="num"><b>{number_text(math.fsum(values), 1)}</b></td>'
        for _, values in curve.series
    )
    return (
        '<section id="simulated-learning"><h2>Learning curve against the baselines</h2>'
        + lines_plot(
            "plot-simulated-learning", "true expected reward per round, by policy", x, curve.series
        )
        + (f'<p class="note">{escape(curve.note)}</p>' if curve.note else "")
        + f'<table><tr><th class="num">round</th>{head}</tr>{rows}'
        + f'<tr><td class="num"><b>total</b></td>{totals}</tr></table></section>'
    )


def _verdict(lift: Lift) -> str:
    kind = "effect" if lift.verdict.value == "effect" else "warn"
    if lift.verdict.value == "no_effect":
        kind = ""
    return f'<p class="verdict {kind}">{escape(lift.message)}</p>'


def _lift_table(lift: Lift) -> str:
    rate = lift.kind == "rate"
    fmt = share_text if rate else number_text

    def diff(value: float) -> str:
        return f"{value * 100:+.1f} pp" if rate else f"{value:+.4g}"

    return (
        '<table><tr><th>group</th><th class="num">people</th><th class="num">KPI</th><th class="num">interval</th></tr>'
        f'<tr><td>treated</td><td class="num">{lift.n_treated:,}</td>'
        f'<td class="num">{fmt(lift.treated_mean)}</td>'
        f'<td class="num">{fmt(lift.treated_interval.low)} – {fmt(lift.treated_interval.high)}'
        "</td></tr>"
        f'<tr><td>holdout</td><td class="num">{lift.n_holdout:,}</td>'
        f'<td class="num">{fmt(lift.holdout_mean)}</td>'
        f'<td class="num">{fmt(lift.holdout_interval.low)} – {fmt(lift.holdout_interval.high)}'
        "</td></tr>"
        f'<tr><td><b>difference</b></td><td></td><td class="num"><b>{diff(lift.difference)}</b>'
        f'</td><td class="num">{diff(lift.difference_interval.low)} to '
        f"{diff(lift.difference_interval.high)}</td></tr></table>"
    )


def _cells(response: CellResponse) -> str:
    tag = "causal" if response.causal else "observational"
    words = "randomized: causal" if response.causal else "observational: not causal"
    return f'<span class="tag {tag}">{words}</span> <span class="note">{escape(response.message)}</span>'


def _send_time(plot_id: str, response: CellResponse) -> str:
    hours = [float(h) for h in response.cells]  # type: ignore[arg-type]
    by_hour = dict(zip(hours, range(len(hours)), strict=True))
    x = [float(h) for h in range(168)]
    pick = [by_hour.get(h) for h in x]
    nan = math.nan
    estimate = [nan if i is None else response.estimate[i] for i in pick]
    low = [nan if i is None else response.ci_low[i] for i in pick]
    high = [nan if i is None else response.ci_high[i] for i in pick]
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    ticks = [(d * 24 + 12.0, name) for d, name in enumerate(days)]
    return band_plot(
        plot_id,
        "response by hour of week (UTC)",
        x,
        estimate,
        low,
        high,
        x_ticks=ticks,
        x_range=(0.0, 167.0),
    )


def _stage_movement(
    table_id: str, movement: StageTransitions, by_group: Mapping[str, StageTransitions]
) -> str:
    """The movement matrix: stage before the campaign (rows) against stage now (columns).

    Each cell is shaded by its share of the row, green above the diagonal (closer), orange below
    (fell back), grey on it (stayed).
    """
    names = [str(stage) for stage in movement.stages]
    head = "".join(f'<th class="num">{escape(name)}</th>' for name in names)
    rows = []
    for i, (name, counts, shares) in enumerate(
        zip(names, movement.counts, movement.shares, strict=True)
    ):
        if not sum(counts):
            continue
        cells = []
        for j, (count, share) in enumerate(zip(counts, shares, strict=True)):
            colour = GOOD if j > i else BAD if j < i else MUTED
            alpha = share if math.isfinite(share) and count else 0.0
            cells.append(
                f'<td class="num" style="background: {colour}{round(alpha * 0.6 * 255):02x}">'
                f"{count:,}</td>"
            )
        rows.append(f"<tr><th>{escape(name)}</th>{''.join(cells)}</tr>")
    people = movement.moved_up + movement.moved_down + movement.stayed
    groups = ", ".join(
        f"{name} {by_group[name].net_movement:+.1%}"
        for name in ("treated", "holdout")
        if name in by_group
    )
    return (
        "<h3>Movements between relationship stages</h3>"
        f'<table id="{escape(table_id)}"><tr><th>before ↓ · now →</th>{head}</tr>'
        + "".join(rows)
        + "</table>"
        f'<p class="note">Of {people:,} people, {movement.moved_up:,} moved closer, '
        f"{movement.moved_down:,} fell back and {movement.stayed:,} stayed (net "
        f"{movement.net_movement:+.1%}). Before: as the campaign's first decision saw them; "
        "holdout included, so these are movements, not the campaign's effect"
        + (f"; net movement by group: {groups}" if groups else "")
        + ".</p>"
    )


def _campaign_section(campaign: CampaignReport) -> str:
    """One campaign: its sends and lift, variants, send time and channels, return, breadth and
    depth, and stage movements, each where the report has it."""
    slug = _slug(campaign.key)
    out = [
        f'<section id="campaign-{slug}"><h2>Campaign {escape(campaign.key)}</h2>'
        f'<p class="note">objective <b>{escape(campaign.objective)}</b> · KPI '
        f"{escape(campaign.kpi)} · {campaign.n_treated:,} treated, {campaign.n_holdout:,} "
        "held out</p>",
        _campaign_lift(campaign),
        _variants(campaign),
        _response_plots(campaign, slug),
    ]
    if campaign.roi is not None:
        out.append(f"<h3>Return on cost</h3><p>{escape(campaign.roi.message)}</p>")
    if campaign.breadth is not None:
        out.append(_breadth_depth(campaign.breadth))
    if campaign.stage_movement is not None:
        out.append(
            _stage_movement(
                f"stage-movement-{slug}",
                campaign.stage_movement,
                campaign.stage_movement_by_group,
            )
        )
    if campaign.stages:
        stages = ", ".join(f"{escape(k)} {v:,}" for k, v in campaign.stages.items())
        out.append(
            f'<p class="note">Audience by relationship stage at the report\'s time: {stages}</p>'
        )
    out.append("</section>")
    return "".join(out)


def _campaign_lift(campaign: CampaignReport) -> str:
    """What was sent, and the lift over the holdout, or why there is none yet."""
    out = []
    if campaign.sending.planned:
        out.append(f'<p class="note">Sends: {escape(campaign.sending.message)}.</p>')
    if campaign.lift is None and campaign.sending.nothing_sent:
        out.append(
            '<p class="verdict warn">Nothing was sent yet: no lift or return to report.</p>'
            if campaign.sending.waiting
            else '<p class="verdict warn">Nothing was sent: no lift or return to report.</p>'
        )
    elif campaign.lift is None:
        out.append('<p class="verdict warn">No holdout to compare with yet: no lift to report.</p>')
    else:
        out.append(_verdict(campaign.lift) + _lift_table(campaign.lift))
    return "".join(out)


def _variants(campaign: CampaignReport) -> str:
    """The variants' rates and probabilities to be best, and the sequential test's reason."""
    if campaign.variants is None:
        return ""
    v = campaign.variants
    out = [
        '<h3>Variants</h3><table><tr><th>variant</th><th class="num">sends</th><th class="num">rate</th>'
        '<th class="num">probability to be best</th></tr>'
    ]
    for i, label in enumerate(v.labels):
        out.append(
            f'<tr><td>{escape(label)}</td><td class="num">{v.trials[i]:,}</td>'
            f'<td class="num">{share_text(v.posterior_mean[i])}</td>'
            f'<td class="num">{share_text(v.probability_best[i])}</td></tr>'
        )
    out.append("</table>")
    if campaign.sequential is not None:
        out.append(
            f'<p class="note">Sequential test (mSPRT), always valid however often one looks: '
            f"{escape(campaign.sequential.reason)}</p>"
        )
    return "".join(out)


def _response_plots(campaign: CampaignReport, slug: str) -> str:
    """Response by hour of week and by channel, side by side, where the report has them."""
    plots = []
    if campaign.send_time is not None and campaign.send_time.cells:
        plots.append(
            "<div><h3>Send time</h3>"
            + _send_time(f"plot-send-time-{slug}", campaign.send_time)
            + _cells(campaign.send_time)
            + "</div>"
        )
    if campaign.channels is not None and campaign.channels.cells:
        c = campaign.channels
        rows = [
            (str(cell), c.estimate[i], c.ci_low[i], c.ci_high[i]) for i, cell in enumerate(c.cells)
        ]
        plots.append(
            "<div><h3>Channels</h3>"
            + bar_plot(f"plot-channels-{slug}", "response by channel", rows)
            + _cells(c)
            + "</div>"
        )
    return "".join(plots)


def _breadth_depth(b: BreadthDepth) -> str:
    """Reach against engagement per engaged person, as one table row."""
    return (
        '<h3>Breadth and depth</h3><table><tr><th class="num">audience</th><th class="num">reached</th>'
        '<th class="num">engaged</th><th class="num">engagements per engaged person</th></tr>'
        f'<tr><td class="num">{b.audience:,}</td><td class="num">{b.reached:,} '
        f'({share_text(b.reach_share)})</td><td class="num">{b.engaged:,} '
        f'({share_text(b.share_engaged)})</td><td class="num">{number_text(b.engagement_per_engaged, 2)}'
        "</td></tr></table>"
    )


def page(title: str, subtitle: str, body: str) -> str:
    """One self-contained page in the report's look: inline CSS, no script, nothing fetched."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{_FAVICON}<style>{_CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"<main>{body}</main><footer>made by tummler · self-contained, works offline</footer>"
        "</body></html>\n"
    )


def render_store_html(report: StoreReport, *, simulated: SimulatedCurve | None = None) -> str:
    """The whole workspace report as one HTML page; ``simulated`` adds a simulation's learning
    curve against its baselines (``tummler demo``)."""
    body: list[str] = []
    lifts = [c for c in report.campaigns if c.lift is not None]
    overview = ['<section id="overview"><h2>What each campaign changed</h2>']
    if lifts:
        rows = [
            (
                c.key,
                c.lift.difference,
                c.lift.difference_interval.low,
                c.lift.difference_interval.high,
                c.lift.verdict.value == "effect",
            )
            for c in lifts
            if c.lift is not None
        ]
        percent = all(c.lift is not None and c.lift.kind == "rate" for c in lifts)
        overview.append(
            interval_plot("plot-lift", "lift over holdout, with intervals", rows, percent=percent)
        )
        overview.append(
            '<p class="note">Treated minus holdout on each campaign\'s KPI; bars are '
            f"{1 - (lifts[0].lift.alpha if lifts[0].lift else 0.05):.0%} intervals; green: the "
            "interval excludes zero.</p>"
        )
    else:
        overview.append('<p class="note">No campaign has both treated and held-out people yet.</p>')
    unsent = [c.key for c in report.campaigns if c.sending.nothing_sent]
    if unsent:
        overview.append(
            f'<p class="note">Nothing sent for {escape(", ".join(unsent))}: no lift until '
            "their messages go out.</p>"
        )
    overview.append("</section>")
    body.append("".join(overview))
    goals = [o.goal for o in report.objectives if o.goal is not None]
    if goals:
        rows_html = "".join(
            f"<tr><td>{escape(g.objective)}</td>"
            f'<td style="white-space: nowrap">{escape(g.status.value)}</td>'
            f"<td>{escape(g.message)}</td></tr>"
            for g in goals
        )
        body.append(
            '<section id="goals"><h2>Goals against the strategy\'s targets</h2>'
            + goals_plot("plot-goals", goals)
            + "<table><tr><th>objective</th><th>status</th><th>in words</th></tr>"
            + rows_html
            + "</table></section>"
        )
    if report.learning_curve:
        curve = report.learning_curve
        x = [float(i) for i in range(len(curve))]
        body.append(
            '<section id="learning"><h2>Learning curve</h2>'
            + band_plot(
                "plot-learning",
                "KPI of each policy version's sends",
                x,
                [p.mean for p in curve],
                [p.interval.low for p in curve],
                [p.interval.high for p in curve],
                x_ticks=_version_ticks(curve),
                x_range=(-0.5, len(curve) - 0.5),
            )
            + "</section>"
        )
    if simulated is not None and simulated.rounds:
        body.append(_simulated_section(simulated))
    body.extend(_campaign_section(c) for c in report.campaigns)
    return page(
        "tummler report",
        f"as of {report.as_of:%Y-%m-%d %H:%M} UTC · {len(report.campaigns)} campaign(s)",
        "".join(body),
    )


def render_log_html(report: LogReport) -> str:
    """A past experiment from a logged-bandit file as one HTML page."""
    level = f"{1 - report.alpha:.0%}"
    means = bar_plot(
        "plot-means",
        "mean reward by action",
        [(a.action, a.mean, a.interval.low, a.interval.high) for a in report.actions],
        percent=False,
        width=960,
        height=280,
    )
    lift = interval_plot(
        "plot-lift",
        f"lift over {report.control}",
        [
            (
                f"{item.action} − {item.control}",
                item.difference,
                item.interval.low,
                item.interval.high,
                item.significant,
            )
            for item in report.lifts
        ],
        percent=False,
    )
    rows = "".join(
        f'<tr><td>{escape(a.action)}</td><td class="num">{a.n:,}</td>'
        f'<td class="num">{a.mean:.4f}</td><td class="num">{a.interval.low:.4f} – '
        f"{a.interval.high:.4f}</td></tr>"
        for a in report.actions
    )
    verdicts = "".join(
        f'<p class="verdict {"effect" if item.significant else ""}">{escape(item.message)}</p>'
        for item in report.lifts
    )
    body = (
        '<section id="means"><h2>Mean reward by action</h2>'
        f'{means}<table><tr><th>action</th><th class="num">rounds</th><th class="num">mean</th>'
        f'<th class="num">{level} interval</th></tr>{rows}</table>'
        '<p class="note">Means weighted by the logged propensities (self-normalized IPS); for a '
        "uniform randomized experiment they are the arms' plain means.</p></section>"
        f'<section id="lifts"><h2>Lift over {escape(report.control)}</h2>{lift}{verdicts}'
        "</section>"
    )
    return page(
        "tummler report — logged experiment",
        f"{Path(report.source).name} · {report.n_rounds:,} rounds · control {report.control}",
        body,
    )


def write_html(
    report: StoreReport | LogReport,
    path: str | Path,
    *,
    simulated: SimulatedCurve | None = None,
) -> Path:
    """Render ``report`` and write it to ``path`` (UTF-8); return the path. ``simulated`` adds a
    simulation's learning curve to a store report."""
    text = (
        render_log_html(report)
        if isinstance(report, LogReport)
        else render_store_html(report, simulated=simulated)
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
