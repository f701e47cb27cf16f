"""motif_screen.testing"""
