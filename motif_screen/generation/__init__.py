"""motif_screen.generation"""
