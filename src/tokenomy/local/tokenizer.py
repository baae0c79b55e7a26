"""The model's own tokenizer, read from its GGUF file: exact token counts offline.

llama.cpp's SentencePiece ("llama" vocabulary, as in Gemma and Llama 2) tokenizer,
re-implemented step for step so that counts match the server's own:

1. special-token partition (``tokenizer_st_partition``): control, user-defined and unknown
   tokens, longest first, are cut out of the text (control tokens only when special tokens
   are parsed, as they are for prompts);
2. each remaining fragment has spaces escaped to ``▁`` (and a leading ``▁`` if the
   vocabulary asks for a space prefix), then is merged pairwise, highest score first
   (``llm_tokenizer_spm_session``); pieces that form no token fall back to byte tokens.

Other vocabulary types (BPE, WPM, ...) raise :class:`UnsupportedTokenizer`; callers fall
back to the generic estimate.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass
from pathlib import Path

from tokenomy.local.gguf import read_metadata

# llama.cpp token types (GGUF ``tokenizer.ggml.token_type``).
_NORMAL, _UNKNOWN, CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
_SPACE = "\u2581"  # ▁


class UnsupportedTokenizer(ValueError):
    """The GGUF's vocabulary type is not one this module implements."""


@dataclass(frozen=True, slots=True)
class _Special:
    text: str
    id: int
    control: bool  # control or unknown: parsed only when special tokens are parsed


