"""motif_screen.graphs"""
