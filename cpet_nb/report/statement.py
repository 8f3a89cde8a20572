"""The processing statement of a batch report: how every value was made, in words a methods
section can take, the settings the job ran with, the averaging choices, and the VO2max
reporting checklist of Nolte, Rein & Quittmann (2023) filled from what the job knows.

The checklist's seven items (Nolte et al. 2023, table 4: metabolic cart, measurement mode,
software, preprocessing, processing strategy, processing parameters, rationale) are
followed by the further items the same authors name (how the maximum is taken, the criteria
of a maximal effort, the exercise protocol, calibration, the population). Each says what
this batch can state and, where the exports cannot tell (the cart's model, its software,
the calibration, the protocol's increments), that the researcher must add it.

References
----------
Nolte S, Rein R, Quittmann OJ (2023). Data processing strategies to determine maximum
oxygen uptake: a systematic scoping review and experimental comparison with guidelines for
reporting. Sports Med 53:2463-2475.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from ..analysis import vote_lags_s
from ..physiology.consensus import DEFAULT_WEIGHTS
from ..physiology.measures import HR_MAX_FORMULAS
from ..physiology.slopes import AVERAGE_S
from ..physiology.thresholds import Preparation
from ..physiology.validate import SPIKE_FOLD, SPIKE_HALF_WINDOW, SPIKE_ROBUST_SD
from ..settings import Settings
from . import html as h
from .job import JobData
from .sections import heading

#: Status of a checklist item: what the job states, what it states in part, and what only
#: the researcher knows.
STATUSES = {"reported": "reported", "partly": "partly: add the rest",
            "missing": "state it"}

REFERENCES = (
    "Baba R et al. (1996). Oxygen uptake efficiency slope. J Am Coll Cardiol 28:1567-1572.",
    "Beaver WL, Wasserman K, Whipp BJ (1986). A new method for detecting anaerobic threshold "
    "by gas exchange. J Appl Physiol 60:2020-2027.",
    "Fox SM, Naughton JP, Haskell WL (1971). Physical activity and the prevention of coronary "
    "heart disease. Ann Clin Res 3:404-432.",
    "Kaczmarek S et al. (2019). Interobserver variability of ventilatory anaerobic threshold "
    "in asymptomatic volunteers. Multidiscip Respir Med 14:20.",
    "Nolte S, Rein R, Quittmann OJ (2023). Data processing strategies to determine maximum "
    "oxygen uptake: a systematic scoping review and experimental comparison with guidelines "
    "for reporting. Sports Med 53:2463-2475.",
    "Pearson RK (2002). Outliers in process modeling and identification. IEEE Trans Control "
    "Syst Technol 10:55-63.",
    "Tanaka H, Monahan KD, Seals DR (2001). Age-predicted maximal heart rate revisited. "
    "J Am Coll Cardiol 37:153-156.",
    "Taylor HL, Buskirk E, Henschel A (1955). Maximal oxygen intake as an objective measure "
    "of cardio-respiratory performance. J Appl Physiol 8:73-80.",
    "Wasserman K, Hansen JE, Sue DY, Stringer WW, Whipp BJ (2005). Principles of Exercise "
    "Testing and Interpretation, 4th ed. Lippincott Williams & Wilkins.",
    "Zignoli A et al. (2022). Oxynet: a collective intelligence that detects ventilatory "
    "thresholds in cardiopulmonary exercise tests. Eur J Sport Sci 22:425-435.",
)


@dataclass(frozen=True)
class ChecklistItem:
    """One item of the reporting checklist, filled for a job.

    Attributes
    ----------
    item : str
        The item's name (Nolte et al. 2023).
    asks : str
        What the checklist asks to report.
    answer : str
        What this job states (plain text).
    status : str
        A key of :data:`STATUSES`.
    """

    item: str
    asks: str
    answer: str
    status: str


def averaging_text(settings: Settings) -> str:
    """The peak averaging in words, named as Nolte et al. (2023) name it.

    Examples
    --------
    >>> averaging_text(Settings())
    'a 30 s centred moving average of the values interpolated linearly to whole seconds (tm_30)'
    >>> averaging_text(Settings(vo2peak_method="breath-moving", vo2peak_window=15))
    'a centred moving average of 15 consecutive breaths (bm_15)'
    """
    window = settings.vo2peak_window
    return {
        "time-moving": f"a {window} s centred moving average of the values interpolated "
                       f"linearly to whole seconds (tm_{window})",
        "time-binned": f"the means of consecutive {window} s bins from the start of the "
                       "recording, after linear interpolation to whole seconds, incomplete "
                       f"bins ignored (tb_{window})",
        "breath-moving": f"a centred moving average of {window} consecutive breaths "
                         f"(bm_{window})",
    }[settings.vo2peak_method]


def within_text(settings: Settings) -> str:
    """Where peaks are looked for, in words."""
    if settings.peak_within == "exercise":
        return ("within the exercise phase only, bout by bout when labelled pauses split it "
                "(recovery cannot raise a peak)")
    return "over the whole recording, recovery included"


def screening_text() -> str:
    """The breath screening before any measure, in words."""
    return ("single values outside physiological ranges were set missing, and in "
            "breath-by-breath and 1 s data so were single breaths more than "
            f"{SPIKE_FOLD:g} times above or below the median of the breath and its "
            f"{SPIKE_HALF_WINDOW} neighbours on either side and more than {SPIKE_ROBUST_SD:g} "
            "robust SD from it (a Hampel identifier, Pearson 2002); no other filter was "
            "applied")


def vote_lag_text(settings: Settings) -> str:
    """How the model's vote was moved in the consensus (:func:`cpet_nb.analysis.vote_lags_s`),
    in words; empty when it was not."""
    lags = vote_lags_s(settings)
    if not lags:
        return ""
    return (f", the network voting {lags['vt1']:g} s before its VT1 and {lags['vt2']:g} s "
            "before its VT2, its median lateness against pyoxynet's labelled tests")


def statement_text(data: JobData) -> str:
    """The processing statement as a paragraph a methods section can take (plain text)."""
    s = data.settings
    job = data.job
    formats = _counted(data.analysed["format"])
    formula, (intercept, slope) = s.hr_max_formula, HR_MAX_FORMULAS[s.hr_max_formula]
    age_term = "age" if slope == 1 else f"{slope:g} × age"
    prep = Preparation()
    return (
        f"Cardiopulmonary exercise tests ({len(data.analysed)} analysed; exports: {formats}) "
        f"were analysed with cpet_nb {job['cpet_nb_version']} (job {data.job_id}). Before "
        f"any measure, {screening_text()}. Peak values (VO2peak, VCO2peak, VEpeak, and RER "
        f"and O2 pulse as ratios of the averages) were the highest value of "
        f"{averaging_text(s)}, {within_text(s)} (Nolte et al. 2023); HRpeak, peak work rate "
        "and peak speed were the highest single values. The first and second ventilatory "
        "thresholds (VT1, VT2) were estimated by the Oxynet convolutional neural network "
        f"(Zignoli et al. 2022; pyoxynet 0.1.12 weights run on TensorFlow Lite, model "
        f"{job['model_version']}) and by the classical V-slope, ventilatory-equivalent and "
        f"end-tidal methods (Beaver et al. 1986; Wasserman et al. 2005) on {prep.bin_s:g} s "
        f"bins of the exercise after its first {prep.skip_start_s:g} s, and combined into a "
        f"consensus by a weighted median (VT2: model weight {DEFAULT_WEIGHTS['vt2_model']:g})"
        f"{vote_lag_text(s)}. "
        f"Tests were flagged for review when the uncertainty of a threshold (from breath "
        f"noise, method disagreement and the model's indecision, calibrated on pyoxynet's "
        f"labelled tests) was above {s.review_uncertainty_ml_min:g} mL/min, when a threshold "
        "was missing or VT2 did not follow VT1, when the model's domains looked swapped, or "
        f"when the effort convention ({s.effort_convention}) was not met: RERpeak at least "
        f"{s.rer_criterion:g}, HRpeak at least {s.hr_criterion_pct:g} % of the age-predicted "
        f"maximum ({intercept:g} − {age_term}, {formula.capitalize()}), a VO2 plateau a rise "
        "of less than 150 mL/min over the last 30 s of exercise (Taylor et al. 1955).")


def checklist(data: JobData) -> list[ChecklistItem]:
    """The reporting checklist of Nolte et al. (2023), filled for ``data``'s job."""
    s = data.settings
    analysed = data.analysed
    devices = _counted(data.files.loc[data.files["status"].isin(["ok", "warning"]), "device"])
    sampling = _counted(analysed["sampling"])
    breath_by_breath = set(analysed["sampling"].dropna()) == {"breath-by-breath"}
    screened = _tests_with(data, ("implausible-values", "outlier-breath"))
    default = Settings()
    chosen_default = (s.vo2peak_method, s.vo2peak_window) == (default.vo2peak_method,
                                                            default.vo2peak_window)
    effort = _effort_counts(analysed)
    cycle = int(pd.to_numeric(analysed["peak_load_w"], errors="coerce").gt(0).sum())
    treadmill = int(pd.to_numeric(analysed["peak_speed_km_h"], errors="coerce").gt(0).sum())
    weight = int(pd.to_numeric(analysed["weight_kg"], errors="coerce").notna().sum())
    return [
        ChecklistItem("Metabolic cart", "the exact device model and manufacturer",
                      f"Export formats by device family: {devices or 'none recorded'}. The "
                      "exports do not name the cart's model: state it.", "partly"),
        ChecklistItem("Measurement mode", "mixing chamber, breath-by-breath, ...",
                      f"Sampling of the exports, detected from their time steps: {sampling}."
                      + ("" if breath_by_breath else " Interpolated or averaged exports do not "
                         "show how the cart measured: state it."),
                      "reported" if breath_by_breath else "partly"),
        ChecklistItem("Software", "name and version of the analysis software",
                      f"cpet_nb {data.job['cpet_nb_version']} with the Oxynet model "
                      f"{data.job['model_version']}; the cart software that exported the files "
                      "is not recorded: state it.", "partly"),
        ChecklistItem("Preprocessing", "initial modification (outlier filtering, "
                      "interpolation) before analysis",
                      f"{_sentence(screening_text())}. Values were set missing in "
                      f"{screened} of {len(analysed)} tests (findings implausible-values and "
                      "outlier-breath).", "reported"),
        ChecklistItem("Processing strategy", "the strategy used to determine VO2max",
                      f"The highest value of {averaging_text(s)}.", "reported"),
        ChecklistItem("Processing parameters", "the parameters of that strategy",
                      f"vo2peak_method = {s.vo2peak_method}, vo2peak_window = "
                      f"{s.vo2peak_window}, peak_within = {s.peak_within}: "
                      f"{within_text(s)}; only complete windows count.", "reported"),
        ChecklistItem("Rationale", "why that strategy",
                      "cpet_nb's default, the 30 s moving average Nolte et al. (2023) recommend "
                      "where no digital filter is used." if chosen_default else
                      "Chosen for this job (not cpet_nb's default tm_30): state why.",
                      "reported" if chosen_default else "partly"),
        ChecklistItem("Maximum", "how the maximum is taken",
                      f"VO2peak is the highest averaged value {within_text(s)}; "
                      "VO2peak per kg needs a body mass.", "reported"),
        ChecklistItem("Maximal effort", "the criteria used to accept a maximal effort",
                      f"RERpeak ≥ {s.rer_criterion:g}: {effort['rer_criterion_met']}; HRpeak ≥ "
                      f"{s.hr_criterion_pct:g} % of predicted: {effort['hr_criterion_met']}; "
                      f"VO2 plateau: {effort['vo2_plateau_ml_min']}; convention "
                      f"{s.effort_convention}: {effort['effort_met']}. Reported, never used to "
                      "exclude a test.", "reported"),
        ChecklistItem("Exercise protocol", "ergometer, protocol, increments",
                      f"{cycle} tests record a work rate (cycle ergometer), {treadmill} a speed "
                      "(treadmill). The protocol (ramp or steps, increments, warm-up) is not in "
                      "the results: state it.", "partly"),
        ChecklistItem("Calibration", "gas and volume calibration of the cart",
                      "Not in the exports.", "missing"),
        ChecklistItem("Population", "who was tested",
                      f"{len(analysed)} tests; body mass known for {weight}. Age and sex are "
                      "not kept in the results: describe the participants.", "partly"),
    ]


