"""grukit.features: mel filterbank, log-mel and MFCC against hand computations."""
import numpy as np
import pytest
import scipy.fft

from grukit.features import (
    FeatureConfig,
    hz_to_mel,
    log_mel,
    mel_filterbank,
    mel_to_hz,
    mfcc,
    pcm_to_float,
    power_spectrogram,
)


def test_mel_scale_round_trip_and_htk_value():
    f = np.array([0.0, 440.0, 1000.0, 4000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, atol=1e-9)
    assert hz_to_mel(700.0) == pytest.approx(2595.0 * np.log10(2.0))


def test_filterbank_is_triangles_between_mel_spaced_edges():
    config = FeatureConfig()
    bank = mel_filterbank(config)
    assert bank.shape == (config.n_mels, config.n_fft // 2 + 1)
    assert bank.min() >= 0.0 and bank.max() <= 1.0
    assert (bank.sum(axis=1) > 0).all()  # no empty filter at 8 kHz with 40 bands and 256-point FFT
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # centres rise with the filter index


def test_filterbank_values_are_the_documented_triangles():
    """Each filter rises linearly from 0 at its lower edge to 1 at its centre and falls to 0 at its upper edge.

    Found by a review: dividing the falling slope by (upper − lower) passed every test."""
    for config in (FeatureConfig(), FeatureConfig(sample_rate=16000, n_fft=512, n_mels=26, n_mfcc=13, f_min=100.0,
                                                  f_max=7000.0)):
        top = config.sample_rate / 2 if config.f_max is None else config.f_max
        mels = np.linspace(2595.0 * np.log10(1.0 + config.f_min / 700.0), 2595.0 * np.log10(1.0 + top / 700.0),
                           config.n_mels + 2)  # (M+2,) HTK mel, by hand
        edges = 700.0 * (10.0 ** (mels / 2595.0) - 1.0)  # (M+2,) Hz
        freqs = np.arange(config.n_fft // 2 + 1) * config.sample_rate / config.n_fft  # (F,) bin centres, Hz
        expected = np.zeros((config.n_mels, len(freqs)))  # (M, F)
        for m in range(config.n_mels):
            lower, centre, upper = edges[m], edges[m + 1], edges[m + 2]
            for j, f in enumerate(freqs):
                if lower <= f <= centre:
                    expected[m, j] = (f - lower) / (centre - lower)
                elif centre < f <= upper:
                    expected[m, j] = (upper - f) / (upper - centre)
        bank = mel_filterbank(config)  # (M, F)
        np.testing.assert_allclose(bank, expected, rtol=1e-12, atol=1e-12)
        # neighbouring triangles share edges, so they sum to 1 between the first and the last centre
        inside = (freqs >= edges[1]) & (freqs <= edges[-2])  # (F,)
        assert inside.sum() > 10
        np.testing.assert_allclose(bank[:, inside].sum(axis=0), 1.0, rtol=1e-12)


def test_preemphasis_is_the_documented_first_difference():
    """The spectrum is that of s'[t] = s[t] − α s[t−1] (s'[0] = s[0]), worked out here by a direct DFT.

    Found by a review: flipping the sign to s[t] + α s[t−1] passed every test."""
    rng = np.random.default_rng(3)
    s = rng.uniform(-1.0, 1.0, 600)  # (S,)
    alpha = 0.97
    emphasised = s.copy()  # (S,)
    for t in range(1, len(s)):
        emphasised[t] = s[t] - alpha * s[t - 1]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)  # (256,) periodic Hann
    k = np.arange(129)[:, None]  # (129, 1)
    power = power_spectrogram(s, FeatureConfig(preemphasis=alpha))  # (K, 129)
    for frame in range(3):
        x = emphasised[160 * frame:160 * frame + 256] * window  # (256,)
        dft = (x[None, :] * np.exp(-2j * np.pi * k * np.arange(256)[None, :] / 256)).sum(axis=1)  # (129,)
        np.testing.assert_allclose(power[frame], np.abs(dft) ** 2 / 256, rtol=1e-8, atol=1e-10)
    with_mfcc = mfcc(s, FeatureConfig(preemphasis=alpha))  # (K, 13)
    np.testing.assert_allclose(with_mfcc, mfcc(emphasised, FeatureConfig(preemphasis=0.0)), rtol=1e-5, atol=1e-5)


def test_frames_follow_hop_and_short_signals_pad_to_one_frame():
    config = FeatureConfig()
    assert power_spectrogram(np.zeros(8000), config).shape == (50, 129)  # 1 + ceil((8000-256)/160)
    assert power_spectrogram(np.zeros(10), config).shape == (1, 129)
    assert power_spectrogram(np.zeros(257), config).shape == (2, 129)


def test_pure_tone_lands_in_the_filter_centred_on_it():
    config = FeatureConfig(preemphasis=0.0)
    t = np.arange(8000) / 8000.0
    for freq in (300.0, 1200.0, 3000.0):
        spectrum = log_mel(np.sin(2 * np.pi * freq * t), config).mean(axis=0)
        centres = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(4000.0), config.n_mels + 2))[1:-1]
        assert abs(centres[spectrum.argmax()] - freq) <= np.diff(centres).max()


