"""Data sources, supervised datasets (indexable and streaming), builders and preference data."""
