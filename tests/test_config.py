"""Settings: command line > action inputs > .github/acr-bot.yml > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from acr_bot.config import CONFIG_FILE, DEFAULT_MODELS, Settings, load_settings
from acr_bot.domain import Price
from acr_bot.errors import ConfigError


def repo_with(tmp_path: Path, yaml_text: str | None) -> Path:
    root = tmp_path / "repo"
    root.mkdir(exist_ok=True)
    if yaml_text is not None:
        (root / CONFIG_FILE).parent.mkdir(parents=True, exist_ok=True)
        (root / CONFIG_FILE).write_text(yaml_text)
    return root


FILE = """\
max_attempts: 5
max_cost_usd: 1.5
policy: best-first
test_command: make test
draft: false
protected_paths: [docs/**, "*.lock"]
"""


def test_defaults_without_any_source(tmp_path: Path) -> None:
    settings = load_settings(repo_with(tmp_path, None), env={})
    assert settings == Settings()
    assert settings.models == DEFAULT_MODELS
    assert settings.max_attempts == 3 and settings.policy == "learned"


def test_precedence_cli_over_inputs_over_file_over_defaults(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, FILE)
    env = {"INPUT_MAX-ATTEMPTS": "4", "INPUT_POLICY": "random", "INPUT_SEED": "",
           "INPUT_GITHUB-TOKEN": "ghs_not_a_setting", "UNRELATED": "x"}
    settings = load_settings(repo, {"max_attempts": 2, "policy": None}, env=env)
    assert settings.max_attempts == 2  # command line
    assert settings.policy == "random"  # action input (the CLI gave None: unset)
    assert settings.max_cost_usd == 1.5  # file
    assert settings.test_command == "make test"  # file
    assert settings.draft is False  # file
    assert settings.seed == 0  # default (an empty input is unset)
    assert settings.llm_retries == 2  # default

    assert load_settings(repo, env=env).max_attempts == 4
    assert load_settings(repo, env={}).max_attempts == 5
    assert load_settings(repo, env={"INPUT_MAX_ATTEMPTS": "7"}).max_attempts == 7


def test_action_inputs_are_parsed_from_strings(tmp_path: Path) -> None:
    env = {"INPUT_MODELS": "gpt-5-mini, claude-sonnet-4-6\nreplay/x", "INPUT_DRAFT": "false",
           "INPUT_MAX-COST-USD": "0.25", "INPUT_PROTECTED-PATHS": "docs/**,infra/**"}
    settings = load_settings(repo_with(tmp_path, None), env=env)
    assert settings.models == ("gpt-5-mini", "claude-sonnet-4-6", "replay/x")
    assert settings.draft is False
    assert settings.max_cost_usd == 0.25
    assert settings.protected_paths == ("docs/**", "infra/**")


def test_replay_file_from_the_environment_and_the_cli(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, None)
    from_env = load_settings(repo, env={"ACR_REPLAY_FILE": "/tmp/a.json"})
    assert from_env.replay_file == Path("/tmp/a.json")
    from_cli = load_settings(repo, {"replay_file": "/tmp/b.json"},
                             env={"ACR_REPLAY_FILE": "/tmp/a.json"})
    assert from_cli.replay_file == Path("/tmp/b.json")


MODELS_FILE = """\
models:
  - gpt-5-mini
  - name: local/llama
    input_cost_per_token: 1.0e-7
    output_cost_per_token: 2.0e-7
    api_base: http://localhost:8000/v1
  - name: cheap/free
    input_cost_per_token: 0
"""


def test_models_with_prices_and_api_base_in_the_file(tmp_path: Path) -> None:
    settings = load_settings(repo_with(tmp_path, MODELS_FILE), env={})
    assert settings.models == ("gpt-5-mini", "local/llama", "cheap/free")
    assert settings.prices == {"local/llama": Price(1e-7, 2e-7), "cheap/free": Price(0.0, 0.0)}
    assert settings.api_bases == {"local/llama": "http://localhost:8000/v1"}


def test_cli_models_keep_the_file_prices(tmp_path: Path) -> None:
    settings = load_settings(repo_with(tmp_path, MODELS_FILE),
                             {"models": "local/llama,gpt-5.4"}, env={})
    assert settings.models == ("local/llama", "gpt-5.4")
    assert settings.prices["local/llama"] == Price(1e-7, 2e-7)
    assert settings.api_bases == {"local/llama": "http://localhost:8000/v1"}


@pytest.mark.parametrize("yaml_text, words", [
    ("max_attempt: 3\n", ["'max_attempt'", "did you mean 'max_attempts'"]),
    ("polcy: random\n", ["'polcy'", "'policy'"]),
    ("zzz_qqq: 1\n", ["'zzz_qqq'"]),
    ("models:\n  - name: x\n    input_cost: 1\n", ["'input_cost'", "'input_cost_per_token'"]),
])
def test_an_unknown_key_is_named(tmp_path: Path, yaml_text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(repo_with(tmp_path, yaml_text), env={})
    for word in words:
        assert word in str(info.value)
    assert CONFIG_FILE in str(info.value)


@pytest.mark.parametrize("yaml_text, setting", [
    ("max_attempts: 0\n", "max_attempts"),
    ("max_attempts: many\n", "max_attempts"),
    ("policy: nonsense\n", "policy"),
    ("draft: maybe\n", "draft"),
    ("max_cost_usd: -1\n", "max_cost_usd"),
    ("context_tokens: 0\n", "context_tokens"),
    ("sandbox: vm\n", "sandbox"),
    ("models: []\n", "models"),
    ("models:\n  - {input_cost_per_token: 1}\n", "models"),
    ("models:\n  - {name: x, input_cost_per_token: cheap}\n", "models entry 'x'"),
    ("models:\n  - {name: x, output_cost_per_token: -1}\n", "models entry 'x'"),
    ("memory_path: /etc/memory.json\n", "memory_path"),
    ("memory_path: ../elsewhere.json\n", "memory_path"),
])
def test_a_bad_value_names_the_setting(tmp_path: Path, yaml_text: str, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(repo_with(tmp_path, yaml_text), env={})
    assert setting in str(info.value)


def test_a_bad_action_input_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="action inputs: max_attempts"):
        load_settings(repo_with(tmp_path, None), env={"INPUT_MAX-ATTEMPTS": "zero"})


def test_allowed_permission_takes_known_roles_only(tmp_path: Path) -> None:
    repo = repo_with(tmp_path, "allowed_permission: [maintain, admin]\n")
    assert load_settings(repo, env={}).allowed_permission == ("maintain", "admin")
    assert load_settings(repo, env={"INPUT_ALLOWED-PERMISSION": "admin"}
                         ).allowed_permission == ("admin",)
    with pytest.raises(ConfigError, match="allowed_permission: expected roles among read, "
                                          "triage, write, maintain, admin, got 'writer'"):
        load_settings(repo, env={"INPUT_ALLOWED-PERMISSION": "writer"})


def test_a_bad_cli_value_names_its_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="command line: policy"):
        load_settings(repo_with(tmp_path, None), {"policy": "smartest"}, env={})


def test_fixed_policy_is_accepted(tmp_path: Path) -> None:
    assert load_settings(repo_with(tmp_path, "policy: fixed:gpt-5-mini\n"),
                         env={}).policy == "fixed:gpt-5-mini"


@pytest.mark.parametrize("yaml_text, words", [
    ("max_attempts: [1\n", "not valid YAML"),
    ("- a\n- b\n", "mapping"),
    ("just a string\n", "mapping"),
])
def test_invalid_yaml(tmp_path: Path, yaml_text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        load_settings(repo_with(tmp_path, yaml_text), env={})
    assert CONFIG_FILE in str(info.value)


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(repo_with(tmp_path, "# nothing yet\n"), env={}) == Settings()


def test_the_memory_file_is_always_protected(tmp_path: Path) -> None:
    assert Settings().protected == (".github/**", ".acr/memory.json")
    settings = load_settings(repo_with(tmp_path, "memory_path: state/mem.json\n"
                                                 "protected_paths: [docs/**]\n"), env={})
    assert settings.protected == (".github/**", "docs/**", "state/mem.json")
    # Naming the defaults again does not duplicate them.
    again = Settings(protected_paths=(".github/**", ".acr/memory.json"))
    assert again.protected == (".github/**", ".acr/memory.json")
