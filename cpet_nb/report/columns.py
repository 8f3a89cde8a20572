"""What each column of the results table holds, for a person reading a report.

:func:`describe` gives a column's label, unit, who made the value (the Oxynet *model*, the
*consensus*, the *final* value after expert review, a classical *method*, a *measure* of the
breath data, a *review* flag or the *file*) and how, with the reference. The reports label
every value by it, so that the model's and the consensus thresholds are never shown
unlabelled side by side, and the per-test report lists every measure with its method.
``docs/measures.md`` says the same in prose.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import MODEL_NAMES
from ..model.pipeline import ENSEMBLE
from ..physiology.slopes import AVERAGE_S
from ..physiology.thresholds import CLASSICAL_METHODS, Preparation

#: Who made a value: the sources of :attr:`Column.source`.
SOURCES = ("file", "review", "model", "consensus", "final", "method", "measure")
#: What a value is: :attr:`Column.kind`.
KINDS = ("number", "count", "flag", "text")
#: Columns that hold text.
TEXT = frozenset({"file", "status", "format", "sampling", "findings", "model_version",
                  "source_sha256", "vt1_source", "vt2_source"})
#: Columns that count (whole numbers).
COUNTS = frozenset({"n_findings", "vt1_n_methods", "vt2_n_methods"})
#: Columns that hold yes or no (1 or 0 in the measures, true or false in the review flags),
#: whatever unit their names end in (``vo2_plateau_ml_min`` is the flag of a plateau
#: judged in mL/min).
FLAGS = frozenset({"vo2_plateau_ml_min", "vo2_plateau_ml_kg_min", "rer_criterion_met",
                   "hr_criterion_met", "effort_met"})

#: Units by the ending of a column name, longest first (``_ml_min`` after ``_ml_kg_min``).
UNIT_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_ml_min_per_log_l_min", "mL/min per log10(L/min)"),
    ("_bpm_per_l_min", "1/min per L/min"),
    ("_ml_min_w", "mL/min per W"),
    ("_ml_kg_min", "mL/kg/min"),
    ("_ml_beat", "mL/beat"),
    ("_pct_vo2peak", "% of VO2peak"),
    ("_pct_predicted", "% of predicted"),
    ("_ml_min", "mL/min"),
    ("_l_min", "L/min"),
    ("_km_h", "km/h"),
    ("_mmhg", "mmHg"),
    ("_bpm", "1/min"),
    ("_pct", "%"),
    ("_kg", "kg"),
    ("_s", "s"),
    ("_w", "W"),
)


@dataclass(frozen=True)
class Column:
    """One results-table column as a report explains it.

    Attributes
    ----------
    name : str
        The column (:data:`cpet_nb.RESULT_COLUMNS`).
    label : str
        Short text for a table header, without the unit (``"VT1 VO2"``).
    unit : str
        Empty for text, flags, counts and ratios without a unit.
    source : str
        One of :data:`SOURCES`.
    method : str
        How the value is obtained, with its reference (one or two sentences).
    kind : str
        One of :data:`KINDS`: how a value is shown (a number with its unit's decimals, a
        whole number, yes or no, text).
    """

    name: str
    label: str
    unit: str
    source: str
    method: str
    kind: str = "number"

    @property
    def header(self) -> str:
        """``"VT1 VO2 (mL/min)"``: the label with its unit."""
        return f"{self.label} ({self.unit})" if self.unit else self.label


def unit_of(name: str) -> str:
    """The unit a column's name ends in (:data:`UNIT_SUFFIXES`), empty for none.

    Examples
    --------
    >>> unit_of("vo2peak_ml_kg_min"), unit_of("vt1_pct_vo2peak"), unit_of("rerpeak")
    ('mL/kg/min', '% of VO2peak', '')
    """
    return next((unit for suffix, unit in UNIT_SUFFIXES if name.endswith(suffix)), "")


# -- the model's and the consensus thresholds ------------------------------------------------

#: How the Oxynet model places each threshold (Zignoli et al. 2022; docs/model.md).
_MODEL = {"vt1": "Oxynet model: the first second at which the heavy-domain probability reaches "
                 "the moderate one",
          "vt2": "Oxynet model: the last second at which the severe-domain probability is at "
                 "or below the heavy one"}
_AT_THRESHOLD = {
    "time_s": ("time", "time from the start of the recording"),
    "vo2_ml_min": ("VO2", "smoothed VO2 at that second"),
    "vco2_ml_min": ("VCO2", "smoothed VCO2 at that second"),
    "ve_l_min": ("VE", "smoothed VE at that second"),
    "peto2_mmhg": ("PetO2", "smoothed PetO2 at that second"),
    "petco2_mmhg": ("PetCO2", "smoothed PetCO2 at that second"),
    "hr_bpm": ("HR", "smoothed HR at that second"),
    "load_w": ("work rate", "the last work rate recorded at or before it"),
    "speed_km_h": ("speed", "the last speed recorded at or before it"),
}
_CONSENSUS = ("weighted median of the model's and the classical methods' estimates, time and "
              "VO2 apart (VT1: all weigh 1; VT2: the model 2, ventilatory equivalents and "
              "PetCO2 1, the VE-VCO2 V-slope 0)")
_CONSENSUS_FIELDS = {
    "consensus_time_s": ("time", f"Consensus time: {_CONSENSUS}."),
    "consensus_vo2_ml_min": ("VO2", f"Consensus VO2: {_CONSENSUS}."),
    "consensus_pct_vo2peak": ("VO2", "Consensus VO2 as a share of VO2peak."),
    "consensus_hr_bpm": ("HR", "Mean HR over ±10 s around the consensus time."),
    "consensus_load_w": ("work rate", "Work rate at the consensus time."),
    "uncertainty_ml_min": ("VO2 uncertainty", "Expected absolute error of the consensus VO2: "
                           "a constant plus breath noise, method disagreement and the model's "
                           "indecision at its crossing, weighted as fitted on half of "
                           "pyoxynet's labelled tests, plus gaps and edges of exercise "
                           "(cpet_nb.physiology.uncertainty); above review_uncertainty_ml_min "
                           "it raises review_uncertainty."),
    "uncertainty_s": ("time uncertainty", "The VO2 uncertainty over the rate at which VO2 "
                      "rises about the threshold; missing where it does not rise."),
    "spread_s": ("time spread", "Largest minus smallest time of the estimates behind the "
                 "consensus."),
    "spread_ml_min": ("VO2 spread", "Largest minus smallest VO2 of the estimates behind the "
                      "consensus (two experienced physicians agree within ±161 mL/min, "
                      "Kaczmarek et al. 2019)."),
    "n_methods": ("estimates", "How many estimates (model and methods) the consensus rests on."),
}

_OVERRIDE = ("the consensus, unless a reviewer overrode the threshold (cpet_nb.batch.review; "
             "docs/review.md): then the reviewer's value")
#: Label and method of each final column (``vt1_final_time_s``, ..., ``vt1_source``).
_FINAL_FIELDS = {
    "final_time_s": ("final time", f"Final time: {_OVERRIDE}, a time set by the reviewer "
                     "snapped to the 1 s grid, or the time of the estimate they picked."),
    "final_vo2_ml_min": ("final VO2", f"Final VO2: {_OVERRIDE}; at a time set by the "
                         "reviewer, the binned exercise VO2 interpolated there, as the "
                         "classical methods give it at their breakpoints."),
    "final_hr_bpm": ("final HR", f"Final HR: {_OVERRIDE}; mean HR over ±10 s around the final "
                     "time, as at the consensus."),
    "final_load_w": ("final work rate", f"Final work rate: {_OVERRIDE}; the work rate at the "
                     "final time, as at the consensus."),
    "source": ("source", "Who made the final values: consensus (no override, or a reviewer "
               "accepted it), expert (a reviewer set the time), model or a method's name (a "
               "reviewer picked that estimate)."),
}

# -- the classical methods ----------------------------------------------------------------

_PREP = Preparation()
_BINS = (f"exercise part averaged in {_PREP.bin_s:g} s bins after its first "
         f"{_PREP.skip_start_s:g} s; the breakpoint of a continuous two-segment least-squares "
         "fit")
#: Name and method of each classical threshold method (:data:`CLASSICAL_METHODS`).
METHODS: dict[str, tuple[str, str]] = {
    "vt1_vslope": ("V-slope", f"VCO2 against VO2 steepens (Beaver, Wasserman & Whipp 1986); "
                   f"{_BINS}."),
    "vt1_equivalents": ("ventilatory equivalents", "VE/VO2 rises while VE/VCO2 does not "
                        f"(Wasserman et al. 2005; Gaskill et al. 2001); {_BINS}."),
    "vt1_peto2": ("PetO2", f"PetO2 rises from its nadir (Wasserman et al. 2005); {_BINS}."),
    "vt2_equivalents": ("ventilatory equivalents", "VE/VCO2 rises (respiratory compensation, "
                        f"Whipp, Davis & Wasserman 1989); {_BINS}."),
    "vt2_petco2": ("PetCO2", f"PetCO2 falls from its plateau (Wasserman et al. 2005); {_BINS}."),
    "vt2_vslope": ("V-slope (VE vs VCO2)", "VE against VCO2 steepens; reported, weighs 0 in the "
                   f"consensus; {_BINS}."),
}

# -- everything else ------------------------------------------------------------------------

_PEAK = ("highest average under the job's averaging (vo2peak_method, vo2peak_window: Nolte, "
         "Rein & Quittmann 2023) within peak_within")
#: Label, source and method of every other column.
OTHER: dict[str, tuple[str, str, str]] = {
    "file": ("file", "file", "The input as given (path, or archive/member)."),
    "status": ("status", "file", "ok: analysed, nothing to report; warning: analysed, read the "
               "findings; error: not analysed (the findings say why); skipped: not a CPET "
               "export."),
    "format": ("format", "file", "The reader that recognised the file (by content)."),
    "sampling": ("sampling", "file", "Breath-by-breath, a 1 s grid or N-s averages, detected "
                 "from the time steps."),
    "duration_s": ("duration", "file", "Length of the recording."),
    "weight_kg": ("body mass", "file", "From the file or a participants table; never assumed."),
    "n_findings": ("findings", "file", "Warnings and errors about the file."),
    "findings": ("findings", "file", "Each warning and error: severity, code, where, what."),
    "model_version": ("model version", "model", "The model file that ran, by its sha256: the "
                      "Oxynet CNN of pyoxynet 0.1.12 (Zignoli et al. 2022) on TensorFlow "
                      "Lite."),
    "source_sha256": ("sha256", "file", "Content hash of the file analysed."),
    "review": ("review", "review", "Any review flag raised: a person should look at this test."),
    "review_uncertainty": ("uncertain threshold", "review", "The uncertainty of VT1 or VT2 is "
                           "above review_uncertainty_ml_min, or could not be computed."),
    "review_vt_missing": ("threshold missing", "review", "No method estimated VT1 or VT2."),
    "review_vt_order": ("VT2 not after VT1", "review", "The consensus VT2 is not after, or not "
                        "above in VO2, the consensus VT1."),
    "review_model_swap": ("model domains swapped", "review", "The model's heavy and severe "
                          "outputs look swapped or ambiguous (vt-order, "
                          "domain-mapping-ambiguous)."),
    "review_effort": ("effort criteria not met", "review", "The effort convention "
                      "(effort_convention) is not met (unknown is not a failure)."),
    "vo2peak_ml_min": ("VO2peak", "measure", f"VO2: {_PEAK}."),
    "vo2peak_ml_kg_min": ("VO2peak", "measure", "VO2peak per kg of body mass (only with a "
                          "known body mass)."),
    "vco2peak_ml_min": ("VCO2peak", "measure", f"VCO2: {_PEAK}."),
    "rerpeak": ("RERpeak", "measure", f"Highest VCO2/VO2 of the averaged channels ({_PEAK})."),
    "hrpeak_bpm": ("HRpeak", "measure", "Highest single HR value."),
    "vepeak_l_min": ("VEpeak", "measure", f"VE: {_PEAK}."),
    "o2pulse_peak_ml_beat": ("O2 pulse peak", "measure", "Highest VO2/HR of the averaged "
                             "channels."),
    "peak_load_w": ("peak work rate", "measure", "Highest single work rate."),
    "peak_speed_km_h": ("peak speed", "measure", "Highest single speed."),
    "vo2_plateau_delta_ml_min": ("VO2 rise, last 30 s", "measure", "Mean VO2 of the last 30 s "
                                 "of exercise minus that of the 30 s before (Taylor, Buskirk & "
                                 "Henschel 1955)."),
    "vo2_plateau_delta_ml_kg_min": ("VO2 rise, last 30 s", "measure", "The same per kg of body "
                                    "mass."),
    "vo2_plateau_ml_min": ("VO2 plateau", "measure", "1 when that rise is below 150 mL/min "
                           "(Taylor et al. 1955), else 0."),
    "vo2_plateau_ml_kg_min": ("VO2 plateau (per kg)", "measure", "1 when the rise is below "
                              "2 mL/kg/min, else 0."),
    "rer_criterion_met": ("RER criterion met", "measure", "1 when RERpeak is at least "
                          "rer_criterion (default 1.10), else 0."),
    "hr_predicted_max_bpm": ("predicted HRmax", "measure", "220 - age (Fox, Naughton & Haskell "
                             "1971) or 208 - 0.7 age (Tanaka, Monahan & Seals 2001), by "
                             "hr_max_formula; only with a known age."),
    "hr_pct_predicted": ("HRpeak", "measure", "HRpeak as a share of the predicted maximum."),
    "hr_criterion_met": ("HR criterion met", "measure", "1 when HRpeak is at least "
                         "hr_criterion_pct (default 90 %) of the predicted maximum, else 0."),
    "effort_met": ("effort criteria met", "measure", "1 when the effort convention is met "
                   "(effort_convention; default a VO2 plateau or else both the RER and HR "
                   "criteria, Howley et al. 1995, Midgley et al. 2007), 0 when not, missing "
                   "when the known criteria cannot decide."),
    "ve_vco2_slope": ("VE/VCO2 slope", "measure", "VE (L/min) on VCO2 (L/min) over the whole "
                      f"exercise, {AVERAGE_S:g} s bins (Arena et al. 2004)."),
    "ve_vco2_slope_to_vt2": ("VE/VCO2 slope to VT2", "measure", "The same up to the consensus "
                             "VT2 (Sun et al. 2002)."),
    "ve_vco2_at_vt1": ("VE/VCO2 at VT1", "measure", "VE/VCO2 over 30 s at the consensus VT1."),
    "ve_vco2_nadir": ("VE/VCO2 nadir", "measure", "Lowest 90 s mean of VE/VCO2."),
    "oues_ml_min_per_log_l_min": ("OUES", "measure", "a in VO2 = a log10 VE + b over the "
                                  "exercise (Baba et al. 1996)."),
    "oues_90pct_ml_min_per_log_l_min": ("OUES, first 90 %", "measure", "The same over the "
                                        "first 90 % of the exercise (Hollenberg & Tager 2000)."),
    "oues_75pct_ml_min_per_log_l_min": ("OUES, first 75 %", "measure", "The same over the "
                                        "first 75 % of the exercise (Baba et al. 1996)."),
    "vo2_work_rate_slope_ml_min_w": ("ΔVO2/ΔWR", "measure", "VO2 on work rate over the ramp "
                                     "found in the load, first 45 s left out (Whipp et al. "
                                     "1981; Hansen et al. 1984); cycle tests only."),
    "gross_efficiency_peak_pct": ("gross efficiency at peak", "measure", "Work rate over "
                                  "energy expenditure (Brouwer 1957, RER capped at 1) at peak; "
                                  "cycle tests only."),
    "hr_vo2_slope_bpm_per_l_min": ("HR/VO2 slope", "measure", "HR on VO2 over the exercise, "
                                   f"{AVERAGE_S:g} s bins."),
}


def describe(name: str) -> Column:
    """How a report explains results column ``name``.

    A column this module does not know (from a newer cpet_nb) is described by its name and
    the unit its name ends in, with an empty method.

    Examples
    --------
    >>> describe("vt1_consensus_vo2_ml_min").header
    'VT1 consensus VO2 (mL/min)'
    >>> c = describe("vt2_vo2_ml_min")
    >>> c.header, c.source
    ('VT2 model VO2 (mL/min)', 'model')
    >>> describe("vt1_vslope_time_s").header
    'VT1 V-slope time (s)'
    >>> describe("vo2_plateau_ml_min").kind, describe("vo2_plateau_ml_min").unit
    ('flag', '')
    >>> describe("vt2_final_hr_bpm").header, describe("vt1_source").kind
    ('VT2 final HR (1/min)', 'text')
    """
    column = _described(name)
    if name in TEXT or name in COUNTS or name in FLAGS or column.source == "review":
        kind = ("text" if name in TEXT else "count" if name in COUNTS else "flag")
        return replace(column, kind=kind, unit="" if kind != "count" else column.unit)
    return column


def _described(name: str) -> Column:
    unit = unit_of(name)
    if name in OTHER:
        label, source, method = OTHER[name]
        return Column(name, label, unit, source, method)
    threshold, _, rest = name.partition("_")
    vt = threshold.upper()
    if threshold in ("vt1", "vt2"):
        if rest in _AT_THRESHOLD or rest == "pct_vo2peak":
            what, how = _AT_THRESHOLD.get(rest, ("VO2", "as a share of VO2peak"))
            return Column(name, f"{vt} model {what}", unit, "model",
                          f"{_MODEL[threshold]}; {how}.")
        if rest in _CONSENSUS_FIELDS:
            what, how = _CONSENSUS_FIELDS[rest]
            return Column(name, f"{vt} consensus {what}", unit, "consensus", how)
        if rest in _FINAL_FIELDS:
            what, how = _FINAL_FIELDS[rest]
            return Column(name, f"{vt} {what}", unit, "final", how)
        method = next((key for key in CLASSICAL_METHODS if name.startswith(f"{key}_")), None)
        if method is not None:
            what = "time" if name.endswith("_time_s") else "VO2"
            title, how = METHODS[method]
            return Column(name, f"{vt} {title} {what}", unit, "method", how)
        other = next((m for m in (*MODEL_NAMES, ENSEMBLE) if rest.startswith(f"{m}_")), None)
        if other is not None:
            what = "time" if name.endswith("_time_s") else "VO2"
            how = ("the chosen models' domain curves averaged window by window, then "
                   "the CNN's rules (docs/model.md); NaN unless two models or more are chosen"
                   if other == ENSEMBLE else
                   f"pyoxynet's {other} model (docs/model.md), the CNN's rules on its output; "
                   "NaN unless chosen (the models setting)")
            return Column(name, f"{vt} {other} model {what}", unit, "model", how + ".")
    return Column(name, name, unit, "measure", "")
