"""grukit.data.speech: FSDD file names, wav folders, the bundled MFCC, the split."""
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from grukit.data import speech
from grukit.errors import UsageError
from grukit.features import FeatureConfig, mfcc

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "speech" / "fsdd" / "recordings"


def write_wav(folder: Path, name: str, seconds: float = 0.3, rate: int = 8000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16)
    scipy.io.wavfile.write(folder / name, rate, samples)
    return samples


def test_parse_name():
    assert speech.parse_name("7_jackson_32.wav") == (7, "jackson", 32)
    for bad in ("seven_jackson_1.wav", "7_jackson.wav", "7_jackson_1.mp3", "12_x_1.wav"):
        with pytest.raises(UsageError, match="--dir"):
            speech.parse_name(bad)


def test_read_folder_computes_mfcc_of_each_file(tmp_path):
    a = write_wav(tmp_path, "3_ann_0.wav", freq=300.0)
    b = write_wav(tmp_path, "5_bob_12.wav", seconds=0.5)
    data = speech.read_folder(tmp_path)
    assert len(data) == 2 and data.digits.tolist() == [3, 5] and data.speakers == ["ann", "bob"]
    assert data.takes.tolist() == [0, 12]
    np.testing.assert_array_equal(data.features[0], mfcc(a))
    np.testing.assert_array_equal(data.features[1], mfcc(b))


def test_read_folder_resamples_other_rates(tmp_path):
    write_wav(tmp_path, "1_ann_0.wav", seconds=0.5, rate=16000)
    data = speech.read_folder(tmp_path)
    assert data.features[0].shape == mfcc(np.zeros(4000)).shape  # 0.5 s at 8 kHz


def test_every_pcm_format_gives_the_features_of_the_same_sound(tmp_path):
    """int16, int32 and uint8 files, mono or stereo, at 8 or 16 kHz, are scaled to [-1, 1] before the
    channels are averaged and the rate converted, so the same sound gives the same MFCC."""
    rng = np.random.default_rng(0)
    freqs, phases = rng.uniform(50, 3900, 300), rng.uniform(0, 2 * np.pi, 300)  # a sound in every mel band

    def sound(rate: int) -> np.ndarray:
        t = np.arange(rate // 2) / rate  # (S,) 0.5 s
        s = np.sin(2 * np.pi * freqs[:, None] * t[None, :] + phases[:, None]).sum(0)  # (S,)
        return 0.5 * s / 40.0  # (S,) peak under 0.5

    as_pcm = {"int16": lambda x: (x * 32768).astype(np.int16), "int32": lambda x: (x * 2 ** 31).astype(np.int32),
              "uint8": lambda x: (x * 128 + 128).round().astype(np.uint8)}
    reference = mfcc(sound(8000))  # (K, C)
    for name, pcm in as_pcm.items():
        folder = tmp_path / name
        folder.mkdir()
        scipy.io.wavfile.write(folder / "1_ann_0.wav", 8000, pcm(sound(8000)))
        scipy.io.wavfile.write(folder / "1_ann_1.wav", 8000, np.stack([pcm(sound(8000))] * 2, axis=1))
        scipy.io.wavfile.write(folder / "1_ann_2.wav", 16000, pcm(sound(16000)))
        data = speech.read_folder(folder)
        for features in data.features:  # c0 near −31 here; a scale off by 2¹⁵ moves it by 100s
            assert features.shape == reference.shape
            np.testing.assert_allclose(features[:, 0], reference[:, 0], atol=1.0)


def test_unsupported_sample_format_and_upper_case_names(tmp_path):
    scipy.io.wavfile.write(tmp_path / "1_ann_0.WAV", 8000, np.zeros(800, np.int16))
    assert speech.read_folder(tmp_path).takes.tolist() == [0]
    scipy.io.wavfile.write(tmp_path / "2_ann_0.wav", 8000, np.zeros(800, np.int64))
    with pytest.raises(UsageError, match="--dir: expected int16, int32, uint8 or float samples in 2_ann_0.wav, "
                                         "got int64"):
        speech.read_folder(tmp_path)


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "not a folder"),
    (lambda p: p, "found none"),
])
def test_bad_folders_are_usage_errors(tmp_path, make, message):
    with pytest.raises(UsageError, match=message):
        speech.read_folder(make(tmp_path))


