"""Classify sentences with bidirectional GRUs reading word embeddings and Naive-Bayes log-count ratios;
compare with the majority class and two tuned logistic regressions.

    grukit classify                                      MR sentence polarity (10,662 sentences)
    grukit classify --pos POS.txt --neg NEG.txt [--encoding latin-1]
    grukit classify --csv FILE --text-column C --label-column L

Split (seeded by --seed): 10% test; of the remaining 90%, one ninth (10% of it) is held
out for early stopping and every choice, the rest trains. The vocabulary (words seen
≥ --min-count times) and the log-count ratios come from the training part only: R for
words and, with --bigrams (the default), R₂ for the word bigrams seen ≥ --min-count
times. A training sentence reads out-of-fold ratios (R and R₂ of the other 4 of 5
folds), so its own label never shapes its inputs. Each word also reads a fixed pretrained
vector g_t (--vectors: by default GloVe 6B 50d, bundled), also when the training part has not
seen it. The model (`SentenceEnsemble`): the
mean probability of --members classifiers (and, by default, of their states at the epochs
either side of the one early stopping keeps: --snapshots), each embedding → [E[w_t]; g_t; R[w_t];
R₂[w_{t−1} w_t]] → bidirectional grukit.GRU →
[last states; max over time] → linear; see `grukit.tasks.classify_model`. Training
batches hold sentences of similar length (`Buckets`: little padding). The literature
reports 10-fold cross-validation on MR; a single seeded split is noisier (one standard
error ≈ 1.3% at 1,066 test sentences).

Baselines in the same run, on the same split and vocabulary: the majority class of the
training part; logistic regression on bags of words (binary or count features and the
L2 penalty chosen on validation); and the same on the words and known bigrams with
features weighted by R and R₂ (NB-LR, Wang & Manning 2012's NBSVM with a logistic
loss), the linear model on the GRU's ratio inputs (`grukit.tasks.classify_baselines`).

Example (a small slice):
    >>> import argparse, tempfile
    >>> from grukit.tasks import classify
    >>> p = argparse.ArgumentParser(); classify.add_arguments(p)
    >>> args = p.parse_args(["--limit", "600", "--hidden", "8", "--embedding", "8", "--members", "2"])
    >>> args.out, args.epochs, args.seed, args.device, args.backend = tempfile.mkdtemp(), 1, 0, "cpu", "auto"
    >>> sorted(classify.run(args)["metrics"]["test_accuracy"])
    ['GRU', 'NB-weighted logistic regression', 'bag-of-words logistic regression', 'majority class']
"""
from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from grukit import plots
from grukit.checkpoint import save
from grukit.data import vectors as word_vectors
from grukit.data.sentiment import (
    Bigrams,
    Vocabulary,
    load_mr,
    log_count_ratios,
    out_of_fold_ratios,
    read_csv,
    read_pos_neg,
    tokenize,
)
from grukit.distributed import is_main, world
from grukit.errors import UsageError
from grukit.report import figure, seconds, table, write_report
from grukit.tasks.classify_baselines import baselines
from grukit.tasks.classify_model import POOLING, SentenceEnsemble, snapshot_average
from grukit.tasks.common import (
    TRAIN_FLAGS,
    add_encoding,
    add_resume,
    args_dict,
    check_at_least,
    check_common,
    check_trainable,
    encoding_of,
    environment,
    train_config,
    write_metrics,
)
from grukit.train import TrainConfig, fit, seed_everything

log = logging.getLogger(__name__)

