"""Admin · Analytics: usage, money, failures, latency, templates and community for a date range, at a glance.

Every figure comes aggregated from the database (AnalyticsService.dashboard); this page only draws it. Each
chart has a title, labelled axes and a CSV download of exactly the data it shows.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from studio_core.services.accounts import AccessDenied
from studio_core.services.analytics import Dashboard, InvalidPeriod, Kpi, Period, Table
from studio_core.ui.charts import kept_figure
from studio_core.ui.session import get_studio, require_admin
from studio_core.ui.widgets import empty_state, error_state, lazy_tabs, table

admin = require_admin()
studio = get_studio()
today = studio.analytics.today()

PRESETS = {"Last 7 days": 7, "Last 30 days": 30, "Last 90 days": 90, "Last 12 months": 365, "Custom range": None}
GRANULARITY_LABELS = {"day": "Day", "week": "Week", "month": "Month"}
CHART_HEIGHT = 330
STATUS_COLOURS = {"succeeded": "#2e9d6a", "failed": "#d64545", "canceled": "#9aa0a6", "running": "#f0a202",
                  "queued": "#5b8def"}

st.title("Analytics")
st.caption("All dates are UTC. Each headline figure is compared with the period of the same length just before.")

# -- the range ------------------------------------------------------------------------------------------------
range_col, dates_col, grain_col = st.columns([1.1, 1.6, 1.3], vertical_alignment="bottom")
def _preset_changed() -> None:
    # A year reads best by month, anything shorter by day; the admin can still pick another granularity.
    st.session_state.analytics_granularity = "month" if PRESETS[st.session_state.analytics_preset] == 365 else "day"


st.session_state.setdefault("analytics_granularity", "day")
preset = range_col.selectbox("Range", list(PRESETS), index=1, key="analytics_preset", on_change=_preset_changed)
days = PRESETS[preset]
if days is None:
    picked = dates_col.date_input("From – to (inclusive)", value=(today - timedelta(days=29), today),
                                  max_value=today, key="analytics_dates", format="YYYY-MM-DD")
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick the last day of the range too.", icon=":material/date_range:")
        st.stop()
    start, end = picked
else:
    start, end = today - timedelta(days=days - 1), today
    dates_col.caption(f"{start:%d %b %Y} – {end:%d %b %Y}")
granularity = grain_col.segmented_control("Granularity", list(GRANULARITY_LABELS), format_func=GRANULARITY_LABELS.get,
                                         key="analytics_granularity", required=True)

try:
    period = Period(start, end, granularity)
except InvalidPeriod as exc:
    st.warning(str(exc), icon=":material/date_range:")
    st.stop()

try:
    with st.spinner("Adding up the numbers…"):
        board: Dashboard = studio.analytics.dashboard(admin, period,
                                                      fresh=st.session_state.pop("analytics_fresh", False))
except AccessDenied as exc:
    st.error(str(exc), icon=":material/lock:")
    st.stop()
except Exception as exc:  # noqa: BLE001 - any database trouble: say so, keep the rest of the app usable
    error_state("The analytics could not be loaded. Try a shorter range, or again in a moment.",
                detail=f"{type(exc).__name__}: {exc}")
    st.stop()

GRAIN = GRANULARITY_LABELS[granularity].lower()
with st.container(horizontal=True, vertical_alignment="center"):
    # a range that ends today ends every chart with a part of a day, which reads as a sudden drop unless said
    st.caption(f"Figures as of {board.as_of:%H:%M:%S} UTC"
               + (f", so {end:%d %b} is counted only so far" if end == today else "")
               + f"; added up again at most every {studio.settings.analytics_cache_s} s.")
    st.button("Refresh", key="analytics_refresh", icon=":material/refresh:", type="tertiary",
              on_click=st.session_state.__setitem__, args=("analytics_fresh", True))


# -- helpers --------------------------------------------------------------------------------------------------
def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "percent":
        return f"{value:.1%}"
    if unit == "money":  # the currency is in the label
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _delta(k: Kpi) -> str | None:
    if k.change is None:
        return None
    if k.unit == "percent":
        return f"{k.change * 100:+.1f} pp"
    return f"{k.change:+.0%}"


def _safe(text: object) -> str:
    """Names typed by people (templates, categories) as plain text in a chart: plotly would render tags."""
    return html.escape(str(text), quote=False)


def _csv(df: pd.DataFrame) -> str:
    """CSV whose text cells cannot turn into spreadsheet formulas."""
    def cell(value):
        if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
            return "'" + value
        return value

    return df.map(cell).to_csv(index=False)


BUCKET_DAYS = {"day": 1, "week": 7, "month": 30}


def _over_the_period(fig: go.Figure) -> go.Figure:
    """A time axis that spans the whole period, bars a bucket wide: with one busy day the chart still reads as
    a month with one bar, not one bar across the card under sub-second ticks."""
    half = timedelta(days=BUCKET_DAYS[granularity] / 2)
    buckets = period.buckets()
    first, last = (datetime.combine(day, datetime.min.time()) for day in (buckets[0], buckets[-1]))
    fig.update_xaxes(range=[first - half, last + half])
    return fig.update_traces(width=BUCKET_DAYS[granularity] * 0.8 * 86_400_000, selector={"type": "bar"})


def chart(key: str, title: str, table: Table, draw: Callable[[pd.DataFrame], go.Figure], *,
          empty: str, x_label: str, y_label: str, caption: str | None = None, depends: tuple = (),
          over_time: bool = False) -> None:
    """One card: the chart (titled, axes labelled) and its data as CSV, or an empty state. ``depends``: what
    ``draw`` reads besides its table (the figure is drawn again only when the table, a label or that changes).
    ``over_time``: the x axis is the period's buckets."""
    with st.container(border=True):
        if table.empty:
            st.markdown(f"**{title}**")
            st.caption(empty)
            return

        def drawn() -> go.Figure:
            fig = draw(pd.DataFrame(table.records()))
            if over_time:
                _over_the_period(fig)
            return fig.update_layout(title={"text": title, "x": 0, "xanchor": "left"}, height=CHART_HEIGHT,
                                     margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend_title_text="",
                                     xaxis_title=x_label, yaxis_title=y_label)

        fig = kept_figure((key, title, x_label, y_label, table, depends, over_time and period), drawn)
        st.plotly_chart(fig, key=f"chart_{key}", config={"displaylogo": False}, alt=f"Chart: {title}")
        if caption:
            st.caption(caption)
        # The CSV is made on the click (a callable), not on every run for every chart.
        st.download_button("Download CSV", lambda: _csv(pd.DataFrame(table.records())),
                           file_name=f"{key}-{period.start}-{period.end}.csv", mime="text/csv", key=f"csv_{key}",
                           icon=":material/download:", on_click="ignore")


