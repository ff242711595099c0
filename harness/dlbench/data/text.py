"""IMDb as integer sequences: Keras' imdb.npz convention, or raw aclImdb text tokenised by the harness.

Both end the way the Keras tutorial does: ``imdb.load_data(num_words=10000)`` then
``pad_sequences(x, maxlen=100)`` (pre-padding, pre-truncation), implemented here in numpy so no
framework is imported.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dlbench.errors import DataError

PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3
KERAS_SHUFFLE_SEED = 113  # imdb.load_data's default seed: reproduces its order exactly
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def pad_sequences(flat: np.ndarray, lengths: np.ndarray, maxlen: int) -> np.ndarray:
    """Keras' pad_sequences(padding='pre', truncating='pre', value=0) for sequences stored end to end.

    ``flat`` holds every sequence concatenated; ``lengths`` their lengths. Each row keeps the last
    ``maxlen`` tokens of its sequence, right-aligned, zeros in front.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.zeros((len(lengths), maxlen), dtype=np.int32)
    if len(flat) == 0:
        return out
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    position = np.arange(len(flat)) - np.repeat(starts, lengths)
    column = maxlen - np.repeat(lengths, lengths) + position
    keep = column >= 0
    out[rows[keep], column[keep]] = flat[keep]
    return out


def pad_list(sequences: Iterable[Sequence[int]], maxlen: int) -> np.ndarray:
    """pad_sequences for a list of lists."""
    seqs = list(sequences)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    return pad_sequences(flat, lengths, maxlen)


def _with_start(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prepend START to every sequence."""
    new_lengths = lengths + 1
    out = np.empty(int(new_lengths.sum()), dtype=np.int64)
    starts = np.cumsum(new_lengths) - new_lengths
    mask = np.ones(len(out), dtype=bool)
    mask[starts] = False
    out[starts] = START
    out[mask] = flat
    return out, new_lengths


def keras_sequences(path: Path, name: str, seqs: np.ndarray, vocab: int, maxlen: int, fix: str) -> np.ndarray:
    """Raw imdb.npz word ranks -> Keras' ids (start 1, OOV 2, rank + 3 below ``vocab``), padded to maxlen."""
    if seqs.dtype != object or seqs.ndim != 1 or len(seqs) == 0:
        raise DataError(f"{path}: {name} has dtype {seqs.dtype} and shape {seqs.shape}, expected a 1-D object "
                        f"array of word-index lists; {fix}")
    try:
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        values = list(itertools.chain.from_iterable(seqs))
        flat = np.array(values) if values else np.zeros(0, np.int64)
        if flat.ndim != 1 or flat.dtype.kind not in "iu":
            raise TypeError(f"word indices of dtype {flat.dtype}, expected integers")
        flat = flat.astype(np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"{path}: {name} is not a list of integer word-index sequences ({exc}); {fix}") from None
    if len(flat) and flat.min() < 0:
        raise DataError(f"{path}: {name} has negative word indices (min {flat.min()}), expected >= 0; {fix}")
    ids = flat + INDEX_FROM
    ids[ids >= vocab] = OOV
    ids, lengths = _with_start(ids, lengths)
    return pad_sequences(ids, lengths, maxlen)


def keras_labels(path: Path, name: str, y: np.ndarray, count: int, fix: str) -> np.ndarray:
    if y.ndim != 1 or len(y) != count or y.dtype.kind not in "iub":
        raise DataError(f"{path}: {name} has dtype {y.dtype} and shape {y.shape}, expected {count} integer "
                        f"labels; {fix}")
    if len(y) and (y.min() < 0 or y.max() > 1):
        raise DataError(f"{path}: {name} has labels {y.min()}..{y.max()}, expected 0/1; {fix}")
    return y.astype(np.int64)


def keras_shuffle(x_train, y_train, x_test, y_test):
    """The order imdb.load_data returns (its RandomState(113) shuffles train, then test)."""
    rng = np.random.RandomState(KERAS_SHUFFLE_SEED)
    train = np.arange(len(x_train))
    rng.shuffle(train)
    test = np.arange(len(x_test))
    rng.shuffle(test)
    return x_train[train], y_train[train], x_test[test], y_test[test]


# --- raw text (aclImdb) ----------------------------------------------------------------------------------


def tokenize(text: str) -> list[str]:
    """Lowercase, drop the reviews' HTML line breaks, keep words (letters/digits, inner apostrophes)."""
    return _WORD.findall(text.lower().replace("<br />", " "))


def review_files(folder: Path, split: str) -> tuple[list[Path], list[Path]]:
    """(negative, positive) review files of ``folder/split``, sorted by name."""
    return tuple(sorted((folder / split / label).glob("*.txt")) for label in ("neg", "pos"))  # type: ignore


def _read_reviews(files: Sequence[Path], fix: str) -> list[list[str]]:
    out = []
    for path in files:
        try:
            out.append(tokenize(path.read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc}); {fix}") from None
    return out


def build_vocabulary(docs: Iterable[list[str]], size: int) -> dict[str, int]:
    """The ``size`` most frequent words (ties by word) -> ids INDEX_FROM, INDEX_FROM + 1, ..."""
    counts = Counter(itertools.chain.from_iterable(docs))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]
    return {word: INDEX_FROM + i for i, (word, _) in enumerate(ranked)}


def encode(docs: Sequence[list[str]], vocab: dict[str, int], maxlen: int) -> np.ndarray:
    return pad_list(([START] + [vocab.get(w, OOV) for w in doc] for doc in docs), maxlen)


def read_aclimdb(folder: Path, vocab_size: int, maxlen: int, fix: str) -> dict[str, np.ndarray]:
    """x/y train/test from the aclImdb folder; the vocabulary comes from the training reviews only."""
    splits = {}
    for split in ("train", "test"):
        neg, pos = review_files(folder, split)
        if not neg or not pos:
            raise DataError(f"{folder / split}: expected reviews in neg/*.txt and pos/*.txt, found {len(neg)} "
                            f"and {len(pos)}; {fix}")
        splits[split] = (_read_reviews(neg + pos, fix), np.r_[np.zeros(len(neg)), np.ones(len(pos))])
    vocab = build_vocabulary(splits["train"][0], vocab_size - INDEX_FROM)
    return {
        "x_train": encode(splits["train"][0], vocab, maxlen), "y_train": splits["train"][1].astype(np.int64),
        "x_test": encode(splits["test"][0], vocab, maxlen), "y_test": splits["test"][1].astype(np.int64),
    }
