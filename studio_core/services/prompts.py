"""Prompt enhancement for the studio: never raises, never loses the user's prompt.

On any failure the user's original prompt stays in place and the result says why, in plain words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from studio_core.ports import Enhancement, PromptEnhancer, ProviderError
from studio_core.services.generation import clean_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnhanceResult:
    original: str
    enhancement: Enhancement | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.enhancement is not None


class PromptService:
    def __init__(self, enhancer: PromptEnhancer, *, max_chars: int) -> None:
        self.enhancer = enhancer
        self.max_chars = max_chars

    @property
    def provider(self) -> str:
        return self.enhancer.name

    def enhance(self, prompt: str, *, template_hint: str | None = None) -> EnhanceResult:
        original = clean_text(prompt)
        if not original:
            return EnhanceResult(prompt, None, "Write a prompt first, then enhance it.")
        if len(original) > self.max_chars:
            return EnhanceResult(prompt, None, f"The prompt is longer than {self.max_chars} characters.")
        try:
            result = self.enhancer.enhance(original, template_hint=template_hint)
        except ProviderError as exc:
            log.warning("enhancement failed: %s", exc)
            return EnhanceResult(prompt, None, f"{exc.user_message} Your original prompt is kept.")
        enhanced = clean_text(result.enhanced)[: self.max_chars]
        if not enhanced:
            return EnhanceResult(prompt, None, "The enhancer returned nothing useful. Your original prompt is kept.")
        return EnhanceResult(original, Enhancement(
            original=original, enhanced=enhanced, negative_prompt=clean_text(result.negative_prompt)[: self.max_chars],
            added=tuple(clean_text(a)[:200] for a in result.added if clean_text(a))[:12], provider=result.provider))
