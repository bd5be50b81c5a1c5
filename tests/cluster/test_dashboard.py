"""The dashboard in a real headless browser (Debian's chromium and chromium-driver, driven
by Selenium) against `jobline server` with a ServiceAccount's token, as a person uses it.

Each test saves screenshots of the pages it visits under test-output/screenshots/
(or $JOBLINE_TEST_OUTPUT/screenshots/).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from tests.cluster.jobline_fixtures import Jobline, eventually_gone
from tests.cluster.server_fixtures import RUN_PIPELINES, Server, caller_token
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("sim")
SHOTS = Path(os.environ.get("JOBLINE_TEST_OUTPUT", REPO / "test-output")) / "screenshots"


def _browser_binaries() -> tuple[str, str] | None:
    found = shutil.which("chromium"), shutil.which("chromedriver")
    return (found[0], found[1]) if found[0] and found[1] else None


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    binaries = _browser_binaries()
    if binaries is None:
        message = "needs chromium and chromedriver (apt-get install chromium chromium-driver)"
        if os.environ.get("JOBLINE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.add_argument("--window-size=1200,900")
    driver = webdriver.Chrome(service=Service(binaries[1]), options=options)
    driver.implicitly_wait(0)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The browser on the dashboard, signed in with one caller's token."""

    def __init__(self, driver: webdriver.Chrome, server: Server, namespace: str) -> None:
        self.driver, self.server, self.namespace = driver, server, namespace
        driver.set_window_size(1200, 900)

    def sign_in(self, token: str | None) -> None:
        self.driver.get(f"{self.server.url}/static/app.css")  # the origin, to reach its storage
        self.driver.execute_script("sessionStorage.clear(); localStorage.clear();")
        if token:
            self.driver.execute_script(
                "sessionStorage.setItem('jobline.token', arguments[0])", token
            )

    def open(self, route: str) -> None:
        self.driver.get(f"{self.server.url}/#/ns/{self.namespace}{route}")

    def wait(self, what: str, condition: Any, timeout: float = 60) -> Any:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(condition, what)

    def text_of(self, css: str) -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def field(self, name: str) -> str:
        return self.text_of(f'#run-fields dd[data-field="{name}"]')

    def wait_field(self, name: str, value: str, timeout: float = 60) -> None:
        def shows(_: Any) -> bool:
            try:
                return self.field(name) == value
            except Exception:
                return False

        self.wait(f"{name} to show {value}", shows, timeout)

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(SHOTS / f"{name}.png"))


@pytest.fixture
def page(browser: webdriver.Chrome, server: Server, jl: Jobline) -> Page:
    shown = Page(browser, server, jl.namespace)
    shown.sign_in(caller_token(jl.cluster, jl.namespace, "runner", RUN_PIPELINES))
    return shown


