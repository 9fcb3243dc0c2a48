"""Fill a Hugging Face cache (``HF_HOME``) with what tinker-cookbook's ``rl_loop`` recipe downloads, made
locally, so it runs unmodified with ``HF_HUB_OFFLINE=1``: the Llama 3 tokenizer it asks for (copied from a
local model folder) and a small GSM8K-shaped ``openai/gsm8k`` data set (arithmetic questions with
``#### answer`` lines). Run by the cookbook's venv::

    HF_HOME=DIR .venv-cookbook/bin/python tests/server/cookbook/offline_cache.py TOKENIZER_FOLDER
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

TOKENIZER_REPO = "thinkingmachineslabinc/meta-llama-3-instruct-tokenizer"
REVISION = "0" * 40


def tokenizer_snapshot(hub: Path, folder: Path) -> None:
    repo = hub / f"models--{TOKENIZER_REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    snapshot.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (folder / name).is_file():
            shutil.copy(folder / name, snapshot / name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)


def gsm8k_rows(n: int, seed: int) -> dict[str, list[str]]:
    import random

    rng = random.Random(seed)
    questions, answers = [], []
    for _ in range(n):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        questions.append(f"Tom has {a} apples and buys {b} more. How many apples does he have?")
        answers.append(f"He has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}")
    return {"question": questions, "answer": answers}


def gsm8k_cache() -> None:
    import datasets

    parts = {"train": gsm8k_rows(16, 0), "test": gsm8k_rows(4, 1)}
    builder = datasets.load_dataset_builder("parquet", data_files={k: _parquet(k, v) for k, v in parts.items()})
    builder.download_and_prepare()
    # where datasets looks for a hub data set it cannot reach: CACHE/openai___gsm8k/CONFIG/VERSION/HASH,
    # its arrow files named after the data set
    prepared = Path(builder.cache_dir)
    target = Path(datasets.config.HF_DATASETS_CACHE) / "openai___gsm8k" / "main" / prepared.parent.name / prepared.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(prepared, target, dirs_exist_ok=True)
    for arrow in target.glob("parquet-*.arrow"):
        arrow.rename(target / arrow.name.replace("parquet-", "gsm8k-", 1))
    info = json.loads((target / "dataset_info.json").read_text())
    info.update(config_name="main", dataset_name="gsm8k")
    (target / "dataset_info.json").write_text(json.dumps(info))


def _parquet(split: str, rows: dict[str, list[str]]) -> str:
    import datasets

    path = Path(os.environ["HF_HOME"]) / "gsm8k-src" / f"{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict(rows).to_parquet(str(path))
    return str(path)


if __name__ == "__main__":
    tokenizer_snapshot(Path(os.environ["HF_HOME"]) / "hub", Path(sys.argv[1]))
    gsm8k_cache()
