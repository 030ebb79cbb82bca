"""The applications, one module each: data → model → grukit.train.fit → baselines → figures + report.

    forecast   weekly Mauna Loa CO2 (or a CSV column): direct multi-step GRU forecast vs naive baselines
    textgen    character-level GRU language model on tiny Shakespeare (or a UTF-8 text); `sample` generates
    classify   MR sentence polarity (or pos/neg files, or a CSV): 5 bidirectional GRUs reading
               [word embedding; Naive-Bayes log-count ratios of the word and of its bigram], averaged

Each command module provides `add_arguments(parser)` and `run(args) -> {"summary", "files", "metrics"}`
(see grukit.cli); shared plumbing (output folder, device, threads) lives in `tasks.common`.
"""
