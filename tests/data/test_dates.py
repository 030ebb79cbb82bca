"""grukit.data.dates: the season of a file's dates, their order, and the steps they skip."""
import datetime as dt

import numpy as np
import pytest

from grukit.data.dates import check_order, infer_season, insert_skipped, parse_dates
from grukit.errors import UsageError


def test_infer_season():
    assert infer_season(["2020-01-01", "2020-01-08", "2020-01-15"]) == 52
    assert infer_season(["2020-01-01", "2020-01-02", "2020-01-03"]) == 365
    assert infer_season(["2020-01-01", "2020-02-01", "2020-03-01"]) == 12
    assert infer_season(None) == 1 and infer_season(["a", "b", "c"]) == 1
    assert infer_season(["2020-01", "2020-02", "", "2020-03"]) == 12  # a blank date is skipped


def test_skipped_steps_become_nan_rows_with_their_dates():
    dates = ["2021-03-28", "2021-03-29", "2021-03-31"]  # daily, one day skipped
    values, labels = insert_skipped(np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]]),
                                    parse_dates(dates, "d", "f.csv"), dates, 365, "d", "f.csv")
    assert labels == ["2021-03-28", "2021-03-29", "2021-03-30", "2021-03-31"]
    assert np.isnan(values[2]).all() and values[3].tolist() == [4.0, 40.0]
    untouched = np.array([[1.0], [2.0]])
    assert insert_skipped(untouched, [dt.datetime(2020, 1, 1), dt.datetime(2020, 2, 1)], ["a", "b"], 12, "m",
                          "f.csv")[0] is untouched  # nothing skipped: the same array


def test_order_ignores_blank_dates_and_names_the_rows():
    check_order([dt.datetime(2020, 1, 1), None, dt.datetime(2020, 1, 3)], ["2020-01-01", "", "2020-01-03"], "d",
                "f.csv")
    with pytest.raises(UsageError, match=r"got '2020-01-02' in row 4 after '2020-01-03' in row 2"):
        check_order([dt.datetime(2020, 1, 3), None, dt.datetime(2020, 1, 2)], ["2020-01-03", "", "2020-01-02"],
                    "d", "f.csv")