def test_power_spectrum_matches_a_direct_dft_of_one_frame():
    config = FeatureConfig(preemphasis=0.0)
    rng = np.random.default_rng(0)
    s = rng.standard_normal(600)
    frame = s[160:160 + 256] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256))
    k = np.arange(129)[:, None]
    dft = (frame[None, :] * np.exp(-2j * np.pi * k * np.arange(256)[None, :] / 256)).sum(axis=1)
    np.testing.assert_allclose(power_spectrogram(s, config)[1], np.abs(dft) ** 2 / 256, rtol=1e-8, atol=1e-10)


def test_mfcc_is_the_orthonormal_dct_of_log_mel():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(3000)
    config = FeatureConfig()
    M = log_mel(s, config).astype(np.float64)
    n = config.n_mels
    basis = np.cos(np.pi * np.arange(n)[:, None] * (2 * np.arange(n)[None, :] + 1) / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    np.testing.assert_allclose(mfcc(s, config), (M @ basis.T)[:, :13], rtol=1e-4, atol=1e-4)
    all_coefficients = mfcc(s, FeatureConfig(n_mfcc=config.n_mels)).astype(np.float64)
    np.testing.assert_allclose(scipy.fft.idct(all_coefficients, norm="ortho", axis=1), M, atol=1e-3)


def test_int16_input_is_scaled_to_unit_range():
    rng = np.random.default_rng(2)
    s = (rng.standard_normal(2000) * 3000).astype(np.int16)
    np.testing.assert_allclose(mfcc(s), mfcc(s.astype(np.float64) / 32768.0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("signal, error", [(np.zeros((10, 2)), ValueError), (np.array([0.0, np.nan]), ValueError),
                                           (np.array(["a", "b"]), TypeError), (np.zeros(0), ValueError)])
def test_bad_signals_are_refused(signal, error):
    with pytest.raises(error, match="signal"):
        mfcc(signal)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="n_mfcc"):
        FeatureConfig(n_mfcc=50)
    with pytest.raises(ValueError, match="hop"):
        FeatureConfig(hop=0)
    with pytest.raises(ValueError, match="f_max"):
        FeatureConfig(f_max=5000.0)
    with pytest.raises(ValueError, match="^n_fft: expected a positive int, got True"):
        FeatureConfig(n_fft=True)
    config = FeatureConfig(sample_rate=np.int64(16000))  # a NumPy integer, kept as an int
    assert type(config.sample_rate) is int and config == FeatureConfig(sample_rate=16000)


def test_pcm_of_every_width_and_any_shape_is_scaled_to_unit_range():
    stereo = np.array([[-32768, 32767], [0, 16384]], dtype=np.int16)  # (S, 2)
    np.testing.assert_array_equal(pcm_to_float(stereo), stereo / 32768.0)
    assert pcm_to_float(np.array([-2**31, 2**30], dtype=np.int32)).tolist() == [-1.0, 0.5]
    assert pcm_to_float(np.array([0, 128, 192], dtype=np.uint8)).tolist() == [-1.0, 0.0, 0.5]
    big = np.array([-32768, 16384], dtype=">i2")  # a big-endian (RIFX) wav's samples: refused until a review
    assert pcm_to_float(big).tolist() == [-1.0, 0.5]
    assert pcm_to_float(np.array([0.25], dtype=">f4")).tolist() == [0.25]
    with pytest.raises(TypeError, match="int64"):
        pcm_to_float(np.zeros(3, dtype=np.int64))


def test_frame_count_is_one_plus_the_ceiling_of_the_remaining_samples_over_hop():
    """Guards frames = 1 + ceil((S − n_fft)/hop): where S − n_fft is a multiple of hop no extra all-padding frame
    is added (the existing lengths 8000, 10 and 257 all read the same with floor(…)+1)."""
    config = FeatureConfig()
    for samples, frames in ((256, 1), (416, 2), (417, 3), (256 + 160 * 7, 8)):
        assert power_spectrogram(np.zeros(samples), config).shape == (frames, 129), samples


def test_silence_gives_the_log_of_eps_not_minus_infinity():
    """Guards the ε floor inside the log: a silent signal's log-mel is log(ε) everywhere, finite."""
    config = FeatureConfig(eps=1e-6)
    out = log_mel(np.zeros(800), config)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, np.log(np.float32(1e-6)), rtol=1e-6)



@pytest.mark.parametrize("f_min,f_max", [(-1.0, None), (1000.0, 1000.0)])
def test_band_edges_outside_the_documented_range_are_refused(f_min, f_max):
    """Guards 0 <= f_min < f_max: a negative f_min, or f_min == f_max (zero-width filters, NaN features), is
    refused."""
    with pytest.raises(ValueError, match="f_min, f_max: expected 0 <= f_min < f_max"):
        FeatureConfig(f_min=f_min, f_max=f_max)