def test_a_run_goes_from_running_to_complete_without_reloading(page: Page, jl: Jobline) -> None:
    jl.pipeline(
        "web-run",
        {"sim.jobline.dev/duration": "8s", "sim.jobline.dev/log-lines": "5",
         "sim.jobline.dev/log-over": "4s"},
        description="Loads the warehouse.",
    )  # fmt: skip
    jl.start("web-run-1", "web-run")
    page.open("/jobs/web-run-1")
    page.wait_field("Status", "RUNNING")
    page.driver.execute_script("window.stillTheSamePage = true")
    page.shot("run-running")
    page.wait_field("Status", "COMPLETE", timeout=90)
    assert page.driver.execute_script("return window.stillTheSamePage") is True
    assert page.field("Exit code") == "0"
    page.wait("the whole log", lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log li")) == 5)
    lines = [
        li.text.split(maxsplit=1) for li in page.driver.find_elements(By.CSS_SELECTOR, "#log li")
    ]
    assert lines == [[str(i), f"line {i}"] for i in range(5)]
    page.shot("run-complete")

    page.open("")
    page.wait(
        "the run in the namespace's list",
        lambda d: (
            "COMPLETE" in d.find_element(By.CSS_SELECTOR, '#runs tr[data-run="web-run-1"]').text
        ),
    )
    assert "web-run" in page.text_of("main table")  # the Pipelines table
    page.shot("namespace")


def test_start_a_run_from_the_form_with_a_variable(page: Page, jl: Jobline) -> None:
    jl.pipeline(
        "web-start",
        variables=[
            {"name": "DAY", "required": True, "description": "Which day to load"},
            {"name": "MODE", "enum": ["full", "delta"], "default": "delta"},
            # Names of the form's own field and of an HTMLFormElement's members.
            {"name": "priority", "default": "high"},
            {"name": "length", "default": "10"},
        ],
    )
    page.open("/pipelines/web-start")
    day = page.wait("the form", expected_conditions.presence_of_element_located((By.ID, "var-DAY")))
    assert day.get_attribute("required") is not None
    assert "(required)" in page.text_of('label[for="var-DAY"]')
    mode = Select(page.driver.find_element(By.ID, "var-MODE"))
    assert mode.first_selected_option.text == "delta"
    assert [o.text for o in mode.options] == ["full", "delta"]
    page.shot("pipeline")
    day.send_keys("friday")
    mode.select_by_visible_text("full")
    page.driver.find_element(By.CSS_SELECTOR, "#start-form button[type=submit]").click()
    page.wait("the new run's page", lambda d: "/jobs/web-start-" in d.current_url)
    name = page.driver.current_url.rsplit("/", 1)[-1]
    assert jl.run(name)["spec"]["variables"] == {
        "DAY": "friday",
        "MODE": "full",
        "priority": "high",
        "length": "10",
    }
    assert jl.run(name)["spec"]["priority"] == 0
    page.wait_field("Status", "COMPLETE")


def test_a_malformed_address_says_what_is_wrong(page: Page, jl: Jobline) -> None:
    page.open("/jobs/%E0%A4%A")  # a cut escape: decodeURIComponent would throw
    problem = page.wait(
        "the page to say the run's name is invalid",
        lambda d: "invalid" in (text := d.find_element(By.ID, "problem").text) and text,
    )
    assert "run '%E0%A4%A'" in problem


def test_stop_and_delete_a_running_run(page: Page, jl: Jobline) -> None:
    jl.pipeline("web-long", {"sim.jobline.dev/duration": "300s"})
    jl.start("web-long-1", "web-long")
    page.open("/jobs/web-long-1")
    page.wait_field("Status", "RUNNING")
    page.driver.find_element(By.ID, "stop").click()
    page.wait("the confirmation", expected_conditions.alert_is_present()).accept()
    page.wait_field("Status", "STOPPED", timeout=90)
    assert page.field("Reason") == "Stopped"
    page.driver.find_element(By.ID, "delete").click()
    page.wait("the confirmation", expected_conditions.alert_is_present()).accept()
    page.wait("the namespace page", lambda d: d.current_url.endswith(f"/ns/{jl.namespace}"))
    eventually_gone("the run", lambda: jl.run("web-long-1"))


def test_a_token_without_permission_shows_what_is_missing(
    browser: webdriver.Chrome, server: Server, jl: Jobline
) -> None:
    nobody = caller_token(jl.cluster, jl.namespace, "nobody", [])
    page = Page(browser, server, jl.namespace)
    page.sign_in(None)
    page.open("")
    box = page.wait(
        "the sign-in form", expected_conditions.presence_of_element_located((By.ID, "token"))
    )
    page.shot("sign-in")
    # A token the apiserver does not accept: the form again, saying so.
    box.send_keys("not-a-token")
    page.driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()
    page.wait(
        "the refusal",
        lambda d: (
            "Not signed in" in d.find_element(By.CSS_SELECTOR, "main").text
            and d.find_elements(By.ID, "token")
        ),
    )
    box = page.driver.find_element(By.ID, "token")
    box.send_keys(nobody)
    page.driver.find_element(By.CSS_SELECTOR, "form.login button[type=submit]").click()

    def permission_error(driver: Any) -> str | None:
        # Each poll redraws the error, so find it afresh every time.
        try:
            text = str(driver.find_element(By.CSS_SELECTOR, "[role=alert]").text)
        except (NoSuchElementException, StaleElementReferenceException):
            return None
        return text if "cannot list resource" in text else None

    alert = page.wait("the permission error", permission_error)
    assert "Permission denied" in alert
    assert f"system:serviceaccount:{jl.namespace}:nobody" in alert
    assert f"Signed in as system:serviceaccount:{jl.namespace}:nobody" in page.text_of("#who")
    page.wait(
        "the sections to say they are not shown",
        lambda d: "Loading" not in d.find_element(By.CSS_SELECTOR, "main").text,
    )
    assert "Not shown: see the error above." in page.text_of("main")
    page.shot("permission-denied")


def test_readable_at_400_pixels_and_by_keyboard(page: Page, jl: Jobline) -> None:
    jl.pipeline("web-narrow-pipeline-with-a-long-name", schedule="*/5 * * * *")
    jl.start("web-narrow-1", "web-narrow-pipeline-with-a-long-name")
    jl.wait_done("web-narrow-1")
    page.driver.set_window_size(400, 800)
    page.open("")
    page.wait(
        "the run", lambda d: d.find_elements(By.CSS_SELECTOR, '#runs tr[data-run="web-narrow-1"]')
    )
    width = page.driver.execute_script("return document.documentElement.clientWidth")
    scroll = page.driver.execute_script("return document.documentElement.scrollWidth")
    assert scroll <= width, "the page scrolls sideways at 400 px"
    page.shot("namespace-400px")
    # Keyboard: a route change puts focus on the content; Tab walks its links and
    # controls in order, and Enter on the run's link opens the run.
    reached = []
    for _ in range(10):
        page.driver.switch_to.active_element.send_keys(Keys.TAB)
        reached.append(page.driver.switch_to.active_element.text)
        if reached[-1] == "web-narrow-1":
            break
    assert reached[0] == "web-narrow-pipeline-with-a-long-name", reached
    assert reached[-1] == "web-narrow-1", reached
    page.driver.switch_to.active_element.send_keys(Keys.ENTER)
    page.wait("the run's page", lambda d: d.current_url.endswith("/jobs/web-narrow-1"))
    page.open("/jobs/web-narrow-1")
    page.wait_field("Status", "COMPLETE")
    assert page.driver.execute_script(
        "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    page.shot("run-400px")