class GgufTokenizer:
    """Tokenize like llama.cpp does for a SentencePiece GGUF vocabulary."""

    def __init__(
        self,
        tokens: list[str],
        scores: list[float],
        types: list[int],
        *,
        bos_id: int | None,
        add_bos: bool,
        add_space_prefix: bool,
        eog_ids: frozenset[int] = frozenset(),
        unknown_id: int = 0,
        eos_id: int | None = None,
        add_eos: bool = False,
    ) -> None:
        self.tokens = tokens
        self.scores = scores
        self.types = types
        self.bos_id = bos_id
        self.add_bos = add_bos and bos_id is not None
        self.eos_id = eos_id
        self.add_eos = add_eos and eos_id is not None
        self.add_space_prefix = add_space_prefix
        self.eog_ids = eog_ids
        self._unknown = unknown_id
        self._ids: dict[str, int] = {}
        for i, text in enumerate(tokens):
            # As llama.cpp's token_to_id: empty texts renamed, the last id of a duplicate wins.
            self._ids[text or f"[EMPTY_{i}]"] = i
        specials = [
            _Special(text, i, types[i] != _USER_DEFINED)
            for i, text in enumerate(tokens)
            if types[i] in (CONTROL, _USER_DEFINED, _UNKNOWN) and text
        ]
        # Longest first, as llama.cpp's cache_special_tokens sorts them.
        specials.sort(key=lambda s: len(s.text.encode()), reverse=True)
        self._specials = specials

    @classmethod
    def from_gguf(cls, path: str | Path) -> GgufTokenizer:
        """Load the vocabulary from a GGUF file's header.

        Raises:
            UnsupportedTokenizer: not a SentencePiece ("llama") vocabulary.
            GGUFError / OSError: the file cannot be read as GGUF.
        """
        meta = read_metadata(path, prefixes=("tokenizer.ggml.",))
        model = meta.get("tokenizer.ggml.model")
        if model != "llama":
            raise UnsupportedTokenizer(
                f"{path}: tokenizer {model!r} is not supported (only SentencePiece 'llama')"
            )
        tokens: list[str] = meta["tokenizer.ggml.tokens"]
        scores: list[float] = meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
        types: list[int] = meta.get("tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
        bos = meta.get("tokenizer.ggml.bos_token_id")
        eos = meta.get("tokenizer.ggml.eos_token_id")
        eog = {eos, meta.get("tokenizer.ggml.eot_token_id")}
        # llama.cpp also treats these texts as end of generation when they are in the vocab.
        for text in ("<end_of_turn>", "<|eot_id|>", "<|im_end|>", "<|endoftext|>"):
            if text in tokens:
                eog.add(tokens.index(text))
        return cls(
            tokens,
            scores,
            types,
            bos_id=int(bos) if bos is not None else None,
            add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", True)),
            add_space_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", True)),
            eog_ids=frozenset(int(t) for t in eog if t is not None),
            unknown_id=int(meta.get("tokenizer.ggml.unknown_token_id", 0)),
            eos_id=int(eos) if eos is not None else None,
            add_eos=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        )

    # -- public ------------------------------------------------------------------------
    def encode(
        self, text: str, *, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        """Token ids of ``text`` (BOS/EOS added when ``add_special`` and the vocabulary asks)."""
        out: list[int] = []
        if add_special and self.add_bos:
            assert self.bos_id is not None
            out.append(self.bos_id)
        prev_special = True
        for fragment in self._partition(text, parse_special):
            if isinstance(fragment, int):
                out.append(fragment)
                prev_special = True
                continue
            piece = (" " if self.add_space_prefix and prev_special else "") + fragment
            self._spm(piece.replace(" ", _SPACE), out)
            prev_special = False
        if add_special and self.add_eos:
            assert self.eos_id is not None
            out.append(self.eos_id)
        return out

    def count(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> int:
        """Number of tokens of ``text``."""
        return len(self.encode(text, add_special=add_special, parse_special=parse_special))

    # -- steps -------------------------------------------------------------------------
    def _partition(self, text: str, parse_special: bool) -> list[str | int]:
        fragments: list[str | int] = [text] if text else []
        for special in self._specials:
            if special.control and not parse_special:
                continue
            needle = special.text
            if not any(isinstance(f, str) and needle in f for f in fragments):
                continue
            split: list[str | int] = []
            for f in fragments:
                if isinstance(f, int) or needle not in f:
                    split.append(f)
                    continue
                parts = f.split(needle)
                for k, part in enumerate(parts):
                    if k:
                        split.append(special.id)
                    if part:
                        split.append(part)
            fragments = split
        return fragments

    def _spm(self, text: str, out: list[int]) -> None:
        if not text:
            return
        ids, scores = self._ids, self.scores
        n = len(text)
        starts = list(range(n))
        lengths = [1] * n
        prev = list(range(-1, n - 1))
        nxt = [*range(1, n), -1]
        heap: list[tuple[float, int, int, int]] = []

        def add_bigram(left: int, right: int) -> None:
            if left == -1 or right == -1:
                return
            piece = text[starts[left] : starts[left] + lengths[left] + lengths[right]]
            token = ids.get(piece)
            if token is None:
                return
            # Max-heap on score; on equal scores the leftmost pair first (llama.cpp's order).
            heapq.heappush(heap, (-scores[token], left, right, len(piece)))

        for i in range(1, n):
            add_bigram(i - 1, i)
        while heap:
            _, left, right, size = heapq.heappop(heap)
            if lengths[left] == 0 or lengths[right] == 0 or lengths[left] + lengths[right] != size:
                continue
            lengths[left] += lengths[right]
            lengths[right] = 0
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            add_bigram(prev[left], left)
            add_bigram(left, nxt[left])

        # Every merge formed a vocabulary token, so a final symbol is a token or a single
        # character that is not one: that character falls back to its UTF-8 byte tokens.
        i = 0
        while i != -1:
            piece = text[starts[i] : starts[i] + lengths[i]]
            token = ids.get(piece)
            if token is not None:
                out.append(token)
            else:
                out.extend(ids.get(f"<0x{b:02X}>", self._unknown) for b in piece.encode())
            i = nxt[i]


_cache: dict[str, GgufTokenizer] = {}
_lock = threading.Lock()


def load(path: str | Path) -> GgufTokenizer:
    """The tokenizer of the GGUF at ``path``, loaded once per process (thread-safe)."""
    key = str(Path(path).resolve())
    tok = _cache.get(key)
    if tok is None:
        with _lock:
            tok = _cache.get(key)
            if tok is None:
                tok = _cache[key] = GgufTokenizer.from_gguf(key)
    return tok
