"""The mutation check the project keeps: plant known bugs, one at a time, in a copy of the code and
run the fast default test run (plain ``pytest``) on each; every mutant must make it fail.

``python -m tests.mutants`` (from the repository's top; ``--list`` names the mutants, ``NAME ...``
runs some, ``--tests ARGS`` runs another selection, e.g. ``--tests "-m 'not sweep'"``).  It prints one
line per mutant (caught, by which test first, or MISSED) and exits 1 if any was missed; first the
unchanged copy must pass (else exit 2: a mutant's failure would mean nothing).  Each run takes at
most as long as the fast run (-x stops at the first failure); nothing in the working tree is
touched: the tracked files are copied to a temporary folder, the mutant is applied there, and the
copy is imported in the layout it installs as (``dipsd.solvers`` is ``solvers/`` ...), which is
checked before any test runs.

A mutant is a file, a line of text in it that must occur exactly once, and its replacement: when
the code moves and a line no longer matches, the script says so (exit 2) and the mutant is mended
here, never dropped.  The first ones are the bugs that slipped past the fast run before (issue 40).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FOLDERS = {"data": "data", "formulation": "formulation", "solvers": "solvers", "reports": "reports"}


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    why: str


MUTANTS = (
    Mutant("exact-early-optimal", "solvers/exact.py",
           "return _timed_out(self.best_plan) if ans.outcome is MilpOutcome.TIME_LIMIT else None",
           "return _timed_out(self.best_plan) if ans.outcome is MilpOutcome.TIME_LIMIT else (Status.OPTIMAL, 'mutant')",
           "exact claims optimal after its first improving Dinkelbach iteration"),
    Mutant("dipsd-one-round", "solvers/dipsd.py",
           "for _ in range(MAX_ROUNDS):", "for _ in range(1):",
           "DiP-SD stops after one x-step/l-step round for every N"),
    Mutant("tokens-beyond-3", "data/scenario.py",
           "return (1.0 - self.alpha ** (length + 1)) / (1.0 - self.alpha)",
           "return (1.0 - self.alpha ** (length + 1)) / (1.0 - self.alpha) * (1 + 1e-6 * (length > 3))",
           "expected tokens off by a relative 1e-6 beyond 3 draft tokens"),
    Mutant("verify-flops-beyond-3", "data/scenario.py",
           "return float(4 * self.blocks * h1 * length * (2 * h1 + prefix_len + length + self.ffn_hidden))",
           "return float(4 * self.blocks * h1 * length * (2 * h1 + prefix_len + length + self.ffn_hidden + (length > 3)))",
           "verification FLOPs one token of padding off beyond 3 draft tokens"),
    Mutant("ready-without-comm", "data/scenario.py",
           "return self.draft_ms(length) + self.comm_latency_ms",
           "return self.draft_ms(length) + self.comm_latency_ms * (length < 5)",
           "the communication latency forgotten from 5 draft tokens on"),
    Mutant("memory-strict", "data/scenario.py",
           "return self.target.parameter_bytes + self.target.kv_bytes(batch_size, prefix_len) <= self.memory_cap_bytes",
           "return self.target.parameter_bytes + self.target.kv_bytes(batch_size, prefix_len) < self.memory_cap_bytes",
           "a batch that fills the memory cap exactly is refused"),
    Mutant("bound-without-margin", "solvers/exact.py",
           "self.bound = min(self.bound, q + max(ans.bound, 0.0) / self.session.min_span)",
           "self.bound = min(self.bound, q + max(ans.bound, 0.0) / self.session.min_span * 0.5)",
           "exact's certificate halves F(q)'s bound: bounds below the optimum"),
    Mutant("segment-bound-too-high", "solvers/partition_search.py",
           "seg[p][u] = min(((q - p) * own[p] + seg[q][u - 1]",
           "seg[p][u] = min(((q - p) * own[p] * 1.001 + seg[q][u - 1]",
           "the x-step's segment bound overstates the verification sum by 0.1 %: optimal partitions pruned"),
    Mutant("l-step-changes-from-lo", "solvers/length_search.py",
           "new = np.isfinite(now) if lo == 0 else now != values(lo - 1)",
           "new = np.isfinite(now) if lo == 0 else now != values(min(lo + 1, hi))",
           "the l-step's search counts as new only options that change after a range's second point"),
)


def _copy(into: str) -> None:
    """The tracked files (and the untracked ones git does not ignore) of the working tree."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = os.path.join(ROOT, rel)
        if os.path.isfile(source):
            os.makedirs(os.path.dirname(os.path.join(into, rel)), exist_ok=True)
            shutil.copy2(source, os.path.join(into, rel))


def _layout(tree: str) -> None:
    """``dipsd`` as it installs (``dipsd.solvers`` is ``solvers/`` ...), as links inside the copy's
    ``dipsd/`` folder, so that the copy imports itself from wherever Python starts looking."""
    for name, folder in FOLDERS.items():
        os.symlink(os.path.join(tree, folder), os.path.join(tree, "dipsd", name))


def run(mutant: Mutant | None, tests: list[str]) -> tuple[bool, str]:
    """``(caught, what failed first)`` for one mutant (None: the code as it is, which must pass)."""
    with tempfile.TemporaryDirectory(prefix="dipsd-mutant-") as tmp:
        tree = os.path.join(tmp, "tree")
        _copy(tree)
        _layout(tree)
        if mutant is not None:
            path = os.path.join(tree, mutant.path)
            text = open(path, encoding="utf-8").read()
            if text.count(mutant.old) != 1:
                raise SystemExit(f"mutant {mutant.name}: the line to change occurs {text.count(mutant.old)} times in "
                                 f"{mutant.path}; mend the mutant in tests/mutants.py")
            open(path, "w", encoding="utf-8").write(text.replace(mutant.old, mutant.new))
        env = {**os.environ, "PYTHONPATH": tree, "PYTHONDONTWRITEBYTECODE": "1"}
        module = "formulation.evaluate" if mutant is None else mutant.path[:-3].replace("/", ".")
        where = subprocess.run([sys.executable, "-c", f"import dipsd.{module} as m; print(m.__file__)"], cwd=tree, env=env,
                               capture_output=True, text=True)
        if not where.stdout.strip().startswith(tree):
            raise SystemExit(f"the copy is not what Python imports ({where.stdout.strip() or where.stderr})")
        lint = ["--deselect", "tests/test_quality.py::test_ruff_passes"]  # a mutant's style is not what is tested
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *lint, *tests], cwd=tree,
                              env=env, capture_output=True, text=True)
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        return done.returncode != 0, (failed[0] if failed else done.stdout.strip().splitlines()[-1] if done.stdout else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutants", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="mutants to run (default: all)")
    parser.add_argument("--list", action="store_true", help="name every mutant and exit")
    parser.add_argument("--tests", default="", help="pytest arguments (default: the fast default run)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unchanged copy (which must pass)")
    args = parser.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:24} {m.path:22} {m.why}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTANTS}
    if unknown:
        parser.error(f"unknown mutants: {', '.join(sorted(unknown))} (--list names them)")
    if not args.no_baseline:
        failed, first = run(None, shlex.split(args.tests))
        if failed:
            print(f"the unchanged code fails the tests ({first}): a mutant's result would mean nothing", file=sys.stderr)
            return 2
        print(f"{'(unchanged)':24} passes", flush=True)
    missed = 0
    for m in MUTANTS:
        if args.names and m.name not in args.names:
            continue
        caught, first = run(m, shlex.split(args.tests))
        missed += not caught
        print(f"{m.name:24} {'caught' if caught else 'MISSED'}  {first}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
