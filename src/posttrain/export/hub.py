"""Upload an exported folder to the Hugging Face Hub through ``huggingface_hub`` (token from the
usual places: ``HF_TOKEN`` or ``huggingface-cli login``)."""

from __future__ import annotations

from pathlib import Path

from posttrain.errors import PosttrainError


def check_repo_id(repo_id: str) -> None:
    """``ORG/NAME``, checked before any export work."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise PosttrainError(f"--push-to-hub needs ORG/NAME, got {repo_id!r}")


def push_to_hub(folder: str | Path, repo_id: str, private: bool = True) -> str:
    """Create ``repo_id`` (a model repo, private by default) if needed and upload ``folder``; the URL."""
    check_repo_id(repo_id)
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                   commit_message="Upload model exported by posttrain")
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise PosttrainError(f"upload of {folder} to {repo_id} failed: {err}") from err
    return str(getattr(commit, "commit_url", None) or f"https://huggingface.co/{repo_id}")
