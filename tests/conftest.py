from __future__ import annotations

import pytest

from posttrain import get_tokenizer
from posttrain.tokenizer import Tokenizer


@pytest.fixture(scope="session")
def llama3_tokenizer() -> Tokenizer:
    return get_tokenizer("posttrain:llama3")


@pytest.fixture(scope="session")
def meta_chat_format():
    """Meta's official Llama 3 encoder (llama-models)."""
    from llama_models.llama3.chat_format import ChatFormat
    from llama_models.llama3.tokenizer import Tokenizer as MetaTokenizer

    return ChatFormat(MetaTokenizer.get_instance())
