"""Which decoded compositions can be a compound: the chemistry rule generation hands the decoder.

The decoder scores compositions but knows no chemistry; ``StructureAutoencoder.decode(accept=...)``
takes the most probable composition a rule accepts. Crystals must pass the SMACT charge-balance
test (CDVAE's composition validity), molecules must be able to pair their valences into bonds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from motif_screen.generation.molecules import valences_can_pair
from motif_screen.structures.validity import counts_pass_smact, element_symbol

__all__ = ["compound_rule"]


def compound_rule(elements: Sequence[int], periodic: bool) -> Callable[[list[int]], bool]:
    """A test of per-element counts over ``elements`` (a model's vocabulary): can they be a compound?"""
    elements = [int(z) for z in elements]
    if not periodic:

        def pairs_valences(counts: list[int]) -> bool:
            return valences_can_pair({z: n for z, n in zip(elements, counts) if n})

        return pairs_valences
    symbols = [element_symbol(z) for z in elements]

    def passes_smact(counts: list[int]) -> bool:
        return counts_pass_smact({s: n for s, n in zip(symbols, counts) if n})

    return passes_smact
