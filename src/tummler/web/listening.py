"""The listening report as one self-contained HTML page (same look and rules as the main report).

Plots have stable ids: ``plot-mentions`` (mentions per day) and ``plot-sentiment`` (mean sentiment
and negative share per day). Sections: ``overview``, ``what-to-fix``, ``themes``, ``spikes``.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from tummler.app.listening.report import NEGATIVE_BELOW, ListenReport, Theme
from tummler.web.charts import lines_plot, number_text, share_text
from tummler.web.report import page

__all__ = ["render_listen_html", "write_listen_html"]


def _theme_rows(themes: list[Theme]) -> str:
    rows = [
        "<table><tr><th>theme</th><th>mentions</th><th>mean sentiment</th>"
        "<th>negative</th><th>most negative posts</th></tr>"
    ]
    for theme in themes:
        examples = "".join(f"<li>{escape(text)}</li>" for text in theme.examples)
        rows.append(
            f"<tr><td>{escape(theme.label)}</td><td class='num'>{theme.mentions:,}</td>"
            f"<td class='num'>{number_text(theme.mean_sentiment, 2)}</td>"
            f"<td class='num'>{share_text(theme.negative_share)}</td><td><ul>{examples}</ul></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _trend(report: ListenReport) -> str:
    if len(report.days) < 2:
        return "<p>Fewer than two days with mentions: no trend to draw.</p>"
    x = [float(i) for i in range(len(report.days))]
    nan = float("nan")
    mentions = lines_plot(
        "plot-mentions",
        "Mentions per day",
        x,
        [("mentions", [float(d.mentions) for d in report.days])],
        x_label=f"day ({report.days[0].day} = 0)",
        height=220,
    )
    sentiment = lines_plot(
        "plot-sentiment",
        "Sentiment per day",
        x,
        [
            (
                "mean sentiment",
                [nan if d.mean_sentiment is None else d.mean_sentiment for d in report.days],
            ),
            (
                "negative share",
                [nan if d.negative_share is None else d.negative_share for d in report.days],
            ),
        ],
        x_label=f"day ({report.days[0].day} = 0)",
        height=240,
    )
    return mentions + sentiment


def _spikes(report: ListenReport) -> str:
    if report.spikes is None:
        return f"<p>{escape(report.spike_note)}.</p>"
    if not report.spikes:
        return (
            f"<p>No spike ({escape(report.spike_note)}; at most "
            f"{report.false_alarms_per_30_days:g} false alarm in 30 days).</p>"
        )
    items = "".join(
        f"<li>{escape(s.hour)}: {s.mentions:,} mentions where {s.expected:.1f} were expected "
        f"(p = {s.p_value:.1e})</li>"
        for s in report.spikes
    )
    return f"<p>{escape(report.spike_note)}.</p><ul>{items}</ul>"


def render_listen_html(report: ListenReport) -> str:
    """The listening report as one HTML page."""
    fix = report.what_to_fix()[:3]
    body = [
        '<section id="overview"><h2>What people said</h2>',
        f"<p>{report.mentions:,} mentions, {report.scored:,} with a sentiment score; mean "
        f"{number_text(report.mean_sentiment, 2)}, {share_text(report.negative_share)} negative "
        f"(score below {NEGATIVE_BELOW:g}).</p>",
        _trend(report),
        "</section>",
        '<section id="what-to-fix"><h2>What to fix first</h2>',
        _theme_rows(fix) if fix else "<p>No theme with negative mentions.</p>",
        "</section>",
        '<section id="themes"><h2>Every theme</h2>',
        _theme_rows(list(report.themes)) if report.themes else "<p>Too few posts for themes.</p>",
        "</section>",
        '<section id="spikes"><h2>Spikes</h2>',
        _spikes(report),
        "</section>",
    ]
    return page(
        "tummler listening report", f"{report.since[:10]} to {report.until[:10]}", "".join(body)
    )


def write_listen_html(report: ListenReport, path: str | Path) -> Path:
    """Render ``report`` and write it to ``path`` (UTF-8); return the path."""
    target = Path(path)
    target.write_text(render_listen_html(report), encoding="utf-8")
    return target
