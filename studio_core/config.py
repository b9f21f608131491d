"""One Settings object for the whole app.

Sources, highest priority first: keyword arguments, ``STUDIO_*`` environment variables, a ``.env`` file, and
an optional mapping (the app passes ``st.secrets``; either top-level ``STUDIO_*``-less keys or a ``[studio]``
table). Nested values (tiers, packs) take JSON in environment variables.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, InitSettingsSource, SettingsConfigDict


class ConfigError(RuntimeError):
    """A setting is missing or wrong; the message names the setting to fix."""


class Tier(BaseModel):
    name: str
    label: str
    credits: int = Field(gt=0)
    width: int = Field(ge=256, le=2048)
    height: int = Field(ge=256, le=2048)
    steps: int = Field(ge=1, le=150)
    guidance: float = Field(ge=0, le=30)
    refiner: bool = False
    description: str = ""


class CreditPack(BaseModel):
    id: str
    name: str
    credits: int = Field(gt=0)
    bonus: int = Field(default=0, ge=0)
    price_cents: int = Field(gt=0)
    currency: str = "usd"

    @property
    def total_credits(self) -> int:
        return self.credits + self.bonus


def _default_tiers() -> dict[str, Tier]:
    return {
        "standard": Tier(name="standard", label="Standard", credits=1, width=768, height=768, steps=25,
                         guidance=7.0, description="Quick drafts and ideas"),
        "premium2": Tier(name="premium2", label="Premium", credits=2, width=1024, height=1024, steps=40,
                         guidance=7.5, description="Full SDXL resolution, more steps"),
        "premium4": Tier(name="premium4", label="Premium+", credits=4, width=1024, height=1024, steps=50,
                         guidance=7.5, refiner=True, description="Full resolution with the SDXL refiner"),
    }


def _default_packs() -> list[CreditPack]:
    return [
        CreditPack(id="starter", name="Starter", credits=50, price_cents=500),
        CreditPack(id="creator", name="Creator", credits=120, bonus=10, price_cents=1000),
        CreditPack(id="studio", name="Studio", credits=300, bonus=50, price_cents=2000),
    ]


# Values people leave in example files; a real secret never looks like this.
_PLACEHOLDERS = ("changeme", "change-me", "your-", "your_", "xxx", "placeholder", "example", "<", "todo", "...")


def is_placeholder(value: str | None) -> bool:
    if value is None:
        return True
    v = value.strip().lower()
    return not v or any(marker in v for marker in _PLACEHOLDERS)


_secrets_mapping: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("studio_secrets",
                                                                                 default=None)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STUDIO_", env_file=".env", extra="ignore",
                                      validate_default=True)

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; default: SQLite under data_dir")
    app_url: str = "http://localhost:8501"
    sql_echo: bool = False

    # Providers: "auto" = the real one when its credentials are configured, else the local one.
    enhancer: Literal["auto", "local", "gemini"] = "auto"
    generator: Literal["auto", "local", "replicate"] = "auto"
    storage: Literal["auto", "local", "cloudinary"] = "auto"
    payments: Literal["auto", "sandbox", "stripe"] = "auto"

    gemini_api_key: SecretStr | None = None
    gemini_model: str = "gemini-2.5-flash"
    gemini_api_version: str = "v1beta"
    gemini_base_url: str | None = None
    gemini_timeout_s: float = Field(default=20.0, gt=0)

    replicate_api_token: SecretStr | None = None
    replicate_model_version: str = (
        "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
    )
    replicate_base_url: str | None = None
    replicate_timeout_s: float = Field(default=30.0, gt=0)

    cloudinary_cloud_name: str | None = None
    cloudinary_api_key: SecretStr | None = None
    cloudinary_api_secret: SecretStr | None = None
    cloudinary_folder: str = "studio"
    cloudinary_upload_prefix: str | None = None
    cloudinary_delivery_base_url: str | None = None  # default res.cloudinary.com; tests point it elsewhere
    cloudinary_timeout_s: float = Field(default=30.0, gt=0)

    stripe_secret_key: SecretStr | None = None
    stripe_api_base: str | None = None
    stripe_timeout_s: float = Field(default=20.0, gt=0)

    # Untrusted bytes
    max_download_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=4096 * 4096, gt=0)

    # Generation
    generation_timeout_s: float = Field(default=300.0, gt=0)
    worker_threads: int = Field(default=4, ge=1, le=64)
    # How often each app process resumes abandoned jobs and expires stale holds by itself (what sweep does).
    job_maintenance_s: float = Field(default=60.0, ge=1)
    tiers: dict[str, Tier] = Field(default_factory=_default_tiers)
    default_tier: str = "standard"
    prompt_max_chars: int = Field(default=1000, ge=10)
    blocked_terms: list[str] = Field(default_factory=list)
    max_concurrent_jobs_per_user: int = Field(default=2, ge=1)
    max_jobs_per_minute: int = Field(default=6, ge=1)
    # The studio offers the offline renderer after this many outage failures in a row within the window.
    provider_outage_failures: int = Field(default=3, ge=1)
    provider_outage_window_s: int = Field(default=900, ge=60)
    # The analytics page and the catalog's usage add their figures up again at most this often (0: every run).
    analytics_cache_s: int = Field(default=60, ge=0, le=3600)

    # Credits
    monthly_allowance: int = Field(default=30, ge=0)
    signup_bonus: int = Field(default=10, ge=0)
    referral_bonus: int = Field(default=20, ge=0)
    credit_packs: list[CreditPack] = Field(default_factory=_default_packs)
    hold_ttl_s: int = Field(default=900, ge=30)

    # Accounts
    password_min_length: int = Field(default=10, ge=8)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_s: int = Field(default=300, ge=1)

    # Community
    report_hide_threshold: int = Field(default=3, ge=1)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        secrets_source = InitSettingsSource(settings_cls, init_kwargs=dict(_secrets_mapping.get() or {}))
        return (init_settings, env_settings, dotenv_settings, secrets_source, file_secret_settings)

    @field_validator("tiers")
    @classmethod
    def _tiers_named_by_key(cls, tiers: dict[str, Tier]) -> dict[str, Tier]:
        if not tiers:
            raise ValueError("at least one tier is required")
        for key, tier in tiers.items():
            if tier.name != key:
                raise ValueError(f"tier key {key!r} must equal its name {tier.name!r}")
        return tiers

    @field_validator("credit_packs")
    @classmethod
    def _unique_pack_ids(cls, packs: list[CreditPack]) -> list[CreditPack]:
        ids = [p.id for p in packs]
        if len(ids) != len(set(ids)):
            raise ValueError("credit pack ids must be unique")
        return packs

    @model_validator(mode="after")
    def _default_tier_exists(self) -> Settings:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of {sorted(self.tiers)}")
        return self

    # -- derived ---------------------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'studio.db').resolve()}"

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def pack(self, pack_id: str) -> CreditPack:
        for p in self.credit_packs:
            if p.id == pack_id:
                return p
        raise KeyError(pack_id)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


@dataclass(frozen=True)
class ProviderChoice:
    port: str  # enhancer / generator / storage / payments
    name: str  # the adapter that runs: local, gemini, replicate, cloudinary, sandbox, stripe
    is_local: bool
    notice: str | None = None  # shown in the UI when a configured choice fell back


# port -> (real adapter name, local adapter name, {setting name: value getter})
_REAL_PROVIDERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "enhancer": ("gemini", "local", {"gemini_api_key": lambda s: _secret(s.gemini_api_key)}),
    "generator": ("replicate", "local", {"replicate_api_token": lambda s: _secret(s.replicate_api_token)}),
    "storage": ("cloudinary", "local", {
        "cloudinary_cloud_name": lambda s: s.cloudinary_cloud_name,
        "cloudinary_api_key": lambda s: _secret(s.cloudinary_api_key),
        "cloudinary_api_secret": lambda s: _secret(s.cloudinary_api_secret),
    }),
    "payments": ("stripe", "sandbox", {"stripe_secret_key": lambda s: _secret(s.stripe_secret_key)}),
}


def resolve_providers(settings: Settings) -> dict[str, ProviderChoice]:
    """Decide which adapter runs for every port.

    ``auto`` picks the real adapter when all its credentials are set and not placeholders. An explicitly
    selected real adapter with a missing or placeholder credential is a startup error in production and a
    visible fallback to the local adapter in development.
    """
    choices: dict[str, ProviderChoice] = {}
    problems: list[str] = []
    for port, (real, local, creds) in _REAL_PROVIDERS.items():
        selected = getattr(settings, port)
        bad = [f"STUDIO_{name.upper()}" for name, get in creds.items() if is_placeholder(get(settings))]
        if selected == local:
            choices[port] = ProviderChoice(port, local, True)
        elif selected == real:
            if not bad:
                choices[port] = ProviderChoice(port, real, False)
            elif settings.is_production:
                problems.append(f"{port}={real} needs {', '.join(bad)} (missing or a placeholder)")
            else:
                choices[port] = ProviderChoice(
                    port, local, True,
                    notice=f"{real} is selected but {', '.join(bad)} is not set; using the offline {local} "
                           f"{port} instead.")
        else:  # auto
            set_any = any(not is_placeholder(get(settings)) for get in creds.values())
            if not bad:
                choices[port] = ProviderChoice(port, real, False)
            elif set_any and settings.is_production:
                problems.append(f"{port}=auto found a partial {real} configuration: fix {', '.join(bad)}")
            else:
                notice = (f"{real} is only partly configured ({', '.join(bad)} missing); using the offline "
                          f"{local} {port}.") if set_any else None
                choices[port] = ProviderChoice(port, local, True, notice=notice)
    if problems:
        raise ConfigError("Provider configuration is incomplete: " + "; ".join(problems))
    return choices


def _flatten_secrets(secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    if not secrets:
        return {}
    out: dict[str, Any] = {}
    section = secrets.get("studio") if hasattr(secrets, "get") else None
    items = list(secrets.items())
    if isinstance(section, Mapping):
        items += list(section.items())
    for key, value in items:
        if key in ("studio", "auth") or isinstance(value, Mapping) and key not in ("tiers",):
            continue
        k = key.lower()
        if k.startswith("studio_"):
            k = k[len("studio_"):]
        out[k] = value
    return out


def load_settings(secrets: Mapping[str, Any] | None = None, **overrides: Any) -> Settings:
    """Build Settings from overrides > env > .env > the secrets mapping; turn validation errors into
    a ConfigError that names the settings to fix."""
    from pydantic import ValidationError

    token = _secrets_mapping.set(_flatten_secrets(secrets))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            parts.append(f"STUDIO_{loc.split('.')[0].upper()}: {err['msg']}")
        raise ConfigError("Invalid settings: " + "; ".join(parts)) from None
    finally:
        _secrets_mapping.reset(token)
