"""grukit sample: the common options (--out, --seed, --device, --backend) on a small saved CharLM."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import grukit
from grukit import cli
from grukit.errors import UsageError
from grukit.tasks.sample import load_model, use_backend
from grukit.tasks.synthetic import SyntheticModel
from grukit.tasks.textgen_model import CharLM


@pytest.fixture
def model_path(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    grukit.save(CharLM("abcd \n", embedding=4, hidden_size=6, backend="fused"), path)
    return path


def _sample(capsys, *argv):
    code = cli.main(["sample", *map(str, argv)])
    return code, capsys.readouterr().out


def test_out_seed_device_and_backend(model_path, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [model_path, "--prompt", "ab", "--length", "30", "--seed", "3", "--device", "cpu", "--backend", "eager"]
    code, printed = _sample(capsys, *argv, "--out", out)
    text = (out / "sample.txt").read_text(encoding="utf-8")
    assert code == 0 and text.startswith("ab") and len(text) == 32
    assert printed.startswith(text) and str(out / "sample.txt") in printed
    assert _sample(capsys, *argv) == (0, text + "\n")  # the same seed draws the same text
    other_seed = [a if a != "3" else "7" for a in argv]
    assert _sample(capsys, *other_seed)[1] != text + "\n"  # another seed, another text


def test_a_prompt_of_non_utf8_bytes_is_named_and_unknown_characters_warn(model_path, tmp_path, capsys, caplog):
    out = tmp_path / "out"
    code = cli.main(["sample", str(model_path), "--prompt", "a\udcffb", "--out", str(out)])  # argv's byte 0xff
    err = capsys.readouterr().err
    assert code == 2 and "--prompt: expected text, got a byte that is not UTF-8 at character 1" in err
    assert not out.exists()
    with caplog.at_level("WARNING", logger="grukit.tasks.sample"):
        assert _sample(capsys, model_path, "--prompt", "abz€", "--length", "3")[0] == 0
    assert "characters 'z€' are not in the model's alphabet" in caplog.text


def test_without_out_nothing_is_written(model_path, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, printed = _sample(capsys, model_path, "--prompt", "ab", "--length", "5")
    assert code == 0 and printed.startswith("ab") and "sample.txt" not in printed
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_use_backend_switches_the_kernel_and_keeps_the_weights(model_path):
    model = load_model(model_path)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    use_backend(model, "eager")
    assert model.gru.kernel().name == "eager" and model.config.backend == model.gru.config.backend == "eager"
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_tiny_temperatures_are_greedy_and_never_draw_the_unknown_id(model_path):
    from grukit.tasks.textgen_model import generate

    model = load_model(model_path)
    with torch.no_grad():
        model.head.bias[0] = 1e4  # all the mass on the unknown id, which is never drawn
    greedy = generate(model, "ab", length=20, temperature=1e-6, seed=0)
    for temperature in (1e-40, 1e-300, 5e-324):  # logits / T would overflow float32 (and float64 at the end)
        assert generate(model, "ab", length=20, temperature=temperature, seed=1) == greedy
    assert "\x00" not in greedy and set(greedy[2:]) <= set("abcd \n")


def test_generate_names_a_bad_argument(model_path):
    """Found by a review: from Python, temperature 0, < 0, inf or nan failed inside torch.multinomial, a negative
    length gave the prompt alone, prompt=None a TypeError about +, and another model an AttributeError."""
    from grukit.tasks.textgen_model import generate

    model = load_model(model_path)
    for temperature in (0, -1.0, float("inf"), float("nan"), "hot"):
        with pytest.raises(ValueError, match=f"temperature: expected a finite number > 0, got {temperature!r}"):
            generate(model, "ab", length=3, temperature=temperature, seed=0)
    with pytest.raises(ValueError, match="length: expected an integer >= 0, got -5"):
        generate(model, "ab", length=-5, temperature=1.0, seed=0)
    with pytest.raises(TypeError, match="model: expected a character model .* got GRU"):
        generate(grukit.GRU(2, 3), "ab", length=3, temperature=1.0, seed=0)
    assert generate(model, None, length=4, temperature=1.0, seed=0) == generate(model, "", length=4, temperature=1.0,
                                                                                 seed=0)
    assert generate(model, "ab", length=np.int64(3), temperature=np.float32(0.8), seed=0) == generate(
        model, "ab", length=3, temperature=float(np.float32(0.8)), seed=0)  # NumPy numbers are numbers


@pytest.mark.parametrize(("flag", "value", "needle"), [
    ("--temperature", "inf", "finite number > 0"), ("--temperature", "nan", "finite number > 0"),
    ("--length", "1000001", "1..1,000,000"), ("--length", "0", "1..1,000,000")])
def test_temperature_and_length_bounds(model_path, capsys, flag, value, needle):
    code = cli.main(["sample", str(model_path), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_with_damaged_weights_is_refused_naming_checkpoint(model_path, tmp_path, capsys):
    """nan weights (a model saved after its training diverged) crashed sampling with a traceback (exit 1); bytes
    damaged after the save are caught by the file's checksum before any weight is read."""
    model = grukit.load(model_path)
    with torch.no_grad():
        next(model.parameters())[0] = float("nan")
    diverged = tmp_path / "diverged.safetensors"
    grukit.save(model, diverged)
    damaged = tmp_path / "damaged.safetensors"
    data = bytearray(model_path.read_bytes())
    data[-100:] = b"\xff" * 100  # the last tensor's bytes: float32 0xffffffff is nan
    damaged.write_bytes(bytes(data))
    for path, said in ((diverged, "CHECKPOINT: expected finite weights, got nan or inf in"),
                       (damaged, "its tensors do not match the checksum written with them")):
        code = cli.main(["sample", str(path), "--length", "5"])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
        assert said in err, err


