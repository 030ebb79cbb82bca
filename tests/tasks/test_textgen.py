"""grukit textgen and grukit sample end to end on a slice of tiny Shakespeare; the streamed loss by hand."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import grukit
from grukit import cli
from grukit.data.text import load_shakespeare
from grukit.plots import GATES_SIZE, SIZE
from grukit.tasks import textgen
from grukit.tasks.textgen import stream_loss
from grukit.tasks.textgen_model import CharLM, generate


def test_textgen_then_sample(tmp_path, capsys):
    out = tmp_path / "tg"
    code = cli.main(["textgen", "--limit", "20000", "--hidden", "16", "--embedding", "8", "--seq-len", "32",
                     "--steps-per-epoch", "4", "--epochs", "1", "--samples", "1", "--sample-length", "40",
                     "--out", str(out), "--backend", "fused"])
    printed = capsys.readouterr().out
    assert code == 0
    for name in ("metrics.json", "report.md", "model.safetensors", "metrics.csv", "loss.png", "gates.png"):
        assert (out / name).is_file() and str(out / name) in printed, name
    assert Image.open(out / "loss.png").size == SIZE and Image.open(out / "gates.png").size == GATES_SIZE
    m = json.loads((out / "metrics.json").read_text())
    assert m["val_bpc"] == pytest.approx(m["val_loss"] / math.log(2))
    assert math.log(2) < m["val_loss"] < math.log(m["vocabulary"]) + 0.5  # 1 step of 4: near uniform, not NaN
    assert m["train_chars"] == 18000 and m["val_chars"] == 2000 and len(m["samples"][0]) == 41
    report = (out / "report.md").read_text()
    assert "## Longer runs" in report  # the issue: the report says what a longer run reaches
    assert f"stopping after {textgen.PATIENCE} without a lower validation loss" in report  # early stopping
    # found by a review: the report gave the cut size as if it were the text's, and hid a time-limit stop
    assert "bundled tiny Shakespeare (its first 20,000 of 1,115,394 characters, by --limit): 20,000" in report
    assert m["stopped_by"] == "epochs" and "ended by the time limit" not in report
    code = cli.main(["sample", str(out / "model.safetensors"), "--prompt", "ROMEO:", "--length", "25"])
    text = capsys.readouterr().out.rstrip("\n")
    assert code == 0 and text.startswith("ROMEO:") and len(text) == 31


def test_stream_loss_is_the_mean_next_character_cross_entropy(monkeypatch):
    torch.manual_seed(0)
    lm = CharLM("abc", embedding=4, hidden_size=6, dropout=0.0, backend="fused").eval()
    ids = torch.randint(1, 4, (70,))
    with torch.no_grad():
        whole, _ = lm(ids[None, :-1])  # (1, 69, V): one stream, every character in context
        assert stream_loss(lm, ids)["val_loss"] == pytest.approx(
            F.cross_entropy(whole[0], ids[1:]).item(), rel=1e-6)  # 69 < MIN_STREAM: one stream
        monkeypatch.setattr(textgen, "MIN_STREAM", 2)
        S, n = 32, 2  # 32 streams of 2 characters each, then a tail of 5 read on from the last stream
        logits, h = lm(ids[:64].view(S, n))
        tail, _ = lm(ids[None, 64:69], h[:, -1:].contiguous())  # (1, 5, V)
        want = (F.cross_entropy(logits.flatten(0, 1), ids[1:65].view(S, n).flatten(), reduction="sum")
                + F.cross_entropy(tail[0], ids[65:70], reduction="sum")).item() / 69
        assert stream_loss(lm, ids)["val_loss"] == pytest.approx(want, rel=1e-6)


def test_textgen_on_a_users_windows_text(tmp_path):
    """Own text with \\r\\n line ends, in cp1252 (--encoding): the alphabet has no \\r, the report no bundled-text
    paragraph."""

    text = tmp_path / "own.txt"
    text.write_bytes(load_shakespeare()[:6000].replace("\n", "\r\n").replace("we", "wé").encode("cp1252"))
    out = tmp_path / "tg"
    assert cli.main(["textgen", "--text", str(text), "--encoding", "cp1252", "--hidden", "8", "--embedding", "4",
                     "--seq-len", "16", "--steps-per-epoch", "2", "--epochs", "1", "--samples", "1",
                     "--sample-length", "20", "--out", str(out)]) == 0
    model = grukit.load(out / "model.safetensors")
    assert "\r" not in model.config.alphabet and "\n" in model.config.alphabet and "é" in model.config.alphabet
    report = (out / "report.md").read_text()
    assert "own.txt" in report and "Longer runs" not in report and "\r" not in report


def test_windows_pair_each_character_with_the_next_one():
    """Found by a review: every target character is the one after its input character in the text (not a copy)."""
    from grukit.data.text import Alphabet
    from grukit.tasks.textgen import Windows

    text = "abcdefghijklmnopqrstuvwxyz0123456789"  # distinct characters: "the next one" is unambiguous
    alphabet = Alphabet.from_text(text)
    ids = torch.from_numpy(alphabet.encode(text))  # (36,)
    T, stride = 5, 3
    windows = Windows(ids, T, stride=stride)
    assert len(windows) == (len(text) - T - 1) // stride + 1 == 11
    for i in range(len(windows)):
        x, y = windows[i]  # (T,), (T,)
        assert x.shape == y.shape == (T,)
        assert alphabet.decode(x.tolist()) == text[i * stride: i * stride + T]
        assert alphabet.decode(y.tolist()) == text[i * stride + 1: i * stride + T + 1]
        for t in range(T):  # target[t] is the character right after input[t] in the text
            assert text.index(alphabet.decode([int(y[t])])) == text.index(alphabet.decode([int(x[t])])) + 1


def test_the_alphabet_comes_from_the_training_part_only(tmp_path):
    """Found by a review: a character only in the held-out 10% is not in the model's alphabet (it reads as unknown)."""
    import random

    rng = random.Random(0)
    train_part = "".join(rng.choice("ab c\n") for _ in range(1800))  # the first 90% of 2,000 characters
    held_out = "".join(rng.choice("ab cZ\n") for _ in range(199)) + "Z"  # "Z" only in the last 10%
    text = tmp_path / "own.txt"
    text.write_text(train_part + held_out, encoding="utf-8")
    out = tmp_path / "tg"
    assert cli.main(["textgen", "--text", str(text), "--hidden", "8", "--embedding", "4", "--seq-len", "16",
                     "--steps-per-epoch", "2", "--epochs", "1", "--samples", "0", "--out", str(out)]) == 0
    model = grukit.load(out / "model.safetensors")
    assert model.config.alphabet == "".join(sorted(set(train_part))) == "\n abc" and "Z" not in model.config.alphabet
    m = json.loads((out / "metrics.json").read_text())
    assert m["train_chars"] == 1800 and m["vocabulary"] == 6  # 5 characters and the unknown id 0
    assert math.isfinite(m["val_loss"])  # the held-out "Z" reads as the unknown id
    assert "The alphabet comes from the training part." in (out / "report.md").read_text()


