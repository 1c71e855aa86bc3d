"""adamtune run -- COMMAND: every outcome with real scripts run as subprocesses."""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import adamtune
from adamtune import State
from adamtune.environment import cpu_cores
from adamtune.executors.command import CommandObjective, _lines, fill, pair_metrics, with_values
from adamtune.workers import build_objective
from test_processes import ctrl_c_as_in_a_terminal

ADAMTUNE = str(Path(sys.executable).parent / "adamtune")
EXAMPLE = Path(__file__).parent.parent / "examples" / "train_digits.py"

SCRIPT = textwrap.dedent(
    """
    import json, math, os, subprocess, sys, time
    mode, lr = sys.argv[1], float(sys.argv[2])
    with open("calls.jsonl", "a") as calls:
        calls.write(json.dumps({"argv": sys.argv[1:], "env_lr": os.environ["ADAMTUNE_LR"],
                                "env_seed": os.environ["ADAMTUNE_SEED"],
                                "env_trial": os.environ["ADAMTUNE_TRIAL"], "pid": os.getpid(),
                                "threads": os.environ.get("OMP_NUM_THREADS"),
                                "start": time.time()}) + "\\n")
    value = (math.log10(lr) + 4) ** 2
    if mode == "unfixed" and not os.path.exists("fixed"):
        sys.exit("ModuleNotFoundError: No module named 'torch'")
    if mode == "garbage":
        sys.stdout.buffer.write(b"\\xff\\xfe not json {oops\\n[1, 2]\\n")
        sys.stdout.flush()
    if mode == "child":  # a grandchild that must die with the trial
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open("child.pid", "w").write(str(child.pid))
    for step in range(3):
        print(f"plain text line {step}")
        loss = float("nan") if mode == "nan" and step == 1 else value + 1 / (step + 1)
        print(json.dumps({"step": step * 10, "train_loss": 2.0, "val_loss": loss}), flush=True)
        if mode in ("hang", "child"):
            time.sleep(300)
        if mode == "slow":
            time.sleep(0.3)
    if mode == "crash":
        print("Traceback: something broke", file=sys.stderr)
        sys.exit(3)
    if mode == "quiet":
        print(json.dumps({"step": 1, "accuracy": 0.5}))
    with open("ends.jsonl", "a") as ends:
        ends.write(json.dumps({"end": time.time()}) + "\\n")
    """
)


