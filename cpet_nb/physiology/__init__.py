"""Physiology of one test, on canonical records: what a CPET measures and how.

- :mod:`.exercise`: the exercise part of a test (one definition for every measure);
- :mod:`.validate`: what a record allows (plausible values, channels, protocol);
- :mod:`.end_tidal`: end-tidal pressures from end-tidal fractions and the barometric pressure;
- :mod:`.averaging`: the averaging strategies of Nolte et al. (2023);
- :mod:`.measures`: peak values, VO2 plateau, maximal-effort criteria;
- :mod:`.slopes`: VE/VCO2 slope and nadir, OUES, VO2/work-rate and HR/VO2 slopes;
- :mod:`.efficiency`: gross mechanical efficiency;
- :mod:`.thresholds`: classical VT1/VT2 methods, each an estimate or a reason;
- :mod:`.consensus`: the consensus of the model and the methods, and review flags.

Nothing here imports the model, the batch engine or any Jupyter package.
"""