def test_a_huge_take_a_pipe_and_huge_float_samples(tmp_path):
    """Found by a review: a take of 20 digits overflowed int64 after every file was read; a pipe named *.wav
    hung the command; float samples of 1e300 overflowed the MFCC and were blamed on --lr."""
    with pytest.raises(UsageError, match=r"--dir: .*a take of up to 9 digits"):
        speech.parse_name("1_spk_99999999999999999999999.wav")
    write_wav(tmp_path, "3_ann_0.wav")
    os.mkfifo(tmp_path / "4_ann_0.wav")
    assert len(speech.read_folder(tmp_path)) == 1  # the pipe is not a recording
    (tmp_path / "4_ann_0.wav").unlink()
    scipy.io.wavfile.write(tmp_path / "4_ann_0.wav", 8000, np.full(800, 1e300))
    with pytest.raises(UsageError, match=r"--dir: expected float samples within ±1000 .* in 4_ann_0.wav, got 1e\+300"):
        speech.read_folder(tmp_path)


def test_bad_file_name_and_bad_wav_are_usage_errors(tmp_path):
    write_wav(tmp_path, "hello.wav")
    with pytest.raises(UsageError, match="hello.wav"):
        speech.read_folder(tmp_path)
    (tmp_path / "hello.wav").unlink()
    (tmp_path / "1_ann_0.wav").write_bytes(b"not a wav")
    with pytest.raises(UsageError, match="not a readable wav"):
        speech.read_folder(tmp_path)


@pytest.mark.parametrize("damage", ["truncated", "forged", "huge rate", "no channels", "empty frames",
                                    "half frames"])
def test_damaged_wav_headers_are_usage_errors(tmp_path, damage):
    """scipy's parser raised struct.error or UnboundLocalError (a traceback, exit 1), and a forged rate
    (2 GHz, coprime to 8 kHz) made the resampler build a filter of billions of taps; a header of 0 channels, or
    of fewer bytes per frame than channels, made scipy divide by zero, which the message showed as
    "ZeroDivisionError" (and then as "got 0" for 2 channels in frames of 1 byte)."""
    write_wav(tmp_path, "1_ann_0.wav")
    path = tmp_path / "1_ann_0.wav"
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[:20]
    elif damage == "forged":
        data = bytearray(b"RIFF1234WAVEjunk" + bytes(40))
    elif damage == "huge rate":
        data[24:28] = (2_000_000_011).to_bytes(4, "little")  # the fmt chunk's sample rate ...
        data[28:32] = (4_000_000_022).to_bytes(4, "little")  # ... and bytes per second, consistent with it
    elif damage == "no channels":
        data[22:24] = bytes(2)  # the fmt chunk's channel count
    elif damage == "empty frames":
        data[28:34] = bytes(6)  # the fmt chunk's bytes per second and per frame (block align), consistently
    else:
        data[22:24], data[32:34] = (2).to_bytes(2, "little"), (1).to_bytes(2, "little")  # 2 channels in 1 byte
        data[28:32] = (8000).to_bytes(4, "little")  # bytes per second, consistent with it at 8 kHz
    path.write_bytes(bytes(data))
    frame = {"no channels": "0 channels and block align 2", "empty frames": "1 channel and block align 0",
             "half frames": "2 channels and block align 1"}
    message = ("sample rate in 1..384000 Hz" if damage == "huge rate"
               else rf"a frame size \(block align\) of at least one byte per channel in the header of 1_ann_0.wav, "
                    rf"got {frame[damage]}$" if damage in frame
               else "not a readable wav file")
    with pytest.raises(UsageError, match=message):
        speech.read_folder(tmp_path)


