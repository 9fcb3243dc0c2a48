"""Offline models for scale: random-initialised models with real architectures, built from a seed."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from posttrain.engine import models
from posttrain.engine.models import RANDOM_MODELS, load_base_model, random_model_config

# published parameter counts of the architectures they copy (Llama 3.2 1B, Llama 3.1 8B, Qwen3 8B)
PUBLISHED = {"posttrain:random-llama3-1b": 1_235_814_400, "posttrain:random-llama3-8b": 8_030_261_248,
             "posttrain:random-qwen3-8b": 8_190_735_360}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_random_models_have_the_published_architectures(name):
    config = random_model_config(name)
    with torch.device("meta"):  # shapes only: nothing allocated
        model = AutoModelForCausalLM.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name]


def test_random_model_is_drawn_from_its_seed_with_its_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("POSTTRAIN_CACHE", str(tmp_path))
    small = ("posttrain:llama3", "llama", dict(
        vocab_size=128256, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True))
    monkeypatch.setitem(RANDOM_MODELS, "posttrain:random-small", small)
    monkeypatch.setitem(models.OFFLINE_MODELS, "posttrain:random-small", models._random_folder("posttrain:random-small"))
    a = load_base_model("posttrain:random-small", torch.device("cpu"))
    b = load_base_model("posttrain:random-small", torch.device("cpu"))
    assert a.tokenizer.vocab_size == 128256 and a.max_context_length == 4096
    weights = dict(a.model.named_parameters())
    assert all(torch.equal(weights[n], p) for n, p in b.model.named_parameters())
    embed = a.model.get_input_embeddings().weight
    assert 0.015 < float(embed.std()) < 0.025  # initializer_range 0.02, not zeros or an uninitialised buffer
    folder = tmp_path / "models" / "random-small-v1"
    assert (folder / "config.json").is_file() and not list(folder.glob("*.safetensors"))
