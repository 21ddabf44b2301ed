"""Command work with real subprocesses: argv without a shell, exit codes, tails, the env
allow-list, the timeout killing the whole process group, and workers without --allow-commands."""

from __future__ import annotations

import psutil
import pytest

from executions import work
from executions.errors import InvalidInput
from executions.work import WorkContext, WorkFailed, WorkTimeout, command


def execute(**unit) -> work.Outcome:
    return work.run(unit, WorkContext())


def failure(**unit) -> WorkFailed:
    with pytest.raises(WorkFailed) as caught:
        execute(**unit)
    return caught.value


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_the_issues_example_runs_test_f_in_its_cwd(commands, tmp_path):
    commands()
    unit = {"command": "test", "args": ["-f", "app.ready"], "cwd": str(tmp_path), "timeout": 30}
    error = failure(**unit)
    assert (error.error_class, error.message) == ("CommandFailed", "exit code 1")
    assert error.result["exitCode"] == 1
    (tmp_path / "app.ready").touch()
    result = execute(**unit).result
    assert result["exitCode"] == 0
    assert set(result) == {"exitCode", "stdout", "stderr", "durationMs"}


def test_stdout_and_stderr_are_the_result_and_a_non_zero_exit_fails_with_the_stderr_tail(commands):
    commands()
    error = failure(command="sh", args=["-c", "echo progress; echo 'disk full' >&2; exit 3"])
    assert error.message == "exit code 3: disk full"
    assert error.stack == "disk full\n"
    assert error.result["stdout"] == "progress\n"


def test_the_tails_are_bounded(commands):
    commands()
    result = execute(command="sh", args=["-c", "seq 1 100000"]).result
    assert len(result["stdout"]) == command.TAIL_BYTES
    assert result["stdout"].endswith("99999\n100000\n")


def test_there_is_no_shell(commands):
    commands()
    result = execute(command="echo", args=["$HOME; rm -rf / `id`"]).result
    assert result["stdout"] == "$HOME; rm -rf / `id`\n"


def test_the_command_gets_only_path_and_the_allowed_env(commands, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "the-workers-own")
    commands(env_names={"APP_ENV", "TOKEN"})
    unit = {
        "command": "env",
        "env": {"APP_ENV": "prod", "TOKEN": {"value": "tok-0123456789abcdefghij", "secret": True}},
    }
    lines = set(execute(**unit).result["stdout"].splitlines())
    assert "APP_ENV=prod" in lines
    assert "TOKEN=********ghij" in lines  # it got the real one; what is shown back is masked
    assert {line.split("=", 1)[0] for line in lines} == {"PATH", "LANG", "APP_ENV", "TOKEN"}


def test_env_names_outside_the_workers_allow_list_fail_the_job(commands):
    commands(env_names={"APP_ENV"})
    error = failure(command="true", env={"APP_ENV": "x", "LD_PRELOAD": "evil.so"})
    assert error.message == "env LD_PRELOAD not allowed on this worker (--command-env)"


def test_a_worker_without_allow_commands_fails_the_job_at_once(commands, tmp_path):
    commands(allowed=False)
    marker = tmp_path / "ran"
    error = failure(command="touch", args=[str(marker)])
    assert error.message == "this worker does not run commands (start it with --allow-commands)"
    assert not marker.exists()


def test_a_timeout_kills_the_whole_process_group(commands, wait_until):
    commands()
    with pytest.raises(WorkTimeout) as caught:
        execute(command="sh", args=["-c", "sleep 300 & echo $!; sleep 300"], timeout=0.5)
    assert caught.value.message == "command timed out after 0.5s"
    child = int(caught.value.result["stdout"])
    wait_until(lambda: not alive(child), timeout=10, message="the background child to be killed")


def test_nothing_of_a_finished_command_outlives_it(commands, wait_until):
    commands()
    result = execute(command="sh", args=["-c", "sleep 300 & echo $!"], timeout=60).result
    assert result["exitCode"] == 0 and result["durationMs"] < 10_000
    child = int(result["stdout"])
    wait_until(lambda: not alive(child), timeout=10, message="the background child to be killed")


def test_a_missing_program_or_cwd_fails_the_job(commands, tmp_path):
    commands()
    assert failure(command="no-such-program-here").message == (
        "command not found: no-such-program-here"
    )
    missing = str(tmp_path / "gone")
    assert failure(command="true", cwd=missing).message == f"cwd not found: {missing}"


@pytest.mark.parametrize(
    ("unit", "field"),
    [
        ({"command": ""}, "command"),
        ({"command": "ls", "args": "-la"}, "args"),
        ({"command": "ls", "args": ["-l", 3]}, "args"),
        ({"command": "ls", "cwd": "srv/app"}, "cwd"),
        ({"command": "ls", "timeout": -1}, "timeout"),
        ({"command": "ls", "env": {"1BAD": "x"}}, "env.1BAD"),
    ],
)
def test_invalid_definitions_are_refused_naming_the_field(unit, field):
    with pytest.raises(InvalidInput) as caught:
        work.validate(unit, where="data")
    assert caught.value.field == f"data.{field}"


HOOK = (
    "import atexit\n"
    "from executions.work import command\n"
    "atexit.register(lambda: print('POLICY', command.policy().allowed, "
    "sorted(command.policy().env_names)))\n"
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("args", "policy"),
    [
        ((), "POLICY False []"),
        (
            ("--allow-commands", "--command-env", "APP_ENV, TOKEN"),
            "POLICY True ['APP_ENV', 'TOKEN']",
        ),
    ],
)
def test_the_worker_options_set_what_the_worker_runs(run_worker, args, policy):
    output = run_worker(hook=HOOK + f"sys.argv += {list(args)!r}\n")
    assert policy in output.splitlines()
