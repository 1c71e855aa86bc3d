"""The study report: one self-contained HTML file (images embedded, no scripts, no network),
and the same findings as text for the terminal.

Every string that comes from user data (study and metric names, reasons, tracebacks, the
findings built from them) goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from adamtune._version import __version__
from adamtune.choice import recommended_line
from adamtune.config import cell_text, optimizer_text
from adamtune.confirmation import Adopted, adopted_label, earlier_confirmations, how_to_use, use_line
from adamtune.diagnostics import Finding, diagnose
from adamtune.environment import describe_environment
from adamtune.plots import data as plot_data
from adamtune.plots import render
from adamtune.records import duration_text
from adamtune.scale import value_scale

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from adamtune.records import TrialRecord
    from adamtune.study import Study, StudyInfo

e = html.escape

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
.finding { border-left: 5px solid #999; padding: .4rem .8rem; margin: .6rem 0; background: #fafafa; }
.finding.action { border-color: #c0392b; } .finding.warning { border-color: #e67e22; }
.finding.info { border-color: #2980b9; } .severity { font-weight: bold; text-transform: uppercase; }
.action-text { margin-top: .3rem; font-style: italic; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; } .plots figure { margin: 0; }
.plots img { max-width: 520px; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: .85rem; }
td, th { padding: .2rem .5rem; border-bottom: 1px solid #eee; }
tr.infeasible td { color: #c0392b; } tr.failed td, tr.pruned td { color: #888; }
tr.recommended td { font-weight: bold; }
.nowrap { white-space: nowrap; vertical-align: top; }
pre { white-space: pre-wrap; font-size: .8rem; background: #f4f4f4; padding: .5rem; }
code { font-size: .8rem; background: #f4f4f4; padding: .1rem .3rem; overflow-wrap: anywhere; }
"""


def figures(study: Study, adopted: Adopted | None = None) -> list[tuple[str, bytes]]:
    """Every plot of the study as (caption, PNG bytes), in report order; ``adopted``: the trial
    the plots mark (``study.adopted`` when not given)."""
    return [(caption, render.png(figure)) for caption, figure in drawn(study, adopted)]


def drawn(study: Study, adopted: Adopted | None = None) -> list[tuple[str, Figure]]:
    """``figures`` before they are PNG images: (caption, matplotlib figure)."""
    records, info = study.trials, study.info
    metric, direction = info.metric, info.direction
    adopted = adopted if adopted is not None else study.adopted
    chosen, label = adopted.trial, adopted.why  # the baseline, kept, is no trial to mark
    scale = value_scale(plot_data.complete_values(records), direction)
    shown: list[tuple[str, Figure]] = []
    for spec in info.space.tuned_specs:
        axis = plot_data.axis_data(records, spec, chosen, label)
        shown.append((f"{metric} against {spec.name}", render.axis_plot(axis, metric, direction, scale)))
    heatmap = plot_data.heatmap_data(records, info.space, adopted=chosen, label=label, scale=scale)
    if heatmap is not None:
        shown.append(("lr x beta1", render.heatmap_plot(heatmap, metric)))
    for spec in info.space.tuned_specs:
        isolation = plot_data.isolation_data(records, spec, direction)
        shown.append((f"isolation of {spec.name}", render.isolation_plot(isolation, metric, scale)))
    curves = plot_data.curves_data(records, metric, direction)
    curves_scale = value_scale(plot_data.curve_values(curves, metric), direction)
    shown.append(("training curves", render.curves_plot(curves, metric, curves_scale)))
    history = plot_data.history_data(records, direction, chosen, label, _round_kinds(study))
    shown.append(("by trial", render.history_plot(history, metric, direction, scale)))
    return shown


def _round_kinds(study: Study) -> dict[int, str]:
    from adamtune.campaign import Campaign

    return {planned.index: planned.kind for planned in study.rounds} if isinstance(study, Campaign) else {}


def report_path(path: Path, study_name: str) -> Path:
    """``path`` itself for an .html file, else ``path/<study name>.html``."""
    if path.suffix.lower() in (".html", ".htm") and not path.is_dir():
        return path
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", study_name) or "study"
    return path / f"{safe}.html"


def write_report(study: Study, path: Path, findings: Sequence[Finding] | None = None) -> Path:
    """Write the report of ``study`` to ``path`` (a file, or a folder); return the file written."""
    target = report_path(path, study.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_html(study, findings), encoding="utf-8")
    return target


