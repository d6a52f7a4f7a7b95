"""The studio page end to end in a real headless Chromium (Debian's ``chromium``, driven by Playwright through
``executable_path``; ``playwright install`` is never needed): generate, select bars on the piano roll, infill and see
the kept bars unchanged; continue, bridge, upload, play, download, and errors shown on the page; the notation of the
selected melody (bars selected on it, MusicXML/ABC/SVG downloads, ABC copied), and an ABC tune pasted in, infilled
and continued.

Skipped, with the reason, only where no Chromium binary exists (``apt-get install chromium``) or Playwright is
missing. Set MELODIFF_CHROMIUM to a browser binary to use another one, and MELODIFF_STUDIO_SCREENSHOT to a PNG path
to save a screenshot of the page."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from melodiff.music.melody import Melody
from melodiff.music.midi_io import melody_to_score
from melodiff.pipeline import Pipeline
from melodiff.server import create_app
from test_contexts import context_pipeline
from tiny_model import triple_pipeline

sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need Playwright: pip install "
                               "playwright (no `playwright install`: they use the system's Chromium)")
uvicorn = pytest.importorskip("uvicorn")
MakeMelody = Callable[[int, int], Melody]
TIMEOUT_MS = 20_000


def chromium_binary() -> str | None:
    if os.environ.get("MELODIFF_CHROMIUM"):
        return os.environ["MELODIFF_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@contextmanager
def serving(pipeline: Pipeline, meters: dict | None = None) -> Iterator[str]:
    """The studio over ``pipeline`` (and the pipelines of ``meters``) on a free loopback port, in a thread; yields its
    URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(pipeline, meters=meters), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the studio server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def server_url(pipeline: Pipeline) -> Iterator[str]:
    with serving(pipeline) as url:
        yield url


@pytest.fixture(scope="module")
def context_url() -> Iterator[str]:
    """A studio over a tiny untrained context model (all four controls; styles music21:a and music21:b)."""
    with serving(context_pipeline()) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no Chromium binary found (apt-get install chromium, or set MELODIFF_CHROMIUM): browser tests "
                    "skipped")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=binary, args=["--no-sandbox", "--autoplay-policy="
                                                                  "no-user-gesture-required"])
        yield browser
        browser.close()


@contextmanager
def open_page(browser, url: str) -> Iterator:
    """A fresh page on the studio at ``url``, once it says it is ready; fails on any page error or console error
    other than the expected error answers."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    expected = ("status of 415", "status of 422")  # the error cases below, shown on the page

    def console(msg) -> None:
        if msg.type == "error" and not any(e in msg.text for e in expected):
            errors.append(f"{msg.text} ({msg.location.get('url')})")

    page.on("console", console)
    page.goto(url)
    sync_api.expect(page.locator("#health")).to_contain_text("ready")
    try:
        yield page
    finally:
        context.close()
    assert errors == [], errors


@pytest.fixture
def page(browser, server_url: str) -> Iterator:
    with open_page(browser, server_url) as page:
        yield page


@pytest.fixture
def context_page(browser, context_url: str) -> Iterator:
    with open_page(browser, context_url) as page:
        yield page


def generate(page, bars: int, count: int) -> None:
    before = page.locator(".melody").count()
    page.fill("#bars", str(bars))
    page.fill("#num-samples", str(count))
    page.select_option("#sampler", "ddim")
    page.fill("#steps", "4")
    page.click("#generate")
    sync_api.expect(page.locator(".melody")).to_have_count(before + count)
    sync_api.expect(page.locator("#status-text")).to_contain_text("new melod")


def notes_before(card, step: int) -> list[tuple[str, str, str]]:
    """(pitch, start, end) of a card's note rectangles that start before ``step``, as drawn."""
    rects = card.locator(".roll .note").evaluate_all(
        "els => els.map(e => [e.dataset.pitch, e.dataset.start, e.dataset.end])")
    return [tuple(r) for r in rects if int(r[1]) < step]


