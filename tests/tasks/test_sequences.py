"""grukit.tasks.sequences: the variable-length dataset's checks and the padding collate (speech, music).

From a mutation audit; the commands' tests run them end to end."""
import pytest
import torch

from grukit.tasks.sequences import SequenceDataset, pad, pad_collate


def test_dataset_refuses_a_target_count_unlike_the_sequences():
    """A mutation audit: removing SequenceDataset's length check survived."""
    with pytest.raises(ValueError, match=r"^targets: expected 2 \(one per sequence\), got 3$"):
        SequenceDataset([torch.ones(3, 2), torch.ones(5, 2)], [0, 1, 2])


def test_a_dataset_without_targets_collates_to_none():
    """A mutation audit: __getitem__ indexing targets that are None survived."""
    data = SequenceDataset([torch.ones(3, 2), torch.ones(1, 2)])
    assert data[1][1] is None
    x, lengths, y = pad_collate([data[0], data[1]])
    assert y is None and x.shape == (2, 3, 2) and lengths.tolist() == [3, 1]


def test_lengths_are_int64_and_padding_is_zero():
    """A mutation audit: lengths built as int32 survived; they are int64, as pack_padded_sequence wants on CPU."""
    x, lengths = pad([torch.full((2, 1), 5.0), torch.full((4, 1), 7.0)])
    assert lengths.dtype == torch.int64 and lengths.tolist() == [2, 4]
    assert x[0, :, 0].tolist() == [5.0, 5.0, 0.0, 0.0] and x[1, :, 0].tolist() == [7.0] * 4


def test_tensor_targets_are_stacked():
    """A mutation audit: collating every target with torch.tensor (not torch.stack for tensors) survived; tensor
    targets of several elements are stacked into (N, ...)."""
    data = SequenceDataset([torch.ones(2, 1), torch.ones(3, 1)], [torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])])
    _, _, y = pad_collate([data[0], data[1]])
    assert y.tolist() == [[1.0, 2.0], [3.0, 4.0]]
