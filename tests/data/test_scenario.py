

def test_server_intercept_has_a_floor():
    """Every batch costs at least beta_v, which keeps the span positive: below the floor is refused."""
    import pytest

    from dipsd.data import defaults as D
    from dipsd.data.scenario import TargetModel

    assert TargetModel(beta_ms=D.VERIFY_BETA_FLOOR_MS).beta_ms == D.VERIFY_BETA_FLOOR_MS
    for bad in (0.0, 1e-9, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta_ms must be >= 1e-06"):
            TargetModel(beta_ms=bad)
    with pytest.raises(ValueError, match="c_ms_per_flop"):
        TargetModel(c_ms_per_flop=0.0)