def run(
    cwd: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ADAMTUNE, "run", "--strategy", "quasi-random", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def script(tmp_path: Path) -> list[str]:
    (tmp_path / "train.py").write_text(SCRIPT)
    return [sys.executable, "train.py"]


def script_args() -> list[str]:
    return [sys.executable, "train.py"]


def study(tmp_path: Path) -> adamtune.Study:
    return adamtune.load_study(None, str(tmp_path / "adamtune.journal"))


def study_named(tmp_path: Path, name: str) -> adamtune.Study:
    return adamtune.load_study(name, str(tmp_path / "adamtune.journal"))


def test_complete_trials_get_placeholders_env_and_logs(tmp_path: Path) -> None:
    result = run(tmp_path, "--budget", "3", "--", *script(tmp_path), "ok", "{lr}", "{seed}")
    assert result.returncode == 0, result.stderr

    records = study(tmp_path).trials
    assert [r.state for r in records] == [State.COMPLETE] * 3
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    for record, call in zip(records, calls, strict=True):
        assert record.adam is not None
        assert call["argv"] == ["ok", repr(record.adam.lr), str(record.seed)]  # full precision
        assert float(call["env_lr"]) == record.adam.lr
        assert call["env_seed"] == str(record.seed) and call["env_trial"] == str(record.number)
        assert call["threads"] == os.environ.get("OMP_NUM_THREADS")  # one at a time: untouched
        # best: the lowest val_loss printed, which is the last of this falling curve
        assert record.value == pytest.approx((__import__("math").log10(record.adam.lr) + 4) ** 2 + 1 / 3)
        assert [step for step, _ in record.curves["val_loss"]] == [0, 10, 20]
        stdout_log = Path(record.logs["stdout"])
        assert (tmp_path / stdout_log).read_text().count("plain text line") == 3
    listed = subprocess.run([ADAMTUNE, "trials"], cwd=tmp_path, capture_output=True, text=True)
    assert "adamtune-logs/train.py/trial-0.stdout" in listed.stdout
    # The trial to adopt as the command to run: its values and seed filled in, as it ran.
    adopted = study(tmp_path).adopted.record
    assert adopted is not None and adopted.adam is not None
    best = subprocess.run([ADAMTUNE, "best"], cwd=tmp_path, capture_output=True, text=True, check=True)
    command = shlex.join([*script(tmp_path), "ok", repr(adopted.adam.lr), str(adopted.seed)])
    assert best.stdout.splitlines()[-1] == f"train with trial {adopted.number}: {command}"
    assert with_values(["{lr}", "--b={beta2}", "{seed}", "{run}"], adopted.adam, None) == [
        repr(adopted.adam.lr),
        "--b=0.999",
        "{seed}",
        "{run}",
    ]

    # The finished study given a larger budget goes on; a budget below its results is refused.
    grown = run(tmp_path, "--budget", "5", "--", *script(tmp_path), "ok", "{lr}", "{seed}")
    assert grown.returncode == 0, grown.stderr
    assert "extending: the 3 trials of the finished study, and 2 more" in grown.stderr
    assert [r.point for r in study(tmp_path).trials] == [0, 1, 2, 3, 4]
    smaller = run(tmp_path, "--budget", "4", "--", *script(tmp_path), "ok", "{lr}", "{seed}")
    assert smaller.returncode == 2 and "expected a budget of at least 5, got 4" in smaller.stderr
    assert study(tmp_path).budget == 5


def test_every_trial_of_a_campaign_keeps_its_own_logs(tmp_path: Path) -> None:
    # Each round (and the confirmation) is an Optuna study numbering its trials from 0: their
    # logs must not overwrite each other's.
    (tmp_path / "prog.py").write_text(
        "import json, math, os, sys\n"
        "lr = float(sys.argv[1])\n"
        "print(f'lr={lr!r} run={sys.argv[2]} env={os.environ[\"ADAMTUNE_RUN\"]}')\n"
        "print(json.dumps({'step': 0, 'val_loss': (math.log10(lr) + 2) ** 2}))\n"
    )
    command = [ADAMTUNE, "run", "--budget", "8", "--tune", "lr", "--confirm", "1", "--"]
    done = subprocess.run(
        [*command, sys.executable, "prog.py", "{lr}", "{run}"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr

    records = study(tmp_path).trials
    assert {r.round for r in records} == {0, 1} and len(records) == 8
    paths = [r.logs["stdout"] for r in records]
    assert len(set(paths)) == len(paths)
    for record, path in zip(records, paths, strict=True):
        assert record.adam is not None
        run = f"round-{record.round}-{Path(path).stem}"  # {run}: unique where {trial} is not
        assert Path(path).parent.name == f"round-{record.round}"
        assert (tmp_path / path).read_text().splitlines()[0] == f"lr={record.adam.lr!r} run={run} env={run}"
    confirm_logs = sorted((tmp_path / "adamtune-logs" / "prog.py" / "confirm").glob("*.stdout"))
    assert len(confirm_logs) == 4  # the 3 best and the baseline, on 1 seed


def test_objective_last_and_maximize(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "--budget",
        "2",
        "--objective",
        "last",
        "--metric",
        "train_loss",
        "--direction",
        "maximize",
        "--",
        *script(tmp_path),
        "ok",
        "{lr}",
    )
    assert result.returncode == 0, result.stderr
    assert [r.value for r in study(tmp_path).trials] == [2.0, 2.0]


@pytest.mark.parametrize(
    ("mode", "state", "reason"),
    [
        ("nan", State.INFEASIBLE, "val_loss was nan at step 10"),
        ("crash", State.FAILED, "exit code 3: Traceback: something broke"),
        ("quiet_no_metric", State.FAILED, "no metric named 'val_loss' was printed"),
    ],
)
def test_outcomes(tmp_path: Path, mode: str, state: State, reason: str) -> None:
    args = ["--budget", "1", "--max-failures", "1"]
    if mode == "quiet_no_metric":
        args += ["--metric", "val_loss"]
        command = [*script(tmp_path), "quiet", "{lr}"]
        (tmp_path / "train.py").write_text(SCRIPT.replace('"val_loss": loss', '"other": loss'))
    else:
        command = [*script(tmp_path), mode, "{lr}"]
    result = run(tmp_path, *args, "--", *command)
    assert result.returncode == (0 if state == State.INFEASIBLE else 1), result.stderr
    record = study(tmp_path).trials[0]
    assert record.state == state
    assert reason in (record.reason or "")


def test_a_run_of_crashes_runs_again_once_the_program_is_fixed(tmp_path: Path) -> None:
    args = ["--budget", "3", "--max-failures", "2", "--", *script(tmp_path), "unfixed", "{lr}"]
    stopped = run(tmp_path, *args)
    assert stopped.returncode == 1
    assert "fix it and run the same command again to resume: their 2 configurations run again first" in (
        stopped.stderr
    )

    (tmp_path / "fixed").write_text("")
    result = run(tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert "3 trials with a result (0 failed, 2 stopped or failed and queued again)" in result.stdout
    records = study(tmp_path).trials
    assert sorted(r.point for r in records if r.state == State.COMPLETE) == [0, 1, 2]
    wide = {**os.environ, "COLUMNS": "300"}
    listed = subprocess.run(
        [ADAMTUNE, "trials"], cwd=tmp_path, capture_output=True, text=True, env=wide, check=True
    )
    assert listed.stdout.count("No module named 'torch' (queued again)") == 2


def test_garbage_output_is_ignored_but_kept_in_the_log(tmp_path: Path) -> None:
    result = run(tmp_path, "--budget", "1", "--", *script(tmp_path), "garbage", "{lr}")
    assert result.returncode == 0, result.stderr
    record = study(tmp_path).trials[0]
    assert record.state == State.COMPLETE
    assert "not json {oops" in (tmp_path / record.logs["stdout"]).read_text()


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run(
        tmp_path,
        "--budget",
        "1",
        "--max-failures",
        "1",
        "--timeout",
        "1.5",
        "--",
        *script(tmp_path),
        "child",
        "{lr}",
    )
    assert time.monotonic() - started < 60
    assert result.returncode == 1
    record = study(tmp_path).trials[0]
    assert record.state == State.FAILED and record.reason == "timed out after 1.5 s"
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child), "the command's child process outlived the trial"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_shell_metacharacters_reach_the_program_literally(tmp_path: Path) -> None:
    hostile = "$(touch pwned); `touch pwned2` | rm -rf / && {lr} > out"
    result = run(tmp_path, "--budget", "1", "--", *script(tmp_path), "ok", "{lr}", hostile)
    assert result.returncode == 0, result.stderr
    call = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0])
    record = study(tmp_path).trials[0]
    assert record.adam is not None
    assert call["argv"][2] == hostile.replace("{lr}", repr(record.adam.lr))
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    assert "1 trial with a result (0 failed)" in result.stdout  # the summary of a one-trial study


def test_fill_replaces_only_known_placeholders() -> None:
    values = {"lr": "0.001", "seed": "7"}
    assert fill(
        ["--lr={lr}", "{seed}", "{other}", '{"json": 1}'],
        values | {"beta1": "0.9", "beta2": "0.999", "eps": "1e-08", "weight_decay": "0.0", "trial": "0"},
    ) == ["--lr=0.001", "7", "{other}", '{"json": 1}']


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(adamtune.ConfigError, match="expected a command"):
        CommandObjective((), tmp_path)
    with pytest.raises(adamtune.ConfigError, match="--timeout: expected a number of seconds > 0"):
        CommandObjective(("x",), tmp_path, timeout_s=0)
    missing = run(tmp_path, "--budget", "1", "--max-failures", "1", "--", "no-such-program-xyz")
    assert missing.returncode == 1
    assert "cannot start 'no-such-program-xyz'" in (study(tmp_path).trials[0].reason or "")
    no_command = run(tmp_path, "--budget", "1")
    assert no_command.returncode == 2 and "Missing argument" in no_command.stderr


@pytest.mark.slow
def test_ctrl_c_ends_the_command_and_the_study_resumes(tmp_path: Path) -> None:
    command = ["--budget", "2", "--", *script(tmp_path), "hang", "{lr}"]
    process = subprocess.Popen(
        [ADAMTUNE, "run", "--strategy", "quasi-random", *command],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_in_a_terminal,
    )
    deadline = time.monotonic() + 30
    while not (tmp_path / "calls.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "run the same command again to resume" in stderr
    pid = json.loads((tmp_path / "calls.jsonl").read_text().splitlines()[0])["pid"]
    assert not _alive(pid), "the command outlived Ctrl-C"
    cut = study(tmp_path).trials[0]
    assert cut.state == State.FAILED and cut.reason == "interrupted before it finished"

    (tmp_path / "train.py").write_text(SCRIPT.replace('mode in ("hang", "child")', "False"))
    resumed = run(tmp_path, *command)
    assert resumed.returncode == 0, resumed.stderr
    finished = [r for r in study(tmp_path).trials if r.state == State.COMPLETE]
    assert sorted(r.point for r in finished) == [0, 1]
    assert next(r for r in finished if r.point == 0).adam == cut.adam


@pytest.mark.slow
def test_workers_run_commands_at_once(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    result = run(
        tmp_path, "--budget", "4", "--workers", "2", "--", sys.executable, "train.py", "slow", "{lr}"
    )
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    starts = sorted(call["start"] for call in calls)
    ends = sorted(json.loads(line)["end"] for line in (tmp_path / "ends.jsonl").read_text().splitlines())
    assert len(starts) == 4 and len(ends) == 4
    assert starts[1] < ends[0], "the second command did not start before the first ended"
    # Two at once: each computes with its half of the cores (unless the user set a count).
    share = os.environ.get("OMP_NUM_THREADS") or str(max(1, cpu_cores() // 2))
    assert {call["threads"] for call in calls} == {share}
    records = study(tmp_path).trials
    assert sorted(r.point for r in records if r.state == State.COMPLETE) == [0, 1, 2, 3]
    command = ["--study", "users", "--", sys.executable, "train.py", "ok", "{lr}"]
    users = run(
        tmp_path, "--budget", "2", "--workers", "2", *command, env={**os.environ, "OMP_NUM_THREADS": "3"}
    )
    assert users.returncode == 0, users.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert [call["threads"] for call in calls[4:]] == ["3", "3"]


@pytest.mark.slow
def test_the_digits_example_is_tuned_end_to_end(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "--budget",
        "2",
        "--",
        sys.executable,
        str(EXAMPLE),
        "--lr",
        "{lr}",
        "--beta1",
        "{beta1}",
        "--seed",
        "{seed}",
        "--steps",
        "150",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = study(tmp_path).trials
    assert study(tmp_path).name == "train_digits.py"
    assert [r.state for r in records] == [State.COMPLETE, State.COMPLETE]
    assert all(set(r.metrics) >= {"val_loss", "val_acc", "train_loss"} for r in records)
    assert all(len(r.curves["val_loss"]) == 3 for r in records)


def test_a_command_that_passes_no_tuned_value_is_warned_about(tmp_path: Path) -> None:
    # beta1 is tuned and the seed matters, but only {lr} reaches the program, which reads no
    # ADAMTUNE_ variable: every trial would train with its own beta1 and seed.
    (tmp_path / "fixed.py").write_text(
        "import json, math, sys\n"
        "print(json.dumps({'step': 0, 'val_loss': abs(math.log10(float(sys.argv[1])))}))\n"
    )
    warned = run(tmp_path, "--budget", "2", "--tune", "lr,beta1", "--", sys.executable, "fixed.py", "{lr}")
    assert warned.returncode == 0, warned.stderr
    assert (
        "warning: the command passes no {beta1}, {seed}: unless the program reads ADAMTUNE_BETA1, "
        "ADAMTUNE_SEED from its environment, every trial trains with its own values"
    ) in warned.stderr
    # A fixed value the study records (AdamW's weight decay, a --fix) must reach the program too.
    fixed = run(
        tmp_path,
        "--budget",
        "2",
        "--study",
        "adamw",
        "--optimizer",
        "adamw",
        "--fix",
        "beta2=0.99",
        "--",
        sys.executable,
        "fixed.py",
        "{lr}",
        "{seed}",
        "{beta2}",
    )
    assert fixed.returncode == 0, fixed.stderr
    assert (
        "warning: the command passes no {weight_decay}: unless the program reads "
        "ADAMTUNE_WEIGHT_DECAY from its environment, every trial trains with its own values "
        "(the study records weight_decay 0.01)"
    ) in fixed.stderr
    # A program that reads its values from the environment is not warned about.
    (tmp_path / "env.py").write_text(
        "import json, os\nprint(json.dumps({'step': 0, 'val_loss': float(os.environ['ADAMTUNE_LR'])}))\n"
    )
    quiet = run(tmp_path, "--budget", "2", "--study", "env", "--", sys.executable, "env.py")
    assert quiet.returncode == 0, quiet.stderr
    assert "passes no" not in quiet.stderr


PAIRS_SCRIPT = textwrap.dedent(
    """
    import math, sys
    style, lr = sys.argv[1], float(sys.argv[2])
    value = (math.log10(lr) + 4) ** 2
    print(f"Namespace(lr={lr!r}, style={style!r})")  # the program echoes its arguments
    for step in range(3):
        loss = float("nan") if style == "nan" and step == 1 else value + 1 / (step + 1)
        if style == "keras":
            print(f"Epoch {step + 1}/3")
            print(f"10/10 [======] - 0s 2ms/step - loss: 2.0000 - val_loss: {loss:.6f}")
        else:  # one pair a line, the step on a line of its own
            print(f"step: {step * 10}")
            print("train_loss: 2.0")
            print(f"val_loss: {loss}")
    """
)


@pytest.mark.parametrize(
    ("line", "metrics"),
    [
        ("step 100: loss=0.52 val_loss=0.41", {"loss": 0.52, "val_loss": 0.41}),
        (
            "1875/1875 [====] - 3s 2ms/step - loss: 0.2931 - val_accuracy: 0.9590",
            {"loss": 0.2931, "val_accuracy": 0.959},
        ),
        ("INFO:root:step=5, val/loss=-.5e+2; lr_now=3e-4", {"step": 5.0, "val/loss": -50.0, "lr_now": 3e-4}),
        # A call's arguments echo the program's inputs: argparse's Namespace, a config's repr.
        ("Namespace(lr=0.001, beta1=0.9, seed=7, epochs=3)", {}),
        ("INFO args: Config(betas=(0.9, 0.999), model=MLP(width=128), epochs=3) loss=0.5", {"loss": 0.5}),
        ("Epoch(3) loss=0.5 val_loss=0.4", {"loss": 0.5, "val_loss": 0.4}),
        ("loss=0.5 (val_loss=0.4) lr_scale=2", {"loss": 0.5, "val_loss": 0.4, "lr_scale": 2.0}),
        ("Trainer(max_epochs=3, precision=16", {}),  # unclosed: to the end of the line
        ("Epoch 1/10", {}),
        ("acc: 95.3%  time: 12:30:01  version=1.2.3", {}),  # not numbers where the pair ends
        ("python train.py --lr=0.001 -b=0.9 /tmp/run:3", {}),  # flags and paths are not metrics
    ],
)
def test_pairs_are_read_from_a_line(line: str, metrics: dict[str, float]) -> None:
    assert pair_metrics(line) == metrics


def test_a_pair_may_be_nan_or_infinite() -> None:
    nan, inf = pair_metrics("val_loss: nan, train_loss=-Inf").values()
    assert math.isnan(nan) and inf == -math.inf


def test_metrics_printed_as_pairs(tmp_path: Path) -> None:
    (tmp_path / "pairs.py").write_text(PAIRS_SCRIPT)

    def tune(name: str, style: str, *options: str) -> subprocess.CompletedProcess[str]:
        command = ["--", sys.executable, "pairs.py", style, "{lr}"]
        return run(tmp_path, "--budget", "2", "--max-failures", "1", "--study", name, *options, *command)

    # Without the option the pairs are not read, and the reason says how to read them.
    unread = tune("json", "lines")
    assert unread.returncode == 1
    reason = study_named(tmp_path, "json").trials[0].reason or ""
    assert "no metric named 'val_loss' was printed as JSON; it was printed as a pair" in reason
    assert "pass --metrics-format pairs" in reason

    # A step printed on its own line holds for the lines after it.
    lines = tune("lines", "lines", "--metrics-format", "pairs")
    assert lines.returncode == 0, lines.stderr
    for record in study_named(tmp_path, "lines").trials:
        assert record.state == State.COMPLETE and record.adam is not None
        assert record.value == pytest.approx((math.log10(record.adam.lr) + 4) ** 2 + 1 / 3)
        assert [step for step, _ in record.curves["val_loss"]] == [0, 10, 20]
        assert [step for step, _ in record.curves["train_loss"]] == [0, 10, 20]
    launch = study_named(tmp_path, "lines").optuna.user_attrs["launch"]
    rebuilt = build_objective(launch, str(tmp_path / "adamtune.journal"), "lines")  # a worker's
    assert isinstance(rebuilt, CommandObjective) and rebuilt.metrics_format == "pairs"

    # Keras's progress lines print no step: the reports are counted.
    keras = tune("keras", "keras", "--metrics-format", "pairs")
    assert keras.returncode == 0, keras.stderr
    record = study_named(tmp_path, "keras").trials[0]
    assert record.adam is not None
    assert record.value == pytest.approx((math.log10(record.adam.lr) + 4) ** 2 + 1 / 3, abs=1e-6)
    assert [step for step, _ in record.curves["val_loss"]] == [0, 1, 2]
    assert set(record.curves) == {"loss", "val_loss"}  # not the echoed lr

    diverged = tune("nan", "nan", "--metrics-format", "pairs")
    assert diverged.returncode == 0, diverged.stderr
    record = study_named(tmp_path, "nan").trials[0]
    assert record.state == State.INFEASIBLE and "val_loss was nan at step 10" in (record.reason or "")

    refused = tune("bad", "lines", "--metrics-format", "csv")
    assert refused.returncode == 2 and "'csv' is not one of 'json', 'pairs'" in refused.stderr
    expected = "--metrics-format: expected one of json, pairs, got 'csv'"
    with pytest.raises(adamtune.ConfigError, match=expected):
        CommandObjective(("x",), tmp_path, metrics_format="csv")  # type: ignore[arg-type]


STREAMS_SCRIPT = textwrap.dedent(
    """
    import json, logging, math, sys, time
    style, lr = sys.argv[1], float(sys.argv[2])
    value = (math.log10(lr) + 4) ** 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for step in range(3):
        loss = value + 1 / (step + 1)
        if style == "json":  # the training loss on standard output, the validation on error
            print(json.dumps({"step": step * 10, "train_loss": 2.0}))
            print(json.dumps({"step": step * 10, "val_loss": loss}), file=sys.stderr)
            time.sleep(0.1)  # training: the streams' lines arrive in their order
        elif style == "both":  # the same line on both streams, as a logger with two handlers
            print(f"epoch {step} val_loss={loss!r}", flush=True)
            print(f"epoch {step} val_loss={loss!r}", file=sys.stderr, flush=True)
            time.sleep(0.1)
        elif style == "late":  # the same, standard error's lines arriving after all the others
            print(f"epoch {step} val_loss={loss!r}", flush=True)
            if step == 2:
                time.sleep(0.2)
                for late in range(3):
                    print(f"epoch {late} val_loss={value + 1 / (late + 1)!r}", file=sys.stderr)
        else:  # Python's logging (standard error), after a progress bar redrawn with \\r
            for batch in range(3):
                sys.stderr.write(f"\\r{batch + 1}/3 batches")
            sys.stderr.write("\\n")
            logging.info("epoch %d train_loss=%.4f val_loss=%r", step, 2.0, loss)
    """
)


def test_reports_on_standard_error_are_read(tmp_path: Path) -> None:
    (tmp_path / "streams.py").write_text(STREAMS_SCRIPT)

    def tune(style: str, *options: str) -> adamtune.Study:
        command = ["--", sys.executable, "streams.py", style, "{lr}"]
        result = run(tmp_path, "--budget", "2", "--max-failures", "1", "--study", style, *options, *command)
        assert result.returncode == 0, result.stderr
        return study_named(tmp_path, style)

    for record in tune("json").trials:
        assert record.state == State.COMPLETE and record.adam is not None
        assert record.value == pytest.approx((math.log10(record.adam.lr) + 4) ** 2 + 1 / 3)
        assert [step for step, _ in record.curves["val_loss"]] == [0, 10, 20]
        assert [step for step, _ in record.curves["train_loss"]] == [0, 10, 20]
        logs = {stream: tmp_path / path for stream, path in record.logs.items()}
        assert logs["stdout"].read_text().count("train_loss") == 3
        assert logs["stderr"].read_text().count("val_loss") == 3  # each line in its own log

    for record in tune("logging", "--metrics-format", "pairs").trials:
        assert record.state == State.COMPLETE and record.adam is not None
        assert record.value == pytest.approx((math.log10(record.adam.lr) + 4) ** 2 + 1 / 3)
        # Counted reports: the progress bar's redraws print no pair, so they are not reports.
        assert [step for step, _ in record.curves["val_loss"]] == [0, 1, 2]
        assert set(record.curves) == {"train_loss", "val_loss"}
        logged = (tmp_path / record.logs["stderr"]).read_bytes()
        assert b"\r1/3 batches\r2/3 batches\r3/3 batches\n" in logged  # as printed

    # Printed on both streams, each value is one report: one point of the curve, one report
    # to Optuna (which would warn of a second one at a step) and one towards the patience;
    # also where standard error's copies arrive late, at the end (the first stream's count).
    for style in ("both", "late"):
        command = ["--", sys.executable, "streams.py", style, "{lr}"]
        options = ["--metrics-format", "pairs", "--patience", "1"]
        result = run(tmp_path, "--budget", "2", "--study", style, *options, *command)
        assert result.returncode == 0 and "already reported" not in result.stderr, result.stderr
        for record in study_named(tmp_path, style).trials:
            assert record.state == State.COMPLETE and record.adam is not None and record.reason is None
            assert record.value == pytest.approx((math.log10(record.adam.lr) + 4) ** 2 + 1 / 3)
            assert [step for step, _ in record.curves["val_loss"]] == [0, 1, 2]


def test_lines_are_split_where_they_end_as_they_arrive() -> None:
    # A \r\n split across two writes is one line end; a lone \r ends a line (a progress bar);
    # an unfinished last line and bytes that are not UTF-8 are kept.
    program = (
        "import sys, time\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'a\\r'); out.flush(); time.sleep(0.2)\n"
        "out.write(b'\\nb\\rc\\n'); out.flush()\n"
        "sys.stderr.buffer.write(b'err \\xff\\n'); sys.stderr.flush(); time.sleep(0.2)\n"
        "out.write(b'tail'); out.flush()\n"
    )
    pipe = subprocess.PIPE
    process = subprocess.Popen([sys.executable, "-c", program], stdout=pipe, stderr=pipe)
    lines = list(_lines(process))
    process.wait()
    assert lines == [(0, "a\r\n"), (0, "b\r"), (0, "c\n"), (1, "err \ufffd\n"), (0, "tail")]


def test_a_missing_objective_names_the_metrics_printed(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT.replace('"val_loss": loss', '"valid_loss": loss'))
    result = run(tmp_path, "--budget", "1", "--max-failures", "1", "--", *script_args(), "ok", "{lr}")
    assert result.returncode == 1
    assert study(tmp_path).trials[0].reason == (
        "no metric named 'val_loss' was printed (metrics printed: train_loss, valid_loss; "
        "--metric names the one to optimise)"
    )