def statement_html(data: JobData) -> str:
    """Section 7: the processing statement, the averaging choices, the settings and the
    checklist."""
    items = checklist(data)
    checklist_rows = [[h.esc(i.item), h.esc(i.asks), h.esc(i.answer), h.esc(STATUSES[i.status])]
                      for i in items]
    body = (heading("methods")
            + "<p>To copy into a methods section (it names the settings this job ran with):</p>"
            + f"<blockquote>{h.esc(statement_text(data))}</blockquote>"
            + "<h3>Averaging choices</h3>" + averaging_html(data.settings)
            + "<h3>Settings of the job</h3>" + settings_html(data.settings)
            + "<h3>VO2max reporting checklist (Nolte et al. 2023)</h3>"
            + "<p>The seven items of the checklist, then the further items the authors name. "
              f"{sum(i.status != 'reported' for i in items)} need information only the lab "
              "has.</p>"
            + h.table(checklist_rows, ["item", "asks for", "this batch", "status"],
                      text_columns=(0, 1, 2, 3), wrap_columns=(1, 2), name="checklist")
            + "<h3>References</h3><ul>" + "".join(f"<li>{h.esc(r)}</li>" for r in REFERENCES)
            + "</ul>")
    return h.section(body)


def methods_html(data: JobData) -> str:
    """How a test's values were made, for its own report: the processing statement and the
    averaging choices (the batch report's section 6 has the settings and the checklist)."""
    return h.section("<h2 id='methods'>How these values were made</h2>"
                     + f"<blockquote>{h.esc(statement_text(data))}</blockquote>"
                     + averaging_html(data.settings))


