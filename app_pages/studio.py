"""Studio: template -> prompt -> enhance -> tier -> confirm -> live progress -> result, retry, remix."""

import functools
from datetime import UTC, datetime
from operator import attrgetter

import streamlit as st

from studio_core.services.community import CommunityError
from studio_core.services.experiments import ExperimentError
from studio_core.services.generation import (
    ASPECT_RATIOS,
    GenerateRequest,
    GenerationError,
    InsufficientCredits,
    new_request_key,
)
from studio_core.services.ledger import IdempotencyConflict
from studio_core.ui.cards import picture
from studio_core.ui.generation import (
    STATUS_LABEL,
    job_image,
    job_progress,
    provider_down_notice,
    provider_label,
    recipe_card,
    tier_cards,
)
from studio_core.ui.remix import open_in_studio, remix_banner
from studio_core.ui.session import get_studio, require_user
from studio_core.ui.tracking import Event, track
from studio_core.ui.widgets import empty_state, keep_choice, lazy_expander

user = require_user()
studio = get_studio()
settings = studio.settings
ss = st.session_state
ss.setdefault("studio_prompt", "")
ss.setdefault("studio_negative", "")
ss.setdefault("studio_aspect", "1:1")
ss.setdefault("studio_tier", settings.default_tier)
ss.setdefault("studio_seed_fixed", False)
ss.setdefault("studio_seed", 42)
ss.setdefault("studio_template", None)
primary_renderer = studio.generation.generator.name
ss.setdefault("studio_renderer", primary_renderer)
if ss.studio_renderer not in studio.generation.renderers:  # the configuration changed under this session
    ss.studio_renderer = primary_renderer

# A shared remix link (?remix=<post id>) opens that post's recipe here, like the Remix button does.
if (remix_post := st.query_params.get("remix")) is not None:
    del st.query_params["remix"]
    try:
        start = studio.community.start_remix(user.id, int(remix_post))
    except (ValueError, CommunityError):
        ss.studio_notice = "That remix link points to a post that does not exist or is not visible."
    else:
        track(Event.REMIX, post_id=start.post.id, source_image_id=start.post.image_id)
        open_in_studio(studio, start.recipe, remixed_from_id=start.post.image_id)
ss.setdefault("studio_remixed_from", None)  # the source image of a remix (see studio_core/ui/remix.py)


# -- callbacks (run before the next script run, so they may set widget values) -----------------------------
def use_template(template) -> None:
    subject = ss.get("studio_subject", "").strip()
    if not subject:
        ss.studio_notice = "Type a subject first: it fills the template's {subject} slot."
        return
    ss.studio_prompt = template.fill(subject)
    ss.studio_negative = template.negative_prompt
    ss.studio_template = template.id
    ss.studio_remixed_from = None  # a template starts a new image, not a remix
    if template.default_tier in settings.tiers:
        ss.studio_tier = template.default_tier
    ss.pop("studio_enh", None)


def load_recipe(job, *, same_seed: bool) -> None:
    ss.studio_prompt = job.prompt
    ss.studio_negative = job.negative_prompt
    ss.studio_aspect = job.aspect_ratio if job.aspect_ratio in ASPECT_RATIOS else "1:1"
    ss.studio_tier = job.tier if job.tier in settings.tiers else settings.default_tier
    ss.studio_seed_fixed = same_seed
    ss.studio_seed = job.seed
    ss.studio_template = job.template_id
    ss.studio_remixed_from = job.remixed_from_id
    ss.pop("studio_enh", None)
    if job.enhanced_prompt:
        ss.studio_enh_text = job.enhanced_prompt


def current_request() -> GenerateRequest:
    """The form as it is now (callbacks run after the browser sent the latest typing)."""
    enh = ss.get("studio_enh")
    use_enhanced = enh is not None and enh.ok and ss.get("studio_use") == "Enhanced"
    return GenerateRequest(
        prompt=ss.studio_prompt, tier=ss.studio_tier, negative_prompt=ss.studio_negative,
        enhanced_prompt=ss.get("studio_enh_text") if use_enhanced else None, aspect_ratio=ss.studio_aspect or "1:1",
        seed=int(ss.studio_seed) if ss.studio_seed_fixed else None, template_id=ss.studio_template,
        remixed_from_id=ss.studio_remixed_from,
        renderer=None if ss.studio_renderer == primary_renderer else ss.studio_renderer)


