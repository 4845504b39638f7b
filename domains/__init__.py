"""Domain packages built on the contrastive core."""
