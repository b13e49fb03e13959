"""Configuration: firebreak.toml is the single home of defaults; files and FIREBREAK_* layer over it."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_CONFIG_PATH, load_settings
from core.errors import ConfigError


def test_defaults_come_from_the_documented_file():
    settings = load_settings()

    assert DEFAULT_CONFIG_PATH.name == "firebreak.toml"
    assert settings.agent.run_wall_clock_s == 30.0
    assert settings.tools.class_timeouts_s == {
        "db": 0.15,
        "web_search": 2.0,
        "code": 5.0,
        "llm": 8.0,
        "external_api": 1.5,
    }
    assert settings.routes["chat"].models == ["local/qwen2.5-coder-0.5b-instruct"]


def test_a_user_file_is_merged_over_the_defaults(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text("[ui]\nport = 9000\n[tools.timeouts_s]\nsql_lookup = 0.5\n")
    settings = load_settings(user)

    assert (settings.ui.port, settings.ui.host) == (9000, "127.0.0.1")
    assert settings.tools.timeouts_s == {"sql_lookup": 0.5}
    assert settings.tools.class_timeouts_s["db"] == 0.15


def test_environment_wins_over_files(tmp_path, monkeypatch):
    user = tmp_path / "mine.toml"
    user.write_text("[ui]\nport = 9000\n")
    monkeypatch.setenv("FIREBREAK_UI__PORT", "9100")
    monkeypatch.setenv("FIREBREAK_DATABASE_URL", "postgresql://db.internal/firebreak")

    settings = load_settings(user)
    assert settings.ui.port == 9100
    assert settings.database_url == "postgresql://db.internal/firebreak"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[agent]\nmax_steps = 0\n", "agent.max_steps: Input should be greater than or equal to 1"),
        ("[ui]\nprot = 1\n", "ui.prot: Extra inputs are not permitted"),
        ("[ui\n", "is not valid TOML"),
        ('[faults."local/x"]\nerror_kind = "meteor"\n', "faults.local/x.error_kind"),
    ],
)
def test_mistakes_are_config_errors_that_name_the_key(tmp_path, content, message):
    user = tmp_path / "bad.toml"
    user.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings(user)


def test_a_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml")


def test_a_model_name_works_as_a_one_model_route():
    settings = load_settings()

    assert settings.route("openai/gpt-4o-mini").models == ["openai/gpt-4o-mini"]
    with pytest.raises(ConfigError, match="unknown route 'fast'"):
        settings.route("fast")
