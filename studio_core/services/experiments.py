"""Prompt Lab: budgeted prompt experiments, compared side by side.

An experiment is a dynamicprompts template (``a {red|blue} {cat|dog}``, weights, ``__wildcards__`` from the
admin's folder) plus the axes it varies: prompt variants, raw vs enhanced, seeds and tiers. Before anything runs
the owner sees the plan and its quote (images, exact cost, balance after); a budget cap refuses or trims the
run before any credit moves.

Running freezes the plan into ``experiment_cells`` and sends every cell through the normal generation pipeline
(``GenerationService.submit``): one ledger hold per image, so a failed image voids exactly its own hold. Each
cell's request key is derived from the experiment id and its grid slot, so a rerun, a double click or a second
replica advancing the same experiment never charges twice. Cells wait for a free slot under the per-user
generation limits; ``advance`` submits what fits, called by a small background driver and on page polls.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dynamicprompts.generators import CombinatorialPromptGenerator
from dynamicprompts.wildcards import WildcardManager
from pyparsing import ParseBaseException
from sqlalchemy import bindparam, delete, func, select, update

from studio_core.config import Settings
from studio_core.db import Database
from studio_core.models import (
    EXPERIMENT_AXES,
    PROMPT_VERSIONS,
    Experiment,
    ExperimentCell,
    ExperimentVote,
    GeneratedImage,
    User,
    utcnow,
)
from studio_core.services.accounts import AccessDenied
from studio_core.services.generation import (
    ACTIVE,
    ASPECT_RATIOS,
    MAX_SEED,
    GenerateRequest,
    GenerationError,
    GenerationService,
    JobNotFound,
    JobView,
    LimitReached,
    clean_text,
    size_for,
)
from studio_core.services.generation import _view as _job_view  # one JobView builder for the whole app
from studio_core.services.generation import _with_template as _jobs_with_template
from studio_core.services.ledger import IdempotencyConflict, InsufficientCredits, LedgerService
from studio_core.services.prompts import PromptService

log = logging.getLogger(__name__)

MAX_VARIANTS = 16
MAX_SEEDS = 8
MAX_CELLS = 48
TITLE_MAX = 120
AXIS_LABELS = {"prompt": "Prompt variants", "version": "Raw vs enhanced", "tier": "Quality tiers",
               "seed": "Seeds"}
VERSION_LABELS = {"raw": "Your prompt", "enhanced": "Enhanced"}
_WILDCARD_RE = re.compile(r"__([^\s_][^\s]*?)__")


class ExperimentError(Exception):
    """The experiment cannot be planned or run as asked; ``str(err)`` is for the user. Nothing was charged."""


class BudgetExceeded(ExperimentError):
    pass


class ExperimentNotFound(ExperimentError, LookupError):
    pass


# -- plain data the page renders ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ExperimentSpec:
    template: str
    versions: tuple[str, ...] = ("raw",)
    seeds: tuple[int, ...] = (42,)
    tiers: tuple[str, ...] = ("standard",)
    negative_prompt: str = ""
    aspect_ratio: str = "1:1"
    column_axis: str = "prompt"  # the axis across columns; the other varied axes make the rows
    budget_cap: int | None = None
    over_budget: str = "refuse"  # or "trim": drop whole rows from the end until the run fits the cap
    literal: bool = False  # the template is one prompt as written (from the studio): no variant syntax
    title: str = ""


@dataclass(frozen=True)
class PlannedCell:
    row: int
    col: int
    row_label: str
    col_label: str
    prompt: str
    version: str
    seed: int
    tier: str
    cost: int
    reuse_image_id: int | None = None  # an image that already is this cell (the studio's result): free


@dataclass(frozen=True)
class Plan:
    variants: tuple[str, ...]
    column_axis: str
    row_axes: tuple[str, ...]
    col_labels: tuple[str, ...]
    row_labels: tuple[str, ...]
    cells: tuple[PlannedCell, ...]

    @property
    def rows(self) -> int:
        return len(self.row_labels)

    @property
    def cols(self) -> int:
        return len(self.col_labels)

    def row_cost(self, row: int) -> int:
        return sum(c.cost for c in self.cells if c.row == row)


@dataclass(frozen=True)
class Quote:
    """What a run would do, before it does it. ``problem`` set = the run would be refused."""

    rows: int  # after trimming
    cols: int
    images: int  # new images to generate (reused cells are free and not counted)
    reused: int
    total: int  # exact credits the run reserves, image by image
    planned_rows: int
    planned_total: int
    available: int
    budget_cap: int | None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def trimmed(self) -> bool:
        return self.rows < self.planned_rows

    @property
    def balance_after(self) -> int:
        return self.available - self.total


@dataclass(frozen=True)
class Preview:
    plan: Plan | None
    quote: Quote | None
    problem: str | None = None  # the template or settings cannot be planned


@dataclass(frozen=True)
class CellView:
    id: int
    row: int
    col: int
    row_label: str
    col_label: str
    prompt: str
    enhanced_prompt: str | None
    version: str
    seed: int
    tier: str
    cost: int
    status: str  # waiting / submitted / reused / skipped
    note: str | None
    job: JobView | None
    votes: int

    @property
    def state(self) -> str:
        """What a person sees: waiting, queued, running, succeeded, failed, canceled or skipped."""
        if self.job is not None:
            return self.job.status
        return self.status

    @property
    def is_active(self) -> bool:
        return self.status == "waiting" or (self.job is not None and self.job.is_active)

    @property
    def succeeded(self) -> bool:
        return self.job is not None and self.job.status == "succeeded"


@dataclass(frozen=True)
class ExperimentView:
    id: int
    owner_id: int
    owner_name: str
    title: str
    spec: ExperimentSpec
    status: str  # draft / running / finished
    shared: bool
    quoted_cost: int
    source_image_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cells: tuple[CellView, ...] = ()
    my_vote: int | None = None  # the viewer's voted cell id
    viewer_is_owner: bool = False

    @property
    def col_labels(self) -> list[str]:
        return [c.col_label for c in sorted(self.cells, key=lambda c: c.col) if c.row == 0]

    @property
    def row_labels(self) -> list[str]:
        return [c.row_label for c in sorted(self.cells, key=lambda c: c.row) if c.col == 0]

    def cell(self, row: int, col: int) -> CellView | None:
        return next((c for c in self.cells if c.row == row and c.col == col), None)

    @property
    def is_active(self) -> bool:
        return any(c.is_active for c in self.cells)

    def count(self, *states: str) -> int:
        return sum(1 for c in self.cells if c.state in states)

    @property
    def charged(self) -> int:
        """Credits this run actually cost (reused images were paid for before)."""
        return sum(c.job.cost for c in self.cells if c.status == "submitted" and c.job and c.job.charged)

    @property
    def winner(self) -> CellView | None:
        """The cell with the most votes (the earliest in the grid on a tie); None before any vote."""
        voted = [c for c in self.cells if c.votes > 0]
        return max(voted, key=lambda c: (c.votes, -c.row, -c.col)) if voted else None


@dataclass(frozen=True)
class ExperimentSummary:
    id: int
    title: str
    status: str
    images: int
    succeeded: int
    charged: int
    votes: int
    created_at: datetime


@dataclass(frozen=True)
class WildcardView:
    name: str
    values: tuple[str, ...]


# -- the service --------------------------------------------------------------------------------------------
@dataclass
class _Driver:
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)


# The counts of some experiments (``ids``: the viewer's own), each walking only those experiments' rows.
_CELL_COUNTS = (select(ExperimentCell.experiment_id.label("eid"), func.count().label("images"),
                       func.count(GeneratedImage.id).filter(GeneratedImage.status == "succeeded").label("succeeded"),
                       func.coalesce(func.sum(GeneratedImage.cost).filter(
                           GeneratedImage.status == "succeeded", ExperimentCell.status == "submitted"), 0)
                       .label("charged"))
                .outerjoin(GeneratedImage, GeneratedImage.id == ExperimentCell.image_id)
                .where(ExperimentCell.experiment_id.in_(bindparam("ids", expanding=True)))
                .group_by(ExperimentCell.experiment_id))
_VOTE_COUNTS = (select(ExperimentVote.experiment_id, func.count())
                .where(ExperimentVote.experiment_id.in_(bindparam("ids", expanding=True)))
                .group_by(ExperimentVote.experiment_id))


class ExperimentService:
    def __init__(self, db: Database, settings: Settings, generation: GenerationService, prompts: PromptService,
                 ledger: LedgerService, *, wildcards_dir: Path | None = None,
                 driver_interval_s: float | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.settings = settings
        self.generation = generation
        self.prompts = prompts
        self.ledger = ledger
        self.wildcards_dir = wildcards_dir or settings.data_dir / "wildcards"
        # None: no background thread (tests drive ``advance`` themselves).
        self.driver_interval_s = driver_interval_s
        self.clock = clock
        self._driver = _Driver()

    # -- expansion ----------------------------------------------------------------------------------------------
    def _wildcard_manager(self) -> WildcardManager:
        # A fresh manager per call: the admin edits files while the app runs, and the folder is small.
        return WildcardManager(self.wildcards_dir if self.wildcards_dir.is_dir() else None)

    def wildcards(self) -> list[WildcardView]:
        manager = self._wildcard_manager()
        return [WildcardView(name, tuple(manager.get_values(name)))
                for name in sorted(manager.get_collection_names())]

    def expand(self, template: str, *, literal: bool = False) -> list[str]:
        """The distinct prompts a template makes, in the combinatorial generator's order."""
        if literal:
            prompt = clean_text(template)
            if not prompt:
                raise ExperimentError("Write a prompt template first.")
            return [prompt]
        if not clean_text(template):
            raise ExperimentError("Write a prompt template first, e.g. “a {red|blue} fox in the snow”.")
        manager = self._wildcard_manager()
        missing = sorted({name for name in _WILDCARD_RE.findall(template) if not manager.get_values(name)})
        if missing:
            known = ", ".join(f"__{n}__" for n in sorted(manager.get_collection_names())) or "none yet"
            raise ExperimentError(f"Unknown wildcard {', '.join(f'__{n}__' for n in missing)} "
                                  f"(available: {known}).")
        try:
            raw = CombinatorialPromptGenerator(manager).generate(template, max_prompts=MAX_VARIANTS + 1)
        except (ParseBaseException, ValueError) as exc:
            column = getattr(exc, "col", None)
            where = f" near character {column}" if column else ""
            raise ExperimentError(f"The template has a syntax error{where}: check that every “{{” has a "
                                  "matching “}” and options are separated by “|”.") from None
        variants = list(dict.fromkeys(p for p in (clean_text(r) for r in raw) if p))
        if not variants:
            raise ExperimentError("The template makes no prompt; write some words outside the braces.")
        if len(variants) > MAX_VARIANTS:
            raise ExperimentError(f"The template makes more than {MAX_VARIANTS} prompts; the lab compares at "
                                  f"most {MAX_VARIANTS}. Use fewer options.")
        return variants

    # -- planning and quoting -----------------------------------------------------------------------------------
    def _axis_values(self, spec: ExperimentSpec) -> dict[str, tuple]:
        variants = tuple(self.expand(spec.template, literal=spec.literal))
        for variant in variants:
            try:
                self.generation.moderate(variant)
            except GenerationError as exc:
                # Name the variant only among several (the page escapes it; the studio shows this as is).
                raise ExperimentError(f"Prompt “{variant[:80]}”: {exc}" if len(variants) > 1 else str(exc)) \
                    from None
        versions = tuple(v for v in PROMPT_VERSIONS if v in spec.versions)
        if not versions:
            raise ExperimentError("Choose at least one prompt version: your prompt, enhanced, or both.")
        seeds = tuple(dict.fromkeys(spec.seeds))
        if not seeds:
            raise ExperimentError("Give at least one seed.")
        if len(seeds) > MAX_SEEDS:
            raise ExperimentError(f"At most {MAX_SEEDS} seeds per experiment.")
        if any(not 0 <= s <= MAX_SEED for s in seeds):
            raise ExperimentError(f"Seeds are whole numbers from 0 to {MAX_SEED}.")
        unknown = [t for t in spec.tiers if t not in self.settings.tiers]
        if unknown:
            raise ExperimentError(f"Unknown quality tier {unknown[0]!r}.")
        tiers = tuple(t for t in self.settings.tiers if t in spec.tiers)
        if not tiers:
            raise ExperimentError("Choose at least one quality tier.")
        if spec.aspect_ratio not in ASPECT_RATIOS:
            raise ExperimentError(f"Unknown aspect ratio {spec.aspect_ratio!r}.")
        if spec.budget_cap is not None and spec.budget_cap <= 0:
            raise ExperimentError("A budget cap is a positive number of credits (or no cap).")
        return {"prompt": variants, "version": versions, "tier": tiers, "seed": seeds}

    def _label(self, axis: str, value) -> str:
        if axis == "version":
            return VERSION_LABELS[value]
        if axis == "tier":
            return self.settings.tiers[value].label
        if axis == "seed":
            return f"seed {value}"
        return str(value)

    def plan(self, spec: ExperimentSpec, *, source: JobView | None = None) -> Plan:
        """The grid: columns by ``spec.column_axis`` (when it varies), rows by every other varied axis. A row
        keeps one seed unless seeds are the compared axis, so only the varied factor changes along it."""
        values = self._axis_values(spec)
        varied = [a for a in EXPERIMENT_AXES if len(values[a]) > 1]
        column_axis = spec.column_axis if spec.column_axis in varied else (varied[0] if varied else "prompt")
        row_axes = tuple(a for a in EXPERIMENT_AXES if a in varied and a != column_axis)
        rows = list(itertools.product(*(values[a] for a in row_axes)))
        cells = []
        for r, row_values in enumerate(rows):
            parts = [self._label(a, v) for a, v in zip(row_axes, row_values, strict=True)]
            if column_axis != "seed" and "seed" not in row_axes:
                parts.append(self._label("seed", values["seed"][0]))  # the row's one seed, said out loud
            row_label = " · ".join(parts)
            for c, col_value in enumerate(values[column_axis]):
                pick = {a: values[a][0] for a in EXPERIMENT_AXES} | dict(zip(row_axes, row_values, strict=True))
                pick[column_axis] = col_value
                reuse = None
                if source is not None and source.status == "succeeded" and pick["version"] == "enhanced" \
                        and (pick["prompt"], pick["seed"], pick["tier"]) == (source.prompt, source.seed,
                                                                            source.tier):
                    reuse = source.id
                cost = 0 if reuse else self.settings.tiers[pick["tier"]].credits
                cells.append(PlannedCell(r, c, row_label, self._label(column_axis, col_value), pick["prompt"],
                                         pick["version"], pick["seed"], pick["tier"], cost, reuse))
        if len(cells) > MAX_CELLS:
            raise ExperimentError(f"That grid has {len(cells)} images; the lab runs at most {MAX_CELLS}. "
                                  "Vary fewer things.")
        return Plan(values["prompt"], column_axis, row_axes,
                    tuple(self._label(column_axis, v) for v in values[column_axis]),
                    tuple(dict.fromkeys(c.row_label for c in cells)), tuple(cells))

    def quote(self, user_id: int, plan: Plan, spec: ExperimentSpec) -> Quote:
        """The exact credits the run reserves and what is left after; trimming drops whole rows from the end
        (a half row would compare nothing)."""
        available = self.ledger.balance(user_id).available
        planned_total = sum(c.cost for c in plan.cells)
        rows, total, problem = plan.rows, planned_total, None
        cap = spec.budget_cap
        if cap is not None and planned_total > cap:
            if spec.over_budget == "trim":
                rows, total = 0, 0
                while rows < plan.rows and total + plan.row_cost(rows) <= cap:
                    total += plan.row_cost(rows)
                    rows += 1
                if rows == 0:
                    problem = (f"Not even one row ({plan.row_cost(0)} credits) fits under your cap of {cap} "
                               "credits.")
            else:
                problem = (f"This run costs {planned_total} credits, over your cap of {cap}. Raise the cap, vary "
                           "fewer things, or let the lab trim rows to fit.")
        if problem is None and total > available:
            problem = (f"This run costs {total} credits and you have {available}. Set a budget cap of "
                       f"{available} and trim rows to fit, or buy credits in your Wallet.") if available > 0 \
                else f"This run costs {total} credits and you have none left."
        kept = [c for c in plan.cells if c.row < rows] if problem is None else list(plan.cells)
        return Quote(rows=rows if problem is None else plan.rows, cols=plan.cols,
                     images=sum(1 for c in kept if c.reuse_image_id is None),
                     reused=sum(1 for c in kept if c.reuse_image_id is not None),
                     total=total if problem is None else planned_total, planned_rows=plan.rows,
                     planned_total=planned_total, available=available, budget_cap=cap, problem=problem)

    def preview(self, user_id: int, spec: ExperimentSpec) -> Preview:
        """Plan + quote for the editor; a template or settings problem comes back as words, not an error."""
        try:
            plan = self.plan(spec)
        except ExperimentError as exc:
            return Preview(None, None, str(exc))
        return Preview(plan, self.quote(user_id, plan, spec))

    def preview_saved(self, user_id: int, experiment_id: int) -> Preview:
        view = self.get(user_id, experiment_id)
        try:
            plan = self.plan(view.spec, source=self._source(view.owner_id, view.source_image_id))
        except ExperimentError as exc:
            return Preview(None, None, str(exc))
        return Preview(plan, self.quote(user_id, plan, view.spec))

    def _source(self, owner_id: int, image_id: int | None) -> JobView | None:
        if image_id is None:
            return None
        try:
            return self.generation.get(owner_id, image_id)
        except JobNotFound:
            return None

    # -- creating -----------------------------------------------------------------------------------------------
    def create(self, user_id: int, spec: ExperimentSpec, *, source_image_id: int | None = None) -> ExperimentView:
        """Save an experiment as a draft (nothing is charged until ``run``). Refuses a spec that cannot be
        planned, so a saved draft always has a plan."""
        self.plan(spec)
        with self.db.write() as s:
            experiment_id = self._insert(s, user_id, spec, source_image_id=source_image_id)
        return self.get(user_id, experiment_id)

    def _insert(self, s, user_id: int, spec: ExperimentSpec, *, source_image_id: int | None) -> int:
        template = clean_text(spec.template)
        title = clean_text(spec.title) or (template if len(template) <= 60 else template[:59] + "…")
        row = Experiment(owner_id=user_id, title=title[:TITLE_MAX], template=spec.template, literal=spec.literal,
                         negative_prompt=clean_text(spec.negative_prompt),
                         axes={"versions": list(spec.versions), "seeds": list(spec.seeds),
                               "tiers": list(spec.tiers)},
                         aspect_ratio=spec.aspect_ratio, column_axis=spec.column_axis, budget_cap=spec.budget_cap,
                         over_budget=spec.over_budget, source_image_id=source_image_id, created_at=self.clock())
        s.add(row)
        s.flush()
        return row.id

    def compare_original(self, user_id: int, image_id: int) -> ExperimentView:
        """The studio's one-click experiment: the user's original prompt next to the enhanced result, same seed,
        tier and size. The enhanced image already exists and is reused, so only the original costs anything.
        One such experiment per image: a second click opens (and never re-runs) the first."""
        job = self.generation.get(user_id, image_id)  # the user's own image, or JobNotFound
        if job.status != "succeeded" or not job.enhanced_prompt or job.enhanced_prompt == job.prompt:
            raise ExperimentError("Only a finished image made from an enhanced prompt can be compared with its "
                                  "original prompt.")
        spec = ExperimentSpec(template=job.prompt, literal=True, versions=PROMPT_VERSIONS, seeds=(job.seed,),
                              tiers=(job.tier,), negative_prompt=job.negative_prompt,
                              aspect_ratio=self._aspect_of(job), column_axis="version",
                              title=f"Original vs enhanced: {job.prompt}")
        self.plan(spec, source=job)
        with self.db.write() as s:
            self.db.serialize(s, f"experiment-compare:{image_id}")  # two quick clicks make one experiment
            existing = s.scalar(select(Experiment.id).where(Experiment.owner_id == user_id,
                                                            Experiment.source_image_id == image_id))
            if existing is None:
                existing = self._insert(s, user_id, spec, source_image_id=image_id)
        return self.run(user_id, existing)

    def _aspect_of(self, job: JobView) -> str:
        """The named aspect ratio that gives this image's exact size (sizes are rounded to multiples of 64,
        so 16:9 comes back as 1344x768, whose reduced ratio is 7:4)."""
        for name in ASPECT_RATIOS:
            if size_for(self.generation.tier(job.tier), name) == (job.width, job.height):
                return name
        raise ExperimentError("This image's size matches none of the aspect ratios, so it cannot be "
                              "reproduced exactly.")

    # -- running ------------------------------------------------------------------------------------------------
    def run(self, user_id: int, experiment_id: int) -> ExperimentView:
        """Quote again, refuse or trim by the cap, enhance what needs it, freeze the cells, start submitting.
        Everything that can refuse happens before the first hold. Idempotent: an experiment runs once."""
        view = self._owned(user_id, experiment_id)
        if view.status != "draft":
            return view  # a double click or a rerun: the first click started it
        spec = view.spec
        source = self._source(user_id, view.source_image_id)
        plan = self.plan(spec, source=source)
        quote = self.quote(user_id, plan, spec)
        if not quote.ok:
            raise BudgetExceeded(quote.problem)
        cells = [c for c in plan.cells if c.row < quote.rows]
        enhanced = self._enhance(sorted({c.prompt for c in cells
                                         if c.version == "enhanced" and c.reuse_image_id is None}))
        now = self.clock()
        with self.db.write() as s:
            started = s.execute(update(Experiment)
                                .where(Experiment.id == experiment_id, Experiment.status == "draft")
                                .values(status="running", started_at=now, quoted_cost=quote.total)).rowcount
            if started:
                s.add_all(ExperimentCell(
                    experiment_id=experiment_id, grid_row=c.row, grid_col=c.col, row_label=c.row_label[:300],
                    col_label=c.col_label[:300], prompt=c.prompt, version=c.version, seed=c.seed, tier=c.tier,
                    cost=c.cost,
                    enhanced_prompt=(source.enhanced_prompt if c.reuse_image_id and source else
                                     enhanced.get(c.prompt) if c.version == "enhanced" else None),
                    request_key=None if c.reuse_image_id else cell_request_key(experiment_id, c.row, c.col),
                    image_id=c.reuse_image_id, status="reused" if c.reuse_image_id else "waiting")
                    for c in cells)
        self.advance(experiment_id)
        self._ensure_driver()
        return self.get(user_id, experiment_id)

    def _enhance(self, prompts: Sequence[str]) -> dict[str, str]:
        enhanced = {}
        for prompt in prompts:
            result = self.prompts.enhance(prompt)
            if not result.ok:
                raise ExperimentError(f"Could not enhance “{prompt[:80]}”: {result.error} Nothing was charged.")
            enhanced[prompt] = result.enhancement.enhanced
        return enhanced

    def advance(self, experiment_id: int) -> int:
        """Submit the waiting cells the generation limits allow now; mark the experiment finished when every
        cell has ended. Safe to call from anywhere, any number of times (request keys make it idempotent).
        Returns how many cells are still waiting or generating."""
        with self.db.read() as s:
            exp = s.get(Experiment, experiment_id)
            if exp is None or exp.status != "running":
                return 0
            owner_id, negative, aspect = exp.owner_id, exp.negative_prompt, exp.aspect_ratio
            waiting = s.execute(select(ExperimentCell).where(ExperimentCell.experiment_id == experiment_id,
                                                             ExperimentCell.status == "waiting")
                                .order_by(ExperimentCell.grid_row, ExperimentCell.grid_col)).scalars().all()
        for cell in waiting:
            request = GenerateRequest(prompt=cell.prompt, tier=cell.tier, negative_prompt=negative,
                                      enhanced_prompt=cell.enhanced_prompt, aspect_ratio=aspect, seed=cell.seed)
            try:
                job = self.generation.submit(owner_id, request, cell.request_key)
            except LimitReached:
                break  # no free slot now; the next call continues
            except (GenerationError, InsufficientCredits, IdempotencyConflict) as exc:
                # Refused before any charge (moderation, balance spent elsewhere meanwhile, ...): skip the cell.
                self._set_cell(cell.id, status="skipped", note=f"{exc} Not charged.")
                continue
            self._set_cell(cell.id, status="submitted", image_id=job.id)
        with self.db.write() as s:
            unfinished = s.scalar(
                select(func.count()).select_from(ExperimentCell)
                .outerjoin(GeneratedImage, GeneratedImage.id == ExperimentCell.image_id)
                .where(ExperimentCell.experiment_id == experiment_id,
                       (ExperimentCell.status == "waiting") | GeneratedImage.status.in_(ACTIVE)))
            if not unfinished:
                s.execute(update(Experiment).where(Experiment.id == experiment_id, Experiment.status == "running")
                          .values(status="finished", finished_at=self.clock()))
        return unfinished

    def _set_cell(self, cell_id: int, **values) -> None:
        with self.db.write() as s:
            # Only a waiting cell changes: two advancers racing write the same outcome once.
            s.execute(update(ExperimentCell).where(ExperimentCell.id == cell_id, ExperimentCell.status == "waiting")
                      .values(**values))

    def advance_all(self) -> int:
        """Advance every running experiment (all users): what the background driver does each tick."""
        with self.db.read() as s:
            ids = s.scalars(select(Experiment.id).where(Experiment.status == "running")
                            .order_by(Experiment.id)).all()
        remaining = 0
        for experiment_id in ids:
            try:
                remaining += self.advance(experiment_id)
            except Exception:  # noqa: BLE001 - one broken experiment must not stall the others
                log.exception("could not advance experiment %s", experiment_id)
                remaining += 1
        return remaining

    def _ensure_driver(self) -> None:
        """Keep one background thread advancing running experiments while there are any, so a grid keeps
        filling after its tab closes. It ends when nothing runs; the next run (or page view) starts it again."""
        if self.driver_interval_s is None:
            return
        with self._driver.lock:
            if self._driver.thread is not None and self._driver.thread.is_alive():
                return
            self._driver.thread = threading.Thread(target=self._drive, name="studio-experiments", daemon=True)
            self._driver.thread.start()

    def _drive(self) -> None:
        while not self._driver.stop.wait(self.driver_interval_s):
            try:
                remaining = self.advance_all()
            except Exception:  # noqa: BLE001 - the database may hiccup; try again next tick
                log.exception("experiment driver tick failed")
                continue
            if not remaining:
                with self._driver.lock:
                    # Decided under the lock, so a run starting now either sees this thread alive (and it
                    # will see that run on its next tick) or starts a new one.
                    if not self._any_running():
                        self._driver.thread = None
                        return

    def _any_running(self) -> bool:
        with self.db.read() as s:
            return s.scalar(select(Experiment.id).where(Experiment.status == "running").limit(1)) is not None

    def stop(self) -> None:
        self._driver.stop.set()

    # -- reading ------------------------------------------------------------------------------------------------
    def get(self, user_id: int, experiment_id: int) -> ExperimentView:
        """The owner's experiment, or one its owner shared; anything else is 'not found' (no existence leak)."""
        with self.db.read() as s:
            row = s.execute(select(Experiment, User.display_name).join(User, User.id == Experiment.owner_id)
                            .where(Experiment.id == experiment_id)).first()
            if row is None or (row[0].owner_id != user_id and not row[0].shared):
                raise ExperimentNotFound("That experiment does not exist or has not been shared with you.")
            exp, owner_name = row
            cells = s.execute(select(ExperimentCell).where(ExperimentCell.experiment_id == experiment_id)
                              .order_by(ExperimentCell.grid_row, ExperimentCell.grid_col)).scalars().all()
            image_ids = [c.image_id for c in cells if c.image_id is not None]
            jobs = {r[0].id: _job_view(*r) for r in s.execute(
                _jobs_with_template().where(GeneratedImage.id.in_(image_ids)))} if image_ids else {}
            votes = dict(s.execute(select(ExperimentVote.cell_id, func.count())
                                   .where(ExperimentVote.experiment_id == experiment_id)
                                   .group_by(ExperimentVote.cell_id)).all())
            mine = s.scalar(select(ExperimentVote.cell_id).where(ExperimentVote.experiment_id == experiment_id,
                                                                 ExperimentVote.user_id == user_id))
        view = ExperimentView(
            id=exp.id, owner_id=exp.owner_id, owner_name=owner_name, title=exp.title, spec=_spec(exp),
            status=exp.status, shared=exp.shared, quoted_cost=exp.quoted_cost, source_image_id=exp.source_image_id,
            created_at=exp.created_at, started_at=exp.started_at, finished_at=exp.finished_at,
            cells=tuple(CellView(
                id=c.id, row=c.grid_row, col=c.grid_col, row_label=c.row_label, col_label=c.col_label,
                prompt=c.prompt, enhanced_prompt=c.enhanced_prompt, version=c.version, seed=c.seed, tier=c.tier,
                cost=c.cost, status=c.status, note=c.note, job=jobs.get(c.image_id), votes=votes.get(c.id, 0))
                for c in cells),
            my_vote=mine, viewer_is_owner=exp.owner_id == user_id)
        if view.status == "running":
            if not view.is_active and not self.advance(experiment_id):  # the last image just ended
                return self.get(user_id, experiment_id)  # now finished (with its time)
            self._ensure_driver()  # after a restart the first look at a running experiment resumes it
        return view

    def list_for(self, user_id: int, limit: int = 50) -> list[ExperimentSummary]:
        """The user's newest experiments with their counts. The user's own (at most ``limit``) are found
        first and only their cells and votes are added up, so the cost stays with the user's own experiments
        however many everyone else runs."""
        with self.db.read() as s:
            mine = s.execute(select(Experiment.id, Experiment.title, Experiment.status, Experiment.created_at)
                             .where(Experiment.owner_id == user_id)
                             .order_by(Experiment.created_at.desc(), Experiment.id.desc()).limit(limit)).all()
            ids = [r.id for r in mine]
            cells = {r.eid: r for r in s.execute(_CELL_COUNTS, {"ids": ids})} if ids else {}
            votes = dict(s.execute(_VOTE_COUNTS, {"ids": ids}).all()) if ids else {}
        return [ExperimentSummary(id=r.id, title=r.title, status=r.status, created_at=r.created_at,
                                  images=cells[r.id].images if r.id in cells else 0,
                                  succeeded=cells[r.id].succeeded if r.id in cells else 0,
                                  charged=cells[r.id].charged if r.id in cells else 0, votes=votes.get(r.id, 0))
                for r in mine]

    def _owned(self, user_id: int, experiment_id: int) -> ExperimentView:
        view = self.get(user_id, experiment_id)
        if not view.viewer_is_owner:
            raise AccessDenied("Only the experiment's owner can run or change it; you can look and vote.")
        return view

    # -- changing -----------------------------------------------------------------------------------------------
    def set_shared(self, user_id: int, experiment_id: int, shared: bool) -> ExperimentView:
        self._owned(user_id, experiment_id)
        with self.db.write() as s:
            s.execute(update(Experiment).where(Experiment.id == experiment_id).values(shared=shared))
        return self.get(user_id, experiment_id)

    def delete_draft(self, user_id: int, experiment_id: int) -> None:
        """Only a draft (nothing ran, nothing charged) can be deleted; a run experiment is a record."""
        self._owned(user_id, experiment_id)
        with self.db.write() as s:
            gone = s.execute(delete(Experiment).where(Experiment.id == experiment_id,
                                                      Experiment.status == "draft")).rowcount
        if not gone:
            raise ExperimentError("This experiment has run; it stays as a record of what was spent.")

    def vote(self, user_id: int, experiment_id: int, cell_id: int) -> int | None:
        """Vote for the best cell: one vote per user per experiment, moved by voting again elsewhere and
        withdrawn by voting for the same cell. Returns the cell now voted for (None: withdrawn)."""
        view = self.get(user_id, experiment_id)
        cell = next((c for c in view.cells if c.id == cell_id), None)
        if cell is None:
            raise ExperimentNotFound("That image is not part of this experiment.")
        if not cell.succeeded:
            raise ExperimentError("You can vote only for a finished image.")
        with self.db.write() as s:
            # Check-then-insert per (experiment, user); the unique constraint is the last word either way.
            self.db.serialize(s, f"experiment-vote:{experiment_id}:{user_id}")
            current = s.scalar(select(ExperimentVote).where(ExperimentVote.experiment_id == experiment_id,
                                                            ExperimentVote.user_id == user_id))
            if current is None:
                s.add(ExperimentVote(experiment_id=experiment_id, user_id=user_id, cell_id=cell_id,
                                     created_at=self.clock()))
                return cell_id
            if current.cell_id == cell_id:
                s.delete(current)
                return None
            current.cell_id = cell_id
            current.created_at = self.clock()
            return cell_id


