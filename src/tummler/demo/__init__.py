"""``tummler demo``: the whole loop on a simulated brand, driven through the services as a user would.

An entry point like :mod:`tummler.cli`: it makes a workspace, imports a simulated brand with the
real importer, and plans, delivers, records responses, learns and reports through the services of
:mod:`tummler.app`, with the simulator (:mod:`tummler.simulate`) playing the brand's people.

- :mod:`~tummler.demo.loop`: the rounds, from the workspace to the HTML report (:func:`run_demo`);
- :mod:`~tummler.demo.brand`: the simulated brand's levers, strategy, campaigns and import files;
- :mod:`~tummler.demo.round`: one round's delivery, the people's responses and the promotion;
- :mod:`~tummler.demo.smtp`: a loopback SMTP server for ``tummler demo --smtp``.
"""

from tummler.demo.loop import BASELINE_NAMES, DEMO_MARKER, DemoReport, DemoRound, run_demo

__all__ = ["BASELINE_NAMES", "DEMO_MARKER", "DemoReport", "DemoRound", "run_demo"]
