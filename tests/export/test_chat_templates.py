"""The exported chat templates, applied by transformers, give the renderers' tokens on the test corpus."""

from __future__ import annotations

import pytest

from posttrain import get_renderer, get_tokenizer
from posttrain.engine.models import hf_tokenizer_of
from posttrain.export.chat_templates import chat_template_for
from tests.corpus import NAMED_CONVERSATIONS

VERIFIED = [("smollm2", "posttrain:smollm2"), ("llama3", "posttrain:llama3"), ("role_colon", "posttrain:llama3"),
            ("qwen3", "posttrain:qwen3"), ("qwen3_disable_thinking", "posttrain:qwen3")]
# Meta encodes the header's "\n\n" and the content apart; a template's text is tokenized as one string,
# so content starting with a newline splits differently there (documented in chat_templates).
KNOWN_BOUNDARY = {("llama3", "leading_newline")}


def _apply(hf, template: str, messages, generation: bool) -> list[int]:
    out = hf.apply_chat_template(messages, chat_template=template, tokenize=True, add_generation_prompt=generation,
                                 return_dict=False)
    return list(out)


@pytest.mark.parametrize(("renderer_name", "tokenizer_name"), VERIFIED, ids=[r for r, _ in VERIFIED])
def test_template_tokens_equal_the_renderer(renderer_name: str, tokenizer_name: str) -> None:
    tok = get_tokenizer(tokenizer_name)
    renderer, hf = get_renderer(renderer_name, tok), hf_tokenizer_of(tok)
    template = chat_template_for(renderer_name, hf.chat_template)
    assert template.verified and template.text
    differ = []
    for name, conv in NAMED_CONVERSATIONS:
        full = renderer.build_supervised_example(conv, "all_assistant_messages").tokens
        prompt = renderer.build_generation_prompt(conv[:-1])
        if (_apply(hf, template.text, conv, False), _apply(hf, template.text, conv[:-1], True)) != (full, prompt):
            differ.append(name)
    assert {(renderer_name, n) for n in differ} <= KNOWN_BOUNDARY, differ


def test_the_known_llama3_boundary_is_the_same_text() -> None:
    tok = get_tokenizer("posttrain:llama3")
    renderer, hf = get_renderer("llama3", tok), hf_tokenizer_of(tok)
    conv = dict(NAMED_CONVERSATIONS)["leading_newline"]
    ours = renderer.build_supervised_example(conv, "all_assistant_messages").tokens
    theirs = _apply(hf, chat_template_for("llama3", None).text or "", conv, False)
    assert ours != theirs and tok.decode(ours) == tok.decode(theirs)


def test_unverified_renderers_keep_the_base_template() -> None:
    template = chat_template_for("mistral", "{{ base }}")
    assert template.text == "{{ base }}" and not template.verified
