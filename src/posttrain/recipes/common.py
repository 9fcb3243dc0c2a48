"""What every training recipe does before its loop: pick the backend, match the renderer to the
model's tokenizer, and write the parity artifacts of the data the loop trains."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from posttrain.engine.distributed import DistContext
from posttrain.errors import PosttrainError, RendererError
from posttrain.recipes.config import RecipeConfig
from posttrain.renderers import Renderer, get_renderer
from posttrain.runs.folder import CHECKPOINT_DIR, RunFolder, RunLock
from posttrain.tokenizer import get_tokenizer
from posttrain.types.clients import ServiceClientProtocol

T = TypeVar("T")
C = TypeVar("C", bound=RecipeConfig)
R = TypeVar("R")


def in_process_group(run: Callable[[C], R]) -> Callable[[C], R]:
    """A recipe's entry point: under torchrun it joins the process group and, when it finishes, leaves it
    (see :func:`posttrain.training.launch.process_group`)."""

    @functools.wraps(run)
    def joined(cfg: C) -> R:
        from posttrain.training.launch import process_group

        with process_group():
            return run(cfg)

    return joined


def make_service(cfg: RecipeConfig) -> ServiceClientProtocol:
    """The local engine (checkpoints in the run folder), or the tinker service / a server at ``base_url``."""
    if cfg.backend == "tinker":
        from posttrain.engine.hosted import hosted_service_client

        return hosted_service_client(cfg.base_url)
    from posttrain.engine.service import ServiceClient

    return ServiceClient(Path(cfg.log_path) / CHECKPOINT_DIR, micro_batch_tokens=cfg.micro_batch_tokens,
                         gradient_checkpointing=cfg.gradient_checkpointing)


def model_tokenizer_name(model_name: str) -> str:
    """The tokenizer a model trains with, without loading its weights."""
    offline = {"posttrain:smollm2-135m-instruct": "posttrain:smollm2", "posttrain:tiny-smollm2": "posttrain:smollm2",
               "posttrain:tiny-llama3": "posttrain:llama3", "posttrain:random-llama3-1b": "posttrain:llama3",
               "posttrain:random-llama3-8b": "posttrain:llama3", "posttrain:random-qwen3-8b": "posttrain:qwen3"}
    if model_name in offline:
        return offline[model_name]
    if model_name.startswith("posttrain:"):
        raise PosttrainError(f"unknown offline model {model_name!r}; known: {', '.join(sorted(offline))}")
    return model_name


def check_renderer_fits(renderer_name: str, tokenizer_name: str, model_name: str) -> Renderer:
    """The renderer over the model's own tokenizer; an error if that tokenizer lacks the format's tokens."""
    tokenizer = get_tokenizer(tokenizer_name)
    try:
        renderer = get_renderer(renderer_name, tokenizer)
        renderer.build_supervised_example([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}])
    except (KeyError, RendererError) as err:
        raise PosttrainError(f"renderer {renderer_name!r} does not fit model {model_name!r}: {err.args[0]}; "
                             "pick the renderer of the model's family (or leave --renderer out)") from err
    return renderer


@dataclass
class Setup:
    """What a recipe knows once its arguments, backend and renderer are checked."""

    dist: DistContext
    service: ServiceClientProtocol
    renderer: Renderer
    renderer_name: str
    tokenizer_name: str


def setup(cfg: RecipeConfig) -> Setup:
    """Join the process group (torchrun), check the settings, the backend's credentials and that the
    renderer fits the model's tokenizer: all before any data is read."""
    from posttrain.renderers import get_recommended_renderer_name, renderer_names
    from posttrain.training.launch import init_distributed

    dist = init_distributed()
    cfg.check()
    service = make_service(cfg)
    tok_name = model_tokenizer_name(cfg.model_name)
    try:
        renderer_name = cfg.renderer_name or get_recommended_renderer_name(cfg.model_name)
    except ValueError as err:  # a model with no known chat format, and no --renderer
        raise PosttrainError(f"{err} (--renderer)") from None
    if renderer_name not in renderer_names():
        raise PosttrainError(f"unknown renderer {renderer_name!r}; known renderers: {', '.join(renderer_names())} "
                             "(--renderer)")
    renderer = check_renderer_fits(renderer_name, tok_name, cfg.model_name)
    return Setup(dist, service, renderer, renderer_name, tok_name)


def open_run(cfg: RecipeConfig, config: dict[str, Any], s: Setup, build_data: Callable[[], T]) -> tuple[RunFolder, T]:
    """Lock and check the run folder, build (and check) the data, then write the folder: rank 0 owns
    it, the other ranks wait at a barrier. The returned folder holds the lock until it is closed
    (``with run:``); a run refused here leaves no folder it created."""
    lock = None
    if s.dist.is_main():
        lock = RunLock(cfg.log_path)
        if lock.taken_over:
            print(f"posttrain: {cfg.log_path}: took over the lock of a run that ended without releasing it "
                  f"({lock.taken_over})", file=sys.stderr)
    try:
        if lock is not None:
            RunFolder.open(cfg.log_path, config, cfg.resume, write=False)
        data = build_data()
        run = RunFolder.open(cfg.log_path, config, cfg.resume) if lock is not None else \
            RunFolder(Path(cfg.log_path), config, write=False)
    except BaseException:
        if lock is not None:
            lock.release(remove_if_unused=True)
        raise
    run.lock = lock
    s.dist.barrier()
    return run, data
