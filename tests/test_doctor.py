"""``firebreak doctor``'s cache row: the cache's model files are checked before any run needs them."""

from __future__ import annotations

import shutil

from app.cache.verifier import WEIGHTS
from graph.doctor import check_cache_models


def test_the_cache_row_passes_on_the_shipped_model_files(sqlite_url, make_settings):
    check = check_cache_models(make_settings(sqlite_url))

    assert check.ok, check.detail
    assert "SHA-256 checked" in check.detail


def test_a_damaged_verifier_file_fails_the_cache_row_with_the_command_to_fix_it(tmp_path, sqlite_url, make_settings):
    damaged = tmp_path / "pair_model.safetensors"
    shutil.copy(WEIGHTS, damaged)
    with damaged.open("r+b") as stream:
        stream.seek(-16, 2)
        stream.write(b"\0" * 16)

    check = check_cache_models(make_settings(sqlite_url), weights=damaged)

    assert not check.ok
    assert "is damaged" in check.detail and "git checkout -- app/cache/pair_model.safetensors" in check.detail


def test_the_verifier_file_is_not_required_while_verification_is_off(tmp_path, sqlite_url, make_settings):
    check = check_cache_models(make_settings(sqlite_url, cache={"verify": False}), weights=tmp_path / "absent")

    assert check.ok and "verifier off" in check.detail


def test_the_cache_row_passes_with_the_cache_off(tmp_path, sqlite_url, make_settings):
    check = check_cache_models(make_settings(sqlite_url, cache={"enabled": False}), weights=tmp_path / "absent")

    assert check.ok and check.detail == "cache off"
