"""The web UI in a real headless chromium, against the real stack: an API whose local scheduler
runs real JMeter engines, a worker, a broker, ClickHouse.

alice logs in with her token, creates a project, a plan (a JMX refused with the check's reason,
then the example's, one of whose labels is markup), a collection and its config; launches,
triggers, watches the live charts gain points while the engines run, stops the run; triggers a
second one that finishes; opens the report and compares the two runs. bob, of another group,
sees none of it and gets the API's refusal on a direct link. No page logs an error, opens a
dialog or requests another origin; a screenshot of each page is kept.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.support.api import JMX
from tests.support.browser import Opened, chromium, watched
from tests.support.local_runs import Bus, local_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

XSS = "<img src=x onerror=alert(1)>"
PLAN = JMX.replace(b'testname="POST /login, &quot;json&quot;"',
                   b'testname="&lt;img src=x onerror=alert(1)&gt;"')  # fmt: skip
TIMEOUT_MS = 120_000
expect.set_options(timeout=TIMEOUT_MS)


def shots(tmp_path: Path) -> Path:
    """Where the pages' screenshots go: ``SHIBUYA_TEST_ARTIFACTS`` (CI keeps them), else the
    test's own folder."""
    base = Path(os.environ.get("SHIBUYA_TEST_ARTIFACTS", tmp_path))
    (base / "ui").mkdir(parents=True, exist_ok=True)
    return base / "ui"


def log_in(browser_page: Opened, base: str, token: str) -> Page:
    page = browser_page.page
    page.goto(f"{base}/ui/")
    page.fill("#login input[name=token]", token)
    page.click("#login button[type=submit]")
    expect(page.locator("#nav")).to_contain_text("Projects")
    return page


