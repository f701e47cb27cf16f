"""motif_screen.training"""
