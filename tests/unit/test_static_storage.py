"""The production static storage keeps each URL it built, and only those."""

import json

import pytest

from config.storage import ManifestStaticFilesStorage


@pytest.fixture
def storage(tmp_path):
    manifest = {"paths": {"css/app.css": "css/app.0123abcd.css"}, "version": "1.1"}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    return ManifestStaticFilesStorage(location=str(tmp_path), base_url="/static/")


def test_a_url_is_the_hashed_name_and_is_built_once(storage, monkeypatch):
    assert storage.url("css/app.css") == "/static/css/app.0123abcd.css"
    looked_up = []
    original = storage.stored_name
    monkeypatch.setattr(
        storage, "stored_name", lambda name: looked_up.append(name) or original(name)
    )
    assert storage.url("css/app.css") == "/static/css/app.0123abcd.css"
    assert looked_up == []


def test_a_name_missing_from_the_manifest_stays_an_error(storage):
    for _ in range(2):  # refused again: a failure is not kept
        with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
            storage.url("css/missing.css")