def two(*cards: Callable[[], None]) -> None:
    """Two cards side by side, in one layout block (columns would add one per column)."""
    with st.container(horizontal=True):
        for card in cards:
            card()


# -- headline figures -------------------------------------------------------------------------------------------
with st.container(horizontal=True):
    for k in board.kpis:
        st.metric(k.label, _number(k.value, k.unit), delta=_delta(k), help=k.help, border=True,
                  chart_data=list(k.trend) if len(k.trend) > 1 and any(k.trend) else None, chart_type="area")

if not board.has_activity:
    empty_state("No activity in this range",
                f"Nothing happened between {period.start:%d %b %Y} and {period.end:%d %b %Y}. Choose a longer range "
                "or an earlier one.", icon=":material/query_stats:")
    st.stop()

# -- usage ----------------------------------------------------------------------------------------------------


def active_users_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        fig = go.Figure()
        if granularity != "day":
            daily = pd.DataFrame(board.daily_active_users.records())
            fig.add_scatter(x=daily["day"], y=daily["active_users"], name="Daily active", mode="lines",
                            line={"width": 1, "color": "#9aa0a6"})
        fig.add_scatter(x=df["bucket"], y=df["active_users"], mode="lines+markers",
                        name=f"{GRANULARITY_LABELS[granularity]}ly active".replace("Dayly", "Daily"))
        return fig

    chart("active_users", f"Active users per {GRAIN}", board.active_users, draw,
          empty="No signed-in activity in this range.", x_label=GRANULARITY_LABELS[granularity], y_label="Users",
          caption="People with any tracked activity; a week or month counts each person once.",
          depends=(granularity, board.daily_active_users if granularity != "day" else None), over_time=True)


