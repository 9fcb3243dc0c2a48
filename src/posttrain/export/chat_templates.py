"""Jinja chat templates that make ``tokenizer.apply_chat_template`` produce our renderers' tokens.

An exported model folder carries the template of the renderer the run trained with, so
``transformers``' ``pipeline("text-generation")``, vLLM and TGI prompt the model exactly as training
did. Each template here is checked by test against the renderer on the test corpus (full
conversations and generation prompts), tokenized by ``transformers`` from the rendered text.

* ``smollm2``, ``qwen3``: the family's own template is the renderer's reference (SmolLM2's is written
  out here, since a tokenizer loaded from elsewhere may lack it).
* ``qwen3_disable_thinking``: Qwen3's template with ``enable_thinking`` defaulting to false.
* ``llama3``: ours. The published Llama 3.1 template adds a date system prompt and trims content,
  neither of which Meta's ``ChatFormat`` (our reference) does. One difference cannot be written in a
  template: Meta encodes the header's ``"\\n\\n"`` and the content separately, while a template's text
  is tokenized as one string, so content that *starts* with whitespace holding a newline (``"\\nHi"``)
  tokenizes differently at that boundary (same text, other token split).
* ``role_colon``: ours (``User: …\\n\\nAssistant:``), with the same boundary caveat for content that
  starts with a newline.

``qwen3_instruct`` keeps Qwen3's template: its generation prompts match the renderer, but a full
conversation gets an empty think block in the last reply (the instruct-2507 template has none).
Other renderers (DeepSeek, gpt-oss, Mistral) have no verified template here: the base tokenizer's
own template is kept, and :func:`chat_template_for` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

LLAMA3 = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + ('ipython' if message['role'] == 'tool' else message['role'])"
    " + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# A full conversation ends with "User:" after the last assistant reply, as the renderer's supervised
# example does (the stop sequence "\n\nUser:" is part of what the model learned to emit).
ROLE_COLON = (
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- message['role'] | capitalize }}:{{ ' ' + message['content'] + '\\n\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'Assistant:' }}"
    "{%- elif messages and messages[-1]['role'] == 'assistant' %}{{- 'User:' }}{%- endif %}"
)

SMOLLM2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_DISABLE_THINKING = "{%- if enable_thinking is not defined %}{%- set enable_thinking = false %}{%- endif %}"


@dataclass(frozen=True)
class ChatTemplate:
    text: str | None  # None: keep the tokenizer's own
    verified: bool  # checked against the renderer by test


def chat_template_for(renderer: str, base_template: str | None) -> ChatTemplate:
    """The template to ship with a model trained with ``renderer``; ``base_template`` is the base
    tokenizer's own (used where it is the renderer's reference)."""
    if renderer == "llama3":
        return ChatTemplate(LLAMA3, True)
    if renderer == "role_colon":
        return ChatTemplate(ROLE_COLON, True)
    if renderer == "smollm2":
        return ChatTemplate(SMOLLM2, True)
    if renderer == "qwen3" and base_template:
        return ChatTemplate(base_template, True)
    if renderer == "qwen3_disable_thinking" and base_template:
        return ChatTemplate(_DISABLE_THINKING + base_template, True)
    return ChatTemplate(base_template, False)
