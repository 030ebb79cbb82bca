"""Speech features: log-mel spectrogram and MFCC, in NumPy/SciPy only.

For a signal s sampled at f_s, frame k takes n_fft samples starting at k·hop,
after pre-emphasis s'[t] = s[t] − α s[t−1] and a periodic Hann window w:

    P_k(f)  = |Σ_t w[t] s'[k·hop + t] e^{−2πi f t / n_fft}|² / n_fft      power spectrum
    M_k(m)  = log(Σ_f B[m, f] P_k(f) + ε)                                 log-mel, m < n_mels
    C_k(c)  = DCT-II_ortho(M_k)(c)                                        MFCC, c < n_mfcc

B is a bank of triangular filters spaced evenly on the HTK mel scale
mel(f) = 2595 log10(1 + f/700), between f_min and f_max (default f_s/2).

Why not librosa or torchaudio: torchaudio does not install here, and librosa pulls
numba/llvmlite for what is sixty lines of NumPy; scipy is already a dependency of the
applications (it reads the wav files).

Example:
    >>> import numpy as np
    >>> from grukit.features import FeatureConfig, mfcc
    >>> t = np.arange(8000) / 8000.0
    >>> mfcc(np.sin(2 * np.pi * 440.0 * t), FeatureConfig()).shape
    (50, 13)
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.fft


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 8000  # Hz; FSDD is recorded at 8 kHz
    n_fft: int = 256  # samples per frame (32 ms at 8 kHz), also the FFT size
    hop: int = 160  # samples between frame starts (20 ms at 8 kHz)
    n_mels: int = 40  # triangular mel filters
    n_mfcc: int = 13  # cepstral coefficients kept (c0 included)
    f_min: float = 0.0  # Hz, lowest filter edge
    f_max: float | None = None  # Hz, highest filter edge; None = sample_rate / 2
    preemphasis: float = 0.97  # α in s[t] − α s[t−1]; 0 turns it off
    eps: float = 1e-10  # floor inside the log

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop", "n_mels", "n_mfcc"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
            object.__setattr__(self, name, int(value))  # a NumPy integer kept as a plain int (JSON, hashing)
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc: expected at most n_mels={self.n_mels}, got {self.n_mfcc}")
        top = self.sample_rate / 2 if self.f_max is None else self.f_max
        if not 0.0 <= self.f_min < top <= self.sample_rate / 2:
            raise ValueError(
                f"f_min, f_max: expected 0 <= f_min < f_max <= sample_rate/2={self.sample_rate / 2}, "
                f"got f_min={self.f_min}, f_max={self.f_max}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: mel = 2595 log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    """Inverse of hz_to_mel."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """Triangular filters B (n_mels, n_fft//2 + 1), peak 1, edges evenly spaced in mel."""
    top = config.sample_rate / 2 if config.f_max is None else config.f_max
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(config.f_min), hz_to_mel(top), config.n_mels + 2))  # (M+2,)
    freqs = np.fft.rfftfreq(config.n_fft, d=1.0 / config.sample_rate)  # (F,)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]  # (M, 1) each
    rising = (freqs[None, :] - lower) / (centre - lower)  # (M, F)
    falling = (upper - freqs[None, :]) / (upper - centre)  # (M, F)
    return np.clip(np.minimum(rising, falling), 0.0, None)  # (M, F)


def pcm_to_float(samples: np.ndarray) -> np.ndarray:
    """float64 samples in [-1, 1] from PCM of any shape (e.g. (S,) mono or (S, channels)):

        int16  x / 2¹⁵        int32  x / 2³¹        uint8  (x − 128) / 128        float  x (finite)

    Example:
        >>> import numpy as np
        >>> pcm_to_float(np.array([-32768, 0, 16384], dtype=np.int16)).tolist()
        [-1.0, 0.0, 0.5]
    """
    s = np.asarray(samples)
    s = s.astype(s.dtype.newbyteorder("=")) if not s.dtype.isnative else s  # big-endian (RIFX) wavs: native order
    if s.dtype == np.int16:
        return s.astype(np.float64) / 32768.0  # same shape as samples
    if s.dtype == np.int32:
        return s.astype(np.float64) / 2147483648.0  # same shape as samples
    if s.dtype == np.uint8:
        return (s.astype(np.float64) - 128.0) / 128.0  # same shape as samples
    if not np.issubdtype(s.dtype, np.floating):
        raise TypeError(f"signal: expected int16/int32/uint8/float samples, got dtype {s.dtype}")
    if not np.all(np.isfinite(s)):
        raise ValueError("signal: contains NaN or Inf")
    return s.astype(np.float64)


def _as_signal(signal: np.ndarray) -> np.ndarray:
    """1-D float64 signal in [-1, 1] (`pcm_to_float`)."""
    s = np.asarray(signal)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"signal: expected a 1-D (mono) array of at least one sample, got shape {s.shape}")
    return pcm_to_float(s)


def power_spectrogram(signal: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """|STFT|² / n_fft per frame, (frames, n_fft//2 + 1); short signals are zero-padded to one frame."""
    s = _as_signal(signal)  # (S,)
    if config.preemphasis:
        s = np.append(s[:1], s[1:] - config.preemphasis * s[:-1])  # (S,)
    frames = 1 + max(0, len(s) - config.n_fft + config.hop - 1) // config.hop
    padded = np.zeros((frames - 1) * config.hop + config.n_fft)  # (S',)
    padded[: len(s)] = s
    index = np.arange(config.n_fft)[None, :] + config.hop * np.arange(frames)[:, None]  # (K, n_fft)
    window = np.hanning(config.n_fft + 1)[:-1]  # (n_fft,) periodic Hann
    spectrum = np.fft.rfft(padded[index] * window, n=config.n_fft, axis=1)  # (K, F)
    return (np.abs(spectrum) ** 2) / config.n_fft  # (K, F)


def log_mel(signal: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Log-mel spectrogram (frames, n_mels), float32."""
    power = power_spectrogram(signal, config)  # (K, F)
    mel = power @ mel_filterbank(config).T  # (K, M)
    return np.log(mel + config.eps).astype(np.float32)  # (K, M)


def mfcc(signal: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """MFCC (frames, n_mfcc), float32: orthonormal DCT-II of the log-mel spectrogram."""
    logmel = log_mel(signal, config).astype(np.float64)  # (K, M)
    return scipy.fft.dct(logmel, type=2, norm="ortho", axis=1)[:, : config.n_mfcc].astype(np.float32)  # (K, C)