def test_generate_select_bars_and_infill(page) -> None:
    generate(page, bars=4, count=2)
    cards = page.locator(".melody")
    source = cards.nth(1)  # the newest card is first; results are selected as they arrive
    source_id = source.get_attribute("data-id")
    assert source.locator(".bar-hit").count() == 4 and "4 bars" in source.locator(".meta").inner_text()

    source.locator('.bar-hit[data-bar="2"]').click()
    source.locator('.bar-hit[data-bar="3"]').click(modifiers=["Shift"])
    sync_api.expect(page.locator("#selection-text")).to_contain_text("bars 3–4")
    assert source.get_attribute("class") == "melody active"
    bar_width = float(source.locator(".roll").get_attribute("data-bar-width"))
    selection = source.locator(".selection")
    assert selection.get_attribute("visibility") == "visible"
    assert float(selection.get_attribute("x")) == 2 * bar_width
    assert float(selection.get_attribute("width")) == 2 * bar_width
    assert page.input_value("#sel-start") == "3" and page.input_value("#sel-end") == "4"

    page.fill("#temperature", "1")
    page.fill("#num-samples", "1")
    page.click("#infill")
    sync_api.expect(cards).to_have_count(3)
    result = cards.first
    sync_api.expect(result.locator(".kept")).to_contain_text("every other bar is identical to the source ✓")
    assert result.locator(".label").inner_text().startswith("bars 3-4 infilled")
    shade = result.locator(".roll .regenerated")  # chunk 1 of the result: bars 3-4
    assert float(shade.get_attribute("x")) == 2 * bar_width and float(shade.get_attribute("width")) == 2 * bar_width
    assert notes_before(result, 32) == notes_before(page.locator(f"#melody-{source_id}"), 32)


def test_drag_select_continue_and_bridge(page) -> None:
    generate(page, bars=2, count=2)
    card = page.locator(".melody").first
    first = card.locator('.bar-hit[data-bar="0"]').bounding_box()
    second = card.locator('.bar-hit[data-bar="1"]').bounding_box()
    page.mouse.move(first["x"] + 10, first["y"] + 20)
    page.mouse.down()
    page.mouse.move(second["x"] + 10, second["y"] + 20, steps=4)
    page.mouse.up()
    sync_api.expect(page.locator("#selection-text")).to_contain_text("bars 1–2")

    page.fill("#num-samples", "1")
    page.fill("#continue-bars", "2")
    page.click("#continue")
    sync_api.expect(page.locator(".melody")).to_have_count(3)
    sync_api.expect(page.locator(".melody").first.locator(".meta")).to_contain_text("4 bars")
    sync_api.expect(page.locator(".melody").first.locator(".kept")).to_contain_text("✓")

    assert page.locator("#bridge-target option").count() == 2
    page.fill("#bridge-bars", "2")
    page.click("#bridge")
    sync_api.expect(page.locator(".melody")).to_have_count(4)
    newest = page.locator(".melody").first
    sync_api.expect(newest.locator(".label")).to_contain_text("bridged over 2 bars")
    sync_api.expect(newest.locator(".kept")).to_contain_text("✓")


def test_upload_play_download_and_errors(page, server_url: str, make_melody: MakeMelody, tmp_path: Path) -> None:
    path = tmp_path / "my tune.mid"
    path.write_bytes(melody_to_score(make_melody(0, 4)).dumps_midi())
    page.set_input_files("#file", str(path))
    page.click("#upload")
    card = page.locator(".melody").first
    sync_api.expect(card.locator(".label")).to_have_text("my tune.mid")
    sync_api.expect(page.locator("#status-text")).to_contain_text("read 1 melody")

    card.locator(".play").click()
    audio = card.locator("audio")
    sync_api.expect(audio).to_be_visible()
    page.wait_for_function("a => a.readyState >= 1 && a.duration > 0", arg=audio.element_handle())
    assert "/wav?tempo=120" in audio.get_attribute("src")

    with page.expect_download() as download:
        card.locator(".midi").click()
    assert Path(download.value.path()).read_bytes().startswith(b"MThd")

    bad = tmp_path / "notes.txt"
    bad.write_text("not music")
    page.set_input_files("#file", str(bad))
    page.click("#upload")
    sync_api.expect(page.locator("#error")).to_contain_text("notes.txt is not a music file")

    # a request the server refuses (the page's own limits bypassed): its message is shown
    page.evaluate("document.getElementById('steps').removeAttribute('max')")
    page.fill("#steps", "500")
    page.click("#generate")
    sync_api.expect(page.locator("#error")).to_contain_text("steps: at most 100 for this model")
    shot = os.environ.get("MELODIFF_STUDIO_SCREENSHOT")
    if shot:
        page.evaluate("document.getElementById('error').hidden = true")
        page.screenshot(path=shot, full_page=True)


