"""grukit.tasks.compare_apps (`grukit compare --task forecast|classify`): its bounds, data and vocabulary.

More of the command is run end to end in test_compare.py; these came from a mutation audit."""
import numpy as np

from grukit.tasks import compare_apps
from grukit.tasks.compare import build_parser_for_tests


def _args(*argv):
    return build_parser_for_tests().parse_args(["--cells", "gru", *argv])


def test_the_smallest_limits_are_accepted():
    """A mutation audit: refusing --limit 373 (forecast, its minimum) or 20 (classify) passed every test; only
    one row or sentence fewer is refused."""
    spec = compare_apps.spec(_args("--task", "forecast", "--limit", "373", "--hidden", "2"), ("gru",))
    assert spec.task == "forecast" and "373 rows (the first 373: --limit)" in spec.notes[0]
    spec = compare_apps.spec(_args("--task", "classify", "--limit", "20", "--hidden", "2"), ("gru",))
    from grukit.tasks.classify import split

    n_train, n_val, n_test = map(len, split(20, 0))
    assert (len(spec.train), len(spec.val)) == (n_train, n_val) and n_train + n_val + n_test == 20
    assert f"{n_train} train / {n_val} validation / {n_test} test sentences" in spec.notes[0]


def test_classify_limit_draws_a_seeded_sample_and_the_vocabulary_is_the_training_parts():
    """A mutation audit: --limit keeping the first N sentences (all of one class in MR), and a vocabulary built
    from every part (test words known to the model), passed every test."""
    from grukit.data.sentiment import Vocabulary, tokenize
    from grukit.tasks import classify as C

    spec = compare_apps.spec(_args("--task", "classify", "--limit", "60", "--hidden", "2"), ("gru",))
    assert {y for _, y in spec.train} == {0, 1}  # MR's first 60 sentences are all negative
    ns = compare_apps._defaults(C, limit=60)
    texts, labels, _, _ = C.load_sentences(ns)
    tokens = [tokenize(t) for t in texts]
    keep = sorted(np.random.default_rng(0).choice([i for i, t in enumerate(tokens) if t], 60, replace=False))
    i_train = C.split(60, 0)[0]
    want = Vocabulary.build([tokens[keep[i]] for i in i_train], min_count=ns.min_count).words
    assert spec.build("gru", 2).config.vocabulary.split("\n") == list(want)


def test_every_network_but_grukits_gru_is_swapped_in():
    """A mutation audit: leaving torch's GRU out of the swap (so its column ran grukit's GRU) passed every test."""
    import torch

    from grukit.tasks.compare_apps import StatesOnly

    kinds = ("gru", "torch-gru", "lstm")
    for task, limit in (("forecast", "400"), ("classify", "20")):
        spec = compare_apps.spec(_args("--task", task, "--limit", limit, "--hidden", "2"), kinds)
        models = {kind: spec.build(kind, spec.hidden[kind]) for kind in kinds}
        assert not isinstance(models["gru"].gru, StatesOnly)
        for kind, torch_class in (("torch-gru", torch.nn.GRU), ("lstm", torch.nn.LSTM)):
            rnn = models[kind].gru
            assert isinstance(rnn, StatesOnly) and any(isinstance(m, torch_class) for m in rnn.modules()), kind
