"""Parity harness: record a pipeline's artifacts and explain differences against another run."""
