"""grukit.data.text and grukit.data.sentiment: strict reading, alphabets, tokenizer, vocabulary, log-count ratios."""
import logging

import numpy as np
import pytest
import torch

from grukit.data.sentiment import (
    Bigrams,
    Vocabulary,
    bigram_keys,
    bigram_rows,
    load_mr,
    log_count_ratios,
    out_of_fold_ratios,
    read_csv,
    read_pos_neg,
    tokenize,
)
from grukit.data.text import Alphabet, load_shakespeare, read_text
from grukit.errors import UsageError


def test_bundled_text_and_alphabet_round_trip():
    text = load_shakespeare()
    assert len(text) == 1_115_394
    a = Alphabet.from_text(text)
    assert a.size == 66 and a.decode(a.encode(text[:500])) == text[:500]


def test_an_alphabet_with_a_character_twice_is_refused():
    with pytest.raises(ValueError, match="alphabet: expected distinct characters, got 'a' more than once"):
        Alphabet("abca")


def test_read_text_refuses_non_utf8_and_empty(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok \xff no")
    with pytest.raises(UsageError, match="--text: expected utf-8 text, got byte 0xff at offset 3"):
        read_text(bad)
    assert read_text(bad, encoding="latin-1") == "ok \xff no"
    with pytest.raises(UsageError, match="--encoding: expected a Python codec name .* got 'klingon'"):
        read_text(bad, encoding="klingon")
    for codec in ("undefined", "base64"):  # found by a review: a codec that decodes no text was not named
        with pytest.raises(UsageError, match=f"--encoding: expected a Python codec name .* got '{codec}'"):
            read_text(bad, encoding=codec)
    bad.write_text("\n\n")  # said "an empty file" before
    with pytest.raises(UsageError, match=r"expected some text, got a file of white space only: "):
        read_text(bad)
    bad.write_text("")
    with pytest.raises(UsageError, match=r"expected some text, got an empty file: "):
        read_text(bad)


def test_read_text_drops_a_byte_order_mark_and_reads_windows_line_ends_as_newlines(tmp_path):
    f = tmp_path / "w.txt"
    f.write_bytes("\ufeffTo be,\r\nor not.\r\n".encode())
    assert read_text(f) == "To be,\nor not.\n"


def test_lines_split_only_at_line_ends_and_csv_fields_keep_their_newlines(tmp_path):
    pos, neg = tmp_path / "p.txt", tmp_path / "n.txt"
    pos.write_bytes(b"wait\x85 what a film\r\nsplendid\r\n")  # cp1252's "..." is the byte 0x85
    neg.write_text("\ufeffdull\u2028and long\nbad\n", encoding="utf-8")
    texts, labels, _ = read_pos_neg(pos, neg, encoding="latin-1")
    assert len(texts) == 4 and texts[2] == "wait\x85 what a film" and labels == [0, 0, 1, 1]
    other = tmp_path / "o.txt"
    other.write_text("fine\n")
    texts, _, _ = read_pos_neg(other, neg)
    assert texts[0] == "dull\u2028and long"  # one sentence, no byte-order mark
    neg.write_bytes(b"\xef\xbb\xbfgreat film\nfine\n")
    assert read_pos_neg(other, neg, encoding="latin-1")[0][:2] == ["great film", "fine"]  # nor in latin-1
    csv = tmp_path / "d.csv"
    csv.write_text('review,label\n"the plot\nwas thin",neg\n"great\u2028fun",pos\n', encoding="utf-8-sig")
    texts, labels, names = read_csv(csv, "review", "label")
    assert texts == ["the plot\nwas thin", "great\u2028fun"] and labels == [0, 1] and names == ["neg", "pos"]
    assert tokenize(texts[0]) == ["the", "plot", "was", "thin"]


def test_mr_and_user_files(tmp_path):
    texts, labels, _ = load_mr()
    assert len(texts) == 10662 and labels.count(1) == labels.count(0) == 5331
    # the bundled files are UTF-8: read as latin-1 (until the ninth session) "clichés" became "clichÃ©s"
    assert not [t for t in texts if "Ã" in t or "â€" in t]
    assert sum("clichés" in t for t in texts) > 0 and sum("—" in t for t in texts) > 0
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


def test_column_names_with_an_accent_match_however_they_are_composed(tmp_path):
    """Found by a review: "Étiquette" in the header as "E" + accent was refused when typed as one character."""
    f = tmp_path / "nfd.csv"
    f.write_text("Critique,E\u0301tiquette\ngood,pos\nbad,neg\n", encoding="utf-8")
    texts, labels, names = read_csv(f, "Critique", "\u00c9tiquette")
    assert texts == ["good", "bad"] and [names[y] for y in labels] == ["pos", "neg"]


def test_a_csv_with_tabs_or_semicolons_reads_its_fields(tmp_path):
    for sep in ("\t", ";"):
        f = tmp_path / "tab.csv"
        f.write_text(f"id{sep}text{sep}label\n1{sep}a fine, warm film{sep}pos\n2{sep}dull{sep}neg\n")
        texts, labels, names = read_csv(f, "text", "label")
        assert texts == ["a fine, warm film", "dull"] and [names[y] for y in labels] == ["pos", "neg"]


def test_a_csv_with_mac_line_ends_reads_and_a_utf16_file_is_named(tmp_path):
    f = tmp_path / "mac.csv"
    f.write_bytes(b"text,label\rgood film,pos\rbad film,neg\r")  # a traceback before the review's fix
    assert read_csv(f, "text", "label")[0] == ["good film", "bad film"]
    f.write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-16")
    with pytest.raises(UsageError, match=r"--csv: expected utf-8 text, .*\(try --encoding utf-16: it starts with"):
        read_csv(f, "text", "label")
    assert read_csv(f, "text", "label", encoding="utf-16")[0] == ["good", "bad"]


def test_csv_rows_without_a_label_and_oversized_fields_are_usage_errors(tmp_path, caplog):
    csv = tmp_path / "d.csv"
    csv.write_text("t,l\ngood,b\nbad,a\nno label here\n")  # a short row: no label field at all
    with pytest.raises(UsageError, match=r"--label-column: .* got none in row 4 of"):
        read_csv(csv, "t", "l")
    csv.write_text("t,l\ngood,b\nbad, \nworse,a\n")  # a blank label is no class of its own
    with pytest.raises(UsageError, match=r"--label-column: .* got none in row 3 of"):
        read_csv(csv, "t", "l")
    csv.write_text("t,l\ngood,b\nbad,NA\nworse,a\n")  # R writes a missing value as NA: no class either (it was)
    with pytest.raises(UsageError, match=r"--label-column: .* got NA in row 3 of"):
        read_csv(csv, "t", "l")
    csv.write_text("t,l\ngood,none\nbad,a\n")  # "none" can name a class (an intent)
    assert read_csv(csv, "t", "l")[2] == ["a", "none"]
    csv.write_text("t,l\n,b\ngood,b\nbad,a\n")  # a row without text is skipped, as before, and said
    with caplog.at_level(logging.WARNING):
        assert read_csv(csv, "t", "l") == (["good", "bad"], [1, 0], ["a", "b"])
    assert "1 of 3 rows have no text in column 't' and are skipped" in caplog.text
    csv.write_text("t,l\ngood,b\n" + "x" * 200_000 + ",a\n")  # over csv's own 131,072: refused until a review
    assert len(read_csv(csv, "t", "l")[0][1]) == 200_000


def test_the_same_file_for_both_classes_or_one_column_for_text_and_label_is_refused(tmp_path):
    pos = tmp_path / "p.txt"
    pos.write_text("good\nfine\n")
    with pytest.raises(UsageError, match="--neg: expected other sentences than --pos"):
        read_pos_neg(pos, pos)
    csv = tmp_path / "d.csv"
    csv.write_text("t,l\ngood,b\nbad,a\n")
    with pytest.raises(UsageError, match="--label-column: expected another column than --text-column, got 't'"):
        read_csv(csv, "t", "t")


def test_numeric_labels_are_one_class_per_value_and_nan_is_no_label(tmp_path):
    """"1" and "1.0" were two classes, and "NaN" a class of its own."""
    csv = tmp_path / "d.csv"
    csv.write_text("t,l\ngood,1.0\nbad,0\nfine,1\nok,10\n")
    assert read_csv(csv, "t", "l") == (["good", "bad", "fine", "ok"], [1, 0, 1, 2], ["0", "1", "10"])
    csv.write_text("t,l\ngood,pos\nbad,1\n")  # not all numbers: the labels stay as written
    assert read_csv(csv, "t", "l")[2] == ["1", "pos"]
    csv.write_text("t,l\ngood,1\nbad,NaN\n")
    with pytest.raises(UsageError, match="--label-column: expected a label .* got NaN in row 3"):
        read_csv(csv, "t", "l")


def test_tokenizer_and_vocabulary():
    assert tokenize("A gem -- isn't it?") == ["a", "gem", "-", "-", "isn't", "it", "?"]
    # letters of any script stay in their word (before, "clichés" split into "clich", "é", "s")
    assert tokenize("Ladrón — Clichés, ДОБРО! l'été x_y") == ["ladrón", "—", "clichés", ",", "добро", "!", "l'été",
                                                             "x", "_", "y"]
    assert tokenize("cafe\u0301") == tokenize("caf\u00e9") == ["café"]  # decomposed and composed é alike (NFC)
    assert tokenize("don’t") == tokenize("don't") == ["don't"]  # the typographic apostrophe too
    v = Vocabulary.build([["x", "y", "x"], ["z"]], min_count=2)
    assert v.words == ("x",) and v.encode(["x", "y"]) == [2, 1] and len(v) == 3


def test_log_count_ratios_point_each_word_at_its_class():
    # ids: 2 only in positive sentences, 3 only in negative, 4 in both; labels 1 = positive; α = 1
    sentences, labels = [[2, 4], [2, 2, 4], [3, 4], [3]], [1, 1, 0, 0]
    R = log_count_ratios(sentences, labels, n_words=6, classes=2)
    assert R.shape == (6, 2) and (R[:2] == 0).all()  # padding and unknown
    assert R[2, 1] > 0 > R[3, 1] and R[2, 1] == pytest.approx(np.log(3 / 8) - np.log(1 / 7))  # binarized counts
    assert R[4, 1] == pytest.approx(np.log(3 / 8) - np.log(2 / 7))  # in 2 of 2 positive, 1 of 2 negative
    assert np.allclose(R[:, 0], -R[:, 1])  # two classes: one against the other
    three = log_count_ratios([[2], [3], [4]], [0, 1, 2], n_words=5, classes=3)
    assert np.argmax(three[2:], axis=1).tolist() == [0, 1, 2]


def test_out_of_fold_ratios_never_read_the_sentences_own_label():
    rng = np.random.default_rng(0)
    sentences = [[2 + i] + rng.integers(100, 110, 3).tolist() for i in range(60)]  # word 2 + i: sentence i only
    labels = rng.integers(0, 2, 60).tolist()
    rho = out_of_fold_ratios(sentences, labels, n_words=110, classes=2, folds=5, seed=0)
    R = log_count_ratios(sentences, labels, n_words=110, classes=2)
    unseen = [r[0] for r in rho]  # (2,) each: a word seen only in its own sentence is unseen by the other folds
    assert np.ptp([u[1] for u in unseen]) < 0.1  # the same near-neutral value whatever the label
    assert all(np.sign(R[2 + i, 1]) == (1 if y else -1) for i, y in enumerate(labels))  # in-fold R would leak it
    assert [r.shape for r in rho[:2]] == [(4, 2), (4, 2)]
    again = out_of_fold_ratios(sentences, labels, n_words=110, classes=2, folds=5, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(rho, again))


def test_bigrams_keep_the_frequent_pairs_and_encode_each_word_with_the_pair_ending_there():
    sentences = [[2, 3, 4], [2, 3], [4, 2, 3]]
    assert bigram_keys([2, 3, 4], n_words=5).tolist() == [0 * 5 + 2, 2 * 5 + 3, 3 * 5 + 4]  # first word after 0
    b = Bigrams.build(sentences, n_words=5, min_count=2)
    assert b.keys.tolist() == [2, 13] and len(b) == 4  # "<start> 2" twice, "2 3" three times; the rest once
    assert b.encode([2, 3, 4, 2, 3]) == [2, 3, 1, 1, 3]  # "3 4" and "4 2" unknown
    assert Bigrams.build(sentences, n_words=5, min_count=4).encode([2, 3]) == [1, 1]  # no keys at all
    R = log_count_ratios([b.encode(s) for s in sentences], [1, 1, 0], len(b), classes=2)
    assert R.shape == (4, 2) and (R[:2] == 0).all() and R[2, 1] > 0  # "<start> 2" opens only positive sentences


def test_labels_differing_only_in_case_are_two_classes_with_a_warning(tmp_path, caplog):
    csv = tmp_path / "d.csv"
    csv.write_text("t,l\ngood,pos\nbad,neg\nfine,Pos\n")
    with caplog.at_level(logging.WARNING):
        assert read_csv(csv, "t", "l")[2] == ["Pos", "neg", "pos"]
    assert "the labels 'Pos' and 'pos' differ only in case" in caplog.text


def test_a_csv_row_with_an_unquoted_comma_or_a_repeated_column_is_refused(tmp_path):
    """Found by a review: 'honestly, a fine film,1' put 'a fine film' in the label column (129 classes, no
    word), and a header text,label,text trained on the last 'text' column."""
    f = tmp_path / "c.csv"
    f.write_text("text,label\ngood film,1\nhonestly, a bad film,0\nbad,0\n")
    with pytest.raises(UsageError, match=r"--csv: expected at most 2 fields per row, as in the header, got 3 in row 3"):
        read_csv(f, "text", "label")
    f.write_text("text,label,text\ngood film,1,x\nbad film,0,x\n")
    with pytest.raises(UsageError, match=r"--text-column: expected a column named once in the header, got 'text' 2"):
        read_csv(f, "text", "label")
    f.write_text('text,label\n"honestly, a bad film",0\n\ngood,1\n')  # quoted: one field; a blank line: no row
    assert read_csv(f, "text", "label") == (["honestly, a bad film", "good"], [0, 1], ["0", "1"])


def test_label_spellings_and_file_faults_found_by_a_review(tmp_path):
    """A label typed in two Unicode forms was two classes, as were 1 and 1.0 beside a word label; an empty CSV
    named --text-column; UTF-16 without a byte-order mark was read as text full of NULs."""
    nfd = "ne\u0301gatif"  # e + combining accent
    path = tmp_path / "l.csv"
    path.write_text(f"text,label\nbon film,positif\nmauvais,négatif\nnul,{nfd}\nun,1\ndeux,1.0\n", encoding="utf-8")
    texts, labels, names = read_csv(path, "text", "label")
    assert names == ["1", "négatif", "positif"] and labels == [2, 1, 1, 0, 0]
    empty = tmp_path / "e.csv"
    empty.write_text("\n")
    with pytest.raises(UsageError, match=r"^--csv: expected a header line and rows, got an empty file"):
        read_csv(empty, "text", "label")
    utf16 = tmp_path / "u.txt"
    utf16.write_bytes("good film\nbad film\n".encode("utf-16-le"))
    with pytest.raises(UsageError, match=r"^--text: expected utf-8 text, got a NUL character"):
        read_text(utf16)
    with pytest.raises(UsageError, match=r"^--pos: expected utf-8 text, got a NUL character"):
        read_pos_neg(utf16, path)


def test_alphabet_ids_follow_sorted_characters_not_first_occurrence():
    """from_text numbers the characters in sorted order, so the ids do not depend on where a character appears."""
    a = Alphabet.from_text("cab c")
    assert a.chars == " abc"
    assert a.encode("abc").tolist() == [2, 3, 4]
    assert Alphabet.from_text("bca") == Alphabet.from_text("abc")


def test_bigram_ids_are_zero_at_padding():
    """bigram_rows gives id 0 wherever the word is padding (id 0), not 'unknown' (1)."""
    b = Bigrams.build([[2, 3], [2, 3]], n_words=4, min_count=1)
    assert b.encode([2, 3, 0, 0]) == [2, 3, 0, 0]
    rows = bigram_rows(torch.tensor([[2, 3, 0], [3, 0, 0]]), torch.from_numpy(b.keys), 4)
    assert rows.tolist() == [[2, 3, 0], [1, 0, 0]]  # (0, 3) is not a kept bigram


def _csv(tmp_path, labels):
    path = tmp_path / "d.csv"
    path.write_text("text,label\n" + "".join(f"sentence {i},{y}\n" for i, y in enumerate(labels)), encoding="utf-8")
    return path


def test_numeric_labels_sort_by_value(tmp_path):
    """Numeric class names are ordered by value ("2" before "10"), then other names as text."""
    texts, labels, names = read_csv(_csv(tmp_path, ["10", "2", "1", "pos"]), "text", "label")
    assert names == ["1", "2", "10", "pos"]
    assert labels == [2, 1, 0, 3]


def test_an_underscored_label_is_not_read_as_a_number(tmp_path):
    """"1_0" is a name of its own, not the number 10 (Python's float() would accept it)."""
    texts, labels, names = read_csv(_csv(tmp_path, ["1_0", "10", "1_0"]), "text", "label")
    assert sorted(names) == ["10", "1_0"]
    assert labels[0] == labels[2] != labels[1]


def test_integer_labels_beyond_float_precision_stay_apart():
    """Found by a mutation audit: labels are numbers read by float(), so 10000000000000001 and 10000000000000000
    (beyond 2⁵³) became one class."""
    from grukit.data.sentiment import _numbers_as_one_spelling

    assert _numbers_as_one_spelling(["10000000000000001", "10000000000000000", "1.0", "1", "pos", "1_0"]) == \
        ["10000000000000001", "10000000000000000", "1", "1", "pos", "1_0"]