EPOCHS = 15  # default epochs (the best on validation is kept)
PATIENCE = 4  # stop after this many epochs without a lower validation cross-entropy
# The epoch is chosen on the ensemble's validation cross-entropy, not its accuracy: on 12 inner
# splits of the default training part (docs/applications.md) it kept epochs whose held-out
# accuracy was 0.28 ± 0.15 points higher (7 better, 2 worse, 3 the same epoch).
FOLDS = 5  # folds of the training part for the out-of-fold log-count ratios
MEMBERS = 5  # default GRU classifiers averaged
# The tested model averages the ensembles of the epochs b−1, b, b+1 around the kept epoch b (a snapshot
# average, `classify_model.snapshot_average`): on the 12 inner splits its held-out accuracy was 0.23 ± 0.17
# points higher than epoch b alone (9 better, 3 worse; docs/applications.md).
SNAPSHOTS = 1
# Adversarial training on the embeddings (`adversarial_loss`) is off by default: with ε = 0.05 (chosen on one
# inner split's validation cross-entropy among 0.05, 0.2 and 0.5) its held-out accuracy on the 12 inner splits
# was 0.08 ± 0.21 points higher than without (7 better, 4 worse), under the one standard error its screen
# asked for (docs/applications.md), at twice the training time.
ADVERSARIAL = 0.0
# Pretrained word vectors (GloVe 6B 50d, `grukit.data.vectors`) beside the embedding: on the 12 inner splits
# the held-out accuracy was 0.67 ± 0.24 points higher than without (10 better, 2 worse; docs/applications.md).
VECTORS = "glove"
# Marking each word's negation scope (`classify_model.negation_scope`) is off by default: on the 12 inner splits its
# held-out accuracy was 0.08 ± 0.27 points higher than without (6 better, 6 worse; docs/applications.md).
NEGATION = False
GATE_WORDS = 30  # gates.png shows one test sentence of at most this many words


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--pos", type=Path, help="positive sentences, one per line (with --neg)")
    data.add_argument("--neg", type=Path, help="negative sentences, one per line (with --pos)")
    data.add_argument("--csv", type=Path, help="a CSV file with a header (with --text-column, --label-column)")
    data.add_argument("--text-column", help="text column of --csv")
    data.add_argument("--label-column", help="label column of --csv")
    add_encoding(data, "--pos/--neg/--csv")
    data.add_argument("--limit", type=int, help="use a seeded random subset of N sentences (quick runs)")
    data.add_argument("--min-count", type=int, default=2, help="keep words seen this often in training (default 2)")
    data.add_argument("--folds", type=int, default=0,
                      help="K-fold cross-validation, as the literature reports MR: every sentence is tested once, "
                           "each fold trains the whole model and the baselines anew (default 0: one 90/10 split)")
    model = parser.add_argument_group("model")
    model.add_argument("--members", type=int, default=MEMBERS, help=f"GRU classifiers averaged, each from its own "
                                                                     f"initialisation (default {MEMBERS})")
    model.add_argument("--snapshots", type=int, default=SNAPSHOTS,
                       help=f"also average the ensembles of this many epochs either side of the one early stopping "
                            f"keeps (default {SNAPSHOTS}: epochs b-1, b, b+1; 0: epoch b alone); each epoch "
                            f"averaged adds one ensemble's weights to memory, the state file and the checkpoint")
    model.add_argument("--embedding", type=int, default=64, help="word embedding size (default 64)")
    model.add_argument("--hidden", type=int, default=64, help="GRU units per direction (default 64)")
    model.add_argument("--ratios", action=argparse.BooleanOptionalAction, default=True,
                       help="feed each word's log-count ratios to the GRU beside its embedding (default on; "
                            "--no-ratios: the embedding alone)")
    model.add_argument("--vectors", default=VECTORS, metavar="SOURCE",
                       help="pretrained word vectors each word reads beside its embedding, fixed, also for words "
                            "the training part lacks: 'glove' (default: GloVe 6B 50d, its 20,000 most frequent "
                            "words and the MR words, bundled), 'none', or a file in GloVe's or word2vec's text "
                            "format (.gz too), of which the first 20,000 words and the words of the data are kept")
    model.add_argument("--bigrams", action=argparse.BooleanOptionalAction, default=None,
                       help="with --ratios, also feed the log-count ratios of the bigram ending at each word "
                            "(bigrams seen --min-count times in training; default on with --ratios)")
    model.add_argument("--negation", action=argparse.BooleanOptionalAction, default=NEGATION,
                       help="also feed each word whether it lies in a negation's scope (after not, never, no, "
                            "...n't and before the next punctuation or 'but') and, with --ratios, its log-count "
                            f"ratios again within that scope (default {'on' if NEGATION else 'off'})")
    model.add_argument("--pooling", choices=POOLING, default="last+max",
                       help="sentence vector from the GRU outputs (default last+max)")
    model.add_argument("--dropout", type=float, default=0.5, help="dropout (default 0.5)")
    model.add_argument("--word-dropout", type=float, default=0.0,
                       help="probability that a training word is read as unknown (default 0)")
    model.add_argument("--batch-size", type=int, default=32,
                       help="sentences per batch, per process under torchrun (default 32)")
    model.add_argument("--adversarial", type=float, default=ADVERSARIAL, metavar="EPS",
                       help=f"adversarial training: each step also trains on the embeddings moved by EPS times "
                            f"their norm in the direction that raises the loss most (Miyato et al. 2017; twice the "
                            f"training time; default {ADVERSARIAL:g}: off)")
    model.add_argument("--lr", type=float, default=5e-3, help="peak learning rate (default 5e-3)")
    model.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    add_resume(parser)


def _bundled(args) -> bool:
    """True when the run reads the bundled MR sentences (no --csv, --pos or --neg)."""
    return args.csv is None and args.pos is None and args.neg is None


def snapshot_members(args) -> str:
    """What a snapshot average takes the mean of at each epoch: "ensembles", or "classifiers" with one member."""
    return "ensembles" if args.members > 1 else "classifiers"


