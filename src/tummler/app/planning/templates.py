"""Template checks at plan time: which variants render for which contacts.

Before deciding, every variant's ``subject``/``headline``/``body`` is rendered for the contacts that
may get it: one render per variant and *field shape* of contacts (which attributes they have, of
which types; :class:`~tummler.app.planning.contexts._FieldShapes`). A variant that needs a field a
contact lacks is not that contact's to get (the decision says "variant email/b needs first_name";
a channel none of whose variants renders is removed for the contact); the other variants and
contacts plan normally, in the same pass. Only a template that cannot render for anyone — a syntax
error, an unknown filter — refuses the plan, with a :class:`~tummler.core.errors.StrategyError`
naming the campaign file and line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tummler.app.planning.contexts import _FieldShapes
from tummler.app.planning.selection import _Decided
from tummler.app.planning.setup import _Setup
from tummler.app.rendering import TEMPLATE_FIELDS, check_templates
from tummler.core.errors import StrategyError
from tummler.decide import Eligibility
from tummler.strategy import SourceMap

#: Stands in for the outbox's signed link when an e-mail template is checked at plan time.
_UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/plan-time-check"


@dataclass(frozen=True, eq=False)
class _VariantAccess:
    """Which variants render for which field shape of contacts, and what a failing one needs.

    Attributes
    ----------
    ok
        ``(n_shapes, n_channels, n_variants)`` the variant renders for contacts of that shape
        (``False`` for padding variants that do not exist).
    needs
        ``(shape, channel, variant)`` → the field a failing variant needs.
    """

    ok: npt.NDArray[np.bool_]
    needs: dict[tuple[int, int, int], str]

    def of(self, shape: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """``(n, n_channels, n_variants)`` the variants each contact may get."""
        return self.ok[shape]


def _template_line(source: SourceMap | None, path: tuple[str | int, ...], line: int | None) -> str:
    """Where a template's own line is in the campaign file (``file:line``), as well as it is known."""
    if source is None:
        return "the campaign file"
    node = source.node(*path)
    first, _ = source.locate(*path)
    where = source.file or "the campaign file"
    if first is None:
        return where
    # a block scalar (| or >) starts on the line after its indicator
    block = getattr(node, "style", None) in ("|", ">")
    return f"{where}:{first + (line or 1) - 1 + (1 if block else 0)}"


def _check_templates(
    setup: _Setup,
    eligibility: Eligibility,
    shape: npt.NDArray[np.int64],
    shapes: _FieldShapes,
    source: SourceMap | None = None,
) -> _VariantAccess:
    """Render every variant's subject, headline and body for every field shape of contacts that may
    get it, before anything is decided or written.

    A variant that needs a field some contacts lack is not stopped: it becomes ineligible for those
    contacts (their other variants, and everyone else, plan normally), and the decision says which
    field it needed. A template that cannot render for anyone — a syntax error, an unknown filter,
    something the sandbox forbids — stops the plan.

    Contacts are checked by field shape (:class:`_FieldShapes`): one render per variant and shape.

    Raises
    ------
    StrategyError
        For a template that is wrong in itself, naming the campaign file and line, the variant and
        its field.
    """
    actions = setup.actions
    n_shapes = len(shapes.examples)
    ok = np.broadcast_to(
        actions.variant_available[None], (n_shapes, actions.n_channels, actions.n_variants)
    ).copy()
    needs: dict[tuple[int, int, int], str] = {}
    if shape.size == 0:
        return _VariantAccess(ok, needs)
    reachable = eligibility.channel_ok & eligibility.slot_ok.any(axis=2)  # (n, n_ch)
    for c, channel in enumerate(setup.channels):
        present = np.unique(shape[reachable[:, c]])
        link = _UNSUBSCRIBE_PLACEHOLDER if channel.kind.value == "email" else None
        for v, variant in enumerate(setup.campaign.variants.get(channel.id, [])):
            templates = {
                f"{channel.id}/{variant.id}.{part}": getattr(variant, part)
                for part in TEMPLATE_FIELDS
            }
            # a template wrong in itself fails for everyone: checked even with no one to get it
            for k in [*present.tolist(), None]:
                person = (
                    {"external_id": "-"}
                    if k is None
                    else shapes.examples[int(k)] | ({"unsubscribe_url": link} if link else {})
                )
                problems = check_templates(templates, [person], limit=len(templates))
                wrong = [p for p in problems if p.missing is None]
                if wrong:
                    problem = wrong[0]
                    part = problem.template.rsplit(".", 1)[1]
                    where = _template_line(source, ("variants", channel.id, v, part), problem.line)
                    raise StrategyError(
                        f"{where}: campaign {setup.campaign.id!r}: variant {problem.template} "
                        f"cannot be rendered for anyone: {problem.reason}; fix the template in "
                        "the campaign file"
                    )
                if k is not None and problems:
                    ok[int(k), c, v] = False
                    needs[(int(k), c, v)] = str(problems[0].missing)
    return _VariantAccess(ok, needs)


def _variant_name(setup: _Setup, c: int, v: int) -> str:
    return f"{setup.channels[c].id}/{setup.actions.variant_names[c][v]}"


def _needs(
    setup: _Setup,
    decided: _Decided,
    shape: npt.NDArray[np.int64],
    access: _VariantAccess,
    start: int,
    stop: int,
) -> list[dict[str, str] | None]:
    """Per contact of ``start:stop``, the variants it could not get and the field each needs."""
    out: list[dict[str, str] | None] = [None] * (stop - start)
    lacking = decided.lacking[start:stop]
    for i in np.flatnonzero(lacking.any(axis=(1, 2))).tolist():
        k = int(shape[start + i])
        out[i] = {
            _variant_name(setup, c, v): access.needs.get((k, c, v), "a field")
            for c, v in zip(*np.nonzero(lacking[i]), strict=True)
        }
    return out


def _variant_gaps(
    setup: _Setup, decided: _Decided, shape: npt.NDArray[np.int64], access: _VariantAccess
) -> dict[str, int]:
    """``"<channel>/<variant> needs <field>"`` → contacts who may get the channel but not it."""
    gaps: dict[str, int] = {}
    if shape.size == 0:
        return gaps
    for c, v in zip(*np.nonzero(decided.lacking.any(axis=0)), strict=True):
        who = decided.lacking[:, c, v]
        for k in np.unique(shape[who]).tolist():
            key = f"{_variant_name(setup, int(c), int(v))} needs {access.needs.get((k, c, v), '?')}"
            gaps[key] = gaps.get(key, 0) + int((who & (shape == k)).sum())
    return gaps
