"""The browser tests: a package, so that its conftest.py is `browser.conftest` and does not
shadow `tests/conftest.py` (imported by its bare name), and so that the JupyterLab server
and Chromium its conftest starts live only while these tests run (package scope)."""
