"""Command line: ``fscan PATHS`` scans; ``stream`` scores live audio from a pipe;
``train``, ``evaluate``, ``export`` and ``build-dataset`` make and check the model;
``train-vocoder`` makes the neural vocoder that ``build-dataset`` can use.

Only click is imported at module level so that ``fscan --help`` is instant; every
command imports what it needs when it runs.
"""

import contextlib
import os
import shlex
import signal
import sys
import time
from datetime import datetime, timezone

import click

from . import __version__

SEGMENT_SECONDS = 5.0  # mirrors audio.SEGMENT_SECONDS; checked by a test, kept here for speed
MIN_SAMPLE_RATE = 4000  # mirrors audio.MIN_SAMPLE_RATE, likewise
_DEFAULT_WIDTHS = "8,16,24,32,32"  # mirrors model.DEFAULT_ARCH's stem and blocks, likewise

EXIT_CLEAN, EXIT_FLAGGED, EXIT_USAGE = 0, 1, 2

EPILOG = """\b
Exit codes:
  0  nothing flagged (see --fail-on)
  1  synthetic speech found (or errors, with --fail-on error/any)
  2  usage error, missing input path, no audio found, or unusable model

A folder named like a command (train, evaluate, calibrate, export, ensemble, unpack,
build-dataset, train-vocoder, scan, stream) is taken as the command: write ./train or use
'fscan scan train'.
"""


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a command name, goes to ``scan``."""

    default_command = "scan"

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h",
                                                                      "--version"):
            args = [self.default_command, *args]
        elif not args:
            args = [self.default_command]
        ctx.meta["fscan.argv"] = list(args)  # recorded in reports and model provenance
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("fscan", "[PATHS]... [OPTIONS]  |  fscan COMMAND [ARGS]...")


@click.group(cls=DefaultGroup, epilog=EPILOG,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fscan")
def main():
    """Tell genuine human speech from synthetic speech, 5 seconds at a time.

    fscan walks files and folders, scores every 5 s segment of every audio file with
    a small LCNN, and writes CSV/JSON/HTML reports. Run 'fscan scan --help' for the
    scan options, e.g.  fscan ./recordings --report out.html
    """


@main.command(epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(readable=False))
@click.option("--report", "--html", "html", type=click.Path(dir_okay=False),
              help="Write a self-contained HTML report.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False),
              help="Write one CSV row per file.")
@click.option("--segments", "segments_path", type=click.Path(dir_okay=False),
              help="Write one CSV row per 5 s segment.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write everything as JSON ('-' for stdout).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
              help="Write JUnit XML for CI test reports: one test case per file, "
                   "flagged = failure, unreadable = error.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Checkpoint to use (default: the bundled LCNN).")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Score at or above which a segment is synthetic (default: the model's).")
@click.option("--hop", "hop_s", type=click.FloatRange(1 / 16000, SEGMENT_SECONDS),
              default=SEGMENT_SECONDS, show_default=True,
              help="Seconds between segment starts; below 5 the segments overlap.")
@click.option("--jobs", "-j", type=int, default=-1, show_default=True,
              help="Parallel worker threads (-1: all cores). Scores do not depend on it.")
@click.option("--engine", type=click.Choice(["torch", "onnx"]), default="torch",
              show_default=True,
              help="Run the model with PyTorch, or with ONNX Runtime (pip install "
                   "'fscan[onnx]'; the export is kept in the cache folder). Scores agree "
                   "to within 1e-4.")
@click.option("--backend", type=click.Choice(["threads", "loky", "dask"]), default="threads",
              show_default=True,
              help="threads: one process on this machine (fastest here). loky: joblib worker "
                   "processes on this machine. dask: the workers of a Dask cluster (pip "
                   "install 'fscan[dask]'); they must be able to read PATHS and the model. "
                   "Results are identical.")
@click.option("--scheduler", envvar="FSCAN_DASK_SCHEDULER", metavar="ADDRESS",
              help="Dask scheduler for --backend dask, e.g. tcp://10.0.0.5:8786 "
                   "(default: $FSCAN_DASK_SCHEDULER).")
@click.option("--include", multiple=True, metavar="GLOB", help="Only scan matching files.")
@click.option("--exclude", multiple=True, metavar="GLOB", help="Skip matching files.")
@click.option("--max-duration", "max_duration_s", type=click.FloatRange(0, min_open=True),
              help="Scan at most this many seconds of each file (recorded in the reports).")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Feature cache folder (default: ~/.cache/fscan; with --backend dask, "
                   "none unless given: a folder every worker can write).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the feature cache.")
@click.option("--fail-on", type=click.Choice(["fake", "error", "any", "never"]),
              default="fake", show_default=True,
              help="What makes the exit code 1: synthetic speech, unreadable files, "
                   "either, or nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary table.")
def scan(paths, html, csv_path, segments_path, json_path, junit_path, model_path, threshold,
         hop_s, jobs, engine, backend, scheduler, include, exclude, max_duration_s, cache_dir,
         no_cache, fail_on, quiet):
    """Scan PATHS (audio files and folders, recursively) for synthetic speech."""
    from .backends import BackendError
    from .discovery import InputPathError, find_audio_files
    from .checkpoint import ModelError, bundled_model_path, read_checkpoint_info
    from .reports import write_report
    from .reports.terminal import ProgressBar, print_summary
    from .results import ERROR, FileResult
    from .scan import ScanOptions, build_report, scan_paths

    started = time.time()
    outputs = (("csv", csv_path), ("segments", segments_path), ("json", json_path),
               ("html", html), ("junit", junit_path))
    _prepare_outputs(path for _, path in outputs)
    try:
        found = find_audio_files(paths, include=include, exclude=exclude)
    except InputPathError as error:
        _fail(str(error))
    if not found.files and not found.problems:
        _fail("no audio files found in " + ", ".join(paths))
    model_path = model_path or bundled_model_path()
    try:
        checkpoint = read_checkpoint_info(model_path)  # the header only: no torch yet
    except ModelError as error:
        _fail(str(error))
    cache_dir = _cache_dir(cache_dir, no_cache, backend, engine)
    options = ScanOptions(hop_s=hop_s, threshold=threshold, jobs=jobs, cache_dir=cache_dir,
                          max_duration_s=max_duration_s, engine=engine, backend=backend,
                          scheduler=scheduler)
    try:
        with _sigterm_as_interrupt(), ProgressBar(disable=quiet) as progress:
            results = scan_paths(found.files, os.path.abspath(model_path), options, progress)
    except (ModelError, BackendError) as error:  # engine errors included
        _fail(str(error))
    except KeyboardInterrupt:
        click.echo("fscan: interrupted; no report was written.", err=True)
        sys.exit(130)
    results += [FileResult(path=path, status=ERROR, error=reason)
                for path, reason in found.problems]
    results += _alias_rows(results, found.aliases)
    results.sort(key=lambda result: result.path)
    report = build_report(results, checkpoint, options, command=_command_line(),
                          elapsed_s=round(time.time() - started, 3),
                          settings={"jobs": jobs, "backend": backend, "include": list(include),
                                    "exclude": list(exclude), "fail_on": fail_on})
    unwritten = []
    for kind, path in outputs:
        if path:
            try:
                write_report(kind, report, path)
            except OSError as error:  # the folder went away during the scan: write the rest
                unwritten.append(f"cannot write {path}: {error.strerror or error}")
    if not quiet:
        from .reports.terminal import summary_console

        print_summary(report, summary_console(stderr=json_path == "-"))
    if unwritten:
        _fail("; ".join(unwritten))
    sys.exit(_exit_code(report, fail_on))


def _prepare_outputs(paths) -> None:
    """Fail before the work, not after it, when an output could not be written: each
    output's folder is made when missing and must be writable (outputs are written beside
    the target and renamed into place), and an output may not name a folder."""
    for path in paths:
        if not path or path == "-":
            continue
        target = os.path.abspath(path)
        folder = os.path.dirname(target)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            _fail(f"cannot write {path}: {error.strerror or error}")
        if os.path.isdir(target):
            _fail(f"cannot write {path}: it is a folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            _fail(f"cannot write {path}: its folder {folder} is not writable")


STREAM_EPILOG = """\b
Example:
  ffmpeg -i call.mp3 -f s16le -ac 1 -ar 16000 - | fscan stream --rate 16000

