"""motif_screen.firetasks"""
