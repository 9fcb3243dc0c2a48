"""The HTTP routes the ``tinker`` SDK calls (``/api/v1/...``), on the engine behind :class:`Host`.

Request bodies are parsed with the SDK's own request types; a body they refuse, an unknown model,
session, sampler, path or future, and a datum the engine refuses are answered 4xx with a one-line
``detail`` (the SDK raises it as an exception) and change nothing. The server goes on serving.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from tinker import types

from posttrain.engine import AdamParams, SamplingParams
from posttrain.engine.losses import get_loss
from posttrain.engine.packing import as_packed, check_datums
from posttrain.errors import PosttrainError
from posttrain.server.host import Host
from posttrain.server.protocol import (
    PROTOBUF,
    ApiError,
    decode_forward_backward,
    encode_forward_backward,
    encode_sample,
)
from posttrain.server.routes_config import add_service_routes, parse

API = "/api/v1"


def json(result: Any) -> tuple[str, Any]:
    return "json", result


def create_app(host: Host, compress_fwdbwd: bool = True, chunk_datums: int = 1024) -> FastAPI:
    """``compress_fwdbwd``: the SDK zstd-compresses forward_backward bodies; ``chunk_datums``: the most
    datums the SDK puts in one forward_backward request (a call with more is sent in ordered chunks)."""
    app = FastAPI(title="posttrain serve", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.host = host
    _add_error_handlers(app)
    add_service_routes(app, host, compress_fwdbwd, chunk_datums)
    _add_model_routes(app, host)
    _add_step_routes(app, host)
    _add_save_routes(app, host)
    _add_load_route(app, host)
    _add_sampling_routes(app, host)
    _add_future_routes(app, host)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, str(err))

    @app.exception_handler(PosttrainError)
    async def engine_error(_: Request, err: PosttrainError) -> JSONResponse:
        return _error(400, str(err))

    @app.exception_handler(pydantic.ValidationError)
    async def bad_body(_: Request, err: pydantic.ValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {"loc": (), "msg": str(err)}
        where = ".".join(str(p) for p in first["loc"]) or "body"
        return _error(400, f"malformed {err.title} request: {where}: {first['msg']}")

    @app.middleware("http")
    async def needs_key(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith(API) and request.url.path != f"{API}/healthz" \
                and not request.headers.get("x-api-key"):
            return _error(401, "missing X-API-Key header: any tinker API key (tml-...) is accepted")
        return await call_next(request)


def _error(status: int, message: str) -> JSONResponse:
    line = " ".join(message.split())
    return JSONResponse({"detail": line, "error": line}, status_code=status)


def future_response(request_id: str, model_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id, **({"model_id": model_id} if model_id else {}), **extra}


# -- training -------------------------------------------------------------------------------------
def _add_model_routes(app: FastAPI, host: Host) -> None:
    @app.post(f"{API}/create_model")
    async def create_model(request: Request) -> dict[str, Any]:
        req = await parse(request, types.CreateModelRequest)
        if req.lora_config is None:
            raise ApiError(400, "create_model: this server trains LoRA only; give a lora_config")
        if req.optimizer_config.type != "adamw":
            raise ApiError(400, f"create_model: optimizer {req.optimizer_config.type!r} is not supported (adamw only)")
        from posttrain.engine import LoraSettings

        lc = req.lora_config
        lora = LoraSettings(lc.rank, lc.train_mlp, lc.train_attn, lc.train_unembed)
        request_id = host.futures.once(
            f"{req.session_id}:train", req.model_seq_id, await request.body(),
            lambda: host.create_model(req.session_id, req.model_seq_id, req.base_model, lora, lc.seed))
        return future_response(request_id, f"{req.session_id}:train:{req.model_seq_id}")

    @app.post(f"{API}/get_info")
    async def get_info(request: Request) -> dict[str, Any]:
        req = await parse(request, types.GetInfoRequest)
        model = host.model(req.model_id)
        info = model.client.get_info()
        return {"type": "get_info", "model_id": model.model_id, "is_lora": True, "lora_rank": info.lora_rank,
                "model_name": model.base_model, "optimizer_config": {"type": "adamw"},
                "model_data": {"arch": type(model.client.base.model).__name__, "model_name": model.base_model,
                               "tokenizer_id": host.tokenizer_dirs[model.base_model]}}


def _add_step_routes(app: FastAPI, host: Host) -> None:
    @app.post(f"{API}/forward_backward")
    async def forward_backward(request: Request) -> dict[str, Any]:
        body = await request.body()
        fb = decode_forward_backward(body, request.headers.get("content-encoding"))
        model = host.model(fb.model_id)
        run = model.client.forward if fb.forward_only else model.client.forward_backward
        request_id = host.in_order(model, fb.seq_id, "Forward" if fb.forward_only else "ForwardBackward",
                                   lambda: run(fb.datums, fb.loss_fn, fb.loss_fn_config),
                                   lambda out: ("protobuf", encode_forward_backward(out)), body=body,
                                   check=lambda: _check_batch(model.client, fb.datums, fb.loss_fn, fb.loss_fn_config))
        return future_response(request_id, fb.model_id)

    @app.post(f"{API}/optim_step")
    async def optim_step(request: Request) -> dict[str, Any]:
        req = await parse(request, types.OptimStepRequest)
        model = host.model(req.model_id)

        @functools.cache  # checked when the request arrives, used at its turn
        def adam() -> AdamParams:
            if not isinstance(req.optim_params, types.AdamParams):
                raise ApiError(400, f"optim_step: optimizer {getattr(req.optim_params, 'type', '?')!r} is not supported")
            return AdamParams(**req.optim_params.model_dump())

        request_id = host.in_order(model, req.seq_id, "OptimStep", lambda: model.client.optim_step(adam()),
                                   lambda r: json({"metrics": r.metrics}), body=await request.body(), check=adam)
        return future_response(request_id, req.model_id)


def _check_batch(client: Any, datums: list[Any], loss_fn: str, config: dict[str, float] | None) -> None:
    """The engine's own checks, before the request takes its turn: a refusal is a 400 now."""
    spec = get_loss(loss_fn)
    spec.config(config)
    packed = [as_packed(d, i) for i, d in enumerate(datums)]
    check_datums(packed, spec.inputs, client.base.vocab_size, client.base.max_context_length, loss_fn)