@pytest.mark.timeout(600)
def test_a_load_tester_works_from_the_browser(tmp_path: Path, kafka_bootstrap: str) -> None:
    assert PLAN.count(b"&lt;img") == 1
    out = shots(tmp_path)
    with local_stack(tmp_path, Bus(kafka_bootstrap)) as (api, _), chromium() as browser:
        base = api.base
        same_origin = lambda url: url.startswith(base)  # noqa: E731
        alice = watched(browser.new_context().new_page(), same_origin)
        page = log_in(alice, base, api.tokens["alice"])
        page.set_default_timeout(TIMEOUT_MS)
        assert api.tokens["alice"] not in page.url
        page.screenshot(path=out / "projects.png", full_page=True)

        page.fill("#new-project input[name=name]", "web shop")
        page.select_option("#new-project select[name=group]", "team-a")
        page.click("#new-project button[type=submit]")
        expect(page.locator("h1")).to_contain_text("web shop")
        project = page.url.rsplit("/", 1)[1]
        page.fill("#new-plan input[name=name]", "browse")
        page.click("#new-plan button[type=submit]")
        card = page.locator("article.plan")
        plan = int(card.get_attribute("data-plan") or 0)
        card.locator("input[type=file]").set_input_files(
            {"name": "bad.jmx", "mimeType": "application/xml", "buffer": b"<jmeterTestPlan"}
        )
        card.locator("button[type=submit]").click()
        expect(card.locator(".status .error")).to_contain_text("bad.jmx: ")
        card.locator("input[type=file]").set_input_files(
            {"name": "plan.jmx", "mimeType": "application/xml", "buffer": PLAN}
        )
        card.locator("button[type=submit]").click()
        expect(page.locator("article.plan table")).to_contain_text("plan.jmx")
        page.screenshot(path=out / "project.png", full_page=True)

        page.fill("#new-collection input[name=name]", "checkout")
        page.click("#new-collection button[type=submit]")
        expect(page.locator("h1")).to_have_text("checkout")
        collection = page.url.rsplit("/", 1)[1]
        config = {"multi-test": {"name": "checkout", "projectid": int(project),
                                 "collectionid": int(collection),
                                 "thresholds": ["error_rate > 50% over run"],
                                 "tests": [{"testid": plan, "concurrency": 2, "engines": 1,
                                            "duration_s": 120}]}}  # fmt: skip
        page.fill("#config", yaml.safe_dump(config))
        page.click("text=Save config")
        expect(page.locator("#progress")).to_contain_text("Not deployed")
        expect(page.locator("table").first).to_contain_text("browse (plan")

        page.click("#deploy")
        expect(page.locator("#progress")).to_contain_text("heard from 1 of 1")
        expect(page.locator("#deploy")).to_be_disabled()
        # The stream's idle-engine GC (GC_IDLE_S: 15 min by default, less in the test) counts down.
        expect(page.locator("#purge-at")).to_contain_text(re.compile(r"purged in [1-9] min"))
        page.screenshot(path=out / "collection.png", full_page=True)

        # The first run: the live charts gain points while it runs; stopped from the page.
        page.click("#trigger")
        page.wait_for_url("**/#/runs/run-*")
        first = page.url.rsplit("/", 1)[1]
        # (polled from here: the page's CSP refuses the string eval of wait_for_function)
        wait_until("3 seconds on the live charts", lambda: seconds(page, "live") >= 3, 120)
        expect(page.locator("#summary")).to_contain_text("running")
        assert page.evaluate("window.shibuyaCharts.live.charts.rate.data[0].length") >= 3
        page.screenshot(path=out / "live-run.png", full_page=True)
        page.click("#stop")
        expect(page.locator("#summary")).to_contain_text("aborted")
        expect(page.locator("#stop")).to_be_disabled()

        # The second, 10 s long: its plans change once the engines are purged (the config
        # says why it cannot before); the trigger deploys them again. It finishes; its labels
        # are text, markup included.
        page.goto(f"{base}/ui/#/collections/{collection}")
        edited = yaml.safe_load(page.input_value("#config"))  # as exported: Shibuya's minutes
        (test,) = edited["multi-test"]["tests"]
        assert test.pop("duration") == 2
        edited["multi-test"]["tests"] = [{**test, "duration_s": 10}]
        shorter = yaml.safe_dump(edited)
        page.fill("#config", shorter)
        page.click("text=Save config")
        expect(page.locator("#config ~ p")).to_contain_text("purge them first")
        page.click("#purge")
        expect(page.locator("#progress")).to_contain_text("Not deployed")
        page.fill("#config", shorter)
        page.click("text=Save config")
        plan_row = page.locator("table").first.locator("td")  # plan, engine, engines, users …
        expect(plan_row.nth(1)).to_have_text("jmeter")
        expect(plan_row.nth(5)).to_have_text("10")
        expect(page.locator("#trigger")).to_be_enabled()
        page.click("#trigger")
        page.wait_for_url("**/#/runs/run-*")
        second = page.url.rsplit("/", 1)[1]
        assert second != first
        expect(page.locator("#summary")).to_contain_text("finished")
        expect(page.locator("#plan-engines")).to_contain_text(": jmeter")
        expect(page.locator("#verdicts")).to_contain_text("passed")
        expect(page.locator("#labels")).to_contain_text(XSS)
        assert page.locator("#labels img").count() == 0
        page.select_option("#label-pick", XSS)
        wait_until("the label's seconds", lambda: seconds(page, "label") >= 3, 60)
        page.screenshot(path=out / "run.png", full_page=True)

        # The report, and the two runs compared from the collection's history.
        with page.expect_popup() as popup:
            page.click("#report")
        report = watched(popup.value, same_origin)
        expect(report.page.locator("body")).to_contain_text(XSS)
        report.page.screenshot(path=out / "report.png", full_page=True)
        page.goto(f"{base}/ui/#/collections/{collection}")
        for run in (first, second):
            page.check(f"input[aria-label='select {run}']")
        page.click("text=Compare the two selected")
        expect(page.locator("table.compare")).to_contain_text("whole run")
        page.screenshot(path=out / "compare.png", full_page=True)
        page.goto(f"{base}/ui/#/running")
        expect(page.locator("#running")).to_contain_text("checkout")  # deployed, no run
        page.goto(f"{base}/ui/#/usage")
        expect(page.locator("#usage")).to_contain_text("web shop")
        page.screenshot(path=out / "usage.png", full_page=True)

        # bob: another group. Nothing of alice's, and the API's refusal on a direct link.
        bob = watched(browser.new_context().new_page(), same_origin)
        bob_page = log_in(bob, base, api.tokens["bob"])
        expect(bob_page.locator("main")).not_to_contain_text("web shop")
        bob_page.goto(f"{base}/ui/#/running")
        expect(bob_page.locator("main")).to_contain_text("Nothing deployed, nothing running.")
        bob_page.goto(f"{base}/ui/#/collections/{collection}")
        expect(bob_page.locator("main [role=alert]")).to_contain_text("not found")
        assert bob_page.request.get(f"{base}/api/runs/{second}").status == 404
        bob_page.screenshot(path=out / "refused.png", full_page=True)

        # The only console errors: chromium's own line for each refusal the test provoked.
        assert alice.problems == [refused(422, "Unprocessable Entity"),  # bad.jmx
                                  refused(409, "Conflict")]  # a config while deployed  # fmt: skip
        assert bob.problems == [refused(404, "Not Found")]  # the direct link
        assert report.problems == []


def seconds(page: Page, charts: str) -> int:
    """Seconds on a set of the page's charts (``live``: the run's; ``label``: one label's)."""
    return int(page.evaluate(f"window.shibuyaCharts?.{charts}?.seconds.length ?? 0"))


def refused(status: int, reason: str) -> str:
    return ("console error: Failed to load resource: the server responded with a status of "
            f"{status} ({reason})")  # fmt: skip
