"""Property tests: random message text (any Unicode, whitespace, control-token fragments) renders exactly
as each family's official encoder renders it. (That such text never becomes a control token, in every
renderer, is in test_contract.py.)"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from posttrain import get_renderer, get_tokenizer
from tests.corpus import random_conversations
from tests.reference_hf import reference_ids

conversation = random_conversations()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(conversation)
def test_llama3_equals_meta(meta_chat_format, llama3_tokenizer, msgs):
    from llama_models.datatypes import RawMessage

    r = get_renderer("llama3", llama3_tokenizer)
    ref = meta_chat_format.encode_dialog_prompt([RawMessage(**m) for m in msgs]).tokens
    assert r.build_supervised_example(msgs).tokens == ref[:-4]  # without the next assistant header
    assert r.build_generation_prompt(msgs[:-1]) == meta_chat_format.encode_dialog_prompt(
        [RawMessage(**m) for m in msgs[:-1]]).tokens


@pytest.fixture(scope="module")
def qwen():
    tok = get_tokenizer("posttrain:qwen3")
    return tok, get_renderer("qwen3", tok)


@SETTINGS
@given(conversation.filter(lambda msgs: not any(f in m["content"] for m in msgs for f in ("<|im", "think>"))))
def test_qwen3_equals_template(qwen, msgs):
    """Where the text holds no Qwen control string, the template's own tokenization is the reference."""
    tok, r = qwen
    assert r.build_generation_prompt(msgs[:-1]) == reference_ids(tok, msgs[:-1], generation=True)
    assert r.build_supervised_example(msgs).tokens == reference_ids(tok, msgs, generation=False)

