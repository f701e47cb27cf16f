"""motif_screen.model"""
