"""Offline sources for gpt-oss (o200k_harmony) and Mistral. Filled in by the renderer work."""
