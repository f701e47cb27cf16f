"""motif_screen: propose, pre-screen and hand off hypothetical structures from FireWorks."""

__version__ = "0.1.0"
__all__ = ["__version__"]
