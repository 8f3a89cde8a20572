"""The ``cpet-nb`` command line: a thin shell over the Python API."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .analysis import analyze_isolated
from .batch.staging import Staged, stage_inputs
from .batch.store import owner_alive
from .findings import has_errors
from .io import ColumnMapping, datasets, readers
from .io.exports import CSV_DIALECTS, TABLE_FORMATS, check_table_path, write_table
from .io.participants import SubjectTable
from .io.profiles import list_profiles, load_profile, profiles_folder, save_profile
from .model import MODEL_NAMES, RuntimeMissing, get_model
from .report.batch import PER_TEST
from .result import FileResult, results_table
from .settings import Settings

#: Prefix of the temporary folder of a ``cpet-nb analyze`` run (archive members), followed by
#: the process id, so that the next run removes what a killed one left.
TEMP_PREFIX = "cpet_nb-analyze-"


def _remove_stale_temp_dirs() -> None:
    """Remove the temporary folders of ``cpet-nb analyze`` runs whose process is gone."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        pid = folder.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not owner_alive(int(pid), None):
            shutil.rmtree(folder, ignore_errors=True)


def _analyze_many(paths: Sequence[str], output: Path, settings: Settings, quiet: bool,
                  **options: Any) -> tuple[list[FileResult], int]:
    """Analyse ``paths`` in this process; write the table; return results and the exit code.

    The inputs are staged and accounted for as a batch's are (:mod:`cpet_nb.batch.staging`):
    the table has a row for every input, skipped and refused ones included. ``options`` go
    to :func:`cpet_nb.analyze` for every file (``subjects``, ``hr_file``, ``hr_offset_s``).
    """
    _remove_stale_temp_dirs()
    folder = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    try:
        staged = stage_inputs(paths, folder, settings)
        if not staged.entries:
            print(f"cpet-nb: {staged.why_nothing_to_analyse()}", file=sys.stderr)
            return [], 1
        if options.get("hr_file") is not None and len(staged.to_analyse) != 1:
            print("cpet-nb: --hr-file belongs to one test: give exactly one input file",
                  file=sys.stderr)
            return [], 2
        return _run(staged, output, quiet, dict(options, settings=settings))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(staged: Staged, output: Path, quiet: bool,
         options: dict[str, Any]) -> tuple[list[FileResult], int]:
    """Analyse staged inputs in order, write the table, print the summary."""
    try:  # fail once, clearly, rather than once per file
        for name in options["settings"].models:
            get_model(name)
    except RuntimeMissing as exc:
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return [], 1
    results = []
    start = time.perf_counter()
    for i, entry in enumerate(staged.entries, 1):
        if entry.idx in staged.settled:
            result = staged.settled[entry.idx][1]
        else:
            result = analyze_isolated(entry.path, **options).renamed(entry.name)
        results.append(result)
        if not quiet:
            print(f"[{i}/{len(staged.entries)}] {result.status:7s} {entry.name}",
                  file=sys.stderr)
            for finding in result.findings:
                if finding.severity.value != "info" or result.status == "skipped":
                    print(f"          {finding}", file=sys.stderr)
    write_table(results_table(results), output, options["settings"].csv_dialect)
    counts = Counter(r.status for r in results)
    print(f"{len(results)} input(s) in {time.perf_counter() - start:.1f} s: "
          f"{_status_counts(counts)}. Results: {output}", file=sys.stderr)
    _name_not_analysed(((r.file, r.status, f"{r.findings[0].code}: {r.findings[0].message}"
                         if r.findings else "") for r in results),
                       staged.info.get("ignored", 0))
    if counts["ok"] + counts["warning"] == 0:
        print("cpet-nb: no file could be analysed; see the findings above", file=sys.stderr)
        return results, 1
    return results, 0


def _status_counts(counts: Mapping[str, int]) -> str:
    """``"3 ok, 1 warning, 0 error, 2 skipped"`` (skipped only when there are some)."""
    text = f"{counts['ok']} ok, {counts['warning']} warning, {counts['error']} error"
    return text + (f", {counts['skipped']} skipped" if counts["skipped"] else "")


