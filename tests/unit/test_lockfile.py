"""trtops.lockfile: the lock's encoding and its reading as untrusted input."""

from __future__ import annotations

import json

import pytest

from trtops.errors import InputError
from trtops.keys.fingerprint import key_components, key_of, sha256_json
from trtops.lockfile import (
    LockEntry,
    LockPlatform,
    LockSection,
    lock_path_for,
    read_lock,
    write_section,
)
from trtops.names import parse_duration

H100 = LockPlatform("NVIDIA H100 80GB HBM3", "9.0", "10.13.3.9")


def entry(seed: str) -> LockEntry:
    components = key_components(model_digest=sha256_json(seed), build={"precision": "fp16"},
                                tensorrt="10.13.3.9", gpu="cc9.0-nvidia-h100-80gb-hbm3")
    return LockEntry(key=key_of(components), components=components,
                     engine={"sha256": sha256_json(seed + "engine"), "size": 10},
                     accuracy={"state": "accepted", "summary": "ok"})


def test_a_section_round_trips_and_its_bytes_do_not_depend_on_insertion_order(tmp_path):
    a = LockSection(H100, {"m/a/fp16/h100": entry("a"), "m/b/fp16/h100": entry("b")})
    b = LockSection(H100, {"m/b/fp16/h100": entry("b"), "m/a/fp16/h100": entry("a")})
    assert a.to_bytes() == b.to_bytes()
    path = write_section(tmp_path / "trtops.lock", a)
    assert path.name == "cc9.0-nvidia-h100-80gb-hbm3-trt10.13.3.9.json"
    lock = read_lock(tmp_path / "trtops.lock")
    [section] = lock.sections.values()
    assert section.to_bytes() == a.to_bytes()
    assert lock.keys() == {entry("a").key, entry("b").key}
    assert read_lock(path).keys() == lock.keys()  # one platform file is a lock too
    assert write_section(tmp_path / "trtops.lock", LockSection(H100)) is None
    assert not path.exists()


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other"), "format: not a trtops lock file"),
    (lambda d: d.update(version=2), "version: 2 is not supported"),
    (lambda d: d["platform"].pop("tensorrt"), "platform: needs"),
    (lambda d: d["engines"].update({"../x": {}}), "'../x' is not manifest/model/precision/target"),
    (lambda d: d["engines"]["m/a/fp16/h100"].update(key="x"), "engines.m/a/fp16/h100.key: not an engine key"),
    (lambda d: d["engines"]["m/a/fp16/h100"].update(extra=1), "unknown field 'extra'"),
    (lambda d: d["engines"]["m/a/fp16/h100"]["engine"].update(size=-1), ".engine.size: not a byte count"),
    (lambda d: d["engines"]["m/a/fp16/h100"]["engine"].update(sha256="abc"), ".engine.sha256: not a sha256"),
    (lambda d: d["engines"]["m/a/fp16/h100"]["components"].update(tensorrt="9"), "do not hash to the key"),
])
def test_bad_lock_files_are_errors_naming_file_and_field(tmp_path, edit, message):
    data = LockSection(H100, {"m/a/fp16/h100": entry("a")}).to_json()
    edit(data)
    path = tmp_path / "x.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as error:
        read_lock(path)
    assert str(path) in error.value.message and message in error.value.message


def test_the_lock_lives_beside_the_manifests(tmp_path):
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "a.yaml").write_text("")
    assert lock_path_for([str(tmp_path / "manifests")]) == tmp_path / "manifests" / "trtops.lock"
    assert lock_path_for([str(tmp_path / "manifests" / "a.yaml")]) == tmp_path / "manifests" / "trtops.lock"
    assert lock_path_for(["x.yaml"], "elsewhere.lock").name == "elsewhere.lock"
    with pytest.raises(InputError, match="several directories"):
        lock_path_for([str(tmp_path / "manifests"), str(tmp_path / "b.yaml")])


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("30d") == 30 * 86400
    assert parse_duration("1.5h") == 5400 and parse_duration("2w") == 14 * 86400
    for bad in ("", "30", "d", "-1d", "1y"):
        with pytest.raises(InputError):
            parse_duration(bad)
