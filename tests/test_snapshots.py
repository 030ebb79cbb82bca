"""grukit.snapshots: the window of epochs around the best one, through recording and a state file."""
import pytest
import torch

from grukit.snapshots import Snapshots


def _run(around: int, best_flags: list[bool]) -> Snapshots:
    s = Snapshots(around)
    for epoch, is_best in enumerate(best_flags, start=1):
        s.record(epoch, {"w": torch.tensor([float(epoch)])}, is_best)
    return s


@pytest.mark.parametrize("around, flags, window", [
    (1, [True, True, False, False], [1, 2, 3]),  # best 2: one before, one after
    (1, [True, False, False, False], [1, 2]),  # best 1: nothing before it
    (1, [True, False, True], [2, 3]),  # best 3 is the last epoch: nothing after it
    (2, [True, False, False, True, False, False, False], [2, 3, 4, 5, 6]),
    (2, [True, True, True, True, False, True], [4, 5, 6]),  # a later best moves the window
    (0, [True, True], []),  # off: nothing held
])
def test_the_window_holds_the_epochs_around_the_best_that_ran(around, flags, window):
    s = _run(around, flags)
    assert [e for e, _ in s.around_best()] == window
    assert all(w["w"].item() == e for e, w in s.around_best())  # each epoch's own weights


def test_only_the_window_and_the_last_epochs_stay_in_memory():
    s = _run(1, [True, True] + [False] * 10)  # best 2, window 1..3, then 9 more epochs
    assert sorted(s.weights) == [1, 2, 3, 12]  # the window, and epoch 12 (it may precede a later best)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("bests", [[True, True, False, False, True, False], [True, False, True, True, False, False],
                                   [True, False, False, False, False, False]])
def test_a_state_file_round_trip_gives_the_same_window_and_weights(k, bests):
    """Resumed after every epoch, the window ends as an unbroken run's. Found by a review: only a resume after a
    full window was tried, so a restore that lost the best epoch or the recent ones passed."""
    unbroken = _run(k, bests)
    for stop in range(1, len(bests)):
        s = _run(k, bests[:stop])
        back = Snapshots.restore(k, s.tensors(), s.meta())
        for epoch in range(stop + 1, len(bests) + 1):  # the run goes on after the resume
            back.record(epoch, {"w": torch.tensor([float(epoch)])}, bests[epoch - 1])
        assert [(e, w["w"].item()) for e, w in back.around_best()] == [
            (e, w["w"].item()) for e, w in unbroken.around_best()], (k, bests, stop)
    assert Snapshots.restore(1, {}, None).around_best() == []  # a state file written before snapshots


def test_around_must_not_be_negative():
    with pytest.raises(ValueError, match=r"^around: expected an integer >= 0, got -1$"):
        Snapshots(-1)


def test_a_state_file_missing_an_epochs_weights_is_refused_naming_it():
    s = _run(1, [True, True, False])
    tensors = {k: v for k, v in s.tensors().items() if not k.startswith("snapshot.1.")}
    with pytest.raises(ValueError, match=r"^snapshots: expected the weights of epoch 1 in run/x, got none$"):
        Snapshots.restore(1, tensors, s.meta(), "run/x")


def test_no_window_before_a_best_epoch():
    """Guards `self.best and …`: epochs recorded before any best epoch join no window."""
    s = Snapshots(2)
    for epoch in (1, 2):
        s.record(epoch, {"w": torch.tensor([float(epoch)])}, False)
    assert s.around_best() == []


def test_restored_with_around_zero_holds_nothing():
    """Guards restore's `not around`: around_best() is [] when `around` is 0, whatever the state file holds."""
    s = Snapshots(1)
    for epoch, best in ((1, True), (2, True), (3, False)):
        s.record(epoch, {"w": torch.tensor([float(epoch)])}, best)
    back = Snapshots.restore(0, s.tensors(), s.meta())
    assert back.around_best() == [] and back.weights == {}