def render_html(study: Study, findings: Sequence[Finding] | None = None) -> str:
    findings = diagnose(study) if findings is None else findings
    info = study.info
    tally = study.tally()
    adopted = study.adopted  # once: the plots and the trials table mark the same trial
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>adamtune report: {e(study.name)}</title><style>{STYLE}</style></head><body>",
        f"<h1>adamtune report: {e(study.name)}</h1>",
        f"<p>{tally.results} of {study.budget} trials with a result, "
        f"{tally.failed} failed{tally.given_back_text()}. "
        f"Objective: {e(info.metric)} ({e(info.direction)}), search seed {info.seed}. "
        f"Optimizer: {e(optimizer_text(study.space.optimizer))}. "
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by adamtune {e(__version__)}."
        f"{_created_with(info)}</p>",
        _best_section(study, adopted),
        _confirmation_section(study),
        _rounds_section(study),
        "<h2>Diagnostics</h2>",
        *(_finding_html(f) for f in findings),
        "" if findings else "<p>No findings.</p>",
        "<h2>Plots</h2><div class='plots'>",
        *(
            f"<figure><img alt='{e(caption)}' src='data:image/png;base64,"
            f"{base64.b64encode(image).decode('ascii')}'><figcaption>{e(caption)}</figcaption></figure>"
            for caption, image in figures(study, adopted)
        ),
        "</div>",
        "<h2>Search space</h2>",
        f"<p>{e(_tiers_text(study))}</p><pre>{e(chr(10).join(info.space.describe()))}</pre>",
        "<h2>All trials</h2>",
        _trials_table(study, adopted),
        "</body></html>",
    ]
    return "\n".join(parts)


def _tiers_text(study: Study) -> str:
    """The tier choice's reason, which names the budget the study was planned with: an extended
    study says that it kept that choice, so a reader of a 30-trial study is not left wondering
    why it tunes what 20 trials do."""
    reason = study.info.tiers.reason
    if study.extended_from is None or study.info.tiers.source != "tiers":
        return reason
    return f"{reason}. Extended since to {study.budget} trials, it keeps tuning what it was planned with."


def _created_with(info: StudyInfo) -> str:
    """Where the study was created: its GP rounds repeat exactly only there."""
    where = describe_environment(info.environment)
    return f" The study was created with {e(where)}." if where else ""


def _best_section(study: Study, adopted: Adopted) -> str:
    best = study.best
    if best is None or best.adam is None:
        return "<h2>Best configuration</h2><p>No trial has completed yet.</p>"
    use = how_to_use(study, adopted)
    use_note = (
        f"<p>{e(adopted_label(adopted)).capitalize()}: <code>{e(use)}</code></p>"
        if use is not None and adopted.record is not None
        else ""
    )
    return (
        "<h2>Best configuration</h2>"
        f"<p>Trial {best.number}: {e(study.info.metric)} = {best.value:.6g} (training seed {best.seed}).</p>"
        f"{_params_table(best.params(study.param_names))}"
        f"{_recommended_note(study, best)}{_preferred_note(study, best.number)}{use_note}"
    )


def _params_table(params: Mapping[str, float]) -> str:
    """A configuration as a two-column table, to read and copy."""
    rows = "".join(f"<tr><th>{e(name)}</th><td>{value:.6g}</td></tr>" for name, value in params.items())
    return f"<table>{rows}</table>"


def _recommended_note(study: Study, best: TrialRecord) -> str:
    """Where the recommendation (the best GP posterior mean among the best few, or the best
    fresh result of a remeasure round) is another trial."""
    line = recommended_line(study.recommended, best)
    recommendation = study.recommended
    if line is None or recommendation is None:
        return ""
    chosen = recommendation.record
    head = f"<p><b>Recommended: trial {chosen.number}</b> ({e(study.info.metric)} = {chosen.value:.6g}), "
    if line[1]:
        return f"{head}the configuration of trial {best.number} above: {e(recommendation.reason)}.</p>"
    return f"{head}{e(recommendation.reason)}.</p>{_params_table(chosen.params(study.param_names))}"


def _preferred_note(study: Study, best_trial: int) -> str:
    """Where the confirmation's winner is another trial, say so next to the best single run:
    one lucky seed should not be what the reader copies."""
    confirmation = study.confirmation
    winner = confirmation.preferred_over(best_trial) if confirmation is not None else None
    if confirmation is None or winner is None:
        return ""
    recommendation = study.recommended
    # Placed after the recommendation's note, when there is one: name both trials.
    chosen = recommendation is not None and recommendation.record.number == winner.source
    which = f"trial {winner.source}" + (", the recommended one," if chosen else "")
    close = confirmation.toss_up_note(best_trial)
    values = winner.adam.as_dict()
    # Its values to copy, unless the recommendation's note above shows them already.
    table = "" if chosen else _params_table({name: values[name] for name in study.param_names})
    return (
        f"<p>Trial {best_trial} is the best single run. Retrained on {len(confirmation.seeds)} fresh "
        f"seeds (Confirmation, below), {which} has the better mean "
        f"({winner.mean:.6g}{', ' + e(close) if close else ''}): {e(confirmation.verdict())}.</p>{table}"
    )


