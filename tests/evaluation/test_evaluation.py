"""posttrain eval: NLL as plain transformers + peft compute it, the fine-tune's NLL below the base
model's on the shipped conversations, accuracy scored as ProblemEnv does."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from posttrain import get_renderer, get_tokenizer
from posttrain.cli import main
from posttrain.default_data import load_default_conversations
from posttrain.errors import PosttrainError
from posttrain.evaluation import EvalSettings, conversation_nll, evaluate, load_dataset
from posttrain.rl.envs.arithmetic import ArithmeticDataset
from posttrain.trained import load_renderer, load_sampler, resolve


def hf_nll(adapter: Path, sequences: list[tuple[list[int], list[float]]]) -> tuple[float, float]:
    """(mean of per-conversation mean NLL, NLL per trained token) with plain transformers + peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_path = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32),
                                      str(adapter)).eval()
    per_conv, total, count = [], 0.0, 0.0
    for tokens, weights in sequences:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([tokens])).logits[0, :-1]
        lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens[1:])[:, None])[:, 0].numpy()
        w = np.asarray(weights[1:])
        per_conv.append(-float(lp @ w) / w.sum())
        total, count = total - float(lp @ w), count + w.sum()
    return float(np.mean(per_conv)), total / count


def test_nll_equals_plain_transformers_and_peft(run_folder):
    trained = resolve(str(run_folder))
    sampler = load_sampler(trained, "cpu")
    renderer = load_renderer(trained, sampler.base.tokenizer)
    conversations = [r["messages"] for r in load_default_conversations()[:6]]
    settings = EvalSettings.from_run(trained.run_config)
    nll, per_token, n, skipped = conversation_nll(sampler, renderer, conversations, settings)
    sequences = []
    for conv in conversations:
        ex = renderer.build_supervised_example(conv, trained.run_config["train_on_what"])
        cut = trained.run_config["max_length"]
        sequences.append((ex.tokens[:cut], ex.weights[:cut]))
    expected = hf_nll(trained.checkpoint, sequences)
    assert (n, skipped) == (6, 0)
    assert nll == pytest.approx(expected[0], abs=1e-5) and per_token == pytest.approx(expected[1], abs=1e-5)


def test_the_fine_tune_beats_its_base_on_the_shipped_data(run_folder, capsys):
    assert main(["eval", str(run_folder), "--dataset", "posttrain:default", "--limit", "16", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    tuned, base = result["tuned"], result["base"]
    assert tuned["nll_conversations"] == base["nll_conversations"] == 16
    assert tuned["nll"] < base["nll"] and tuned["nll/token"] < base["nll/token"]
    assert main(["eval", str(run_folder), "--dataset", "default", "--limit", "2"]) == 0
    table = capsys.readouterr().out
    assert "nll/token" in table and "change" in table and "base:" in table


class FixedReplies:
    """A sampler stand-in whose every reply is the same tokens."""

    def __init__(self, tokens: list[int]):
        self.tokens = tokens
        self.prompts: list[list[int]] = []

    def sample_many(self, prompts, num_samples, params):
        self.prompts += prompts
        reply = SimpleNamespace(sequences=[SimpleNamespace(tokens=self.tokens)])
        return [SimpleNamespace(result=lambda: reply) for _ in prompts]


def test_accuracy_is_scored_as_problem_env_does(tmp_path):
    renderer = get_renderer("smollm2", get_tokenizer("posttrain:smollm2"))
    data = tmp_path / "qa.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in [
        {"question": "What is 3 + 4?", "answer": "7"}, {"question": "Capital of France?", "answer": "Paris"},
        {"question": "What is 5 + 2?", "answer": 7}]) + "\n")
    sampler = FixedReplies(renderer.tokenizer.encode("It is 7") + [renderer.special_id("<|im_end|>")])
    dataset = load_dataset(str(data))
    scores = evaluate(sampler, renderer, SimpleNamespace(**{**dataset.__dict__, "conversations": []}), EvalSettings())
    assert scores.accuracy == pytest.approx(2 / 3) and scores.problems == 3
    assert sampler.prompts[0] == renderer.build_generation_prompt([{"role": "user", "content": "What is 3 + 4?"}])


def test_arithmetic_problems_come_from_the_rl_env():
    assert load_dataset("arithmetic", limit=3).arithmetic == ArithmeticDataset(3, 1, 1, 0, None).problems(0)


def test_bad_datasets_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"nothing": 1}\n')
    with pytest.raises(PosttrainError, match="bad.jsonl:2"):
        load_dataset(str(bad))
    assert main(["eval", "posttrain:tiny-smollm2", "--dataset", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
