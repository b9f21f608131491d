"""Remixing: a recipe goes into the studio's form (the session keys app_pages/studio.py reads), then the app
switches to the studio. ``studio_remixed_from`` carries the source image, so the new image records its lineage
and the source post's remix count goes up when it is generated."""

from __future__ import annotations

import streamlit as st

from studio_core.bootstrap import Studio
from studio_core.services.generation import ASPECT_RATIOS, JobView
from studio_core.ui.widgets import plain

STUDIO_PAGE = "app_pages/studio.py"
REMIX_KEY = "studio_remixed_from"


def open_in_studio(studio: Studio, job: JobView, *, remixed_from_id: int | None) -> None:
    """Load a recipe as the studio's starting point and go there. The prompt is the one that made the image
    (the final prompt), with its seed fixed: generating unchanged reproduces it, so every edit is a variation.
    Called from the script body, not a callback (``st.switch_page`` ends this run)."""
    settings = studio.settings
    active_templates = {t.id for t in studio.catalog.templates()}
    ss = st.session_state
    ss.update(studio_prompt=job.final_prompt, studio_negative=job.negative_prompt,
              studio_aspect=job.aspect_ratio if job.aspect_ratio in ASPECT_RATIOS else "1:1",
              studio_tier=job.tier if job.tier in settings.tiers else settings.default_tier,
              studio_seed_fixed=True, studio_seed=job.seed,
              studio_template=job.template_id if job.template_id in active_templates else None)
    ss[REMIX_KEY] = remixed_from_id
    for key in ("studio_enh", "studio_enh_text", "studio_pending"):
        ss.pop(key, None)
    st.switch_page(STUDIO_PAGE)


def _stop_remixing() -> None:
    st.session_state[REMIX_KEY] = None


def remix_banner(studio: Studio, user_id: int) -> None:
    """In the studio: which image this is a remix of, with a way out (then it is a new image of its own)."""
    source = st.session_state.get(REMIX_KEY)
    if source is None:
        return
    origin = studio.community.remix_origin(user_id, source)
    with st.container(border=True):
        text_col, button_col = st.columns([3, 1], vertical_alignment="center")
        text_col.caption(":material/autorenew: Remix of " + plain(origin.subject if origin else "an image"))
        button_col.button("Not a remix", key="studio_not_remix", on_click=_stop_remixing,
                          help="Start fresh: the next image will not be linked to this one.")
