"""grukit.plots: the curves drawn, and that every figure is written at its size."""
import numpy as np
from PIL import Image

from grukit import plots


def test_an_ensembles_summed_train_loss_is_drawn_per_member_and_other_keys_as_logged():
    history = [{"epoch": 1, "train_loss": 5.0, "val_loss": 0.9}, {"epoch": 2, "train_loss": 2.5}]
    assert plots.curve(history, "train_loss", members=5) == ("train_loss / 5 (member mean)", [1.0, 0.5])
    assert plots.curve(history, "train_loss") == ("train_loss", [5.0, 2.5])
    label, values = plots.curve(history, "val_loss", members=5)
    assert label == "val_loss" and values[0] == 0.9 and np.isnan(values[1])


def test_loss_curves_writes_a_png_of_the_standard_size(tmp_path, monkeypatch):
    """The figure holds one line per key, with the values `curve` gives (found by a review: only the PNG's size
    was checked, so a figure with no lines, or train_loss not divided by the members, passed)."""
    history = [{"epoch": e, "train_loss": 5.0 / e, "val_loss": 1.0 / e} for e in (1, 2, 3)]
    drawn = {}
    save = plots._save

    def capture(fig, path):
        drawn.update({line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in fig.axes[0].lines})
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    path = plots.loss_curves(history, tmp_path / "loss.png", members=5)
    assert Image.open(path).size == plots.SIZE
    assert set(drawn) == {"train_loss / 5 (member mean)", "val_loss"}
    for x, y in drawn.values():  # 5/e / 5 members and 1/e
        assert x == [1, 2, 3] and np.allclose(y, [1.0, 0.5, 1 / 3], rtol=1e-12, atol=0)


def test_a_confusion_matrix_of_many_classes_is_quick_and_labels_at_most_twenty(tmp_path, monkeypatch):
    """Found by a review: a text per cell made 150 classes take 24 s and a black square."""
    import time

    shown = {}
    save = plots._save

    def capture(fig, path):
        shown["ticks"], shown["texts"] = fig.axes[0].get_xticklabels(), fig.axes[0].texts
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    C = 150
    matrix = np.random.default_rng(0).integers(0, 5, (C, C)) + 20 * np.eye(C, dtype=int)
    t0 = time.perf_counter()
    path = plots.confusion(matrix, [f"intent_{k}" for k in range(C)], tmp_path / "c.png")
    assert time.perf_counter() - t0 < 10 and Image.open(path).size == (plots.SIZE[1], plots.SIZE[1])
    assert len(shown["ticks"]) <= plots.CONFUSION_LABELS and len(shown["texts"]) == 0
    plots.confusion(np.array([[5, 1], [2, 7]]), ["neg", "pos"], tmp_path / "two.png")
    assert [t.get_text() for t in shown["texts"]] == ["5", "1", "2", "7"]
    assert [t.get_text() for t in shown["ticks"]] == ["neg", "pos"]


def test_user_names_with_two_dollar_signs_are_drawn_as_written(tmp_path):
    """Found by a review: a column, class or folder name such as "price_$_usd_$" was parsed as math text and the
    run failed after training."""
    import matplotlib

    name = "price_$_usd_$"
    t = np.arange(10)
    plots.forecast(t, t * 1.0, t + 10, t * 1.0, {name: t * 1.0}, tmp_path / "f.png", title=name, ylabel=name)
    plots.confusion(np.eye(2, dtype=int), ["cheap_$_a_$", "dear"], tmp_path / "c.png", title=name)
    plots.loss_curves([{"epoch": 1, "train_loss": 1.0}], tmp_path / "l.png", title=name)
    plots.fold_scores({name: [0.5, 0.6]}, tmp_path / "s.png", title=name)
    plots.gates(np.zeros((3, 2)), np.zeros((3, 2)), tmp_path / "g.png", title=name, xlabel=name)
    assert all(Image.open(tmp_path / f).size[0] > 0 for f in ("f.png", "c.png", "l.png", "s.png", "g.png"))
    assert matplotlib.rcParams["text.parse_math"]  # the caller's setting is left as it was


def test_default_keys_come_from_every_epoch_not_the_first_alone(tmp_path, monkeypatch):
    """A mutation audit: taking the val_* keys from the first epoch's row only (a metric first logged later is
    never drawn) passed every test."""
    drawn = []
    save = plots._save

    def capture(fig, path):
        drawn.extend(line.get_label() for line in fig.axes[0].lines)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    history = [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5, "val_loss": 0.4, "val_mase": 0.9}]
    plots.loss_curves(history, tmp_path / "loss.png")
    assert drawn == ["train_loss", "val_loss", "val_mase"]


def test_up_to_twenty_classes_get_a_count_in_every_cell(tmp_path, monkeypatch):
    """A mutation audit: a colour bar instead of counts already at 20 classes (CONFUSION_LABELS) passed every
    test (they drew 2 and 150)."""

    texts = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: texts.append(len(fig.axes[0].texts)) or save(fig, path))
    C = plots.CONFUSION_LABELS
    plots.confusion(np.eye(C, dtype=int), [str(k) for k in range(C)], tmp_path / "c.png")
    assert C == 20 and texts == [C * C]


def test_epoch_and_step_axes_tick_whole_numbers_and_dark_cells_get_white_counts(tmp_path, monkeypatch):
    """Found by a QA run: two epochs were ticked 1.0, 1.2, …, 2.0, the speech gates' frames 0.0, 2.5, …, and a
    confusion matrix's counts were black on its dark-blue cells."""
    seen = []
    save = plots._save

    def capture(fig, path):
        fig.canvas.draw()  # the locator places its ticks on drawing
        seen.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    plots.loss_curves([{"epoch": 1, "train_loss": 2.0}, {"epoch": 2, "train_loss": 1.0}], tmp_path / "loss.png")
    plots.gates(np.full((5, 3), 0.5), np.full((5, 3), 0.5), tmp_path / "gates.png")
    plots.confusion(np.array([[40, 1], [3, 9]]), ["a", "b"], tmp_path / "c.png")
    plots.confusion(np.array([[40, 30], [31, 40]]), ["a", "b"], tmp_path / "d.png")  # near chance: all above 40/2
    loss_ax, gates_ax, confusion_ax = seen[0].axes[0], seen[1].axes[1], seen[2].axes[0]
    for ax in (loss_ax, gates_ax):
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    colours = {t.get_text(): t.get_color() for t in confusion_ax.texts}
    assert colours == {"40": "white", "1": "black", "3": "black", "9": "black"}
    near = {t.get_text(): t.get_color() for t in seen[3].axes[0].texts}  # found by a review: white on white at 30
    assert near == {"40": "white", "30": "black", "31": "black"}