def _confirmation_section(study: Study) -> str:
    confirmation = study.confirmation
    if confirmation is None:
        return ""
    seeds = len(confirmation.seeds)
    head = "".join(
        f"<th>{e(n)}</th>"
        for n in ("configuration", f"mean {study.info.metric}", "std", "diverged", *study.param_names)
    )
    rows = []
    for config in confirmation.configs:
        values = config.adam.as_dict()
        cells = [
            e(config.label),
            cell_text(config.mean),
            cell_text(config.std),
            f"{config.diverged}/{seeds}" if config.diverged else "",
            *(cell_text(values[n], n) for n in study.param_names),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    outdated = confirmation.outdated(study.tally().results)
    note = f"<p><b>Note:</b> {e(_sentence(outdated))}</p>" if outdated else ""
    earlier = earlier_confirmations(study)
    kept = (
        "<p>Confirmed before the budget was extended, and kept as Optuna studies: "
        + ", ".join(f"after {count} trials, {e(name)}" for count, name in earlier)
        + ".</p>"
        if earlier
        else ""
    )
    return (
        f"<h2>Confirmation</h2><p>The best configurations and the baseline, retrained on the same "
        f"{seeds} fresh seeds (outside the budget). {e(_sentence(confirmation.verdict()))}</p>"
        f"{note}<table><tr>{head}</tr>{''.join(rows)}</table>{kept}"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _rounds_section(study: Study) -> str:
    from adamtune.campaign import Campaign

    if not isinstance(study, Campaign):
        return ""
    rows = []
    for planned in study.rounds:
        ranges = "<br>".join(e(text) for text in planned.space.tuned_ranges(" .. "))
        cells = [str(planned.index), e(planned.kind), str(planned.budget), ranges, e(planned.reason)]
        rows.append(
            "<tr>" + "".join(f"<td class='nowrap'>{c}</td>" for c in cells[:4]) + f"<td>{cells[4]}</td></tr>"
        )
    head = "".join(f"<th>{n}</th>" for n in ("round", "kind", "trials", "ranges", "why"))
    return (
        "<h2>Rounds</h2><p>The playbook strategy's rounds: each range, and why it changed.</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    )


def _finding_html(finding: Finding) -> str:
    action = f"<div class='action-text'>{e(finding.action)}</div>" if finding.action else ""
    return (
        f"<div class='finding {e(finding.severity)}'><span class='severity'>{e(finding.severity)}</span> "
        f"[{e(finding.check)}] {e(finding.message)}{action}</div>"
    )


def _trials_table(study: Study, adopted: Adopted) -> str:
    names = study.param_names
    records = study.trials
    rounds = any(record.round is not None for record in records)
    head = "".join(
        f"<th>{e(n)}</th>"
        for n in (
            "#",
            *(("round",) if rounds else ()),
            "state",
            study.info.metric,
            *names,
            "seed",
            "time",
            "reason",
        )
    )
    marked, label = adopted.trial, adopted.why
    chosen = marked.number if marked is not None else None
    what = "The recommended trial" if label == "recommended" else "The confirmation's best trial"
    note = "" if chosen is None else f"<p>{what}, {chosen}, is in bold (a star on the plots).</p>"
    rows = [f"{note}<table><tr>{head}</tr>"]
    for record in records:
        rows.append(_trial_row(record, names, rounds, recommended=record.number == chosen))
    rows.append("</table>")
    return "\n".join(rows)


def _trial_row(
    record: TrialRecord, names: Sequence[str], rounds: bool = False, recommended: bool = False
) -> str:
    params = record.params(names)
    cells = [
        str(record.number),
        *((str(record.round),) if rounds else ()),
        e(str(record.state)),
        cell_text(record.value),
        *(cell_text(params.get(n), n) for n in names),
        "" if record.seed is None else str(record.seed),
        duration_text(record),
    ]
    reason = (record.reason or "").strip()
    summary = e(record.reason_line(100))
    detail = f"<details><summary>{summary}</summary><pre>{e(reason)}</pre></details>" if reason else ""
    return (
        f"<tr class='{e(str(record.state))}{' recommended' if recommended else ''}'>"
        + "".join(f"<td>{c}</td>" for c in cells)
        + f"<td>{detail}</td></tr>"
    )


def text_report(study: Study, findings: Sequence[Finding] | None = None) -> str:
    """The best configuration and the diagnostics, as plain text."""
    findings = diagnose(study) if findings is None else findings
    lines = [f"study {study.name}: {study.tally().results} of {study.budget} trials with a result"]
    where = describe_environment(study.info.environment)
    if where:
        lines.append(f"created with {where}")
    lines.append(f"optimizer: {optimizer_text(study.space.optimizer)}")
    from adamtune.campaign import Campaign, campaign_rounds_text

    if isinstance(study, Campaign):
        lines.extend(campaign_rounds_text(study))
    best = study.best
    if best is not None and best.adam is not None:
        lines.append(f"best {study.info.metric} {best.value:.6g} (trial {best.number}): {best.adam.short()}")
        line = recommended_line(study.recommended, best)
        recommendation = study.recommended
        if line is not None and recommendation is not None:
            text, same = line
            chosen = recommendation.record.adam
            lines.append(text if same or chosen is None else f"{text}: {chosen.short()}")
    confirmation = study.confirmation
    if confirmation is not None:
        lines.extend(confirmation.summary(best.number if best is not None else None, study.tally().results))
    use = use_line(study)
    if use is not None:
        lines.append(use)
    for finding in findings:
        lines.append(f"\n[{finding.severity}] {finding.check}: {finding.message}")
        if finding.action:
            lines.append(f"  -> {finding.action}")
    return "\n".join(lines)
