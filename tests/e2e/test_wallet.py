"""In a real browser: a creator opens the Wallet, a test card is declined, the good one buys the Creator pack
(credited once, receipt shown), and the history downloads as CSV."""

import csv
import io

from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, sign_up


def test_buy_a_pack_with_the_sandbox_card(app_server, page):
    page.set_viewport_size({"width": 1400, "height": 2000})
    sign_up(page, app_server.url, "lovelace@example.com", "Ada")
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("link", name="Wallet").click()
    expect(page.get_by_role("heading", name="Wallet", exact=True)).to_be_visible()
    expect(page.get_by_text("Monthly allowance: 30 of 30 left · 0 used")).to_be_visible()
    expect(page.get_by_text("Nothing spent this month")).to_be_visible()

    page.get_by_role("button", name="Buy for $10.00").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("4242 4242 4242 4242")).to_be_visible()  # the test cards are listed
    card = dialog.get_by_role("textbox", name="Card number")
    card.fill("4000 0000 0000 0002")
    dialog.get_by_role("button", name="Pay $10.00").click()
    expect(dialog.get_by_text("Your card was declined. Nothing was charged; try another card.")).to_be_visible()
    screenshot(page, "wallet-declined")
    expect(sidebar.get_by_text("30 available")).to_be_visible()

    card.fill("4242 4242 4242 4242")
    dialog.get_by_role("button", name="Pay $10.00").dblclick()  # a double click must not pay twice
    expect(page.get_by_text("Payment received: 130 credits added to your wallet.")).to_be_visible()
    expect(dialog).to_have_count(0)
    expect(sidebar.get_by_text("160 available")).to_be_visible()
    expect(page.get_by_text("Receipts (1)")).to_be_visible()
    screenshot(page, "wallet-receipt")

    # The history: the purchase on top; its CSV (made when the button is pressed) holds the same rows.
    page.get_by_role("tab", name="History").click()
    expect(page.get_by_text("Entries 1–2 of 2")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(r["kind"], int(r["amount"]), int(r["balance_after"])) for r in rows] == [
        ("purchase", 130, 160), ("allowance_grant", 30, 30)]
