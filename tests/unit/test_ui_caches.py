"""What the UI keeps between script runs, and when it lets go: the Settings, converted pictures, drawn charts."""

from __future__ import annotations

import base64
import io
import os

import plotly.graph_objects as go
import pytest
from PIL import Image

from studio_core.ui import cards, charts, session


@pytest.fixture(autouse=True)
def fresh_settings_memo(clean_env, monkeypatch):
    monkeypatch.setattr(session, "_settings_memo", None)


def test_settings_are_built_again_exactly_when_a_source_changes(tmp_path, monkeypatch):
    first = session.get_settings()
    assert session.get_settings() is first  # nothing changed: the same object, not another validation
    monkeypatch.setenv("STUDIO_MONTHLY_ALLOWANCE", "7")
    second = session.get_settings()
    assert second is not first and second.monthly_allowance == 7
    (tmp_path / ".env").write_text("STUDIO_SIGNUP_BONUS=3\n")
    assert session.get_settings().signup_bonus == 3
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)  # the default data directory is relative to the working directory
    assert session.get_settings().resolved_database_url.startswith(f"sqlite:///{other}")
    monkeypatch.setattr(session, "_secrets_mapping", lambda: {"studio": {"referral_bonus": 9}})
    assert session.get_settings().referral_bonus == 9


def _picture(path, fmt: str, mode: str = "RGB", size=(40, 30)):
    img = Image.new(mode, size, (200, 30, 90, 128)[: len(mode)])  # half transparent where there is alpha
    if size != (40, 30):  # noise, so the file is as large as a real picture of that size
        img = Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    path.write_bytes(buf.getvalue())
    return str(path)


def _data_url(source: str) -> tuple[str, bytes]:
    head, _, body = source.partition(",")
    return head, base64.b64decode(body)


def test_a_small_local_picture_is_handed_to_the_browser_as_a_data_url_made_once(tmp_path):
    cards._local_source.cache_clear()
    webp = _picture(tmp_path / "a.thumb.webp", "WEBP")
    source, fmt = cards.image_source(webp)
    head, data = _data_url(source)
    assert (head, fmt) == ("data:image/webp;base64", "auto")  # st.image passes a data: URL through untouched
    assert data == (tmp_path / "a.thumb.webp").read_bytes()  # the file's own bytes, not re-encoded
    assert cards.image_source(webp)[0] is source  # made once, then kept

    _picture(tmp_path / "a.thumb.webp", "PNG", "RGBA")  # replaced by another picture: made again
    replaced, _ = cards.image_source(webp)
    assert replaced is not source and _data_url(replaced)[0] == "data:image/png;base64"  # the content's type


def test_a_large_local_picture_streamlit_would_re_encode_on_every_run_is_converted_once(tmp_path):
    cards._local_source.cache_clear()
    webp = _picture(tmp_path / "big.webp", "WEBP", size=(400, 300))
    assert os.path.getsize(webp) > cards.DATA_URL_MAX_BYTES
    source, fmt = cards.image_source(webp)
    assert fmt == "JPEG" and Image.open(io.BytesIO(source)).format == "JPEG"
    assert cards.image_source(webp)[0] is source  # converted once, then kept
    assert Image.open(io.BytesIO(source)).size == (400, 300)

    _picture(tmp_path / "big.webp", "WEBP", "RGBA", size=(400, 300))  # replaced: converted again
    replaced, fmt = cards.image_source(webp)
    assert replaced is not source and fmt == "PNG"  # transparency kept, as Streamlit itself would


def test_large_pictures_streamlit_passes_through_are_named_not_converted(tmp_path):
    png = _picture(tmp_path / "b.png", "PNG", size=(400, 300))
    assert cards.image_source(png) == (png, "PNG")  # named: an RGB PNG is not turned into a JPEG either
    url = "https://res.cloudinary.com/demo/image/upload/v1/u1/b.png"
    assert cards.image_source(url) == (url, "auto")  # the browser fetches it
    not_a_picture = tmp_path / "c.thumb.webp"
    not_a_picture.write_bytes(b"<svg onload=alert(1)>")  # never becomes a data: URL: st.image reports it
    assert cards.image_source(str(not_a_picture)) == (str(not_a_picture), "auto")


