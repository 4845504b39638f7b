"""Earth observation: Sentinel-1/2 data, CLOSP / GeoCLOSP training, evaluation and search."""
