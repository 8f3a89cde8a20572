"""Physiology of one test, on canonical records: what a CPET measures and how.

- :mod:`._arrays`: :class:`~._arrays.TestArrays`, a test's columns as float arrays with its
  exercise rows, bins and grids, made once per test and read by every method below;
- :mod:`.exercise`: the exercise part of a test (one definition for every measure);
- :mod:`.validate`: what a record allows (plausible values, channels, protocol);
- :mod:`.averaging`: the averaging strategies of Nolte et al. (2023);
- :mod:`.measures`: peak values, VO2 plateau, maximal-effort criteria;
- :mod:`.effort`: whether the test was maximal, by one stated convention over those criteria;
- :mod:`.slopes`: VE/VCO2 slope and nadir, OUES, VO2/work-rate and HR/VO2 slopes;
- :mod:`.efficiency`: gross mechanical efficiency;
- :mod:`.thresholds`: classical VT1/VT2 methods, each an estimate or a reason;
- :mod:`.consensus`: the consensus of the model and the methods, and review flags;
- :mod:`.uncertainty`: each consensus threshold's uncertainty (mL/min and s), which
  decides the review flag ``review_uncertainty``.

Nothing here imports the model, the batch engine or any Jupyter package.
"""
