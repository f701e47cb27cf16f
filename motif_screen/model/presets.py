"""Named encoder sizes. Every size-like value (cutoff, lmax, channels, layers, latent) is set HERE, once.

S is the screening model: 4 Å cutoff, lmax 1, per-channel tensor products — built for CPU
throughput (on 2 CPU cores a per-channel "uvu" tensor product + ``o3.Linear`` at 4 Å encoded about
1,300 five-atom cells/s, a fully connected one at 5 Å about 150/s; our encoder's figures are in
``benchmarks/README.md``, "Throughput"). M doubles the width, adds l=2 features and a layer, for
when accuracy matters more than speed.
"""

from __future__ import annotations

from motif_screen.errors import ConfigError

# Elements H..Pu: every element with DFT data in practice; the embedding table is tiny.
DEFAULT_VOCABULARY = tuple(range(1, 95))

PRESETS: dict[str, dict] = {
    "S": {
        "cutoff": 4.0,
        "lmax": 1,
        "channels": 32,
        "layers": 3,
        "latent_dim": 64,
        "latent_vectors": 8,  # number of 1o channels in the equivariant latent
        "num_basis": 8,
        "radial_hidden": 32,
        "avg_num_neighbors": 20.0,
        "polynomial_p": 6,
    },
    "M": {
        "cutoff": 5.0,
        "lmax": 2,
        "channels": 64,
        "layers": 4,
        "latent_dim": 128,
        "latent_vectors": 16,
        "num_basis": 8,
        "radial_hidden": 64,
        "avg_num_neighbors": 30.0,
        "polynomial_p": 6,
    },
}


def encoder_config(preset: str = "S", **overrides) -> dict:
    """The full encoder configuration of a preset with ``overrides`` applied (unknown keys raise)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown model preset {preset!r}; choose one of {', '.join(PRESETS)}")
    config = dict(PRESETS[preset])
    vocabulary = overrides.pop("vocabulary", None)
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ConfigError(f"unknown encoder setting(s) {', '.join(unknown)}; known: {', '.join(sorted(config))}")
    config.update(overrides)
    config["preset"] = preset
    config["vocabulary"] = [int(z) for z in (vocabulary if vocabulary is not None else DEFAULT_VOCABULARY)]
    return config
