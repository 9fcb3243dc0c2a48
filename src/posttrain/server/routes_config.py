"""Service routes: health, the SDK's feature flags, sessions and heartbeats, telemetry, capabilities.

The feature flags pick the SDK paths this server implements: API-key auth (no JWT exchange), httpx
transport, per-request ``retrieve_future`` polling, custom losses computed client-side (the SDK's
``forward_backward_custom`` sends a forward and a weighted ``cross_entropy`` backward), parallel
``forward_backward`` chunks (ordered here by ``seq_id``), optionally zstd-compressed.
"""

from __future__ import annotations

from typing import Any

import pydantic
from fastapi import FastAPI, Request
from tinker import types

from posttrain.server.host import Host
from posttrain.server.protocol import ApiError

API = "/api/v1"


def client_config(compress_fwdbwd: bool, chunk_datums: int) -> dict[str, Any]:
    return {"pjwt_auth_enabled": False, "credential_default_source": "api_key", "use_pyqwest_transport": False,
            "parallel_fwdbwd_chunks": True, "proto_compress_fwdbwd": compress_fwdbwd,
            "fwdbwd_max_chunk_len": chunk_datums,
            "sample_use_retrieve_futures": False, "custom_loss_server_side": False,
            "sample_join_sampling_session": False}


async def parse(request: Request, model: type[pydantic.BaseModel]) -> Any:
    """The body as the SDK's request type ``model`` (a refused body raises ``ValidationError``: a 400)."""
    try:
        body = await request.json()
    except ValueError as err:
        raise ApiError(400, f"{request.url.path}: the body is not JSON ({err})") from err
    return model.model_validate(body)


def add_service_routes(app: FastAPI, host: Host, compress_fwdbwd: bool, chunk_datums: int) -> None:
    @app.get(f"{API}/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(f"{API}/client/config")
    async def config() -> dict[str, Any]:
        return client_config(compress_fwdbwd, chunk_datums)

    @app.post(f"{API}/client/dynamic_config")
    async def dynamic_config() -> dict[str, Any]:
        return {"refresh_interval_sec": 300, "sample_cancel_enabled": True}

    @app.post(f"{API}/create_session")
    async def create_session(request: Request) -> dict[str, Any]:
        await parse(request, types.CreateSessionRequest)
        return {"type": "create_session", "session_id": host.new_session()}

    @app.post(f"{API}/session_heartbeat")
    async def heartbeat(request: Request) -> dict[str, str]:
        req = await parse(request, types.SessionHeartbeatRequest)
        if req.session_id not in host.sessions:  # 410: the SDK stops this session's heartbeats (a restart forgot it)
            raise ApiError(410, f"unknown session {req.session_id!r}: this server does not hold it (any more)")
        return {"type": "session_heartbeat"}

    @app.post(f"{API}/sessions/{{session_id}}/finish")
    async def finish(session_id: str) -> None:
        host.check_session(session_id)

    @app.post(f"{API}/telemetry")
    async def telemetry() -> dict[str, str]:
        return {"status": "accepted"}

    @app.get(f"{API}/get_server_capabilities")
    async def capabilities() -> dict[str, Any]:
        models = [{"model_name": name, "max_context_length": shared.base.max_context_length, "trainable": True,
                   "sampleable": True} for name, shared in host.bases.items()]
        return {"supported_models": models}