def test_a_chart_is_drawn_once_per_data_and_again_when_its_data_changes(monkeypatch):
    charts.clear()
    drawn = []

    def draw(values):
        drawn.append(values)
        return go.Figure(go.Bar(x=["a", "b"], y=list(values)))

    first = charts.kept_figure(("gens", (1, 2)), lambda: draw((1, 2)))
    assert charts.kept_figure(("gens", (1, 2)), lambda: draw((1, 2))) is first
    assert list(first.to_dict()["data"][0]["y"]) == [1, 2]
    changed = charts.kept_figure(("gens", (1, 3)), lambda: draw((1, 3)))
    assert list(changed.to_dict()["data"][0]["y"]) == [1, 3] and drawn == [(1, 2), (1, 3)]

    monkeypatch.setattr(charts, "MAX_FIGURES", 2)
    charts.kept_figure(("other", ()), lambda: draw(()))
    assert ("gens", (1, 2)) not in charts._figures  # the least recently used went first
    assert len(charts._figures) == 2


def test_a_kept_chart_is_sent_as_it_was_drawn_without_being_validated_again(monkeypatch):
    """What st.plotly_chart does with a figure: a Figure counts as validated (its to_dict() is sent), where a
    dict would be rebuilt into a Figure, every property validated again, on every run."""
    import plotly.io
    import plotly.tools

    charts.clear()
    original = go.Figure(go.Bar(x=["a", "b"], y=[3, 4])).update_layout(title={"text": "Uses"})
    kept = charts.kept_figure(("uses", (3, 4)), lambda: original)
    built = []
    real_init = go.Figure.__init__

    def counted_init(self, *args, **kwargs):
        built.append(1)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(go.Figure, "__init__", counted_init)
    sent = plotly.tools.return_figure_from_figure_or_data(kept, validate_figure=True)
    assert sent is kept.to_dict() and not built
    assert plotly.io.to_json(sent, validate=False) == plotly.io.to_json(original.to_dict(), validate=False)


def test_a_kept_chart_holds_plain_json_values_and_sends_the_same_json():
    """Dates, numpy arrays and pandas values are converted once, when the chart is kept: plotly's JSON pass over
    the dict on every run then finds only plain values."""
    import datetime as dt

    import numpy as np
    import plotly.io

    charts.clear()
    days = [dt.date(2026, 11, 1) + dt.timedelta(days=i) for i in range(3)]
    original = go.Figure(go.Bar(x=days, y=np.array([1, 2, 3])))
    kept = charts.kept_figure(("dates", tuple(days)), lambda: original).to_dict()

    def values(obj):
        if isinstance(obj, dict):
            return [v for item in obj.values() for v in values(item)]
        if isinstance(obj, list):
            return [v for item in obj for v in values(item)]
        return [obj]

    assert {type(v) for v in values(kept)} <= {str, int, float, bool, type(None)}
    assert kept["data"][0]["x"] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert plotly.io.to_json(kept, validate=False) == plotly.io.to_json(original, validate=False)


def test_a_missing_picture_is_a_square_tile_with_its_label_on_lines_that_fit():
    from xml.etree import ElementTree

    svg = ElementTree.fromstring(cards.missing_tile("Image deleted by its author"))
    assert svg.get("viewBox") == "0 0 240 240"  # square, like a thumbnail
    lines = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}tspan")]
    assert lines == ["Image deleted", "by its author"] and all(len(line) <= cards.TILE_LINE_CHARS for line in lines)
    assert [t.text for t in ElementTree.fromstring(cards.missing_tile("Canceled")).iter(
        "{http://www.w3.org/2000/svg}tspan")] == ["Canceled"]
    assert "&lt;b&gt;" in cards.missing_tile("<b>")  # escaped, should a label ever hold markup
