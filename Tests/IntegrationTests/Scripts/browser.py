"""What the browser scripts share: headless Chromium, a checked expectation, a main that
exits non-zero with the reason on the first thing that is not as expected."""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def chromium():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1000,1100"):
        options.add_argument(argument)
    options.binary_location = "/usr/bin/chromium"
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    browser.set_page_load_timeout(30)
    return browser


def run(main):
    try:
        main(*sys.argv[1:])
    except AssertionError as failure:
        print(failure)
        sys.exit(1)