def generations_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        by_status = df.groupby(["bucket", "status"], as_index=False)["generations"].sum()
        return px.bar(by_status, x="bucket", y="generations", color="status",
                      color_discrete_map=STATUS_COLOURS)

    chart("generations_by_status", f"Generations per {GRAIN}, by status", board.generations, draw,
          empty="No images were requested in this range.", x_label=GRANULARITY_LABELS[granularity],
          y_label="Generations", over_time=True)


def tiers_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        by_tier = df.groupby(["bucket", "tier"], as_index=False)["generations"].sum()
        return px.bar(by_tier, x="bucket", y="generations", color="tier",
                      color_discrete_sequence=px.colors.qualitative.Safe)

    chart("generations_by_tier", f"Generations per {GRAIN}, by quality tier", board.generations, draw,
          empty="No images were requested in this range.", x_label=GRANULARITY_LABELS[granularity],
          y_label="Generations", over_time=True)


def funnel_chart() -> None:
    choices = ", ".join(f"{n:,} {label}" for label, n in board.enhancement_choices.rows)
    chart("enhancement_funnel", "Enhancement funnel", board.funnel,
          lambda df: px.funnel(df, x="count", y="stage"), empty="Nobody enhanced a prompt in this range.",
          x_label="Count", y_label="Stage",
          caption=f"What people did with an enhancement: {choices}." if choices else None)


def usage_section() -> None:
    two(active_users_chart, funnel_chart)
    two(generations_chart, tiers_chart)


# -- reliability ----------------------------------------------------------------------------------------------


def failure_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        fig = px.line(df, x="bucket", y="failure_rate", markers=True, hover_data=["finished", "failed"])
        fig.update_yaxes(tickformat=".0%", rangemode="tozero")
        return fig

    chart("failure_rate", f"Failure rate per {GRAIN}", board.failure_rate, draw,
          empty="No generation finished in this range.", x_label=GRANULARITY_LABELS[granularity],
          y_label="Failed ÷ finished", caption="Canceled generations are neither successes nor failures.", over_time=True)


def errors_chart() -> None:
    chart("error_codes", "Top error codes", board.error_codes,
          lambda df: px.bar(df, x="failures", y="error_code", orientation="h")
          .update_yaxes(categoryorder="total ascending"),  # the most frequent on top
          empty="No failures in this range.", x_label="Failures", y_label="Error code")


def latency_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        df = df.assign(group=df["provider"].map(_safe) + " · " + df["tier"].map(_safe))
        long = df.melt(id_vars=["group", "generations"], value_vars=["p50_seconds", "p95_seconds"],
                       var_name="percentile", value_name="seconds")
        long["percentile"] = long["percentile"].map({"p50_seconds": "p50 (median)", "p95_seconds": "p95"})
        return px.bar(long, x="group", y="seconds", color="percentile", barmode="group",
                      hover_data=["generations"])

    chart("latency", "Generation latency by provider and tier", board.latency, draw,
          empty="No image was delivered in this range.", x_label="Provider · tier", y_label="Seconds",
          caption="From the click on Confirm to the finished image, successful generations only.")


def reliability_section() -> None:
    two(failure_chart, errors_chart)
    latency_chart()


# -- money ----------------------------------------------------------------------------------------------------


OUTFLOWS = ("spent", "expired")


def credits_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        # Money in above zero, money out below it: one glance shows what came in and where it went.
        signed = df.assign(credits=df["credits"].where(~df["flow"].isin(OUTFLOWS), -df["credits"]))
        return px.bar(signed, x="bucket", y="credits", color="flow", barmode="relative",
                      color_discrete_sequence=px.colors.qualitative.Safe)

    chart("credits", f"Credits per {GRAIN}: granted, purchased, spent, refunded", board.credits, draw,
          empty="No credits moved in this range.", x_label=GRANULARITY_LABELS[granularity],
          y_label="Credits (out below zero)",
          caption="Granted: monthly allowance and bonuses. Spent: generation charges. Expired: unused allowance. "
                  "The CSV has every amount as a positive number.", over_time=True)


