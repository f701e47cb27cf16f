"""motif_screen: propose, pre-screen and hand off hypothetical structures from FireWorks.

Importing the package binds the embedded-store client factory into FireWorks and atomate (cheap,
imports neither), so every process that runs one of our Firetasks shares one MongoDB stand-in.
"""

from motif_screen.db.embedded import install as _install_embedded_store

__version__ = "0.1.0"
__all__ = ["__version__"]

_install_embedded_store()
