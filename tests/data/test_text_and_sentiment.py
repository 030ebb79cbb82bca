"""grukit.data.text and grukit.data.sentiment: strict reading, alphabets, tokenizer, vocabulary."""
import pytest

from grukit.data.sentiment import Vocabulary, load_mr, read_csv, read_pos_neg, tokenize
from grukit.data.text import Alphabet, load_shakespeare, read_text
from grukit.errors import UsageError


def test_bundled_text_and_alphabet_round_trip():
    text = load_shakespeare()
    assert len(text) == 1_115_394
    a = Alphabet.from_text(text)
    assert a.size == 66 and a.decode(a.encode(text[:500])) == text[:500]


def test_read_text_refuses_non_utf8_and_empty(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff no")
    with pytest.raises(UsageError, match="UTF-8.*0xff at offset 3"):
        read_text(bad)
    bad.write_text("\n\n")
    with pytest.raises(UsageError, match="empty"):
        read_text(bad)


def test_mr_and_user_files(tmp_path):
    texts, labels, names = load_mr()
    assert len(texts) == 10662 and labels.count(1) == labels.count(0) == 5331
    pos, neg = tmp_path / "p.txt", tmp_path / "n.txt"
    pos.write_bytes("tr\xe8s bien\n".encode("latin-1"))
    neg.write_text("bad\n\nworse\n")
    with pytest.raises(UsageError, match="--pos: expected utf-8"):
        read_pos_neg(pos, neg)
    texts, labels, _ = read_pos_neg(pos, neg, encoding="latin-1")
    assert texts == ["bad", "worse", "très bien"] and labels == [0, 0, 1]
    csv = tmp_path / "d.csv"
    csv.write_text("t,l\ngood,b\nbad,a\n")
    assert read_csv(csv, "t", "l") == (["good", "bad"], [1, 0], ["a", "b"])


def test_tokenizer_and_vocabulary():
    assert tokenize("A gem -- isn't it?") == ["a", "gem", "-", "-", "isn't", "it", "?"]
    v = Vocabulary.build([["x", "y", "x"], ["z"]], min_count=2)
    assert v.words == ("x",) and v.encode(["x", "y"]) == [2, 1] and len(v) == 3
