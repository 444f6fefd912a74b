"""The MILP backend of exact and of DiP-SD's step MILPs: which solver a process uses and its
options (:mod:`.solvers`), the persistent Dinkelbach session (:mod:`.session`), the one adapter
to HiGHS and Pyomo internals (:mod:`.highs_adapter`) and the map from solver terminations to
dipsd's outcomes (:mod:`.outcomes`).  The tolerances and the deadline, which every method uses,
stay in :mod:`dipsd.solvers.tolerances` and :mod:`dipsd.solvers.deadline`."""
