"""The HTML report, looked at in a real headless browser (Debian's ``chromium``).

Builds a small report with :func:`irtrepro.report.writer.write_report`, opens ``index.html``
(``file://``) in headless Chromium driven over the DevTools protocol, and checks: the page
loads, every ``<img>`` is decoded (``naturalWidth > 0``) and shown, every local ``href``/``src``
points at an existing file, every in-page ``#anchor`` at an element, and nothing is logged as
an error (console, uncaught exceptions, failed loads). A full-page screenshot is saved next to
the report; set ``IRTREPRO_SCREENSHOT=path.png`` to keep a copy.

The DevTools protocol runs over ``--remote-debugging-pipe`` (file descriptors 3 and 4,
NUL-separated JSON), so the test needs only the standard library: no network port, no
websocket client. Skipped when ``chromium`` is not installed (``make sysdeps`` installs it).
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from irtrepro.report.part import ReportPart  # noqa: E402
from irtrepro.report.writer import write_report  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="chromium is not installed (run `make sysdeps` as root, "
                                       "or apt-get install chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-extensions", "--mute-audio",
         "--no-default-browser-check", "--hide-scrollbars", "--remote-debugging-pipe",
         "--window-size=1200,900"]
TIMEOUT = 30.0


class Browser:
    """Headless Chromium driven over the DevTools pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, executable: str, profile: str):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds_3_and_4():  # in the child, before exec (then every fd but 0-4 is closed)
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)  # either may already be 3 or 4
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=fds_3_and_4, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._id = 0
        self._replies: dict[int, dict] = {}
        self.events: queue.Queue[dict] = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[bytes] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._from_chrome, "rb", buffering=0) as f:
            while chunk := f.read(1 << 16):
                buf += chunk
                *msgs, buf = buf.split(b"\0")
                for raw in msgs:
                    msg = json.loads(raw)
                    if "id" in msg:
                        with self._cond:
                            self._replies[msg["id"]] = msg
                            self._cond.notify_all()
                    else:
                        self.events.put(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        with self._cond:
            while self._id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"chromium gave no reply to {method} "
                                       f"(stderr: {b''.join(self._stderr)[-2000:]!r})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(self._id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_event(self, method: str, session: str, seen: list[dict]) -> dict:
        """Next event ``method`` of ``session``; every event read on the way goes to ``seen``."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {method} within {TIMEOUT} s")
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            seen.append(ev)
            if ev.get("method") == method and ev.get("sessionId") == session:
                return ev

    def drain(self, seen: list[dict]) -> None:
        while True:
            try:
                seen.append(self.events.get_nowait())
            except queue.Empty:
                return

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)


# what the page reports about itself, evaluated in the loaded page
PAGE_FACTS = """JSON.stringify({
  title: document.title,
  readyState: document.readyState,
  h1: [...document.querySelectorAll('h1')].map(e => e.textContent),
  bodyFontPx: parseFloat(getComputedStyle(document.body).fontSize),
  images: [...document.images].map(im => ({src: im.currentSrc || im.src, alt: im.alt,
      complete: im.complete, naturalWidth: im.naturalWidth, naturalHeight: im.naturalHeight,
      shownWidth: im.getBoundingClientRect().width})),
  links: [...document.querySelectorAll('[href],[src]')].map(e => ({tag: e.tagName,
      raw: e.getAttribute('href') ?? e.getAttribute('src'), url: e.href || e.src})),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  tables: document.querySelectorAll('table').length,
  figures: document.querySelectorAll('figure').length,
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
})"""


def _figure(kind: str):
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    if kind == "line":
        t = np.arange(0, 46, 0.5)
        ax.plot(t, 130 + 30 * np.tanh(t / 10) + rng.normal(0, 2, t.size))
        ax.set_xlabel("time since exercise start (min)")
        ax.set_ylabel("heart rate (min-1)")
    else:
        x = rng.uniform(13, 18, 8)
        ax.scatter(x, -0.3 * x + rng.normal(0, 0.2, 8))
        ax.set_xlabel("vIAT (km/h)")
        ax.set_ylabel("ΔTNV (degC)")
    ax.set_title(f"a {kind} figure", fontsize=10)
    fig.tight_layout()
    return fig


def _parts() -> list[ReportPart]:
    a = ReportPart("time_courses", "Time courses per protocol")
    a.figures["cardio"] = (_figure("line"), "Heart rate over time (synthetic), with ü & <b>.")
    a.tables["phase_means"] = (pd.DataFrame({"session": ["CON", "SI"], "phase": ["warmup"] * 2,
                                             "hr_mean": [131.2345, 140.5], "hr_sd": [5.1, np.nan]}),
                               "Phase means (HR 1/min).")
    b = ReportPart("individual", "Individual differences: ΔTNV and vIAT")
    b.figures["delta_tnv_viat"] = (_figure("scatter"), "ΔTNV against vIAT.")
    b.tables["correlations"] = (pd.DataFrame({"x": ["delta_tnv"], "y": ["viat"], "r": [-0.81],
                                              "p": [1.2e-3], "n": [8]}), "Correlations.")
    b.tables["delta tnv/subject"] = (pd.DataFrame({"subject": ["S01", "S02"],
                                                   "delta_tnv": [-0.4, -0.6]}), "Per subject.")
    b.notes.append("subject S03: one session only, left out of the reliability part")
    return [a, b]


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    index = write_report(_parts(), out, title="irtrepro browser test",
                         provenance={"git_commit": "test", "seeds": {"synth": 1}},
                         left_out=["session S04/IS: thermal file missing"],
                         intro="A small report written by the browser test.")
    return index


def load(index: Path, screenshot: Path | None = None) -> tuple[dict, list[dict]]:
    """Open ``index`` in headless Chromium: the page's facts and every DevTools event; with
    ``screenshot``, a full-page PNG of it at 1200 px width."""
    with tempfile.TemporaryDirectory(prefix="irtrepro-chromium-") as profile:
        browser = Browser(CHROMIUM, profile)
        try:
            target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.send("Target.attachToTarget",
                                   {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session=session)
            seen: list[dict] = []
            nav = browser.send("Page.navigate", {"url": index.as_uri()}, session=session)
            assert "errorText" not in nav, f"navigation failed: {nav}"
            browser.wait_event("Page.loadEventFired", session, seen)
            facts = json.loads(browser.send("Runtime.evaluate",
                                            {"expression": PAGE_FACTS, "returnByValue": True},
                                            session=session)["result"]["value"])
            if screenshot is not None:
                browser.send("Emulation.setDeviceMetricsOverride",
                             {"width": 1200, "height": int(facts["height"]),
                              "deviceScaleFactor": 1, "mobile": False}, session=session)
                shot = browser.send("Page.captureScreenshot",
                                    {"format": "png", "captureBeyondViewport": True},
                                    session=session)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            browser.drain(seen)
        finally:
            browser.close()
    return facts, seen


def image_problems(facts: dict) -> list[str]:
    out = []
    for im in facts["images"]:
        if not (im["complete"] and im["naturalWidth"] > 0 and im["naturalHeight"] > 0):
            out.append(f"{im['src']}: not rendered ({im})")
        elif im["shownWidth"] <= 200:
            out.append(f"{im['src']}: shown only {im['shownWidth']} px wide")
        if not im["alt"].strip():
            out.append(f"{im['src']}: no alt text")
    return out


def link_problems(facts: dict, root: Path) -> list[str]:
    """Every href/src that is not an existing file under ``root`` or an id on the page."""
    ids, out = set(facts["ids"]), []
    for link in facts["links"]:
        raw, url = link["raw"], link["url"]
        if raw.startswith("#"):
            if raw[1:] not in ids:
                out.append(f"{raw}: no element with that id")
            continue
        path = _local_path(url)
        if path is None:
            out.append(f"{raw}: not a local file ({url})")
        elif not path.is_file():
            out.append(f"{raw}: {path} does not exist")
        elif root not in path.parents:
            out.append(f"{raw}: {path} is outside the report folder")
    return out


def error_events(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, resources that failed to load."""
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
        elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"load failed: {p.get('errorText')}")
    return out