def test_generate_in_a_form(page) -> None:
    """The form field: AABB over 16 bars draws sections 1-2 and 3-4 of 4 bars each as the same notes."""
    page.fill("#form", "AABB")
    page.fill("#temperature", "1")  # sampled decoding: equal sections come from the form, not from a greedy decoder
    generate(page, bars=16, count=1)
    card = page.locator(".melody").first
    rects = card.locator(".roll .note").evaluate_all("els => els.map(e => [+e.dataset.pitch, +e.dataset.start, "
                                               "+e.dataset.end])")
    section = 4 * 16  # steps

    def notes(index: int) -> list[tuple[int, int, int]]:
        first = index * section
        return [(p, s - first, e - first) for p, s, e in rects if first <= s < first + section]

    assert notes(0) and notes(0) == notes(1) and notes(2) == notes(3) and notes(0) != notes(2)
    page.fill("#form", "ABC")
    page.click("#generate")
    sync_api.expect(page.locator("#error")).to_contain_text("form ABC: 3 sections of 8 bars last 24 bars, not 16")


TUNE = "X:1\nT:The Scale Reel\nM:4/4\nL:1/8\nK:D\nDEFG ABcd|edcB AGFE|D2F2 A2d2|d8|\n"


def test_notation_downloads_and_a_pasted_abc_tune(page) -> None:
    """Paste an ABC tune: its notation shows; bars clicked on the notation are selected on both views; the MusicXML,
    ABC and SVG download; the ABC is copied; the tune is infilled and continued, the new bars coloured on the sheet."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#abc-paste summary")
    page.fill("#abc-text", TUNE)
    page.click("#abc-open")
    card = page.locator(".melody").first
    sync_api.expect(card.locator(".label")).to_contain_text("The Scale Reel")
    sync_api.expect(page.locator("#status-text")).to_contain_text("read 1 melody from pasted ABC")
    sheet = card.locator(".sheet")  # the selected melody is shown as notation
    sync_api.expect(sheet.locator("g.measure")).to_have_count(4)
    assert card.locator(".sheet-toggle").get_attribute("aria-pressed") == "true"

    sheet.locator('g.measure[data-bar="2"]').click()
    sheet.locator('g.measure[data-bar="3"]').click(modifiers=["Shift"])
    sync_api.expect(page.locator("#selection-text")).to_contain_text("bars 3–4")
    selected = sheet.locator("g.measure").evaluate_all("els => els.map(e => e.classList.contains('selected'))")
    assert selected == [False, False, True, True]
    assert card.locator(".roll .selection").get_attribute("visibility") == "visible"  # the piano roll agrees
    shot = os.environ.get("MELODIFF_NOTATION_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)

    for kind, content in (("musicxml", b'<score-partwise version="4.0">'), ("abc", b"K:D"), ("svg", b"<svg")):
        with page.expect_download() as download:
            card.locator(f".download-{kind}").click()
        assert download.value.suggested_filename.endswith(f".{kind}")
        assert content in Path(download.value.path()).read_bytes()
    card.locator(".copy-abc").click()
    sync_api.expect(page.locator("#status-text")).to_contain_text("ABC copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("X:1\nT:pasted ABC") and "\nK:D\n" in copied

    page.fill("#num-samples", "1")
    page.select_option("#sampler", "ddim")
    page.fill("#steps", "4")
    page.click("#infill")
    sync_api.expect(page.locator(".melody")).to_have_count(2)
    infilled = page.locator(".melody").first
    sync_api.expect(infilled.locator(".kept")).to_contain_text("✓")
    sync_api.expect(infilled.locator(".sheet g.measure")).to_have_count(4)
    marked = infilled.locator(".sheet g.measure").evaluate_all(
        "els => els.map(e => e.classList.contains('regenerated'))")
    assert marked == [False, False, True, True]

    card.locator('.roll .bar-hit[data-bar="0"]').click()  # back to the pasted tune, on its piano roll
    page.fill("#continue-bars", "2")
    page.click("#continue")
    sync_api.expect(page.locator(".melody")).to_have_count(3)
    continued = page.locator(".melody").first
    sync_api.expect(continued.locator(".sheet g.measure")).to_have_count(6)
    sync_api.expect(continued.locator(".sheet g.measure.regenerated")).to_have_count(2)
    continued.locator(".sheet-toggle").click()
    sync_api.expect(continued.locator(".sheet-wrap")).to_be_hidden()

    page.fill("#abc-text", "X:1\nK:Hm\nabc\n")
    page.click("#abc-open")
    sync_api.expect(page.locator("#error")).to_contain_text("pasted ABC: could not parse the score")


def drawn_notes(card) -> list[tuple[int, int, int]]:
    """(pitch, start, end) of every note rectangle on a card's piano roll."""
    return [tuple(r) for r in card.locator(".roll .note").evaluate_all(
        "els => els.map(e => [+e.dataset.pitch, +e.dataset.start, +e.dataset.end])")]


