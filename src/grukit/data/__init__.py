"""Bundled real data sets and the readers for the user's own files.

Everything a default command needs ships inside this package (see DATA.md for the
source and licence of each file); nothing is downloaded at run time.

    timeseries   weekly Mauna Loa CO2 (59 real gaps), daily Seattle weather; user CSV columns
    text         tiny Shakespeare; any text file
    files        decoding a user's file (UTF-8 unless told otherwise), one-line errors
    sentiment    MR sentence polarity (Pang & Lee 2005); user pos/neg line files or a CSV
    speech       FSDD spoken digits as MFCC (see speech.py)
    music        JSB Chorales piano rolls (see music.py)
    vectors      pretrained word vectors: GloVe 6B 50d (a subset); any GloVe or word2vec text file

`bundled(name)` is the path of a bundled file inside the installed package.

Example:
    >>> from grukit.data import bundled
    >>> bundled("timeseries/co2_weekly_mauna_loa.csv").name
    'co2_weekly_mauna_loa.csv'
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path


def bundled(name: str) -> Path:
    """Path of the bundled file `name` (relative to this package), e.g. "text/tinyshakespeare.txt"."""
    path = Path(str(resources.files(__name__).joinpath(name)))
    if not path.is_file():
        raise FileNotFoundError(f"bundled data file {name!r} is missing from the installed package ({path})")
    return path
