"""The HTML report: self-contained, escaped, and readable in a real (headless) browser."""

from __future__ import annotations

import base64
import functools
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest

import adamtune
from adamtune.cli import main
from adamtune.errors import TooManyFailuresError
from adamtune.plots.report import render_html, report_path, text_report
from adamtune.study import load_study
from adamtune.testing import SyntheticObjective

# These tests are about one study searched quasi-randomly (the playbook strategy runs rounds of them).
quasi_random = functools.partial(adamtune.tune, strategy="quasi-random")


HOSTILE = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One study with complete, infeasible and failed trials, under a hostile name."""
    path = str(tmp_path_factory.mktemp("report") / "s.journal")
    synthetic = SyntheticObjective(best_lr=1e-3, diverge_above=6e-4)

    def objective(trial: adamtune.Trial) -> float:
        if trial.number == 3:
            raise RuntimeError("<b>bold</b> & broken")
        return synthetic(trial)

    quasi_random(objective, 12, study=HOSTILE, storage=path, seed=2)
    return path


def test_user_strings_are_escaped(storage: str) -> None:
    page = render_html(load_study(HOSTILE, storage))
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; broken" in page
    assert "<script" not in page  # the report runs no script at all


def test_report_is_self_contained(storage: str) -> None:
    page = render_html(load_study(HOSTILE, storage))
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 7
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    # Ordered as the issue asks: best configuration, diagnostics, plots, trials.
    headings = re.findall(r"<h2>([^<]+)</h2>", page)
    assert headings == ["Best configuration", "Diagnostics", "Plots", "Search space", "All trials"]
    assert page.count("<tr class='failed'>") == 1
    assert page.count("<tr class='infeasible'>") >= 1
    # The recommended trial's row stands out, and the page says how to find it.
    chosen = load_study(HOSTILE, storage).recommended
    assert chosen is not None and page.count(" recommended'>") == 1
    assert f"<tr class='complete recommended'><td>{chosen.record.number}</td>" in page
    assert f"The recommended trial, {chosen.record.number}, is in bold (a star on the plots)." in page
    assert chosen.record.adam is not None  # and the code that trains with it, to paste
    use = f"<p>Train with trial {chosen.record.number}: <code>{chosen.record.adam.torch_code()}</code></p>"
    assert use in page
    # Where the study was created: its Bayesian rounds repeat exactly only there.
    python = platform.python_version()
    created = f"The study was created with Python {python}, adamtune {adamtune.__version__}"
    assert created in page
    assert f"optuna {optuna.__version__}" in page
    assert "Optimizer: adam (torch.optim.Adam)." in page


def test_report_path_sanitises_the_study_name(tmp_path: Path) -> None:
    assert report_path(tmp_path, HOSTILE) == tmp_path / "_script_alert__x____script_.html"
    assert report_path(tmp_path / "mine.html", "s") == tmp_path / "mine.html"


def test_text_report_lists_the_findings(storage: str) -> None:
    study = load_study(HOSTILE, storage)
    text = text_report(study)
    assert text.startswith(f"study {HOSTILE}: 12 of 12 trials with a result")
    assert text.splitlines()[1].startswith(f"created with Python {platform.python_version()}, adamtune ")
    assert text.splitlines()[2] == "optimizer: adam (torch.optim.Adam)"
    chosen = study.adopted.record
    assert chosen is not None and chosen.adam is not None
    assert f"\ntrain with trial {chosen.number}: {chosen.adam.torch_code()}\n" in text
    for finding in study.diagnostics():
        assert f"[{finding.severity}] {finding.check}: {finding.message}" in text


def test_cli_report_html_and_text(
    storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["report", "--study", HOSTILE, "--storage", storage])
    written = tmp_path / "adamtune-report" / "_script_alert__x____script_.html"
    assert written.is_file()
    assert f"report: {written.relative_to(tmp_path)}" in capsys.readouterr().out
    main(["report", "--study", HOSTILE, "--storage", storage, "-o", "mine.html"])  # as export's -o
    assert (tmp_path / "mine.html").is_file() and "report: mine.html" in capsys.readouterr().out
    main(["report", "--study", HOSTILE, "--storage", storage, "--format", "text"])
    assert "best val_loss" in capsys.readouterr().out


def test_cli_report_of_a_missing_study_is_one_line(storage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", "--study", "nope", "--storage", storage])
    assert done.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "nope" in error and "\n" not in error


def test_report_of_a_study_with_no_result(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")

    def crashes(trial: adamtune.Trial) -> float:
        raise RuntimeError("broken")

    with pytest.raises(TooManyFailuresError):
        quasi_random(crashes, 4, study="crashes", storage=storage, max_consecutive_failures=2)
    written = load_study("crashes", storage).report(tmp_path / "out")
    page = written.read_text(encoding="utf-8")
    assert "No trial has completed yet." in page
    assert page.count("<tr class='failed'>") == 2


# --- a real browser -------------------------------------------------------------------------

# Test-only probe, injected into a copy of the report: records every image's decoded size and
# every error (script errors and failed resource loads) in the DOM, which --dump-dom prints.
PROBE = """<script>
const errors = [];
window.addEventListener('error', e => errors.push(String(e.message || e.target.src || e)), true);
window.addEventListener('load', () => {
  const sizes = [...document.images].map(i => i.naturalWidth + 'x' + i.naturalHeight);
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({sizes, errors});
  document.body.appendChild(out);
});
</script>"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on this machine (.ci/run installs it)"
)


