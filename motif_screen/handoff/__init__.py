"""motif_screen.handoff"""
