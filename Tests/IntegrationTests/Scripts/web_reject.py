#!/usr/bin/python3
"""Clicks Reject on an approval page whose free text was written to smuggle a decision.

Usage: web_reject.py SIGN_IN_LINK SCREENSHOT

The agent's title, description, labels, options and facts carry a quote followed by a
combining mark and a fake `name=decision value=approve hidden` attribute. The page must show
them as text: the only controls named `decision` are the buttons, no hidden input says
`approve`, and clicking Reject records a rejection. Exits non-zero with the reason otherwise.
"""
from browser import chromium, expect, run
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def main(link, screenshot):
    browser = chromium()
    try:
        browser.get(link)
        # The link shows a page; its button signs in (so a mail scanner's fetch does not).
        expect("Sign in as" in browser.find_element(By.TAG_NAME, "body").text, "the sign-in page lacks its button")
        browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(browser, 20).until(lambda b: "/ui/approvals/" in b.current_url)
        expect("/ui/approvals/" in browser.current_url, "the sign-in link did not open the approval: " + browser.current_url)
        approval_url = browser.current_url
        named = browser.find_elements(By.NAME, "decision")
        expect(named and all(element.tag_name == "button" for element in named),
               "something other than a button is named decision: %r" % [(e.tag_name, e.get_attribute("type")) for e in named])
        hidden = [e.get_attribute("name") for e in browser.find_elements(By.CSS_SELECTOR, "input[type=hidden]")]
        expect(hidden == ["csrf_token"], "the page has hidden inputs besides the CSRF token: %r" % hidden)
        expect("name=decision value=approve" in browser.find_element(By.TAG_NAME, "body").text,
               "the smuggled text is not shown as text")
        browser.save_screenshot(screenshot)
        browser.find_element(By.CSS_SELECTOR, "button[value=reject]").click()
        expect(browser.current_url == approval_url, "after deciding the browser is at " + browser.current_url)
        text = browser.find_element(By.TAG_NAME, "body").text
        expect("Rejected by manager@bank.example via the web" in text, "clicking Reject did not reject:\n" + text)
    finally:
        browser.quit()


if __name__ == "__main__":
    run(main)
