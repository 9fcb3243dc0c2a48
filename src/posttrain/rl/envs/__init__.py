"""Ready-made RL tasks: :mod:`.arithmetic` (chat, via a renderer) and :mod:`.token_target` (raw tokens,
learnable by the tiny test model in a few steps)."""
