"""Methods from the user (register_method, entry points) and plans from the workbook: results are
re-checked, never trusted; failures are error rows naming why; names are validated once."""

from __future__ import annotations

import json

import pytest

from dipsd import InputError, Plan, evaluate
from dipsd.data.generate import generate
from dipsd.data.plans import NamedPlan
from dipsd.solvers import catalog
from dipsd.solvers.catalog import check_methods, register_method, run_named_plan, solve
from dipsd.solvers.registry import METHODS, run_method
from dipsd.solvers.results import Status
from tests.solvers import user_methods as um

S = generate([4], 1, seed=3, max_draft_length=4)[0]


@pytest.fixture
def registered():
    """Register methods for one test, and remove them afterwards."""
    names = []

    def add(name, fn, **kw):
        register_method(name, fn, **kw)
        names.append(name)

    yield add
    for n in names:
        METHODS.pop(n, None)


def test_the_registry_measures_every_runtime_itself(registered):
    """A method's own runtime claim is replaced by the wall time of the call."""
    import time as _time

    from dipsd.solvers.results import SolveResult

    def slow_claims_fast(scenario, time_limit, start):
        _time.sleep(0.05)
        plan = um.packed_at_three(scenario, time_limit, start)
        return SolveResult(scenario.name, "claims", Status.FEASIBLE, plan, evaluate(scenario, plan), None, runtime_s=1e-9)

    registered("claims", slow_claims_fast)
    r = run_method("claims", S, time_limit=5)
    assert r.status is Status.FEASIBLE and r.runtime_s >= 0.05  # the call slept 0.05 s: its claim of 1e-9 s is gone


def test_a_plan_returning_method_is_evaluated_in_closed_form(registered):
    registered("packed", um.packed_at_three)
    r = run_method("packed", S, time_limit=5)
    plan = um.packed_at_three(S, 5, None)
    assert r.status is Status.FEASIBLE and r.throughput_tps == evaluate(S, plan).throughput_tps
    assert r.upper_bound_tps is None and r.method == "packed"
    assert METHODS["packed"].ref == "tests.solvers.user_methods:packed_at_three"


def test_bad_results_are_error_rows_naming_why(registered):
    narrow = S.with_(max_batches=2)
    registered("alone", um.everyone_alone)
    registered("crash", um.crashes)
    registered("liar", um.claims_too_much)
    assert "infeasible plan" in (r := run_method("alone", narrow)).message and r.status is Status.ERROR
    assert "ZeroDivisionError: a bug" in (r := run_method("crash", S)).message and r.status is Status.ERROR
    r = run_method("liar", S)
    assert r.status is Status.ERROR and "cannot be believed" in r.message and "closed-form" in r.message


def test_a_bound_is_kept_only_when_declared(registered):
    registered("nobound", um.with_a_bound)
    registered("bound", um.with_a_bound, gives_bound=True)
    assert run_method("nobound", S).upper_bound_tps is None
    assert run_method("bound", S).upper_bound_tps == 1e9


def test_a_method_starts_from_what_it_declares(registered):
    registered("follower", um.improves_the_start, starts_from=["dipsd"])
    assert METHODS["follower"].start_source(["dipsd", "follower"]) == "dipsd"
    got = solve(S, "all")
    assert list(got)[-1] == "follower" and got["follower"].throughput_tps == got["dipsd"].throughput_tps
    assert got["exact"].status is Status.OPTIMAL


def test_names_are_checked_once_for_every_front_door(registered):
    with pytest.raises(InputError, match="did you mean 'dipsd'"):
        check_methods(["dipsdd"])
    with pytest.raises(InputError, match="listed twice"):
        check_methods(["ad", "dipsd", "ad"])
    with pytest.raises(InputError, match="sheet 'plans'"):
        check_methods(["plan:mine"])
    assert check_methods(["plan:mine", "ad"], plans=["plan:mine"]) == ["plan:mine", "ad"]
    for bad in ("exact", "plan:x", "", "a,b", "all"):
        with pytest.raises(InputError):
            register_method(bad, um.packed_at_three)
    with pytest.raises(InputError, match="cannot be imported"):
        register_method("ghost", "tests.solvers.user_methods:no_such_function")
    with pytest.raises(InputError, match="did you mean"):
        solve(S, "certfy")


def test_exact_alone_starts_from_certify():
    r = run_method("exact", S, time_limit=30)
    assert r.status is Status.OPTIMAL and "certify" in r.message


