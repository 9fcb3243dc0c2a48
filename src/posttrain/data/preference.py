"""Preference data: comparisons, labels, builders for common hub sets, and DPO datums.

A :class:`LabeledComparison` says which of two completions of a shared prompt is preferred. For
DPO each one becomes an adjacent pair of datums, chosen first, rejected second, rendered from the
same prompt with weights only on the completion. Ties carry no preference: they are skipped and
counted, as are rows a builder cannot turn into a comparison (each with its reason).

Splits and parsing follow tinker-cookbook's preference builders, with two deliberate differences:
hh-rlhf transcripts are cut only at turn markers (``\n\nHuman:`` / ``\n\nAssistant:``), so those
words inside a turn stay text; and a multi-turn completion (arena) trains every assistant turn of
the completion, not only the last. DPO weights stay 0/1 (sequence log-prob sums, no mean).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import datasets

from posttrain.data.readers import jsonl_rows, source_name
from posttrain.data.sources import with_source_index
from posttrain.data.supervised import SupervisedDatasetFromHFDataset
from posttrain.datum import datum_from_tokens_weights
from posttrain.default_data import shipped_path
from posttrain.errors import InputError, MessageError, PosttrainError
from posttrain.messages import Message, MessageLike, to_messages
from posttrain.renderers.base import Renderer
from posttrain.train_on_what import TrainOnWhat
from posttrain.types import Datum

Label = Literal["A", "B", "Tie"]


@dataclass(frozen=True)
class Comparison:
    prompt_conversation: list[Message]
    completion_A: list[Message]  # noqa: N815 - tinker-cookbook's field names
    completion_B: list[Message]  # noqa: N815

    def swap(self) -> Comparison:
        return Comparison(self.prompt_conversation, self.completion_B, self.completion_A)

    @classmethod
    def from_dicts(cls, prompt: Sequence[MessageLike], a: Sequence[MessageLike], b: Sequence[MessageLike]) -> Comparison:
        return cls(to_messages(prompt), to_messages(a), to_messages(b))


@dataclass(frozen=True)
class LabeledComparison:
    comparison: Comparison
    label: Label

    def __post_init__(self) -> None:
        if self.label not in ("A", "B", "Tie"):
            raise PosttrainError(f"label must be 'A', 'B' or 'Tie', got {self.label!r}")

    def swap(self) -> LabeledComparison:
        return LabeledComparison(self.comparison.swap(), {"A": "B", "B": "A", "Tie": "Tie"}[self.label])  # type: ignore[arg-type]

    @property
    def chosen_and_rejected(self) -> tuple[list[Message], list[Message]]:
        c = self.comparison
        if self.label == "Tie":
            raise PosttrainError("a tie has no chosen completion")
        return (c.completion_A, c.completion_B) if self.label == "A" else (c.completion_B, c.completion_A)


# -- DPO ------------------------------------------------------------------------------------------


def _completion_sequence(renderer: Renderer, prompt: list[Message], completion: list[Message],
                         max_length: int | None) -> Datum:
    if not any(m.role == "assistant" for m in completion):
        raise PosttrainError("a completion needs at least one assistant message")
    # Explicit per-message flags: the prompt never trains, every assistant turn of the completion does.
    flagged = [replace(m, trainable=False) for m in prompt]
    flagged += [replace(m, trainable=m.role == "assistant") for m in completion]
    tokens, weights = renderer.build_supervised_example(flagged, TrainOnWhat.CUSTOMIZED)
    return datum_from_tokens_weights(tokens, weights, max_length)


def comparison_to_dpo_datums(labeled: LabeledComparison, renderer: Renderer, max_length: int | None) -> list[Datum]:
    """``[chosen, rejected]`` for a preference, ``[]`` for a tie."""
    if labeled.label == "Tie":
        return []
    chosen, rejected = labeled.chosen_and_rejected
    prompt = labeled.comparison.prompt_conversation
    return [_completion_sequence(renderer, prompt, chosen, max_length),
            _completion_sequence(renderer, prompt, rejected, max_length)]


@dataclass
class PreferenceStats:
    kept: int = 0
    ties: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)


def _row_of(lc: LabeledComparison) -> dict[str, Any]:
    c = lc.comparison
    dump = lambda ms: json.dumps([m.to_dict() for m in ms], ensure_ascii=False)  # noqa: E731
    return {"prompt": dump(c.prompt_conversation), "a": dump(c.completion_A), "b": dump(c.completion_B),
            "label": lc.label}


def _from_row(row: dict[str, Any]) -> LabeledComparison:
    return LabeledComparison(Comparison(to_messages(json.loads(row["prompt"])), to_messages(json.loads(row["a"])),
                                        to_messages(json.loads(row["b"]))), row["label"])


def dpo_dataset(comparisons: Iterable[LabeledComparison | InputError], renderer: Renderer, batch_size: int,
                max_length: int | None = None) -> tuple[SupervisedDatasetFromHFDataset, PreferenceStats]:
    """A supervised dataset whose batches hold ``batch_size`` comparisons = ``2 * batch_size`` datums,
    chosen/rejected adjacent. Ties and unusable rows are left out and counted in the stats."""
    stats = PreferenceStats()
    rows = []
    for lc in comparisons:
        if isinstance(lc, InputError):
            stats.skipped += 1
            stats.reasons.append(str(lc))
        elif lc.label == "Tie":
            stats.ties += 1
        else:
            stats.kept += 1
            rows.append(_row_of(lc))
    if not rows:
        raise PosttrainError(f"no usable comparisons ({stats.ties} ties, {stats.skipped} skipped)")
    ds = with_source_index(datasets.Dataset.from_list(rows))
    flatmap = lambda row: comparison_to_dpo_datums(_from_row(row), renderer, max_length)  # noqa: E731
    return SupervisedDatasetFromHFDataset(ds, batch_size, flatmap_fn=flatmap), stats


# -- sources ----------------------------------------------------------------------------------------


_NESTED = ("prompt_conversation", "completion_A", "completion_B")


def _comparison_fields(row: Any) -> tuple[dict[str, Any], Any]:
    """The comparison object and label of a JSONL row, flat or nested under ``comparison``."""
    if not isinstance(row, dict):
        raise PosttrainError(f"expected a JSON object, got {type(row).__name__}")
    body = row.get("comparison", row)
    if not isinstance(body, dict):
        raise PosttrainError(f"field 'comparison': expected an object, got {type(body).__name__}")
    missing = [k for k in _NESTED if k not in body]
    missing += [] if "label" in row else ["label"]
    if missing:
        raise PosttrainError(f"missing {', '.join(missing)}")
    return body, row["label"]


def _as_turns(value: Any, role: str, fld: str) -> list[Message]:
    """A plain string is one message of ``role``; a list is messages."""
    return _checked_messages([{"role": role, "content": value}] if isinstance(value, str) else value, fld)


def _comparison_of(row: Any) -> LabeledComparison:
    """A comparison row in tinker-cookbook's layout, or the common ``{"prompt", "chosen", "rejected"}``
    one (strings or message lists; ``chosen`` is preferred)."""
    flat = ("prompt", "chosen", "rejected")
    if isinstance(row, dict) and set(flat) & row.keys() and not {*_NESTED, "comparison"} & row.keys():
        missing = [k for k in flat if k not in row]
        if missing:
            raise PosttrainError(f"missing {', '.join(missing)} (a prompt/chosen/rejected row)")
        prompt = _as_turns(row["prompt"], "user", "prompt")
        return LabeledComparison(Comparison(prompt, _as_turns(row["chosen"], "assistant", "chosen"),
                                            _as_turns(row["rejected"], "assistant", "rejected")), "A")
    body, label = _comparison_fields(row)
    return LabeledComparison(Comparison(*(_checked_messages(body[k], k) for k in _NESTED)), label)


def _checked_messages(value: Any, fld: str) -> list[Message]:
    try:
        return to_messages(value)
    except MessageError as err:
        raise PosttrainError(f"{fld}: {err}") from err


def read_comparison_rows(path: str) -> Iterator[tuple[int, LabeledComparison | InputError]]:
    """``(line, comparison or its error)`` for every row of a comparisons file: a bad row (malformed
    JSON, a missing field, a label that is not A/B/Tie) is reported where it stands and never stops
    the rows after it. Layouts: see :func:`read_comparisons_jsonl`. ``posttrain:default``: the shipped pairs."""
    path = shipped_path(path, "preferences")
    source = source_name(path)
    malformed: list[InputError] = []
    for line, row in jsonl_rows(path, on_error=malformed.append):
        yield from ((e.line or 0, e) for e in malformed)
        malformed.clear()
        try:
            yield line, _comparison_of(row)
        except PosttrainError as err:
            yield line, InputError(str(err), source=source, line=line)
    yield from ((e.line or 0, e) for e in malformed)


def read_comparisons_jsonl(path: str) -> Iterator[LabeledComparison]:
    """JSONL comparisons, one per line: ``{"prompt_conversation": [...], "completion_A": [...],
    "completion_B": [...], "label": "A" | "B" | "Tie"}``, tinker-cookbook's nested form
    ``{"comparison": {"prompt_conversation": ..., "completion_A": ..., "completion_B": ...}, "label": ...}``,
    or ``{"prompt": ..., "chosen": ..., "rejected": ...}`` (strings or message lists). The first bad row
    raises; its error names the file, line and field (:func:`read_comparison_rows` reads past it)."""
    for _, row in read_comparison_rows(path):
        if isinstance(row, InputError):
            raise row
        yield row


def _hhh_messages(text: str) -> list[dict[str, str]]:
    parts = re.split(r"(\n\nHuman:|\n\nAssistant:|^Human:|^Assistant:)", text)
    out = []
    for delim, content in zip(parts[1::2], parts[2::2], strict=True):
        role = "user" if delim.strip() == "Human:" else "assistant"
        out.append({"role": role, "content": content.strip()})
    return out


def hhh_to_comparison(row: dict[str, Any]) -> LabeledComparison:
    """Anthropic/hh-rlhf style: ``chosen``/``rejected`` transcripts sharing all but the last turn."""
    chosen, rejected = _hhh_messages(row["chosen"]), _hhh_messages(row["rejected"])
    if len(chosen) != len(rejected) or not chosen:
        raise PosttrainError(f"chosen has {len(chosen)} turns, rejected {len(rejected)}; they must match")
    if chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant":
        raise PosttrainError("chosen and rejected must share every turn but a final assistant turn")
    return LabeledComparison(Comparison.from_dicts(chosen[:-1], [chosen[-1]], [rejected[-1]]), "A")


def ultrafeedback_to_comparison(row: dict[str, Any]) -> LabeledComparison:
    """UltraFeedback binarized: ``chosen``/``rejected`` message lists (HuggingFaceH4 layout) or
    ``instruction`` + ``chosen_response``/``rejected_response`` (argilla layout)."""
    if "instruction" in row:
        prompt = [{"role": "user", "content": row["instruction"]}]
        return LabeledComparison(Comparison.from_dicts(
            prompt, [{"role": "assistant", "content": row["chosen_response"]}],
            [{"role": "assistant", "content": row["rejected_response"]}]), "A")
    chosen, rejected = row["chosen"], row["rejected"]
    if chosen[:-1] != rejected[:-1]:
        raise PosttrainError("chosen and rejected must share the prompt messages")
    return LabeledComparison(Comparison.from_dicts(chosen[:-1], chosen[-1:], rejected[-1:]), "A")


def _arena_messages(conv: list[dict[str, Any]]) -> list[dict[str, str]]:
    """lmsys rows hold content strings; lmarena rows hold lists of typed parts (text joined by a space,
    as tinker-cookbook does; a message with no parts is dropped)."""
    out = []
    for m in conv:
        content = m["content"]
        if isinstance(content, list):
            if any(not isinstance(p, dict) or p.get("type") != "text" for p in content):
                raise PosttrainError("non-text content (images) is not supported")
            if not content:
                continue
            content = " ".join(p.get("text", "") for p in content)
        out.append({"role": m["role"], "content": content})
    return out


# lmsys/chatbot_arena_conversations writes "tie (bothbad)", lmarena-ai's 140k set "both_bad".
_ARENA_WINNERS: dict[str, Label] = {"model_a": "A", "model_b": "B", "tie": "Tie", "tie (bothbad)": "Tie",
                                    "both_bad": "Tie"}


def arena_to_comparison(row: dict[str, Any]) -> LabeledComparison:
    """Chatbot-arena style: ``conversation_a``/``conversation_b`` and ``winner``. The prompt is the
    first user turn, as in tinker-cookbook."""
    a, b = _arena_messages(row["conversation_a"]), _arena_messages(row["conversation_b"])
    if len(a) < 2 or len(b) < 2 or a[-1]["role"] != "assistant" or b[-1]["role"] != "assistant":
        raise PosttrainError("each conversation needs a user turn and must end with an assistant turn")
    winner = row["winner"]
    if winner not in _ARENA_WINNERS:
        raise PosttrainError(f"unknown winner {winner!r} (expected one of {', '.join(sorted(_ARENA_WINNERS))})")
    label = _ARENA_WINNERS[winner]
    return LabeledComparison(Comparison.from_dicts(a[:1], a[1:], b[1:]), label)


def comparisons_from_rows(rows: Iterable[dict[str, Any]], convert: Callable[[dict[str, Any]], LabeledComparison],
                          source: str) -> Iterable[LabeledComparison | InputError]:
    """Convert hub rows; a row that cannot be converted yields an InputError (row number, reason)
    for :func:`dpo_dataset` to count, instead of vanishing."""
    for i, row in enumerate(rows, start=1):
        try:
            yield convert(row)
        except (KeyError, TypeError) as err:
            yield InputError(f"missing or malformed field {err}", source=source, line=i)
        except (MessageError, PosttrainError) as err:
            yield InputError(str(err), source=source, line=i)


@dataclass
class HubComparisonBuilder:
    """Load a preference set with ``datasets.load_dataset(path)`` and split it as tinker-cookbook does:
    train shuffled with seed 0; test = the first ``test_size`` rows of ``test_split`` shuffled with
    seed 0, or, without a test split, of the shuffled train split (the rest is train)."""

    path: str
    convert: Callable[[dict[str, Any]], LabeledComparison]
    split: str = "train"
    test_split: str | None = None
    test_size: int = 1024
    revision: str | None = None

    def __call__(self) -> tuple[list[LabeledComparison | InputError], list[LabeledComparison | InputError]]:
        ds = datasets.load_dataset(self.path, split=self.split, revision=self.revision).shuffle(seed=0)
        if self.test_split is not None:
            test = datasets.load_dataset(self.path, split=self.test_split, revision=self.revision).shuffle(seed=0)
            train, test = ds, test.take(self.test_size)
        else:
            test, train = ds.take(self.test_size), ds.skip(self.test_size)
        return (list(comparisons_from_rows(train, self.convert, self.path)),
                list(comparisons_from_rows(test, self.convert, self.path)))


def hhh_builder(path: str = "Anthropic/hh-rlhf", **kw: Any) -> HubComparisonBuilder:
    return HubComparisonBuilder(path, hhh_to_comparison, **{"test_split": "test", **kw})


def ultrafeedback_builder(path: str = "argilla/ultrafeedback-binarized-preferences", **kw: Any) -> HubComparisonBuilder:
    """tinker-cookbook's UltraFeedback set (argilla layout): one train split, first 1024 shuffled rows as test."""
    return HubComparisonBuilder(path, ultrafeedback_to_comparison, **kw)


