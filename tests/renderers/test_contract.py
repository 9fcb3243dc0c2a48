"""Control-token text in messages stays text (llama3 and role_colon; other families test their own)."""

from __future__ import annotations

import pytest

from posttrain import TrainOnWhat, get_renderer
from tests.corpus import CONTROL_STRINGS, control_token_conversations


@pytest.mark.parametrize("name", ["llama3", "role_colon"])
@pytest.mark.parametrize("msgs", control_token_conversations())
def test_no_special_id_from_content(llama3_tokenizer, name, msgs):
    renderer = get_renderer(name, llama3_tokenizer)
    added = llama3_tokenizer.added_ids
    ex = renderer.build_supervised_example(msgs, TrainOnWhat.ALL_MESSAGES)
    content_idx = ex.content_token_indices()
    assert content_idx, "content spans must be tracked"
    assert not [ex.tokens[i] for i in content_idx if ex.tokens[i] in added]
    # The content decodes back to the original characters.
    for mi, m in enumerate(msgs):
        content_tokens = [ex.tokens[i] for c in ex.message_chunks(mi) if c.from_content for i in range(c.start, c.end)]
        assert m["content"] in llama3_tokenizer.decode(content_tokens)


def test_special_ids_only_where_the_format_places_them(llama3_tokenizer):
    renderer = get_renderer("llama3", llama3_tokenizer)
    msgs = control_token_conversations()[-1]
    ex = renderer.build_supervised_example(msgs)
    specials = [t for t in ex.tokens if t in llama3_tokenizer.added_ids]
    # BOS + 3 x (start_header, end_header, eot): nothing from the control strings in the text.
    assert len(specials) == 1 + 3 * 3
    assert all(s in llama3_tokenizer.decode(ex.tokens) for s in CONTROL_STRINGS[:5])
