"""Padding-free packing computes exactly what padded batches compute, only faster.

The fast path (engine/packing.py) is only worth having if it is the same maths: the
same loss and the same gradients on one batch, the same logged losses over a run
with gradient accumulation, and checkpoints that load anywhere afterwards.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.fixtures.plugin import EventRecorder, engine_config
from tests.fixtures.tiny_models import make_tiny_llama, make_tiny_qwen2

torch = pytest.importorskip("torch")


def _examples(n: int, seed: int, vocab: int) -> list[dict[str, list[int]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(5, 120)
        ids = [rng.randrange(5, vocab) for _ in range(length)]
        prompt = rng.randint(1, length - 1)
        out.append({"input_ids": ids, "labels": [-100] * prompt + ids[prompt:]})
    return out


def _lora_model(model_dir: Path):
    from modxd.engine.models import apply_lora, load_model

    torch.manual_seed(0)
    return apply_lora(load_model(str(model_dir)), 8, 16, 0.0, ["all-linear"])


@pytest.mark.parametrize("make", [make_tiny_llama, make_tiny_qwen2], ids=["llama", "qwen2"])
def test_packed_batch_matches_padded_loss_and_gradients(make, tmp_path) -> None:
    from modxd.engine.data import PadCollator
    from modxd.engine.packing import PackedCollator, labelled_loss, padding_free_problem, use_padding_free

    model_dir = make(tmp_path / "m")
    model = _lora_model(model_dir)
    assert padding_free_problem(model) is None
    features = _examples(6, seed=1, vocab=model.config.vocab_size)
    n_items = sum(1 for f in features for label in f["labels"][1:] if label != -100)

    padded = PadCollator(pad_token_id=0)(features)
    padded_loss = model(**padded, num_items_in_batch=torch.tensor(n_items)).loss
    padded_loss.backward()
    padded_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()

    use_padding_free(model)
    packed = PackedCollator()(features)
    assert packed["input_ids"].shape == (1, sum(len(f["input_ids"]) for f in features))
    labels = packed.pop("labels")
    outputs = model(**packed)
    assert outputs.logits.shape[1] == n_items  # logits of labelled positions only
    packed_loss = labelled_loss(outputs, labels, torch.tensor(n_items))
    packed_loss.backward()

    assert abs(packed_loss.item() - padded_loss.item()) < 1e-5
    for name, grad in padded_grads.items():
        other = dict(model.named_parameters())[name].grad
        torch.testing.assert_close(other, grad, atol=1e-5, rtol=1e-4, msg=name)


def test_examples_never_see_each_other(tmp_path) -> None:
    """Changing one packed example leaves the logits of the others untouched."""
    from modxd.engine.packing import PackedCollator, use_padding_free

    model = _lora_model(make_tiny_llama(tmp_path / "m"))
    use_padding_free(model)
    features = _examples(3, seed=2, vocab=model.config.vocab_size)
    changed = [dict(f) for f in features]
    changed[0] = {"input_ids": [7] * len(features[0]["input_ids"]), "labels": features[0]["labels"]}
    collate = PackedCollator(labelled_logits_only=False)
    with torch.no_grad():
        a = model(**{k: v for k, v in collate(features).items() if k != "labels"}).logits
        b = model(**{k: v for k, v in collate(changed).items() if k != "labels"}).logits
    first = len(features[0]["input_ids"])
    assert not torch.allclose(a[0, :first], b[0, :first])
    torch.testing.assert_close(a[0, first:], b[0, first:], atol=1e-6, rtol=1e-5)


def test_first_label_of_each_example_is_ignored() -> None:
    from modxd.engine.packing import PackedCollator

    batch = PackedCollator()([{"input_ids": [1, 2, 3], "labels": [1, 2, 3]},
                              {"input_ids": [4, 5], "labels": [4, 5]}])
    assert batch["labels"].tolist() == [[-100, 2, 3, -100, 5]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5] and batch["max_length_q"] == 3
    assert batch["logits_to_keep"].tolist() == [0, 1, 3]  # positions predicting 2, 3 and 5


def test_training_run_logs_the_same_losses_packed_or_padded(tiny_llama_dir, sft_jsonl, tmp_path) -> None:
    """A whole run with gradient accumulation and evaluation: same losses, either way."""
    from modxd.engine.train import run_training

    runs = {}
    for padding_free in (True, False):
        events = EventRecorder()
        config = engine_config(tiny_llama_dir, sft_jsonl, tmp_path / f"out-{padding_free}", max_samples=24,
                               gradient_accumulation_steps=2, eval_split_ratio=0.2, eval_strategy="steps",
                               eval_steps=2, lora_target_modules=["all-linear"], padding_free=padding_free,
                               save_strategy="steps", save_steps=3)
        run_training(config, events, lambda: None)
        runs[padding_free] = events
    logs = [e["message"] for e in runs[True].of("log")]
    assert any("padding-free batches" in m for m in logs)
    for key, kind in (("loss", "train_metrics"), ("eval_loss", "eval_metrics")):
        packed = [m[key] for m in getattr(runs[True], kind)]
        padded = [m[key] for m in getattr(runs[False], kind)]
        assert len(packed) == len(padded) >= 2
        assert packed == pytest.approx(padded, abs=1e-4), key
    checkpoints = list((tmp_path / "out-True" / "checkpoints").glob("checkpoint-*"))
    assert checkpoints  # saved with the standard attention: they load anywhere
    for path in checkpoints[0].rglob("*.json"):
        assert "modx_varlen" not in path.read_text(), path


def test_models_that_cannot_be_packed_are_named(tmp_path) -> None:
    from modxd.engine.models import load_model
    from modxd.engine.packing import padding_free_problem

    model = load_model(str(make_tiny_qwen2(tmp_path / "q", use_sliding_window=True, sliding_window=16)))
    assert "sliding-window" in padding_free_problem(model)
