"""Progress bars: shown on long work, silenced by INTERP_QUIET / `interp --quiet`."""

from interp.progress import QUIET_ENV, bar, quiet


def test_quiet_env_disables_the_bar(monkeypatch):
    monkeypatch.setenv(QUIET_ENV, "1")
    assert quiet()
    with bar(5, "heads") as b:
        assert b.disable
    monkeypatch.setenv(QUIET_ENV, "0")
    assert not quiet()


def test_cli_quiet_flag_sets_the_env(monkeypatch, capsys):
    import os

    from interp.cli import main

    monkeypatch.delenv(QUIET_ENV, raising=False)
    assert main(["--quiet", "models", "--format", "csv"]) == 0
    assert os.environ.get(QUIET_ENV) == "1"
    assert "smollm2-135m" in capsys.readouterr().out
