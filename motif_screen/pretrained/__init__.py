"""motif_screen.pretrained"""
