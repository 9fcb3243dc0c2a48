"""Run in a fresh process: load exported folders with plain transformers / peft (no posttrain import)
and print, as JSON, the logprobs of given token sequences, the chat template's tokens and a greedy
pipeline reply. argv: a JSON request file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline


def logprobs(model, tokens: list[int]) -> list[float]:
    ids = torch.tensor([tokens])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0].tolist()


def main() -> None:
    req = json.loads(Path(sys.argv[1]).read_text())
    out: dict = {}
    merged = AutoModelForCausalLM.from_pretrained(req["merged"], dtype=torch.float32)
    out["merged"] = [logprobs(merged, t) for t in req["tokens"]]
    tok = AutoTokenizer.from_pretrained(req["merged"])
    out["template"] = [list(tok.apply_chat_template(c, tokenize=True, return_dict=False)) for c in req["conversations"]]
    out["template_prompt"] = [list(tok.apply_chat_template(c[:-1], tokenize=True, add_generation_prompt=True,
                                                           return_dict=False)) for c in req["conversations"]]
    gen = pipeline("text-generation", model=req["merged"], dtype=torch.float32)
    reply = gen([req["conversations"][0][0]], max_new_tokens=8, do_sample=False)
    out["pipeline_reply"] = reply[0]["generated_text"][-1]["content"]
    if "adapter" in req:
        from peft import PeftModel

        cfg = json.loads((Path(req["adapter"]) / "adapter_config.json").read_text())
        base = AutoModelForCausalLM.from_pretrained(cfg["base_model_name_or_path"], dtype=torch.float32)
        adapted = PeftModel.from_pretrained(base, req["adapter"]).eval()
        out["adapter"] = [logprobs(adapted, t) for t in req["tokens"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
