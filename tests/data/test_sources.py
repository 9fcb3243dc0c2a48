"""Sources: JSONL/Parquet/CSV (local and fsspec URLs), hub-style folders, validation errors with locations."""

from __future__ import annotations

import csv
import gzip
import json

import datasets
import pytest

from posttrain import InputError
from posttrain.data.sources import load_conversations, load_conversations_with_report, stream_conversations

GOOD = [
    {"messages": [{"role": "user", "content": f"q{i} ünï"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(5)
]
MIXED = {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]},
                      {"role": "assistant", "content": "ok", "reasoning_content": "because"}]}


def write_jsonl(path, rows, extra_lines=()):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "".join(extra_lines)
    path.write_text(text, encoding="utf-8")
    return path


def contents(ds):
    return [[m["content"] for m in row["messages"]] for row in ds]


def test_jsonl_local_url_and_gzip(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", [*GOOD, MIXED])
    ds = load_conversations(str(p))
    assert len(ds) == 6 and contents(ds)[0] == ["q0 ünï", "a0"]
    # mixed shapes land in one canonical schema: parts joined, reasoning kept as "thinking"
    assert ds[5]["messages"][1]["thinking"] == "because" and ds[5]["messages"][0]["content"] == "parts"
    assert contents(load_conversations(f"file://{p}")) == contents(ds)
    gz = tmp_path / "c.jsonl.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    assert contents(load_conversations(str(gz))) == contents(ds)


def test_memory_fsspec_url():
    import fsspec

    with fsspec.open("memory://bucket/data.jsonl", "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in GOOD))
    assert len(load_conversations("memory://bucket/data.jsonl")) == 5


def test_parquet_and_csv(tmp_path):
    pq = tmp_path / "c.parquet"
    datasets.Dataset.from_list(GOOD).to_parquet(str(pq))
    assert contents(load_conversations(str(pq))) == contents(GOOD)
    cs = tmp_path / "c.csv"
    with cs.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "messages"])
        for i, r in enumerate(GOOD):
            w.writerow([i, json.dumps(r["messages"], ensure_ascii=False)])
    assert contents(load_conversations(str(cs))) == contents(GOOD)


def test_hub_style_folder_and_hub_prefix(tmp_path):
    """A folder laid out like a hub dataset repo goes through datasets.load_dataset, as a hub id does."""
    repo = tmp_path / "org" / "chat-data"
    (repo / "data").mkdir(parents=True)
    datasets.Dataset.from_list(GOOD[:3]).to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    datasets.Dataset.from_list(GOOD[3:]).to_parquet(str(repo / "data" / "test-00000-of-00001.parquet"))
    (repo / "README.md").write_text("---\nlicense: mit\n---\n# chat data\n", encoding="utf-8")
    assert len(load_conversations(str(repo))) == 3
    assert len(load_conversations(str(repo), split="test")) == 2
    assert len(load_conversations("hub:" + str(repo), split="test")) == 2


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        ([json.dumps(GOOD[0]), "{oops"], r"c\.jsonl:2: invalid JSON"),
        ([json.dumps(GOOD[0]), "", json.dumps({"msgs": []})], r"c\.jsonl:3: missing 'messages'"),
        ([json.dumps({"messages": "hi"})], r"c\.jsonl:1: .*must be a list of messages, got str"),
        ([json.dumps({"messages": []})], r"c\.jsonl:1: .*at least one message"),
        ([json.dumps({"messages": [{"role": "user", "content": 5}]})], r"c\.jsonl:1: message 0, field 'content'"),
        ([json.dumps(GOOD[0]), json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "x", "content": "b"}]})],
         r"c\.jsonl:2: message 1, field 'role': unknown role 'x'"),
    ],
)
def test_bad_rows_stop_with_location(tmp_path, lines, pattern):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=pattern):
        load_conversations(str(p))


