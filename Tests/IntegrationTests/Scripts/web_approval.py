#!/usr/bin/python3
"""Drives the approval web pages in headless Chromium, as an approver would.

Usage: web_approval.py SIGN_IN_LINK SCREENSHOT_DIR

Opens the sign-in link from a notification, checks the approval page, submits once with a
forged CSRF token (refused, nothing decided), fills in the form and clicks Approve, then
looks at the decided page, the inbox and the workflow's timeline. Saves a screenshot of
each page. Exits non-zero with the reason on the first thing that is not as expected.
"""
import os

from browser import chromium, expect, run
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from selenium.webdriver.support.ui import Select


def main(link, shots):
    os.makedirs(shots, exist_ok=True)
    browser = chromium()
    try:
        def shot(name):
            browser.save_screenshot(os.path.join(shots, name + ".png"))

        def text():
            return browser.find_element(By.TAG_NAME, "body").text

        # The link signs in (an HttpOnly cookie scripts cannot read) and opens the approval.
        browser.get(link)
        # The link shows a page; its button signs in (so a mail scanner's fetch does not).
        expect("Sign in as" in browser.find_element(By.TAG_NAME, "body").text, "the sign-in page lacks its button")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(browser, 20).until(lambda b: "/ui/approvals/" in b.current_url)
        expect("/ui/approvals/" in browser.current_url, "the sign-in link did not open the approval: " + browser.current_url)
        session = next((c for c in browser.get_cookies() if c["name"].startswith("hitl_s_")), None)
        expect(session and session["httpOnly"] and session.get("sameSite") == "Lax", "the session cookie is not HttpOnly and SameSite=Lax: %r" % session)
        expect("hitl_s_" not in browser.execute_script("return document.cookie"), "scripts can read the session cookie")
        expect("Wire transfer" in text() and "6000" in text(), "the approval page lacks the title or the facts:\n" + text())
        expect("The beneficiary is a new supplier." in text(), "the approval page lacks the workflow's conversation:\n" + text())
        shot("1-approval")
        approval_url = browser.current_url

        # A form whose CSRF token is not ours is refused and decides nothing.
        Select(browser.find_element(By.NAME, "reason")).select_by_visible_text("budget")
        browser.execute_script("document.getElementsByName('csrf_token')[0].value = 'forged'")
        browser.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        expect("did not come from this site" in text(), "a forged CSRF token was not refused:\n" + text())
        shot("2-csrf-refused")

        # The real form: choose, type, comment, click Approve.
        browser.get(approval_url)
        expect("Waiting" not in text() and browser.find_elements(By.CSS_SELECTOR, "button[value=approve]"), "the approval is no longer open after the refused post:\n" + text())
        Select(browser.find_element(By.NAME, "reason")).select_by_visible_text("budget")
        browser.find_element(By.NAME, "limit").send_keys("5000")
        browser.find_element(By.NAME, "comment").send_keys("fine by me")
        browser.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        expect(browser.current_url == approval_url, "after deciding the browser is at " + browser.current_url)
        expect("Approved by manager@bank.example via the web" in text(), "the decided page does not say who decided and how:\n" + text())
        expect("fine by me" in text(), "the decided page lacks the comment")
        shot("3-decided")

        browser.find_element(By.LINK_TEXT, "Inbox").click()
        expect("Nothing is waiting for your decision" in text(), "the inbox still lists the decided approval:\n" + text())
        shot("4-inbox")

        browser.get(approval_url)
        browser.find_element(By.LINK_TEXT, "Timeline").click()
        timeline = text()
        for entry in ("requested by agent@bank.example", "manager@bank.example voted approve via web", "Approved by manager@bank.example"):
            expect(entry in timeline, "the timeline lacks '%s':\n%s" % (entry, timeline))
        shot("5-timeline")
    finally:
        browser.quit()


if __name__ == "__main__":
    run(main)
