"""Sentence classifier: [word embedding; word vector; log-count ratios] → bidirectional GRU → pooled
states → linear.

    w̃_t = 1 (unknown) with probability p_w while training, else w_t     word dropout
    x_t = [dropout(E[w̃_t]) ; dropout(g_t) ; ρ_t]     (N, T, D+P+K') ρ_t = R[w̃_t], fixed (K = 0: no ratios)
                                                                  or [R[w̃_t]; R₂[w̃_{t−1} w̃_t]] (K' = 2K, bigrams)
                                                                  g_t = G[w̃_t], fixed (P = 0: no vectors)
                                                                  with negation, ρ_t also ends in [ν_t ; ν_t·R[w̃_t]]
    o_t = [h_t^fwd ; h_t^rev] = BiGRU(x)              (N, T, 2H)   grukit.GRU, lengths respected
    v   = [h_n^fwd ; h_n^rev ; max_t o_t]             (N, 4H)      pooling "last+max" (padding excluded)
        | [mean_t o_t ; max_t o_t]                                 pooling "mean+max"
    p(y | w) = softmax(W_o · dropout(v) + b_o)        (N, C)

R (V, K) holds each word's Naive-Bayes log-count ratio for each class against the rest
(Wang & Manning 2012; `grukit.data.sentiment.log_count_ratios`), computed on the
training part and fixed with `set_ratios`. With `bigrams` = B > 0 the model also holds
the B training bigrams' keys κ = w_{t−1}·V + w_t (sorted) and their ratios R₂
(`grukit.data.sentiment.Bigrams`), and reads the ratio of the bigram ending at each word
(0 for a bigram it does not know). The GRU reads them beside the embedding and
learns how word polarities combine along the sentence (negation, "but", intensifiers);
the embedding carries what the ratios miss. While training, the task may hand over ρ
itself (`rho`, out-of-fold ratios, so that a sentence's own label does not leak into
its inputs); otherwise ρ_t = R[w_t].

With `negation`, ν_t = 1 when w_t lies in a negation's scope: after a word that opens one ("not", "never",
"no", any "…n't", `NEGATORS`) and before the next punctuation mark or "but" (`SCOPE_ENDS`), else 0. The
GRU then also reads ν_t and ν_t·R[w_t], the ratios of the words a negation governs, so that "not … bad"
need not be learnt from the few training sentences that hold it.

G (P = `vectors` > 0) holds pretrained word vectors (`grukit.data.vectors`), fixed. Ids past
the vocabulary's, V + 2 …, are `vector_words`: words that the training part lacks (or saw
fewer than min-count times) and that have a vector. They read as unknown for E, R and R₂ and
by their own row of G, so a word never seen in training still brings what the vectors know
of it. `SentenceEnsemble` averages the probabilities of M classifiers from different
initialisations, trained side by side, each on its own loss; it holds G once and hands
g = G[ids] to its members.

The vocabulary and the vector words (newline-joined) are part of the config, R and G
buffers, so a checkpoint classifies new text on its own (`SentenceEnsemble.encode`).

Example:
    >>> import torch
    >>> from grukit.tasks.classify_model import SentenceClassifier
    >>> m = SentenceClassifier(vocabulary="bad\\ngood", classes=2, embedding=8, hidden_size=4, ratios=2)
    >>> m.set_ratios(torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.5, -1.5], [-1.5, 1.5]]))
    >>> m(torch.tensor([[2, 3, 0], [3, 0, 0]]), torch.tensor([2, 1])).shape
    torch.Size([2, 2])
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import torch
from torch import Tensor, nn

import grukit
from grukit.checkpoint import register
from grukit.data.sentiment import bigram_rows

POOLING = ("last+max", "mean+max")


@dataclass(frozen=True)
class ClassifierConfig:
    vocabulary: str  # known words joined by "\n"; id = position + 2 (0 padding, 1 unknown)
    classes: int  # C, number of labels
    embedding: int = 128  # D, word embedding size
    hidden_size: int = 128  # H, GRU units per direction
    dropout: float = 0.5  # on embeddings and before the head
    reset: str = "before"  # GRU reset placement (DESIGN §1)
    backend: str = "auto"  # GRU kernel backend
    ratios: int = 0  # K, fixed input channels per word (log-count ratios; 0 = none)
    word_dropout: float = 0.0  # p_w, training-time probability that a word is read as unknown
    pooling: str = "last+max"  # "last+max" or "mean+max" (see the module docstring)
    bigrams: int = 0  # B, known bigrams whose K ratios are read too (0 = words only)
    vectors: int = 0  # P, fixed pretrained vector channels per word (0 = none)
    negation: bool = False  # also read ν_t (in a negation's scope) and ν_t·R[w_t] (see the module docstring)


def _check_options(ratios: int, word_dropout: float, pooling: str, bigrams: int, vectors: int = 0) -> None:
    if ratios < 0:
        raise ValueError(f"ratios: expected an integer >= 0, got {ratios}")
    if vectors < 0:
        raise ValueError(f"vectors: expected an integer >= 0, got {vectors}")
    if bigrams < 0 or (bigrams and not ratios):
        raise ValueError(f"bigrams: expected 0, or an integer >= 1 together with ratios >= 1, got {bigrams} "
                         f"with ratios {ratios}")
    if not 0 <= word_dropout < 1:
        raise ValueError(f"word_dropout: expected a number in [0, 1), got {word_dropout}")
    if pooling not in POOLING:
        raise ValueError(f"pooling: expected one of {POOLING}, got {pooling!r}")


# Words that open a negation's scope, and the marks and words that close it (Das & Chen 2001; Pang et al. 2002
# mark the words between a negation and the next punctuation). Any word ending in "n't" opens one too.
NEGATORS = frozenset({"not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "nowhere", "without",
                      "hardly", "barely", "cannot"})
SCOPE_ENDS = frozenset({".", ",", ";", ":", "!", "?", "-", "(", ")", "but"})


def negation_scope(ids: Tensor, opens: Tensor, ends: Tensor) -> Tensor:
    """ν (N, T), 1.0 where a word lies in a negation's scope: some earlier word of its sentence opens one
    (`opens[id]`) and no word from there up to it ends it (`ends[id]`); the opening word itself reads 0.

    Example:
        >>> import torch
        >>> opens, ends = torch.tensor([False, False, True, False, False]), torch.tensor([False] * 4 + [True])
        >>> negation_scope(torch.tensor([[2, 3, 3, 4, 3, 0]]), opens, ends).tolist()  # not x x . x <pad>
        [[0.0, 1.0, 1.0, 0.0, 0.0, 0.0]]
    """
    T = ids.shape[1]
    at = torch.arange(T, device=ids.device).expand_as(ids)  # (N, T)
    none = torch.full_like(at, -1)  # (N, T)
    opened = torch.where(opens[ids], at, none).cummax(dim=1).values  # (N, T) last opening word up to t
    ended = torch.where(ends[ids], at, none).cummax(dim=1).values  # (N, T) last closing mark up to t
    return ((opened > ended) & ~opens[ids] & (ids > 0)).float()  # (N, T)


def pool(out: Tensor, h_n: Tensor, lengths: Tensor, pooling: str) -> Tensor:
    """v from the BiGRU's outputs (N, T, 2H), final states (2, N, H) and lengths (N,): (N, 4H)."""
    T = out.shape[1]
    pad = torch.arange(T, device=out.device)[None, :] >= lengths.to(out.device)[:, None]  # (N, T)
    peak = out.masked_fill(pad[:, :, None], float("-inf")).amax(dim=1)  # (N, 2H)
    if pooling == "mean+max":
        mean = out.masked_fill(pad[:, :, None], 0.0).sum(1) / lengths.to(out.device)[:, None]  # (N, 2H)
        return torch.cat([mean, peak], dim=-1)  # (N, 4H)
    return torch.cat([h_n[0], h_n[1], peak], dim=-1)  # (N, 4H)


