"""The models' input window: every pyoxynet model sees the last 40 s of a test's 1 s grid,
five channels each (VO2, VCO2, VE, PetO2, PetCO2, scaled; :mod:`~cpet_nb.model.preprocess`)."""

#: Seconds (rows of the 1 s grid) in one window.
N_PAST_POINTS = 40
#: Channels of every row of a window.
N_CHANNELS = 5