def ask_to_generate(request: GenerateRequest | None = None) -> None:
    from_form = request is None  # analytics: only the form's request says what became of an enhancement
    request = request or current_request()
    if not request.prompt.strip():
        ss.studio_notice = "Write a prompt first (or start from a template)."
        return
    # The request key is minted here, once per click, and kept until the request is confirmed or dropped:
    # a double click or a rerun reuses it, so it can never charge twice.
    ss.studio_pending = {"request": request, "key": new_request_key(), "from_form": from_form}


def clear_pending() -> None:
    ss.pop("studio_pending", None)


def enhance_now() -> None:
    if not ss.studio_prompt.strip():
        ss.studio_notice = "Write a prompt first, then enhance it."
        return
    hint = None
    if ss.studio_template is not None:
        hint = next((t.title + " " + t.style_notes for t in studio.catalog.templates(include_inactive=True)
                     if t.id == ss.studio_template), None)
    result = studio.prompts.enhance(ss.studio_prompt, template_hint=hint)
    track(Event.ENHANCE_REQUESTED, ok=result.ok, template_id=ss.studio_template, provider=studio.prompts.provider)
    ss.studio_enh_undecided = result.ok  # accepted / edited / rejected is tracked at the next confirm
    ss.studio_enh = result
    if result.ok:
        ss.studio_enh_text = result.enhancement.enhanced
        ss.studio_use = "Enhanced"


def track_confirmed(pending: dict, job) -> None:
    req = pending["request"]
    track(Event.GENERATE_CONFIRMED, job_id=job.id, tier=req.tier, cost=job.cost, template_id=req.template_id,
          enhanced=req.enhanced_prompt is not None)
    enh = ss.get("studio_enh")
    if pending.get("from_form") and enh is not None and enh.ok and ss.pop("studio_enh_undecided", False):
        if req.enhanced_prompt is None:
            track(Event.ENHANCE_REJECTED, job_id=job.id)
        else:
            track(Event.ENHANCE_ACCEPTED if req.enhanced_prompt == enh.enhancement.enhanced else Event.ENHANCE_EDITED,
                  job_id=job.id)


def use_suggested_negative() -> None:
    ss.studio_negative = ss.studio_enh.enhancement.negative_prompt


def use_renderer(name: str) -> None:
    ss.studio_renderer = name


# -- header ---------------------------------------------------------------------------------------------------
# The job shown on the right is read before the provider's health: a job that ends in between is then either
# still running here (its progress fragment reruns the page when it ends) or already counted in the health.
job_id = ss.get("studio_job")
job = None
if job_id is not None:
    try:
        job = studio.generation.get(user.id, job_id)
    except GenerationError:
        ss.pop("studio_job", None)
balance = studio.ledger.balance(user.id)
health = studio.generation.provider_health()
st.title("Studio")
st.caption(f"Enhancer: {'offline rules' if studio.prompts.provider == 'local' else studio.prompts.provider} · "
           f"Images: {provider_label(ss.studio_renderer)} · "
           f"{balance.available} credits available")

create, output = st.columns([3, 2], gap="large")

