"""The Studio object wires the services together: sign-up grants the allowance and the referral bonus, and the
referrer is rewarded when the referred user's first image succeeds — exactly once."""

from __future__ import annotations

from studio_core.bootstrap import build_studio
from studio_core.config import load_settings
from studio_core.services.generation import GenerateRequest, new_request_key


def test_referral_rewards_flow_through_sign_up_and_first_generation(database, tmp_path):
    settings = load_settings(_env_file=None, data_dir=tmp_path / "data", database_url=database.url,
                             enhancer="local", generator="local", storage="local", payments="sandbox",
                             monthly_allowance=30, signup_bonus=10, referral_bonus=20)
    studio = build_studio(settings, migrate=False)
    ada = studio.accounts.sign_up("ada@example.com", "Ada", "Correct-Horse-42")
    bob = studio.accounts.sign_up("bob@example.com", "Bob", "Correct-Horse-42", referral_code=ada.referral_code)
    assert studio.ledger.balance(ada.id).available == 30  # allowance on sign-up, no bonus yet
    assert studio.ledger.balance(bob.id).available == 30 + 10  # allowance + signup bonus

    for _ in range(2):  # the referrer's bonus comes with the first success only
        studio.generation.submit(bob.id, GenerateRequest(prompt="a paper boat", tier="standard"),
                                 new_request_key())
        assert studio.jobs.wait_idle(30)
    assert studio.ledger.balance(ada.id).available == 30 + 20
    assert studio.ledger.balance(bob.id).available == 40 - 2
    assert studio.referrals.summary(ada.id).credits_earned == 20
    assert [r for r in studio.ledger.check_invariants() if not r.ok] == []
    studio.jobs.shutdown()