def _browser(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@needs_chromium
def test_browser_decodes_every_image_without_errors(storage: str, tmp_path: Path) -> None:
    import json

    page = render_html(load_study(HOSTILE, storage))
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</head>", PROBE + "</head>", 1), encoding="utf-8")
    result = _browser("--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    match = re.search(r"<pre id=\"probe\">(.*?)</pre>", result.stdout, re.S)
    assert match, result.stderr[-2000:]
    probe = json.loads(match.group(1).replace("&quot;", '"'))
    assert probe["errors"] == []
    assert len(probe["sizes"]) == 7
    for size in probe["sizes"]:
        width, height = (int(v) for v in size.split("x"))
        assert width > 200 and height > 150, probe["sizes"]
    # The injected study name stays text: the page has no alert script node of its own.
    assert "alert('x')</script>" not in result.stdout


@needs_chromium
def test_browser_screenshot(storage: str, tmp_path: Path) -> None:
    written = load_study(HOSTILE, storage).report(tmp_path)
    shot = tmp_path / "report.png"
    result = _browser("--window-size=1200,2400", f"--screenshot={shot}", written.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 2400)
    assert len(data) > 50_000  # a page of plots and tables, not a blank screen


def test_the_best_section_names_the_confirmations_winner_when_it_is_another_trial() -> None:
    from dataclasses import replace
    from types import SimpleNamespace

    from adamtune.confirmation import Confirmation, ConfirmedConfig
    from adamtune.plots.report import _preferred_note

    def config(role: str, candidate: int, source: int | None, values: list[float]) -> ConfirmedConfig:
        return ConfirmedConfig(role, candidate, source, adamtune.DEFAULT_ADAM, values, 0, 0)

    lucky, steady = config("candidate", 0, 19, [0.40, 0.38]), config("candidate", 1, 17, [0.34, 0.35])
    confirmation = Confirmation("minimize", [1, 2], [lucky, steady, config("baseline", 2, None, [0.5, 0.5])])
    assert confirmation.preferred_over(19) is steady
    assert confirmation.preferred_over(17) is None  # the best single run won the confirmation too
    names = ("lr", "beta1", "beta2", "eps")
    alone = SimpleNamespace(confirmation=confirmation, recommended=None, param_names=names)
    note = _preferred_note(alone, 19)  # type: ignore[arg-type]
    assert note.startswith("<p>Trial 19 is the best single run. Retrained on 2 fresh seeds")
    assert "trial 17 has the better mean (0.345)" in note  # by 0.045, clear of the spread 0.0091
    tie = Confirmation("minimize", [1, 2], [replace(lucky, values=[0.35, 0.346]), *confirmation.configs[1:]])
    tied = SimpleNamespace(confirmation=tie, recommended=None, param_names=names)
    close = _preferred_note(tied, 19)  # type: ignore[arg-type]
    assert "the better mean (0.345, by 0.003, within the trial spread 0.0044: either will do)" in close
    # Its values, to copy: the best single run's are the section's own table.
    assert note.endswith(
        "<table><tr><th>lr</th><td>0.001</td></tr><tr><th>beta1</th><td>0.9</td></tr>"
        "<tr><th>beta2</th><td>0.999</td></tr><tr><th>eps</th><td>1e-08</td></tr></table>"
    )
    recommended = SimpleNamespace(record=SimpleNamespace(number=17))
    chosen = SimpleNamespace(confirmation=confirmation, recommended=recommended, param_names=names)
    named = _preferred_note(chosen, 19)  # type: ignore[arg-type]
    assert "trial 17, the recommended one, has the better mean (0.345)" in named
    assert "<table>" not in named  # the recommendation's note above shows its values
    assert _preferred_note(SimpleNamespace(confirmation=None), 19) == ""  # type: ignore[arg-type]
    running = Confirmation("minimize", [1, 2], [lucky, replace(steady, pending=1)])
    assert running.preferred_over(19) is None  # runs still pending: no recommendation yet


def test_the_star_marks_the_confirmations_best_where_it_prefers_another_trial() -> None:
    from types import SimpleNamespace

    from adamtune.confirmation import Confirmation, ConfirmedConfig, to_adopt

    def config(role: str, candidate: int, source: int | None, values: list[float]) -> ConfirmedConfig:
        return ConfirmedConfig(role, candidate, source, adamtune.DEFAULT_ADAM, values, 0, 0)

    records = [SimpleNamespace(number=17), SimpleNamespace(number=19)]
    baseline = config("baseline", 2, None, [0.5, 0.5])
    steady = config("candidate", 1, 17, [0.34, 0.35])
    prefers_17 = Confirmation(
        "minimize", [1, 2], [config("candidate", 0, 19, [0.40, 0.38]), steady, baseline], 20
    )

    def study(confirmation: Confirmation | None, results: int = 20) -> Any:
        return SimpleNamespace(
            recommended=SimpleNamespace(record=records[1]),  # trial 19
            confirmation=confirmation,
            tally=lambda: SimpleNamespace(results=results),
            trials=records,
        )

    assert to_adopt(study(prefers_17)) == (records[0], "confirmed best")
    assert to_adopt(study(None)) == (records[1], "recommended")
    assert to_adopt(study(prefers_17, results=24)) == (records[1], "recommended")  # of fewer trials
    agrees = Confirmation("minimize", [1, 2], [config("candidate", 0, 19, [0.3, 0.3]), steady, baseline], 20)
    assert to_adopt(study(agrees)) == (records[1], "recommended")


def test_an_extended_study_says_it_keeps_the_tuned_set_it_was_planned_with(tmp_path: Path) -> None:
    journal = str(tmp_path / "s.journal")
    objective = SyntheticObjective(best_lr=1e-3)
    quasi_random(objective, 9, study="grown", storage=journal)
    planned = "adamtune reads them as the thresholds 10, 25 and 50"
    assert f"{planned}</p>" in render_html(load_study("grown", journal))
    quasi_random(objective, 12, study="grown", storage=journal)  # 12 trials alone would tune beta1 too
    grown = load_study("grown", journal)
    assert grown.space.tuned == ("lr",)
    kept = f"{planned}. Extended since to 12 trials, it keeps tuning what it was planned with.</p>"
    assert kept in render_html(grown)