def load_sentences(args: argparse.Namespace) -> tuple[list[str], list[int], list[str], str]:
    """(texts, labels, class names, source) from the arguments."""
    encoding = encoding_of(args, "--pos/--neg/--csv", not _bundled(args))
    if args.csv is not None:
        if args.pos or args.neg:
            raise UsageError("--csv: expected either --csv or --pos/--neg, got both")
        if not args.text_column or not args.label_column:
            raise UsageError("--text-column/--label-column: expected both with --csv")
        return (*read_csv(args.csv, args.text_column, args.label_column, encoding=encoding), str(args.csv))
    if args.pos is not None or args.neg is not None:
        if args.pos is None or args.neg is None:
            raise UsageError(f"{'--neg' if args.neg is None else '--pos'}: expected together with "
                             f"{'--pos' if args.neg is None else '--neg'}, got nothing")
        return (*read_pos_neg(args.pos, args.neg, encoding=encoding), f"{args.pos} + {args.neg}")
    return (*load_mr(), "bundled MR sentence polarity v1.0")


def split(n: int, seed: int, folds: int = 0, fold: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded (train, val, test) index arrays: 10% test, then 10% of the rest for validation.

    With folds = K ≥ 2 the test part is instead fold `fold` of K seeded folds of near-equal
    size (every index is tested in exactly one fold), and the validation 10% is drawn from
    the other folds with a fold-specific seed.
    """
    order = np.random.default_rng(seed).permutation(n)
    if folds:
        bounds = np.linspace(0, n, folds + 1).round().astype(int)  # (K+1,)
        test = order[bounds[fold]:bounds[fold + 1]]
        rest = np.random.default_rng([seed, fold]).permutation(np.concatenate([order[:bounds[fold]],
                                                                              order[bounds[fold + 1]:]]))
    else:
        n_test = max(1, round(0.1 * n))
        test, rest = order[:n_test], order[n_test:]
    n_val = max(1, round(0.1 * len(rest)))
    return rest[n_val:], rest[:n_val], test


def collate(samples: list[tuple]) -> tuple[torch.Tensor, ...]:
    """[(ids, label)] → (ids (N, T) padded with 0, lengths (N,), labels (N,));
    [(ids, label, ρ (T_i, K))] → the same and ρ (N, T, K) padded with 0."""
    lengths = torch.tensor([len(s[0]) for s in samples])
    ids = torch.zeros(len(samples), int(lengths.max()), dtype=torch.int64)  # (N, T)
    for i, (seq, *_) in enumerate(samples):
        ids[i, : len(seq)] = torch.tensor(seq)
    batch = (ids, lengths, torch.tensor([s[1] for s in samples]))
    if len(samples[0]) < 3:
        return batch
    rho = torch.zeros(*ids.shape, samples[0][2].shape[1])  # (N, T, K)
    for i, (seq, _, r) in enumerate(samples):
        rho[i, : len(seq)] = torch.as_tensor(r, dtype=torch.float32)  # (T_i, K)
    return (*batch, rho)


class Buckets(Dataset):
    """Batches of sentences of similar length (little padding); item i is a whole batch.

    The sentences are shuffled (seeded), cut into pools of `pool` batches, each pool sorted
    by length and cut into batches of `batch_size`. `fit` then runs with batch_size = the
    world size (1 outside torchrun; under DDP each rank takes one of these batches per step)
    and shuffles the order of these batches every epoch.
    """

    def __init__(self, data: list[tuple], batch_size: int, seed: int, pool: int = 50):
        order = np.random.default_rng(seed).permutation(len(data))
        self.batches = []
        for a in range(0, len(order), batch_size * pool):
            chunk = sorted(order[a:a + batch_size * pool].tolist(), key=lambda i: len(data[i][0]))
            self.batches += [[data[i] for i in chunk[b:b + batch_size]] for b in range(0, len(chunk), batch_size)]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> list[tuple]:
        return self.batches[i]


def collate_batch(items: list[list[tuple]]):
    """`collate` of the one bucketed batch that `fit` hands over."""
    return collate(items[0])


def class_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """Cross-entropy of one SentenceClassifier on a batch (ids, lengths, labels[, ρ])."""
    ids, lengths, y, *rho = batch
    return F.cross_entropy(model(ids, lengths, *rho), y)


def ensemble_loss(model: torch.nn.Module, batch, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Σ_m cross-entropy of member m of a SentenceEnsemble on (ids, lengths, labels[, ρ]): the members
    train independently. `shift` (M, N, T, D): member m's embeddings move by shift[m]."""
    ids, lengths, y, *rho = batch
    logits = model(ids, lengths, *rho, members=True, shift=shift)  # (M, N, C)
    return sum(F.cross_entropy(member, y) for member in logits)


def adversarial_loss(eps: float) -> Callable[[torch.nn.Module, tuple], torch.Tensor]:
    """L = Σ_m CE_m(e_m) + Σ_m CE_m(e_m + r_m),   r_m = ε ‖E_m[w]‖ g_m / ‖g_m‖,   g_m = ∂CE_m/∂e_m

    A step loss for `fit`: adversarial training on the word embeddings (Miyato et al. 2017).
    e_m (N, T, D) are the embeddings member m's GRU reads (after their dropout); the norms are
    per sentence, over its (T, D) values, so ε is the move's size relative to the sentence's
    embeddings E_m[w]; r_m is held fixed (no gradient flows through it). Both passes draw the
    same dropout masks, so r_m moves the inputs of the network it was computed for. ε = 0 gives
    `ensemble_loss`.
    """
    if eps == 0:
        return ensemble_loss

    def step_loss(model: torch.nn.Module, batch) -> torch.Tensor:
        ids = batch[0]  # (N, T)
        members = getattr(model, "module", model).members  # the ensemble inside a DDP wrapper
        zero = torch.zeros(len(members), *ids.shape, members[0].config.embedding, device=ids.device,
                           requires_grad=True)  # (M, N, T, D)
        with torch.random.fork_rng(devices=[ids.device] if ids.is_cuda else []):  # the second pass redraws these
            clean = ensemble_loss(model, batch, shift=zero)  # ()
        (g,) = torch.autograd.grad(clean, zero, retain_graph=True)  # (M, N, T, D) = ∂CE_m/∂e_m
        with torch.no_grad():
            e = torch.stack([m.embed(m.known(ids)) for m in members])  # (M, N, T, D) E_m[w]
            scale = e.flatten(2).norm(dim=2) / g.flatten(2).norm(dim=2).clamp_min(1e-12)  # (M, N)
            r = eps * scale[:, :, None, None] * g  # (M, N, T, D)
        return clean + ensemble_loss(model, batch, shift=r)  # ()

    return step_loss


@torch.no_grad()
def predict(model: torch.nn.Module, data: list[tuple[list[int], int]], batch_size: int = 256) -> np.ndarray:
    """The most probable class of every sentence (ids, label) of `data`, (N,); ρ = R[ids] (no folds)."""
    device = next(model.parameters()).device
    out = []
    for a in range(0, len(data), batch_size):
        ids, lengths, _ = collate(data[a:a + batch_size])
        out.append(model(ids.to(device), lengths).argmax(-1).cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def evaluate(model: torch.nn.Module, val: list[tuple[list[int], int]]) -> dict[str, float]:
    """Validation cross-entropy and accuracy (for `fit`'s early stopping)."""
    device = next(model.parameters()).device
    ids, lengths, y = collate(val)
    logits = model(ids.to(device), lengths)  # (N, C) logits, or log-probabilities of an ensemble
    return {"val_loss": F.cross_entropy(logits, y.to(device)).item(),
            "val_accuracy": (logits.argmax(-1).cpu() == y).float().mean().item()}


def command_config(args: argparse.Namespace, **overrides) -> TrainConfig:
    """The command's TrainConfig: at most EPOCHS epochs of warmup + cosine, early stopping on the ensemble's
    validation cross-entropy (PATIENCE), the --snapshots window; `overrides` replace any of these."""
    return train_config(args, **{"epochs": EPOCHS, "batch_size": world()[1], "lr": args.lr,
                                 "weight_decay": args.weight_decay, "warmup_steps": 50, "metric": "val_loss",
                                 "mode": "min", "patience": PATIENCE, "snapshots": args.snapshots, **overrides})


def with_bigrams(args: argparse.Namespace) -> bool:
    """Whether the model reads the bigrams' ratios: --bigrams, which is on by default with --ratios."""
    return args.ratios and args.bigrams is not False


def _check(args: argparse.Namespace) -> None:
    check_at_least(args, ("embedding", "hidden", "batch_size", "min_count", "members"))
    for flag, value in (("--dropout", args.dropout), ("--word-dropout", args.word_dropout)):
        if not 0 <= value < 1:
            raise UsageError(f"{flag}: expected a number in [0, 1), got {value}")
    check_at_least(args, ("limit",), least=20)
    check_at_least(args, ("snapshots",), least=0)
    if not 0 <= args.adversarial <= 10:  # also refuses nan
        raise UsageError(f"--adversarial: expected a number from 0 to 10, got {args.adversarial}")
    if args.folds == 1 or not 0 <= args.folds <= 100:
        raise UsageError(f"--folds: expected 0 (one split) or an integer from 2 to 100, got {args.folds}")
    if args.bigrams and not args.ratios:  # the bigrams' ratios are fed beside the words': nothing to add them to
        raise UsageError("--bigrams: expected with --ratios (it adds the bigrams' log-count ratios to the words'), "
                         "got --no-ratios")


def load_tokens(args: argparse.Namespace) -> dict:
    """Sentences → tokens (empty ones dropped, --limit applied), and the word vectors of --vectors (None for
    'none'): {"tokens", "labels", "names", "source", "vectors"}."""
    texts, labels, names, source = load_sentences(args)
    tokens = [tokenize(t) for t in texts]
    keep = [i for i, t in enumerate(tokens) if t]
    if args.limit is not None and args.limit < len(keep):
        source += f" (a seeded random {args.limit:,} of its {len(keep):,} sentences, by --limit)"
        keep = sorted(np.random.default_rng(args.seed).choice(keep, args.limit, replace=False).tolist())
    tokens, labels = [tokens[i] for i in keep], np.array([labels[i] for i in keep])
    if len(set(labels.tolist())) < 2:
        raise UsageError(f"--pos/--neg/--label-column: expected at least two classes, got only {names[labels[0]]!r}")
    if len(tokens) < 20:
        raise UsageError(f"--pos/--neg/--csv: expected at least 20 non-empty sentences, got {len(tokens)}")
    vectors = word_vectors.load(args.vectors, wanted={t for sentence in tokens for t in sentence})
    return {"tokens": tokens, "labels": labels, "names": names, "source": source, "vectors": vectors}


def prepare(args: argparse.Namespace, loaded: dict | None = None, fold: int = 0) -> dict:
    """Tokens (`load_tokens`) → the seeded split (test = fold `fold` with --folds) → vocabulary and ids
    (training part only); `prepare_split` says what the dict holds."""
    loaded = load_tokens(args) if loaded is None else loaded
    return {**prepare_split(args, loaded, split(len(loaded["tokens"]), args.seed, args.folds, fold)), "fold": fold}


def prepare_split(args: argparse.Namespace, loaded: dict, parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict:
    """`prepare` for the given (training, validation, test) indices into `loaded`'s sentences: `loaded` and
    "vocab", "split", "train"/"val"/"test" [(vocabulary ids, label)] (what the ratios and baselines read),
    "gru" (train, val, test) as the GRU reads them (with word vectors: a word the vocabulary lacks by its
    vector word's id), "vector_words" and "G" (`vector_table`; (), None without vectors)."""
    tokens, labels = loaded["tokens"], loaded["labels"]
    i_train, i_val, i_test = parts
    vocab = Vocabulary.build([tokens[i] for i in i_train], min_count=args.min_count)
    if not vocab.words:
        raise UsageError(f"--min-count: expected a count that keeps some word of the training part, got "
                         f"{args.min_count} (no word occurs that often in its {len(i_train)} sentences)")
    encoded = [(vocab.encode(t), int(y)) for t, y in zip(tokens, labels)]
    train, val, test = ([encoded[i] for i in part] for part in (i_train, i_val, i_test))
    d = {**loaded, "vocab": vocab, "split": (i_train, i_val, i_test), "train": train, "val": val, "test": test,
         "gru": (train, val, test), "vector_words": (), "G": None}
    if loaded.get("vectors") is not None:
        d["vector_words"], d["G"] = vector_table(vocab, loaded["vectors"], tokens)
        extra = {w: len(vocab) + j for j, w in enumerate(d["vector_words"])}  # len(vocab) = V + 2
        gru = [([extra.get(t, 1) if i == 1 else i for t, i in zip(sentence, ids)], y)
               for sentence, (ids, y) in zip(tokens, encoded)]  # a word unknown to vocab, by its vector
        d["gru"] = tuple([gru[i] for i in part] for part in (i_train, i_val, i_test))
    return d


def vector_table(vocab: Vocabulary, vectors: word_vectors.WordVectors, tokens: list[list[str]]
                 ) -> tuple[tuple[str, ...], torch.Tensor]:
    """(vector words, G (V+2+U, P)): the model's fixed word vectors. Ids 2 … V+1 are the vocabulary's words;
    the U vector words, ids V+2 …, are the words of `tokens` and the table's first FREQUENT words that the
    vocabulary lacks and that have a vector (`WordVectors.vector`), sorted; rows 0, 1 and a word without a
    vector read 0. Which rows the table keeps changes no prediction on `tokens`, only what a checkpoint
    knows of new text."""
    known = set(vocab.words)
    candidates = {t for sentence in tokens for t in sentence} | set(vectors.words[:word_vectors.FREQUENT])
    extra = tuple(sorted(w for w in candidates - known if vectors.vector(w) is not None))
    G = np.zeros((len(vocab) + len(extra), vectors.dims), dtype=np.float32)  # (V+2+U, P); len(vocab) = V + 2
    G[2:] = vectors.rows(vocab.words + extra)  # (V+U, P)
    return extra, torch.from_numpy(G)


def ratios(train: list[tuple[list[int], int]], n_words: int, classes: int, seed: int, bigram_min_count: int = 0
           ) -> tuple[dict[str, torch.Tensor], list[tuple]]:
    """ρ_t = [R[w_t]; R2[w_{t−1} w_t]] (T, C) or (T, 2C): the fixed channels from the whole training
    part, and for every training sentence the same built from the folds other than its own.

    Returns ({"R": (V, C)} plus, when bigram_min_count ≥ 1, {"bigram_keys": (B,), "R2": (B+2, C)}
    for the bigrams seen that often), [(ids, label, ρ (T, C) or (T, 2C))]: ρ_t = [R[w_t]; R2[w_{t−1} w_t]]
    with both tables computed without the sentence's own fold (the same folds for both).
    When bigram_min_count ≥ 1 but no bigram is seen that often, the channels are the words' only
    (logged).
    """
    ids, y = [s[0] for s in train], [s[1] for s in train]
    tables = {"R": torch.from_numpy(log_count_ratios(ids, y, n_words, classes)).float()}  # (V, C)
    rho = out_of_fold_ratios(ids, y, n_words, classes, folds=FOLDS, seed=seed)  # [(T_i, C)]
    if bigram_min_count:
        bigrams = Bigrams.build(ids, n_words=n_words, min_count=bigram_min_count)
        if len(bigrams.keys):
            pairs = [bigrams.encode(s) for s in ids]
            tables["bigram_keys"] = torch.from_numpy(bigrams.keys)  # (B,)
            tables["R2"] = torch.from_numpy(log_count_ratios(pairs, y, len(bigrams), classes)).float()  # (B+2, C)
            rho2 = out_of_fold_ratios(pairs, y, len(bigrams), classes, folds=FOLDS, seed=seed)  # [(T_i, C)]
            rho = [np.concatenate([a, b], axis=1) for a, b in zip(rho, rho2)]  # [(T_i, 2C)]
        else:
            log.warning("classify: no bigram is seen %d times in the training part; the GRU reads word "
                        "ratios only", bigram_min_count)
    return tables, [(s, label, r.astype(np.float32)) for s, label, r in zip(ids, y, rho)]


def run(args: argparse.Namespace) -> dict:
    # threads: a step takes 57 ms on 2 idle cores vs 88 ms on 1, 705 vs 179 ms when busy; --batch-size is
    # sentences per rank (`Buckets`)
    check_common(args, threads="idle", split_batches=False)
    _check(args)
    loaded = load_tokens(args)
    if args.folds > len(loaded["tokens"]):  # every fold's test part needs a sentence
        raise UsageError(f"--folds: expected at most the number of sentences ({len(loaded['tokens'])}), "
                         f"got {args.folds}")
    if args.folds:
        from grukit.tasks.classify_cv import cross_validate  # it imports this module

        return cross_validate(args, loaded)
    return run_split(args, prepare(args, loaded), Path(args.out))


def build(args: argparse.Namespace, d: dict) -> tuple[SentenceEnsemble, list[tuple], dict[str, torch.Tensor]]:
    """(the untrained ensemble, its training items [(ids, label[, out-of-fold ρ])], the ratio tables) for the
    split `d` (`prepare`), seeded by --seed."""
    vocab, names = d["vocab"], d["names"]
    tables, train = ratios(d["train"], len(vocab), len(names), args.seed,
                           bigram_min_count=args.min_count if with_bigrams(args) else 0)
    gru_train, G = d["gru"][0], d["G"]  # ids past the vocabulary's: words known by their vector; (V+2+U, P)
    seed_everything(args.seed)
    sizes = dict(classes=len(names), embedding=args.embedding, hidden_size=args.hidden, dropout=args.dropout,
                 backend=args.backend, ratios=len(names) if args.ratios else 0, word_dropout=args.word_dropout,
                 pooling=args.pooling, bigrams=len(tables.get("bigram_keys", ())),
                 vectors=0 if G is None else G.shape[1], vector_words="\n".join(d["vector_words"]),
                 negation=args.negation)
    words = "\n".join(vocab.words)
    check_trainable(lambda: SentenceEnsemble(words, members=1, **sizes), "--members, --hidden, --embedding",
                    copies=args.members)
    model = SentenceEnsemble(words, members=args.members, **sizes)
    if G is not None:
        model.set_vectors(G)
    if args.ratios:
        model.set_ratios(**tables)
        train = [(ids, label, rho) for (ids, _), (_, label, rho) in zip(gru_train, train)]  # ρ out of fold
    else:
        train = gru_train
    return model, train, tables


def run_split(args: argparse.Namespace, d: dict, out: Path) -> dict:
    """Train and score the GRU ensemble and the baselines on one split `d` (`prepare`); files into `out`."""
    vocab, names, (i_train, i_val, i_test) = d["vocab"], d["names"], d["split"]
    model, train, tables = build(args, d)
    _, gru_val, gru_test = d["gru"]  # ids past the vocabulary's: words known by their vector
    result = fit(model, Buckets(train, args.batch_size, args.seed), gru_val,
                 step_loss=adversarial_loss(args.adversarial), loss_settings={"--adversarial": args.adversarial},
                 evaluate=evaluate, config=command_config(args), out=out, collate=collate_batch,
                 flags={**TRAIN_FLAGS, "lr": "--lr", "weight_decay": "--weight-decay", "snapshots": "--snapshots"})
    kept, model = model.eval(), snapshot_average(model, result.snapshots).eval()  # kept: epoch b alone
    epochs = [e for e, _ in result.snapshots] or [result.best_epoch]

    y_test = d["labels"][i_test]
    predictions, choices = baselines(d, tables)
    averaged = len(epochs) > 1
    predictions["GRU"] = gru_pred = predict(model, gru_test)
    kept_pred = predict(kept, gru_test) if averaged else gru_pred
    val_accuracy = evaluate(model, gru_val)["val_accuracy"] if averaged else result.best.get("val_accuracy")
    accuracy = {name: float((pred == y_test).mean()) for name, pred in predictions.items()}
    if not is_main():
        return {}
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (y_test, gru_pred), 1)
    files = _figures(out, kept, d, result.history, confusion, args.adversarial)
    rows = [{"model": k, "test accuracy": v} for k, v in sorted(accuracy.items(), key=lambda kv: -kv[1])]
    summary = table(rows, ["model", "test accuracy"])
    metrics = {"test_accuracy": accuracy, "test_size": len(i_test), "train_size": len(i_train), "val_size": len(i_val),
               "vocabulary": len(vocab), "bigrams": model.config.bigrams, "classes": names,
               "vectors": _vector_metrics(d),
               "best_epoch": result.best_epoch, "epochs_run": len(result.history), "snapshot_epochs": epochs,
               "val_accuracy": val_accuracy, "val_accuracy_best_epoch": result.best.get("val_accuracy"),
               "test_accuracy_best_epoch": float((kept_pred == y_test).mean()),
               "baselines": choices, "confusion": confusion.tolist(), "train_seconds": round(result.run_seconds, 2),
               "args": args_dict(args), "environment": environment()}
    files["metrics"] = write_metrics(out, metrics)
    files["report"] = _report(out, args, d, metrics, summary, files)
    if averaged:  # the checkpoint is the model tested: the snapshot average
        save(model, result.files["model"])
    files.update(result.shown_files())
    return {"summary": summary, "files": files, "metrics": metrics}


def _figures(out: Path, model: SentenceEnsemble, d: dict, history: list[dict], confusion: np.ndarray,
             adversarial: float = 0.0) -> dict[str, Path]:
    """Loss curves, the gates of `model` (the ensemble of the kept epoch) on one test sentence, the confusion
    matrix of the model tested. adversarial > 0: the training loss is the clean plus the adversarial pass's."""
    tokens, i_test = d["tokens"], d["split"][2]
    lengths = np.array([len(tokens[i]) for i in i_test])  # (n_test,)
    k = int(np.argmax(np.where(lengths <= GATE_WORDS, lengths, 0))) if (lengths <= GATE_WORDS).any() \
        else int(np.argmin(lengths))  # the longest test sentence of at most GATE_WORDS words, else the shortest
    probe = tokens[int(i_test[k])][:GATE_WORDS]
    probe_ids = d["gru"][2][k][0][:GATE_WORDS]  # (T,) as the model reads it, its first GATE_WORDS words
    z, r = model.gates(torch.tensor(probe_ids, device=next(model.parameters()).device))
    return {"loss curves": plots.loss_curves(history, out / "loss.png", keys=["train_loss", "val_loss", "val_accuracy"],
                                             title="classify: cross-entropy (train: per member"
                                                   + (", clean plus adversarial pass" if adversarial else "")
                                                   + "; validation: the ensemble) and validation accuracy",
                                             members=model.config.members),
            "gates": plots.gates(z.cpu().numpy(), r.cpu().numpy(), out / "gates.png",
                                 title="GRU gates (first member, forward direction) reading one test sentence"
                                       + (f" (its first {GATE_WORDS} words)" if lengths[k] > GATE_WORDS else ""),
                                 xlabel="word", xticklabels=probe),
            "confusion": plots.confusion(confusion, d["names"], out / "confusion.png", title="GRU on the test part")}


def _vector_metrics(d: dict) -> dict | None:
    """What the word vectors cover: None without them."""
    vectors = d.get("vectors")
    if vectors is None:
        return None
    test_ids = [i for ids, _ in d["gru"][2] for i in ids]
    G = d["G"]
    has = (G.abs().sum(1) > 0).numpy()  # (V+2+U,) a row with a vector
    return {"source": vectors.source, "dims": vectors.dims, "vector_words": len(d["vector_words"]),
            "vocabulary_with_vector": int(has[2:len(d["vocab"])].sum()),
            "test_tokens_with_vector": float(has[test_ids].mean()),
            "test_tokens_unknown_to_vocabulary": float(np.mean([i == 1 for ids, _ in d["test"] for i in ids]))}


def _adversarial(eps: float) -> str:
    return (f"adversarial training on the embeddings, each step also on the embeddings moved by {eps:g} times their "
            f"norm in the direction that raises the loss most; " if eps else "")


POOLED = {"last+max": "[last states; max over time]", "mean+max": "[mean over time; max over time]"}


def _report(out: Path, args: argparse.Namespace, d: dict, metrics: dict, summary: str, files: dict) -> Path:
    acc, choice, n_test = metrics["test_accuracy"], metrics["baselines"], metrics["test_size"]
    ahead = [name for name in acc if name != "GRU" and acc[name] >= acc["GRU"]]
    se = float(np.sqrt(acc["GRU"] * (1 - acc["GRU"]) / n_test))
    v = metrics["vectors"]
    e, embedding = ("E[w_t]; g_t", f"E a {args.embedding}-d word embedding, g_t the word's fixed {v['dims']}-d "
                    f"pretrained vector ({v['source']}; {v['test_tokens_with_vector']:.1%} of the test part's words "
                    f"have one, {v['test_tokens_unknown_to_vocabulary']:.1%} are unknown to the vocabulary)") if v \
        else ("E[w_t]", f"E a {args.embedding}-d word embedding")
    if not args.ratios:
        inputs = f"[{e}], {embedding}" if v else f"the embedding E[w_t], {embedding}"
    elif not metrics["bigrams"]:
        inputs = f"[{e}; R[w_t]], {embedding}, R the word's log-count ratios (out-of-fold for training sentences)"
    else:
        inputs = (f"[{e}; R[w_t]; R₂[w_(t−1) w_t]], {embedding}, R and R₂ the log-count ratios of the word and "
                  f"of the bigram ending at it ({metrics['bigrams']:,} training bigrams) (out-of-fold for training "
                  f"sentences)")
    if args.negation:
        inputs += (", then ν_t (1 for a word in a negation's scope: after not, never, no, …n't and before the next "
                   "punctuation or 'but')" + (" and ν_t·R[w_t]" if args.ratios else ""))
    method = ((f"The mean probability of {args.members} classifiers from different initialisations, each: "
               if args.members > 1 else "One classifier: ")
              + f"{inputs} → bidirectional grukit.GRU {args.hidden} units per direction (reset "
              f"before) → {POOLED[args.pooling]} → linear; dropout {args.dropout}, word dropout "
              f"{args.word_dropout}; {_adversarial(args.adversarial)}batches of {args.batch_size} sentences of "
              f"similar length; AdamW lr {args.lr}, "
              f"weight decay {args.weight_decay}, cosine schedule, "
              + ("each member on its own cross-entropy, early stopping on the ensemble's validation cross-entropy"
                 if args.members > 1 else "early stopping on the validation cross-entropy")
              + f" (best epoch {metrics['best_epoch']} of "
              f"{metrics['epochs_run']}); {seconds(metrics['train_seconds'])}.")
    if len(metrics["snapshot_epochs"]) > 1:
        method += (f" The model tested is a snapshot average: the mean probability of the "
                   f"{snapshot_members(args)} of epochs "
                   f"{', '.join(map(str, metrics['snapshot_epochs']))} "
                   f"({len(metrics['snapshot_epochs']) * args.members} classifiers; validation accuracy "
                   f"{metrics['val_accuracy']:.2%}, epoch {metrics['best_epoch']} alone "
                   f"{metrics['val_accuracy_best_epoch']:.2%}; test accuracy of epoch {metrics['best_epoch']} "
                   f"alone, for reference: {metrics['test_accuracy_best_epoch']:.2%}).")
    i_train, i_val, i_test = d["split"]
    protocol = (f"fold {d['fold'] + 1} of a {args.folds}-fold cross-validation (every sentence is tested in one "
                f"fold; the folds are summed up in the report one folder up)" if args.folds and "fold" in d else
                "a single 90/10 split" + (", where the literature uses 10-fold cross-validation" if _bundled(args)
                                          else "") + " (`--folds 10` runs that)")
    data = (f"{d['source']}: {len(d['tokens']):,} sentences, classes {', '.join(map(str, d['names']))}. "
            f"Seeded split (seed {args.seed}): "
            f"{len(i_train):,} train, {len(i_val):,} validation (early stopping, baseline choices), "
            f"{len(i_test):,} test — {protocol}. "
            f"Vocabulary and log-count ratios from the training part only: {metrics['vocabulary']:,} ids "
            f"(min count {args.min_count}).")
    baseline = "; ".join(f"{name}: {c['features']} features{' of ' + c['terms'] if 'terms' in c else ''}, "
                         f"L2 λ = {c['l2']:g}" for name, c in choice.items())
    verdict = (f"The GRU {'beats every baseline' if not ahead else 'does NOT beat ' + ', '.join(ahead)} on this "
               f"split (one standard error of its accuracy: {se:.1%}, so gaps under about {2 * se:.1%} are within "
               f"noise). Chosen on validation: {baseline}. NB-weighted: features scaled by their log-count ratios, "
               f"the linear model on the GRU's ratio inputs.")
    return write_report(out / "report.md", "grukit classify", [
        ("What ran", method), ("Data", data), ("Test accuracy", summary + "\n\n" + verdict),
        ("Figures", "\n\n".join(figure(n, p) for n, p in files.items() if str(p).endswith(".png")))])
