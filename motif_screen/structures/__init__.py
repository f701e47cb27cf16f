"""motif_screen.structures"""
