"""The perovskite screen: common oxidation states, Shannon radii and Bartel's tolerance factor."""

import math
import os
from pathlib import Path

import pytest

from motif_screen.structures.perovskite import (
    COMMON_STATE_SHARE,
    T_MIN,
    TAU_MAX,
    common_oxidation_states,
    perovskite_screen,
    shannon_radius,
)
from motif_screen.structures.validity import composition_is_valid

PEROV5_DIR = Path(
    os.environ.get("MOTIF_SCREEN_PEROV5_DIR", Path(__file__).resolve().parents[3] / "shared/data/perov_5")
)

KNOWN_PEROVSKITES = ["SrTiO3", "BaTiO3", "BaZrO3", "KNbO3", "LaAlO3", "CaTiO3", "KMgF3", "NaMgF3"]


@pytest.mark.parametrize("formula", KNOWN_PEROVSKITES + ["BiFeO3", "YAlO3", "LaMnO3", "LaNiO3", "SrVO3", "BaZrS3"])
def test_textbook_perovskites_are_admitted(formula):
    ok, why, details = perovskite_screen(formula)
    assert ok, why
    assert details["rule"] == "" and details["tau"] < TAU_MAX and details["t"] > T_MIN
    assert details["r_A"] > details["r_B"]  # A is the larger cation
    assert details["n_A"] + details["n_B"] == -sum(n * {"O": -2, "F": -1, "S": -2}[x] for x, n in details["X"].items())


def test_the_a_site_is_the_larger_cation_whatever_the_order_of_the_formula():
    ok, _, details = perovskite_screen("TiSrO3")
    assert ok and (details["A"], details["n_A"], details["B"], details["n_B"]) == ("Sr", 2, "Ti", 4)
    assert details["cn_A"] == 12 and details["cn_B"] == 6
    assert details["r_A"] == pytest.approx(1.44) and details["r_B"] == pytest.approx(0.605)
    assert details["tau"] == pytest.approx(3.80, abs=0.01)  # Bartel et al., Table S1: SrTiO3 tau = 3.80
    assert any(o["A"] == "Ti" for o in details["options"])  # both assignments were tried


@pytest.mark.parametrize("formula", ["SiGeF3", "TaTeF3", "YZrF3"])
def test_formulas_balanced_only_through_unusual_oxidation_states_are_excluded(formula):
    assert composition_is_valid(formula)[0]  # the old rule (CDVAE's SMACT check) let them through
    ok, why, details = perovskite_screen(formula)
    assert not ok and details["rule"] == "oxidation"
    assert why.startswith("no common oxidation states of the cations balance F3 (+3 needed")
    print(formula, "->", why)


def test_bisbs3_is_excluded_by_the_size_rule():
    assert composition_is_valid("BiSbS3")[0]
    ok, why, details = perovskite_screen("BiSbS3")
    assert not ok and details["rule"] == "size"
    # Bi3+ and Sb3+ are common and balance S3; the A cation is too small: Goldschmidt t below its bound
    assert (details["A"], details["n_A"], details["B"], details["n_B"]) == ("Bi", 3, "Sb", 3)
    assert details["cn_A"] == 8  # Bi3+ has no CN 12 radius: the nearest tabulated one, as Bartel et al. do
    assert details["t"] <= T_MIN and "Goldschmidt t = 0.819" in why
    print("BiSbS3 ->", why, f"(tau = {details['tau']:.3f})")


@pytest.mark.parametrize(
    ("formula", "rule", "reason"),
    [
        ("MgSiO3", "size", "tau = 5.06 >= 4.18"),  # too small an A cation (ilmenite / post-perovskite chemistry)
        ("FeTiO3", "size", "tau = 5.57 >= 4.18"),  # ilmenite
        ("NbSiN3", "size", "above +3"),  # high-valent A: tau does not apply
        ("MgLaO3", "oxidation", "no common oxidation states"),  # Mg2+ La3+ = 5 != 6
        ("CsSnF3", "radius", "no Shannon radius for Sn+2"),
        ("Fe2O3", "formula", "is not A B X3"),
        ("SrTiO4", "formula", "is not A B X3"),
        ("Xx3", "formula", "not a chemical formula"),
    ],
)
def test_every_exclusion_names_its_rule_and_reason(formula, rule, reason):
    ok, why, details = perovskite_screen(formula)
    assert not ok and details["rule"] == rule and reason in why, why
    assert "\n" not in why


