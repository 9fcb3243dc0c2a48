"""posttrain sample: replies to a prompts file through the renderer, beside the base model's."""

from __future__ import annotations

import json

from posttrain.cli import main
from posttrain.default_data import load_default_conversations
from posttrain.engine import SamplingParams
from posttrain.replies import read_prompt_rows
from posttrain.trained import load_renderer, load_sampler, resolve


def test_sample_writes_the_engines_greedy_replies_and_the_base_models(run_folder, tmp_path, capsys):
    out = tmp_path / "replies.jsonl"
    assert main(["sample", str(run_folder), "--prompts", "posttrain:default", "--limit", "3", "--max-tokens", "8", "--base",
                 "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    conversations = [r["messages"] for r in load_default_conversations()[:3]]
    assert [r["messages"] for r in records] == [c[:-1] for c in conversations]
    assert [r["reference"] for r in records] == [c[-1]["content"] for c in conversations]
    trained = resolve(str(run_folder))
    sampler = load_sampler(trained, "cpu")
    renderer = load_renderer(trained, sampler.base.tokenizer)
    params = SamplingParams(max_tokens=8, temperature=0.0, stop=renderer.get_stop_sequences())
    for record in records:
        seq = sampler.sample(renderer.build_generation_prompt(record["messages"]), 1, params).result().sequences[0]
        assert record["reply"] == renderer.parse_response(seq.tokens)[0].text
        assert isinstance(record["base_reply"], str)
    assert main(["sample", str(run_folder), "--prompts", "posttrain:default", "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_prompt_rows(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "hi"}\n\n{"question": "2+2?", "answer": 4}\n'
                    '{"messages": [{"role": "user", "content": "a"}]}\n')
    rows = read_prompt_rows(path)
    assert [(r.line, r.kind, r.reference) for r in rows] == [(1, "prompt", None), (3, "qa", "4"),
                                                             (4, "conversation", None)]
    assert rows[1].conversation == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