def test_skip_invalid_reports_count_and_reasons(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", GOOD[:2], ["{bad json\n", json.dumps({"messages": []}) + "\n"])
    ds, report = load_conversations_with_report(str(p), skip_invalid=True)
    assert len(ds) == 2 and report.skipped == 2
    assert "c.jsonl:3: invalid JSON" in report.reasons[0] and "c.jsonl:4:" in report.reasons[1]


def test_csv_and_parquet_errors_name_the_row(tmp_path):
    cs = tmp_path / "c.csv"
    cs.write_text('messages\n"[{""role"": ""user"", ""content"": ""a""}]"\n"not json"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"c\.csv:3: column 'messages' is not valid JSON"):
        load_conversations(str(cs))
    (tmp_path / "nomsg.csv").write_text("text\nhello\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"nomsg\.csv:1: CSV needs a 'messages' column"):
        load_conversations(str(tmp_path / "nomsg.csv"))
    pq = tmp_path / "c.parquet"
    datasets.Dataset.from_list([*GOOD[:2], {"messages": [{"role": "robot", "content": "x"}]}]).to_parquet(str(pq))
    with pytest.raises(InputError, match=r"c\.parquet:3: message 0, field 'role'"):
        load_conversations(str(pq))


def test_unknown_format_and_empty(tmp_path):
    (tmp_path / "x.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(Exception, match=r"unknown data format \.txt"):
        load_conversations(str(tmp_path / "x.txt"))
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="no conversations found"):
        load_conversations(str(tmp_path / "empty.jsonl"))


def test_stream_conversations_jsonl_and_parquet(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", GOOD)
    assert contents(stream_conversations(str(p))) == contents(GOOD)
    pq = tmp_path / "c.parquet"
    datasets.Dataset.from_list([*GOOD, {"messages": [{"role": "robot", "content": "x"}]}]).to_parquet(str(pq))
    with pytest.raises(InputError, match=r"c\.parquet:6: message 0, field 'role'"):
        list(stream_conversations(str(pq)))
    bad = write_jsonl(tmp_path / "bad.jsonl", GOOD[:1], ["{nope\n"])
    with pytest.raises(InputError, match=r"bad\.jsonl:2: invalid JSON"):
        list(stream_conversations(str(bad)))


def test_readme_card_configs_select_subset_and_split(tmp_path):
    """A hub-style repo whose README card declares configs: `subset` and `split` pick the files."""
    repo = tmp_path / "chat-repo"
    for sub in ("en", "de"):
        (repo / sub).mkdir(parents=True)
    datasets.Dataset.from_list(GOOD[:4]).to_parquet(str(repo / "en" / "train.parquet"))
    datasets.Dataset.from_list(GOOD[4:]).to_parquet(str(repo / "en" / "test.parquet"))
    datasets.Dataset.from_list(GOOD[1:3]).to_parquet(str(repo / "de" / "train.parquet"))
    (repo / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: en\n  default: true\n  data_files:\n"
        "  - split: train\n    path: en/train.parquet\n  - split: test\n    path: en/test.parquet\n"
        "- config_name: de\n  data_files:\n  - split: train\n    path: de/train.parquet\n"
        "---\n# card\n",
        encoding="utf-8",
    )
    assert contents(load_conversations(str(repo))) == contents(GOOD[:4])
    assert contents(load_conversations(str(repo), split="test")) == contents(GOOD[4:])
    assert contents(load_conversations(str(repo), subset="de")) == contents(GOOD[1:3])


@pytest.mark.parametrize(
    ("spec", "hub_id"),
    [("hub:org/name", "org/name"), ("hf://datasets/org/name", "org/name"), ("org/name", "org/name"),
     ("HuggingFaceH4/no_robots", "HuggingFaceH4/no_robots")],
)
def test_hub_specs_call_load_dataset_with_the_id(monkeypatch, spec, hub_id):
    """Hub ids reach datasets.load_dataset with subset/split/revision (stubbed: no network in tests)."""
    calls = []

    def fake_load_dataset(path, name=None, *, split=None, revision=None, **kw):
        calls.append((path, name, split, revision))
        return datasets.Dataset.from_list(GOOD)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_conversations(spec, split="test", subset="sub", revision="abc123")
    assert calls == [(hub_id, "sub", "test", "abc123")] and len(ds) == 5


def test_hub_id_rules(tmp_path, monkeypatch):
    from posttrain.data.sources import hub_id_of

    monkeypatch.chdir(tmp_path)
    assert hub_id_of("hf://datasets/org/name/data/train.jsonl") is None  # a file on the hub: fsspec
    assert hub_id_of("hf://datasets/org/name/data") is None and hub_id_of("hf://datasets/org/n.v2/") == "org/n.v2"
    assert hub_id_of("data/train.jsonl") is None and hub_id_of("s3://bucket/x.parquet") is None
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert hub_id_of("org/name") is None  # an existing local folder wins
    assert hub_id_of("hub:org/name") == "org/name"


def test_skip_invalid_covers_csv_and_json_text_columns(tmp_path):
    cs = tmp_path / "c.csv"
    cs.write_text('messages\n"[{""role"": ""user"", ""content"": ""a""}]"\n"not json"\n', encoding="utf-8")
    ds, report = load_conversations_with_report(str(cs), skip_invalid=True)
    assert len(ds) == 1 and report.skipped == 1 and "c.csv:3: column 'messages' is not valid JSON" in report.reasons[0]
    pq = tmp_path / "t.parquet"
    rows = [{"messages": json.dumps(r["messages"])} for r in GOOD[:2]] + [{"messages": "{"}]
    datasets.Dataset.from_list(rows).to_parquet(str(pq))
    with pytest.raises(InputError, match=r"t\.parquet:3: column 'messages' is not valid JSON"):
        load_conversations(str(pq))
    ds, report = load_conversations_with_report(str(pq), skip_invalid=True)
    assert contents(ds) == contents(GOOD[:2]) and report.skipped == 1


def test_tool_calls_and_fields_round_trip_through_arrow(tmp_path, monkeypatch):
    """Rows are built in Arrow chunks with one schema; messages read back validate to the same Messages."""
    import posttrain.data.sources as sources
    from posttrain import to_messages

    tool_row = {"messages": [
        {"role": "system", "content": "tools"},
        {"role": "user", "content": "weather?", "name": "bob"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "function": {"name": "get", "arguments": {"city": "Oslo"}}}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "c1"},
        {"role": "assistant", "content": "Sunny.", "trainable": False},
    ]}
    rows = [*GOOD, tool_row, *GOOD]
    p = write_jsonl(tmp_path / "t.jsonl", rows)
    monkeypatch.setattr(sources, "CHUNK_ROWS", 3)  # several record batches
    ds = load_conversations(str(p))
    assert len(ds) == len(rows)
    for got, want in zip(ds, rows, strict=True):
        assert to_messages(got["messages"]) == to_messages(want["messages"])


def test_json_array_file_and_bom(tmp_path):
    """A pretty-printed JSON array in a .json file; errors name the line where the bad item starts."""
    p = tmp_path / "a.json"
    p.write_text(json.dumps(GOOD[:3], indent=2, ensure_ascii=False), encoding="utf-8")
    assert contents(load_conversations(str(p))) == contents(GOOD[:3])
    bad = [*GOOD[:2], {"messages": [{"role": "user", "content": 1}]}]
    text = json.dumps(bad, indent=1)
    p.write_text(text, encoding="utf-8")
    third_line = text[: text.index('{\n  "messages": [\n   {\n    "role": "user",\n    "content": 1')].count("\n") + 1
    with pytest.raises(InputError, match=rf"a\.json:{third_line}: message 0, field 'content'"):
        load_conversations(str(p))
    p.write_text('[{"messages": [{"role": "user", "content": "x"}]} {"messages": []}]', encoding="utf-8")
    with pytest.raises(InputError, match=r"a\.json:1: invalid JSON: expected ','"):
        load_conversations(str(p))
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + (json.dumps(GOOD[0]) + "\n").encode())
    assert len(load_conversations(str(bom))) == 1


def test_line_column_records_where_each_row_came_from(tmp_path):
    p = write_jsonl(tmp_path / "c.jsonl", GOOD[:2], ["\n", "{bad\n", json.dumps(GOOD[2]) + "\n"])
    ds, report = load_conversations_with_report(str(p), skip_invalid=True, line_column="line")
    assert ds["line"] == [1, 2, 5] and report.skipped == 1
    assert ds.column_names == ["messages", "line"]
    assert load_conversations(str(p), skip_invalid=True).column_names == ["messages"]
