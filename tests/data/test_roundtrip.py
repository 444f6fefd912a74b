"""Property tests: any valid scenario written to a workbook loads back exactly."""

from __future__ import annotations

import tempfile
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dipsd import Scenario, User, load_workbook
from dipsd.data.scenario import DraftModel
from dipsd.data.writer import save_scenarios

positive = st.floats(min_value=1e-13, max_value=1e3, allow_nan=False, allow_infinity=False)
slope = st.floats(min_value=1e-16, max_value=1e-6, allow_nan=False, allow_infinity=False)  # the columns' range
# names as the loader keeps them: no invisible or direction-changing characters (Cf), NFC-normalized
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cf", "Zs", "Zl", "Zp")), min_size=1,
                max_size=12).map(lambda t: unicodedata.normalize("NFC", t))


@st.composite
def scenarios(draw):
    lub = draw(st.integers(1, 6))
    m = draw(st.integers(1, 4))
    user_names = draw(st.lists(names, min_size=m, max_size=m, unique=True))
    users = []
    for name in user_names:
        table = None
        if draw(st.booleans()):
            steps = draw(st.lists(st.floats(0, 1), min_size=lub, max_size=lub))
            run, table = 1.0, []
            for k, step in enumerate(steps, start=1):
                run = min(run + step, k + 1.0)
                table.append(run)
            table = tuple(table)
        users.append(User(name, alpha=draw(st.floats(0, 1)), prefix_len=draw(st.integers(1, 4096)),
                          comm_latency_ms=draw(positive), acceptance=table,
                          draft=DraftModel(blocks=draw(st.integers(1, 64)), c_ms_per_flop=draw(slope), beta_ms=draw(positive))))
    nmin = draw(st.integers(1, m))
    return Scenario(draw(names), tuple(users), max_draft_length=lub, min_batches=nmin,
                    max_batches=draw(st.integers(nmin, m)), initial_draft_length=draw(st.integers(1, 30)))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(scenarios(), min_size=1, max_size=3, unique_by=lambda s: s.name))
def test_write_then_load_is_identity(scenarios_):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.xlsx"
        save_scenarios(path, scenarios_)
        assert load_workbook(path).scenarios == tuple(scenarios_)