def test_mixed_anions_use_the_mean_anion_radius():
    ok, why, details = perovskite_screen("BaTaO2N")
    assert ok, why
    r_o, r_n = shannon_radius("O", -2, 6)[0], shannon_radius("N", -3, 6)[0]
    assert details["r_X"] == pytest.approx((2 * r_o + r_n) / 3, abs=1e-4)
    assert details["cn_X"] == {"O": 6, "N": 4}  # N3- is tabulated at CN 4 only
    assert (details["n_A"], details["n_B"]) == (2, 5)


def test_common_oxidation_states_come_from_icsd_frequencies():
    assert common_oxidation_states("Ti") == (3, 4)  # Ti2+ is < 5 % of Ti's ICSD reports
    assert 3 in common_oxidation_states("Mn") and 3 in common_oxidation_states("Ni")  # LaMnO3, LaNiO3
    assert common_oxidation_states("Ge") == (2, 4) and -1 not in common_oxidation_states("Ge")
    assert common_oxidation_states("Zr") == (4,) and common_oxidation_states("Y") == (3,)
    assert common_oxidation_states("Unobtainium") == ()
    from smact.utils.oxidation import ICSD24OxStatesFilter

    table = ICSD24OxStatesFilter().filter(consensus=3, commonality=COMMON_STATE_SHARE)
    smact_lists = {row.element: tuple(int(q) for q in str(row.oxidation_state).split()) for row in table.itertuples()}
    for symbol in ("Li", "O", "Ti", "V", "Mn", "Fe", "Mo", "Ru", "Sn", "Sb", "Te", "Ba", "La", "Pb", "Bi"):
        assert common_oxidation_states(symbol) == smact_lists[symbol], symbol


def test_spin_and_coordination_conventions_of_bartel():
    assert shannon_radius("Co", 3, 6) == (0.61, 6)  # d6: high spin
    assert shannon_radius("Cu", 2, 6)[1] == 6
    assert shannon_radius("Bi", 3, 12) == (1.17, 8)  # nearest tabulated CN
    assert shannon_radius("Ru", 2, 6) is None


def _perov5_formulas(split: str) -> list[tuple[str, float]]:
    path = PEROV5_DIR / f"{split}.csv"
    if not path.exists():
        pytest.skip(f"perov-5 is not at {PEROV5_DIR} (set MOTIF_SCREEN_PEROV5_DIR to its folder)")
    import pandas as pd

    table = pd.read_csv(path, usecols=["formula", "heat_ref"])
    return list(zip(table["formula"], table["heat_ref"]))


def test_share_of_perov5_the_rule_admits():
    rows = _perov5_formulas("test")
    verdicts = [(perovskite_screen(f)[0], composition_is_valid(f)[0], heat) for f, heat in rows]
    admitted = sum(ok for ok, _, _ in verdicts) / len(verdicts)
    old = [ok for ok, smact, _ in verdicts if smact]
    kept_of_old = sum(old) / len(old)
    stable = [ok for ok, _, heat in verdicts if heat < 0.2]  # Castelli et al.'s window for stable cubic perovskites
    stable_admitted = sum(stable) / len(stable)
    base = len(stable) / len(verdicts)
    hit_rate = sum(1 for ok, _, heat in verdicts if ok and heat < 0.2) / sum(ok for ok, _, _ in verdicts)
    print(
        f"perov-5 test: {len(verdicts)} formulas; the rule admits {admitted:.1%}; the old rule (SMACT) admits "
        f"{len(old) / len(verdicts):.1%} and the new keeps {kept_of_old:.1%} of those; of the {len(stable)} with "
        f"heat_ref < 0.2 eV/atom it admits {stable_admitted:.1%} ({hit_rate:.1%} of the admitted vs {base:.1%} of all)"
    )
    # perov-5 enumerates A, B over 52 metals and 7 anion sets: most are hypothetical (measured: 10.5 %)
    assert admitted > 0.08
    assert kept_of_old > 0.08
    # the rule picks the stable ones: measured 65 % of them admitted, 6x enrichment
    assert stable_admitted > 0.5 and hit_rate > 3 * base
    assert all(math.isfinite(h) for _, h in rows)