def revenue_chart() -> None:
    currency = next((k.currency for k in board.kpis if k.key == "revenue"), "")
    chart("revenue", f"Revenue per {GRAIN}, by credit pack", board.revenue,
          lambda df: px.bar(df, x="bucket", y="revenue", color="pack", hover_data=["purchases", "currency"]),
          empty="No credit packs were bought in this range.", x_label=GRANULARITY_LABELS[granularity],
          y_label=f"Revenue ({currency})", over_time=True)


def money_section() -> None:
    two(credits_chart, revenue_chart)


# -- templates ------------------------------------------------------------------------------------------------


def template_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        top = df.head(15).assign(template=lambda d: d["template"].map(_safe),
                                 category=lambda d: d["category"].map(_safe))
        fig = px.bar(top, x="uses", y="template", color="category", orientation="h",
                     hover_data=["success_rate", "publishes", "likes", "remixes"])
        return fig.update_yaxes(categoryorder="total ascending")  # the most used on top, whatever its category

    chart("templates", "Most used templates", board.templates, draw, empty="No template was used in this range.",
          x_label="Generations", y_label="Template")


def category_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        long = df.assign(category=df["category"].map(_safe)).melt(
            id_vars=["category"], value_vars=["uses", "publishes", "likes", "remixes"], var_name="measure",
            value_name="count")
        return px.bar(long, x="category", y="count", color="measure", barmode="group")

    chart("categories", "Categories: uses, publishes, likes, remixes", board.categories, draw,
          empty="No template was used in this range.", x_label="Category", y_label="Count")


def templates_section() -> None:
    two(template_chart, category_chart)
    if not board.templates.empty:
        table(board.templates.records(), board.templates.columns, hide_index=True, key="templates_table",
              column_config={"success_rate": st.column_config.NumberColumn("success rate", format="percent")})


# -- community ------------------------------------------------------------------------------------------------


def community_chart() -> None:
    def draw(df: pd.DataFrame) -> go.Figure:
        long = df.melt(id_vars=["bucket"], value_vars=["posts", "likes", "reports"], var_name="activity",
                       value_name="count")
        return px.line(long, x="bucket", y="count", color="activity", markers=True)

    chart("community", f"Posts, likes and reports per {GRAIN}", board.community, draw,
          empty="No community activity in this range.", x_label=GRANULARITY_LABELS[granularity], y_label="Count", over_time=True)


def moderation_chart() -> None:
    overall = board.moderation_overall.records()[0] if not board.moderation_overall.empty else None
    caption = None
    if overall:
        median = "—" if overall["p50_hours"] is None else f"{overall['p50_hours']:.1f} h"
        caption = (f"{overall['reports']:,} reports: {overall['resolved']:,} resolved (median {median}), "
                   f"{overall['open']:,} still open.")

    def draw(df: pd.DataFrame) -> go.Figure:
        long = df.melt(id_vars=["bucket", "resolved"], value_vars=["p50_hours", "p95_hours"],
                       var_name="percentile", value_name="hours")
        long["percentile"] = long["percentile"].map({"p50_hours": "p50 (median)", "p95_hours": "p95"})
        return px.line(long, x="bucket", y="hours", color="percentile", markers=True, hover_data=["resolved"])

    chart("moderation", "Time from report to moderation action", board.moderation, draw,
          empty=f"No report was resolved in this range. {caption or ''}".strip(),
          x_label=f"{GRANULARITY_LABELS[granularity]} "
          "reported", y_label="Hours", caption=caption, over_time=True)


def community_section() -> None:
    two(community_chart, moderation_chart)


# -- the sections ---------------------------------------------------------------------------------------------
# One tab at a time, each drawn only while open (on_change="rerun"): thirteen charts and a table on every click
# of the page would cost it several times the rest. The headline figures above stay on every tab.
lazy_tabs({"Usage": usage_section, "Reliability and speed": reliability_section,
           "Credits and revenue": money_section, "Templates and categories": templates_section,
           "Community": community_section}, key="analytics_tab")