# -- weights ----------------------------------------------------------------------------------------
def _add_save_routes(app: FastAPI, host: Host) -> None:
    @app.post(f"{API}/save_weights")
    async def save_weights(request: Request) -> dict[str, Any]:
        req = await parse(request, types.SaveWeightsRequest)
        model = host.model(req.model_id)
        name = req.path or f"step-{model.client.steps:06d}-{req.seq_id}"
        folder, path = host.paths.folder(model.model_id, "weights", name), host.paths.path(model.model_id, "weights", name)
        request_id = host.in_order(
            model, req.seq_id, "SaveWeights",
            lambda: model.client.save_state(str(folder), overwrite=req.overwrite, user_metadata=req.user_metadata),
            lambda _: json({"path": path, "type": "save_weights"}), body=await request.body())
        return future_response(request_id, req.model_id)

    @app.post(f"{API}/save_weights_for_sampler")
    async def save_for_sampler(request: Request) -> dict[str, Any]:
        req = await parse(request, types.SaveWeightsForSamplerRequest)
        model = host.model(req.model_id)
        if req.path is None:  # a sampling client over a snapshot of the current weights, nothing written
            then = lambda adapter: json({"sampling_session_id": host.register_snapshot(  # noqa: E731
                model, adapter), "type": "save_weights_for_sampler"})
            request_id = host.in_order(model, req.seq_id, "SaveWeightsForSampler", host.save_sampler_snapshot(model),
                                       lambda r: r, then, body=await request.body())
            return future_response(request_id, req.model_id)
        folder = host.paths.folder(model.model_id, "sampler_weights", req.path)
        path = host.paths.path(model.model_id, "sampler_weights", req.path)
        request_id = host.in_order(
            model, req.seq_id, "SaveWeightsForSampler",
            lambda: model.client.save_weights_for_sampler(str(folder), user_metadata=req.user_metadata),
            lambda _: json({"path": path, "type": "save_weights_for_sampler"}), body=await request.body())
        return future_response(request_id, req.model_id)



