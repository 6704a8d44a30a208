"""Create-time checks: paths, data files, model and tokenizer dirs, output dir.

Each failure raises a domain error whose sentence names the parameter at fault;
nothing is stored before all of them pass. All of it is blocking file I/O, so
the API layer runs `validate_task` in a thread.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import params as P
from . import plan
from .engine import formats, templating
from .engine import preference_formats
from .engine.checkpoints import adapter_start_problem, resume_problem
from .engine.finite import DAEMON_CHECK_MAX_BYTES
from .engine.memory import model_shape_problem
from .engine.safetensors_header import count_parameters, tensor_entries
from .engine.models import ModelDirProblem, inspect_model_dir, lora_targets_problem, max_seq_length_problem
from .engine.precision import PRECISION_CONFLICT
from .errors import FailedPrecondition, InvalidArgument
from .paths import nearest_existing, pin_input, resolve_under_roots
from .tokenizer_checks import check_chat_data, check_tokenizer_files

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
INPUT_DIRS = ("model_dir", "tokenizer_dir", "resume_from_checkpoint", "start_from_checkpoint")


@dataclass
class Validated:
    params: P.TrainParams  # with every path resolved to its real path
    train: formats.DataSummary
    eval: formats.DataSummary | None
    model_config: dict[str, Any]
    warnings: list[tuple[str, str]] = field(default_factory=list)


def validate_task(task_type: str, params: P.TrainParams, roots: list[Path]) -> Validated:
    """Check everything a task needs on disk; returns params with resolved paths."""
    real_paths: dict[str, str] = {}
    for key in P.PATH_KEYS:
        if params.get(key):
            real = resolve_under_roots(f"parameter {key}", str(params[key]), roots)
            real_paths[key] = str(real)
            if key in INPUT_DIRS and real.is_dir():  # and no symlink in it leads out (files: at open)
                pin_input(f"parameter {key}", str(real), roots=roots).close()
    params = params.replace(**real_paths)
    train = _data_file("train_file", params["train_file"], task_type)
    evals = _data_file("eval_file", params["eval_file"], task_type) if params.get("eval_file") else None
    model_config = check_model_dir(params["model_dir"], "model_dir")
    check_tokenizer(params.get("tokenizer_dir") or params["model_dir"],
                    "tokenizer_dir" if params.get("tokenizer_dir") else "model_dir")
    problem = max_seq_length_problem(params.max_seq_length, model_config)  # the engine's rule (models.py)
    if problem:
        raise InvalidArgument(problem)
    if params.get("use_lora"):
        check_lora_targets(params["model_dir"], params.get("lora_target_modules") or [])
    # Preference pairs in the conversational format are conversations too: the chat template must render them.
    conversational_pairs = task_type in P.PREFERENCE_TYPES and any(
        s is not None and s.format == preference_formats.CONVERSATIONAL for s in (train, evals))
    tokenizer, warnings = check_tokenizer_files(task_type, params, model_config, conversational_pairs)
    if task_type == P.SFT:
        warnings += check_chat_data(params, tokenizer, train, evals)
    elif conversational_pairs:
        warnings += check_chat_data(params, tokenizer, train, evals, fit=False)
    check_writable_dir("output_dir", Path(params["output_dir"]))
    if params.resume_from_checkpoint:
        problem = resume_problem(params.resume_from_checkpoint, DAEMON_CHECK_MAX_BYTES)
        if problem:
            raise FailedPrecondition(f"parameter resume_from_checkpoint: {params.resume_from_checkpoint} {problem}")
    if params.start_from_checkpoint:
        problem = adapter_start_problem(params.start_from_checkpoint, DAEMON_CHECK_MAX_BYTES)
        if problem:
            raise FailedPrecondition(f"parameter start_from_checkpoint: {params.start_from_checkpoint} {problem}")
    if params.fp16 and params.bf16:
        warnings.append((PRECISION_CONFLICT["code"], PRECISION_CONFLICT["message"]))
    return Validated(params, train, evals, model_config, warnings)


def _data_file(key: str, path: str, task_type: str) -> formats.DataSummary:
    p = Path(path)
    if not p.exists():
        raise FailedPrecondition(f"parameter {key}: {path} does not exist")
    if not p.is_file():
        raise FailedPrecondition(f"parameter {key}: {path} is not a file")
    if not os.access(p, os.R_OK):
        raise FailedPrecondition(f"parameter {key}: {path} is not readable by the daemon")
    try:
        if task_type == P.SFT:
            return formats.inspect_sft_file(path, field=key)
        if task_type in P.PREFERENCE_TYPES:
            return preference_formats.inspect_preference_file(path, field=key)
        return formats.inspect_pretrain_file(path, field=key)
    except formats.DataError as exc:
        raise InvalidArgument(str(exc)) from None


def check_model_dir(path: str, key: str) -> dict[str, Any]:
    """The engine's rule of a trainable model dir (engine/models.py inspect_model_dir); its config.json.
    A path naming something else is INVALID_ARGUMENT, a missing or damaged dir FAILED_PRECONDITION."""
    try:
        config = inspect_model_dir(path, key).config
    except ModelDirProblem as exc:
        raise (InvalidArgument if exc.wrong_kind else FailedPrecondition)(str(exc)) from None
    problem = model_shape_problem(config, count_parameters(path))  # what the estimates read of it
    if problem:
        raise FailedPrecondition(f"parameter {key}: {Path(path) / 'config.json'} {problem}")
    return config


def _weight_modules(model_dir: str) -> set[str]:
    """Dotted names of the modules that hold a 2-D weight (linear layers), from the safetensors headers."""
    # check_model_dir has refused a damaged file already
    return {tensor.removesuffix(".weight") for tensor, info in tensor_entries(model_dir)
            if tensor.endswith(".weight") and len(info["shape"]) == 2}


def check_lora_targets(model_dir: str, targets: list[str]) -> None:
    """The engine's LoRA-target rule (engine/models.py), on the module names of the weights' headers."""
    if not targets or any(t.lower() == "all-linear" for t in targets):
        return
    problem = lora_targets_problem(targets, _weight_modules(model_dir), f" in {model_dir}")
    if problem:
        raise InvalidArgument(problem)


def check_tokenizer(path: str, key: str) -> None:
    """A tokenizer dir (its chat template: tokenizer_checks.py, with the engine's rule)."""
    p = Path(path)
    if not p.is_dir():
        raise FailedPrecondition(f"parameter {key}: {path} does not exist or is not a dir")
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        raise FailedPrecondition(
            f"parameter {key}: {path} has no tokenizer ({', '.join(TOKENIZER_FILES)} missing)")


def check_writable_dir(key: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise FailedPrecondition(f"parameter {key}: {path} exists and is not a dir")
    existing = nearest_existing(path)
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise FailedPrecondition(f"parameter {key}: {path} cannot be written by the daemon ({existing} is not writable)")


def estimate(task_type: str, params: P.TrainParams, train: formats.DataSummary,
             has_eval_file: bool, balance: int, devices: int = 1) -> dict[str, Any]:
    """The quota estimate: checkpoints the parameters will save (see modxd/plan.py for the rule)."""
    if task_type != P.PRETRAIN:  # SFT examples, preference pairs: one example each
        n = plan.effective_examples(train.examples, int(params["max_samples"]),
                                    float(params["eval_split_ratio"]), has_eval_file)
        how = f"{n} training {'pairs' if task_type in P.PREFERENCE_TYPES else 'examples'}"
        _check_eval_split(params, train.examples, has_eval_file)
    else:
        tokens = count_tokens(params, train)
        if tokens is None:
            blocks = plan.estimate_pretrain_examples(train.characters, int(params["max_seq_length"]))
            how = f"about {blocks} blocks of {params['max_seq_length']} tokens (estimated from characters)"
        else:
            blocks = tokens // int(params["max_seq_length"])
            how = f"{blocks} blocks of {params['max_seq_length']} tokens"
        n = plan.effective_examples(blocks, int(params["max_samples"]), float(params["eval_split_ratio"]),
                                    has_eval_file)
        if tokens is not None:
            _check_eval_split(params, blocks, has_eval_file)
        if tokens is not None and n == 0:
            raise InvalidArgument(plan.no_block_sentence(train.path, params.max_seq_length, tokens))
    per_epoch = plan.estimate_steps_per_epoch(n, int(params["per_device_train_batch_size"]),
                                              int(params["gradient_accumulation_steps"]), devices)
    total = plan.estimate_total_steps(n, int(params["per_device_train_batch_size"]),
                                      int(params["gradient_accumulation_steps"]),
                                      int(params["num_train_epochs"]), devices)
    checkpoints = plan.estimate_checkpoints(total, per_epoch, str(params["save_strategy"]),
                                            int(params["save_steps"]), int(params["num_train_epochs"]))
    strategy = params["save_strategy"]
    rule = {"steps": f"ceil({total} / save_steps {params['save_steps']})",
            "epoch": f"one per epoch ({params['num_train_epochs']})",
            "no": "only the final checkpoint"}[strategy]
    explanation = (f"{how} -> {per_epoch} steps per epoch, {total} steps in all; save_strategy {strategy}: "
                   f"{rule} = {checkpoints} checkpoint(s), 1 quota unit each")
    if float(params.get("save_interval_minutes", 0)) > 0:
        explanation += "; time-based saves (save_interval_minutes) may add more"
    return {"num_examples": n, "steps_per_epoch": per_epoch, "total_steps": total,
            "checkpoints": checkpoints, "balance": balance, "fits": checkpoints <= balance,
            "explanation": explanation}


def _check_eval_split(params: P.TrainParams, examples: int, has_eval_file: bool) -> None:
    """The one rule of evaluation data (modxd/plan.py), on the split these examples give."""
    if has_eval_file:
        return  # an eval file holds at least one example (formats.py refuses an empty one)
    capped = min(examples, params.max_samples) if params.max_samples else examples
    problem = plan.eval_data_problem(params.eval_strategy, "", params.eval_split_ratio,
                                     plan.split_sizes(capped, params.eval_split_ratio)[1])
    if problem:
        raise InvalidArgument(problem)


def count_tokens(params: dict[str, Any], train: formats.DataSummary) -> int | None:
    """Exact token count of a pretraining corpus with the fast tokenizer (no torch), EOS included."""
    tok_dir = Path(params.get("tokenizer_dir") or params["model_dir"])
    tok_file = tok_dir / "tokenizer.json"
    if not tok_file.is_file():
        return None
    tokenizer = templating.load_backend(str(tok_file))
    total, batch = 0, []
    for text in formats.iter_pretrain_texts(train.path):
        batch.append(text)
        if len(batch) == 256:
            total += sum(len(e.ids) + 1 for e in tokenizer.encode_batch(batch, add_special_tokens=False))
            batch = []
    if batch:
        total += sum(len(e.ids) + 1 for e in tokenizer.encode_batch(batch, add_special_tokens=False))
    return total
