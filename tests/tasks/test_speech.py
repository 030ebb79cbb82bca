"""grukit speech: the classifier, its parameter count, the command on a tiny slice, bad input."""
import json

import numpy as np
import pytest
import scipy.io.wavfile
import torch
from PIL import Image

import grukit
from grukit.cli import main
from grukit.errors import UsageError
from grukit.plots import GATES_SIZE
from grukit.tasks.speech import SpeechClassifier, as_dataset, confusion_matrix


@pytest.mark.parametrize("cell, gates", [("gru", 3), ("lstm", 4), ("rnn", 1), ("torch-gru", 3)])
def test_parameter_count(cell, gates):
    C, H = 13, 64
    model = SpeechClassifier(n_features=C, hidden_size=H, cell=cell)
    assert sum(p.numel() for p in model.parameters()) == gates * (H * C + H * H + 2 * H) + H * 10 + 10


def test_padding_does_not_change_the_prediction():
    torch.manual_seed(0)
    model = SpeechClassifier(hidden_size=8).eval()
    x = torch.randn(1, 7, 13)
    padded = torch.cat([x, torch.randn(1, 5, 13)], dim=1)
    torch.testing.assert_close(model(x, torch.tensor([7])), model(padded, torch.tensor([7])))


def test_normalisation_buffers_standardise_training_frames():
    model = SpeechClassifier(hidden_size=4)
    frames = np.random.default_rng(0).normal(3.0, 2.0, size=(500, 13)).astype(np.float32)
    model.set_normalisation(frames)
    z = (torch.from_numpy(frames) - model.mean) / model.std
    torch.testing.assert_close(z.mean(0), torch.zeros(13), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(13), atol=1e-3, rtol=0)


