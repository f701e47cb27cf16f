"""motif_screen.structures — reading, checking, describing and de-duplicating atomic structures.

Top-level imports are light (numpy only); pymatgen, ASE and SMACT load inside the functions.
"""

from motif_screen.structures.dedup import (
    CDVAE_MATCHER_SETTINGS,
    ReferenceSet,
    default_matcher,
    duplicate_of,
    novel_mask,
    reference_matches,
    unique_indices,
)
from motif_screen.structures.fingerprint import fingerprint, formula_key
from motif_screen.structures.io import (
    cif_text,
    read_structures,
    read_table,
    read_text,
    structure_from_any,
    structures_from_cif,
    write_cifs,
)
from motif_screen.structures.motifs import (
    ENVIRONMENT_NAMES,
    MotifFilter,
    SiteMotif,
    motif_labels,
    motif_summary,
    parse_motif_filter,
    site_motifs,
)
from motif_screen.structures.validity import (
    CheckResult,
    ValidityReport,
    check_composition_text,
    check_validity,
    composition_is_valid,
    min_interatomic_distance,
    symmetrize,
)

__all__ = [
    "CDVAE_MATCHER_SETTINGS",
    "ENVIRONMENT_NAMES",
    "CheckResult",
    "MotifFilter",
    "ReferenceSet",
    "SiteMotif",
    "ValidityReport",
    "check_composition_text",
    "check_validity",
    "cif_text",
    "composition_is_valid",
    "default_matcher",
    "duplicate_of",
    "fingerprint",
    "formula_key",
    "min_interatomic_distance",
    "motif_labels",
    "motif_summary",
    "novel_mask",
    "parse_motif_filter",
    "read_structures",
    "read_table",
    "read_text",
    "reference_matches",
    "site_motifs",
    "structure_from_any",
    "structures_from_cif",
    "symmetrize",
    "unique_indices",
    "write_cifs",
]