def cell_request_key(experiment_id: int, row: int, col: int) -> str:
    """Derived, never random: the same cell always asks under the same key, so it is charged at most once."""
    return f"exp-{experiment_id}-r{row}c{col}"


def _spec(exp: Experiment) -> ExperimentSpec:
    axes = exp.axes or {}
    return ExperimentSpec(template=exp.template, versions=tuple(axes.get("versions", ("raw",))),
                          seeds=tuple(int(s) for s in axes.get("seeds", (42,))),
                          tiers=tuple(axes.get("tiers", ())), negative_prompt=exp.negative_prompt,
                          aspect_ratio=exp.aspect_ratio, column_axis=exp.column_axis, budget_cap=exp.budget_cap,
                          over_budget=exp.over_budget, literal=exp.literal, title=exp.title)


def parse_seeds(text: str) -> tuple[int, ...]:
    """'42, 7 1234' -> (42, 7, 1234); raises ExperimentError on anything that is not a seed."""
    parts = [p for p in re.split(r"[\s,;]+", text or "") if p]
    try:
        seeds = tuple(dict.fromkeys(int(p) for p in parts))
    except ValueError:
        raise ExperimentError("Seeds are whole numbers separated by commas, e.g. “42, 7, 1234”.") from None
    return seeds


__all__ = ["AXIS_LABELS", "BudgetExceeded", "CellView", "ExperimentError", "ExperimentNotFound",
           "ExperimentService", "ExperimentSpec", "ExperimentSummary", "ExperimentView", "Plan", "Preview",
           "Quote", "VERSION_LABELS", "WildcardView", "cell_request_key", "parse_seeds"]