def test_confusion_matrix_counts():
    counts = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_command_on_a_tiny_slice(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["speech", "--limit", "30", "--epochs", "1", "--hidden", "8", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["parameters"] == 3 * (8 * 13 + 8 * 8 + 16) + 8 * 10 + 10
    assert metrics["test_recordings"] == 30 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.array(metrics["confusion"]).sum() == 30
    # found by a QA run: speech, music and compare kept no record of their flags (--limit, --layers) or machine
    assert metrics["args"]["command"] == "speech" and metrics["args"]["limit"] == 30
    assert metrics["environment"]["torch"] == torch.__version__
    for name in ("report.md", "confusion.png", "loss.png", "model.safetensors"):
        assert (out / name).is_file()
    model = grukit.load(out / "model.safetensors")
    assert isinstance(model, SpeechClassifier) and model.config.hidden_size == 8
    assert "test accuracy" in capsys.readouterr().out
    # gates.png and the report's "What ran" (missing until a review), the subsets --limit made
    assert Image.open(out / "gates.png").size == GATES_SIZE
    z, r = model.gates(torch.randn(17, 13))
    assert z.shape == r.shape == (17, 8) and bool(((z > 0) & (z < 1)).all())
    report = (out / "report.md").read_text()
    assert "## What ran" in report and "![gates](gates.png)" in report
    assert "seeded random subset of at most 30 recordings: 30 train, 30 validation, 30 test" in report
    lstm = SpeechClassifier(hidden_size=4, cell="lstm")
    assert lstm.gates(torch.randn(5, 13)) is None  # only a grukit.GRU records its gates


def test_command_reads_a_wav_folder(tmp_path):
    rate = 8000
    t = np.arange(2400) / rate
    for digit in (1, 2):
        for take in (0, 5, 10, 11):
            tone = np.sin(2 * np.pi * (300 + 400 * digit) * t) * 5000
            scipy.io.wavfile.write(tmp_path / f"{digit}_ann_{take}.wav", rate, tone.astype(np.int16))
    out = tmp_path / "run"
    assert main(["speech", "--dir", str(tmp_path), "--epochs", "1", "--hidden", "4", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["train_recordings"], metrics["val_recordings"], metrics["test_recordings"]) == (4, 2, 2)
    report = (out / "report.md").read_text()  # found by a review: it said "FSDD spoken digits" of any folder
    assert f"{tmp_path.name} spoken digits" in report and "FSDD spoken digits" not in report
    # the saved model recognises a wav on its own, with the command's features (and any sample rate)
    from grukit.data.speech import read_folder
    from grukit.tasks.speech import predict, recognize

    model = grukit.load(out / "model.safetensors")
    assert model.config.features == metrics["features"]  # the checkpoint says how its inputs were computed
    p = recognize(model, tmp_path / "2_ann_0.wav")  # (10,)
    assert p.shape == (10,) and p.sum() == pytest.approx(1.0)
    test = read_folder(tmp_path).subset(np.array([4]))  # 2_ann_0.wav, as the command read it
    assert int(p.argmax()) == int(predict(model, as_dataset(test))[0])
    logits = model(torch.from_numpy(test.features[0])[None], torch.tensor([len(test.features[0])]))
    np.testing.assert_allclose(p, logits.softmax(-1)[0].detach().numpy(), rtol=1e-5)
    tone = np.sin(2 * np.pi * 1100 * np.arange(4800) / 16000) * 5000  # the same tone at 16 kHz
    scipy.io.wavfile.write(tmp_path / "x16.wav", 16000, tone.astype(np.int16))
    assert recognize(model, tmp_path / "x16.wav").shape == (10,)
    with pytest.raises(UsageError, match=r"^wav: .*is not a readable wav file"):
        recognize(model, tmp_path / "missing.wav")
    with pytest.raises(TypeError, match="model: expected a grukit speech model"):  # found by a review: an
        recognize(grukit.GRU(2, 3), tmp_path / "x16.wav")  # AttributeError on feature_config


def test_the_model_records_the_features_it_reads(tmp_path):
    from grukit.features import FeatureConfig, mfcc
    from grukit.tasks.speech import recognize

    features = FeatureConfig(n_fft=512, hop=80, n_mels=26, n_mfcc=12, preemphasis=0.0)
    torch.manual_seed(0)
    model = SpeechClassifier(n_features=12, hidden_size=4, features=features.to_dict()).eval()
    grukit.save(model, tmp_path / "m.safetensors")
    loaded = grukit.load(tmp_path / "m.safetensors")
    assert loaded.feature_config() == features and SpeechClassifier(hidden_size=4).feature_config() == FeatureConfig()
    assert hash(loaded.config) == hash(SpeechClassifier(n_features=12, hidden_size=4).config)  # still hashable
    tone = (np.sin(2 * np.pi * 700 * np.arange(4000) / 8000) * 5000).astype(np.int16)
    scipy.io.wavfile.write(tmp_path / "t.wav", 8000, tone)
    x = torch.from_numpy(mfcc(tone / 32768.0, features)).float()  # (T, 12), with the recorded settings
    expected = model(x[None], torch.tensor([len(x)])).softmax(-1)[0].detach().numpy()
    np.testing.assert_allclose(recognize(loaded, tmp_path / "t.wav"), expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match=r"^features: expected n_mfcc = n_features \(13\), got n_mfcc 12"):
        SpeechClassifier(hidden_size=4, features=features.to_dict())
    with pytest.raises(ValueError, match=r"^features: expected FeatureConfig fields, got .*hop"):
        SpeechClassifier(hidden_size=4, features={"hop": 0})


@pytest.mark.parametrize("setup, message", [
    ("missing", "not a folder"), ("empty", "found none"), ("badname", "digit"),
    ("nan", "--dir: expected finite samples in 0_ann_0.wav, got NaN or Inf"),
    ("rate0", "--dir: expected a sample rate in 1..384000 Hz in 0_ann_0.wav, got 0 Hz"),
])
def test_bad_folders_exit_2_with_one_line(tmp_path, exits_2_with, setup, message):
    folder = tmp_path / "wavs"
    if setup != "missing":
        folder.mkdir()
    if setup == "badname":
        scipy.io.wavfile.write(folder / "one.wav", 8000, np.zeros(800, np.int16))
    if setup == "nan":
        samples = np.zeros(800, np.float32)
        samples[100] = np.nan
        scipy.io.wavfile.write(folder / "0_ann_0.wav", 8000, samples)
    if setup == "rate0":
        scipy.io.wavfile.write(folder / "0_ann_0.wav", 8000, np.zeros(800, np.int16))
        data = bytearray((folder / "0_ann_0.wav").read_bytes())
        data[24:32] = bytes(8)  # the fmt chunk's sample rate and byte rate
        (folder / "0_ann_0.wav").write_bytes(bytes(data))
    out = tmp_path / "run"
    exits_2_with(["speech", "--dir", str(folder), "--out", str(out)], message, out)


@pytest.mark.parametrize("argv, message", [
    (["--hidden", "0"], "--hidden: expected an integer >= 1, got 0"),
    (["--hidden", "-3"], "--hidden: expected an integer >= 1, got -3"),
    (["--layers", "0"], "--layers: expected an integer >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size: expected an integer >= 1, got 0"),
])
def test_bad_sizes_exit_2_naming_the_flag(tmp_path, exits_2_with, argv, message):
    out = tmp_path / "run"
    exits_2_with(["speech", "--limit", "30", "--epochs", "1", *argv, "--out", str(out)], message, out)


def test_normalisation_is_fitted_on_the_training_frames_only():
    """Found by a review: the model's mean and std are the training frames' alone, not mixed with val or test."""
    from grukit.data.speech import SpeechSet
    from grukit.features import FeatureConfig
    from grukit.tasks.speech import SpeechConfig, train
    from grukit.train import TrainConfig

    rng = np.random.default_rng(0)

    def part(n, loc, scale, takes):  # n recordings of 4..9 frames (T_i, 13), digits 0 and 1
        features = [rng.normal(loc, scale, size=(int(rng.integers(4, 10)), 13)).astype(np.float32) for _ in range(n)]
        return SpeechSet(features, np.arange(n) % 2, ["ann"] * n, np.full(n, takes), FeatureConfig())

    splits = (part(6, 1.0, 2.0, 10), part(4, -50.0, 9.0, 5), part(4, 100.0, 30.0, 0))  # train, val, test far apart
    config = SpeechConfig(hidden_size=4, backend="fused")
    result = train(config, splits, TrainConfig(epochs=1, batch_size=4, seed=0, progress=False), None)
    frames = np.concatenate(splits[0].features)  # (F, 13) the training frames alone
    model = result["model"]
    torch.testing.assert_close(model.mean, torch.from_numpy(frames.mean(0)), atol=1e-5, rtol=1e-5)  # (13,)
    torch.testing.assert_close(model.std, torch.from_numpy(frames.std(0) + 1e-5), atol=1e-5, rtol=1e-5)  # (13,)


def _affine_pair(seed=0):
    """Two identical models, one normalised on frames, the other on 5·frames + 3."""
    torch.manual_seed(seed)
    a = SpeechClassifier(hidden_size=6).eval()
    b = SpeechClassifier(hidden_size=6).eval()
    b.load_state_dict(a.state_dict())
    frames = np.random.default_rng(seed).normal(0.5, 1.5, size=(200, 13)).astype(np.float32)
    a.set_normalisation(frames)
    b.set_normalisation(5.0 * frames + 3.0)
    return a, b


def test_forward_is_invariant_to_an_affine_rescaling_of_features():
    """forward standardises by both mean and std: scaling the data and its statistics alike changes nothing."""
    a, b = _affine_pair()
    x = torch.randn(3, 9, 13)
    lengths = torch.tensor([9, 4, 6])
    torch.testing.assert_close(a(x, lengths), b(5.0 * x + 3.0, lengths), atol=1e-4, rtol=1e-4)


def test_gates_read_the_normalised_features():
    """gates() normalises its input as forward does (same gates for affinely rescaled data and statistics)."""
    a, b = _affine_pair(1)
    x = torch.randn(8, 13)
    with torch.no_grad():
        za, ra = a.gates(x)
        zb, rb = b.gates(5.0 * x + 3.0)
    torch.testing.assert_close(za, zb, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ra, rb, atol=1e-4, rtol=1e-4)


def test_bidirectional_classifier_uses_both_directions():
    """A bidirectional classifier's head reads both directions' last states (N, 2H) and gives (N, classes)."""
    torch.manual_seed(0)
    model = SpeechClassifier(hidden_size=5, bidirectional=True).eval()
    assert model.head.in_features == 10
    x = torch.randn(2, 7, 13)
    assert model(x, torch.tensor([7, 3])).shape == (2, 10)