def _name_not_analysed(rows: Iterable[tuple[str, str, str]], ignored: int) -> None:
    """Print every input (name, status, first finding) that was skipped or failed, with
    why: the summary names them all."""
    for name, status, reason in rows:
        if status in ("skipped", "error"):
            print(f"  {status}: {name}: {reason or 'no reason recorded'}", file=sys.stderr)
    if ignored:
        print(f"  ({ignored} hidden or system file(s) in the folders were ignored)",
              file=sys.stderr)


def _cmd_analyze(args: argparse.Namespace) -> int:
    try:  # a lab profile's name becomes its column mapping, as in a batch's settings
        settings = Settings.load(args.config, max_file_mb=args.max_file_mb,
                                 profile=args.profile, models=args.models,
                                 csv_dialect=args.csv_dialect)
        check_table_path(args.output)  # before any work, not after it
    except ValueError as exc:
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return 2
    options: dict[str, Any] = {"hr_file": args.hr_file, "hr_offset_s": args.hr_offset}
    if args.participants:
        table = SubjectTable.from_csv(args.participants)
        for finding in table.findings:
            print(f"cpet-nb: {finding}", file=sys.stderr)
        if has_errors(table.findings):
            return 2
        options["subjects"] = table
    _, code = _analyze_many(args.paths, Path(args.output), settings, args.quiet, **options)
    return code


def _cmd_profile(args: argparse.Namespace) -> int:
    try:
        if args.action == "list":
            print(f"# {profiles_folder()}")
            for name in list_profiles():
                print(name)
        elif args.action == "show":
            print(json.dumps(load_profile(args.name).to_dict(), indent=2))
        else:
            source = json.loads(Path(args.mapping_json).read_text(encoding="utf-8"))
            print(save_profile(args.name, ColumnMapping.from_dict(source)))
    except (ValueError, OSError) as exc:  # a bad name, file or mapping: say which
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """pyoxynet's bundled tests as a batch (a job store in ``--out``), their results table
    and the batch report."""
    from .batch.api import submit

    out = Path(args.out)
    store = out / "jobs.sqlite"
    tests = datasets.pyoxynet_tests()[: args.limit or None]
    try:
        batch = submit(tests, store, workers=args.workers, csv_dialect=args.csv_dialect)
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return 2
    progress = _follow(batch, args.quiet)
    table = write_table(batch.results(), out / "results.csv", batch.settings.csv_dialect)
    print(f"cpet-nb: job {batch.job_id} {progress.state}: {progress.n_files} input(s), "
          f"{_status_counts(progress.counts)}. Results: {table}", file=sys.stderr)
    if progress.state != "done":
        return 1
    return _make_report(batch.job_id, str(store), out / "report.html", args.per_test,
                        "CPET batch report: pyoxynet's bundled real tests")


def _cmd_report(args: argparse.Namespace) -> int:
    return _make_report(args.job, args.store, Path(args.output), args.per_test, args.title,
                        args.keep_notebook)


