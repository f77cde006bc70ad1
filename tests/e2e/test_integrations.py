"""Settings → API and webhooks in a real browser: a token's secret is shown once, and
revoking it asks first (dismissed, nothing happens; accepted, calls with it stop)."""

from playwright.sync_api import expect

PASSWORD = "correct horse battery"  # every factory user's password


def test_owner_creates_a_token_sees_its_secret_once_and_revokes_it_after_confirming(
    app, make, new_page
):
    _, owner = make.workspace_with_owner(name="Sunrise Plumbing")
    page = new_page()
    page.goto("/login")
    page.locator("#login-form [name=email]").fill(owner.email)
    page.locator("#login-form [name=password]").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    page.wait_for_url("**/")

    page.get_by_role("link", name="API and webhooks").first.click()
    expect(page.get_by_text("No tokens yet.")).to_be_visible()
    page.locator("#token-name").fill("Zapier")
    page.locator("#token-access").select_option("write")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token code").inner_text()
    assert secret.startswith("cvk_")
    leads = app.test_client().get("/api/v1/leads", headers={"Authorization": f"Bearer {secret}"})
    assert leads.status_code == 200

    page.reload()  # shown once: never again, only its first characters
    expect(page.locator("#new-token")).to_have_count(0)
    assert secret not in page.content()
    row = page.locator("#tokens tbody tr", has_text="Zapier")
    expect(row).to_contain_text(secret[:10])

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Revoke").click()
    assert asked == ["Revoke this token? Calls with it stop working at once."]
    expect(row).not_to_contain_text("Revoked")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator("#tokens tbody tr", has_text="Zapier")).to_contain_text("Revoked")
    refused = app.test_client().get("/api/v1/leads", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401
