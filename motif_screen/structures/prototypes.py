"""Is a decoded A B X3 cell a perovskite? Its prototype, read from the coordination motifs.

A family campaign proposes perovskite *formulas* and lets the decoder make the cell; whether that
cell is a perovskite is a question of geometry, answered here from the motifs the pre-screen
computes anyway (:func:`motif_screen.structures.motifs.site_motifs`):

* ``perovskite`` — every site of the formula's B cation is octahedral with six X ligands, and every
  site of its A cation has at least :data:`MIN_A_LIGANDS` X ligands (twelve in the cubic cell,
  eight or more once octahedra tilt);
* ``perovskite_inverted`` — that geometry with A and B exchanged: the larger cation sits in the
  octahedron (what the decoder makes when it puts each cation on the other's site);
* ``abx3_other`` — neither, e.g. a trigonal-pyramidal A site or a linear B site.

A and B are the reading of the formula by the size rule (:func:`perovskite_screen`: A is the larger
cation). A formula that rule cannot read (no common oxidation states, no Shannon radius) has no A
and B: then the cell is ``perovskite`` when either cation takes the B geometry and the other the A
geometry. Cells that are not A B X3 have no prototype here (``None``).
"""

from __future__ import annotations

from collections.abc import Sequence

from motif_screen.structures.motifs import SiteMotif
from motif_screen.structures.perovskite import ANION_STATES, perovskite_screen

__all__ = ["PROTOTYPES", "MIN_A_LIGANDS", "abx3_prototype"]

PEROVSKITE, INVERTED, OTHER = "perovskite", "perovskite_inverted", "abx3_other"
PROTOTYPES = (PEROVSKITE, INVERTED, OTHER)
MIN_A_LIGANDS = 8  # X ligands of an A site: 12 in the cubic aristotype, 8 to 12 in tilted ones


def _anion_ligands(motif: SiteMotif) -> int:
    return sum(n for element, n in motif.ligands.items() if element in ANION_STATES)


def abx3_prototype(composition, motifs: Sequence[SiteMotif]) -> str | None:
    """The prototype (one of :data:`PROTOTYPES`) of a cell of ``composition`` with these site
    motifs, or ``None`` when the composition is not A B X3."""
    _, _, details = perovskite_screen(composition)
    if details.get("rule") == "formula":
        return None
    by_element: dict[str, list[SiteMotif]] = {}
    for motif in motifs:
        by_element.setdefault(motif.element, []).append(motif)

    def b_site(element: str) -> bool:
        sites = by_element.get(element, [])
        return bool(sites) and all(m.environment == "octahedral" and _anion_ligands(m) == 6 for m in sites)

    def a_site(element: str) -> bool:
        sites = by_element.get(element, [])
        return bool(sites) and all(_anion_ligands(m) >= MIN_A_LIGANDS for m in sites)

    a, b = details.get("A"), details.get("B")
    if a and b:
        if b_site(b) and a_site(a):
            return PEROVSKITE
        return INVERTED if b_site(a) and a_site(b) else OTHER
    first, second = sorted(e for e in by_element if e not in ANION_STATES)
    either = (b_site(first) and a_site(second)) or (b_site(second) and a_site(first))
    return PEROVSKITE if either else OTHER