def _make_report(job_id: str, store: str, output: Path, per_test: str, title: str = "",
                 keep_notebook: bool = False) -> int:
    """Make the batch report of a stored job; print what was written (or which cell
    failed) on stderr; return the exit code: 0 written, 1 the report failed (the partial
    notebook is kept), 2 it could not start (arguments, missing extra, kernel)."""
    from .report import ReportFailed, batch_report, tests_zip_path

    started = time.perf_counter()
    print(f"cpet-nb: making the report of job {job_id} in {store} ({per_test} per test)",
          file=sys.stderr)
    try:
        page = batch_report(job_id, store, output, per_test, title=title,
                            keep_notebook=keep_notebook)
    except ReportFailed as exc:
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return 1
    except (ImportError, ValueError, RuntimeError, OSError) as exc:
        print(f"cpet-nb: no report: {exc}", file=sys.stderr)
        return 2
    extra = f" and {tests_zip_path(page)}" if per_test == "zip" else ""
    print(f"cpet-nb: report written in {time.perf_counter() - started:.1f} s: {page}{extra} "
          "(open it in a browser; works offline)", file=sys.stderr)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from .batch.api import resume, submit

    if bool(args.inputs) == bool(args.resume):
        print("cpet-nb: give INPUTS for a new job, or --resume JOB (not both)", file=sys.stderr)
        return 2
    if args.output:
        try:
            check_table_path(args.output)
        except ValueError as exc:
            print(f"cpet-nb: {exc}", file=sys.stderr)
            return 2
    started = time.perf_counter()
    try:
        if args.resume:
            batch = resume(args.resume, args.store, client=args.scheduler, force=args.force)
        else:
            batch = submit(args.inputs, args.store, client=args.scheduler, config=args.config,
                           workers=args.workers, file_timeout_s=args.timeout,
                           max_file_mb=args.max_file_mb, partition_size=args.partition_size,
                           profile=args.profile, participants=args.participants,
                           models=args.models, csv_dialect=args.csv_dialect)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return 2
    print(f"cpet-nb: job {batch.job_id} in {args.store}", file=sys.stderr)
    try:
        progress = _follow(batch, args.quiet)
    except KeyboardInterrupt:
        progress = batch.cancel()
        print(f"cpet-nb: cancelled; results so far are stored. Continue with: cpet-nb run "
              f"--store {args.store} --resume {batch.job_id}", file=sys.stderr)
    elapsed = time.perf_counter() - started
    counts = progress.counts
    print(f"{progress.n_files} input(s), job {progress.state} in {elapsed:.1f} s: "
          f"{_status_counts(counts)}"
          + (f"; {counts['reused']} reused from earlier jobs" if counts["reused"] else "")
          + (f"; {counts['cancelled']} not analysed" if counts["cancelled"] else ""),
          file=sys.stderr)
    files = batch.files()
    _name_not_analysed(((row.name, row.status, _first_message(row.findings))
                        for row in files.itertuples()),
                       batch.store.job(batch.job_id)["inputs"].get("ignored", 0))
    if args.output:
        dialect = args.csv_dialect or batch.settings.csv_dialect
        print(f"Results: {write_table(batch.results(), args.output, dialect)}",
              file=sys.stderr)
    return 0 if progress.state == "done" else 1


def _first_message(findings_json: str | None) -> str:
    """``code: message`` of the first finding in a files-table ``findings`` cell."""
    findings = json.loads(findings_json) if findings_json else []
    return f"{findings[0]['code']}: {findings[0]['message']}" if findings else ""


def _follow(batch: Any, quiet: bool) -> Any:
    """Wait for ``batch``, with a progress bar on stderr unless ``quiet``."""
    if quiet:
        return batch.wait()
    from tqdm import tqdm

    first = batch.status()
    with tqdm(total=first.n_files, initial=first.n_finished, unit="file",
              file=sys.stderr) as bar:
        def show(progress: Any) -> None:
            now = progress.n_finished
            bar.set_postfix(ok=progress.counts["ok"], warning=progress.counts["warning"],
                            error=progress.counts["error"], refresh=False)
            bar.update(now - bar.n)

        batch.subscribe(show)
        show(batch.status())  # partitions stored before subscribing
        return batch.wait()


def _cmd_store(args: argparse.Namespace) -> int:
    from .batch.store import Store
    from .settings import Settings

    if not Path(args.store).exists():
        print(f"cpet-nb: no store at {args.store}", file=sys.stderr)
        return 2
    store = Store(args.store)
    settings = Settings.load(args.config)
    if args.action == "jobs":
        print(store.jobs().to_string(index=False))
    elif args.action == "check":
        verdict = store.integrity_check()
        print(verdict)
        return 0 if verdict == "ok" else 1
    elif args.action == "backup":
        keep = args.keep or settings.backups_keep
        print(f"{store.backup(keep)} (integrity ok; keeping the newest {keep})")
    else:
        days = args.older_than or settings.job_expiry_days
        if days is None:
            print("cpet-nb: say how old a finished job must be to go: --older-than DAYS "
                  "(or job_expiry_days in the settings)", file=sys.stderr)
            return 2
        removed = store.cleanup(days)
        print(f"removed {len(removed)} job(s) finished more than {days:g} day(s) ago"
              + "".join(f"\n  {job}" for job in removed))
    return 0


