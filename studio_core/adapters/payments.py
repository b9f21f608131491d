"""Pick the payment gateway from Settings: Stripe when configured, else the offline sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from studio_core.config import ConfigError, ProviderChoice, Settings

if TYPE_CHECKING:
    from studio_core.ports import PaymentGateway


def build_payment_gateway(settings: Settings, choice: ProviderChoice) -> PaymentGateway:
    if choice.name == "sandbox":
        from studio_core.adapters.sandbox_payments import SandboxGateway

        return SandboxGateway(settings.data_dir / "sandbox_payments")
    if choice.name == "stripe":
        from studio_core.adapters.stripe_payments import StripeGateway  # imports the SDK only when used

        if settings.stripe_secret_key is None:
            raise ConfigError("STUDIO_STRIPE_SECRET_KEY is required for the Stripe gateway")
        return StripeGateway(settings.stripe_secret_key.get_secret_value(), api_base=settings.stripe_api_base,
                             timeout_s=settings.stripe_timeout_s)
    raise ConfigError(f"unknown payment gateway {choice.name!r} (expected 'sandbox' or 'stripe')")