# -- the prompt -----------------------------------------------------------------------------------------------
with create:
    remix_banner(studio, user.id)
    if notice := ss.pop("studio_notice", None):
        st.warning(notice, icon=":material/info:")
    with st.expander("Start from a template", icon=":material/auto_awesome:",
                     expanded=not ss.studio_prompt):
        categories = studio.catalog.categories()
        if not categories:
            empty_state("No templates yet", "An admin can add templates in the catalog.")
        else:
            cat_col, tpl_col = st.columns(2)
            keep_choice("studio_category", categories, ident=attrgetter("id"))
            category = cat_col.selectbox("Category", categories, format_func=lambda c: c.name,
                                         key="studio_category")
            templates = studio.catalog.templates(category.id)
            keep_choice("studio_template_pick", templates, ident=attrgetter("id"))
            template = tpl_col.selectbox("Template", templates, format_func=lambda t: t.title,
                                         key="studio_template_pick") if templates else None
            if template is not None:
                st.caption(template.style_notes)
                st.text_input("Subject", key="studio_subject", placeholder="a red fox in the snow",
                                        help="Fills the template's {subject} slot.")
                st.button("Use this template", on_click=use_template, args=(template,), key="studio_use_template",
                          icon=":material/edit_note:")

    st.text_area("Prompt", key="studio_prompt", max_chars=settings.prompt_max_chars, height=110,
                 placeholder="Describe the image: subject, setting, style…")
    st.text_area("Negative prompt (what to avoid)", key="studio_negative", max_chars=settings.prompt_max_chars,
                 height=68, placeholder="blurry, text, watermark")
    st.radio("Aspect ratio", list(ASPECT_RATIOS), key="studio_aspect", horizontal=True)
    seed_toggle, seed_value = st.columns(2)
    with seed_toggle:
        fixed = st.toggle("Fixed seed", key="studio_seed_fixed",
                          help="The same prompt, seed and size give the same image. Off: a random seed "
                               "(always recorded with the image).")
    if fixed:
        with seed_value:
            st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="studio_seed")

    # -- enhancement ------------------------------------------------------------------------------------------
    st.button("Enhance prompt", on_click=enhance_now, icon=":material/magic_button:", key="studio_enhance",
              help="Adds style, lighting, composition and detail; you can edit the result.")
    enh = ss.get("studio_enh")
    if enh is not None and not enh.ok:
        st.warning(enh.error, icon=":material/info:")
    elif enh is not None:
        with st.container(border=True):
            mine, theirs = st.columns(2)
            mine.caption("Your prompt")
            mine.text(enh.original)
            theirs.caption(f"Enhanced ({'offline rules' if enh.enhancement.provider == 'local' else 'Gemini'})"
                           " — edit freely")
            theirs.text_area("Enhanced prompt", key="studio_enh_text", height=120,
                             max_chars=settings.prompt_max_chars, label_visibility="collapsed")
            if enh.enhancement.added:
                st.caption("Added to your prompt")
                st.text("\n".join(f"+ {phrase}" for phrase in enh.enhancement.added))
            use_col, neg_col = st.columns(2)
            use_col.radio("Generate from", ["Enhanced", "My original"], key="studio_use", horizontal=True)
            if enh.enhancement.negative_prompt:
                neg_col.button("Use suggested negative prompt", on_click=use_suggested_negative)

    # -- renderer: the offline one stands in while the configured one is down -----------------------------------
    if health.fallback and (health.outage or ss.studio_renderer != primary_renderer):
        if health.outage and ss.studio_renderer == primary_renderer:
            provider_down_notice(health, on_switch=use_renderer, args=(health.fallback,))
        st.radio("Renderer", studio.generation.renderers, key="studio_renderer", format_func=provider_label,
                 horizontal=True, help="The offline renderer draws a procedural preview from your prompt on this "
                                       "server (not AI), so you can keep working while the image service is down.")

    # -- tier and generate ------------------------------------------------------------------------------------
    st.header("Quality")
    chosen = tier_cards(settings.tiers, ss.studio_tier, balance.available, key="tier")
    if chosen != ss.studio_tier:
        track(Event.TIER_SELECTED, tier=chosen, previous=ss.studio_tier)
        ss.studio_tier = chosen
        st.rerun()
    cost = settings.tiers[ss.studio_tier].credits
    can_afford = cost <= balance.available
    if not can_afford:
        st.warning(f"This tier costs {cost} credits and you have {balance.available}. Choose a cheaper tier or "
                   "buy a credit pack in your Wallet.", icon=":material/account_balance_wallet:")
        st.page_link("app_pages/wallet.py", label="Buy credits in your Wallet", icon=":material/shopping_cart:")
    st.button(f"Generate · {cost} credit{'s' if cost != 1 else ''}", type="primary", icon=":material/brush:",
              disabled=not can_afford, on_click=ask_to_generate, width="stretch", key="studio_generate")


# -- confirm dialog (opened from session state, so it survives reruns) -----------------------------------------
@st.dialog("Confirm generation", on_dismiss=clear_pending)
def confirm(pending: dict) -> None:
    req = pending["request"]
    tier = settings.tiers[req.tier]
    st.text((req.enhanced_prompt or req.prompt)[:300])
    st.caption(f"{tier.label} · {req.aspect_ratio} · "
               f"{'seed ' + str(req.seed) if req.seed is not None else 'random seed'} · "
               f"{provider_label(req.renderer or primary_renderer)}")
    st.metric("Cost", f"{tier.credits} credit{'s' if tier.credits != 1 else ''}",
              delta=f"{balance.available - tier.credits} left after", delta_color="off")
    st.caption("You are charged only if the image is delivered. A failed or canceled generation costs nothing.")
    ok_col, cancel_col = st.columns(2)
    if ok_col.button("Confirm", type="primary", key="studio_confirm", width="stretch"):
        try:
            job = studio.generation.submit(user.id, req, pending["key"])
        except InsufficientCredits as exc:
            st.error(str(exc))
        except (GenerationError, IdempotencyConflict) as exc:
            st.error(str(exc))
        else:
            track_confirmed(pending, job)
            ss.studio_job = job.id
            clear_pending()
            st.rerun()
    if cancel_col.button("Not now", key="studio_not_now", width="stretch"):
        clear_pending()
        st.rerun()