def _cmd_review(args: argparse.Namespace) -> int:
    """List a job's review queue; with ``--apply``, first store the overrides of a CSV (all
    or none). Exit code: 0 done, 1 overrides refused (a finding per bad row, nothing
    stored), 2 no such store or job."""
    from .batch.review import OverrideRefused, apply_overrides, read_requests, review_queue
    from .report.job import UnknownJob, open_store, resolve_job_id

    try:
        store = open_store(args.store)
        job_id = resolve_job_id(store, args.job)
    except (FileNotFoundError, UnknownJob) as exc:
        print(f"cpet-nb: {exc}", file=sys.stderr)
        return 2
    if args.apply:
        requests, unreadable = read_requests(args.apply)
        try:
            stored = apply_overrides(store, job_id, requests, reviewer=args.reviewer,
                                     rejected=unreadable)
        except OverrideRefused as exc:
            print(f"cpet-nb: no override stored from {args.apply}: {len(exc.findings)} bad "
                  "row(s)", file=sys.stderr)
            for finding in exc.findings:
                print(f"  {finding}", file=sys.stderr)
            return 1
        except ValueError as exc:  # no reviewer named and none known to the system
            print(f"cpet-nb: {exc}", file=sys.stderr)
            return 2
        print(f"cpet-nb: stored {len(stored)} override(s) in job {job_id}", file=sys.stderr)
    queue = review_queue(store.results(job_id))
    print(queue.to_string(index=False) if len(queue) else "(no analysed tests)")
    in_force = store.overrides(job_id)["current"].sum()
    print(f"{len(queue)} analysed test(s), {int(queue['review'].fillna(False).sum())} flagged "
          f"for review; {in_force} override(s) in force", file=sys.stderr)
    return 0


def _cmd_formats(args: argparse.Namespace) -> int:
    for reader in readers():
        print(f"{reader.name:16s} {reader.description}")
    return 0


def _add_models_argument(parser: argparse.ArgumentParser) -> None:
    option = Settings.options()["models"]
    parser.add_argument(
        "--models", metavar="NAME,...",
        type=lambda text: option.convert("models", text, "--models"),
        help=f"pyoxynet's models to run, comma-separated ({', '.join(MODEL_NAMES)}; default: "
             "settings, cnn); with several, their ensemble votes in the consensus")


def _add_csv_dialect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv-dialect", choices=tuple(CSV_DIALECTS),
                        help="CSV tables: comma (',' and a decimal point) or semicolon (';', a "
                        "decimal comma, UTF-8 with BOM: Excel where 1,5 is written); default: "
                        "settings (csv_dialect), comma")


def _add_per_test(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--per-test", choices=PER_TEST, default=default,
                        help="per test: nothing, a section each in the page, or one report "
                        f"each in a ZIP beside it (default: {default})")