def _add_load_route(app: FastAPI, host: Host) -> None:
    @app.post(f"{API}/load_weights")
    async def load_weights(request: Request) -> dict[str, Any]:
        req = await parse(request, types.LoadWeightsRequest)
        if req.session_id is not None:
            if req.model_seq_id is None:
                raise ApiError(400, "load_weights: session_id needs model_seq_id")
            session_id, model_seq_id, body = req.session_id, req.model_seq_id, await request.body()
            request_id = await run_in_threadpool(
                host.futures.once, f"{session_id}:train", model_seq_id, body,
                lambda: host.create_from_state(session_id, model_seq_id, req.path, req.optimizer, req.base_model))
            return future_response(request_id, f"{session_id}:train:{model_seq_id}")
        if req.model_id is None:
            raise ApiError(400, "load_weights: give model_id (with seq_id) or session_id (with model_seq_id)")
        model = host.model(req.model_id)
        load = model.client.load_state_with_optimizer if req.optimizer else model.client.load_state
        folder = functools.cache(lambda: str(host.state_for(model, req.path)))  # checked on arrival, loaded in turn
        request_id = host.in_order(model, req.seq_id, "LoadWeights", lambda: load(folder()),
                                   lambda _: json({"path": req.path, "model_id": model.model_id, "type": "load_weights"}),
                                   body=await request.body(), check=folder)
        return future_response(request_id, req.model_id)


# -- sampling ---------------------------------------------------------------------------------------
_UNSUPPORTED_SAMPLE = ("topk_prompt_logprobs", "topk_sample_logprobs", "prompt_alt_tokens_k")


def _add_sampling_routes(app: FastAPI, host: Host) -> None:
    @app.post(f"{API}/create_sampling_session")
    async def create_sampling_session(request: Request) -> dict[str, Any]:
        req = await parse(request, types.CreateSamplingSessionRequest)
        host.check_session(req.session_id)
        if req.model_path is not None:
            base_model, adapter = await run_in_threadpool(host.sampler_from_path, req.model_path)
        else:
            host.base(req.base_model)
            base_model, adapter = str(req.base_model), None
        sampler_id = await run_in_threadpool(host.register_sampler, base_model, adapter, req.model_path)
        return {"type": "create_sampling_session", "sampling_session_id": sampler_id}

    @app.get(f"{API}/samplers/{{sampler_id}}")
    async def get_sampler(sampler_id: str) -> dict[str, Any]:
        sampler = host.sampler(sampler_id)
        return {"sampler_id": sampler.sampler_id, "base_model": sampler.base_model, "model_path": sampler.model_path}

    @app.post(f"{API}/asample")
    async def asample(request: Request) -> dict[str, Any]:
        req = await parse(request, types.SampleRequest)
        if req.sampling_session_id is None:
            raise ApiError(400, "asample: give a sampling_session_id (create_sampling_session)")
        sampler = host.sampler(req.sampling_session_id)
        _check_sample_request(req)
        sp = req.sampling_params
        params = SamplingParams(max_tokens=sp.max_tokens, seed=sp.seed, stop=sp.stop, temperature=sp.temperature,
                                top_k=sp.top_k, top_p=sp.top_p)
        request_id = host.futures.once(
            f"{sampler.sampler_id}:sample", req.seq_id, await request.body(),
            lambda: host.chain(sampler.client.sample(req.prompt.to_ints(), req.num_samples, params,
                                                     bool(req.prompt_logprobs)),
                               lambda out: ("protobuf", encode_sample(out)), "Sample"))
        return future_response(request_id, sample_sequence_ids=[f"{request_id}:{i}" for i in range(req.num_samples)])


def _check_sample_request(req: Any) -> None:
    for name in _UNSUPPORTED_SAMPLE:
        if getattr(req, name):
            raise ApiError(400, f"asample: {name} is not supported by posttrain serve")
    if req.target_prompt_logprobs is not None or req.prompt_logprobs_last_n is not None or req.record_stability_info:
        raise ApiError(400, "asample: target_prompt_logprobs, prompt_logprobs_last_n and record_stability_info "
                            "are not supported by posttrain serve")


# -- futures ----------------------------------------------------------------------------------------
def _add_future_routes(app: FastAPI, host: Host) -> None:
    @app.post(f"{API}/retrieve_future")
    async def retrieve_future(request: Request) -> Response:
        req = await parse(request, types.FutureRetrieveRequest)
        kind, payload = await host.futures.retrieve(req.request_id)
        if kind == "protobuf":
            return Response(content=payload, media_type=PROTOBUF)
        return JSONResponse(payload)

    @app.post(f"{API}/cancel_future")
    async def cancel_future(request: Request) -> None:
        body = await request.json()
        host.futures.cancel(str(body.get("request_id")) if isinstance(body, dict) else "")
