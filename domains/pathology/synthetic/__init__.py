"""The synthetic H&E set (tiles with captions, pyramidal slides), the pathology default."""