def _add_stored_job(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="SQLite job store")
    parser.add_argument("--job", required=True, metavar="JOB",
                        help="the job's id, or 'latest' for the newest job in the store")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cpet-nb``."""
    parser = argparse.ArgumentParser(
        prog="cpet-nb", description="Batch analysis of CPET files (VT1/VT2, VO2peak, findings).")
    parser.add_argument("--version", action="version", version=f"cpet-nb {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    formats = ", ".join(TABLE_FORMATS)  # what write_table writes

    analyze = sub.add_parser("analyze", help="analyse files, folders or globs into a table")
    analyze.add_argument("paths", nargs="+", help="files, folders (searched recursively) or globs")
    analyze.add_argument("-o", "--output", default="results.csv",
                         help=f"results table, by its ending: {formats} (default: results.csv)")
    analyze.add_argument("--max-file-mb", type=float,
                         help="refuse larger files (default: settings, 10 MB)")
    analyze.add_argument("--config", help="settings file (TOML, [cpet_nb] table; also "
                         "$CPET_NB_CONFIG and CPET_NB_* variables): peak averaging, criteria")
    analyze.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    analyze.add_argument("--profile", help="read every file with this lab profile's column "
                         "mapping (see 'cpet-nb profile')")
    analyze.add_argument("--participants", metavar="CSV",
                         help="participants table (key by file name or number; weight, "
                         "height, age, sex) overriding the files' subject data")
    _add_models_argument(analyze)
    analyze.add_argument("--hr-file", metavar="TCX_OR_CSV",
                         help="heart-rate recording to merge onto a single test")
    analyze.add_argument("--hr-offset", type=float, metavar="SECONDS",
                         help="the HR recording's time at the test's start (default: the "
                         "recording's clock, else its first sample; see docs)")
    _add_csv_dialect(analyze)
    analyze.set_defaults(func=_cmd_analyze)

    profile = sub.add_parser("profile", help="lab profiles: saved column mappings")
    profile.add_argument("action", choices=["list", "show", "save"])
    profile.add_argument("name", nargs="?", help="profile name (show, save)")
    profile.add_argument("mapping_json", nargs="?",
                         help="save: a JSON file with the mapping (ColumnMapping.to_dict form)")
    profile.set_defaults(func=_cmd_profile)

    demo = sub.add_parser("demo", help="analyse pyoxynet's 139 bundled real tests as a batch "
                          "and make its report")
    demo.add_argument("--out", default="demo-output", help="folder for jobs.sqlite, "
                      "results.csv and report.html (default: demo-output)")
    demo.add_argument("--limit", type=int, default=0, help="only the first N tests")
    demo.add_argument("--workers", type=int, help="local cluster workers, each "
                      "with one analysis process (default: one per core)")
    _add_per_test(demo, default="sections")
    _add_csv_dialect(demo)
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="run a batch on a dask cluster, tracked in a job store")
    run.add_argument("inputs", nargs="*", help="files, folders, globs or ZIP archives")
    run.add_argument("--store", required=True, help="SQLite job store (created when missing)")
    run.add_argument("--resume", metavar="JOB", help="finish an interrupted or cancelled job")
    run.add_argument("--force", action="store_true", help="with --resume: take over a job "
                     "that still looks running (its process was on another host and is gone)")
    run.add_argument("--scheduler", metavar="ADDR", help="an existing dask scheduler "
                     "(default: $DASK_SCHEDULER_ADDRESS, else a local cluster)")
    run.add_argument("--workers", type=int, help="local cluster workers, each "
                     "with one analysis process (default: one per core)")
    run.add_argument("-o", "--output", help=f"export the results table ({formats})")
    run.add_argument("--config", help="settings file (TOML, [cpet_nb] table)")
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit per file")
    run.add_argument("--max-file-mb", type=float, help="refuse larger files")
    run.add_argument("--partition-size", type=int, help="files per task (default: automatic)")
    run.add_argument("--profile", help="read every file with this lab profile")
    run.add_argument("--participants", metavar="CSV", help="participants table (weight, "
                     "height, age, sex by file name or number) overriding the files' data")
    _add_models_argument(run)
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _add_csv_dialect(run)
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="the HTML report of a stored job (papermill; "
                            "needs the jupyter extra)")
    _add_stored_job(report)
    report.add_argument("-o", "--output", default="report.html",
                        help="the .html page (default: report.html)")
    _add_per_test(report, default="none")
    report.add_argument("--title", default="", help="the report's title")
    report.add_argument("--keep-notebook", action="store_true",
                        help="keep the executed notebook beside the page")
    report.set_defaults(func=_cmd_report)

    review = sub.add_parser("review", help="a job's review queue (flagged tests first); "
                            "apply reviewers' threshold overrides from a CSV")
    _add_stored_job(review)
    review.add_argument("--apply", metavar="CSV", help="overrides to store first, all or none: "
                        "columns file, threshold (vt1, vt2), time_s or method (consensus, "
                        "model, vslope, ...), note, reviewer (see docs/review.md)")
    review.add_argument("--reviewer", help="who decides, for rows without a reviewer "
                        "(default: $JUPYTERHUB_USER, else the operating-system user)")
    review.set_defaults(func=_cmd_review)

    store = sub.add_parser("store", help="job store upkeep: jobs, check, backup, cleanup")
    store.add_argument("action", choices=["jobs", "check", "backup", "cleanup"])
    store.add_argument("--store", required=True, help="SQLite job store")
    store.add_argument("--keep", type=int, help="backups to keep (default: settings, 5)")
    store.add_argument("--older-than", type=float, metavar="DAYS",
                       help="cleanup: delete jobs finished longer ago, with their uploads")
    store.add_argument("--config", help="settings file (TOML, [cpet_nb] table)")
    store.set_defaults(func=_cmd_store)

    formats = sub.add_parser("formats", help="list the formats cpet-nb reads")
    formats.set_defaults(func=_cmd_formats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cpet-nb``; returns the exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