def averaging_html(settings: Settings) -> str:
    """Every averaging the values rest on: peaks, thresholds, slopes, model."""
    prep = Preparation()
    rows = [
        ("Peak values (VO2, VCO2, VE, RER, O2 pulse)",
         f"{averaging_text(settings)}, {within_text(settings)}"),
        ("HRpeak, peak work rate and speed", "highest single value"),
        ("VO2 plateau", "means of the last 30 s of exercise and of the 30 s before"),
        ("Classical thresholds", f"{prep.bin_s:g} s bins of the exercise after its first "
         f"{prep.skip_start_s:g} s; at least {prep.min_segment_s:g} s each side of a "
         "breakpoint"),
        ("Slopes (VE/VCO2, OUES, ΔVO2/ΔWR, HR/VO2)", f"{AVERAGE_S:g} s bins"),
        ("Oxynet model", "1 s grid, each channel scaled to its range over the test, 40 s "
         "windows; VO2 and HR at the thresholds from the smoothed series"),
        ("HR at a consensus threshold", "mean over ±10 s"),
    ]
    return h.table([[h.esc(a), h.esc(b)] for a, b in rows], ["values", "averaging"],
                   text_columns=(0, 1), wrap_columns=(1,), name="averaging")


def settings_html(settings: Settings) -> str:
    """Every setting (:meth:`Settings.options`): its group, the value the job used (bold
    when not the default), the default and its help text."""
    default = Settings()
    rows = []
    for name, option in Settings.options().items():
        used, usual = getattr(settings, name), getattr(default, name)
        shown = h.esc(_value(used))
        rows.append([h.esc(option.group), f"<code>{h.esc(name)}</code>",
                     f"<b>{shown}</b>" if used != usual else shown, h.esc(_value(usual)),
                     h.esc(option.help)])
    return h.table(rows, ["group", "setting", "value", "default", "meaning"],
                   text_columns=(0, 1, 2, 3, 4), wrap_columns=(4,), name="settings")


