"""``posttrain serve``: the engine behind a Tinker-compatible HTTP API (see :mod:`posttrain.server`)."""

from __future__ import annotations

import argparse

from posttrain.cli.args import int_at_least


def run(args: argparse.Namespace) -> int:
    from posttrain.server import serve

    serve(args.model, host=args.host, port=args.port, state_dir=args.state_dir, device=args.device,
          compress_fwdbwd=not args.no_compress, chunk_datums=args.max_chunk_datums)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="serve models to the tinker SDK over HTTP (a local Tinker)",
                       description="Load base models once and serve training and sampling to the unmodified tinker "
                                   "SDK: tinker.ServiceClient(base_url=URL) with any tml-... API key.")
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="base model to serve (repeatable): a posttrain: name, a local folder or a hub id; "
                        "NAME=SOURCE serves SOURCE under NAME (e.g. a local folder under the hub id a client expects)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int_at_least(0), default=8000, help="port (default: %(default)s)")
    p.add_argument("--state-dir", default="serve_state",
                   help="folder for checkpoints (tinker:// paths) and tokenizers; reuse it after a restart "
                        "(default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--no-compress", action="store_true",
                   help="ask the SDK not to zstd-compress forward_backward bodies")
    p.add_argument("--max-chunk-datums", type=int_at_least(1), default=1024,
                   help="most datums per forward_backward request; the SDK splits larger calls into ordered "
                        "chunks whose gradients accumulate (default: %(default)s)")
    p.set_defaults(func=run)
