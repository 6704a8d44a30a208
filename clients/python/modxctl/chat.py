"""chat: talk to a checkpoint, a package or the base model, streamed token by token."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import click
import grpc

from modx.v1 import inference_pb2

from .connection import App, CliError, get_app
from .output import echo, enum_label, kv, model_text, note, to_json

# /set KEY VALUE: the sampling fields people may change, and how to read them.
SAMPLING_FIELDS: dict[str, Callable[[str], Any]] = {
    "temperature": float,
    "top_p": float,
    "top_k": int,
    "repetition_penalty": float,
    "max_new_tokens": int,
    "seed": int,
    "stop": str,
}

DEVICES = {
    "auto": inference_pb2.DEVICE_PREFERENCE_UNSPECIFIED,
    "cpu": inference_pb2.DEVICE_PREFERENCE_CPU,
    "accelerator": inference_pb2.DEVICE_PREFERENCE_ACCELERATOR,
}

REPL_HELP = """\
/reset          forget the conversation so far
/system TEXT    set the system prompt (/system alone clears it)
/params         show the target, system prompt and sampling settings
/params K=V...  change sampling settings, e.g. /params temperature=0 top_k=1
/set KEY VALUE  change a sampling setting (VALUE '-' restores the default);
                keys: temperature top_p top_k repetition_penalty max_new_tokens seed stop
/quit           leave (or press Ctrl-D)
Ctrl-C while a reply streams stops that reply only."""


def set_sampling(sampling: dict[str, Any], key: str, value: str) -> None:
    """Apply '/set KEY VALUE' to a sampling dict; raises ValueError with a sentence."""
    key = key.strip().lower().replace("-", "_")
    if key not in SAMPLING_FIELDS:
        raise ValueError(f"unknown setting {key!r}; choose from {', '.join(SAMPLING_FIELDS)}")
    if value.strip() in ("-", "default", ""):
        sampling.pop(key, None)
        return
    try:
        parsed = SAMPLING_FIELDS[key](value.strip())
    except ValueError:
        kind = {int: "a whole number", float: "a number"}.get(SAMPLING_FIELDS[key], "text")
        raise ValueError(f"{key} needs {kind}, got {value!r}") from None
    sampling[key] = [parsed] if key == "stop" else parsed


def sampling_message(sampling: dict[str, Any]) -> inference_pb2.SamplingParams:
    """Only the settings given are set: the daemon's defaults fill the rest."""
    msg = inference_pb2.SamplingParams()
    for key, value in sampling.items():
        if key == "stop":
            msg.stop.extend(value)
        else:
            setattr(msg, key, value)
    return msg


def stats_line(done: inference_pb2.ChatDone) -> str:
    finish = enum_label(inference_pb2.FinishReason, done.finish_reason)
    parts = [
        f"{done.completion_tokens} tokens",
        f"{done.tokens_per_second:.1f} tok/s",
        f"first token {done.time_to_first_token_ms:.0f} ms",
        f"prompt {done.prompt_tokens} tokens",
        f"finish: {finish}",
    ]
    if done.model_key:
        parts.append(done.model_key)
    return "[" + ", ".join(parts) + "]"


@dataclass
class Reply:
    text: str = ""
    done: inference_pb2.ChatDone | None = None
    cancelled: bool = False


