"""motif_screen.cli"""
