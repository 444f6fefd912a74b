"""The one place that reaches into Pyomo's persistent HiGHS interface beyond its public API, and
that works around HiGHS's own quirks (:func:`spend_banner`, :func:`run_for`).

Pyomo's ``pyomo.contrib.solver`` HiGHS interface has no MIP-start option; :func:`set_mip_start`
hands HiGHS a start through the interface's map from Pyomo variables to HiGHS columns and its
``highspy.Highs`` object.  Written and tested against :data:`TESTED_PYOMO`; ``tests/solvers/
test_highs_adapter.py`` fails if the internals change (it checks that HiGHS reports the start
as its first incumbent).  If they do change at run time, the start is skipped with a warning
and the solve runs without it (slower, never wrong).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TESTED_PYOMO = ("6.9", "6.10")
"""Pyomo release series whose persistent HiGHS internals this module was written and tested against."""


def pyomo_supported() -> bool:
    import pyomo.version

    version = pyomo.version.version
    return any(version == v or version.startswith(v + ".") for v in TESTED_PYOMO)


def set_mip_start(solver: Any, values: Any) -> bool:
    """Give HiGHS ``values`` (a ``ComponentMap`` of Pyomo variables to numbers) as a MIP start.

    ``solver`` is a ``pyomo.contrib.solver`` HiGHS solver after ``set_instance``.  Returns
    whether HiGHS accepted the start.
    """
    try:
        columns = solver._pyomo_var_to_solver_var_map
        index = np.array([columns[id(v)] for v in values], dtype=np.int32)
        value = np.array([values[v] for v in values], dtype=np.float64)
        status = solver._solver_model.setSolution(len(index), index, value)
    except Exception as exc:  # pragma: no cover - only when Pyomo's internals changed
        log.warning("MIP start not set (Pyomo %s internals changed?): %s", _pyomo_version(), exc)
        return False
    log.debug("MIP start: %s", status)
    return str(status).endswith("kOk") or str(status).endswith("kWarning")


def manual_parameter_updates(solver: Any) -> None:
    """Only mutable Params change between solves: switch off the interface's automatic checks,
    so that a MIP start set before ``solve`` is not discarded by an update inside it; the
    caller pushes parameter changes with ``solver.update_parameters()``."""
    for key in list(solver.config.auto_updates):
        if key.startswith(("check_for_", "update_")):
            solver.config.auto_updates[key] = False


def run_for(h: Any, seconds: float) -> None:
    """Run a ``highspy.Highs`` object for at most ``seconds`` more.

    HiGHS 1.16 holds an LP's ``time_limit`` against the object's *total* run time
    (``getRunTime()``, summed over every ``run()``), not the time of this run: a persistent LP
    that has spent its limit over earlier solves stops at once in every later one.  (Its MIP
    solves are limited per run.)  So the limit is set to the run time so far plus ``seconds``;
    ``tests/solvers/test_highs_adapter.py`` shows the quirk and this remedy."""
    h.setOptionValue("time_limit", float(h.getRunTime()) + max(0.0, float(seconds)))
    h.run()


def _pyomo_version() -> str:
    import pyomo.version

    return pyomo.version.version


_banner_spent = False


def spend_banner() -> None:
    """HiGHS prints its banner ("Running HiGHS ... Copyright") on the C-level stdout once per
    process, when the first ``Highs`` object is made, whatever its options.  Make that first
    object here with file descriptor 1 pointed away from stdout, so that stdout holds only what
    a command promises (tables, JSON lines): to the null device, or to stderr where solver logs
    are shown (dipsd's logger at DEBUG, ``dipsd -vv``).  Idempotent and cheap after the first
    call; called before every HiGHS object dipsd makes."""
    global _banner_spent
    if _banner_spent:
        return
    _banner_spent = True
    import highspy

    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no stdout at all: nothing to protect
        highspy.Highs()
        return
    shown = logging.getLogger("dipsd").isEnabledFor(logging.DEBUG)
    try:
        sink = 2 if shown else os.open(os.devnull, os.O_WRONLY)
    except OSError:
        sink = 2
    try:
        os.dup2(sink, 1)
        highspy.Highs()
        _flush_c_stdio()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        if sink != 2:
            os.close(sink)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # pragma: no cover - no C library to reach
        pass
