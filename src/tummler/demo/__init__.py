"""``tummler demo``: the whole loop on a simulated brand, driven through the services as a user would.

An entry point like :mod:`tummler.cli`: it makes a workspace, imports a simulated brand with the
real importer, and plans, delivers, records responses, learns and reports through the services of
:mod:`tummler.app`, with the simulator (:mod:`tummler.simulate`) playing the brand's people.

- :mod:`~tummler.demo.loop`: the rounds, from the workspace to the HTML report (:func:`run_demo`);
- :mod:`~tummler.demo.brand`: the simulated brand's levers, strategy, campaigns and import files;
- :mod:`~tummler.demo.play`: one round through the services, and the baselines' round, each in
  its own copy of the world;
- :mod:`~tummler.demo.seeds`: several seeds, and tummler minus each baseline over them;
- :mod:`~tummler.demo.round`: between the store and the simulator: deliver, read back, answer;
- :mod:`~tummler.demo.smtp`: a loopback SMTP server for ``tummler demo --smtp``.
"""

from tummler.demo.loop import BASELINE_NAMES, DEMO_MARKER, DemoReport, run_demo
from tummler.demo.play import DemoRound
from tummler.demo.seeds import (
    COMPARED,
    PairedDifference,
    SeedsReport,
    paired_differences,
    run_seeds,
    totals,
)

__all__ = [
    "BASELINE_NAMES",
    "COMPARED",
    "DEMO_MARKER",
    "DemoReport",
    "DemoRound",
    "PairedDifference",
    "SeedsReport",
    "paired_differences",
    "run_demo",
    "run_seeds",
    "totals",
]
