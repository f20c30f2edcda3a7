"""Read `motionsight dataset export` files back with the trainers' own dataset code.

Needs the trainers installed, which the pack itself never needs: run it from a separate virtual
environment, e.g. (the pack's own environment stays untouched)

    python -m venv /tmp/trainers && /tmp/trainers/bin/pip install datasets llamafactory trl ms-swift
    /tmp/trainers/bin/python scripts/check_dataset_exports.py EXPORT_DIR --media-root VIDEOS/

What it runs, per trainer (a trainer that does not import is reported and skipped):

* LLaMA-Factory: ``get_dataset_list`` on the written ``dataset_info.json``, then ``align_dataset``
  (its sharegpt converter: role order, ranking pairs, media paths under ``media_dir``), then the
  Qwen2-VL multimodal plugin's ``_validate_messages`` (``<video>`` tokens match the videos);
* ms-swift: ``AutoPreprocessor`` (its messages preprocessor: roles, ``rejected_response``,
  ``videos``), strict;
* TRL: ``is_conversational`` and ``maybe_apply_chat_template`` with a chat template on every
  SFT and preference row;
* 2U1/Qwen2-VL-Finetune is not on PyPI: its ``src/dataset/{sft,dpo}_dataset.py`` read a JSON
  list, ``video`` (joined to ``--image_folder`` unless it exists), ``conversations`` of
  ``from``/``value`` turns with ``<video>``, and ``prompt``/``chosen``/``rejected``: checked here
  field by field.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import types
from pathlib import Path

FAILURES: list[str] = []


def _report(trainer: str, ok: bool, what: str) -> None:
    print(f"[{'ok' if ok else 'FAIL'}] {trainer}: {what}")
    if not ok:
        FAILURES.append(f"{trainer}: {what}")


def check_llamafactory(folder: Path, media_root: Path) -> None:
    import transformers  # noqa: F401 -- first, so a missing torchaudio is seen as missing

    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # audio is not used
    from datasets import load_dataset
    from llamafactory.data.converter import align_dataset
    from llamafactory.data.mm_plugin import get_mm_plugin
    from llamafactory.data.parser import get_dataset_list
    from llamafactory.hparams import DataArguments
    from transformers import Seq2SeqTrainingArguments

    data_args = DataArguments(dataset_dir=str(folder), media_dir=str(media_root))
    training_args = Seq2SeqTrainingArguments(output_dir=tempfile.mkdtemp())
    plugin = get_mm_plugin("qwen2_vl", image_token="<|image_pad|>", video_token="<|video_pad|>")
    for attr in get_dataset_list(["motion_sft", "motion_dpo"], str(folder)):
        raw = load_dataset("json", data_files=str(folder / attr.dataset_name), split="train")
        aligned = align_dataset(raw, attr, data_args, training_args)
        rows = list(aligned)
        bad = [i for i, r in enumerate(rows) if not r["_prompt"] or not r["_response"]
               or len(r["_response"]) != (2 if attr.ranking else 1)]  # fmt: skip
        missing = [v for r in rows for v in r["_videos"] or [] if not os.path.isfile(v)]
        for r in rows:
            plugin._validate_messages(r["_prompt"] + r["_response"][:1], [], r["_videos"], [])  # noqa: SLF001
        _report("llamafactory", not bad and not missing and len(rows) == len(raw),
                f"{attr.dataset_name}: {len(rows)} rows aligned (ranking={attr.ranking}), "
                f"{len(bad)} broken, {len(missing)} videos not found")  # fmt: skip


def check_ms_swift(folder: Path) -> None:
    import transformers  # noqa: F401

    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    from datasets import load_dataset
    from swift.dataset.preprocessor import AutoPreprocessor

    for name in ("motion_sft.jsonl", "motion_dpo.jsonl"):
        raw = load_dataset("json", data_files=str(folder / name), split="train")
        out = AutoPreprocessor()(raw, num_proc=1, strict=True)
        rows = list(out)
        dpo = name.startswith("motion_dpo")
        good = len(rows) == len(raw) and all(
            r["messages"][-1]["role"] == "assistant" and r["videos"]
            and (not dpo or r.get("rejected_response"))
            for r in rows
        )  # fmt: skip
        _report("ms-swift", good, f"{name}: {len(rows)} rows preprocessed, columns {sorted(out.column_names)}")


TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}"
    "{{ m['content'] }}{% else %}{% for c in m['content'] %}{% if c['type'] == 'video' %}"
    "<|vision_start|><|video_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def check_trl(folder: Path) -> None:
    from datasets import load_dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"x": 0}, unk_token="x")))
    tokenizer.chat_template = TEMPLATE
    for name in ("motion_sft.jsonl", "motion_dpo.jsonl"):
        rows = list(load_dataset("json", data_files=str(folder / name), split="train"))
        texts = [maybe_apply_chat_template(r, tokenizer) for r in rows]
        key = "prompt" if name.startswith("motion_dpo") else "text"
        good = all(is_conversational(r) for r in rows) and all(
            t[key].count("<|video_pad|>") == 1 for t in texts
        )
        _report("trl", good, f"{name}: {len(rows)} conversational rows templated, one video each")


def check_qwen2vl_finetune(folder: Path, media_root: Path) -> None:
    sft = json.loads((folder / "motion_sft.json").read_text())
    dpo = json.loads((folder / "motion_dpo.json").read_text())

    def video_ok(v: str) -> bool:
        return os.path.exists(v) or os.path.isfile(os.path.join(media_root, v))

    good = isinstance(sft, list) and all(
        video_ok(r["video"]) and r["conversations"][0]["from"] == "human"
        and r["conversations"][0]["value"].count("<video>") == 1
        and [t["from"] for t in r["conversations"]] == ["human", "gpt"]
        for r in sft
    )  # fmt: skip
    _report("qwen2vl-finetune", good, f"motion_sft.json: {len(sft)} rows (fields of sft_dataset.py)")
    good = isinstance(dpo, list) and all(
        video_ok(r["video"]) and r["prompt"].count("<video>") == 1
        and isinstance(r["chosen"], str) and isinstance(r["rejected"], str)
        for r in dpo
    )  # fmt: skip
    _report("qwen2vl-finetune", good, f"motion_dpo.json: {len(dpo)} rows (fields of dpo_dataset.py)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("export_dir", type=Path, help="the --out of `motionsight dataset export`")
    parser.add_argument("--media-root", type=Path, required=True, help="the export's --media-root")
    args = parser.parse_args()
    checks = [
        ("llamafactory", lambda: check_llamafactory(args.export_dir / "llamafactory", args.media_root)),
        ("ms-swift", lambda: check_ms_swift(args.export_dir / "ms-swift")),
        ("trl", lambda: check_trl(args.export_dir / "trl")),
        ("qwen2vl-finetune", lambda: check_qwen2vl_finetune(args.export_dir / "qwen2vl-finetune", args.media_root)),
    ]
    for name, check in checks:
        try:
            check()
        except ImportError as exc:
            print(f"[skip] {name}: not importable here ({exc})")
        except Exception as exc:  # noqa: BLE001 -- reported per trainer
            _report(name, False, f"{type(exc).__name__}: {exc}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
