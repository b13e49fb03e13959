"""The embedded model's KV state for a prompt's fixed prefix, kept in memory and on disk.

Every call of a run opens with the same system message (the system prompt, the tool list and its
examples): about 600 tokens that take seconds to evaluate on two cores. llama.cpp reuses them only while
its one sequence still holds them; a call with another system message (a self-critique, a summary, a
plan) evicts them, and a new process starts with none. Their state, saved once, is restored in
milliseconds instead: from memory within a process, from ``<cache dir>/prefix-states`` in a new one.

A state file is named by a digest of what its bytes depend on (the model file, the prefix's tokens, the
context settings and the llama.cpp build); its body carries its own SHA-256, so a damaged or foreign
file is ignored and written again.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

SEQUENCE = 0  # llama-cpp-python keeps its one conversation in sequence 0
MIN_PREFIX_TOKENS = 64  # a shorter prefix evaluates about as fast as its state is restored
KEPT_IN_MEMORY = 4  # the agent's prefix and a few others (self-critique, summary): about 7 MB each
KEPT_ON_DISK = 8  # a planned run's system message changes with its plan: older files are pruned
FORMAT = b"firebreak-prefix-state-1\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


@dataclass(frozen=True)
class PrefixState:
    tokens: tuple[int, ...]
    data: bytes  # llama_state_seq_get_data of a sequence holding exactly ``tokens``


class PrefixStates:
    """Saved prefix states of one loaded model; call :meth:`prepare` before each generation, under its lock."""

    def __init__(self, llama: llama_cpp.Llama, folder: Path, model_path: Path) -> None:
        self.llama = llama
        self.folder = folder
        self._identity = _identity(llama, model_path)
        self._memory: OrderedDict[tuple[int, ...], PrefixState] = OrderedDict()

    def prepare(self, prompt: Sequence[int], prefix_length: int) -> None:
        """Make the context hold ``prompt``'s first ``prefix_length`` tokens, restored rather than re-evaluated.

        Afterwards llama.cpp's own prefix match evaluates only the rest of the prompt.
        """
        if prefix_length < MIN_PREFIX_TOKENS or prefix_length >= len(prompt):
            return
        tokens = tuple(prompt[:prefix_length])
        held = self.held(tokens)
        if held == prefix_length:
            return
        state = self._memory.get(tokens) or self._read(tokens)
        if state is None or not self._restore(state):
            state = self._evaluate(tokens, self.held(tokens))  # a refused restore left the context empty
            self._write(state)
        self._remember(state)

    def held(self, tokens: Sequence[int]) -> int:
        """How many of ``tokens`` the context holds already, from the start."""
        return shared_length(self.llama.input_ids[: self.llama.n_tokens].tolist(), tokens)

    def path_for(self, tokens: Sequence[int]) -> Path:
        key = hashlib.sha256(self._identity + _token_bytes(tokens)).hexdigest()[:32]
        return self.folder / f"{key}.kv"

    def _evaluate(self, tokens: tuple[int, ...], held: int) -> PrefixState:
        """Evaluate the prefix after what the context holds of it, and capture the sequence's state."""
        llama = self.llama
        llama.n_tokens = held  # eval drops every cell from here on
        llama.eval(tokens[held:])
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, buffer, size, SEQUENCE)
        return PrefixState(tokens, ctypes.string_at(buffer, written))

    def _restore(self, state: PrefixState) -> bool:
        llama = self.llama
        buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if not llama_cpp.llama_state_seq_set_data(llama.ctx, buffer, len(state.data), SEQUENCE):
            llama.n_tokens = 0  # the sequence may be half written: nothing in it can be trusted
            return False
        llama.input_ids[: len(state.tokens)] = state.tokens
        # The prompt goes on past the prefix, so the next generation decodes (and refreshes the logits).
        llama.n_tokens = len(state.tokens)
        return True

    def _remember(self, state: PrefixState) -> None:
        self._memory[state.tokens] = state
        self._memory.move_to_end(state.tokens)
        while len(self._memory) > KEPT_IN_MEMORY:
            self._memory.popitem(last=False)

    def _read(self, tokens: tuple[int, ...]) -> PrefixState | None:
        """The state saved for ``tokens``, or None when there is none or it does not check out."""
        try:
            content = self.path_for(tokens).read_bytes()
        except OSError:
            return None
        body = content[len(FORMAT) + _DIGEST_SIZE :]
        digest = content[len(FORMAT) : len(FORMAT) + _DIGEST_SIZE]
        if not content.startswith(FORMAT) or hashlib.sha256(body).digest() != digest:
            return None
        expected = _token_bytes(tokens)
        if body[:4] != struct.pack("<I", len(tokens)) or body[4 : 4 + len(expected)] != expected:
            return None
        return PrefixState(tokens, body[4 + len(expected) :])

    def _write(self, state: PrefixState) -> None:
        """Save ``state`` atomically (a reader sees the old file or the whole new one); a failure only costs speed."""
        body = struct.pack("<I", len(state.tokens)) + _token_bytes(state.tokens) + state.data
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".partial")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(FORMAT + hashlib.sha256(body).digest() + body)
                os.replace(temp, self.path_for(state.tokens))
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
            self._prune()
        except OSError:
            pass  # a read-only or full disk: the next process evaluates the prefix again

    def _prune(self) -> None:
        files = sorted(self.folder.glob("*.kv"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for path in files[KEPT_ON_DISK:]:
            path.unlink(missing_ok=True)


def shared_length(first: Sequence[int], second: Sequence[int]) -> int:
    """How many tokens the two sequences have in common from the start."""
    return next(
        (index for index, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), min(len(first), len(second))
    )


def _identity(llama: llama_cpp.Llama, model_path: Path) -> bytes:
    """What a saved state's bytes depend on besides its tokens."""
    stat = model_path.stat()
    params = llama.context_params
    parts = (
        model_path.name,
        stat.st_size,
        stat.st_mtime_ns,
        params.n_ctx,
        params.n_batch,
        params.n_ubatch,
        params.type_k,
        params.type_v,
        llama_cpp.__version__,
    )
    return repr(parts).encode("utf-8")


def _token_bytes(tokens: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(tokens)}i", *tokens)
