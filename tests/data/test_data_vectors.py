"""Pretrained word vectors: the bundled GloVe subset, text tables given by path, their errors."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from grukit.data.sentiment import load_mr, tokenize
from grukit.data.vectors import WordVectors, load, load_bundled, load_npz, parts, read_text, save_npz
from grukit.errors import UsageError

GLOVE_THE = [0.418, 0.24968, -0.41242, 0.1217, 0.34527]  # the first numbers of glove.6B.50d.txt's first line


def table(tmp_path, text: str, name: str = "v.txt"):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_parts_split_at_the_apostrophe_as_glove_tokenizes():
    assert parts("century's") == ["century", "'s"] and parts("doesn't") == ["does", "n't"]
    assert parts("good") == ["good"] and parts("n't") == ["n", "'t"] and parts("'") == ["'"]


def test_the_bundled_table_is_glove_and_covers_the_mr_words():
    glove = load_bundled()
    assert glove.dims == 50 and len(glove.words) > 20_000 and glove.words[:3] == ("the", ",", ".")
    np.testing.assert_allclose(glove.vector("the")[:5], GLOVE_THE, atol=1e-3)  # float16 of GloVe's numbers
    tokens = [t for sentence in load_mr()[0] for t in tokenize(sentence)]
    covered = np.mean([glove.vector(t) is not None for t in tokens])
    assert covered > 0.99  # 99.7%: the rest are names and Spanish or Portuguese words
    assert glove.vector("century's") is not None and "century's" not in glove.index
    np.testing.assert_allclose(glove.vector("century's"), (glove.vector("century") + glove.vector("'s")) / 2)


def test_rows_read_zero_for_a_word_without_a_vector():
    v = WordVectors(("good", "bad"), np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), "test")
    np.testing.assert_array_equal(v.rows(["bad", "xqzv", "good"]), [[3, 4], [0, 0], [1, 2]])
    with pytest.raises(ValueError, match="each word once"):
        WordVectors(("a", "a"), np.zeros((2, 2), dtype=np.float32), "test")


@pytest.mark.parametrize("name", ["v.txt", "v.txt.gz"])
def test_read_text_keeps_the_frequent_words_and_the_wanted_ones(tmp_path, name):
    path = table(tmp_path, "the 1 2\n, 3 4\ngood 5 6\nbad 7 8\ndoes 9 10\nn't 11 12\ngood 0 0\n", name)
    v = read_text(path, wanted=["bad", "doesn't"], frequent=2)
    assert v.words == ("the", ",", "bad", "does", "n't") and v.dims == 2 and v.source == str(path)
    np.testing.assert_array_equal(v.vector("doesn't"), [10, 11])  # the mean of its parts
    assert read_text(path).vector("good").tolist() == [5, 6]  # the first of a repeated word


def test_read_text_takes_word2vecs_header_line_and_words_with_spaces(tmp_path):
    v = read_text(table(tmp_path, "2 3\nnew york 1 2 3\ncity 4 5 6\n"))
    assert v.words == ("new york", "city") and v.dims == 3


def test_read_text_takes_tabs_blank_lines_crlf_and_a_byte_order_mark(tmp_path):
    v = read_text(table(tmp_path, "\ufeffthe\t1  2\r\n\n\ncat 3 4 \r\n"))
    assert v.words == ("the", "cat") and v.matrix.tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("text, says", [
    ("", "empty file"),
    ("\n\n", "empty file"),
    ("the\n", "expected lines 'word v1 ... vP'"),
    ("the 1 2\ncat 1\n", "expected a word and 2 numbers on line 2"),
    ("the 1 2\ncat 3 4 5\n", "expected a word and 2 numbers on line 2"),  # not the word "cat 3"
    ("2 3\nthe 1 2 3 4 5\n", "expected a word and 3 numbers on line 2"),  # the header's P
    ("the 1 2\ncat 1 x\n", "expected 2 numbers after the word on line 2"),
    ("the 1 nan\n", "expected finite numbers on line 1"),
])
def test_a_malformed_table_names_the_argument_and_the_line(tmp_path, text, says):
    with pytest.raises(UsageError, match="^--vectors: ") as err:
        read_text(table(tmp_path, text))
    assert says in str(err.value)


def test_a_missing_or_binary_table_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--vectors: expected 'glove', 'none' or a word-vector file, got .*none.txt"):
        load(str(tmp_path / "none.txt"))
    with pytest.raises(UsageError, match="--vectors: expected a word-vector file, got .*, which is a folder"):
        load(str(tmp_path))
    binary = tmp_path / "v.bin"
    binary.write_bytes(b"\x80\x81\xfe\xff" * 10)
    with pytest.raises(UsageError, match="--vectors: expected a word-vector text file"):
        read_text(binary)
    fake = tmp_path / "v.txt.gz"
    fake.write_text("the 1 2\n")
    with pytest.raises(UsageError, match="--vectors: expected a word-vector text file"):
        read_text(fake)


def test_load_names_the_bundled_table_and_none(tmp_path):
    assert load("none") is None and load("glove").dims == 50
    v = load(str(table(tmp_path, "good 1 2\n")), wanted=["good"])
    path = tmp_path / "v.npz"
    save_npz(v, path)
    again = load_npz(path)
    assert again.words == v.words and np.array_equal(again.matrix, v.matrix)


def test_a_word_that_is_a_unicode_space_is_a_word(tmp_path):
    """Found by a review: fastText's wiki.en.vec has words that are no-break spaces; str.split cut them away and
    the whole file was refused at that line."""
    vectors = read_text(table(tmp_path, "3 2\nthe 0.1 0.2\n\u00a0 0.3 0.4\n new york 0.5 0.6 \n"))
    assert vectors.words == ("the", "\u00a0", "new york") and vectors.matrix.shape == (3, 2)


def test_a_damaged_gz_and_a_header_of_no_numbers_are_named(tmp_path):
    """Found by a review: a .gz whose data is damaged ended in zlib's traceback, and a word2vec header 'N 0' in an
    error about a model's table that named no flag."""
    damaged = tmp_path / "bad.gz"
    damaged.write_bytes(gzip.compress(b"the 0.1 0.2\n" * 50)[:10] + bytes(range(200)))
    with pytest.raises(UsageError, match=r"^--vectors: expected a word-vector text file \(UTF-8, or .gz of one\)"):
        read_text(damaged, argument="--vectors")
    with pytest.raises(UsageError, match=r"^--vectors: expected a word2vec header 'N P' with P >= 1"):
        read_text(table(tmp_path, "3 0\ngood\nbad\nfilm\n"), argument="--vectors")


def test_a_word2vec_header_after_blank_lines_is_read_as_the_header(tmp_path):
    """Found by a mutation audit: a .vec file whose "N P" header came after a blank line had the header read as a
    word (P = 1), and its first real line refused."""
    v = read_text(table(tmp_path, "\n2 3\nfoo 0.1 0.2 0.3\nbar 0.4 0.5 0.6\n"))
    assert v.vector("bar").tolist() == pytest.approx([0.4, 0.5, 0.6])