def test_save_and_load_round_trip_in_float16(tmp_path):
    for i, d in enumerate((0, 4, 9)):
        write_wav(tmp_path, f"{d}_ann_{i}.wav", seconds=0.2 + 0.1 * i)
    data = speech.read_folder(tmp_path)
    speech.save_features(data, tmp_path / "f.npz")
    back = speech.load_features(tmp_path / "f.npz")
    assert back.speakers == data.speakers and back.config == data.config
    np.testing.assert_array_equal(back.digits, data.digits)
    np.testing.assert_array_equal(back.takes, data.takes)


def test_save_keeps_takes_and_speakers_past_255(tmp_path):
    """Takes decide the split: a take of 258 must not come back as 2 (a test take)."""
    config = FeatureConfig()
    names = [f"s{i:03d}" for i in range(300)]
    data = speech.SpeechSet([np.zeros((3, config.n_mfcc), np.float32)] * 300, np.zeros(300, np.int64), names,
                            np.arange(300, dtype=np.int64) + 10, config)
    speech.save_features(data, tmp_path / "f.npz")
    back = speech.load_features(tmp_path / "f.npz")
    assert back.takes.tolist() == data.takes.tolist() and back.speakers == names
    for x, y in zip(back.features, data.features):
        np.testing.assert_allclose(x, y, rtol=1e-3, atol=1e-2)


def test_bundled_set_and_official_split():
    data = speech.load_bundled()
    assert len(data) == 3000 and sorted(set(data.speakers)) == ["george", "jackson", "lucas", "nicolas", "theo",
                                                                 "yweweler"]
    assert np.bincount(data.digits).tolist() == [300] * 10
    assert data.config == FeatureConfig()
    train, val, test = speech.split(data)
    assert (len(train), len(val), len(test)) == (2400, 300, 300)
    assert set(test.takes.tolist()) == set(range(5)) and set(val.takes.tolist()) == set(range(5, 10))
    assert train.takes.min() == 10


@pytest.mark.skipif(not SHARED.is_dir(), reason="FSDD recordings not present in ../shared/data")
def test_bundled_features_are_the_mfcc_of_the_recordings():
    data = speech.load_bundled()
    for i in (0, 1234, 2999):
        name = f"{data.digits[i]}_{data.speakers[i]}_{data.takes[i]}.wav"
        _, samples = scipy.io.wavfile.read(SHARED / name)
        np.testing.assert_allclose(data.features[i], mfcc(samples), rtol=2e-3, atol=3e-2)


def test_a_folder_of_one_digit_is_refused(tmp_path):
    """It trained a one-class classifier (classify refuses one class; speech did not)."""
    write_wav(tmp_path, "1_ann_0.wav")
    write_wav(tmp_path, "1_bob_7.wav")
    write_wav(tmp_path, "1_bob_12.wav")
    with pytest.raises(UsageError, match="--dir: expected recordings of at least two digits .* got only digit 1"):
        speech.split(speech.read_folder(tmp_path))


def test_split_refuses_a_folder_without_test_takes(tmp_path):
    write_wav(tmp_path, "1_ann_20.wav")
    write_wav(tmp_path, "2_ann_20.wav")
    with pytest.raises(UsageError, match="split is empty"):
        speech.split(speech.read_folder(tmp_path))


def test_stereo_is_averaged_not_one_channel(tmp_path):
    """read_wav averages the channels of a stereo file (not the left channel alone)."""
    t = np.arange(800) / 8000
    left = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    right = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    path = tmp_path / "3_ann_0.wav"
    scipy.io.wavfile.write(path, 8000, np.stack([left, right], axis=1))
    np.testing.assert_allclose(speech.read_wav(path, 8000), (left + right) / 2, atol=1e-6)


def test_the_highest_allowed_rate_is_accepted(tmp_path):
    """A wav at exactly MAX_RATE (384 kHz) is read and resampled, not refused."""
    path = tmp_path / "3_ann_0.wav"
    scipy.io.wavfile.write(path, speech.MAX_RATE, np.zeros(4800, np.int16))
    samples = speech.read_wav(path, 8000)
    assert samples.shape == (100,)
