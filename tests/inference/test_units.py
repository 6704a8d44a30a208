"""The pure parts of chat: sampling checks and mapping, stop strings, the LRU cache, device choice."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modxd.engine.generate import hf_generation_kwargs
from modxd.engine.reply import ReplyStream
from modxd.engine.sampling import SAMPLING_DEFAULTS, SamplingError, check_messages, check_sampling
from modxd.engine.model_cache import ModelCache, Refused
from modxd.engine.llamacpp import llama_generation_kwargs
from modxd.config import load_config
from modxd.errors import FailedPrecondition, InvalidArgument
from modxd.chat import choose_device
from modxd.jobs.inference import ChatSettings

GiB = 1024**3


def test_defaults_fill_only_what_is_not_given() -> None:
    out = check_sampling({"top_k": 3}, 256)
    assert out["top_k"] == 3 and out["temperature"] == SAMPLING_DEFAULTS["temperature"]
    assert out["max_new_tokens"] == 256  # the default is capped by the daemon's limit
    with pytest.raises(SamplingError, match="unknown sampling setting"):
        check_sampling({"beam": 3})
    with pytest.raises(SamplingError, match="top_k must be a whole number"):
        check_sampling({"top_k": 2.5})


def test_every_setting_maps_to_both_backends() -> None:
    s = check_sampling(dict(temperature=0.8, top_p=0.7, top_k=11, repetition_penalty=1.3, max_new_tokens=9))
    hf = hf_generation_kwargs(s)
    assert (hf["do_sample"], hf["temperature"], hf["top_p"], hf["top_k"], hf["repetition_penalty"],
            hf["max_new_tokens"]) == (True, 0.8, 0.7, 11, 1.3, 9)
    assert hf["min_p"] == 0.0 and hf["typical_p"] == 1.0  # a model's own generation_config never leaks in
    ll = llama_generation_kwargs(s)
    assert (ll["temp"], ll["top_p"], ll["top_k"], ll["repeat_penalty"], ll["min_p"]) == (0.8, 0.7, 11, 1.3, 0.0)
    greedy = hf_generation_kwargs(check_sampling(dict(temperature=0)))
    assert greedy["do_sample"] is False and "temperature" not in greedy
    assert llama_generation_kwargs(check_sampling(dict(temperature=0)))["temp"] == 0.0


def test_messages() -> None:
    out = check_messages([{"role": "user", "content": "hi"}], "be brief")
    assert out == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    with pytest.raises(SamplingError, match="only the first message may be one"):
        check_messages([{"role": "user", "content": "a"}, {"role": "system", "content": "b"},
                        {"role": "user", "content": "c"}])


def _stream(stop: list[str], pieces: list[str]) -> tuple[ReplyStream, list[str]]:
    deltas: list[str] = []
    stream = ReplyStream(stop, lambda text, ids: deltas.append(text))
    for i, piece in enumerate(pieces):
        if stream.add(i, piece):
            break
    stream.flush()
    return stream, deltas


def test_stop_strings_cut_the_reply_and_never_stream() -> None:
    stream, deltas = _stream(["END"], ["Hello", " wor", "ld E", "N", "D and more"])
    assert stream.text == "Hello world " and "".join(deltas) == stream.text
    assert stream.finish_reason == "stop_string" and stream.completion_tokens == 5
    assert all("E" not in d for d in deltas)
    # A held-back prefix that turns out not to be a stop string is streamed after all.
    stream, deltas = _stream(["END"], ["a E", "Nx", "b"])
    assert "".join(deltas) == stream.text == "a ENxb" and stream.finish_reason == ""
    # The earliest of several stop strings wins.
    stream, _ = _stream(["zz", "b"], ["a", "bzz"])
    assert stream.text == "a"
    # Text a decoder holds (an incomplete character) counts tokens but streams later.
    stream, deltas = _stream([], ["", "", "猫"])
    assert deltas == ["猫"] and stream.completion_tokens == 3


def _fake_model(size: int) -> Any:
    class Fake:
        backend = "hf"
        memory_bytes = size
        closed = False

        def close(self) -> None:
            self.closed = True

    return Fake()


def test_lru_cache_evicts_the_least_recently_used_and_refuses_what_never_fits() -> None:
    free = {"cpu": 100 * GiB}
    cache = ModelCache(max_bytes=5 * GiB, headroom_bytes=1 * GiB, free=lambda d: free[d])
    loaded: list[str] = []
    cache._estimate = lambda spec, device: spec["size"]  # type: ignore[method-assign]
    cache._load = lambda spec, device: loaded.append(spec["key"]) or _fake_model(spec["size"])  # type: ignore

    def spec(key: str, size: int) -> dict[str, Any]:
        return {"key": key, "backend": "hf", "size": size, "task_id": "t", "target": key}

    for key in ("a", "b"):
        cache.get(spec(key, 2 * GiB), "cpu", {})
    assert cache.get(spec("a", 2 * GiB), "cpu", {})[1] is True  # a hit: a is now the most recent
    cache.get(spec("c", 2 * GiB), "cpu", {})  # 6 GiB > 5 GiB: b (least recent) goes
    assert list(cache.entries) == ["a@cpu", "c@cpu"] and loaded == ["a", "b", "c"]
    with pytest.raises(Refused, match="more than the chat model cache may hold"):
        cache.get(spec("huge", 6 * GiB), "cpu", {})
    free["cpu"] = int(2.5 * GiB)  # the device itself is short: cached models there go first
    cache.get(spec("d", 1 * GiB), "cpu", {})
    assert "d@cpu" in cache.entries
    free["cpu"] = 1 * GiB
    with pytest.raises(Refused) as info:
        cache.get(spec("e", 1 * GiB), "cpu", {"training_task": "t-123"})
    assert info.value.code == "resource_exhausted"
    assert "beside the training job of task t-123" in str(info.value) and not cache.entries
    # A model in use is unloaded when its reply ends, not under it.
    free["cpu"] = 100 * GiB
    entry, _ = cache.get(spec("f", 1 * GiB), "cpu", {})
    cache.in_use = entry.key
    assert cache.unload("") == 1 and entry.key in cache.entries
    cache.after_use()
    assert not cache.entries


def test_device_choice() -> None:
    assert choose_device("", ["cpu"], {}) == ("cpu", "")
    assert choose_device("", ["cuda:0", "cuda:1"], {"cuda:0": "t-1"}) == ("cuda:1", "")
    assert choose_device("", ["cuda:0"], {"cuda:0": "t-1"}) == ("cuda:0", "t-1")  # beside it, if it fits
    assert choose_device("cpu", ["cuda:0"], {"cuda:0": "t-1"}) == ("cpu", "")
    assert choose_device("accelerator", ["cuda:0"], {}) == ("cuda:0", "")
    with pytest.raises(FailedPrecondition, match="has no accelerator"):
        choose_device("accelerator", ["cpu"], {})


def test_chat_settings_are_config_keys(tmp_path: Path) -> None:
    """The TOML takes the chat_* keys (the worker's messages tell operators to set them there);
    MODX_CHAT_* override them like every MODX_* variable; a bad value is refused with a sentence."""
    toml = tmp_path / "modxd.toml"
    toml.write_text("chat_cache_bytes = 5\nchat_queue_max = 3\nchat_threads = 2\nmax_chat_tokens = 100\n")
    s = ChatSettings.from_config(load_config(toml, env={"MODX_CHAT_HEADROOM_BYTES": "7", "MODX_CHAT_QUEUE_MAX": "2"}))
    assert (s.cache_bytes, s.headroom_bytes, s.queue_max, s.threads, s.max_new_tokens) == (5, 7, 2, 2, 100)
    d = ChatSettings.from_config(load_config(None, env={}))
    assert (d.cache_bytes, d.headroom_bytes, d.queue_max, d.threads, d.max_new_tokens) == (0, GiB, 16, 0, 4096)
    for text, env, sentence in (
            ("", {"MODX_CHAT_THREADS": "many"}, "chat_threads must be a whole number (0 picks half the usable CPUs), "
                                                "got 'many'"),
            ("", {"MODX_CHAT_CACHE_BYTES": "-1"}, "chat_cache_bytes must be 0 or more"),
            ("chat_queue_max = 0", {}, "chat_queue_max must be 1 or more (at least one chat at a time), got 0"),
            ("chat_headroom_bytes = true", {}, "chat_headroom_bytes must be a whole number"),
            ("chat_cache_bytes = 1.5", {}, "chat_cache_bytes must be a whole number"),
            ("chat_memory_headroom_bytes = 1", {}, "unknown keys chat_memory_headroom_bytes")):
        toml.write_text(text + "\n")
        with pytest.raises(InvalidArgument) as info:
            load_config(toml, env=env)
        assert sentence in str(info.value)


def test_deltas_go_at_once_unless_they_come_faster_than_the_window(monkeypatch) -> None:
    from modxd.worker import chat as chat_worker

    now = [100.0]
    monkeypatch.setattr(chat_worker.time, "perf_counter", lambda: now[0])
    from modxd.protocol import encode

    sent: list[dict] = []
    batcher = chat_worker.DeltaBatcher(lambda message: sent.append(encode(message)), "r1", window=0.010)
    batcher("a", [1])  # the first token: at once
    for i, piece in enumerate("bcd"):  # three more within 3 ms: held
        now[0] += 0.001
        batcher(piece, [2 + i])
    assert [m["text"] for m in sent] == ["a"]
    now[0] += 0.020  # a slow step: this token and the held ones go now
    batcher("e", [5])
    now[0] += 0.030
    batcher("f", [6])  # slower than the window: alone, at once
    batcher.flush()
    batcher.flush()  # nothing left: no empty message
    assert [(m["text"], m["token_ids"]) for m in sent] == [("a", [1]), ("bcde", [2, 3, 4, 5]), ("f", [6])]
    assert all(m["type"] == "delta" and m["request_id"] == "r1" for m in sent)