def test_named_plan_infeasible_names_plan_batch_and_rows():
    names = [u.name for u in S.users]
    big = NamedPlan(S.name, "big", (tuple(names),), tuple((n, 2) for n in names), rows=((5, 6, 7, 8),))
    tight = S.with_(memory_cap_bytes=S.target.parameter_bytes + S.target.kv_bytes(2, max(u.prefix_len for u in S.users)))
    r = run_named_plan(tight, big)
    assert r.status is Status.INFEASIBLE and "plan 'big'" in r.message and "batch 1" in r.message
    assert "rows 5, 6, 7, 8" in r.message
    ok = run_named_plan(S, big)
    assert ok.status is Status.FEASIBLE and ok.throughput_tps == evaluate(S, Plan((tuple(range(4)),), (2,) * 4)).throughput_tps


def test_plugins_from_entry_points(tmp_path, monkeypatch):
    """A package installed with an entry point in group dipsd.methods is a method, listed and run when
    named; installing it does not change what a default run runs (issue 38)."""
    dist = tmp_path / "dipsd_test_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dipsd-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dipsd.methods]\nplugged = tests.solvers.user_methods:packed_at_three\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(catalog, "_plugins_loaded", False)
    monkeypatch.setattr(catalog, "_entry_points", set())
    try:
        assert "plugged" not in catalog.default_methods() and "plugged" in METHODS
        assert check_methods(["dipsd", "plugged"]) == ["dipsd", "plugged"]
        assert run_method("plugged", S).status is Status.FEASIBLE
    finally:
        METHODS.pop("plugged", None)


def test_own_methods_from_the_command_line(tmp_path, run_cli, monkeypatch):
    """--plugin FILE.py (its register_method calls, and STEM:function) and module:function in --methods."""
    import os
    import sys

    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # --plugin adds its folder: restored after
    monkeypatch.setattr(sys, "path", list(sys.path))
    plugin = tmp_path / "myheur.py"
    plugin.write_text("import dipsd\nfrom tests.solvers.user_methods import packed_at_three as packed\n"
                      "dipsd.register_method('prefix-packed', packed)\n")
    monkeypatch.chdir(tmp_path)
    try:
        for method in ("prefix-packed", "myheur:packed", "tests.solvers.user_methods:everyone_alone"):
            code, out, err = run_cli("solve", "--method", method, "--plugin", "myheur.py", "--scenario", "het-M3-1", "--json")
            assert code == 0 and json.loads(out)["method"] == method and json.loads(out)["status"] == "feasible", err
        code, out, err = run_cli("study", "--methods", "prefix-packed,ad", "--plugin", "myheur.py", "--scenario", "het-M3-1",
                                 "--out", str(tmp_path / "r.xlsx"), "--workers", "1", "--quiet")
        assert code == 0 and "prefix-packed:" in out, err
        code, _, err = run_cli("solve", "--method", "nosuch:fn", "--scenario", "het-M3-1")
        assert code == 2 and "method reference 'nosuch:fn' cannot be imported: ModuleNotFoundError" in err
        (tmp_path / "broken.py").write_text("def (:\n")
        code, _, err = run_cli("solve", "--method", "ad", "--plugin", "broken.py")
        assert code == 2 and "--plugin 'broken.py' cannot be loaded: SyntaxError" in err and "Traceback" not in err
    finally:
        for name in ("prefix-packed", "myheur:packed", "tests.solvers.user_methods:everyone_alone"):
            METHODS.pop(name, None)
        sys.modules.pop("myheur", None)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", [None, "local"])
def test_a_user_method_runs_in_a_study(registered, scheduler):
    """With 2 local worker processes and on a Dask LocalCluster (workers that re-import it)."""
    import dipsd

    if scheduler:
        pytest.importorskip("distributed")
    registered("packed", um.packed_at_three)
    scenarios = generate([3, 4], 1, seed=5, max_draft_length=3)
    frame = dipsd.run_study(scenarios, methods=["dipsd", "packed", "exact"], time_limit=20, workers=2,
                            scheduler=scheduler, progress=False)
    packed = frame[frame.method == "packed"].set_index("scenario")
    for s in scenarios:
        assert packed.loc[s.name, "status"] == "feasible"
        assert packed.loc[s.name, "throughput_tps"] == evaluate(s, um.packed_at_three(s, 1, None)).throughput_tps
        assert packed.loc[s.name, "gap_kind"] == "proven" and packed.loc[s.name, "gap_pct"] >= 0