@register
class SentenceClassifier(nn.Module):
    __doc__ = __doc__

    def __init__(self, vocabulary: str, classes: int, embedding: int = 128, hidden_size: int = 128,
                 dropout: float = 0.5, reset: str = "before", backend: str = "auto", ratios: int = 0,
                 word_dropout: float = 0.0, pooling: str = "last+max", bigrams: int = 0, vectors: int = 0,
                 negation: bool = False):
        super().__init__()
        _check_options(ratios, word_dropout, pooling, bigrams, vectors)
        self.config = ClassifierConfig(vocabulary, classes, embedding, hidden_size, dropout, reset, backend, ratios,
                                       word_dropout, pooling, bigrams, vectors, negation)
        words = ["", ""] + vocabulary.split("\n") if vocabulary else ["", ""]  # ids 0 (padding), 1 (unknown)
        n_words = len(words)
        self.embed = nn.Embedding(n_words, embedding, padding_idx=0)
        if negation:  # fixed by the vocabulary, so not saved
            self.register_buffer("opens", torch.tensor([w in NEGATORS or w.endswith("n't") for w in words]),
                                 persistent=False)  # (V,)
            self.register_buffer("ends", torch.tensor([w in SCOPE_ENDS for w in words]), persistent=False)  # (V,)
        self.register_buffer("R", torch.zeros(n_words, ratios))  # (V, K), set by set_ratios
        if bigrams:
            self.register_buffer("bigram_keys", torch.zeros(bigrams, dtype=torch.int64))  # (B,) sorted κ
            self.register_buffer("R2", torch.zeros(bigrams + 2, ratios))  # (B+2, K), rows 0 and 1 stay 0
        channels = ratios * (2 if bigrams else 1) + (1 + ratios if negation else 0)  # K'
        self.gru = grukit.GRU(embedding + vectors + channels, hidden_size, batch_first=True, bidirectional=True,
                              reset=reset, backend=backend)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4 * hidden_size, classes)

    @torch.no_grad()
    def set_ratios(self, R: Tensor, bigram_keys: Tensor | None = None, R2: Tensor | None = None) -> None:
        """Fix the per-word input channels R (V, K) and, for a model with bigrams, the sorted bigram keys
        (B,) with their channels R2 (B+2, K); rows 0 (padding) and 1 (unknown) should be 0."""
        given = {"R": R} if not self.config.bigrams else {"R": R, "bigram_keys": bigram_keys, "R2": R2}
        if not self.config.bigrams and (bigram_keys is not None or R2 is not None):
            raise ValueError("bigram_keys/R2: expected none for a model built with bigrams 0, got them")
        for name, value in given.items():
            buffer = getattr(self, name)
            if value is None or tuple(value.shape) != tuple(buffer.shape):
                raise ValueError(f"{name}: expected shape {tuple(buffer.shape)}, "
                                 f"got {None if value is None else tuple(value.shape)}")
        if self.config.bigrams:
            V = self.R.shape[0]
            if not bool((bigram_keys[1:] > bigram_keys[:-1]).all()) or not 0 <= int(bigram_keys[0]) \
                    or not int(bigram_keys[-1]) < V * V:
                raise ValueError(f"bigram_keys: expected strictly increasing keys in [0, {V * V}) "
                                 f"(w_(t-1)·V + w_t, V = {V}), got others")
        for name, value in given.items():
            getattr(self, name).copy_(value)  # R (V, K); bigram_keys (B,); R2 (B+2, K)

    def known(self, ids: Tensor) -> Tensor:
        """ids (N, T) with every id past the vocabulary (a word known only by its vector) read as unknown (1)."""
        return ids.masked_fill(ids >= self.R.shape[0], 1)  # (N, T)

    def bigram_ids(self, ids: Tensor) -> Tensor:
        """Rows of R2 (N, T) for ids (N, T): the bigram ending at each word, 1 if unknown, 0 at padding."""
        return bigram_rows(self.known(ids), self.bigram_keys, self.R.shape[0])  # (N, T)

    def ratio_inputs(self, ids: Tensor) -> Tensor:
        """ρ (N, T, K') for ids (N, T): R[ids], then R2 of each word's bigram when the model has bigrams."""
        rho = self.R[self.known(ids)]  # (N, T, K)
        if self.config.bigrams:
            rho = torch.cat([rho, self.R2[self.bigram_ids(ids)]], dim=-1)  # (N, T, 2K)
        return rho

    def negation_inputs(self, ids: Tensor, rho: Tensor) -> Tensor:
        """[ν; ν·ρ_uni] (N, T, 1+K) for known ids (N, T) and their ρ (N, T, K'), whose first K channels are the
        words' own ratios R[w] (`negation_scope`); (N, T, 0) for a model without negation."""
        if not self.config.negation:
            return rho[:, :, :0]  # (N, T, 0)
        nu = negation_scope(ids, self.opens, self.ends)[:, :, None]  # (N, T, 1)
        return torch.cat([nu, nu * rho[:, :, :self.config.ratios]], dim=-1)  # (N, T, 1+K)

    def _vectors(self, g: Tensor | None) -> list[Tensor]:
        """[g] (N, T, P) for a model with vectors (g must be given), [] for one without."""
        P = self.config.vectors
        if g is None and P:
            raise ValueError(f"g: expected the word vectors (N, T, {P}) of a model built with vectors {P} "
                             f"(SentenceEnsemble hands them over), got None")
        return [g] if P else []

    def inputs(self, ids: Tensor, rho: Tensor | None = None, shift: Tensor | None = None, g: Tensor | None = None
               ) -> Tensor:
        """x (N, T, D+P+K') for ids (N, T), ρ (N, T, K') (default `ratio_inputs`) and the word vectors g (N, T, P)
        (needed when P > 0), with word dropout while training; `shift` (N, T, D), if given, is added to the
        embeddings after their dropout, to what the GRU reads (the adversarial perturbation of
        `grukit.tasks.classify.adversarial_loss`)."""
        rho = self.ratio_inputs(ids) if rho is None else rho  # (N, T, K')
        g = self._vectors(g)  # [(N, T, P)] or []
        ids = self.known(ids)  # (N, T)
        p_w = self.config.word_dropout
        if self.training and p_w > 0:
            drop = (torch.rand(ids.shape, device=ids.device) < p_w) & (ids > 0)  # (N, T)
            ids = ids.masked_fill(drop, 1)  # (N, T)
            hide = drop[:, :, None].expand_as(rho).clone()  # (N, T, K'), R[unknown] = 0
            if self.config.bigrams:  # the next word's bigram contains the dropped word too
                hide[:, 1:, self.config.ratios:] |= drop[:, :-1, None]  # (N, T−1, K)
            rho = rho.masked_fill(hide, 0.0)  # (N, T, K')
            g = [v.masked_fill(drop[:, :, None], 0.0) for v in g]  # (N, T, P), G[unknown] = 0
        e = self.drop(self.embed(ids))  # (N, T, D)
        e = e if shift is None else e + shift  # (N, T, D)
        nu = self.negation_inputs(ids, rho)  # (N, T, 1+K) or (N, T, 0)
        return torch.cat([e, *(self.drop(v) for v in g), rho, nu], dim=-1)  # (N, T, D+P+K')

    def features(self, ids: Tensor, lengths: Tensor, rho: Tensor | None = None, shift: Tensor | None = None,
                 g: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(outputs (N, T, 2H), sentence vector v (N, 4H))."""
        out, h_n = self.gru(self.inputs(ids, rho, shift, g), lengths=lengths.cpu())  # (N, T, 2H), (2, N, H)
        return out, pool(out, h_n, lengths, self.config.pooling)  # (N, 4H)

    def forward(self, ids: Tensor, lengths: Tensor, rho: Tensor | None = None, shift: Tensor | None = None,
                g: Tensor | None = None) -> Tensor:
        """ids (N, T) padded with 0, lengths (N,), ρ (N, T, K') or None (`ratio_inputs`), shift (N, T, D) or
        None, g (N, T, P) or None (see `inputs`) -> logits (N, C)."""
        return self.head(self.drop(self.features(ids, lengths, rho, shift, g)[1]))  # (N, C)

    @torch.no_grad()
    def gates(self, ids: Tensor, g: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Forward-direction update and reset gates for one sentence ids (T,) with its word vectors g (T, P)
        (when P > 0): z, r each (T, H)."""
        rho = self.ratio_inputs(ids[None])  # (1, T, K')
        nu = self.negation_inputs(self.known(ids[None]), rho)  # (1, T, 1+K) or (1, T, 0)
        x = torch.cat([self.embed(self.known(ids)), *self._vectors(g), rho[0], nu[0]], dim=-1)  # (T, D+P+K')
        _, _, gates = self.gru(x[None], return_gates=True)  # gates.z (1, 2, T, 1, H)
        return gates.z[0, 0, :, 0], gates.r[0, 0, :, 0]


@dataclass(frozen=True)
class EnsembleConfig(ClassifierConfig):
    members: int = 3  # M, classifiers averaged, each built from the fields above
    vector_words: str = ""  # words known only by their vector, "\n"-joined; id = V + 2 + position
    FROM_DATA: ClassVar[tuple[str, ...]] = ("vocabulary", "classes", "bigrams", "vector_words")  # set by the data
    FLAGS: ClassVar[dict[str, str]] = {  # the `grukit classify` flag behind each field, for resume messages
        "embedding": "--embedding", "hidden_size": "--hidden", "dropout": "--dropout",
        "ratios": "--ratios/--no-ratios", "word_dropout": "--word-dropout", "pooling": "--pooling",
        "bigrams": "--bigrams/--no-bigrams, --min-count or the data", "vectors": "--vectors",
        "negation": "--negation", "members": "--members"}


def member_fields(config: EnsembleConfig) -> dict:
    """The fields of an ensemble's config that build the ensemble again, but for `members`."""
    return {f.name: getattr(config, f.name) for f in fields(EnsembleConfig) if f.name != "members"}


@register
class SentenceEnsemble(nn.Module):
    """p(y | w) = (1/M) Σ_m softmax(SentenceClassifier_m(w)); forward returns log p (N, C).

    Members differ by initialisation (and their dropout draws); each trains on its own
    cross-entropy (`members=True` gives every member's logits (M, N, C)). With P = `vectors` > 0
    the ensemble holds the word vectors G (V + 2 + U, P) once, U = the number of `vector_words`
    (`set_vectors`), and hands every member g = G[ids].

    Example:
        >>> import torch
        >>> from grukit.tasks.classify_model import SentenceEnsemble
        >>> m = SentenceEnsemble(vocabulary="bad\\ngood", classes=2, members=3, embedding=8, hidden_size=4).eval()
        >>> ids, lengths = torch.tensor([[2, 3, 0], [3, 0, 0]]), torch.tensor([2, 1])
        >>> m(ids, lengths).exp().sum(-1).round(decimals=4).tolist(), m(ids, lengths, members=True).shape
        ([1.0, 1.0], torch.Size([3, 2, 2]))
    """

    def __init__(self, vocabulary: str, classes: int, members: int = 3, embedding: int = 128,
                 hidden_size: int = 128, dropout: float = 0.5, reset: str = "before", backend: str = "auto",
                 ratios: int = 0, word_dropout: float = 0.0, pooling: str = "last+max", bigrams: int = 0,
                 vectors: int = 0, vector_words: str = "", negation: bool = False):
        super().__init__()
        if members < 1:
            raise ValueError(f"members: expected an integer >= 1, got {members}")
        if vector_words and not vectors:
            raise ValueError("vector_words: expected none for a model built with vectors 0, got some")
        self.config = EnsembleConfig(vocabulary, classes, embedding, hidden_size, dropout, reset, backend, ratios,
                                     word_dropout, pooling, bigrams, vectors, negation, members, vector_words)
        member = {f.name: getattr(self.config, f.name) for f in fields(ClassifierConfig)}
        self.members = nn.ModuleList(SentenceClassifier(**member) for _ in range(members))
        if vectors:
            n_ids = self.members[0].R.shape[0] + (len(vector_words.split("\n")) if vector_words else 0)
            self.register_buffer("G", torch.zeros(n_ids, vectors))  # (V+2+U, P), set by set_vectors

    @torch.no_grad()
    def set_vectors(self, G: Tensor) -> None:
        """Fix the word vectors G (V+2+U, P): a row for every id, rows 0 (padding) and 1 (unknown) 0."""
        if not self.config.vectors:
            raise ValueError("G: expected none for a model built with vectors 0, got a table")
        if tuple(G.shape) != tuple(self.G.shape):
            raise ValueError(f"G: expected shape {tuple(self.G.shape)} (V+2+U, P), got {tuple(G.shape)}")
        if not bool(torch.isfinite(G).all()):
            raise ValueError("G: expected finite values, got inf or nan")
        self.G.copy_(G)  # (V+2+U, P)

    def encode(self, tokens: list[str]) -> list[int]:
        """The ids this model reads for `tokens` (`grukit.data.sentiment.tokenize`): a vocabulary word's id,
        else a vector word's, else 1 (unknown); so a checkpoint classifies new text on its own."""
        if isinstance(tokens, str):  # its characters would be read as words
            raise TypeError("tokens: expected a list of words (grukit.data.sentiment.tokenize(text)), got a str")
        table = self.__dict__.get("_ids")
        if table is None:
            words = [w for w in self.config.vocabulary.split("\n") if self.config.vocabulary]
            words += [w for w in self.config.vector_words.split("\n") if self.config.vector_words]
            table = self.__dict__["_ids"] = {w: i + 2 for i, w in enumerate(words)}
        return [table.get(t, 1) for t in tokens]

    def word_vectors(self, ids: Tensor) -> Tensor | None:
        """g = G[ids] (N, T, P) for ids (N, T); None for a model without vectors."""
        return self.G[ids] if self.config.vectors else None

    def set_ratios(self, R: Tensor, bigram_keys: Tensor | None = None, R2: Tensor | None = None) -> None:
        """The same fixed channels for every member (`SentenceClassifier.set_ratios`)."""
        for member in self.members:
            member.set_ratios(R, bigram_keys, R2)

    def forward(self, ids: Tensor, lengths: Tensor, rho: Tensor | None = None, members: bool = False,
                shift: Tensor | None = None) -> Tensor:
        """ids (N, T), lengths (N,), ρ (N, T, K') or None, shift (M, N, T, D) or None (member m's embeddings
        move by shift[m], `SentenceClassifier.inputs`) → log p (N, C), or every member's logits (M, N, C)."""
        if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32) or ids.dim() != 2 or \
                ids.shape[1] == 0:
            raise ValueError(f"ids: expected an (N, T) tensor of word ids (int64), got "
                             f"{tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__} of "
                             f"{getattr(ids, 'dtype', None)} (a text without words, tokenize(text) == [], has no ids)")
        lengths = torch.as_tensor(lengths, device=ids.device)  # (N,): a list of ints too
        if shift is not None and len(shift) != len(self.members):
            raise ValueError(f"shift: expected one (N, T, D) move per member ({len(self.members)}), got {len(shift)}")
        shifts = [None] * len(self.members) if shift is None else shift  # M × (N, T, D)
        g = self.word_vectors(ids)  # (N, T, P) or None
        logits = torch.stack([m(ids, lengths, rho, s, g) for m, s in zip(self.members, shifts)])  # (M, N, C)
        if members:
            return logits
        return torch.logsumexp(logits.log_softmax(-1), dim=0) - math.log(len(self.members))  # (N, C)

    @torch.no_grad()
    def gates(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """The first member's forward-direction gates for one sentence ids (T,): z, r each (T, H)."""
        return self.members[0].gates(ids, self.word_vectors(ids))


def snapshot_average(model: SentenceEnsemble, snapshots: list[tuple[int, dict[str, Tensor]]]) -> SentenceEnsemble:
    """p(y | w) = (1/S) Σ_s p_s(y | w), the mean of S snapshots of `model` (the weights of S epochs, as
    `grukit.train.FitResult.snapshots` gives them), as one SentenceEnsemble of M·S members: member
    s·M + m holds member m of snapshot s. With fewer than two snapshots: `model` itself.

    Example:
        >>> m = SentenceEnsemble(vocabulary="bad\\ngood", classes=2, members=2, embedding=4, hidden_size=3)
        >>> snaps = [(e, {k: v.clone() for k, v in m.state_dict().items()}) for e in (4, 5, 6)]
        >>> snapshot_average(m, snaps).config.members
        6
    """
    if len(snapshots) < 2:
        return model
    M = model.config.members
    averaged = SentenceEnsemble(**member_fields(model.config), members=M * len(snapshots))
    averaged.load_state_dict(stack_snapshots(snapshots, M))
    return averaged.to(next(model.parameters()).device).train(model.training)


def stack_snapshots(snapshots: list[tuple[int, dict[str, Tensor]]], members: int) -> dict[str, Tensor]:
    """One state dict of S·M members from S snapshots of an M-member ensemble: member s·M + m holds member
    m of snapshot s (`snapshot_average`); what the ensemble holds outside its members (the fixed word
    vectors G) is the same in every snapshot and taken from the first."""
    state = {}
    for s, (_, weights) in enumerate(snapshots):
        for key, value in weights.items():  # "members.<m>.<name>", or "G"
            if not key.startswith("members."):
                state.setdefault(key, value)
                continue
            _, m, name = key.split(".", 2)
            state[f"members.{s * members + int(m)}.{name}"] = value  # the same shape as in snapshot s
    return state
