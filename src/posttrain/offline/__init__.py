"""Offline tokenizer sources (``posttrain:<name>``), one module per reference package.

:data:`SOURCES` maps each name to its factory; :func:`posttrain.tokenizer.get_tokenizer` reads it. Each
source imports its reference package only when used.
"""

from collections.abc import Callable

from posttrain.offline import hf_packaged, llama3, openai_mistral, smollm2
from posttrain.tokenizer.core import Tokenizer

SOURCES: dict[str, Callable[[], Tokenizer]] = {
    **llama3.SOURCES, **smollm2.SOURCES, **openai_mistral.SOURCES, **hf_packaged.SOURCES,
}