def _value(value: object) -> str:
    """A setting's value as the settings table shows it (text unquoted, none for None)."""
    if value is None:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def _sentence(text: str) -> str:
    """``text`` with a capital first letter (the rest as it is)."""
    return text[:1].upper() + text[1:]


def _counted(values: Iterable[object]) -> str:
    """``"pyoxynet-csv (139), cosmed (2)"``: each value with how often it occurs."""
    counts = Counter(str(v) for v in values if v is not None and not pd.isna(v))
    return ", ".join(f"{value} ({n})" for value, n in counts.most_common())


def _tests_with(data: JobData, codes: tuple[str, ...]) -> int:
    """How many analysed inputs have a finding (any severity) with one of ``codes``."""
    analysed = data.files[data.files["status"].isin(["ok", "warning"])]
    return sum(any(f["code"] in codes for f in json.loads(text or "[]"))
               for text in analysed["findings"])


def _effort_counts(analysed: pd.DataFrame) -> dict[str, str]:
    """``"120 met, 15 not met, 4 unknown"`` per effort-criterion column."""
    out = {}
    for column in ("rer_criterion_met", "hr_criterion_met", "vo2_plateau_ml_min", "effort_met"):
        values = pd.to_numeric(analysed[column], errors="coerce")
        out[column] = (f"{int((values == 1).sum())} met, {int((values == 0).sum())} not met, "
                       f"{int(values.isna().sum())} unknown")
    return out
