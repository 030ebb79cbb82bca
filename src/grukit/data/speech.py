"""Spoken digits: the Free Spoken Digit Dataset (FSDD) as MFCC sequences.

A recording `{digit}_{speaker}_{take}.wav` becomes x (T, n_mfcc) = mfcc(wav) with
label y = digit. The official split puts takes 0–4 in the test set and takes 5–49
in training; we keep takes 5–9 of the training speakers apart for validation
(model choice, early stopping), so nothing is chosen on the test set.

The package ships the MFCC of all 3,000 FSDD recordings (float16, ~1.7 MB) in
`grukit/data/speech/fsdd_mfcc.npz`, derived from the dataset under CC BY-SA 4.0
(see DATA.md); `read_folder` computes the same features from a folder of wav files.

Example:
    >>> from grukit.data.speech import load_bundled, split
    >>> data = load_bundled()
    >>> train, val, test = split(data)
    >>> len(train), len(val), len(test), train.features[0].shape[1]
    (2400, 300, 300, 13)
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from grukit.errors import UsageError
from grukit.features import FeatureConfig, mfcc, pcm_to_float

log = logging.getLogger(__name__)

BUNDLED = "speech/fsdd_mfcc.npz"  # inside the grukit.data package
NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9-]+)_(?P<take>[0-9]{1,9})\.wav$", re.IGNORECASE)
TEST_TAKES = range(0, 5)  # official FSDD test split
VAL_TAKES = range(5, 10)  # ours: held out of training for model choice


@dataclass
class SpeechSet:
    """Variable-length feature sequences with their labels; index i is one recording."""

    features: list[np.ndarray]  # each (T_i, n_mfcc) float32
    digits: np.ndarray  # (n,) int64 in 0..9
    speakers: list[str]  # (n,) speaker names
    takes: np.ndarray  # (n,) int64 take numbers
    config: FeatureConfig  # how the features were computed

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, index: np.ndarray) -> "SpeechSet":
        """The recordings at `index` (an int array or a boolean mask)."""
        idx = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index, dtype=np.int64)
        return SpeechSet(
            [self.features[i] for i in idx], self.digits[idx], [self.speakers[i] for i in idx], self.takes[idx],
            self.config,
        )


def parse_name(name: str) -> tuple[int, str, int]:
    """(digit, speaker, take) from an FSDD file name like '7_jackson_32.wav'."""
    match = NAME.match(name)
    if match is None:
        raise UsageError(f"--dir: expected wav files named {{digit}}_{{speaker}}_{{take}}.wav (a take of up to 9 "
                         f"digits), got {name!r}")
    return int(match["digit"]), match["speaker"], int(match["take"])


MAX_RATE = 384_000  # Hz, the highest rate audio hardware records; a larger one is a damaged header
MAX_FLOAT = 1e3  # |sample| of a float wav (full scale ±1) beyond which the file is damaged: MFCC powers overflow


def _frame_fields(path: Path) -> str:
    """'C channels and block align B' as the first 'fmt ' chunk of the wav at `path` gives them."""
    head = path.read_bytes()[:4096]
    at = head.find(b"fmt ") + 8  # the chunk's data: format (2 bytes), channels (2), rate (4), bytes/s (4), align (2)
    if at < 8 or len(head) < at + 14:
        return "no readable fmt chunk"
    channels, align = int.from_bytes(head[at + 2:at + 4], "little"), int.from_bytes(head[at + 12:at + 14], "little")
    return f"{channels} channel{'s' * (channels != 1)} and block align {align}"


def read_wav(path: str | Path, sample_rate: int, argument: str = "--dir") -> np.ndarray:
    """Mono samples of `path` at `sample_rate` (stereo is averaged, other rates resampled); a file that is no
    readable wav is a UsageError naming `argument`."""
    import scipy.io.wavfile
    import scipy.signal

    path = Path(path)
    try:
        rate, samples = scipy.io.wavfile.read(path)
    except ZeroDivisionError:  # scipy divides by the header's channel count and by its bytes per channel
        raise UsageError(f"{argument}: expected at least one channel and a frame size (block align) of at least "
                         f"one byte per channel in the header of {path.name}, got {_frame_fields(path)}") from None
    except Exception as err:  # a truncated or forged header fails anywhere in scipy's parser
        raise UsageError(f"{argument}: {path.name} is not a readable wav file ({type(err).__name__}: {err})") from None
    if not 1 <= rate <= MAX_RATE:
        raise UsageError(f"{argument}: expected a sample rate in 1..{MAX_RATE} Hz in {path.name}, got {rate} Hz")
    if samples.ndim == 2 and samples.shape[1] == 0:
        raise UsageError(f"{argument}: expected at least one channel in {path.name}, got 0")
    if np.issubdtype(samples.dtype, np.floating) and not np.isfinite(samples).all():
        raise UsageError(f"{argument}: expected finite samples in {path.name}, got NaN or Inf")
    if np.issubdtype(samples.dtype, np.floating) and samples.size and np.abs(samples).max() > MAX_FLOAT:
        raise UsageError(f"{argument}: expected float samples within ±{MAX_FLOAT:g} (full scale is ±1) in {path.name}, "
                         f"got {np.abs(samples).max():.3g}")
    try:
        samples = pcm_to_float(samples)  # (S,) or (S, channels), in [-1, 1]
    except TypeError as err:
        raise UsageError(f"{argument}: expected int16, int32, uint8 or float samples in {path.name}, "
                         f"got {samples.dtype}") from err
    if samples.ndim == 2:
        samples = samples.mean(axis=1)  # (S,)
    if samples.size == 0:
        raise UsageError(f"{argument}: {path.name} holds no samples")
    if rate != sample_rate:
        g = np.gcd(rate, sample_rate)
        samples = scipy.signal.resample_poly(samples, sample_rate // g, rate // g)  # (S',)
    return samples


def read_folder(folder: str | Path, config: FeatureConfig = FeatureConfig()) -> SpeechSet:
    """MFCC of every `{digit}_{speaker}_{take}.wav` in `folder` (sorted by name)."""
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"--dir: expected a folder of FSDD wav files, got {str(folder)!r} (not a folder)")
    paths = sorted(p for p in root.iterdir() if p.suffix.lower() == ".wav" and p.is_file())  # no pipes
    if not paths:
        raise UsageError(f"--dir: expected wav files in {str(folder)!r}, found none")
    labels = [parse_name(p.name) for p in paths]  # checks every name before the slow part
    features = [mfcc(read_wav(p, config.sample_rate), config) for p in paths]
    log.info("read %d recordings from %s", len(paths), root)
    return SpeechSet(
        features,
        np.array([d for d, _, _ in labels], dtype=np.int64),
        [s for _, s, _ in labels],
        np.array([t for _, _, t in labels], dtype=np.int64),
        config,
    )


def save_features(data: SpeechSet, path: str | Path) -> None:
    """Write `data` as one compressed npz: float16 frames, lengths, labels, the config as JSON."""
    speakers = sorted(set(data.speakers))
    np.savez_compressed(
        path,
        frames=np.concatenate(data.features).astype(np.float16),  # (sum T_i, C)
        lengths=np.array([len(f) for f in data.features], dtype=np.int32),  # (n,)
        digits=data.digits.astype(np.uint8),  # (n,)
        speaker_index=np.array([speakers.index(s) for s in data.speakers], dtype=np.int32),  # (n,)
        speaker_names=np.array(speakers),  # (S,)
        takes=data.takes.astype(np.int64),  # (n,) a take may be any non-negative integer
        config=np.array(json.dumps(data.config.to_dict())),
    )


def load_features(path: str | Path) -> SpeechSet:
    """Read a file written by `save_features`."""
    with np.load(path, allow_pickle=False) as z:
        frames = z["frames"].astype(np.float32)  # (sum T_i, C)
        ends = np.cumsum(z["lengths"])  # (n,)
        features = np.split(frames, ends[:-1])
        names = [str(s) for s in z["speaker_names"]]
        speakers = [names[i] for i in z["speaker_index"]]
        config = FeatureConfig(**json.loads(str(z["config"])))
        return SpeechSet(features, z["digits"].astype(np.int64), speakers, z["takes"].astype(np.int64), config)


def load_bundled() -> SpeechSet:
    """The shipped MFCC of all 3,000 FSDD recordings."""
    return load_features(resources.files("grukit.data").joinpath(BUNDLED))


def split(data: SpeechSet) -> tuple[SpeechSet, SpeechSet, SpeechSet]:
    """(train, val, test): test = takes 0–4 (official), val = takes 5–9, train = takes 10+."""
    digits = sorted(set(data.digits.tolist()))
    if len(digits) < 2:
        raise UsageError(f"--dir: expected recordings of at least two digits (a classifier needs two classes), "
                         f"got only digit {digits[0]}")
    test = np.isin(data.takes, TEST_TAKES)
    val = np.isin(data.takes, VAL_TAKES)
    parts = data.subset(~test & ~val), data.subset(val), data.subset(test)
    for name, part in zip(("train", "validation", "test"), parts):
        if len(part) == 0:
            raise UsageError(
                f"--dir: the {name} split is empty (test = takes 0-4, validation = takes 5-9, "
                f"train = takes 10+); got takes {sorted(set(data.takes.tolist()))}"
            )
    return parts


if __name__ == "__main__":  # rebuild the bundled file: python -m grukit.data.speech RECORDINGS OUT.npz
    import sys

    save_features(read_folder(sys.argv[1]), sys.argv[2])
