"""tinker-cookbook's supervised ``train.main``, unmodified, against ``posttrain serve``.

Run by the cookbook's own virtual environment (tinker-cookbook 0.5.8 pins transformers <= 5.5.4, which
posttrain's cannot share)::

    .venv-cookbook/bin/python tests/server/cookbook/sl_main.py URL MODEL DATA.jsonl LOG_DIR BATCH LR RANK MAX_LENGTH
"""

from __future__ import annotations

import asyncio
import sys

from tinker_cookbook.supervised import train
from tinker_cookbook.supervised.data import FromConversationFileBuilder
from tinker_cookbook.supervised.types import ChatDatasetBuilderCommonConfig


def main(url: str, model: str, data: str, log_dir: str, batch: str, lr: str, rank: str, max_length: str) -> None:
    common = ChatDatasetBuilderCommonConfig(model_name_for_tokenizer=model, renderer_name="llama3",
                                            max_length=int(max_length), batch_size=int(batch))
    config = train.Config(log_path=log_dir, model_name=model, recipe_name="posttrain-serve-check",
                          dataset_builder=FromConversationFileBuilder(common_config=common, file_path=data),
                          learning_rate=float(lr), lr_schedule="linear", num_epochs=1, lora_rank=int(rank),
                          base_url=url, eval_every=0, save_every=0, ttl_seconds=None)
    asyncio.run(train.main(config))


if __name__ == "__main__":
    main(*sys.argv[1:])
