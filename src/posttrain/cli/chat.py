"""``posttrain chat RUN_OR_MODEL``: chat in the terminal with a trained model (or a base model),
prompted through its renderer, the reply streamed as it is generated.

Commands at the prompt: ``/reset`` (a new conversation), ``/system TEXT`` (a new conversation with that
system prompt; ``/system`` alone removes it), ``/quit`` (or Ctrl-D)."""

from __future__ import annotations

import argparse
import sys

from posttrain.chat import ChatSession
from posttrain.cli.args import add_model_arg, positive_int
from posttrain.renderers import renderer_names
from posttrain.trained import load_renderer, load_sampler, resolve

DIM, RESET = "\033[2m", "\033[0m"
HELP = "/reset: new conversation · /system TEXT: new conversation with a system prompt · /quit"


def run(args: argparse.Namespace) -> int:
    trained = resolve(args.model, args.renderer)
    session = ChatSession(None, None, temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
                          system=args.system)  # checks the settings before the model loads
    session.sampler = load_sampler(trained)
    session.renderer = load_renderer(trained, session.sampler.base.tokenizer)
    print(f"{trained.label} · renderer {trained.renderer} · {HELP}", flush=True)
    while (line := _read(">>> ")) is not None:
        if not _command(session, line.strip()):
            return 0
    print()
    return 0


def _read(prompt: str) -> str | None:
    try:
        return input(prompt)
    except EOFError:
        return None


def _command(session: ChatSession, line: str) -> bool:
    """Handle one input line; False to quit."""
    if line in ("/quit", "/exit"):
        return False
    if line == "/reset":
        session.reset()
        print("(new conversation)", flush=True)
    elif line == "/system" or line.startswith("/system "):
        session.set_system(line.removeprefix("/system").strip())
        print(f"(new conversation, system prompt: {session.system or 'none'})", flush=True)
    elif line.startswith("/"):
        print(f"unknown command {line.split()[0]}; {HELP}", flush=True)
    elif line:
        _reply(session, line)
    return True


def _reply(session: ChatSession, line: str) -> None:
    tty = sys.stdout.isatty()
    state = {"kind": "content"}

    def show(kind: str, text: str) -> None:
        if kind != state["kind"]:  # reasoning is shown apart (dim, after a label), then the answer
            print(f"{DIM}[thinking] " if kind == "thinking" and tty else
                  "[thinking] " if kind == "thinking" else f"{RESET}\n" if tty else "\n", end="")
            state["kind"] = kind
        print(text, end="", flush=True)

    try:
        session.send(line, on_text=show)
    except KeyboardInterrupt:
        print(" (interrupted; the turn was dropped)", flush=True)
        return
    print(RESET if tty and state["kind"] == "thinking" else "", flush=True)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("chat", help="chat with a trained model in the terminal",
                       description="Chat with a run's model (or a base model) through its renderer. " + HELP)
    add_model_arg(p)
    p.add_argument("--renderer", choices=renderer_names(), default=None, help="default: the run's renderer")
    p.add_argument("--temperature", type=float, default=0.7, help="0: greedy (default: %(default)s)")
    p.add_argument("--max-tokens", type=positive_int, default=512, help="reply length limit (default: %(default)s)")
    p.add_argument("--system", default=None, help="a system prompt for the first conversation")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default: random)")
    p.set_defaults(func=run)