def ultrafeedback_binarized_builder(path: str = "HuggingFaceH4/ultrafeedback_binarized", **kw: Any
                                    ) -> HubComparisonBuilder:
    """HuggingFaceH4's layout: ``train_prefs`` / ``test_prefs`` splits of chosen/rejected message lists."""
    return HubComparisonBuilder(path, ultrafeedback_to_comparison, **{"split": "train_prefs",
                                                                       "test_split": "test_prefs", **kw})


def arena_builder(path: str = "lmarena-ai/arena-human-preference-140k", **kw: Any) -> HubComparisonBuilder:
    """Arena sets: ``lmarena-ai/arena-human-preference-140k`` (tinker-cookbook's) or
    ``lmsys/chatbot_arena_conversations`` (same columns, string contents)."""
    return HubComparisonBuilder(path, arena_to_comparison, **kw)


def dpo_datasets(
    train: Iterable[LabeledComparison | InputError],
    test: Iterable[LabeledComparison | InputError] | None,
    renderer: Renderer,
    batch_size: int,
    max_length: int | None = None,
) -> tuple[SupervisedDatasetFromHFDataset, SupervisedDatasetFromHFDataset | None, PreferenceStats]:
    """Train and test DPO datasets from a builder's output; the test set is one batch holding all of
    it (as tinker-cookbook does). The stats are the train set's."""
    train_ds, stats = dpo_dataset(train, renderer, batch_size, max_length)
    test_list = list(test) if test is not None else []
    n_test = sum(isinstance(x, LabeledComparison) and x.label != "Tie" for x in test_list)
    test_ds = dpo_dataset(test_list, renderer, n_test, max_length)[0] if n_test else None
    return train_ds, test_ds, stats