def test_the_validation_stream_carries_its_state_across_chunks(monkeypatch):
    """stream_loss reads a stream in chunks of VAL_CHUNK steps, the state carried between them: with chunks of 16,
    one stream's loss equals the cross-entropy of one pass over the whole sequence (a mutation audit: the tests'
    texts were shorter than one chunk, so a state dropped between chunks passed)."""
    torch.manual_seed(0)
    lm = CharLM("abc", embedding=4, hidden_size=6, dropout=0.0, backend="fused").eval()
    ids = torch.randint(1, 4, (70,))  # (T,)
    monkeypatch.setattr(textgen, "VAL_CHUNK", 16)
    with torch.no_grad():
        logits, _ = lm(ids[None, :-1])  # (1, T−1, V)
        whole = F.cross_entropy(logits[0], ids[1:]).item()
    assert stream_loss(lm, ids)["val_loss"] == pytest.approx(whole, rel=1e-6)


def test_validation_streams_are_never_shorter_than_their_minimum():
    assert textgen.val_streams(1000) == 1 and textgen.val_streams(1001) == 2  # 2 × 500 steps from 1,001 characters


def test_generation_carries_the_state_from_character_to_character():
    """Guards generate's `model(c, h)`: each character is drawn given the whole text so far. Greedy generation
    (a tiny temperature) equals re-reading prompt + output from scratch at every step; a generator that dropped
    h (each step reading its last character alone) passed every test."""
    torch.manual_seed(0)
    model = CharLM("abcdefgh \n", embedding=8, hidden_size=16, dropout=0.0).eval()
    with torch.no_grad():  # a recurrence strong enough that the earlier text changes the next character
        model.gru.weight_h_l0.mul_(6.0)
        model.head.weight.mul_(4.0)
    text = generate(model, "abc", length=15, temperature=1e-6, seed=0)
    want = "abc"
    with torch.no_grad():
        for _ in range(15):
            logits, _ = model(torch.as_tensor(model.alphabet.encode(want))[None])  # (1, T, V)
            z = logits[0, -1].clone()
            z[0] = -float("inf")
            want += model.alphabet.decode([int(z.argmax())])
    assert text == want