@pytest.mark.slow
def test_a_plugin_runs_in_a_study_from_the_command_line(tmp_path):
    """The entry point seen by a fresh `dipsd study` process and its workers (PYTHONPATH holds the
    plugin's metadata, as an installed package's would be)."""
    import os
    import subprocess
    import sys

    dist = tmp_path / "site" / "dipsd_test_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dipsd-test-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[dipsd.methods]\nplugged = tests.solvers.user_methods:packed_at_three\n")
    from dipsd.data.writer import save_scenarios

    book = tmp_path / "b.xlsx"
    save_scenarios(book, generate([3], 2, seed=6, max_draft_length=3))
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), root])}
    help_text = subprocess.run([sys.executable, "-m", "dipsd.cli", "study", "--help"], capture_output=True, text=True,
                               env=env, cwd=tmp_path).stdout
    assert "plugged" in help_text
    run = subprocess.run([sys.executable, "-m", "dipsd.cli", "study", str(book), "--out", str(tmp_path / "r.xlsx"),
                          "--methods", "dipsd,plugged", "--workers", "2", "--quiet"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[1].startswith("plugged: ")


@pytest.mark.slow
def test_certify_alone_starts_from_dipsd():
    """Run alone, certify does what a study does: DiP-SD first, so it is never below DiP-SD."""
    from dipsd import paper_scenario

    for s in (S, generate([7], 1, seed=9, max_draft_length=6)[0], paper_scenario(5)):
        dip = run_method("dipsd", s, time_limit=30)
        cert = run_method("certify", s, time_limit=30)
        assert "started from DiP-SD" in cert.message
        assert cert.throughput_tps >= dip.throughput_tps * (1 - 1e-12)
        assert cert.upper_bound_tps >= cert.throughput_tps


def test_methods_declare_their_capabilities():
    assert {m for m, spec in METHODS.items() if spec.gives_bound} >= {"certify", "exact", "enumerate"}
    assert not any(METHODS[m].gives_bound for m in ("dipsd", "dipsd-fixed", "sd-nobatch", "ad", "ad-batch"))
    assert METHODS["exact"].takes_start and METHODS["certify"].takes_start and not METHODS["dipsd"].takes_start
    assert not METHODS["enumerate"].honours_time_limit and METHODS["exact"].honours_time_limit


# ---------------------------------------------------------------- claims only from provers (issue 37)
def test_an_untrusted_optimal_is_recorded_as_feasible(registered):
    registered("claims", um.claims_optimal)
    r = run_method("claims", S, time_limit=5)
    assert r.status is Status.FEASIBLE and r.upper_bound_tps is None and "said optimal" in r.message
    registered("claims-with-bound", um.claims_optimal, gives_bound=True)  # declared a prover, but no bound given
    assert run_method("claims-with-bound", S, time_limit=5).status is Status.FEASIBLE


def test_an_untrusted_infeasible_is_no_plan(registered):
    registered("nothing", um.claims_infeasible)
    r = run_method("nothing", S, time_limit=5)
    assert r.status is Status.NO_PLAN and "said infeasible" in r.message


@pytest.mark.parametrize("kind", ["runtime", "iterations", "length"])
def test_malformed_fields_never_reach_a_record(registered, kind):
    registered(f"garbage-{kind}", um.garbage(kind))
    r = run_method(f"garbage-{kind}", S, time_limit=5)
    record = r.record(S).to_json()
    assert r.runtime_s == r.runtime_s and r.runtime_s >= 0  # measured by the registry, never NaN
    if kind == "runtime":
        assert r.status is Status.FEASIBLE
    else:
        assert r.status is Status.ERROR and r.plan is None and record["iterations"] == 0
        assert ("iterations" in r.message) if kind == "iterations" else ("True" in r.message)
    assert all(type(v) is int for v in (record["draft_lengths"] or {}).values())


def test_a_method_that_exits_or_prints_costs_only_its_own_result(registered, capsys):
    registered("exits", um.exits)
    registered("prints", um.prints)
    r = run_method("exits", S, time_limit=5)
    assert r.status is Status.ERROR and "sys.exit(0)" in r.message
    p = run_method("prints", S, time_limit=5)
    assert p.status is Status.FEASIBLE and capsys.readouterr().out == ""


def test_a_method_gets_a_copy_of_the_scenario(registered):
    t = S.target
    tight = S.with_(memory_cap_bytes=t.parameter_bytes + t.kv_bytes(1, max(u.prefix_len for u in S.users)), min_batches=1)
    before = repr(tight), tight.memory_cap_bytes
    registered("mutates", um.mutates)
    r = run_method("mutates", tight, time_limit=5)
    assert (repr(tight), tight.memory_cap_bytes) == before
    assert r.status is Status.ERROR and "infeasible plan" in r.message


def test_a_plan_with_true_as_a_length_or_user_is_malformed():
    from dipsd.errors import PlanError

    with pytest.raises(PlanError, match="outside"):
        Plan(((0, 1), (2, 3)), (True, 1, 1, 1)).validate(S)
    with pytest.raises(PlanError, match="not a user index"):
        Plan(((0, True), (2, 3)), (1, 1, 1, 1)).validate(S)