if ss.get("studio_pending"):
    confirm(ss.studio_pending)


# -- output: progress, result, recent ------------------------------------------------------------------------
@st.fragment(run_every=1.0)
def watch(job_id: int) -> None:
    job = studio.generation.get(user.id, job_id)
    if not job.is_active:
        st.rerun(scope="app")  # finished: the page redraws with the result and stops polling
    job_progress(job, on_cancel=lambda: studio.generation.cancel(user.id, job_id), now=datetime.now(UTC))


with output:
    if job is None:
        empty_state("Your image appears here", "Write a prompt or pick a template, choose a quality and press "
                    "Generate.", icon=":material/image:")
    elif job.is_active:
        with st.container(border=True):
            st.text(job.final_prompt[:200])
            watch(job.id)
    else:
        with st.container(border=True):
            job_image(job, studio.generation.image_url(job))
            if job.status == "succeeded":
                # the file is read when the button is clicked, not on every run of the page
                st.download_button("Download PNG", functools.partial(studio.generation.image_bytes, user.id, job.id),
                                   file_name=f"studio-{job.id}-seed{job.seed}.png", mime="image/png",
                                   icon=":material/download:", key="studio_download",
                                   on_click=track, args=(Event.DOWNLOAD,), kwargs={"job_id": job.id})
            if job.failed_for_outage and health.fallback and job.provider != health.fallback:
                st.button("Render an offline preview instead", key="studio_offline_retry",
                          icon=":material/offline_bolt:", on_click=ask_to_generate,
                          args=(job.as_request(same_seed=True, renderer=health.fallback),),
                          width="stretch",
                          help="The same recipe on the offline renderer: a procedural preview (not AI), "
                               "made on this server while the image service is down.")
            retry_col, vary_col = st.columns(2)
            retry_col.button("Retry", key="studio_retry", icon=":material/refresh:", on_click=ask_to_generate,
                             args=(job.as_request(same_seed=True),), width="stretch",
                             help="The same recipe and seed, as a new request.")
            vary_col.button("Vary seed", key="studio_vary", icon=":material/casino:", on_click=ask_to_generate,
                            args=(job.as_request(same_seed=False),), width="stretch",
                            help="The same recipe with a new random seed.")
            st.button("Edit recipe", key="studio_remix", icon=":material/tune:", on_click=load_recipe,
                      args=(job,), kwargs={"same_seed": True}, width="stretch",
                      help="Load this image's prompt, settings and seed into the form.")
            if job.status == "succeeded" and st.button(
                    "Publish to the community…", key="studio_publish", icon=":material/public:",
                    width="stretch", help="Opens the image in My Creations, where you title and share it."):
                ss.gallery_open = job.id  # My Creations opens this image's page, with its Publish form
                st.switch_page("app_pages/gallery.py")
            if job.status == "succeeded" and job.enhanced_prompt and job.enhanced_prompt != job.prompt:
                # Prompt Lab: the original prompt at this seed, tier and size, next to this (reused) image.
                compare_cost = settings.tiers[job.tier].credits if job.tier in settings.tiers else 0
                if st.button(f"Compare with the original prompt · {compare_cost} credit"
                             f"{'s' if compare_cost != 1 else ''}", key="studio_compare",
                             icon=":material/compare:", width="stretch",
                             help="Generates your original prompt with the same seed, tier and size, and opens "
                                  "both side by side in the Prompt Lab."):
                    try:
                        experiment = studio.experiments.compare_original(user.id, job.id)
                    except (ExperimentError, GenerationError) as exc:
                        st.error(str(exc), icon=":material/error:")
                    else:
                        st.switch_page("app_pages/prompt_lab.py", query_params={"experiment": str(experiment.id)})
        # drawn only while open: a recipe is two dozen elements
        lazy_expander("Recipe", "studio_recipe_open", lambda: recipe_card(job), icon=":material/receipt_long:")

    recent = [j for j in studio.generation.recent(user.id, limit=7) if j.id != job_id][:6]
    if recent:
        st.caption("Recent")
        cols = st.columns(3)
        for i, r in enumerate(recent):
            with cols[i % 3]:
                picture(studio.generation.thumbnail_url(r), f"Thumbnail: {r.final_prompt[:80]}",
                        missing=STATUS_LABEL.get(r.status, r.status))
                if st.button("Open", key=f"open_{r.id}", width="stretch"):
                    ss.studio_job = r.id
                    st.rerun()