@pytest.fixture(scope="module")
def page(report):
    """The report loaded in Chromium: (facts, events, screenshot path)."""
    png = report.parent / "screenshot.png"
    facts, events = load(report, png)
    if keep := os.environ.get("IRTREPRO_SCREENSHOT"):
        shutil.copyfile(png, keep)
    return facts, events, png


def test_page_loads(page, report):
    facts, _, _ = page
    assert facts["readyState"] == "complete"
    assert facts["title"] == "irtrepro browser test"
    assert facts["h1"] == ["irtrepro browser test"]
    assert facts["figures"] == 2 and facts["tables"] == 3
    assert facts["bodyFontPx"] >= 12, "body text is too small to read"
    assert facts["width"] <= 1200, "the page scrolls sideways at 1200 px"


def test_every_image_renders(page):
    facts, _, _ = page
    assert len(facts["images"]) == 2
    assert not image_problems(facts), "\n".join(image_problems(facts))


def test_no_broken_link(page, report):
    facts, _, _ = page
    assert facts["links"], "no links on the page"
    problems = link_problems(facts, report.parent)
    assert not problems, "\n".join(problems)
    kinds = {Path(link["raw"]).suffix for link in facts["links"] if not link["raw"].startswith("#")}
    assert {".png", ".pdf", ".csv", ".md", ".tex"} <= kinds


def test_no_console_errors_or_failed_loads(page):
    _, events, _ = page
    assert not error_events(events), "\n".join(error_events(events))


def test_screenshot_is_a_page(page):
    _, _, png = page
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width == 1200 and height > 900, (width, height)


def test_checks_catch_a_broken_page(report, tmp_path):
    """The same checks fail on a copy of the report with a figure, a table and an anchor
    missing, and a script error."""
    bad = tmp_path / "bad"
    shutil.copytree(report.parent, bad)
    pngs = sorted((bad / "figures").glob("*.png"))
    pngs[0].unlink()
    sorted((bad / "tables").glob("*.csv"))[0].unlink()
    html = (bad / "index.html").read_text()
    html = html.replace("</body>", "<a href='#nowhere'>x</a><script>console.error('boom');"
                        "undefinedFunction()</script></body>")
    (bad / "index.html").write_text(html)
    facts, events = load(bad / "index.html")
    images = "\n".join(image_problems(facts))
    assert pngs[0].name in images and "not rendered" in images
    links = "\n".join(link_problems(facts, bad))
    assert "#nowhere: no element" in links and ".csv" in links and ".png" in links
    errors = "\n".join(error_events(events))
    assert "boom" in errors and "undefinedFunction" in errors
    assert "load failed" in errors or "ERR_FILE_NOT_FOUND" in errors
