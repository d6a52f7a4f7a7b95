"""The studio's sheet music: MusicXML, ABC and SVG of a stored melody (notes read back equal to its notes), and ABC
text pasted in, then infilled and continued; a pasted waltz or jig is read in its meter; bad ABC (a meter melodiff
does not read among it) is a 4xx with one line."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from melodiff.music import notation
from melodiff.music.melody import Melody, Note
from melodiff.music.meter import FILE_METERS, SIX_EIGHT, THREE_FOUR
from melodiff.music.midi_io import melody_to_score
from melodiff.server import media

FAST = {"sampler": "ddim", "steps": 4}
TUNE = "X:1\nT:The Scale Reel\nM:4/4\nL:1/8\nK:D\nDEFG ABcd|edcB AGFE|D2F2 A2d2|d8|\n"


def upload(client: TestClient, melody: Melody) -> str:
    response = client.post("/api/melodies", files={"file": ("tune.mid", melody_to_score(melody).dumps_midi())})
    assert response.status_code == 200, response.text
    return response.json()["melodies"][0]["id"]


def test_musicxml_abc_and_svg_of_a_melody(client: TestClient, make_melody: Callable[[int, int], Melody]) -> None:
    melody = make_melody(11, 6)
    melody_id = upload(client, melody)
    musicxml = client.get(f"/api/melodies/{melody_id}/musicxml", params={"tempo": 100})
    assert musicxml.status_code == 200 and musicxml.headers["content-type"] == media_type("musicxml")
    assert f'filename="melodiff-{melody_id[:8]}.musicxml"' in musicxml.headers["content-disposition"]
    assert notation.read_notes(musicxml.text, "musicxml") == melody.to_notes()
    abc = client.get(f"/api/melodies/{melody_id}/abc", params={"tempo": 100})
    assert abc.status_code == 200 and abc.headers["content-type"] == "text/vnd.abc; charset=utf-8"
    assert "T:tune.mid" in abc.text and "Q:1/4=100" in abc.text
    assert notation.read_notes(abc.text, "abc") == melody.to_notes()
    svg = client.get(f"/api/melodies/{melody_id}/svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["content-security-policy"].startswith("default-src 'none'")
    assert len(re.findall(r'class="measure"', svg.text)) == 6
    missing = "0" * 32
    assert client.get(f"/api/melodies/{missing}/svg").status_code == 404
    assert client.get(f"/api/melodies/{melody_id}/abc", params={"tempo": 0}).status_code == 422


def media_type(kind: str) -> str:
    return {"musicxml": "application/vnd.recordare.musicxml+xml"}[kind]


def test_an_engraver_failure_is_a_422(client: TestClient, make_melody, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise notation.NotationError("Verovio drew 0 of the 2 bars")

    monkeypatch.setattr(notation, "engrave", fail)
    media.sheet.cache_clear()
    melody_id = upload(client, make_melody(12, 2))
    response = client.get(f"/api/melodies/{melody_id}/svg")
    assert response.status_code == 422 and response.json()["detail"] == "Verovio drew 0 of the 2 bars"


def test_pasted_abc_can_be_infilled_and_continued(client: TestClient, run_job) -> None:
    response = client.post("/api/melodies/abc", json={"text": TUNE})
    assert response.status_code == 200, response.text
    (item,) = response.json()["melodies"]
    assert item["label"].startswith("pasted ABC “The Scale Reel”") and item["num_bars"] == 4
    assert [n["pitch"] for n in item["notes"][:4]] == [62, 64, 66, 67]
    infilled = run_job(client, "/api/infill", {"melody_id": item["id"], "start_bar": 2, "end_bar": 4, **FAST})
    assert infilled["status"] == "done" and infilled["melodies"][0]["regenerated"] == [32, 64]
    continued = run_job(client, "/api/continue", {"melody_id": item["id"], "bars": 2, **FAST})
    assert continued["status"] == "done" and continued["melodies"][0]["num_bars"] == 6
    abc = client.get(f"/api/melodies/{item['id']}/abc").text
    assert "K:D" in abc.splitlines() and notation.read_notes(abc, "abc")[0].pitch == 62


@pytest.mark.parametrize(("text", "status", "message"), [
    ("just words", 422, "the pasted text is not an ABC tune: it has no K: (key) line"),
    ("X:1\nK:Hm\nabc\n", 422, "pasted ABC: could not parse the score"),
    ("X:1\nM:5/8\nL:1/8\nK:C\nabcde|abcde|abcde|abcde|\n", 422,
     f"no monophonic melody found (meter 5/8 (1)); melodiff reads melodies in {', '.join(FILE_METERS)}"),
    ("X:1\nT:long\nM:4/4\nL:1/8\nK:C\nCDEF GABc|C100000000|]\n", 422, "melodiff reads at most 4096 bars"),
    ("", 422, "text: String should have at least 1 character"),
    ("K:C\n" + "c" * 300_000, 422, "text: String should have at most"),
])
def test_bad_pasted_abc_is_one_line(client: TestClient, text: str, status: int, message: str) -> None:
    response = client.post("/api/melodies/abc", json={"text": text})
    detail = response.json()["detail"]
    assert response.status_code == status and message in detail and "\n" not in detail, response.text


def test_a_pasted_waltz_and_jig_are_read_in_their_meters() -> None:
    waltz = "X:1\nT:Waltz\nM:3/4\nL:1/8\nK:G\nG2 B2 d2|g4 fe|d6|B2 A2 G2|]\n"
    ((melody, label),), message = media.read_abc_text(waltz, 256)
    assert melody.meter == THREE_FOUR and len(melody) == 4 * 12 and label.startswith("pasted ABC “Waltz”")
    assert [(n.pitch, n.start, n.end) for n in melody.to_notes()[:4]] == [(67, 0, 4), (71, 4, 8), (74, 8, 12),
                                                                        (79, 12, 20)]
    assert notation.read_melody(notation.to_abc(melody), "abc") == melody  # written back in 3/4
    jig = "X:2\nT:Jig\nM:6/8\nL:1/8\nK:D\nA|dfe dcB|A3 F3|d2f e2c|d3 d2|]\n"
    ((melody, _),), message = media.read_abc_text(jig, 2)  # the pickup pads the first bar; cut to two bars
    assert melody.meter == SIX_EIGHT and len(melody) == 2 * 12 and message.endswith("cut to the first 2 bars")
    assert melody.to_notes()[0] == Note(69, 10, 12)
    assert "M:6/8" in notation.to_abc(melody).splitlines()


def test_pasting_from_another_site_is_refused(client: TestClient) -> None:
    response = client.post("/api/melodies/abc", json={"text": TUNE}, headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
