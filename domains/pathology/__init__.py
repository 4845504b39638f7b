"""Pathology: H&E tiles <-> captions on the shared contrastive core (issue 16, in progress)."""