def posted(request) -> dict:
    return request.value.post_data_json


def test_controls_a_model_without_contexts_takes(page) -> None:
    """Only the key and range are offered (density and style disabled, saying why); the range is sent and obeyed."""
    sync_api.expect(page.locator("#health")).to_contain_text("controls: key, range")
    for name in ("density", "style"):
        assert page.locator(f"#{name}").is_disabled()
        assert "this model takes no" in page.locator(f"label:has(#{name})").get_attribute("title")
    assert page.locator("#range").is_enabled()
    assert "D4-B5" in page.locator("label:has(#range)").get_attribute("title")
    page.fill("#range", "C5-C6")
    page.fill("#temperature", "1")
    with page.expect_request(lambda r: r.url.endswith("/api/generate")) as request:
        generate(page, bars=4, count=2)
    assert posted(request)["range"] == "C5-C6" and not {"key", "density", "style"} & set(posted(request))
    for card in page.locator(".melody").all():
        notes = drawn_notes(card)
        assert notes and all(72 <= p <= 84 for p, _, _ in notes)


def test_generate_and_infill_with_controls(context_page) -> None:
    """A context model's page: key, range, density and a style picked by its short name go with generate, all but
    the key with infill; every note drawn lies in the range; a bad range is the server's one line in red."""
    page = context_page
    sync_api.expect(page.locator("#health")).to_contain_text("controls: key, range, density, style")
    assert page.locator("#style option").all_inner_texts() == ["any", "a", "b"]
    page.fill("#key", "Em")
    page.fill("#range", "D4-B5")
    page.fill("#density", "4")
    page.select_option("#style", label="a")
    page.fill("#temperature", "1")
    with page.expect_request(lambda r: r.url.endswith("/api/generate")) as request:
        generate(page, bars=4, count=1)
    assert {k: posted(request)[k] for k in ("key", "range", "density", "style")} == {
        "key": "Em", "range": "D4-B5", "density": 4, "style": "music21:a"}
    card = page.locator(".melody").first
    assert card.locator(".label").inner_text().endswith("(key Em, range D4-B5, density 4, style music21:a)")
    notes = drawn_notes(card)
    assert notes and all(62 <= p <= 83 for p, _, _ in notes)

    page.select_option("#style", label="b")
    card.locator('.bar-hit[data-bar="0"]').click()
    card.locator('.bar-hit[data-bar="1"]').click(modifiers=["Shift"])
    with page.expect_request(lambda r: r.url.endswith("/api/infill")) as request:
        page.click("#infill")
    assert posted(request)["style"] == "music21:b" and posted(request)["range"] == "D4-B5"
    assert "key" not in posted(request)  # infill keeps the melody's key
    sync_api.expect(page.locator(".melody")).to_have_count(2)
    infilled = page.locator(".melody").first
    sync_api.expect(infilled.locator(".kept")).to_contain_text("✓")
    new = [p for p, start, _ in drawn_notes(infilled) if start < 32]
    assert new and all(62 <= p <= 83 for p in new)

    page.fill("#range", "D4-Z9")
    page.click("#generate")
    sync_api.expect(page.locator("#error")).to_contain_text("unknown pitch 'Z9'")


def test_generate_a_jig_and_a_waltz(browser, pipeline: Pipeline) -> None:
    """The meter field lists the meters the model folder makes; a 6/8 melody is drawn in bars of 12 steps, and a 3/4
    one."""
    meters = {m: functools.partial(triple_pipeline, 0, m) for m in ("3/4", "6/8")}
    with serving(pipeline, meters) as url, open_page(browser, url) as page:
        assert page.locator("#meter option").all_inner_texts() == ["4/4", "3/4", "6/8"]
        for meter in ("6/8", "3/4"):
            page.select_option("#meter", meter)
            generate(page, bars=4, count=1)
            card = page.locator(".melody").first
            sync_api.expect(card.locator(".roll .bar-number")).to_have_count(4)
            ends = card.locator(".roll .note").evaluate_all("els => els.map(e => +e.dataset.end)")
            assert ends and max(ends) <= 4 * 12
            assert f"{4} bars of {meter}" in card.locator(".roll").get_attribute("aria-label")