\b
Output (--format jsonl), one line per window, flushed as soon as it is scored:
  {"end_s": 10.0, "index": 1, "latency_ms": 7.9, "score": 0.91, "start_s": 5.0,
   "verdict": "fake"}
latency_ms: from the read that completed the window to its line being ready.
At the end, a summary with the median and 95th-percentile latency goes to stderr.

\b
Exit codes: 0 nothing flagged (or --fail-on never), 1 a window was flagged,
2 usage error, unreadable stream header, or unusable model.
"""


@main.command(epilog=STREAM_EPILOG)
@click.option("--rate", "sample_rate", type=click.IntRange(MIN_SAMPLE_RATE, 768000),
              default=16000,
              show_default=True, help="Sample rate of raw PCM input (a WAV header overrides).")
@click.option("--channels", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Interleaved channels of raw PCM input, mixed to mono.")
@click.option("--hop", "hop_s", type=click.FloatRange(1 / 16000, SEGMENT_SECONDS),
              default=SEGMENT_SECONDS, show_default=True,
              help="Seconds between window starts; below 5 the windows overlap.")
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Checkpoint to use (default: the bundled LCNN).")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Score at or above which a window is synthetic (default: the model's).")
@click.option("--engine", type=click.Choice(["torch", "onnx"]), default="torch",
              show_default=True, help="Run the model with PyTorch or ONNX Runtime.")
@click.option("--format", "output_format", type=click.Choice(["jsonl", "rich"]),
              default="jsonl", show_default=True,
              help="JSON lines on stdout, or a live table for a terminal.")
@click.option("--fail-on", type=click.Choice(["fake", "never"]), default="fake",
              show_default=True, help="Exit 1 when a window was flagged, or never.")
def stream(sample_rate, channels, hop_s, model_path, threshold, engine, output_format,
           fail_on):
    """Score audio read continuously from stdin, one 5 s window at a time.

    Input: raw signed 16-bit little-endian PCM (--rate, --channels), or a WAV stream
    (recognised by its RIFF header; 16/32-bit PCM or 32-bit float). Each window is
    scored as soon as its last sample arrives; when the stream ends between windows,
    one last window is aligned to its end, as for the last window of a file.
    """
    from .checkpoint import ModelError, bundled_model_path
    from .engine import open_scorer
    from .stream import StreamError, run_stream

    handle = click.get_binary_stream("stdin")
    try:
        with open_scorer(model_path or bundled_model_path(), engine) as scorer:
            threshold = scorer.threshold if threshold is None else threshold
            with _stream_sink(output_format, threshold) as emit:
                summary = run_stream(handle, scorer.score, threshold, emit,
                                     sample_rate=sample_rate, channels=channels, hop_s=hop_s)
    except ModelError as error:
        _fail(str(error))
    except StreamError as error:
        _fail(f"cannot read the stream: {error}")
    except KeyboardInterrupt:
        sys.exit(130)
    latency = summary["latency"]
    if latency["windows"]:
        click.echo(f"fscan stream: {summary['windows']} windows, {summary['flagged']} flagged; "
                   f"latency after a window closes: median {latency['median_ms']:.1f} ms, "
                   f"p95 {latency['p95_ms']:.1f} ms, max {latency['max_ms']:.1f} ms", err=True)
    else:
        click.echo("fscan stream: no audio received", err=True)
    sys.exit(EXIT_FLAGGED if summary["flagged"] and fail_on == "fake" else EXIT_CLEAN)


@contextlib.contextmanager
def _stream_sink(output_format: str, threshold: float):
    """A function that shows one window dictionary: a JSON line, or a row of the live view."""
    if output_format == "rich":
        from .reports.terminal import StreamView

        with StreamView(threshold) as view:
            yield view.add
        return
    import json

    def write_line(window: dict) -> None:
        sys.stdout.write(json.dumps(window, sort_keys=True) + "\n")
        sys.stdout.flush()

    yield write_line


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_path", default="models/lcnn.safetensors", show_default=True,
              type=click.Path(dir_okay=False), help="Checkpoint to write.")
@click.option("--epochs", default=30, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--learning-rate", default=1e-3, show_default=True)
@click.option("--patience", default=6, show_default=True, help="Early-stopping patience.")
@click.option("--val-fraction", default=0.15, show_default=True,
              help="Share of groups (speakers/sources) held out for validation.")
@click.option("--augment-copies", default=1, show_default=True,
              help="Channel-augmented copies of every clip (codec, band limit, noise, reverb).")
@click.option("--channels", type=click.Choice(["standard", "rawboost"]), default="standard",
              show_default=True,
              help="Channel effects for the augmented copies; 'rawboost' adds RawBoost's "
                   "multi-notch convolutive, impulsive and coloured noise.")
@click.option("--twin-weight", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Twin contrast: weight of the loss that ranks each synthetic twin above "
                   "its genuine original (needs an 'original' column; 0 = off).")
@click.option("--sam-rho", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Sharpness-aware minimisation: radius of the weight perturbation "
                   "(e.g. 0.05; 0 = off, plain Adam). Doubles the cost of a step.")
@click.option("--system-weight", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Weight of an extra training loss that names the system behind each "
                   "segment (genuine or the 'system' column; 0 = off). Only the LCNN is kept.")
@click.option("--corpus-balance", is_flag=True,
              help="Weigh genuine and synthetic segments equally inside each corpus (the "
                   "'group' column up to ':'), so the corpus cannot predict the label.")
@click.option("--system-balance", is_flag=True,
              help="Weigh every synthetic system (the 'system' column) the same inside the "
                   "synthetic class, so the systems with most clips cannot crowd out the "
                   "rest. Not with --corpus-balance.")
@click.option("--average-from", default=0, show_default=True, type=click.IntRange(min=0),
              metavar="EPOCH",
              help="Weight averaging: from this epoch on, validate and keep the running mean "
                   "of the weights after every step (SWAD-style; 0 = off).")
@click.option("--head", type=click.Choice(["linear", "one-class"]), default="linear",
              show_default=True,
              help="The LCNN's last layer: linear (BCE), or 'one-class' (OC-softmax: "
                   "cosine to one learned genuine direction, with margins).")
@click.option("--band-norm", is_flag=True,
              help="Subtract each Mel band's mean over the segment before the LCNN, so the "
                   "long-term spectrum (channel, voice timbre) cannot carry the label.")
@click.option("--widths", default=_DEFAULT_WIDTHS, show_default=True, metavar="STEM,B1,B2,B3,B4",
              help="Channels kept by the LCNN's stem and each of its four blocks. Later "
                   "blocks run on pooled maps, so widening them is cheap: 8,24,48,64,64 has "
                   "3x the parameters for about 1.4x the model's time.")
@click.option("--init", "init_path", type=click.Path(exists=True, dir_okay=False),
              help="Start from this checkpoint's weights (fine-tuning), e.g. the bundled "
                   "models/lcnn.safetensors; they are validated first, as epoch 0, and kept "
                   "unless an epoch beats them. Use the seed and --val-fraction it was "
                   "trained with, so its training files stay out of validation.")
@click.option("--seed", default=0, show_default=True)
@click.option("--jobs", "-j", default=-1, show_default=True, help="Feature extraction workers.")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Keep extracted training features here between runs.")
def train(data, out_path, epochs, batch_size, learning_rate, patience, val_fraction,
          augment_copies, channels, twin_weight, sam_rho, system_weight, corpus_balance,
          system_balance, average_from, head, band_norm, widths, init_path, seed, jobs, cache_dir):
    """Train the LCNN on labelled DATA: folders with real/ and fake/, or CSV manifests.

    Manifests have columns path,label[,system,group]; 'group' (speaker or source) keeps
    related clips on one side of the validation split.
    """
    import pandas as pd

    from .labels import read_labelled
    from .training import TrainConfig, train as run_training

    _prepare_outputs([out_path])  # before an hour of training, not after it
    try:
        table = pd.concat([read_labelled(source) for source in data], ignore_index=True)
        config = TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                             patience=patience, val_fraction=val_fraction,
                             augment_copies=augment_copies, channels=channels,
                             twin_weight=twin_weight, sam_rho=sam_rho,
                             system_weight=system_weight, corpus_balance=corpus_balance,
                             system_balance=system_balance,
                             average_from=average_from, seed=seed,
                             arch=_arch_options(head, band_norm, widths), init=init_path or "")
        # stopped by Ctrl-C or SIGTERM, training keeps the best epoch so far and writes its
        # card and history
        with _sigterm_as_interrupt():
            run_training(table, out_path, config, jobs=jobs, cache_dir=cache_dir,
                         command=_command_line(), log=lambda line: click.echo(line, err=True))
    except ValueError as error:
        _fail(str(error))
    except KeyboardInterrupt:
        click.echo("fscan: interrupted before the first epoch ended; nothing was saved.",
                   err=True)
        sys.exit(130)


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Checkpoint to evaluate (default: the bundled LCNN).")
@click.option("--out-dir", default="evaluation", show_default=True,
              type=click.Path(file_okay=False), help="Where metrics and plots go.")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Threshold for accuracy figures (default: the model's).")
@click.option("--record", "record_as", metavar="NAME",
              help="Store the figures in the model file itself, naming DATA as NAME (e.g. "
                   "eval_public): scan reports then quote how often the model was wrong "
                   "on it. Only for data the model never trained or calibrated on.")
@click.option("--jobs", "-j", default=-1, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def evaluate(data, model_path, out_dir, threshold, record_as, jobs, quiet):
    """Score labelled DATA and report EER, AUC and accuracy, per generator system."""
    import pandas as pd

    from .evaluation import evaluate as compute, format_markdown, held_out_record, write_evaluation
    from .checkpoint import ModelError, bundled_model_path, read_checkpoint_info, rewrite_metadata
    from .labels import read_labelled
    from .reports.terminal import ProgressBar
    from .scan import ScanOptions, scan_paths

    model_path = os.path.abspath(model_path or bundled_model_path())
    if record_as is not None and threshold is not None:
        _fail("--record stores error rates at the model's own threshold: leave out --threshold")
    try:
        checkpoint = read_checkpoint_info(model_path)  # the scan loads the weights itself
        table = pd.concat([read_labelled(source) for source in data], ignore_index=True)
    except (ModelError, ValueError) as error:
        _fail(str(error))
    _prepare_outputs([os.path.join(out_dir, "metrics.json")])  # makes out_dir, before scoring
    options = ScanOptions(threshold=threshold, jobs=jobs)
    with ProgressBar(disable=quiet) as progress:
        results = scan_paths(table["path"].tolist(), model_path, options, progress)
    files, segments = _score_tables(table, results)
    result = compute(files, segments, threshold if threshold is not None else checkpoint.threshold)
    write_evaluation(result, out_dir)
    files.to_csv(os.path.join(out_dir, "file_scores.csv"), index=False)
    click.echo(format_markdown(result))
    if record_as is not None:
        measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record = held_out_record(result, record_as, _command_line(), measured_at)
        try:
            rewrite_metadata(model_path, model_path,
                             dict(read_checkpoint_info(model_path).metadata, held_out=record))
        except (ModelError, OSError) as error:
            _fail(f"cannot record the figures in {model_path}: {error}")
        click.echo(f"fscan: recorded the {record_as} figures in {model_path}", err=True)


@main.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Checkpoint to calibrate (default: the bundled LCNN).")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Calibrated checkpoint to write (may be the --model file itself).")
@click.option("--max-false-alarm", type=click.FloatRange(0, 1, max_open=True),
              help="Keep the false-alarm rate on DATA's genuine files at or below this "
                   "(e.g. 0.05). Default: the EER point of DATA.")
@click.option("--split", type=click.Choice(["all", "validation"]), default="all",
              show_default=True,
              help="'validation': only the groups the checkpoint held out for validation "
                   "(for the training data set itself).")
@click.option("--balance-corpora", is_flag=True,
              help="Count every corpus the same in the false-alarm target (a manifest's "
                   "'corpus' column, else the part of a file's group before ':'; in a "
                   "real/+fake/ folder, the file's folder).")
@click.option("--jobs", "-j", default=-1, show_default=True)
@click.option("--quiet", "-q", is_flag=True)
def calibrate(data, model_path, out_path, max_false_alarm, split, balance_corpora, jobs,
              quiet):
    """Set the model's decision threshold on labelled DATA you trust.

    Never calibrate on the data you evaluate on.
    """
    import pandas as pd

    from .calibration import choose_threshold, write_calibrated
    from .checkpoint import ModelError, bundled_model_path, read_checkpoint_info
    from .labels import corpus_names, read_labelled
    from .reports.terminal import ProgressBar
    from .scan import ScanOptions, scan_paths
    from .training import split_by_group

    if balance_corpora and max_false_alarm is None:
        _fail("--balance-corpora needs --max-false-alarm (the EER point has no corpora)")
    model_path = os.path.abspath(model_path or bundled_model_path())
    _prepare_outputs([out_path])
    try:
        checkpoint = read_checkpoint_info(model_path)
        table = pd.concat([read_labelled(source) for source in data], ignore_index=True)
    except (ModelError, ValueError) as error:
        _fail(str(error))
    if split == "validation":
        config = checkpoint.metadata.get("provenance", {}).get("config", {})
        if "val_fraction" not in config or "seed" not in config:
            _fail(f"{model_path} does not record its validation split (val_fraction, seed)")
        table = table[split_by_group(table["group"].tolist(), config["val_fraction"],
                                     config["seed"])]
    with ProgressBar(disable=quiet) as progress:
        results = scan_paths(table["path"].tolist(), model_path, ScanOptions(jobs=jobs),
                             progress)
    files, _ = _score_tables(table, results)
    scored = files[files["status"] == "ok"]
    if len(scored) < len(files):
        click.echo(f"fscan: {len(files) - len(scored)} unreadable files left out", err=True)
    corpora = None
    if balance_corpora:
        corpora = corpus_names(table.set_index("path").loc[scored["path"]]).to_numpy()
    try:
        calibration = choose_threshold((scored["label"] == "fake").astype(int),
                                       scored["score"], max_false_alarm, corpora)
        calibration.update(data=list(data), split=split, command=_command_line())
        write_calibrated(model_path, out_path, calibration)
    except (ModelError, ValueError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write {out_path}: {error.strerror or error}")
    misses = (f", misses {calibration['miss_rate']:.2%} of {calibration['n_fake']} synthetic "
              "files" if calibration["n_fake"] else "")
    by_corpus = (f" (mean over {calibration['n_corpora']} corpora "
                 f"{calibration['corpus_false_alarm_rate']:.2%})" if corpora is not None else "")
    click.echo(f"threshold {checkpoint.threshold:.4f} -> {calibration['threshold']:.4f} "
               f"({calibration['rule']}): false alarms {calibration['false_alarm_rate']:.2%} "
               f"of {calibration['n_genuine']} genuine files{by_corpus}{misses}; "
               f"wrote {out_path}")


@main.command()
@click.argument("models", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Ensemble checkpoint to write.")
def ensemble(models, out_path):
    """Join two or more checkpoints into one that averages their logits.

    The new checkpoint's threshold is a placeholder (0.5): set it with `fscan calibrate`
    on data none of the members was evaluated on.
    """
    from .model import ModelError, count_parameters, save_ensemble

    try:
        model = save_ensemble(models, out_path, command=_command_line())
    except ModelError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write {out_path}: {error.strerror or error}")
    click.echo(f"wrote {out_path}: {len(model.members)} LCNNs, "
               f"{count_parameters(model):,} parameters; threshold 0.5 is a placeholder, "
               f"set it next: fscan calibrate DATA --model {out_path} --out {out_path} "
               f"[--split validation] --max-false-alarm 0.05")


@main.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(exists=True, dir_okay=False))
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Folder for member0.safetensors, member1.safetensors, ...")
def unpack(model_path, out_dir):
    """Write each LCNN of an ensemble as a checkpoint of its own.

    Each keeps the threshold and training record the ensemble holds for it, so it can be
    scored alone or fine-tuned (`fscan train --init`); an ensemble is rebuilt with
    `fscan ensemble` and `fscan calibrate`.
    """
    from .model import ModelError, count_parameters, load_checkpoint, unpack_ensemble

    try:
        paths = unpack_ensemble(model_path, out_dir)
    except ModelError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write to {out_dir}: {error.strerror or error}")
    for path in paths:
        member = load_checkpoint(path)
        click.echo(f"wrote {path}: {count_parameters(member.model):,} parameters, "
                   f"threshold {member.threshold:.4f}")


@main.command()
@click.option("--model", "model_path", type=click.Path(dir_okay=False),
              help="Checkpoint to export (default: the bundled LCNN).")
@click.option("--onnx", "onnx_path", type=click.Path(dir_okay=False), help="Write ONNX here.")
@click.option("--torchscript", "script_path", type=click.Path(dir_okay=False),
              help="Write TorchScript here.")
def export(model_path, onnx_path, script_path):
    """Export the model to ONNX and/or TorchScript, checking scores match PyTorch."""
    from .export import export_onnx, export_torchscript
    from .model import ModelError, bundled_model_path, load_checkpoint

    if not onnx_path and not script_path:
        _fail("nothing to do: give --onnx PATH and/or --torchscript PATH")
    try:
        detector = load_checkpoint(model_path or bundled_model_path())
    except ModelError as error:
        _fail(str(error))
    for path, exporter in ((onnx_path, export_onnx), (script_path, export_torchscript)):
        if path:
            difference = exporter(detector, path)
            click.echo(f"wrote {path} (max score difference to PyTorch: {difference:.2e})")


@main.command("build-dataset")
@click.argument("real_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--neural", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of existing vocoded twins with a MANIFEST.csv to merge in.")
@click.option("--generators", help="Comma-separated generator names (default: all available "
              "but kokoro, a neural TTS at about 1.7x real time: name it to use it).")
@click.option("--fraction", default=1.0, show_default=True,
              type=click.FloatRange(0, 100, min_open=True),
              help="Synthetic audio to make, as a multiple of the genuine audio's duration.")
@click.option("--tts-share", default=0.175, show_default=True, type=click.FloatRange(0, 1),
              help="Part of the synthetic audio spoken by TTS generators.")
@click.option("--seed", default=0, show_default=True)
@click.option("--jobs", "-j", default=1, show_default=True)
@click.option("--strict", is_flag=True, help="Stop when a generator cannot run here instead "
              "of skipping it (the others would take its share: another data set).")
def build_dataset(real_dir, out_dir, neural, generators, fraction, tts_share, seed, jobs,
                  strict):
    """Make synthetic training speech from the genuine recordings in REAL_DIR."""
    from .dataset import build_dataset as build

    names = [name.strip() for name in generators.split(",")] if generators else None

    def progress(done, total):
        click.echo(f"\r{done}/{total}", nl=False, err=True)

    try:
        manifest = build(real_dir, out_dir, neural_dirs=neural, generators=names,
                         fraction=fraction, tts_share=tts_share, seed=seed, jobs=jobs,
                         progress=progress, strict=strict)
    except ValueError as error:  # an unknown generator, or one that cannot run here
        _fail(str(error))
    click.echo(f"\nwrote {manifest}", err=True)


@main.command("train-vocoder")
@click.argument("real_dirs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Checkpoint to write (safetensors).")
@click.option("--minutes", default=60.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Training time budget (wall clock).")
@click.option("--audio-minutes", default=30.0, show_default=True,
              type=click.FloatRange(0, min_open=True),
              help="Genuine audio to train on, drawn at random from REAL_DIRS.")
@click.option("--max-steps", type=click.IntRange(1),
              help="Stop after this many steps (repeatable runs: give --minutes to spare).")
@click.option("--kind", type=click.Choice(["nsf", "hifigan"]), default="nsf", show_default=True,
              help="nsf: neural source-filter, fits on CPU in an hour ('nsf' generator). "
                   "hifigan: HiFi-GAN with its discriminators, wants a GPU ('hifigan').")
@click.option("--device", default="cpu", show_default=True,
              help="torch device for --kind hifigan (e.g. cuda).")
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True, type=click.IntRange(1))
def train_vocoder(real_dirs, out_path, minutes, audio_minutes, max_steps, kind, device, seed,
                  threads):
    """Train a neural vocoder on genuine speech in REAL_DIRS, for the 'nsf' or 'hifigan'
    generator of build-dataset (point $FSCAN_NSF_VOCODER or $FSCAN_HIFIGAN_VOCODER at
    the checkpoint)."""
    import torch

    from .vocoder import load_training_clips, train_vocoder as train_nsf

    if kind == "nsf" and device != "cpu":
        _fail("--device applies to --kind hifigan only (the NSF vocoder trains on CPU)")
    if kind == "hifigan" and device.startswith("cuda") and not torch.cuda.is_available():
        _fail(f"--device {device}: torch sees no CUDA device here")
    torch.set_num_threads(threads)
    _prepare_outputs([out_path])
    clips = load_training_clips(real_dirs, audio_minutes, seed)
    if not clips:
        _fail(f"no decodable audio under {', '.join(real_dirs)}")

    def progress(step, elapsed_s, loss):
        losses = loss if isinstance(loss, dict) else {"loss": loss}
        click.echo(f"step {step}  {elapsed_s / 60:.1f} min  " +
                   "  ".join(f"{k} {v:.3f}" for k, v in losses.items()), err=True)

    try:
        if kind == "nsf":
            summary = train_nsf(clips, out_path, minutes=minutes, seed=seed,
                                max_steps=max_steps, progress=progress)
            final = f"loss {summary['final_loss']}"
        else:
            from .gan_vocoder import pack_clips, train_gan_vocoder

            summary = train_gan_vocoder(pack_clips(clips), out_path, minutes=minutes,
                                        seed=seed, max_steps=max_steps, device=device,
                                        progress=progress)
            final = f"mel L1 {summary['final_losses'].get('mel')}"
    except ValueError as error:
        _fail(str(error))
    click.echo(f"wrote {out_path}: {summary['steps']} steps, {final}", err=True)


def _cache_dir(cache_dir, no_cache: bool, backend: str, engine: str):
    # Dask workers run elsewhere: the client's ~/.cache/fscan means nothing to them, so
    # they cache only in a folder named on purpose (on a filesystem they share).
    if no_cache:
        cache_dir = None
    elif backend != "dask":
        cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "fscan")
    if backend == "dask" and engine == "onnx" and cache_dir is None:
        _fail("--engine onnx with --backend dask needs --cache-dir: a folder every worker "
              "can write, where the ONNX export is made once and kept")
    return cache_dir


def _score_tables(table, results):
    import pandas as pd

    labels = table.set_index("path")
    file_rows, segment_rows = [], []
    for result in results:
        meta = labels.loc[result.path]
        file_rows.append({"path": result.path, "label": meta["label"], "system": meta["system"],
                          "score": result.score, "status": result.status,
                          "error": result.error})
        for segment in result.segments:
            segment_rows.append({"path": result.path, "label": meta["label"],
                                 "system": meta["system"], "score": segment.score})
    return pd.DataFrame(file_rows), pd.DataFrame(segment_rows,
                                                 columns=["path", "label", "system", "score"])


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Inside the block SIGTERM (a job scheduler, `kill`) raises KeyboardInterrupt, as
    Ctrl-C does, so the command ends the same way for both."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _exit_code(report, fail_on: str) -> int:
    flagged = bool(report.flagged)
    errors = any(result.status == "error" for result in report.files)
    failing = {"fake": flagged, "error": errors, "any": flagged or errors, "never": False}
    return EXIT_FLAGGED if failing[fail_on] else EXIT_CLEAN


def _arch_options(head: str, band_norm: bool, widths: str = _DEFAULT_WIDTHS) -> dict:
    """Architecture settings that differ from model.DEFAULT_ARCH (an empty dict: none).

    Raises ValueError when ``widths`` is not five positive integers.
    """
    arch = {} if head == "linear" else {"head": head}
    if band_norm:
        arch["band_norm"] = True
    if widths != _DEFAULT_WIDTHS:
        try:
            stem, *blocks = [int(width) for width in widths.split(",")]
        except ValueError:
            stem, blocks = 0, []
        if stem < 1 or len(blocks) != 4 or min(blocks) < 1:
            raise ValueError(f"--widths {widths!r}: give five positive whole numbers, the "
                             f"stem's channels and each block's, e.g. {_DEFAULT_WIDTHS}")
        arch.update(stem=stem, blocks=blocks)
    return arch


def _alias_rows(results, aliases) -> list:
    """A row for each other path to a scanned file (a symlink): its file's result, noted."""
    from dataclasses import replace

    by_path = {result.path: result for result in results}
    rows = []
    for alias, path in aliases:
        note = f"the same file as {path} (reached through a link): scanned once"
        result = by_path[path]
        rows.append(replace(result, path=alias,
                            error="; ".join(filter(None, [note, result.error]))))
    return rows


def _command_line() -> str:
    argv = click.get_current_context().meta.get("fscan.argv", sys.argv[1:])
    return shlex.join(["fscan", *argv])


def _fail(message: str):
    click.echo(f"fscan: error: {message}", err=True)
    sys.exit(EXIT_USAGE)
