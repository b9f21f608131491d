"""Widgets for generated images: tier cards, job progress, the result card and its recipe.

Prompts and model text are shown with ``st.text`` / ``st.code`` only (never Markdown or HTML).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

import streamlit as st

from studio_core.config import Tier
from studio_core.services.generation import JobView, ProviderHealth
from studio_core.ui.cards import image_source

STATUS_LABEL = {"queued": "Waiting for a worker…", "running": "Generating…", "succeeded": "Done",
                "failed": "Failed", "canceled": "Canceled"}
PROVIDER_LABEL = {"local": "Offline preview renderer (not AI)", "replicate": "Replicate · SDXL",
                  "scripted": "Test generator"}


def provider_label(name: str) -> str:
    return PROVIDER_LABEL.get(name, name)


def provider_down_notice(health: ProviderHealth, on_switch: Callable[..., None], args: tuple = ()) -> None:
    """The configured image service is down: say so in plain words and offer the offline renderer."""
    with st.container(border=True):
        st.warning(f"{provider_label(health.provider)} is not answering: its last {health.recent_failures} "
                   "images failed. Nothing was charged for them.", icon=":material/cloud_off:")
        st.caption("You can keep working with the offline preview renderer. It draws a procedural preview of "
                   "your prompt on this server — not an AI image — and keeps the full recipe, so you can render "
                   "the same recipe with the image service once it is back.")
        st.button("Use the offline preview renderer", on_click=on_switch, args=args,
                  icon=":material/offline_bolt:", key="studio_use_offline", type="primary")


def tier_cards(tiers: dict[str, Tier], selected: str, available: int, key: str) -> str:
    """Three cards side by side; returns the tier the user has chosen (kept in session state by the caller)."""
    chosen = selected
    row = st.container(horizontal=True)  # one layout block for the row, not one per column
    for tier in tiers.values():
        with row, st.container(border=True):
            is_selected = tier.name == selected
            st.markdown(f"**{tier.label}**" + (" :material/check_circle:" if is_selected else ""))
            st.metric("Cost", f"{tier.credits} credit{'s' if tier.credits != 1 else ''}", label_visibility="collapsed")
            st.caption(f"{tier.width}×{tier.height} · {tier.steps} steps" + (" · refiner" if tier.refiner else "")
                       + f"  \n{tier.description}")
            affordable = tier.credits <= available
            if st.button("Selected" if is_selected else "Choose", key=f"{key}_{tier.name}",
                         type="primary" if is_selected else "secondary", width="stretch",
                         help=None if affordable else f"Needs {tier.credits} credits; you have {available}."):
                chosen = tier.name
    return chosen


def job_progress(job: JobView, on_cancel: Callable[[], None], now: datetime) -> None:
    elapsed = int((now - (job.started_at or job.created_at)).total_seconds())
    st.caption(f"{STATUS_LABEL.get(job.status, job.status)} · {elapsed} s")
    st.progress(job.progress if job.status == "running" else 0.0,
                text=f"{int(job.progress * 100)}%" if job.status == "running" else "Queued")
    if st.button("Cancel", key=f"cancel_{job.id}", icon=":material/stop_circle:"):
        on_cancel()


def recipe_card(job: JobView) -> None:
    """Everything needed to reproduce the image."""
    with st.container(border=True):
        st.caption("Prompt used")
        st.code(job.final_prompt, language=None, wrap_lines=True)
        if job.enhanced_prompt and job.enhanced_prompt != job.prompt:
            st.caption("Your original prompt")
            st.code(job.prompt, language=None, wrap_lines=True)
        if job.negative_prompt:
            st.caption("Negative prompt")
            st.code(job.negative_prompt, language=None, wrap_lines=True)
        rows = [("Template", job.template_title or "none"), ("Tier", job.tier),
                ("Size", f"{job.width}×{job.height} ({job.aspect_ratio})"), ("Seed", str(job.seed)),
                ("Provider", provider_label(job.provider)), ("Model version", job.model_version or "n/a"),
                ("Cost", f"{job.cost} credit{'s' if job.cost != 1 else ''}" if job.charged else "not charged"),
                ("Time taken", f"{job.seconds_taken:.1f} s" if job.seconds_taken is not None else "n/a")]
        for pair in (rows[i:i + 2] for i in range(0, len(rows), 2)):
            # one row of columns per pair, so a long value (the model version) never shifts the labels after it
            for col, (label, value) in zip(st.columns(2), pair, strict=False):
                col.caption(label)
                col.text(value)
        st.caption("Copy recipe")
        st.code(json.dumps(job.recipe(), indent=2), language=None, wrap_lines=True)


def job_image(job: JobView, url: str | None, *, width: str = "stretch") -> None:
    if job.status == "succeeded" and url:
        caption = "Offline preview (procedural, not AI)" if job.provider == "local" else None
        source, output_format = image_source(url)
        st.image(source, caption=caption, width=width, alt=f"Generated image: {job.final_prompt[:200]}",
                 output_format=output_format)
    elif job.status in ("failed", "canceled"):
        st.error(job.error_message or "This generation did not finish. Not charged.", icon=":material/error:")
