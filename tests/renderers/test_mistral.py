"""Mistral renderers vs mistral-common's MistralTokenizer (v3 and v7) encode_chat_completion."""

from __future__ import annotations

import pytest
from mistral_common.protocol.instruct.messages import AssistantMessage, SystemMessage, UserMessage
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.validator import ValidationMode
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

from posttrain import MessageError, TrainOnWhat, get_renderer, get_tokenizer
from posttrain.offline.openai_mistral import MISTRAL_MODELS
from tests.corpus import CONVERSATION_IDS, CONVERSATIONS, control_token_conversations

VERSIONS = {"mistral": "v7", "mistral_v3": "v3"}
CLASSES = {"system": SystemMessage, "user": UserMessage, "assistant": AssistantMessage}


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def pair(request):
    version = VERSIONS[request.param]
    ref = MistralTokenizer.from_file(str(MistralTokenizer._data_path() / MISTRAL_MODELS[version]),
                                     mode=ValidationMode.finetuning)
    serving = getattr(MistralTokenizer, version)()
    return get_renderer(request.param, get_tokenizer(f"posttrain:mistral-{version}")), ref, serving


def ref_ids(mt, msgs):
    return mt.encode_chat_completion(ChatCompletionRequest(messages=[CLASSES[m["role"]](content=m["content"])
                                                                      for m in msgs])).tokens


def reference_or_error(mt, msgs):
    try:
        return ref_ids(mt, msgs), None
    except Exception as err:  # noqa: BLE001 - the reference's own exception types vary
        return None, err


@pytest.mark.parametrize("msgs", CONVERSATIONS, ids=CONVERSATION_IDS)
def test_generation_prompt_and_full_sequence_equal_mistral_common(pair, msgs):
    renderer, ref, serving = pair
    for k in range(1, len(msgs) + 1):
        if msgs[k - 1]["role"] == "user":
            expected, err = reference_or_error(serving, msgs[:k])
            assert err is None, err
            assert renderer.build_generation_prompt(msgs[:k]) == expected
    expected, err = reference_or_error(ref, msgs)
    if err is not None:
        # mistral-common rejects it (an empty reply): so do we, naming the message.
        with pytest.raises(MessageError, match=r"message \d+, field 'content'"):
            renderer.build_supervised_example(msgs)
        return
    assert renderer.build_supervised_example(msgs).tokens == expected


@pytest.mark.parametrize("msgs", control_token_conversations())
def test_control_token_text_equals_mistral_common(pair, msgs):
    """Control-token text stays text (tests/renderers/test_contract.py); here: against mistral-common."""
    renderer, ref, _ = pair
    ex = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    assert ex.tokens == ref_ids(ref, msgs)  # mistral-common encodes message text as text too


def test_alternation_and_tools_are_checked(pair):
    renderer, _, _ = pair
    with pytest.raises(MessageError, match="message 1, field 'role': two user messages in a row"):
        renderer.build_supervised_example([{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                                           {"role": "assistant", "content": "c"}])
    with pytest.raises(MessageError, match="message 1, field 'tool_calls'"):
        renderer.build_supervised_example([{"role": "user", "content": "a"}, {"role": "assistant", "content": "",
                                           "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}])


def test_offline_tokenizer_equals_sentencepiece(pair):
    renderer, ref, _ = pair
    inner = ref.instruct_tokenizer.tokenizer
    for text in [m["content"] for c in CONVERSATIONS for m in c]:
        assert renderer.tokenizer.encode(text) == inner.encode(text, bos=False, eos=False)