def test_a_run_folder_reads_its_model_and_a_sample_is_never_overwritten(model_path, tmp_path, capsys):
    """Before, `grukit sample RUN_FOLDER` said the folder was not found, and a second sample into the same
    --out replaced the first one's sample.txt."""
    out = tmp_path / "out"
    code, printed = _sample(capsys, tmp_path, "--prompt", "ab", "--length", "5", "--out", out)  # the run folder
    first = (out / "sample.txt").read_text(encoding="utf-8")
    assert code == 0 and printed.startswith(first.rstrip())
    code = cli.main(["sample", str(model_path), "--length", "9", "--seed", "4", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"--out: expected a folder without sample.txt, got {out} holding one" in err
    assert (out / "sample.txt").read_text(encoding="utf-8") == first
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["sample", str(empty)]) == 2
    assert "CHECKPOINT: expected a model file, or a textgen run folder holding model.safetensors, got the folder" \
        in capsys.readouterr().err


def test_without_a_prompt_a_model_that_never_saw_a_newline_starts_from_a_space(tmp_path, capsys, caplog):
    """Found by a review: the default prompt was a newline whatever the training text, so a model trained on
    one line started from its untrained unknown embedding, with a warning about a prompt nobody gave."""
    from grukit.tasks.textgen_model import default_prompt, generate

    assert (default_prompt("ab \n"), default_prompt("ab "), default_prompt("ba")) == ("\n", " ", "b")
    torch.manual_seed(0)
    lm = CharLM("abcd ", embedding=4, hidden_size=6, backend="fused")
    grukit.save(lm, tmp_path / "m.safetensors")
    with caplog.at_level("WARNING", logger="grukit.tasks.sample"):
        code, printed = _sample(capsys, tmp_path / "m.safetensors", "--length", "12", "--seed", "1")
    assert code == 0 and caplog.text == ""
    assert printed == generate(lm, " ", length=12, temperature=0.8, seed=1) + "\n"  # the prompt, then 12
    assert generate(lm, "", length=12, temperature=0.8, seed=1) == printed[1:-1]  # "" reads the default too


def test_text_the_console_cannot_encode_is_escaped_not_a_traceback(tmp_path, capsys, monkeypatch):
    """Found by a review: a generated 'é' on a cp1252 or latin-1 console ended in UnicodeEncodeError (exit 1)
    after every file was written."""
    import io
    import sys

    torch.manual_seed(0)
    grukit.save(CharLM("\u0436\u0437 ", embedding=4, hidden_size=6, backend="fused"), tmp_path / "m.safetensors")
    console = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", console)
    assert cli.main(["sample", str(tmp_path / "m.safetensors"), "--prompt", "\u0436", "--length", "5"]) == 0
    console.flush()
    shown = console.buffer.getvalue().decode("latin-1")
    assert shown.startswith("\\u0436") and len(shown.rstrip("\n")) >= 6


def test_a_checkpoint_of_another_grukit_model_is_refused(tmp_path):
    """A mutation audit: dropping the CharLM check (any grukit checkpoint sampled from) passed every test."""
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    grukit.save(SyntheticModel("adding", 4), path)
    with pytest.raises(UsageError, match=r"expected a grukit textgen model \(CharLM\), got a SyntheticModel in "):
        load_model(path)


def test_a_checkpoint_that_is_a_pipe_is_named_not_called_missing(tmp_path):
    """`sample /dev/null` said "file not found"; a pipe or a device exists and is not a model file."""
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError, match=r"^CHECKPOINT: expected a model file, got .*pipe, which is a device, pipe"):
        load_model(tmp_path / "pipe")
    with pytest.raises(UsageError, match=r"^CHECKPOINT: file not found: "):
        load_model(tmp_path / "nope")
