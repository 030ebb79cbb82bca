"""grukit.cli: the command registry, common options, and bad input → exit 2, ≤ 3 lines, no traceback, empty --out."""
from __future__ import annotations

import pytest
import torch

import grukit
from grukit import cli


def _run(capsys, argv):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_command_has_the_common_options():
    parser = cli.build_parser(["forecast", "textgen", "classify"])
    for command in ("forecast", "textgen", "classify"):
        args = parser.parse_args([command, "--epochs", "2", "--seed", "5", "--device", "cpu", "--backend", "fused"])
        assert (args.epochs, args.seed, args.device, args.backend, args.out) == (2, 5, "cpu", "fused", None)
    assert cli.COMMANDS["bench"] == "grukit.bench"
    assert str(cli.default_out("forecast")).startswith("runs/forecast-")


def _one_line_error(code, out, err, *needles):
    assert code == 2
    assert "Traceback" not in err and out == ""
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 3, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.fixture
def text_files(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("hello world\n" * 50, encoding="utf-8")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1") * 20)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    series = tmp_path / "series.csv"
    series.write_text("date,y,x\n" + "".join(f"2020-01-{i + 1:02d},{i},1\n" for i in range(20)))
    bad = tmp_path / "bad.csv"
    bad.write_text("y,x\n1,2\nabc,3\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("text,label\n" + "a nice film,pos\n" * 30)
    return tmp_path


BAD = {
    "missing csv": (["forecast", "--csv", "{d}/nope.csv", "--column", "y"], ["--csv", "nope.csv"]),
    "unknown column": (["forecast", "--csv", "{d}/series.csv", "--column", "zz"], ["--column", "'zz'"]),
    "unknown covariate": (["forecast", "--csv", "{d}/series.csv", "--column", "y", "--covariates", "q"],
                          ["--covariates", "'q'"]),
    "non-numeric": (["forecast", "--csv", "{d}/bad.csv", "--column", "y"], ["'abc'", "row 3"]),
    "too short": (["forecast", "--csv", "{d}/series.csv", "--column", "y", "--horizon", "5", "--lookback", "10"],
                  ["--lookback/--horizon", "20 steps"]),
    "log of a non-positive series": (["forecast", "--csv", "{d}/series.csv", "--column", "y", "--transform", "log"],
                                     ["--transform", "positive", "smallest value of 0"]),
    "missing text": (["textgen", "--text", "{d}/nope.txt"], ["--text", "not found"]),
    "empty text": (["textgen", "--text", "{d}/empty.txt"], ["--text", "empty"]),
    "non-utf8 text": (["textgen", "--text", "{d}/latin.txt"], ["--text", "UTF-8", "0xe9"]),
    "one class csv": (["classify", "--csv", "{d}/labels.csv", "--text-column", "text", "--label-column", "label"],
                      ["--label-column", "two classes"]),
    "one class pos/neg": (["classify", "--pos", "{d}/good.txt", "--neg", "{d}/empty.txt"], ["--neg", "empty"]),
    "non-utf8 pos": (["classify", "--pos", "{d}/latin.txt", "--neg", "{d}/good.txt"], ["--pos", "latin-1"]),
    "bad backend": (["forecast", "--backend", "cuDNN"], ["--backend", "'cuDNN'"]),
    "unknown option": (["forecast", "--horizon", "x"], ["--horizon"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_clear_line_and_no_output(case, text_files, capsys):
    argv, needles = BAD[case]
    out = text_files / "out"
    argv = [a.format(d=text_files) for a in argv] + ["--out", str(out), "--epochs", "1"]
    with pytest.raises(SystemExit) if case == "unknown option" else _nothing():
        code, stdout, err = _run(capsys, argv)
    if case == "unknown option":
        captured = capsys.readouterr()
        code, stdout, err = 2, captured.out, captured.err
    _one_line_error(code, stdout, err, *needles)
    assert not out.exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_failed_run_keeps_what_was_in_out_before(text_files, capsys):
    out = text_files / "keep"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    code, _, err = _run(capsys, ["textgen", "--text", str(text_files / "latin.txt"), "--out", str(out)])
    assert code == 2 and sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_sample_refuses_a_checkpoint_that_is_not_a_textgen_model(tmp_path, capsys):
    gru = tmp_path / "gru.safetensors"
    grukit.save(grukit.GRU(2, 3), gru)
    pickle = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, pickle)
    for path, needle in ((gru, "GRU"), (pickle, "CHECKPOINT"), (tmp_path / "none.safetensors", "not found")):
        code, out, err = _run(capsys, ["sample", str(path)])
        _one_line_error(code, out, err, "CHECKPOINT", needle)
