"""Chat through a real daemon with the tiny models: streaming, sampling, targets, cache, refusals."""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import grpc
import pytest
from modx.v1 import inference_pb2 as I
from modx.v1 import package_pb2 as P
from modxctl.output import model_text

from tests.daemon.helpers import worker_pids

from .conftest import QUESTION, chat, chat_error, chat_request, in_process_greedy

LONG = 900  # tokens: a reply this long takes the tiny model seconds
ENDLESS = "a"  # a prompt the tiny Llama answers (greedy, no penalty) without an end-of-turn token for 900 tokens


def _log_lines(daemon, event: str) -> list[dict]:
    import json

    out = []
    for line in daemon.log().splitlines():
        if f'"event": "{event}"' in line:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def _wait_log(daemon, event: str, test, timeout: float = 30.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        hits = [e for e in _log_lines(daemon, event) if test(e)]
        if hits:
            return hits[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {event} log line matched in {timeout}s\n{daemon.log()[-3000:]}")


def test_stream_concatenates_to_the_in_process_greedy_generation(daemon, base_task, tiny_llama_dir) -> None:
    reply = chat(daemon, chat_request(base_task, temperature=0, repetition_penalty=1.0, max_new_tokens=40, seed=7))
    done = reply.done
    expected, ids, prompt_len = in_process_greedy(tiny_llama_dir, [{"role": "user", "content": QUESTION}], 40)
    # The first piece goes at once; later tokens of a model this fast arrive in 10 ms groups.
    assert len(reply.deltas) >= 2, "the reply was not streamed"
    assert len(reply.deltas[0].token_ids) < len(ids), "the first token waited for the rest"
    assert reply.text == done.text == expected
    assert reply.token_ids == ids  # every generated token, in order (an end-of-turn token is not streamed)
    assert done.prompt_tokens == prompt_len
    if done.finish_reason == I.FINISH_REASON_STOP_TOKEN:  # counted, not streamed
        assert done.completion_tokens == len(ids) + 1 < 40
    else:
        assert done.completion_tokens == 40 == len(ids) and done.finish_reason == I.FINISH_REASON_LENGTH
    assert done.time_to_first_token_ms > 0 and done.tokens_per_second > 0
    assert done.model_key == f"{base_task}/base@cpu"


def test_every_sampling_parameter_reaches_the_backend(daemon, base_task) -> None:
    def text(**sampling) -> str:
        return chat(daemon, chat_request(base_task, max_new_tokens=24, **sampling)).done.text

    greedy = text(temperature=0, repetition_penalty=1.0)
    assert text(temperature=0, repetition_penalty=1.0) == greedy  # greedy is deterministic
    hot = dict(temperature=2.0, top_k=0, top_p=1.0, repetition_penalty=1.0)
    sampled = text(seed=1, **hot)
    assert sampled != greedy
    assert text(seed=1, **hot) == sampled  # the seed reaches the sampler
    assert text(seed=2, **hot) != sampled
    assert text(seed=3, **{**hot, "top_k": 1}) == greedy  # top-k 1 is greedy whatever the temperature
    assert text(seed=3, **{**hot, "top_p": 1e-6}) == greedy  # so is a top-p that keeps one token
    assert text(temperature=0, repetition_penalty=5.0) != greedy
    short = chat(daemon, chat_request(base_task, temperature=0, repetition_penalty=1.0, max_new_tokens=5)).done
    assert short.completion_tokens == 5 and short.finish_reason == I.FINISH_REASON_LENGTH
    assert greedy.startswith(short.text)

    # A stop string from the middle of the greedy reply: the reply ends right before it and the
    # stop string itself never streams.
    stop = next(greedy[i:i + 3] for i in range(6, len(greedy) - 3) if greedy[i:i + 3].strip()
                and greedy.find(greedy[i:i + 3]) == i)
    reply = chat(daemon, chat_request(base_task, temperature=0, repetition_penalty=1.0, max_new_tokens=24,
                                      stop=["never-there", stop]))
    assert reply.done.finish_reason == I.FINISH_REASON_STOP_STRING
    assert reply.text == reply.done.text == greedy[:greedy.find(stop)]
    assert all(stop not in d.text for d in reply.deltas)


def test_system_prompt_is_formatted_into_the_prompt(daemon, base_task, tiny_llama_dir) -> None:
    from transformers import AutoTokenizer

    from modxd.engine.generate import format_prompt
    from modxd.engine.sampling import check_messages

    system = "You are a terse pirate."
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    messages = check_messages([{"role": "user", "content": QUESTION}], system)
    prompt = format_prompt(tokenizer, messages)
    assert prompt.startswith(f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{QUESTION}")
    assert prompt.endswith("<|im_start|>assistant\n")
    with_system = chat(daemon, chat_request(base_task, system=system, temperature=0, max_new_tokens=3)).done
    without = chat(daemon, chat_request(base_task, temperature=0, max_new_tokens=3)).done
    assert with_system.prompt_tokens == len(tokenizer(prompt, add_special_tokens=False).input_ids)
    assert with_system.prompt_tokens > without.prompt_tokens

    # Multi-turn history is formatted in order.
    history = [I.ChatMessage(role="user", content="hi"), I.ChatMessage(role="assistant", content="hello"),
               I.ChatMessage(role="user", content=QUESTION)]
    req = I.ChatRequest(task_id=base_task, base=True, messages=history, system_prompt=system,
                        sampling=I.SamplingParams(temperature=0, max_new_tokens=3))
    turns = [{"role": m.role, "content": m.content} for m in history]
    full = format_prompt(tokenizer, check_messages(turns, system))
    assert chat(daemon, req).done.prompt_tokens == len(tokenizer(full, add_special_tokens=False).input_ids)


@pytest.mark.parametrize("sampling, fragment", [
    (dict(temperature=-0.1), "temperature must be 0 (greedy) or between 0.01 and 5"),
    # tiny but above 0: the logits divided by it overflow float32 (INTERNAL from the worker, once)
    (dict(temperature=1e-300), "temperature must be 0 (greedy) or between 0.01 and 5, got 1e-300"),
    (dict(repetition_penalty=5e-324), "repetition_penalty must be above 0 and at most 10 (at least 0.01"),
    (dict(temperature=math.nan), "temperature must be a finite number"),
    (dict(temperature=9), "temperature must be 0 (greedy) or between"),
    (dict(top_p=0.0), "top_p must be above 0 and at most 1"),
    (dict(top_p=1.5), "top_p must be above 0 and at most 1"),
    (dict(top_k=-1), "top_k must be between 0 (off)"),
    (dict(repetition_penalty=0.0), "repetition_penalty must be above 0"),
    (dict(repetition_penalty=11.0), "repetition_penalty must be above 0 and at most 10"),
    (dict(max_new_tokens=0), "max_new_tokens must be between 1 and 4096"),
    (dict(max_new_tokens=-5), "max_new_tokens must be between 1"),
    (dict(seed=-1), "seed must be between 0 and 4294967295"),
    (dict(stop=[""]), "a stop string must not be empty"),
    (dict(stop=["x"] * 17), "at most 16 stop strings"),
])
def test_sampling_is_validated(daemon, base_task, sampling, fragment) -> None:
    error = chat_error(daemon, chat_request(base_task, **sampling))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert fragment in error.details()


def test_requests_are_validated(daemon, base_task, lora_task) -> None:
    lora_id, _ = lora_task
    too_many = chat_error(daemon, chat_request(base_task, max_new_tokens=100_000))
    assert too_many.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "max_chat_tokens" in too_many.details()
    cases = [
        (I.ChatRequest(task_id=base_task, base=True), grpc.StatusCode.INVALID_ARGUMENT, "messages is empty"),
        (I.ChatRequest(task_id=base_task, base=True, messages=[I.ChatMessage(role="robot", content="x")]),
         grpc.StatusCode.INVALID_ARGUMENT, "role must be one of system, user, assistant"),
        (I.ChatRequest(task_id=base_task, base=True, messages=[I.ChatMessage(role="user", content="x"),
                                                                I.ChatMessage(role="assistant", content="y")]),
         grpc.StatusCode.INVALID_ARGUMENT, "the last message must be from the user"),
        (I.ChatRequest(task_id=base_task, base=True, system_prompt="s",
                       messages=[I.ChatMessage(role="system", content="s"), I.ChatMessage(role="user", content="x")]),
         grpc.StatusCode.INVALID_ARGUMENT, "give the system prompt once"),
        (chat_request(""), grpc.StatusCode.INVALID_ARGUMENT, "task_id is required"),
        (chat_request("t-nope"), grpc.StatusCode.NOT_FOUND, "t-nope"),
        (chat_request(lora_id, checkpoint="999"), grpc.StatusCode.NOT_FOUND, "has no checkpoint '999'"),
        (chat_request(base_task, checkpoint="1"), grpc.StatusCode.NOT_FOUND, "has no checkpoint"),
        (chat_request(base_task, checkpoint=""), grpc.StatusCode.FAILED_PRECONDITION, "has no checkpoint yet"),
        (chat_request(base_task, package_id="pkg-nope"), grpc.StatusCode.NOT_FOUND, "pkg-nope"),
        (chat_request(base_task, device=I.DEVICE_PREFERENCE_ACCELERATOR), grpc.StatusCode.FAILED_PRECONDITION,
         "has no accelerator"),
        (chat_request(base_task, max_new_tokens=2000), grpc.StatusCode.INVALID_ARGUMENT,
         "more than the model's context of 1024 tokens"),  # checked by the worker, with the model's tokenizer
    ]
    for request, code, fragment in cases:
        if request.HasField("checkpoint") and not request.checkpoint:
            request.ClearField("checkpoint")  # no target at all: the latest checkpoint
        error = chat_error(daemon, request)
        assert error.code() == code and fragment in error.details(), (request, error.code(), error.details())


def test_cancel_mid_stream_stops_generation_and_frees_the_slot(daemon, base_task) -> None:
    request = chat_request(base_task, ENDLESS, temperature=0, repetition_penalty=1.0, max_new_tokens=LONG)
    call = daemon.inference.Chat(request, timeout=120)
    got = 0
    for response in call:
        assert response.WhichOneof("payload") == "delta"
        got += 1
        if got == 3:
            call.cancel()
            break
    cancelled = _wait_log(daemon, "chat_done", lambda e: e.get("abandoned") and e["finish_reason"] == "cancelled")
    assert cancelled["completion_tokens"] < LONG // 3, cancelled  # it stopped at once, not at 900 tokens
    started = time.perf_counter()
    after = chat(daemon, chat_request(base_task, temperature=0, max_new_tokens=5))
    assert after.done.completion_tokens == 5 and time.perf_counter() - started < 20


def test_a_client_that_disconnects_stops_generation(daemon, base_task) -> None:
    """A killed `modxctl chat -m` (no cancel sent, the connection just drops)."""
    seen = len([e for e in _log_lines(daemon, "chat_done") if e.get("abandoned")])
    proc = subprocess.Popen([sys.executable, "-m", "modxctl.main", "--address", daemon.address, "chat", base_task,
                             "--base", "-m", ENDLESS, "--temperature", "0", "--repetition-penalty", "1",
                             "--max-new-tokens", str(LONG)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout.read(4), "no streamed output"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 30
    while len([e for e in _log_lines(daemon, "chat_done") if e.get("abandoned")]) <= seen:
        assert time.time() < deadline, daemon.log()[-3000:]
        time.sleep(0.1)
    last = [e for e in _log_lines(daemon, "chat_done") if e.get("abandoned")][-1]
    assert last["finish_reason"] == "cancelled" and last["completion_tokens"] < LONG


def test_models_are_cached_listed_and_unloaded(daemon, base_task, lora_task) -> None:
    lora_id, ckpts = lora_task
    daemon.inference.UnloadModel(I.UnloadModelRequest())
    assert not daemon.inference.ListLoadedModels(I.ListLoadedModelsRequest()).models
    first = chat(daemon, chat_request(lora_id, checkpoint=str(ckpts[0].step), temperature=0, max_new_tokens=4))
    second = chat(daemon, chat_request(lora_id, checkpoint=ckpts[0].id, temperature=0, max_new_tokens=4))
    key = f"{lora_id}/{ckpts[0].id}@cpu"
    assert first.done.model_key == second.done.model_key == key
    loads = [e for e in _log_lines(daemon, "chat_model") if e["model_key"] == key]
    assert [e["cached"] for e in loads[-2:]] == [False, True]  # the second chat is a cache hit
    chat(daemon, chat_request(base_task, temperature=0, max_new_tokens=4))
    listed = daemon.inference.ListLoadedModels(I.ListLoadedModelsRequest())
    by_key = {m.key: m for m in listed.models}
    assert set(by_key) == {key, f"{base_task}/base@cpu"}
    model = by_key[key]
    assert (model.task_id, model.backend, model.device) == (lora_id, "hf", "cpu")
    assert model.target == f"checkpoint {ckpts[0].id}" and model.memory_bytes > 0
    assert model.last_used_time.seconds > 0 and listed.memory_limit_bytes > 0
    assert daemon.inference.UnloadModel(I.UnloadModelRequest(key=key)).unloaded == 1
    assert [m.key for m in daemon.inference.ListLoadedModels(I.ListLoadedModelsRequest()).models] == [
        f"{base_task}/base@cpu"]
    with pytest.raises(grpc.RpcError) as info:
        daemon.inference.UnloadModel(I.UnloadModelRequest(key=key))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "no model is loaded" in info.value.details()
    assert daemon.inference.UnloadModel(I.UnloadModelRequest()).unloaded == 1


def test_lora_checkpoint_is_the_base_plus_its_adapter(daemon, lora_task, tiny_llama_dir) -> None:
    lora_id, ckpts = lora_task
    last = ckpts[-1]
    reply = chat(daemon, chat_request(lora_id, checkpoint=str(last.step), temperature=0, repetition_penalty=1.0,
                                      max_new_tokens=20))
    expected, _, _ = in_process_greedy(tiny_llama_dir, [{"role": "user", "content": QUESTION}], 20,
                                       adapter_dir=last.path)
    assert reply.done.text == expected
    base = chat(daemon, chat_request(lora_id, base=True, temperature=0, repetition_penalty=1.0, max_new_tokens=20))
    assert base.done.text != expected, "the adapter changed nothing"
    latest = I.ChatRequest(task_id=lora_id, messages=[I.ChatMessage(role="user", content=QUESTION)],
                           sampling=I.SamplingParams(temperature=0, repetition_penalty=1.0, max_new_tokens=20))
    assert chat(daemon, latest).done.model_key == f"{lora_id}/{last.id}@cpu"  # no target: the latest checkpoint


def test_full_checkpoint(daemon, tiny_llama_dir, pretrain_txt, tmp_path) -> None:
    from modx.v1 import training_pb2 as T

    from .conftest import train_task

    task_id = train_task(daemon, tiny_llama_dir, pretrain_txt, tmp_path / "o", task_type="pretrain",
                         max_samples=0)
    ckpt = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints[-1]
    assert not os.path.exists(os.path.join(ckpt.path, "adapter_config.json"))
    reply = chat(daemon, chat_request(task_id, checkpoint=ckpt.id, temperature=0, repetition_penalty=1.0,
                                      max_new_tokens=12))
    expected, _, _ = in_process_greedy(ckpt.path, [{"role": "user", "content": QUESTION}], 12)
    assert reply.done.text == expected and reply.done.model_key == f"{task_id}/{ckpt.id}@cpu"


def test_unmerged_gguf_package_chats_through_llama_cpp(daemon, lora_task) -> None:
    lora_id, ckpts = lora_task
    created = daemon.packages.CreatePackage(P.CreatePackageRequest(
        task_id=lora_id, checkpoint=str(ckpts[-1].step), quant_types=[P.QUANT_TYPE_F32], merge=False,
        skip_verification=True)).package
    running = daemon.inference.Chat(chat_request(lora_id, package_id=created.id))
    with pytest.raises(grpc.RpcError) as info:
        list(running)
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "only a completed package" in \
        info.value.details()
    for _ in daemon.packages.WatchPackage(P.WatchPackageRequest(package_id=created.id), timeout=300):
        pass
    package = daemon.packages.GetPackage(P.GetPackageRequest(package_id=created.id)).package
    assert package.state == 3, package.state_reason  # completed
    files = {f.kind: f.path for f in package.files}
    reply = chat(daemon, chat_request(lora_id, package_id=created.id, temperature=0, repetition_penalty=1.0,
                                      max_new_tokens=16))
    assert reply.done.model_key == f"{lora_id}/{created.id}/F32@cpu"
    assert reply.text == reply.done.text and reply.done.completion_tokens >= 1
    loaded = {m.key: m for m in daemon.inference.ListLoadedModels(I.ListLoadedModelsRequest()).models}
    assert loaded[reply.done.model_key].backend == "gguf"
    assert loaded[reply.done.model_key].target == f"package {created.id} F32 + adapter"

    # The same file and adapter through llama-cpp-python in this process give the same tokens.
    from modxd.engine.sampling import check_messages, check_sampling
    from modxd.engine.llamacpp import LlamaChatModel

    model = LlamaChatModel.load(files["model"], "cpu", files["adapter"], threads=1)
    try:
        local = model.generate(check_messages([{"role": "user", "content": QUESTION}]),
                               check_sampling(dict(temperature=0, repetition_penalty=1.0, max_new_tokens=16)),
                               lambda _t, _i: None)
    finally:
        model.close()
    assert local["text"] == reply.done.text
    without = LlamaChatModel.load(files["model"], "cpu", None, threads=1)
    try:
        plain = without.generate(check_messages([{"role": "user", "content": QUESTION}]),
                                 check_sampling(dict(temperature=0, repetition_penalty=1.0, max_new_tokens=16)),
                                 lambda _t, _i: None)
    finally:
        without.close()
    assert plain["text"] != reply.done.text, "the adapter GGUF was not applied"


def test_killed_worker_answers_unavailable_and_restarts(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    from tests.daemon.helpers import create_request, sft_params

    d = make_daemon()
    task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o"))).task.id
    call = d.inference.Chat(chat_request(task_id, ENDLESS, temperature=0, repetition_penalty=1.0,
                                         max_new_tokens=LONG),
                            timeout=120)
    with pytest.raises(grpc.RpcError) as info:
        for n, _response in enumerate(call):
            if n == 2:
                (pid,) = worker_pids(d.state_dir)
                os.kill(pid, signal.SIGKILL)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "the inference worker stopped while answering (worker killed by signal SIGKILL" in info.value.details()
    again = chat(d, chat_request(task_id, temperature=0, max_new_tokens=4))
    assert again.done.completion_tokens == 4
    assert "libtorch" not in open(f"/proc/{d.proc.pid}/maps").read(), "the daemon imported torch"
    assert d.stop() == 0
    assert not worker_pids(d.state_dir), "the inference worker outlived the daemon"


def test_resource_exhausted_beside_training_never_hurts_it(make_daemon, tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    from modx.v1 import training_pb2 as T

    from tests.daemon.helpers import create_request, sft_params, state_name, wait_for_state

    d = make_daemon(MODX_CHAT_HEADROOM_BYTES=str(1 << 60))  # nothing fits: as a device full of training
    slow = dict(num_train_epochs=3, per_device_train_batch_size=1, gradient_accumulation_steps=1, save_steps=1000,
                logging_steps=1, max_seq_length=64, max_samples=16)
    task_id = d.training.CreateTask(create_request(**sft_params(tiny_llama_dir, sft_jsonl, tmp_path / "o", **slow))
                                    ).task.id
    d.training.StartTask(T.StartTaskRequest(task_id=task_id))
    wait_for_state(d, task_id, {"running"})
    error = chat_error(d, chat_request(task_id, base=True, max_new_tokens=4))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    details = error.details()
    assert "does not fit on the CPU (host memory) beside the training job of task " + task_id in details
    assert "kept free" in details
    done = wait_for_state(d, task_id, {"completed", "failed", "stopped"})
    assert state_name(done.state) == "completed", done.state_reason


def test_modxctl_chat_one_shot_json_and_repl(daemon, base_task) -> None:
    import json

    greedy = chat(daemon, chat_request(base_task, temperature=0, max_new_tokens=8)).done.text
    one = daemon.cli("chat", base_task, "--base", "-m", QUESTION, "--temperature", "0", "--max-new-tokens", "8")
    # the reply streams to stdout (control characters other than newline and tab escaped), the stats to stderr
    assert one.stdout == model_text(greedy) + "\n"
    assert "8 tokens" in one.stderr and "finish: length" in one.stderr and "tok/s" in one.stderr
    done = json.loads(daemon.cli("--json", "chat", base_task, "--base", "-m", QUESTION, "--temperature", "0",
                                 "--max-new-tokens", "8").stdout)
    assert done["text"] == greedy and done["finish_reason"] == "FINISH_REASON_LENGTH"
    assert done["completion_tokens"] == 8 and done["model_key"] == f"{base_task}/base@cpu"
    bad = daemon.cli("chat", base_task, "--base", "-m", "hi", "--top-p", "1.5", check=False)
    assert bad.returncode == 2 and "1.5" in bad.stderr  # refused by the CLI itself
    bad = daemon.cli("chat", base_task, "--checkpoint", "77", "-m", "hi", check=False)
    assert bad.returncode == 1 and "has no checkpoint '77'" in bad.stderr

    session = "\n".join([
        "/system You are terse.", "hello", "/params", "/params temperature=0 max_new_tokens=3", "again",
        "/params top_k=oops", "/reset", "/params", "/quit"]) + "\n"
    proc = subprocess.run([sys.executable, "-m", "modxctl.main", "--address", daemon.address, "chat", base_task,
                           "--base", "--temperature", "0", "--max-new-tokens", "4"], input=session,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "system prompt: You are terse." in err
    assert "system:    You are terse." in proc.stdout and "history:   1 turns" in proc.stdout
    assert "sampling: max_new_tokens=3, temperature=0.0" in err
    assert "top_k needs a whole number, got 'oops'" in err
    assert "the conversation is forgotten" in err and "history:   0 turns" in proc.stdout
    stats = [line for line in err.splitlines() if line.startswith("[")]
    assert len(stats) == 2 and "4 tokens" in stats[0] and "3 tokens" in stats[1]
