"""The real SmolLM2-135M-Instruct from the packaged GGUF: it loads as a 134.5M-parameter Llama, its
renderer's datums train, and a few cross-entropy steps on one small batch lower the loss."""

from __future__ import annotations

import json

import pytest

from posttrain import get_renderer
from posttrain.data.supervised import conversation_to_datum
from posttrain.default_data import default_dataset_path
from posttrain.engine import SMOLLM2, AdamParams, ModelInput, SamplingParams, ServiceClient


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return ServiceClient(tmp_path_factory.mktemp("ck"), device="cpu").create_lora_training_client(
        SMOLLM2, rank=8, seed=0)


def test_loads_the_real_model(client):
    info = client.get_info()
    assert info.num_parameters - info.num_trainable_parameters == 134_515_008
    assert info.max_context_length == 8192 and info.dtype == "float32"
    assert type(client.base.model).__name__ == "LlamaForCausalLM"


def test_cross_entropy_steps_lower_the_loss(client):
    renderer = get_renderer("smollm2", client.base.tokenizer)
    rows = [json.loads(line) for line in default_dataset_path().read_text().splitlines()[:2]]
    datums = [conversation_to_datum(r["messages"], renderer, 128) for r in rows]
    losses = []
    for _ in range(3):
        losses.append(client.forward_backward(datums, "cross_entropy").result().metrics["loss:sum"])
        client.optim_step(AdamParams(learning_rate=1e-3))
    final = client.forward(datums, "cross_entropy").result().metrics["loss:sum"]
    assert losses[1] < losses[0] and final < 0.8 * losses[0], (losses, final)


def test_chat_generation_stops_at_end_of_turn(tmp_path):
    sampler = ServiceClient(tmp_path, device="cpu").create_sampling_client(base_model=SMOLLM2)
    renderer = get_renderer("smollm2", sampler.base.tokenizer)
    prompt = renderer.build_generation_prompt([{"role": "user", "content": "What is the capital of France?"}])
    seq = sampler.sample(ModelInput.from_ints(prompt), 1, SamplingParams(
        max_tokens=40, temperature=0.0, stop=renderer.get_stop_sequences())).result().sequences[0]
    message, ended = renderer.parse_response(seq.tokens)
    assert ended and seq.tokens[-1] == 2 and "Paris" in message.text
