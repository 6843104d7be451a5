"""Score a labelled scan: equal error rates, error rates at the threshold, per system.

The input is what the scanner produced for a labelled data set (see ``labels.py``): one
row per file and one row per 5 s segment, each with its label, generating system and
score. Files the scanner could not read have no score; they are counted, listed and left
out of every metric rather than guessed.

Per-system figures pit all genuine files against one generator at a time, like the
per-attack EERs of ASVspoof: they show which generators a detector misses.
"""

import csv
import json
import os
from typing import Optional

import numpy as np
import pandas as pd

from . import metrics
from .labels import UNKNOWN_SYSTEM, parse_label
from .results import FAKE

LEVELS = ("files", "segments")
PER_SYSTEM_COLUMNS = ["system", "n_files", "n_segments", "file_eer", "file_eer_ci_low",
                      "file_eer_ci_high", "file_eer_threshold", "segment_eer",
                      "segment_eer_threshold", "file_miss_rate", "segment_miss_rate"]


def evaluate(files: pd.DataFrame, segments: pd.DataFrame, threshold: float) -> dict:
    """Detection metrics of a scan over labelled data.

    Parameters
    ----------
    files : pandas.DataFrame
        One row per file: ``path``, ``label`` (any synonym ``labels.parse_label`` takes),
        ``system`` and ``score`` (file score in [0, 1]; missing when the file could not be
        scored). An optional ``error`` column is carried into the error list.
    segments : pandas.DataFrame
        One row per scored segment: ``path``, ``label``, ``system``, ``score``.
    threshold : float
        The operating threshold: a score ``>= threshold`` is called fake.

    Returns
    -------
    dict
        ``threshold``; ``files`` and ``segments``, each with ``n_scored``, ``n_genuine``,
        ``n_fake``, ``n_errors``, ``eer``, ``eer_threshold``, ``auc`` and the
        ``metrics.rates_at`` figures at ``threshold``; ``per_system``, a list of dicts
        with the ``PER_SYSTEM_COLUMNS`` (EER of all genuine vs that system; ``None``
        where the system has nothing scored); ``errors``, the files left out; and
        ``curves``, the DET curves, for ``write_evaluation``.

    Raises
    ------
    ValueError
        If a label is unknown, or the scored files or segments are not both genuine
        and fake.
    """
    tables = {"files": _prepare(files, "files"), "segments": _prepare(segments, "segments")}
    scored = {level: table[table["score"].notna()] for level, table in tables.items()}
    result = {"threshold": float(threshold), "curves": {}}
    for level in LEVELS:
        table = scored[level]
        try:
            summary = _summary(table, threshold)
        except ValueError as error:
            raise ValueError(f"cannot evaluate the scored {level}: {error}") from error
        groups = None if level == "files" else table["path"].to_numpy()  # a file's segments
        result[level] = dict(summary, n_errors=len(tables[level]) - len(table),
                             **_intervals(table, groups))
        false_alarm_rate, miss_rate, _ = metrics.det_curve(table["is_fake"], table["score"])
        result["curves"][level] = {"false_alarm_rate": false_alarm_rate.tolist(),
                                   "miss_rate": miss_rate.tolist()}
    files = tables["files"]
    result["per_system"] = [_system_row(system, scored, threshold)
                            for system in sorted(set(files.loc[files["is_fake"], "system"]))]
    failed = files[files["score"].isna()]
    kept = [name for name in ("path", "label", "system", "error") if name in failed.columns]
    result["errors"] = [{name: _plain(row[name]) for name in kept}
                        for _, row in failed.sort_values("path", kind="mergesort").iterrows()]
    return result


def held_out_record(result: dict, data: str, command: str, measured_at: str) -> dict:
    """The figures of ``result`` a checkpoint keeps about itself (``evaluate --record``).

    ``data`` names the held-out set in words (e.g. "eval_public"); the reports quote the
    record so that a reader learns how often the model is wrong on generators it never saw.
    """
    files = result["files"]
    return {
        "data": data,
        "command": command,
        "measured_at": measured_at,
        "threshold": result["threshold"],
        "n_genuine": files["n_genuine"],
        "n_fake": files["n_fake"],
        "n_systems": len(result["per_system"]),
        "file_eer": files["eer"],
        "file_auc": files["auc"],
        "segment_eer": result["segments"]["eer"],
        "false_alarm_rate": files["false_alarm_rate"],
        "miss_rate": files["miss_rate"],
    }


