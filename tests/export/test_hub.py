"""--push-to-hub goes through huggingface_hub's HfApi (a local stand-in here: never the network)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import huggingface_hub
import pytest

from posttrain.cli import main
from posttrain.errors import PosttrainError
from posttrain.export import push_to_hub


class FakeApi:
    calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kw: Any) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw: Any) -> Any:
        kw["files"] = sorted(p.name for p in Path(kw["folder_path"]).iterdir())
        self.calls.append(("upload_folder", kw))
        return SimpleNamespace(commit_url=f"https://hub.invalid/{kw['repo_id']}/commit/1")


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> type[FakeApi]:
    FakeApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    return FakeApi


def test_export_then_upload(run_folder, tmp_path, fake_api, capsys):
    assert main(["export", str(run_folder), str(tmp_path / "m"), "--push-to-hub", "me/tiny-chat"]) == 0
    (create, args), (upload, kw) = fake_api.calls
    assert create == "create_repo" and args == {"repo_id": "me/tiny-chat", "repo_type": "model", "private": True,
                                                "exist_ok": True}
    assert upload == "upload_folder" and kw["repo_id"] == "me/tiny-chat"
    assert {"model.safetensors", "config.json", "tokenizer.json", "chat_template.jinja"} <= set(kw["files"])
    assert "hub.invalid/me/tiny-chat" in capsys.readouterr().out


def test_a_bad_repo_id_is_refused_before_any_work(run_folder, tmp_path, fake_api, capsys):
    assert main(["export", str(run_folder), str(tmp_path / "m"), "--push-to-hub", "no-org"]) == 2
    assert "ORG/NAME" in capsys.readouterr().err and not (tmp_path / "m").exists() and not fake_api.calls
    with pytest.raises(PosttrainError):
        push_to_hub(tmp_path, "a/b/c")
