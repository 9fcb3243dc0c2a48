"""smollm2 renderer vs the chat template and tokenizer carried in SmolLM2-135M-Instruct's GGUF."""

from __future__ import annotations

import pytest

from posttrain import MessageError, RendererError, TrainOnWhat, get_renderer, get_tokenizer
from posttrain.renderers import get_recommended_renderer_name
from tests.corpus import CONVERSATION_IDS, CONVERSATIONS, control_token_conversations
from tests.reference_hf import reference_ids, reference_ids_of_text, template_text


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer("posttrain:smollm2")


@pytest.fixture(scope="module")
def renderer(tok):
    return get_renderer("smollm2", tok)


def test_template_is_the_ggufs(tok):
    # The template that ships in the GGUF, not one of ours: the default system prompt is its text.
    assert "You are a helpful AI assistant named SmolLM, trained by Hugging Face" in tok.hf_tokenizer.chat_template


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_full_sequence_equals_template(renderer, tok, msgs):
    assert renderer.build_supervised_example(msgs).tokens == reference_ids(tok, msgs, generation=False)


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_generation_prompt_equals_template(renderer, tok, msgs):
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] == "user":
            assert renderer.build_generation_prompt(msgs[:k]) == reference_ids(tok, msgs[:k], generation=True)


def test_empty_conversation_prompt(renderer, tok):
    assert renderer.build_generation_prompt([]) == reference_ids_of_text(tok, "<|im_start|>assistant\n")


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_trained_tokens_are_reply_and_end_of_turn(renderer, tok, msgs):
    ex = renderer.build_supervised_example(msgs, TrainOnWhat.LAST_ASSISTANT_MESSAGE)
    trained = [t for t, w in zip(ex.tokens, ex.weights, strict=True) if w > 0]
    prompt = renderer.build_generation_prompt(msgs[:-1])
    decoded, reply = tok.decode(trained), msgs[-1]["content"] + "<|im_end|>"
    assert decoded.endswith(reply)
    if decoded != reply:
        # The header's "\n" merged with the reply's leading whitespace into one token, which is trained
        # (the model must emit it); the observation then ends one token before the prompt does.
        assert decoded == "\n" + reply and reply[:1].isspace()
        assert ex.tokens[: len(prompt) - 1] == prompt[:-1] and not any(ex.weights[: len(prompt) - 1])
    else:
        assert ex.tokens[: len(prompt)] == prompt and not any(ex.weights[: len(prompt)])


@pytest.mark.parametrize("msgs", control_token_conversations())
def test_control_token_text_against_template(renderer, tok, msgs):
    """Control-token text stays text (tests/renderers/test_contract.py); here: against the template."""
    ex = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    text = template_text(tok, msgs, False)
    assert tok.decode(ex.tokens) == text  # same characters as the template
    ref = reference_ids_of_text(tok, text)
    if any(c in m["content"] for m in msgs for c in ("<|im_start|>", "<|im_end|>", "<|endoftext|>")):
        # the template's tokenization would turn the typed text into control tokens; we do not
        assert sum(t in tok.added_ids for t in ref) > sum(t in tok.added_ids for t in ex.tokens)
    else:
        assert ref == ex.tokens


def test_stop_sequence_is_im_end(renderer, tok):
    # The parse round trip is in tests/renderers/test_contract.py.
    assert renderer.get_stop_sequences() == [tok.token_id("<|im_end|>")] == [2]


def test_rejects_what_the_format_cannot_express(renderer):
    with pytest.raises(MessageError, match="message 1, field 'tool_calls'"):
        renderer.build_supervised_example([
            {"role": "user", "content": "t?"},
            {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                                                                  "function": {"name": "now", "arguments": "{}"}}]}])
    with pytest.raises(MessageError, match="message 1, field 'content'.*reasoning"):
        renderer.build_supervised_example([
            {"role": "user", "content": "t?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "x"}]}])


def test_construction_checks_control_tokens():
    with pytest.raises(RendererError, match="renderer 'smollm2' needs control token"):
        get_renderer("smollm2", get_tokenizer("posttrain:llama3"))


def test_recommended_and_trains_nothing_error(renderer):
    assert get_recommended_renderer_name("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2"
    with pytest.raises(RendererError):
        renderer.build_supervised_example([{"role": "user", "content": "hi"}])
