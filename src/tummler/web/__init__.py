"""Entry point for HTML: the report as a self-contained page, drawn with an inline SVG chart kit.

- :mod:`~tummler.web.charts`: forest, bar, band, line and progress plots as inline SVG;
- :mod:`~tummler.web.report`: a store's or a logged experiment's report as one HTML page.
"""

from tummler.web.report import SimulatedCurve, render_log_html, render_store_html, write_html

__all__ = ["SimulatedCurve", "render_log_html", "render_store_html", "write_html"]
