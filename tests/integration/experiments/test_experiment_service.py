"""The Prompt Lab's experiment service on SQLite and PostgreSQL, with scripted providers.

Every test that moves money ends with the ledger's invariants; the money tests compare the quote with what the
ledger actually booked.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from studio_core.models import CreditHold, CreditLedgerEntry, ExperimentCell, ExperimentVote, GeneratedImage
from studio_core.ports import Enhancement, ErrorCode, JobStatus, ProviderError
from studio_core.services.accounts import AccessDenied, AccountService
from studio_core.services.experiments import (
    MAX_VARIANTS,
    BudgetExceeded,
    ExperimentError,
    ExperimentNotFound,
    ExperimentService,
    ExperimentSpec,
    cell_request_key,
    parse_seeds,
)
from studio_core.services.generation import GenerateRequest, GenerationService, new_request_key
from studio_core.services.jobs import JobRunner
from studio_core.services.ledger import LedgerService
from studio_core.services.prompts import PromptService
from tests.integration.generation.fakes import MemoryStore, ScriptedGenerator


@dataclass
class PickyGenerator(ScriptedGenerator):
    """Fails every image whose prompt mentions one of ``fail_words``; the others follow the script."""

    fail_words: tuple[str, ...] = ()

    def poll(self, provider_job_id: str) -> JobStatus:
        request = self.submitted[int(provider_job_id[1:]) - 1]
        if any(word in request.prompt for word in self.fail_words):
            return JobStatus(provider_job_id, "failed", error=ProviderError(ErrorCode.GENERATION_FAILED))
        return super().poll(provider_job_id)


class SuffixEnhancer:
    name = "suffix"

    def __init__(self) -> None:
        self.fail = False
        self.calls: list[str] = []

    def enhance(self, prompt: str, *, template_hint: str | None = None) -> Enhancement:
        self.calls.append(prompt)
        if self.fail:
            raise ProviderError(ErrorCode.PROVIDER_UNAVAILABLE, "scripted")
        return Enhancement(prompt, f"{prompt}, golden hour, 35mm", "blurry", ("golden hour", "35mm"), self.name)


class Lab:
    def __init__(self, database, settings, tmp_path):
        self.db = database
        self.settings = settings
        self.accounts = AccountService(database, settings, hasher=PasswordHasher(time_cost=1, memory_cost=64))
        self.ledger = LedgerService(database, settings)
        self.generator = PickyGenerator()
        self.store = MemoryStore()
        self.generation = GenerationService(database, settings, self.ledger, self.generator, self.store,
                                            poll_interval_s=0)
        self.enhancer = SuffixEnhancer()
        self.wildcards = tmp_path / "wildcards"
        self.service = ExperimentService(database, settings, self.generation,
                                         PromptService(self.enhancer, max_chars=settings.prompt_max_chars),
                                         self.ledger, wildcards_dir=self.wildcards)
        self.owner = self.accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
        self.mate = self.accounts.sign_up("bob@example.com", "Bob", "Correct-Horse-42")
        for user in (self.owner, self.mate):
            self.ledger.ensure_monthly_allowance(user.id)

    def available(self, user=None) -> int:
        return self.ledger.balance((user or self.owner).id).available

    def holds(self) -> dict[str, int]:
        with self.db.read() as s:
            return dict(s.execute(select(CreditHold.status, func.count()).group_by(CreditHold.status)).all())

    def charged(self, user=None) -> int:
        """Credits the ledger booked for generation (its debit entries), net of refunds."""
        with self.db.read() as s:
            return -(s.scalar(select(func.coalesce(func.sum(CreditLedgerEntry.amount), 0))
                              .where(CreditLedgerEntry.user_id == (user or self.owner).id,
                                     CreditLedgerEntry.kind.in_(("generation", "refund")))) or 0)

    def finish(self, experiment_id: int, rounds: int = 50):
        """What the workers and the driver do in the app: run queued jobs, advance, until nothing is left."""
        for _ in range(rounds):
            with self.db.read() as s:
                queued = s.scalars(select(GeneratedImage.id).where(GeneratedImage.status == "queued")).all()
            for job_id in queued:
                self.generation.run_job(job_id)
            if not self.service.advance(experiment_id) and not queued:
                return self.service.get(self.owner.id, experiment_id)
        raise AssertionError("the experiment did not finish")

    def assert_books_balance(self):
        assert [r for r in self.ledger.check_invariants() if not r.ok] == []


@pytest.fixture
def lab(database, settings, tmp_path):
    settings.monthly_allowance = 20
    settings.max_concurrent_jobs_per_user = 2
    settings.max_jobs_per_minute = 100
    return Lab(database, settings, tmp_path)


def spec(template="a {red|blue} fox", **kw) -> ExperimentSpec:
    return ExperimentSpec(template=template, **kw)


# -- expansion ------------------------------------------------------------------------------------------------
def test_expansion_counts_variants_weights_and_wildcards(lab):
    expand = lab.service.expand
    assert expand("a {red|blue} {cat|dog}") == ["a red cat", "a red dog", "a blue cat", "a blue dog"]
    assert len(expand("a {2::red|blue|0.5::green} cat")) == 3  # weights steer sampling, not the grid
    assert expand("a {red|red} cat") == ["a red cat"]  # duplicates collapse
    assert len(expand("{a|b} {c|d} {e|f} {g|h}")) == 16
    with pytest.raises(ExperimentError, match=f"more than {MAX_VARIANTS}"):
        expand("{a|b} {c|d} {e|f} {g|h} {i|j}")
    with pytest.raises(ExperimentError, match="syntax error"):
        expand("a {red|blue cat")
    with pytest.raises(ExperimentError, match="Write a prompt template"):
        expand("   ")
    assert expand("a {literal} prompt with {braces|kept}", literal=True) == [
        "a {literal} prompt with {braces|kept}"]

    with pytest.raises(ExperimentError, match=r"Unknown wildcard __colours__ \(available: none yet\)"):
        expand("a __colours__ fox")
    (lab.wildcards / "styles").mkdir(parents=True)
    (lab.wildcards / "colours.txt").write_text("red\nblue\n# a comment\ngreen\n")
    (lab.wildcards / "styles" / "painting.txt").write_text("oil\nwatercolour\n")
    assert sorted(expand("a __colours__ fox")) == ["a blue fox", "a green fox", "a red fox"]
    assert len(expand("a __colours__ fox, __styles/painting__")) == 6
    assert [(w.name, len(w.values)) for w in lab.service.wildcards()] == [("colours", 3), ("styles/painting", 2)]
    with pytest.raises(ExperimentError, match="Unknown wildcard __shapes__ .*__colours__"):
        expand("a __shapes__ fox")


def test_plan_puts_the_compared_axis_in_columns_and_keeps_a_row_on_one_seed(lab):
    plan = lab.service.plan(spec(versions=("raw", "enhanced"), seeds=(7, 8), column_axis="prompt"))
    assert (plan.rows, plan.cols) == (4, 2)
    assert plan.col_labels == ("a red fox", "a blue fox")
    assert plan.row_labels == ("Your prompt · seed 7", "Your prompt · seed 8", "Enhanced · seed 7",
                               "Enhanced · seed 8")
    for row in range(plan.rows):
        cells = [c for c in plan.cells if c.row == row]
        assert len({c.seed for c in cells}) == 1 and len({c.version for c in cells}) == 1
        assert [c.prompt for c in cells] == ["a red fox", "a blue fox"]
    # An axis that does not vary cannot be the columns: the first varied one is used instead.
    plan = lab.service.plan(spec("a fox", seeds=(1, 2, 3), column_axis="tier"))
    assert (plan.column_axis, plan.rows, plan.cols) == ("seed", 1, 3)
    assert parse_seeds("42, 7 42;1") == (42, 7, 1)
    with pytest.raises(ExperimentError, match="whole numbers"):
        parse_seeds("42, seven")
    with pytest.raises(ExperimentError, match="blocked term"):
        lab.settings.blocked_terms = ["gore"]
        lab.service.plan(spec("a {calm|gore} scene"))


# -- money ----------------------------------------------------------------------------------------------------
def test_the_quote_is_exactly_what_the_ledger_charges(lab):
    start = lab.available()
    s = spec(tiers=("standard", "premium2"), column_axis="tier")
    preview = lab.service.preview(lab.owner.id, s)
    quote = preview.quote
    assert (quote.rows, quote.cols, quote.images) == (2, 2, 4)
    assert quote.total == 2 * (1 + 2) and quote.balance_after == start - 6 and quote.ok
    exp = lab.service.create(lab.owner.id, s)
    assert exp.status == "draft" and lab.holds() == {}  # saving costs nothing
    exp = lab.service.run(lab.owner.id, exp.id)
    assert exp.status == "running" and exp.quoted_cost == quote.total
    # Two slots per user: two cells went to the generator, two wait; each one holds its own tier's price.
    assert sorted(c.state for c in exp.cells) == ["queued", "queued", "waiting", "waiting"]
    done = lab.finish(exp.id)
    assert done.status == "finished" and done.finished_at is not None
    assert all(c.state == "succeeded" for c in done.cells)
    assert lab.charged() == quote.total == done.charged
    assert lab.available() == quote.balance_after
    assert lab.holds() == {"posted": 4}
    lab.assert_books_balance()


def test_the_cap_refuses_before_any_hold(lab):
    start = lab.available()
    s = spec(seeds=(1, 2), budget_cap=3)  # 4 images, 4 credits
    quote = lab.service.preview(lab.owner.id, s).quote
    assert not quote.ok and "over your cap of 3" in quote.problem
    exp = lab.service.create(lab.owner.id, s)
    with pytest.raises(BudgetExceeded, match="over your cap of 3"):
        lab.service.run(lab.owner.id, exp.id)
    assert lab.holds() == {} and lab.available() == start
    with lab.db.read() as session:
        assert session.scalar(select(func.count()).select_from(ExperimentCell)) == 0
    assert lab.service.get(lab.owner.id, exp.id).status == "draft"

    # More than the balance is refused the same way, and says how to fit.
    big = spec("{a|b|c|d} fox", seeds=(1, 2, 3), tiers=("premium4",))  # 12 images x 4 = 48 credits
    quote = lab.service.preview(lab.owner.id, big).quote
    assert not quote.ok and f"you have {start}" in quote.problem
    with pytest.raises(BudgetExceeded):
        lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, big).id)
    assert lab.holds() == {} and lab.available() == start
    lab.assert_books_balance()


def test_trimming_keeps_whole_rows_under_the_cap(lab):
    s = spec(seeds=(1, 2, 3), budget_cap=5, over_budget="trim")  # rows of 2 credits: 2 rows fit
    quote = lab.service.preview(lab.owner.id, s).quote
    assert quote.ok and quote.trimmed and (quote.rows, quote.planned_rows) == (2, 3)
    assert (quote.images, quote.total, quote.planned_total) == (4, 4, 6)
    exp = lab.finish(lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, s).id).id)
    assert [c.seed for c in exp.cells] == [1, 1, 2, 2] and lab.charged() == 4
    too_small = lab.service.preview(lab.owner.id, spec(tiers=("premium4",), budget_cap=3, over_budget="trim"))
    assert "Not even one row" in too_small.quote.problem
    lab.assert_books_balance()


def test_a_partial_failure_refunds_exactly_the_failed_cells(lab):
    lab.generator.fail_words = ("blue",)
    start = lab.available()
    s = spec(seeds=(5, 6), tiers=("premium2",))
    quote = lab.service.preview(lab.owner.id, s).quote
    exp = lab.finish(lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, s).id).id)
    states = {(c.prompt, c.seed): c.state for c in exp.cells}
    assert states == {("a red fox", 5): "succeeded", ("a blue fox", 5): "failed",
                      ("a red fox", 6): "succeeded", ("a blue fox", 6): "failed"}
    assert exp.status == "finished"
    assert all("Not charged" in c.job.error_message for c in exp.cells if c.state == "failed")
    assert lab.holds() == {"posted": 2, "voided": 2}
    assert lab.charged() == exp.charged == 2 * 2 == quote.total - 2 * 2
    assert lab.available() == start - 4
    lab.assert_books_balance()


def test_reruns_double_clicks_and_racing_advancers_never_charge_twice(lab):
    exp = lab.service.create(lab.owner.id, spec(seeds=(1, 2)))
    first = lab.service.run(lab.owner.id, exp.id)
    again = lab.service.run(lab.owner.id, exp.id)  # a double click: the experiment runs once
    assert [c.id for c in again.cells] == [c.id for c in first.cells]
    for _ in range(3):
        lab.service.advance(exp.id)
        lab.service.advance_all()
    with lab.db.read() as s:
        keys = s.scalars(select(GeneratedImage.request_key).order_by(GeneratedImage.id)).all()
    assert keys == [cell_request_key(exp.id, 0, 0), cell_request_key(exp.id, 0, 1)]
    done = lab.finish(exp.id)
    assert lab.charged() == 4 and len(lab.generator.submitted) == 4
    assert lab.service.run(lab.owner.id, exp.id).status == "finished"  # running a finished one is a no-op
    assert lab.charged() == 4 and {c.job.request_key for c in done.cells} == {
        cell_request_key(exp.id, r, c) for r in (0, 1) for c in (0, 1)}
    lab.assert_books_balance()


def test_enhanced_cells_are_enhanced_once_per_variant_and_a_failed_enhancement_refuses_the_run(lab):
    s = spec(versions=("raw", "enhanced"), seeds=(3, 4), column_axis="version")
    lab.enhancer.fail = True
    exp = lab.service.create(lab.owner.id, s)
    with pytest.raises(ExperimentError, match="Could not enhance .*Nothing was charged"):
        lab.service.run(lab.owner.id, exp.id)
    assert lab.holds() == {}
    lab.enhancer.fail = False
    lab.enhancer.calls.clear()
    done = lab.finish(lab.service.run(lab.owner.id, exp.id).id)
    assert sorted(lab.enhancer.calls) == ["a blue fox", "a red fox"]
    for cell in done.cells:
        assert cell.job.seed == cell.seed
        if cell.version == "enhanced":
            assert cell.job.final_prompt == f"{cell.prompt}, golden hour, 35mm" == cell.enhanced_prompt
        else:
            assert cell.job.final_prompt == cell.prompt and cell.job.enhanced_prompt is None
    lab.assert_books_balance()


def test_a_cell_refused_later_is_skipped_and_never_charged(lab):
    """The balance is spent elsewhere while cells wait for a slot: those cells are skipped, not charged."""
    s = spec("a {red|blue|green|grey} fox", tiers=("premium2",))  # 4 x 2 = 8 credits
    exp = lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, s).id)
    spend = lab.available() - 1  # leave less than one more image's price
    lab.ledger.reserve(lab.owner.id, spend, "elsewhere:1", reference="test")
    done = lab.finish(exp.id)
    assert [c.state for c in done.cells] == ["succeeded", "succeeded", "skipped", "skipped"]
    assert all("Not charged" in c.note for c in done.cells if c.state == "skipped")
    assert lab.charged() == 4 and done.status == "finished"
    lab.assert_books_balance()


def test_compare_with_the_original_prompt_reuses_the_enhanced_image(lab):
    job = lab.generation.submit(lab.owner.id, GenerateRequest(
        prompt="a lighthouse", enhanced_prompt="a lighthouse at dusk, volumetric light", tier="premium2",
        seed=99, aspect_ratio="16:9"), new_request_key())
    lab.generation.run_job(job.id)
    before = lab.charged()
    exp = lab.service.compare_original(lab.owner.id, job.id)
    assert (exp.col_labels, exp.row_labels) == (["Your prompt", "Enhanced"], ["seed 99"])
    raw, enhanced = exp.cell(0, 0), exp.cell(0, 1)
    assert enhanced.status == "reused" and enhanced.job.id == job.id and enhanced.cost == 0
    assert raw.status == "submitted" and exp.quoted_cost == 2
    assert lab.service.compare_original(lab.owner.id, job.id).id == exp.id  # a second click: the same one
    done = lab.finish(exp.id)
    raw = done.cell(0, 0)
    assert raw.job.final_prompt == "a lighthouse" and raw.job.enhanced_prompt is None
    assert (raw.job.seed, raw.job.tier, raw.job.width, raw.job.height) == (99, "premium2", job.width, job.height)
    assert lab.charged() - before == 2 == done.charged
    with pytest.raises(ExperimentError, match="enhanced prompt"):
        lab.service.compare_original(lab.owner.id, raw.job.id)  # a raw image has nothing to compare
    with pytest.raises(Exception, match="not yours"):
        lab.service.compare_original(lab.mate.id, job.id)
    lab.assert_books_balance()


# -- people ---------------------------------------------------------------------------------------------------
def test_votes_are_one_per_user_per_experiment(lab):
    lab.generator.fail_words = ("blue",)
    exp = lab.finish(lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, spec(seeds=(1, 2))).id).id)
    red, blue = exp.cell(0, 0), exp.cell(0, 1)
    with pytest.raises(ExperimentNotFound):
        lab.service.vote(lab.mate.id, exp.id, red.id)  # not shared yet: invisible
    lab.service.set_shared(lab.owner.id, exp.id, True)
    assert lab.service.vote(lab.mate.id, exp.id, red.id) == red.id
    assert lab.service.vote(lab.owner.id, exp.id, red.id) == red.id
    view = lab.service.get(lab.mate.id, exp.id)
    assert view.cell(0, 0).votes == 2 and view.my_vote == red.id and view.winner.id == red.id
    with pytest.raises(ExperimentError, match="only for a finished image"):
        lab.service.vote(lab.mate.id, exp.id, blue.id)
    other_red = exp.cell(1, 0)
    assert lab.service.vote(lab.mate.id, exp.id, other_red.id) == other_red.id  # moved, not added
    view = lab.service.get(lab.owner.id, exp.id)
    assert (view.cell(0, 0).votes, view.cell(1, 0).votes) == (1, 1)
    assert view.winner.id == red.id  # a tie goes to the earlier cell
    assert lab.service.vote(lab.mate.id, exp.id, other_red.id) is None  # the same cell again withdraws
    with lab.db.read() as s:
        assert s.scalar(select(func.count()).select_from(ExperimentVote)) == 1
    # The schema has the last word: a second row for the same (experiment, user) is refused ...
    with pytest.raises(IntegrityError), lab.db.write() as s:
        s.add(ExperimentVote(experiment_id=exp.id, user_id=lab.owner.id, cell_id=other_red.id))
        s.flush()
    # ... and so is a vote whose cell belongs to another experiment.
    other = lab.service.create(lab.mate.id, spec("a fox"))
    with pytest.raises(IntegrityError), lab.db.write() as s:
        s.add(ExperimentVote(experiment_id=other.id, user_id=lab.mate.id, cell_id=red.id))
        s.flush()


def test_a_non_owner_can_look_and_vote_but_not_run_or_change(lab):
    draft = lab.service.create(lab.owner.id, spec())
    for act in (lambda: lab.service.run(lab.mate.id, draft.id),
                lambda: lab.service.get(lab.mate.id, draft.id)):
        with pytest.raises(ExperimentNotFound):
            act()
    lab.service.set_shared(lab.owner.id, draft.id, True)
    seen = lab.service.get(lab.mate.id, draft.id)
    assert not seen.viewer_is_owner and seen.owner_name == "Ada"
    for act in (lambda: lab.service.run(lab.mate.id, draft.id),
                lambda: lab.service.set_shared(lab.mate.id, draft.id, False),
                lambda: lab.service.delete_draft(lab.mate.id, draft.id)):
        with pytest.raises(AccessDenied):
            act()
    assert lab.holds() == {} and lab.service.get(lab.owner.id, draft.id).status == "draft"
    assert lab.service.list_for(lab.mate.id) == []
    lab.service.delete_draft(lab.owner.id, draft.id)
    ran = lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, spec()).id)
    with pytest.raises(ExperimentError, match="stays as a record"):
        lab.service.delete_draft(lab.owner.id, ran.id)


def test_the_list_shows_each_experiment_with_what_it_cost(lab):
    lab.generator.fail_words = ("blue",)
    ran = lab.finish(lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, spec(title="Foxes")).id).id)
    lab.service.vote(lab.owner.id, ran.id, ran.cell(0, 0).id)
    draft = lab.service.create(lab.owner.id, spec("a {calm|wild} sea"))
    listed = lab.service.list_for(lab.owner.id)
    assert [(e.id, e.title, e.status) for e in listed] == [(draft.id, "a {calm|wild} sea", "draft"),
                                                           (ran.id, "Foxes", "finished")]
    assert (listed[1].images, listed[1].succeeded, listed[1].charged, listed[1].votes) == (2, 1, 1, 1)
    assert (listed[0].images, listed[0].charged) == (0, 0)
    # someone else's experiment, cells and votes never count on the owner's list (nor the owner's on theirs)
    theirs = lab.service.run(lab.mate.id, lab.service.create(lab.mate.id, spec(title="Theirs")).id)
    lab.service.set_shared(lab.mate.id, theirs.id, True)
    theirs = lab.finish(theirs.id)
    lab.service.vote(lab.mate.id, theirs.id, theirs.cell(0, 0).id)
    lab.service.vote(lab.owner.id, theirs.id, theirs.cell(0, 0).id)
    assert lab.service.list_for(lab.owner.id) == listed
    [their_summary] = lab.service.list_for(lab.mate.id)
    assert (their_summary.id, their_summary.images, their_summary.votes) == (theirs.id, 2, 2)


def test_the_background_driver_fills_the_grid_without_a_page(lab):
    """In the app a driver thread advances running experiments, so a closed tab does not stall a grid."""
    runner = JobRunner(lab.generation, workers=2)
    lab.generation.dispatch = runner.enqueue
    service = ExperimentService(lab.db, lab.settings, lab.generation, lab.service.prompts, lab.ledger,
                                wildcards_dir=lab.wildcards, driver_interval_s=0.05)
    try:
        exp = service.run(lab.owner.id, service.create(lab.owner.id, spec(seeds=(1, 2, 3))).id)
        deadline = time.monotonic() + 30
        while service.get(lab.owner.id, exp.id).status != "finished":
            assert time.monotonic() < deadline, "the driver did not finish the grid"
            time.sleep(0.05)
        assert lab.charged() == 6
        driver = service._driver.thread
        if driver is not None:
            driver.join(5)
        assert service._driver.thread is None  # nothing left to run: the driver ended
    finally:
        service.stop()
        runner.shutdown()
    lab.assert_books_balance()


def test_schema_allows_one_cell_per_grid_slot(lab):
    exp = lab.service.run(lab.owner.id, lab.service.create(lab.owner.id, spec()).id)
    with pytest.raises(IntegrityError), lab.db.write() as s:
        s.add(ExperimentCell(experiment_id=exp.id, grid_row=0, grid_col=0, row_label="x", col_label="y",
                             prompt="p", version="raw", seed=1, tier="standard"))
        s.flush()
