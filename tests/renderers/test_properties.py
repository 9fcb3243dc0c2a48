"""Property tests: random message text (any Unicode, whitespace, control-token fragments) renders exactly
as each family's official encoder renders it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posttrain import get_renderer, get_tokenizer
from tests.reference_hf import reference_ids

FRAGMENTS = ["<|eot_id|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "[INST]", "</s>", "<|start|>",
             "\n", "\r\n", "\t", "  ", "\u200b", "\u00a0", "👨‍👩‍👧", "e\u0301", "日本", "שלום", "'s", "123456"]
text = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(FRAGMENTS)), max_size=8).map("".join)
conversation = st.tuples(st.booleans(), text, text, text).map(
    lambda t: ([{"role": "system", "content": t[1]}] if t[0] else [])
    + [{"role": "user", "content": t[2]}, {"role": "assistant", "content": t[3]}])
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


QWEN_SAFE = [f for f in FRAGMENTS if f not in ("<|im_start|>", "<|im_end|>", "<think>", "</think>")]


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


@SETTINGS
@given(conversation)
def test_no_control_token_from_text_in_any_renderer(msgs):
    from posttrain.renderers import default_tokenizer_for, renderer_names

    for name in renderer_names():
        if name.startswith("mistral") and not msgs[-1]["content"]:
            continue  # Mistral formats reject an empty reply (tested elsewhere)
        tok = get_tokenizer(default_tokenizer_for(name))
        ex = get_renderer(name, tok).build_supervised_example(msgs, "all_messages")
        assert not [ex.tokens[i] for i in ex.content_token_indices() if ex.tokens[i] in tok.added_ids], name
