"""``tinker://`` checkpoint paths and the folders that hold them under the server's state folder.

``tinker://MODEL_ID/weights/NAME`` (``save_state``) and ``tinker://MODEL_ID/sampler_weights/NAME``
(``save_weights_for_sampler``) live in ``STATE/checkpoints/MODEL_ID/{weights,sampler_weights}/NAME``:
the engine's own checkpoint folders, written atomically, so a server killed at any moment and started
again on the same state folder serves every path it had answered.
"""

from __future__ import annotations

import re
from pathlib import Path

from posttrain.server.protocol import ApiError

SCHEME = "tinker://"
KINDS = ("weights", "sampler_weights")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}")


def check_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name) or ".." in name:
        raise ApiError(400, f"{what} {name!r} is not a valid name: letters, digits and . _ : @ + = - only, "
                            "at most 200, starting with a letter or digit")
    return name


class TinkerPaths:
    def __init__(self, state_dir: Path):
        self.root = state_dir / "checkpoints"

    def path(self, model_id: str, kind: str, name: str) -> str:
        return f"{SCHEME}{model_id}/{kind}/{check_name(name, 'checkpoint name')}"

    def folder(self, model_id: str, kind: str, name: str) -> Path:
        return self.root / check_name(model_id, "model id") / kind / check_name(name, "checkpoint name")

    def resolve(self, path: str) -> Path:
        """The folder of an existing checkpoint; 404 for a path this server never wrote."""
        parts = path.removeprefix(SCHEME).split("/") if path.startswith(SCHEME) else []
        if len(parts) != 3 or parts[1] not in KINDS:
            raise ApiError(400, f"{path!r} is not a checkpoint path: expected tinker://MODEL_ID/weights/NAME or "
                                "tinker://MODEL_ID/sampler_weights/NAME")
        folder = self.folder(*parts)
        if not folder.is_dir():
            raise ApiError(404, f"no checkpoint at {path}: this server (state folder {self.root.parent}) never "
                                "saved one there")
        return folder
