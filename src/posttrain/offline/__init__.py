"""Offline tokenizer sources (``posttrain:<name>``), one module per reference package.

Importing this package registers every source; each imports its reference package only when used.
"""

from posttrain.offline import hf_packaged, llama3, openai_mistral, smollm2  # noqa: F401
