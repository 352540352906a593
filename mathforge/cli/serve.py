"""`mathforge serve MODEL`: an OpenAI-compatible HTTP server over a local checkpoint (HFEngine)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="serve a local model over an OpenAI-compatible API",
                              description=__doc__.splitlines()[0])
    p.add_argument("model", help="a local HF folder or a pretrained name (e.g. smollm2-135m-instruct)")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1; the server has no authentication)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--name", default=None, help="model id reported at /v1/models (default: the folder's name, with its run's for a "
                        "trained `<run>/model`: sft-model)")
    p.add_argument("--batch-size", type=int, default=32, help="sample rows decoded together")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--dtype", default=None, help="float32, bfloat16, float16 (default: as saved)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mathforge.eval_runs import model_label
    from mathforge.infer.hf_engine import HFEngine
    from mathforge.models.pretrained import is_pretrained_name, resolve_model
    from mathforge.serve import serve

    path = Path(args.model).expanduser()
    if not path.exists() and is_pretrained_name(args.model):
        path = resolve_model(args.model)
    engine = HFEngine.from_pretrained(path, device=args.device, dtype=args.dtype, batch_size=args.batch_size)
    serve(engine, args.name or model_label(args.model), host=args.host, port=args.port)
    return 0
