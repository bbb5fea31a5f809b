"""The spelled-out layout constants match their field tuples."""

from __future__ import annotations

from megapod_gym.sim import layout as L


def test_every_index_constant_matches_its_field() -> None:
    groups = {
        "P_": L.PARAM_FIELDS,
        "O_": L.OUT_FIELDS,
        "M_": L.MEAS_FIELDS,
        "S_": L.SERIES_FIELDS,
        "C_": L.CAR_FIELDS,
        "F_": L.FSTATE_FIELDS,
        "I_": L.ISTATE_FIELDS,
    }
    for prefix, fields in groups.items():
        for i, name in enumerate(fields):
            assert getattr(L, prefix + name.upper()) == i, prefix + name
        declared = [
            k for k in vars(L) if k.startswith(prefix) and k[len(prefix) :].islower() is False
        ]
        assert len([k for k in declared if k[len(prefix) :].lower() in fields]) == len(fields)
