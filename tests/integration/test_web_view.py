"""The web view in a real browser (Debian's headless chromium through selenium): two node
processes, a stranger's card with HTML and script in its name, skills and description; the page
shows cards, peers and the graph to anyone, renders the hostile card as text (its script never
runs), keeps tasks, ledger and orchestrator for the operator, and shows a submission's six-phase
timeline live over SSE once the operator signs in. A screenshot of each page goes to
build/artifacts/."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .browser import chromium_session, ensure_browser, screenshot
from .support import EXAMPLES, Cluster, card_ids, wait_until

pytestmark = pytest.mark.integration

HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">Evil</b>'
HOSTILE_AGENT = f"""\
id: hostile
name: '{HOSTILE_NAME}'
description: '<script>window.__pwned=2</script> summarizes <i>anything</i> & more'
price: {{amount: 0, token: NOOS, unit: task}}
skills:
  - name: '<svg onload="window.__pwned=3">'
    description: Score how readable a text is.
    tags: [text]
    tool: readability
"""


def wait_for(driver: Any, predicate: Callable[[Any], Any], timeout: float = 60.0) -> Any:
    """selenium's own wait: poll ``predicate(driver)`` until truthy (fails the test otherwise)."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(
            driver,
            timeout,
            poll_frequency=0.25,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(predicate)
    except TimeoutException:
        pytest.fail(f"the page did not show it within {timeout}s: {driver.current_url}")


def texts(driver: Any, selector: str) -> list[str]:
    """The rendered text of every element ``selector`` matches, read in one script call: the
    page re-renders live, so elements found first and read one by one can go stale between."""
    found: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim())",
        selector,
    )
    return found


def csp_violations(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


def test_web_view_in_a_browser(cluster: Cluster, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    ensure_browser()  # installs chromium (root + apt) or skips, before any node starts
    hostile = tmp_path / "hostile.yaml"
    hostile.write_text(HOSTILE_AGENT)
    agent = cluster.start("agent", agents=[EXAMPLES / "calculator.yaml", hostile])
    requester = cluster.start("requester", bootstrap=[agent.multiaddr])
    wanted = {f"{agent.peer_id}/exact-calculator", f"{agent.peer_id}/hostile"}
    wait_until(lambda: wanted <= card_ids(requester), timeout=60)
    url = requester.rpc_url

    with chromium_session() as driver:
        # ---- anyone: Network ----
        driver.get(url + "/#network")
        wait_for(driver, lambda d: requester.peer_id in d.find_element(By.ID, "identity").text)
        wait_for(driver, lambda d: agent.peer_id in d.find_element(By.ID, "peers").text)
        wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#graph g.peer")) >= 2)
        assert driver.find_elements(By.CSS_SELECTOR, "#graph line.edge.connected")
        assert "rejected, by reason" in texts(driver, "#gossip")[0].lower()
        screenshot(driver, "network")

        # ---- anyone: Agents, with the hostile card rendered as text ----
        driver.get(url + "/#agents")
        wait_for(driver, lambda d: HOSTILE_NAME in texts(d, "#cards .agent-name"))
        [cards] = texts(driver, "#cards")
        assert "Exact Calculator" in cards
        assert "<script>window.__pwned=2</script>" in cards
        assert '<svg onload="window.__pwned=3">' in cards
        assert not texts(driver, "#cards img, #cards script, #cards svg, #cards i, #cards b")
        assert driver.execute_script("return window.__pwned") is None
        assert len(driver.find_elements(By.TAG_NAME, "script")) == 2  # the page's own two
        assert driver.find_element(By.CSS_SELECTOR, "#recruit-form button").get_attribute(
            "disabled"
        )
        screenshot(driver, "agents-anonymous")

        # ---- anyone: the operator's pages stay closed ----
        driver.get(url + "/#tasks")
        wait_for(driver, lambda d: "operator" in d.find_element(By.ID, "tasks-locked").text)
        assert not driver.find_element(By.ID, "tasks-open").is_displayed()
        assert httpx.get(url + "/ui/api/events", timeout=10).status_code == 401

        # ---- the operator signs in once; the token never enters a URL ----
        driver.find_element(By.ID, "token-input").send_keys(requester.token)
        driver.find_element(By.CSS_SELECTOR, "#token-form button").click()
        wait_for(driver, lambda d: d.find_element(By.ID, "tasks-open").is_displayed())
        wait_for(driver, lambda d: d.find_element(By.ID, "live").text == "live")
        assert requester.token not in driver.current_url

        # ---- Tasks: a submission's timeline appears and advances live (no reload) ----
        driver.find_element(By.ID, "submit-task").send_keys("what is 17/3 + 2^10?")
        driver.find_element(By.CSS_SELECTOR, "#submit-form button").click()
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "article.submission"))
        first_seen = texts(driver, "article.submission header")[0]
        wait_for(
            driver,
            lambda d: "completed" in texts(d, "article.submission header")[0],
            timeout=180,  # the first recruit loads the embedding model
        )
        done = texts(driver, "article.submission li.phase.done .phase-name")
        assert [p.lower() for p in done] == [
            "publish",
            "discover",
            "recruit",
            "execute",
            "feedback",
        ]
        article = texts(driver, "article.submission")[0]
        assert "Exact Calculator" in article and "3089/3" in article
        assert "running" in first_seen or "completed" in first_seen
        assert "no task has reached" in texts(driver, "#tasks")[0]  # no agents here
        screenshot(driver, "tasks")

        # ---- Agents as the operator: the rating's evidence, and a recruit search ----
        driver.get(url + "/#agents")
        wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#cards details"))
        driver.find_element(By.ID, "recruit-task").send_keys("convert 5 miles to km")
        driver.find_element(By.CSS_SELECTOR, "#recruit-form button").click()
        wait_for(
            driver, lambda d: "stage 3" in d.find_element(By.ID, "recruit-result").text.lower()
        )
        result = driver.find_element(By.ID, "recruit-result").text
        assert "Exact Calculator" in result and "not relevant" in result
        assert not driver.find_elements(By.CSS_SELECTOR, "#recruit-result img")
        screenshot(driver, "agents")

        # ---- Ledger and Orchestrator (this node has neither) ----
        driver.get(url + "/#ledger")
        wait_for(driver, lambda d: "no ledger" in d.find_element(By.ID, "ledger").text)
        screenshot(driver, "ledger")
        driver.get(url + "/#orchestrator")
        wait_for(driver, lambda d: "no orchestrator" in d.find_element(By.ID, "orchestrator").text)
        screenshot(driver, "orchestrator")

        assert driver.execute_script("return window.__pwned") is None
        assert csp_violations(driver) == []  # the page keeps its own policy

        # ---- the second wall: even an inline script that got into the page would not run ----
        injected = driver.execute_script(
            "const s = document.createElement('script');"
            " s.textContent = 'window.__inline = 1'; document.body.append(s);"
            " return window.__inline === undefined;"
        )
        assert injected is True
        assert any("script-src" in v for v in csp_violations(driver))
