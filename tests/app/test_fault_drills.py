"""Fault drills as the user lives them (AppTest, the real entry script, real clients against stand-ins): the
database going away mid-session, the image service hanging past its timeout, and storage failing after the
image service delivered. Each time the screen says what happened in plain words, no credit is lost or charged
twice (the ledger's invariants hold), and trying again works.

Killing the process between reserve and submit is drilled in tests/integration/generation/test_fault_drills.py.
"""

from __future__ import annotations

import pytest

from studio_core.ui.outage import DATABASE_DOWN_MESSAGE
from tests.app.conftest import app_on_postgresql, new_app, run, sign_up, use_replicate
from tests.app.test_studio import _ask_and_confirm, _credits, _has_download, _retry, _wait_for
from tests.conftest import PG_URL
from tests.fakes.cloudinary_server import FakeCloudinary
from tests.fakes.replicate_server import FakeReplicate
from tests.fakes.tcp_proxy import TcpProxy


def _books_balance(built):
    ledger = built[-1].ledger
    assert [r for r in ledger.check_invariants() if not r.ok] == []


@pytest.mark.postgres
def test_database_outage_shows_a_plain_message_and_try_again_recovers(app_env, monkeypatch):
    from sqlalchemy import make_url

    target = make_url(PG_URL)
    with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with app_on_postgresql(monkeypatch, url) as built:
            at = run(new_app())
            sign_up(at, "ada@example.com", "Ada")
            _ask_and_confirm(at, "a lighthouse in a storm")
            _wait_for(at, _has_download)
            assert _credits(at) == 29

            proxy.cut()
            run(at)  # no traceback: run() fails on any uncaught exception
            assert [e.value for e in at.error] == [DATABASE_DOWN_MESSAGE]
            assert proxy.refused > 0  # the app really tried, and the line really was cut

            proxy.restore()
            at.button(key="database_retry").click()
            run(at)
            assert at.title[0].value == "Studio" and _credits(at) == 29  # nothing lost
            _retry(at)
            _wait_for(at, lambda a: _has_download(a) and _credits(a) == 28)
            _books_balance(built)


def test_image_service_hanging_past_its_timeout(app_env, monkeypatch):
    with FakeReplicate() as replicate:
        replicate.steps = 0
        replicate.fail("hang", method="POST", path=r"/predictions$", times=1)
        use_replicate(monkeypatch, replicate, replicate_timeout_s=1)
        at = run(new_app())
        sign_up(at, "ada@example.com", "Ada")
        _ask_and_confirm(at, "a castle made of glass")
        _wait_for(at, lambda a: any("Not charged" in e.value for e in a.error))
        shown = " ".join(e.value for e in at.error)
        assert "too long" in shown or "unavailable" in shown, shown
        assert _credits(at) == 30
        # The create that timed out was looked up, not sent again; Retry is a new request that goes through.
        assert len(replicate.requests_to("POST", r"/predictions$")) == 1
        _retry(at)
        _wait_for(at, _has_download)
        assert _credits(at) == 29
        assert len(replicate.predictions) == 1  # the hung create never became a prediction


def test_storage_failing_after_the_image_service_delivered(app_env, monkeypatch):
    with FakeReplicate() as replicate, FakeCloudinary() as cloudinary:
        replicate.steps = 0
        cloudinary.fail("status", status=500, method="POST", path=r"/image/upload$", times=1)
        use_replicate(monkeypatch, replicate)
        for name, value in (("STORAGE", "cloudinary"), ("CLOUDINARY_CLOUD_NAME", cloudinary.cloud_name),
                            ("CLOUDINARY_API_KEY", cloudinary.api_key),
                            ("CLOUDINARY_API_SECRET", cloudinary.api_secret),
                            ("CLOUDINARY_UPLOAD_PREFIX", cloudinary.url),
                            ("CLOUDINARY_DELIVERY_BASE_URL", cloudinary.url)):
            monkeypatch.setenv(f"STUDIO_{name}", value)
        at = run(new_app())
        sign_up(at, "ada@example.com", "Ada")
        _ask_and_confirm(at, "a paper boat on a pond")
        _wait_for(at, lambda a: any("could not be stored" in e.value and "Not charged" in e.value
                                    for e in a.error))
        assert _credits(at) == 30 and not cloudinary.assets
        _retry(at)
        _wait_for(at, _has_download)
        assert _credits(at) == 29 and len(cloudinary.assets) == 1
        assert len(replicate.predictions) == 2  # the first image was made but never kept, so never charged
