"""motif_screen.screening"""
