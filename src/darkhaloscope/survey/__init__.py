"""DR10 survey layer: bricks, WCS cutouts, catalogs and LRG selection, the cutout service, the synthetic survey."""
