"""Settings: sources, validation, and which provider runs."""

from __future__ import annotations

import pytest

from studio_core.config import ConfigError, is_placeholder, load_settings, resolve_providers

pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults_are_zero_configuration(tmp_path):
    s = load_settings()
    assert s.resolved_database_url.startswith("sqlite:///") and s.resolved_database_url.endswith("studio.db")
    assert {t: (s.tiers[t].credits) for t in s.tiers} == {"standard": 1, "premium2": 2, "premium4": 4}
    assert all(c.is_local for c in resolve_providers(s).values())
    assert {c.name for c in resolve_providers(s).values()} == {"local", "sandbox"}


def test_env_beats_dotenv_beats_secrets(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("STUDIO_MONTHLY_ALLOWANCE=11\nSTUDIO_SIGNUP_BONUS=5\n")
    secrets = {"studio": {"monthly_allowance": 99, "signup_bonus": 99, "referral_bonus": 7}}
    s = load_settings(secrets)
    assert (s.monthly_allowance, s.signup_bonus, s.referral_bonus) == (11, 5, 7)
    monkeypatch.setenv("STUDIO_MONTHLY_ALLOWANCE", "12")
    assert load_settings(secrets).monthly_allowance == 12


def test_top_level_secrets_keys_with_prefix_are_read():
    s = load_settings({"STUDIO_REFERRAL_BONUS": 3, "auth": {"client_id": "x"}})
    assert s.referral_bonus == 3


def test_tiers_and_packs_take_json_from_env(monkeypatch):
    monkeypatch.setenv("STUDIO_CREDIT_PACKS", '[{"id":"mini","name":"Mini","credits":5,"price_cents":100}]')
    s = load_settings()
    assert [p.id for p in s.credit_packs] == ["mini"] and s.pack("mini").total_credits == 5


@pytest.mark.parametrize("env,needle", [
    ({"STUDIO_MONTHLY_ALLOWANCE": "-1"}, "STUDIO_MONTHLY_ALLOWANCE"),
    ({"STUDIO_DEFAULT_TIER": "ultra"}, "default_tier"),
    ({"STUDIO_GENERATOR": "dalle"}, "STUDIO_GENERATOR"),
])
def test_invalid_settings_name_the_setting(monkeypatch, env, needle):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=needle):
        load_settings()


def test_placeholders_are_not_secrets():
    assert is_placeholder(None) and is_placeholder("") and is_placeholder("changeme")
    assert is_placeholder("your-api-key") and is_placeholder("<token>")
    assert not is_placeholder("r8_4f0c9a1b2c3d")


def test_auto_picks_real_provider_when_credentials_are_set():
    s = load_settings(replicate_api_token="r8_realtoken123", gemini_api_key="AIzaRealKey123")
    choices = resolve_providers(s)
    assert choices["generator"].name == "replicate" and not choices["generator"].is_local
    assert choices["enhancer"].name == "gemini"
    assert choices["storage"].name == "local"


def test_selected_real_provider_without_secret_fails_in_production():
    s = load_settings(environment="production", generator="replicate", replicate_api_token="changeme")
    with pytest.raises(ConfigError, match="STUDIO_REPLICATE_API_TOKEN"):
        resolve_providers(s)


def test_selected_real_provider_without_secret_falls_back_in_development_with_notice():
    s = load_settings(environment="development", payments="stripe")
    choice = resolve_providers(s)["payments"]
    assert choice.name == "sandbox" and choice.is_local
    assert "STUDIO_STRIPE_SECRET_KEY" in choice.notice


def test_partial_cloudinary_config_is_an_error_in_production():
    s = load_settings(environment="production", cloudinary_cloud_name="demo", cloudinary_api_key="123456")
    with pytest.raises(ConfigError, match="STUDIO_CLOUDINARY_API_SECRET"):
        resolve_providers(s)
