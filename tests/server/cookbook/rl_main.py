"""tinker-cookbook's ``recipes/rl_loop.py`` ``main``, unmodified, against ``posttrain serve``.

Run by the cookbook's venv with ``HF_HOME`` filled by ``offline_cache.py`` and ``HF_HUB_OFFLINE=1``::

    .venv-cookbook/bin/python tests/server/cookbook/rl_main.py URL MODEL_NAME LOG_DIR
"""

from __future__ import annotations

import sys

from tinker_cookbook.recipes import rl_loop


def main(url: str, model: str, log_dir: str) -> None:
    rl_loop.main(rl_loop.Config(base_url=url, model_name=model, log_path=log_dir, batch_size=4, group_size=4,
                                max_tokens=12, max_steps=2, save_every=1, lora_rank=8, learning_rate=1e-4,
                                ttl_seconds=None))


if __name__ == "__main__":
    main(*sys.argv[1:])