def test_gates_are_the_last_layers():
    """Guards gates' layer index: with two layers, z and r are those of layer 2 reading layer 1's outputs
    (every textgen model tested had one layer, where first and last coincide)."""
    torch.manual_seed(0)
    model = CharLM("abcd", embedding=4, hidden_size=5, num_layers=2, dropout=0.0).eval()
    ids = torch.tensor([1, 2, 3, 4, 2])
    z, r = model.gates(ids)
    first, second = grukit.GRU(4, 5, reset=model.config.reset), grukit.GRU(5, 5, reset=model.config.reset)
    with torch.no_grad():
        for layer, copy in (("_l0", first), ("_l1", second)):  # the stack's layers, one at a time
            for name in ("weight_x", "weight_h", "bias_x", "bias_h"):
                getattr(copy, name + "_l0").copy_(getattr(model.gru, name + layer))
        out1, _ = first(model.embed(ids)[:, None])  # (T, 1, H) layer 1's outputs
        _, _, g = second(out1, return_gates=True)  # g.z (1, 1, T, 1, H)
    torch.testing.assert_close(z, g.z[0, 0, :, 0])
    torch.testing.assert_close(r, g.r[0, 0, :, 0])


TINY = ["--seq-len", "16", "--hidden", "4", "--embedding", "4", "--steps-per-epoch", "1", "--samples", "0",
        "--backend", "fused"]


def test_the_shortest_text_trains_on_its_first_90_percent_only(tmp_path, monkeypatch):
    """A mutation audit: training windows reaching seq_len characters into the validation text, a shortest text
    one window smaller (10·(seq_len + 1)), and a step count of --epochs × steps (a crash without --epochs, and
    wrong after an early stop) passed every test."""
    monkeypatch.setattr(textgen, "EPOCHS", 2)  # the default of --epochs, which this run does not give
    seen = []
    real_fit = textgen.fit
    monkeypatch.setattr(textgen, "fit", lambda model, train, *a, **k: seen.append(train) or real_fit(model, train,
                                                                                                       *a, **k))
    out = tmp_path / "tg"
    assert cli.main(["textgen", "--limit", "180", *TINY, "--out", str(out)]) == 0  # 10 · (16 + 2)
    (train,) = seen
    text = load_shakespeare()[:180]
    alphabet = textgen.Alphabet.from_text(text[:162])
    assert torch.equal(train.ids, torch.from_numpy(alphabet.encode(text[:162])))  # 90%: 162 characters
    assert (len(train) - 1) * train.stride + train.T + 1 <= 162  # the last window ends in the training part
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == m["epochs_run"] == 2 and m["train_chars"] == 162  # one step per evaluation period


@pytest.mark.parametrize("argv, message", [
    (["--limit", "179"], "--limit: expected at least 180 characters for --seq-len 16 (90% train, 10% validation), "
                         "got 179 (its first 179, by --limit)"),
    (["--samples", "-1"], "--samples: expected an integer >= 0, got -1"),
    (["--dropout", "1"], "--dropout: expected a number in [0, 1), got 1.0"),
])
def test_bad_values_exit_2(tmp_path, exits_2_with, argv, message):
    """A mutation audit: accepting one character fewer than 10·(seq_len + 2), --samples -1 or --dropout 1 passed
    every test."""
    out = tmp_path / "x"
    exits_2_with(["textgen", "--limit", "2000", *TINY, *argv, "--epochs", "1", "--out", str(out)], message, out)


def test_the_tail_reads_on_from_the_last_streams_state(monkeypatch):
    """A mutation audit: the tail read on from the first stream's state instead of the last's passed every test
    (the streams there were 2 characters long, so their states barely differed)."""

    torch.manual_seed(0)
    lm = CharLM("abc", embedding=4, hidden_size=8, dropout=0.0, backend="fused").eval()
    ids = torch.cat([torch.full((24,), 1), torch.randint(1, 4, (24,)), torch.full((24,), 3),
                     torch.tensor([2, 1, 2])])  # (75,) streams of 'a', mixed, 'c'; a tail of 2 predictions
    monkeypatch.setattr(textgen, "MIN_STREAM", 20)  # S = 74 // 20 = 3 streams of n = 24
    with torch.no_grad():
        logits, h = lm(ids[:72].view(3, 24))  # (3, 24, V), h (1, 3, H)
        streams = F.cross_entropy(logits.flatten(0, 1), ids[1:73].view(3, 24).flatten(), reduction="sum").item()

        def tail(state):
            out, _ = lm(ids[None, 72:74], state.contiguous())  # (1, 2, V)
            return F.cross_entropy(out[0], ids[73:75], reduction="sum").item()

        want, other = (streams + tail(h[:, -1:])) / 74, (streams + tail(h[:, :1])) / 74
    assert abs(want - other) > 1e-4 * want  # the two states give measurably different losses
    assert textgen.stream_loss(lm, ids)["val_loss"] == pytest.approx(want, rel=1e-6)