def _prepare(table: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = {"path", "label", "system", "score"} - set(table.columns)
    if missing:
        raise ValueError(f"{name} lacks the column(s) {', '.join(sorted(missing))}")
    table = table.copy()
    table["label"] = [parse_label(value) for value in table["label"]]
    table["is_fake"] = table["label"] == FAKE
    table["system"] = [UNKNOWN_SYSTEM if pd.isna(value) else str(value)
                       for value in table["system"]]
    table["score"] = pd.to_numeric(table["score"], errors="coerce")
    return table


def _system_row(system: str, scored: dict, threshold: float) -> dict:
    row = {"system": system}
    for level, prefix in zip(LEVELS, ("file", "segment")):
        table = scored[level]
        chosen = table[~table["is_fake"] | (table["system"] == system)]
        row[f"n_{level}"] = int(chosen["is_fake"].sum())
        summary = _summary(chosen, threshold) if row[f"n_{level}"] else {}
        for name in ("eer", "eer_threshold", "miss_rate"):
            row[f"{prefix}_{name}"] = summary.get(name)
    files = scored["files"]
    chosen = files[~files["is_fake"] | (files["system"] == system)]
    interval = _eer_interval(chosen, None) if row["n_files"] else [None, None]
    row["file_eer_ci_low"], row["file_eer_ci_high"] = interval
    return {name: row[name] for name in PER_SYSTEM_COLUMNS}


def _intervals(table: pd.DataFrame, groups) -> dict:
    """95 % bootstrap intervals of the EER and AUC (``metrics.bootstrap_interval``)."""
    is_fake, scores = table["is_fake"].to_numpy(), table["score"].to_numpy(dtype=float)
    return {"eer_ci95": _eer_interval(table, groups),
            "auc_ci95": list(metrics.bootstrap_interval(is_fake, scores, metrics.auc, groups))}


def _eer_interval(table: pd.DataFrame, groups) -> list:
    is_fake, scores = table["is_fake"].to_numpy(), table["score"].to_numpy(dtype=float)
    return list(metrics.bootstrap_interval(
        is_fake, scores, lambda labels, values: metrics.eer(labels, values)[0], groups))


def _plain(value):
    return None if pd.isna(value) else value


def _summary(table: pd.DataFrame, threshold: float) -> dict:
    is_fake, scores = table["is_fake"].to_numpy(), table["score"].to_numpy(dtype=float)
    equal_error_rate, eer_threshold = metrics.eer(is_fake, scores)
    rates = metrics.rates_at(is_fake, scores, threshold)
    return {
        "n_scored": int(is_fake.size),
        "n_genuine": rates.pop("n_genuine"),
        "n_fake": rates.pop("n_fake"),
        "eer": equal_error_rate,
        "eer_threshold": eer_threshold,
        "auc": metrics.auc(is_fake, scores),
        **rates,
    }


def write_evaluation(result: dict, out_dir: str) -> None:
    """Write ``metrics.json``, ``per_system.csv`` and ``roc_det.png`` into ``out_dir``.

    ``metrics.json`` holds ``result`` without its curves (and any keys a caller added,
    such as model provenance), with sorted keys; in ``per_system.csv`` a system name that
    a spreadsheet would run as a formula is prefixed with "'"; the PNG shows the file- and
    segment-level ROC and DET curves with their EER points.
    """
    os.makedirs(out_dir, exist_ok=True)
    summary = {key: value for key, value in result.items() if key != "curves"}
    with open(os.path.join(out_dir, "metrics.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, sort_keys=True, indent=2, allow_nan=False)
        handle.write("\n")
    from .reports.csv_report import neutralise  # system names come from folder names

    with open(os.path.join(out_dir, "per_system.csv"), "w", newline="",
              encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=PER_SYSTEM_COLUMNS)
        writer.writeheader()
        writer.writerows(dict(row, system=neutralise(row["system"]))
                         for row in result["per_system"])
    _plot_curves(result, os.path.join(out_dir, "roc_det.png"))


def _plot_curves(result: dict, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    roc_axes, det_axes = figure.subplots(1, 2)
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99])
    for level, style in zip(LEVELS, ("-", "--")):
        curve, summary = result["curves"][level], result[level]
        false_alarm_rate = np.asarray(curve["false_alarm_rate"])
        miss_rate = np.asarray(curve["miss_rate"])
        label = (f"{level[:-1]} (EER {100 * summary['eer']:.1f} %, "
                 f"AUC {summary['auc']:.3f})")
        roc_axes.plot(false_alarm_rate, 1 - miss_rate, style, label=label)
        line, = det_axes.plot(metrics.probit(false_alarm_rate), metrics.probit(miss_rate),
                              style, label=label)
        point = metrics.probit([summary["eer"]])[0]
        det_axes.plot([point], [point], "o", color=line.get_color())
    roc_axes.plot([0, 1], [0, 1], ":", color="grey", linewidth=0.8)
    roc_axes.set(xlabel="false-alarm rate (genuine called fake)",
                 ylabel="detection rate (fake called fake)", title="ROC",
                 xlim=(0, 1), ylim=(0, 1))
    det_axes.plot(metrics.probit([0.0, 1.0]), metrics.probit([0.0, 1.0]), ":",
                  color="grey", linewidth=0.8)
    det_axes.set(xlabel="false-alarm rate (%)", ylabel="miss rate (%)", title="DET",
                 xticks=metrics.probit(ticks), yticks=metrics.probit(ticks),
                 xlim=metrics.probit([0.0005, 0.9995]), ylim=metrics.probit([0.0005, 0.9995]))
    tick_labels = [f"{100 * tick:g}" for tick in ticks]
    det_axes.set_xticklabels(tick_labels)
    det_axes.set_yticklabels(tick_labels)
    for axes in (roc_axes, det_axes):
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right" if axes is roc_axes else "upper right", fontsize=8)
    figure.savefig(path, dpi=120)


def format_markdown(result: dict) -> str:
    """Markdown tables of ``result`` for a model card: overall, then per system."""
    threshold = result["threshold"]
    lines = [
        f"Operating threshold {threshold:.3f}: scores at or above it are called fake.",
        "",
        "| level | genuine | fake | EER (95 % CI) | EER threshold | AUC (95 % CI) | accuracy "
        "| false alarms | misses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for level in LEVELS:
        row = result[level]
        low, high = row["eer_ci95"]
        auc_low, auc_high = row["auc_ci95"]
        lines.append(
            f"| {level} | {row['n_genuine']} | {row['n_fake']} | {_percent(row['eer'])} "
            f"({100 * low:.1f}-{100 * high:.1f}) | {row['eer_threshold']:.3f} "
            f"| {row['auc']:.3f} ({auc_low:.3f}-{auc_high:.3f}) | {_percent(row['accuracy'])} "
            f"| {_percent(row['false_alarm_rate'])} | {_percent(row['miss_rate'])} |")
    n_errors = result["files"]["n_errors"]
    if n_errors:
        lines += ["", f"{n_errors} file(s) could not be scored and are left out."]
    lines += [
        "",
        "Per generator: all genuine speech against that system's fakes.",
        "",
        "| system | files | segments | file EER (95 % CI) | segment EER | files missed "
        "| segments missed |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["per_system"]:
        interval = ("" if row["file_eer_ci_low"] is None else
                    f" ({100 * row['file_eer_ci_low']:.0f}-{100 * row['file_eer_ci_high']:.0f})")
        lines.append(
            f"| {_escape(row['system'])} | {row['n_files']} | {row['n_segments']} "
            f"| {_percent(row['file_eer'])}{interval} | {_percent(row['segment_eer'])} "
            f"| {_percent(row['file_miss_rate'])} | {_percent(row['segment_miss_rate'])} |")
    return "\n".join(lines) + "\n"


def _percent(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _escape(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
