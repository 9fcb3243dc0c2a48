"""A tiny SFT run exported merged and as a PEFT adapter loads with plain transformers / peft in a fresh
process and gives the engine's logprobs; the merged folder's chat template gives the renderer's tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from posttrain.cli import main
from posttrain.engine import SamplingParams
from posttrain.engine.models import SMOLLM2, resolve_model
from posttrain.errors import PosttrainError
from posttrain.export import export
from posttrain.export.folder import _shareable_base
from posttrain.trained import Trained, load_renderer, load_sampler, resolve
from tests.corpus import NAMED_CONVERSATIONS
from tests.tiny_run import TINY

CONVERSATIONS = [c for n, c in NAMED_CONVERSATIONS if n in ("simple", "system", "multi_turn", "cjk", "code")]


@pytest.fixture(scope="module")
def exported(run_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exported")
    base_folder = resolve_model(TINY)[0]  # the base as transformers loads it, written by posttrain's model cache
    assert main(["export", str(run_folder), str(out / "merged")]) == 0
    assert main(["export", str(run_folder), str(out / "adapter"), "--adapter", "--base-model-id", base_folder]) == 0
    return {"merged": out / "merged", "adapter": out / "adapter"}


def test_exports_load_in_a_fresh_process_with_the_engines_logprobs(run_folder, exported, tmp_path):
    trained = resolve(str(run_folder))
    sampler = load_sampler(trained, "cpu")
    renderer = load_renderer(trained, sampler.base.tokenizer)
    tokens = [renderer.build_supervised_example(c, "all_assistant_messages").tokens for c in CONVERSATIONS]
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"merged": str(exported["merged"]), "adapter": str(exported["adapter"]),
                                   "tokens": tokens, "conversations": CONVERSATIONS}))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("load_exported.py")), str(request)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    engine = [sampler.compute_logprobs(t).result()[1:] for t in tokens]
    for kind in ("merged", "adapter"):
        diff = max(float(np.max(np.abs(np.subtract(a, b)))) for a, b in zip(got[kind], engine, strict=True))
        assert diff < 1e-5, (kind, diff)
    assert got["template"] == tokens
    assert got["template_prompt"] == [renderer.build_generation_prompt(c[:-1]) for c in CONVERSATIONS]
    prompt = renderer.build_generation_prompt([CONVERSATIONS[0][0]])
    greedy = sampler.sample(prompt, 1, SamplingParams(max_tokens=8, temperature=0.0,
                                                      stop=renderer.get_stop_sequences())).result()
    assert got["pipeline_reply"] == renderer.parse_response(greedy.sequences[0].tokens)[0].text


def test_adapter_names_its_base_and_ships_the_tokenizer(exported):
    config = json.loads((exported["adapter"] / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == resolve_model(TINY)[0]
    assert {"tokenizer.json", "chat_template.jinja", "adapter_model.safetensors"} <= {
        p.name for p in exported["adapter"].iterdir()}
    for kind in ("merged", "adapter"):  # nothing that only makes sense on this machine
        assert "local_files_only" not in json.loads((exported[kind] / "tokenizer_config.json").read_text())


def test_the_offline_smollm2_is_named_by_its_hub_id():
    trained = Trained(spec="x", base_model=SMOLLM2, renderer="smollm2")
    assert _shareable_base(trained) == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_a_base_without_hub_id_needs_base_model_id(run_folder, tmp_path, capsys):
    assert main(["export", str(run_folder), str(tmp_path / "a"), "--adapter"]) == 2
    assert "--base-model-id" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_a_non_empty_target_is_refused_unless_forced(run_folder, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["export", str(run_folder), str(out), "--dtype", "bfloat16"]) == 2
    assert "not empty" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main(["export", str(run_folder), str(out), "--dtype", "bfloat16", "--force"]) == 0
    assert not (out / "keep.txt").exists()
    with safe_open(str(out / "model.safetensors"), "pt") as fh:
        assert {str(fh.get_tensor(k).dtype) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict) == {"torch.bfloat16"}


def test_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "config.json").write_text("{}")
    with pytest.raises(PosttrainError, match="no model_name"):
        resolve(str(tmp_path / "junk"))
    with pytest.raises(PosttrainError, match="base model, not a trained checkpoint"):
        export(resolve(TINY), tmp_path / "x", adapter=True)


LLAMA3_CHECK = """
import json, sys
from transformers import AutoModelForCausalLM, AutoTokenizer
folder, conversations = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(folder)
AutoModelForCausalLM.from_pretrained(folder)
config = json.load(open(folder + "/tokenizer_config.json"))
print(json.dumps({"full": [list(tok.apply_chat_template(c, tokenize=True, return_dict=False)) for c in conversations],
                  "prompt": [list(tok.apply_chat_template(c[:-1], tokenize=True, add_generation_prompt=True,
                                                          return_dict=False)) for c in conversations],
                  "in_config": config.get("chat_template") == tok.chat_template}))
"""


def test_a_llama3_export_carries_our_llama3_template(tmp_path):
    trained = resolve("posttrain:tiny-llama3")
    export(trained, tmp_path / "llama")
    proc = subprocess.run([sys.executable, "-c", LLAMA3_CHECK, str(tmp_path / "llama"), json.dumps(CONVERSATIONS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    from posttrain import get_renderer, get_tokenizer

    renderer = get_renderer("llama3", get_tokenizer("posttrain:llama3"))
    assert got["full"] == [renderer.build_supervised_example(c, "all_assistant_messages").tokens for c in CONVERSATIONS]
    assert got["prompt"] == [renderer.build_generation_prompt(c[:-1]) for c in CONVERSATIONS]
    assert got["in_config"]
    generation = json.loads((tmp_path / "llama" / "generation_config.json").read_text())
    assert generation["eos_token_id"] == renderer.get_stop_sequences()  # <|eot_id|>, <|eom_id|>
