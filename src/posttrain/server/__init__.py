"""``posttrain serve``: a Tinker-compatible HTTP server on the local engine.

The unmodified ``tinker`` SDK talks to it: ``tinker.ServiceClient(base_url="http://127.0.0.1:8000")``
(or ``TINKER_BASE_URL``), with any API key of the SDK's form (``tml-...``). One server holds each base
model once; every LoRA training client and sampler is an adapter on it. Checkpoints are the engine's
atomic folders under ``--state-dir``, so ``tinker://`` paths outlive the process.

Needs the ``serve`` extra (fastapi, uvicorn, tinker, zstandard) and the ``train`` extra.
"""

from __future__ import annotations

from pathlib import Path

from posttrain.errors import PosttrainError


def serve(models: list[str], host: str = "127.0.0.1", port: int = 8000, state_dir: str | Path = "serve_state",
          device: str | None = None, compress_fwdbwd: bool = True, chunk_datums: int = 1024,
          announce: bool = True) -> None:
    """Load ``models`` and serve them until interrupted (blocks)."""
    try:
        import uvicorn

        from posttrain.server.app import create_app
        from posttrain.server.host import Host
    except ImportError as err:
        raise PosttrainError(f"posttrain serve needs the serve extra: pip install 'posttrain[serve]' ({err})") from err
    folder = Path(state_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    engine = Host(models, folder, device)
    app = create_app(engine, compress_fwdbwd, chunk_datums)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if announce:
        url = f"http://{host}:{port}"
        print(f"posttrain serve: {', '.join(models)} on {engine.service.device} at {url} (state: {folder})", flush=True)
        print(f"  tinker.ServiceClient(base_url={url!r}, api_key='tml-local')  or  TINKER_BASE_URL={url}",
              flush=True)
    server.run()


__all__ = ["serve"]
