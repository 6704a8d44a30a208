"""One package job: checkpoint -> GGUF files (+ adapter, model card, Modelfiles), verified.

Every file is written under a hidden ``.partial`` name and renamed into place only when
the whole job has succeeded; on any failure (unknown architecture, disk full, a failed
verification, a stop) every file the job wrote is removed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
from typing import Any

from ... import files as manifest
from ...paths import Pinned, pin_input, pin_output_dir, shown
from ...protocol import Emit, Log, PackageFile, PackageProgress, Poll, Stop
from ..checkpoints import remove_entry
from .arch import ExportError, model_spec
from .card import model_card, modelfile
from .lora import LoraAdapter, is_lora_checkpoint, load_adapter
from .tokenizer import find_tokenizer_dir, load_vocab
from .writer import ALL_TYPES, DIRECT_TYPES, LLAMA_TYPES, SourceModel, plan_tensors, write_adapter, write_model

log = logging.getLogger("modxd.engine.export")

# Bytes per parameter, for the free-space check before anything is written.
_BYTES_PER_PARAM = {"F32": 4.0, "F16": 2.0, "BF16": 2.0, "Q8_0": 1.07, "Q2_K": 0.33, "Q3_K_S": 0.43, "Q3_K_M": 0.49,
                    "Q3_K_L": 0.53, "Q4_0": 0.57, "Q4_K_S": 0.58, "Q4_K_M": 0.61, "Q5_0": 0.69, "Q5_K_S": 0.69,
                    "Q5_K_M": 0.71, "Q6_K": 0.82}
# Types that must reproduce the model: a lower top-1 agreement means a broken conversion.
# (A random-weight model has near-ties that F16 rounding may flip; a wrong conversion agrees
# on a small fraction of positions.)
_EXACT_TYPES = {"F32": 0.9, "F16": 0.9}


class Stopped(ExportError):
    pass


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "model"


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def normalize_types(types: list[str]) -> list[str]:
    out = []
    for t in types:
        key = str(t).strip().upper().replace("-", "_").removeprefix("QUANT_TYPE_")
        if key not in ALL_TYPES:
            raise ExportError(f"{t!r} is not a quantization type; choose from {', '.join(ALL_TYPES)}")
        if key not in out:
            out.append(key)
    if not out:
        raise ExportError("name at least one quantization type")
    return out


class PackageJob:
    def __init__(self, config: dict[str, Any], emit: Emit, poll_command: Poll | None = None):
        self.config = config
        self.emit = emit
        self.poll = poll_command or (lambda *_a: None)
        self.types = normalize_types(list(config.get("quant_types") or []))
        self.merge = bool(config.get("merge", True))
        out = config.get("output_dir") or ""
        if not out:
            if not config.get("default_output_root") or not config.get("job_id"):
                raise ExportError("output_dir is required")
            out = os.path.join(config["default_output_root"], config["job_id"])
        self.out_dir = os.path.abspath(out)  # the real path (what people see)
        self.pin: Pinned | None = None     # the open output dir: every file is written through it
        self.inputs: list[Pinned] = []     # the open input dirs
        self.partials: list[str] = []      # staged files, removed on failure
        self.finals: list[str] = []        # renamed files, removed if a later rename fails
        self.created_dir = False
        self.started = time.time()

    # ----- reporting ---------------------------------------------------------------------------
    def info(self, message: str, level: str = "info") -> None:
        getattr(log, "warning" if level == "warning" else "info")(message)
        self.emit(Log(level, message))

    def progress(self, phase: str, qtype: str = "", done: int = 0, total: int = 0, written: int = 0) -> None:
        self.emit(PackageProgress(phase, qtype, done, total, written))

    def check_stop(self) -> None:
        command = self.poll(0.0)
        if isinstance(command, Stop):
            raise Stopped(f"stopped ({command.reason or 'requested'}) before the package was complete")

    # ----- inputs ------------------------------------------------------------------------------
    def _pin(self, field: str, path: str) -> str:
        """Open an input dir checked against the roots (modxd/paths.py); libraries get the open dir."""
        pin = pin_input(field, path)
        self.inputs.append(pin)
        return pin.path

    def _inputs(self) -> tuple[str, LoraAdapter | None, str]:
        real = self.config["checkpoint_dir"]
        if not os.path.isdir(real):
            raise ExportError(f"checkpoint {real} does not exist on disk")
        ckpt = self._pin("checkpoint_dir", real)
        adapter = None
        if is_lora_checkpoint(ckpt):
            adapter = load_adapter(ckpt)
            base = self.config.get("base_model_dir") or str(adapter.config.get("base_model_name_or_path") or "")
            if not base or not os.path.isdir(base):
                raise ExportError(f"{real} is a LoRA checkpoint whose base model {base or '(unnamed)'} is not a "
                                  "directory on this host")
            model_dir = self._pin("base_model_dir", base)
        else:
            model_dir = ckpt
        tokenizers = [self._pin("tokenizer_dir", d) for d in self.config.get("tokenizer_dirs") or [] if os.path.isdir(d)]
        tokenizer_dir = find_tokenizer_dir([ckpt, *tokenizers, model_dir])
        return model_dir, adapter, tokenizer_dir

    def _check_space(self, n_params: int, adapter: LoraAdapter | None) -> None:
        need = sum(_BYTES_PER_PARAM[t] for t in self.types) * n_params
        if any(t in LLAMA_TYPES for t in self.types) and not any(t in ("F32", "F16") for t in self.types):
            need += 2.0 * n_params  # the intermediate F16 file
        free = shutil.disk_usage(self.pin.path if self.pin else self.out_dir).free
        if need * 1.02 > free:
            raise ExportError(f"not enough disk space in {self.out_dir}: the package needs about "
                              f"{need / 2**30:.2f} GiB, {free / 2**30:.2f} GiB is free")

    def _open_out_dir(self) -> None:
        """Open (making it) the output dir without following a symlink below a root; report what it made."""
        if self.config.get("output_dir"):
            self.pin, made = pin_output_dir("output_dir", self.out_dir)
            self.created_dir = self.out_dir in made
        else:
            parent, made = pin_output_dir("output_dir", os.path.dirname(self.out_dir))
            with parent:
                self.pin = parent.subdir(os.path.basename(self.out_dir), fresh=True)[0]
            made.append(self.out_dir)
            self.created_dir = True
        if made:
            self.emit(manifest.message([manifest.entry(path, "dir") for path in made]))

    def _refuse_replacing(self, names: list[str]) -> None:
        """A package never replaces a file in its output dir: a README.md, a GGUF file or anything else
        already there (a person's notes, another package's files, whose checksums would then lie) stays."""
        assert self.pin is not None
        there = []
        for name in names:
            try:
                os.stat(name, dir_fd=self.pin.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            there.append(name)
        if there:
            raise ExportError(f"output_dir {self.out_dir} already holds {', '.join(there)}; a package never "
                              "replaces a file: choose an empty or new dir, or move those files away")

    def _stage(self, name: str) -> tuple[str, str]:
        """(where a library writes the file: a new hidden file made by us in the open dir, the final
        real path). A symlink or anything else at the hidden name is replaced, never followed."""
        assert self.pin is not None
        hidden = f".{name}.partial"
        remove_entry(self.pin, hidden)
        self.emit(manifest.message([manifest.entry(self.pin.real_join(hidden), "file")]))
        os.close(self.pin.create_file(hidden))
        partial = self.pin.join(hidden)
        self.partials.append(partial)
        return partial, os.path.join(self.out_dir, name)

    # ----- the job -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        except BaseException:
            self._cleanup()
            raise
        finally:
            for pin in [*self.inputs, *([self.pin] if self.pin else [])]:
                pin.close()

    def _cleanup(self) -> None:
        removed = []
        for path in self.partials + self.finals:  # paths through the open dir: nothing else is reached
            try:
                os.unlink(path)
                removed.append(os.path.join(self.out_dir, os.path.basename(path)))
            except FileNotFoundError:
                pass
            except OSError as exc:  # pragma: no cover
                log.warning("could not remove %s: %s", path, exc)
        if self.pin is not None:
            self.pin.close()
        if self.created_dir:
            try:
                with pin_output_dir("output_dir", os.path.dirname(self.out_dir), create=False)[0] as parent:
                    os.rmdir(os.path.basename(self.out_dir), dir_fd=parent.fd)
                removed.append(self.out_dir)
            except Exception:  # noqa: BLE001 - not empty, or gone: what is left stays in the manifest
                pass
        try:
            self.emit(manifest.message(removed=removed))
        except Exception:  # noqa: BLE001 - the daemon is gone: the manifest keeps the entries
            pass

    def _run(self) -> dict[str, Any]:
        self.progress("prepare")
        model_dir, adapter, tokenizer_dir = self._inputs()
        spec = model_spec(model_dir)
        source = SourceModel(model_dir)
        plans = plan_tensors(spec, source)
        n_vocab = source.shapes["model.embed_tokens.weight"][0]
        vocab = load_vocab(tokenizer_dir, n_vocab)
        if adapter is not None and not self.merge and not adapter.uniform:
            self.info("the adapter has per-module ranks/alphas or rsLoRA: its scales are folded into lora_b")
        merge = adapter is not None and self.merge
        self._open_out_dir()
        if not os.access(self.pin.path, os.W_OK):
            raise ExportError(f"output dir {self.out_dir} is not writable")
        self._check_space(source.n_params, adapter)
        slug = _slug(self.config.get("name") or os.path.basename(os.path.normpath(self.config["checkpoint_dir"])))
        model_slug = slug if adapter is None or merge else f"{_slug(os.path.basename(os.path.normpath(shown(model_dir))))}-base"
        lora = adapter if merge else None
        names = [f"{model_slug}-{q}{ext}" for q in self.types for ext in (".gguf", ".Modelfile")] + ["README.md"]
        if adapter is not None and not merge:
            names.append(f"{slug}-lora-{'F32' if 'F32' in self.types else 'F16'}.gguf")
        self._refuse_replacing(names)  # before hours of work, and again before the files move in
        lora = adapter if merge else None
        self.info(f"exporting {spec.model_type} ({source.n_params:,} parameters) from {model_dir}"
                  + (f" with the LoRA adapter {self.config['checkpoint_dir']} "
                     f"{'merged' if merge else 'as a separate adapter file'}" if adapter else "")
                  + f" to {', '.join(self.types)}")

        outputs: list[dict[str, Any]] = []  # {"qtype", "kind", "partial", "final"}

        def write_direct(qtype: str, name: str, hidden: bool = False) -> dict[str, Any]:
            partial, final = self._stage(name)
            self.check_stop()

            def report(done: int, total: int, written: int) -> None:
                self.progress("convert", qtype, done, total, written)

            write_model(partial, spec, vocab, plans, source, qtype, f"{slug}", lora=lora, progress=report)
            entry = {"qtype": qtype, "kind": "model", "partial": partial, "final": final}
            if not hidden:
                outputs.append(entry)
            return entry

        for qtype in self.types:
            if qtype in DIRECT_TYPES:
                write_direct(qtype, f"{model_slug}-{qtype}.gguf")
        llama_types = [t for t in self.types if t in LLAMA_TYPES]
        if llama_types:
            source_file = next((o for t in ("F32", "F16") for o in outputs if o["qtype"] == t), None)
            intermediate = None
            if source_file is None:
                intermediate = write_direct("F16", f"{model_slug}-intermediate-F16.gguf", hidden=True)
                source_file = intermediate
            from .quantize import quantize_file

            for qtype in llama_types:
                self.check_stop()
                partial, final = self._stage(f"{model_slug}-{qtype}.gguf")
                self.progress("quantize", qtype, 0, len(plans), 0)
                quantize_file(source_file["partial"], partial, qtype,
                              progress=lambda n, q=qtype: self.progress("quantize", q, 0, len(plans), n))
                self.progress("quantize", qtype, len(plans), len(plans), os.path.getsize(partial))
                outputs.append({"qtype": qtype, "kind": "model", "partial": partial, "final": final})
            if intermediate is not None:
                os.unlink(intermediate["partial"])
                self.partials.remove(intermediate["partial"])
        adapter_entry = None
        if adapter is not None and not merge:
            atype = "F32" if "F32" in self.types else "F16"
            partial, final = self._stage(f"{slug}-lora-{atype}.gguf")

            def report_adapter(done: int, total: int, written: int) -> None:
                self.progress("adapter", atype, done, total, written)

            write_adapter(partial, spec, adapter, atype, f"{slug}-lora", progress=report_adapter)
            adapter_entry = {"qtype": atype, "kind": "adapter", "partial": partial, "final": final}

        verifications = []
        if not self.config.get("skip_verification"):
            verifications = self._verify(model_dir, tokenizer_dir, adapter, outputs, adapter_entry)

        files: list[dict[str, Any]] = []
        for entry in outputs + ([adapter_entry] if adapter_entry else []):
            self.progress("checksum", entry["qtype"])
            files.append({"path": entry["final"], "name": os.path.basename(entry["final"]), "kind": entry["kind"],
                          "quant_type": entry["qtype"], "size_bytes": os.path.getsize(entry["partial"]),
                          "sha256": sha256_file(entry["partial"]), "partial": entry["partial"]})
        stops = vocab.stop_tokens()
        for entry in outputs:
            name = os.path.basename(entry["final"]).rsplit(".gguf", 1)[0] + ".Modelfile"
            partial, final = self._stage(name)
            text = modelfile(os.path.basename(entry["final"]), vocab.chat_template, stops,
                             os.path.basename(adapter_entry["final"]) if adapter_entry else None)
            files.append(self._write_text(partial, final, text, "modelfile", entry["qtype"]))
        info = {"name": slug, "slug": slug, "task_id": self.config.get("task_id", ""),
                "checkpoint_id": self.config.get("checkpoint_id", ""), "architecture": spec.arch.gguf_arch,
                "model_type": spec.model_type, "parameters": source.n_params, "base_model": shown(model_dir),
                "lora": ("merged into the weights" if merge else "separate adapter file") if adapter else "none",
                "context_length": spec.n_ctx, "tokenizer": f"{vocab.model} ({vocab.pre}), {len(vocab.tokens)} tokens",
                "chat_template": vocab.chat_template}
        partial, final = self._stage("README.md")
        card = model_card(info, [f for f in files], verifications)
        files.append(self._write_text(partial, final, card, "model_card", ""))
        self.check_stop()
        self.progress("finish")
        wrote, staged = [], []
        self._refuse_replacing([os.path.basename(f["path"]) for f in files])
        for f in files:
            partial, name = f.pop("partial"), os.path.basename(f["path"])
            os.replace(partial, self.pin.join(name))  # a rename inside the open dir (a symlink there is replaced)
            self.finals.append(self.pin.join(name))
            wrote.append(manifest.file_in(self.pin, name))
            staged.append(os.path.join(self.out_dir, os.path.basename(partial)))
        self.partials.clear()
        self.emit(manifest.message(wrote, removed=staged))
        for f in files:
            self.emit(PackageFile(**f))
        seconds = round(time.time() - self.started, 2)
        self.info(f"package complete in {seconds:.1f}s: {len(files)} files in {self.out_dir}")
        return {"output_dir": self.out_dir, "files": files, "verifications": verifications,
                "architecture": spec.arch.gguf_arch, "model_type": spec.model_type, "parameters": source.n_params,
                "merged": bool(merge), "lora": adapter is not None, "seconds": seconds}

    def _write_text(self, partial: str, final: str, text: str, kind: str, qtype: str) -> dict[str, Any]:
        data = text.encode("utf-8")
        with open(partial, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return {"path": final, "name": os.path.basename(final), "kind": kind, "quant_type": qtype,
                "size_bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "partial": partial}

    def _verify(self, model_dir: str, tokenizer_dir: str, adapter: LoraAdapter | None,
                outputs: list[dict[str, Any]], adapter_entry: dict[str, Any] | None) -> list[dict[str, Any]]:
        from .verify import Reference, verify_gguf

        self.progress("verify")
        self.info("verifying: loading the Hugging Face model as the reference")
        ref = Reference.load(model_dir, tokenizer_dir, adapter.directory if adapter else None)
        results = []
        for i, entry in enumerate(outputs, start=1):
            self.check_stop()
            self.progress("verify", entry["qtype"], i - 1, len(outputs))
            result = verify_gguf(ref, entry["partial"], adapter_entry["partial"] if adapter_entry else None)
            result["quant_type"] = entry["qtype"]
            results.append(result)
            self.info(f"{entry['qtype']}: tokenizer {'identical' if result['tokenizer_match'] else 'MISMATCH'}, "
                      f"top-1 agreement {result['top1_agreement'] * 100:.1f}% on next tokens "
                      f"({result['top1_agreement_all_positions'] * 100:.1f}% on all positions), max logit diff "
                      f"{result['max_logit_diff']:.4g}, mean {result['mean_logit_diff']:.4g}")
            if not result["tokenizer_match"]:
                raise ExportError(f"verification failed: llama.cpp tokenizes differently from the Hugging Face "
                                  f"tokenizer ({'; '.join(result['tokenizer_problems'][:2])}); no file was kept")
            floor = _EXACT_TYPES.get(entry["qtype"])
            if floor is not None and result["top1_agreement_all_positions"] < floor:
                raise ExportError(f"verification failed: the {entry['qtype']} file agrees with the Hugging Face "
                                  f"model on only {result['top1_agreement_all_positions'] * 100:.1f}% of next "
                                  "tokens; no file was kept")
        self.progress("verify", "", len(outputs), len(outputs))
        return results
