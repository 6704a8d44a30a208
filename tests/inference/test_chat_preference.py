"""Chat on the checkpoints of preference tasks (dpo, orpo), as on SFT ones: one adapter over model_dir.

The dpo task here continues the adapter of an SFT task (start_from_checkpoint, given through the
daemon), so its checkpoints also hold the frozen SFT adapter under ref/ (the reference it was
trained against): chat must answer with the trained adapter (that it is not the reference's is
tests/package/test_package_preference.py, on the logits)."""
from __future__ import annotations

from pathlib import Path

from modx.v1 import training_pb2 as T

from tests.fixtures.preference import write_pairs

from .conftest import QUESTION, chat, chat_request, in_process_greedy, train_task


def test_dpo_and_orpo_checkpoints_chat_as_their_adapters(daemon, lora_task, tiny_llama_dir, tmp_path: Path) -> None:
    _, sft_ckpts = lora_task
    pairs = write_pairs(tmp_path / "pairs.jsonl", 8)
    common = dict(learning_rate=5e-2, save_steps=2, max_seq_length=128, logging_steps=1)
    dpo_id = train_task(daemon, tiny_llama_dir, pairs, tmp_path / "dpo", "dpo",
                        start_from_checkpoint=sft_ckpts[-1].path, **common)
    orpo_id = train_task(daemon, tiny_llama_dir, pairs, tmp_path / "orpo", "orpo", orpo_lambda=0.5, **common)
    for task_id, continued in ((dpo_id, True), (orpo_id, False)):
        [*_, last] = daemon.training.ListCheckpoints(T.ListCheckpointsRequest(task_id=task_id)).checkpoints
        assert (Path(last.path) / "ref" / "adapter_config.json").is_file() == continued
        reply = chat(daemon, chat_request(task_id, checkpoint=str(last.step), temperature=0, repetition_penalty=1.0,
                                          max_new_tokens=20))
        expected, _, _ = in_process_greedy(tiny_llama_dir, [{"role": "user", "content": QUESTION}], 20,
                                           adapter_dir=last.path)
        assert reply.done.text == expected, task_id
