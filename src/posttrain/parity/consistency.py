"""Checks of one run against itself: values that are well typed but contradict each other.

A datum's ``loss_fn_inputs`` must agree with its own ``model_input`` (one target and one weight per
input token, ``shape == [len(data)]``, targets = inputs shifted by one); a rendered sample's
``token_count`` must be ``len(all_tokens)``. Such a contradiction is a bug in the writer or in the
datum builder whatever the other run holds; it counts as a data difference unless both runs have
exactly the same one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from posttrain.parity.model import Finding

NOT_SHIFTED = "targets not shifted: target[i] == input[i] (expected target[i] == input[i+1])"


@dataclass
class ParsedDatum:
    chunks: list[list[int]]
    targets: list[int]
    weights: list[float]
    target_shape: Any
    weight_shape: Any

    @property
    def inputs(self) -> list[int]:
        return [t for c in self.chunks for t in c]

    @property
    def seq(self) -> list[int]:
        """The token sequence the datum was cut from: inputs plus the last target."""
        return self.inputs + self.targets[-1:]

    @property
    def seq_weights(self) -> list[float]:
        # weights[i] belongs to targets[i] = seq[i + 1]; the first token is never a target.
        return [0.0, *self.weights]


def parse_datum(d: dict[str, Any]) -> ParsedDatum:
    lfi = d["loss_fn_inputs"]
    return ParsedDatum([list(c.get("tokens", [])) for c in d["model_input"]["chunks"]],
                       list(lfi["target_tokens"]["data"]), [float(w) for w in lfi["weights"]["data"]],
                       lfi["target_tokens"].get("shape"), lfi["weights"].get("shape"))


def shift_problem(d: ParsedDatum) -> str | None:
    inputs, targets = d.inputs, d.targets
    n = min(len(inputs), len(targets))
    if n < 2 or targets[: n - 1] == inputs[1:n]:
        return None
    if targets[:n] == inputs[:n]:
        return NOT_SHIFTED
    j = next(k for k in range(n - 1) if targets[k] != inputs[k + 1])
    return f"targets do not follow the inputs: target[{j}] = {targets[j]} but input[{j + 1}] = {inputs[j + 1]}"


def datum_problems(d: ParsedDatum) -> list[str]:
    n = len(d.inputs)
    out = []
    for name, data, shape in (("target_tokens", d.targets, d.target_shape), ("weights", d.weights, d.weight_shape)):
        if len(data) != n:
            out.append(f"loss_fn_inputs.{name} has {len(data)} values for {n} model_input tokens")
        if shape is not None and list(shape) != [len(data)]:
            out.append(f"loss_fn_inputs.{name}.shape is {list(shape)} but data has {len(data)} values")
    return out


def sample_problems(s: dict[str, Any]) -> list[str]:
    n = len(s["all_tokens"])
    out = []
    if "token_count" in s and s["token_count"] != n:
        out.append(f"token_count {s['token_count']} but all_tokens has {n} tokens")
    if len(s["weights"]) != n:
        out.append(f"weights has {len(s['weights'])} values for {n} tokens")
    return out


def _side_findings(layer: str, cause: str, what: str, problems: dict[str, dict[int, list[str]]]) -> list[Finding]:
    pa, pb = problems["A"], problems["B"]
    if not pa and not pb:
        return []
    both = pa == pb
    out = []
    for side, probs in (("A", pa), ("B", pb)):
        if not probs or (both and side == "B"):
            continue
        first = min(probs)
        who = "runs A and B (identically)" if both else f"run {side}"
        out.append(Finding(
            layer, cause,
            f"{who}: {len(probs)} {what}(s) contradict themselves; {what} {first}: {'; '.join(probs[first])}",
            {"side": "both" if both else side, "items": [{"summary": f"{what} {k}: {'; '.join(v)}", "index": k,
                                                          "problems": v} for k, v in sorted(probs.items())]},
            data_difference=not both))
    return out


def check_batches(datums_a: list[ParsedDatum], datums_b: list[ParsedDatum]) -> list[Finding]:
    shift: dict[str, dict[int, list[str]]] = {"A": {}, "B": {}}
    other: dict[str, dict[int, list[str]]] = {"A": {}, "B": {}}
    for side, datums in (("A", datums_a), ("B", datums_b)):
        for k, d in enumerate(datums):
            problem = shift_problem(d)
            if problem == NOT_SHIFTED:
                shift[side][k] = [problem]
            elif problem is not None:
                other[side][k] = [problem]
            if datum_problems(d):
                other[side].setdefault(k, []).extend(datum_problems(d))
    return (_side_findings("first_batch", "targets_not_shifted", "datum", shift)
            + _side_findings("first_batch", "inconsistent_datum", "datum", other))


def check_rendered(samples_a: list[dict[str, Any]] | None, samples_b: list[dict[str, Any]] | None) -> list[Finding]:
    problems: dict[str, dict[int, list[str]]] = {"A": {}, "B": {}}
    for side, samples in (("A", samples_a or []), ("B", samples_b or [])):
        for k, s in enumerate(samples):
            if sample_problems(s):
                problems[side][k] = sample_problems(s)
    return _side_findings("rendered_samples", "inconsistent_sample", "sample", problems)