@dataclass
class ChatSession:
    """One conversation: target, system prompt, sampling and the history so far."""

    app: App
    task_id: str
    target: dict[str, Any]
    system: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    device: int = inference_pb2.DEVICE_PREFERENCE_UNSPECIFIED
    history: list[inference_pb2.ChatMessage] = field(default_factory=list)

    def request(self, user_text: str) -> inference_pb2.ChatRequest:
        messages = self.history + [inference_pb2.ChatMessage(role="user", content=user_text)]
        return inference_pb2.ChatRequest(
            task_id=self.task_id,
            messages=messages,
            system_prompt=self.system,
            sampling=sampling_message(self.sampling),
            device=self.device,
            **self.target,
        )

    def send(self, user_text: str, *, echo_tokens: bool = True) -> Reply:
        """Stream one reply; Ctrl-C cancels it and keeps the session alive."""
        reply = Reply()
        call = self.app.inference.Chat(self.request(user_text))
        try:
            for resp in call:
                kind = resp.WhichOneof("payload")
                if kind == "delta":
                    reply.text += resp.delta.text
                    if echo_tokens:  # model text: its newlines and tabs, never a raw escape sequence
                        sys.stdout.write(model_text(resp.delta.text))
                        sys.stdout.flush()
                elif kind == "done":
                    reply.done = resp.done
        except KeyboardInterrupt:
            call.cancel()
            reply.cancelled = True
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.CANCELLED:
                raise
            reply.cancelled = True
        if echo_tokens and reply.text and not reply.text.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        return reply

    def remember(self, user_text: str, reply: Reply) -> None:
        text = reply.done.text if reply.done is not None and reply.done.text else reply.text
        self.history.append(inference_pb2.ChatMessage(role="user", content=user_text))
        self.history.append(inference_pb2.ChatMessage(role="assistant", content=text))

    def describe(self) -> str:
        target = (
            f"checkpoint {self.target['checkpoint']}" if "checkpoint" in self.target
            else f"package {self.target['package_id']}" if "package_id" in self.target
            else "base model" if self.target.get("base")
            else "default checkpoint"
        )
        settings = ", ".join(f"{k}={v}" for k, v in sorted(self.sampling.items())) or "daemon defaults"
        return kv(
            [
                ("task", self.task_id),
                ("target", target),
                ("system", self.system or "-"),
                ("sampling", settings),
                ("history", f"{len(self.history) // 2} turns"),
            ]
        )


def repl(session: ChatSession) -> None:
    """The interactive loop: a line in, a streamed reply out, slash commands."""
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:  # pragma: no cover - not on every platform
        pass
    note(f"chatting with task {session.task_id}: /help for commands, Ctrl-C stops a reply, Ctrl-D leaves")
    while True:
        try:
            line = input("you> ")
        except EOFError:
            echo()
            return
        except KeyboardInterrupt:
            echo()
            note("(type /quit or press Ctrl-D to leave)")
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            cmd, _, rest = text.partition(" ")
            cmd = cmd.lower()
            if cmd in ("/quit", "/exit", "/q"):
                return
            if cmd == "/reset":
                session.history.clear()
                note("the conversation is forgotten")
            elif cmd == "/system":
                session.system = rest.strip()
                note(f"system prompt: {session.system}" if session.system else "system prompt cleared")
            elif cmd == "/params":
                if not rest.strip():
                    echo(session.describe())
                    continue
                for pair in rest.split():
                    key, sep, value = pair.partition("=")
                    try:
                        if not sep:
                            raise ValueError(f"write KEY=VALUE, got {pair!r}")
                        set_sampling(session.sampling, key, value)
                    except ValueError as exc:
                        note(str(exc))
                        break
                else:
                    settings = ", ".join(f"{k}={v}" for k, v in sorted(session.sampling.items()))
                    note(f"sampling: {settings or 'daemon defaults'}")
            elif cmd == "/set":
                key, _, value = rest.strip().partition(" ")
                try:
                    set_sampling(session.sampling, key, value)
                except ValueError as exc:
                    note(str(exc))
                else:
                    note(f"{key} = {session.sampling.get(key.strip().lower().replace('-', '_'), '(default)')}")
            elif cmd == "/help":
                echo(REPL_HELP)
            else:
                note(f"unknown command {cmd}; /help lists them")
            continue
        try:
            reply = session.send(line)
        except grpc.RpcError as err:  # a refused message ends that turn, not the conversation
            note(f"error: {err.code().name}: {err.details()}")
            continue
        if reply.cancelled:
            note("(reply stopped; this turn is not kept in the conversation)")
            continue
        session.remember(line, reply)
        if reply.done is not None:
            note(stats_line(reply.done), dim=True)


