"""Registry, model → renderer mapping, and behaviour shared by all renderers."""

from __future__ import annotations

import pytest

from posttrain import RendererError, TrainOnWhat, get_renderer
from posttrain.renderers import get_recommended_renderer_name, renderer_names
from posttrain.renderers.llama3 import Llama3Renderer
from tests.corpus import CONVERSATIONS


def test_unknown_renderer_lists_known(llama3_tokenizer):
    with pytest.raises(ValueError, match="unknown renderer 'llama2'; known renderers: .*llama3.*role_colon"):
        get_renderer("llama2", llama3_tokenizer)


@pytest.mark.parametrize(
    ("model", "renderer"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
        ("meta-llama/Llama-3.2-1B", "llama3"),
        ("Qwen/Qwen3-8B", "qwen3"),
        ("Qwen/Qwen3-30B-A3B-Instruct-2507", "qwen3_instruct"),
        ("deepseek-ai/DeepSeek-V3.1", "deepseekv3_thinking"),
        ("deepseek-ai/DeepSeek-V3-0324", "deepseekv3"),
        ("openai/gpt-oss-20b", "gpt_oss_medium_reasoning"),
        ("mistralai/Mistral-Small-3.1-24B-Instruct-2503", "mistral"),
    ],
)
def test_recommended_renderer(model, renderer):
    assert get_recommended_renderer_name(model) == renderer
    assert renderer in renderer_names()


def test_recommended_renderer_unknown_model():
    with pytest.raises(ValueError, match="no recommended renderer for model 'acme/rocket-7b'"):
        get_recommended_renderer_name("acme/rocket-7b")


class _NoExtension(Llama3Renderer):
    has_extension_property = False


def test_build_supervised_examples_splits_without_extension_property(llama3_tokenizer):
    msgs = CONVERSATIONS[2]  # three assistant turns
    plain = get_renderer("llama3", llama3_tokenizer)
    assert len(plain.build_supervised_examples(msgs)) == 1
    split = _NoExtension(llama3_tokenizer).build_supervised_examples(msgs, TrainOnWhat.ALL_ASSISTANT_MESSAGES)
    assert len(split) == 3
    for k, ex in zip((2, 4, 6), split, strict=True):
        expected = plain.build_supervised_example(msgs[:k], TrainOnWhat.LAST_ASSISTANT_MESSAGE)
        assert (ex.tokens, ex.weights) == (expected.tokens, expected.weights)
    with pytest.raises(RendererError, match="cannot be split"):
        _NoExtension(llama3_tokenizer).build_supervised_examples(msgs, TrainOnWhat.ALL_MESSAGES)