@click.command()
@click.argument("task_id")
@click.option("--checkpoint", metavar="C", help="Chat with this checkpoint (id or step).")
@click.option("--package", "package_id", metavar="P", help="Chat with this GGUF package (via llama.cpp).")
@click.option("--base", is_flag=True, help="Chat with the untrained base model, to compare.")
@click.option("-m", "--message", metavar="TEXT", help="Send one message, print the reply and exit ('-' reads it from stdin).")
@click.option("--system", "system_prompt", default="", metavar="TEXT", help="System prompt.")
@click.option("--temperature", type=click.FloatRange(min=0), metavar="T", help="0 is greedy; higher is more varied.")
@click.option("--top-p", type=click.FloatRange(min=0, max=1), metavar="P", help="Nucleus sampling probability mass.")
@click.option("--top-k", type=click.IntRange(min=0), metavar="K", help="Sample among the K most likely tokens.")
@click.option("--repetition-penalty", type=click.FloatRange(min=0, min_open=True), metavar="R", help="Above 1 discourages repeats.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), metavar="N", help="Length limit of the reply.")
@click.option("--seed", type=int, metavar="N", help="Sampling seed, for repeatable replies.")
@click.option("--stop", multiple=True, metavar="TEXT", help="End the reply at this text (repeatable).")
@click.option("--device", type=click.Choice(list(DEVICES)), default="auto", show_default=True, help="Where the daemon runs the model.")
def chat(
    task_id: str,
    checkpoint: str | None,
    package_id: str | None,
    base: bool,
    message: str | None,
    system_prompt: str,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    repetition_penalty: float | None,
    max_new_tokens: int | None,
    seed: int | None,
    stop: tuple[str, ...],
    device: str,
) -> None:
    """Chat with a checkpoint, package or base model of TASK_ID.

    With -m, send one message: the reply streams to stdout and a stats line
    goes to stderr (with --json only the final ChatDone is printed). Without
    -m, start a conversation; type /help in it for commands.

    \b
    Examples:
      modxctl chat TASK_ID --checkpoint 400 -m "Summarize LoRA in one line."
      echo "Hello" | modxctl chat TASK_ID --base -m - --temperature 0
      modxctl chat TASK_ID --package PKG_ID --system "You are terse."
    """
    chosen = [name for name, on in (("--checkpoint", checkpoint), ("--package", package_id), ("--base", base)) if on]
    if len(chosen) > 1:
        raise click.UsageError(f"choose one target: {' or '.join(chosen)}")
    target: dict[str, Any] = {}
    if checkpoint:
        target["checkpoint"] = checkpoint
    elif package_id:
        target["package_id"] = package_id
    elif base:
        target["base"] = True
    sampling = {
        k: v
        for k, v in {
            "temperature": temperature,
            "top_p": top_p,
            "top_k": top_k,
            "repetition_penalty": repetition_penalty,
            "max_new_tokens": max_new_tokens,
            "seed": seed,
        }.items()
        if v is not None
    }
    if stop:
        sampling["stop"] = list(stop)
    app = get_app()
    session = ChatSession(app, task_id, target, system_prompt, sampling, DEVICES[device])
    if message is None:
        if app.json:
            raise click.UsageError("--json needs -m MESSAGE (the interactive chat is for people)")
        repl(session)
        return
    if message == "-":
        message = sys.stdin.read()
    reply = session.send(message, echo_tokens=not app.json)
    if reply.cancelled:
        note("(reply stopped)")
        raise click.exceptions.Exit(130)
    if reply.done is None:
        raise CliError("the reply ended without its final message")
    if app.json:
        click.echo(to_json(reply.done, compact=True))
    else:
        note(stats_line(reply.done), dim=True)
