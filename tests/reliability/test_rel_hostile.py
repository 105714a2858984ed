"""Fault 8: hostile input. Pickled NPZ blobs are refused wherever stamps are decoded (and no code
path loads NPZ with pickles allowed); brick names and catalog paths cannot leave the configured
root; credentials never reach errors, logs or manifests."""

from __future__ import annotations

import ast
import io
import json
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_survey

from darkhaloscope.errors import DarkHaloScopeError, SecurityError, redact

SRC = Path(__file__).resolve().parents[2] / "src" / "darkhaloscope"


# -- pickles ---------------------------------------------------------------------------------
class _Canary:
    """Unpickling this creates a directory: proof that a pickle was executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _evil_npz(canary: Path, member: str) -> bytes:
    buf = io.BytesIO()
    arrays = {"image": np.zeros((3, 4, 4), np.float32), "invvar": np.ones((3, 4, 4), np.float32),
              "maskbits": np.zeros((4, 4), np.int32), "arc": np.zeros((3, 4, 4), np.float32)}
    arrays[member] = np.array([_Canary(str(canary))], dtype=object)
    np.savez(buf, **arrays)
    return buf.getvalue()


def _decoders():
    from darkhaloscope.dataset import stamp
    from darkhaloscope.ml.data import decode_image

    return {"decode_npz": (stamp.decode_npz, "maskbits"), "decode_stamp": (stamp.decode_stamp, "invvar"),
            "decode_arc": (stamp.decode_arc, "arc"), "ml.decode_image": (decode_image, "image")}


@pytest.mark.parametrize("name", ["decode_npz", "decode_stamp", "decode_arc", "ml.decode_image"])
def test_pickled_npz_is_refused_by_every_decoder(name, tmp_path):
    fn, member = _decoders()[name]
    canary = tmp_path / "pickle-ran"
    blob = _evil_npz(canary, member)
    with pytest.raises(SecurityError, match="pickled"):
        fn(blob)
    assert not canary.exists()
    # the test is real: the same blob DOES run code when pickles are allowed
    with np.load(io.BytesIO(blob), allow_pickle=True) as npz:
        npz[member]
    assert canary.exists()


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            owner = f.value.id if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) else ""
            yield node, owner, name


def test_no_code_path_loads_npz_or_pickles_with_pickles_allowed():
    """Every ``np.load`` in src/ passes ``allow_pickle=False`` literally; nothing calls
    ``pickle.load(s)`` or passes ``allow_pickle=True``."""
    np_loads, offenders, seen = 0, [], set()
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "numpy" and any(a.name == "load" for a in node.names):
                offenders.append(f"{path}:{node.lineno}: from numpy import load")
        for node, owner, name in _calls(tree):
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            kw = {k.arg: k.value for k in node.keywords}
            if "allow_pickle" in kw and not (isinstance(kw["allow_pickle"], ast.Constant) and kw["allow_pickle"].value is False):
                offenders.append(f"{where}: allow_pickle not literally False")
            if owner in ("np", "numpy") and name == "load":
                np_loads += 1
                seen.add(str(path.relative_to(SRC)))
                if "allow_pickle" not in kw:
                    offenders.append(f"{where}: np.load without allow_pickle=False")
            if owner in ("pickle", "cPickle", "dill", "cloudpickle") and name in ("load", "loads"):
                offenders.append(f"{where}: {owner}.{name}")
    # every NPZ decode goes through dataset/stamp.py: the scan must at least see that one
    assert np_loads >= 1 and "dataset/stamp.py" in seen, f"the scan is not looking at the right files: {sorted(seen)}"
    assert not offenders, offenders


# -- paths -----------------------------------------------------------------------------------
HOSTILE_BRICKS = ["../../../etc/passwd", "1500p100/../../../../tmp", "/etc/passwd", "..", "1500p100/..",
                  "1500p100/../1499p100", "150\x000p100", "1500p100;rm -rf ~", "s3://other-bucket/x",
                  "1500p1000", "", "1500P100", "1500p100/", "..\\..\\windows"]


def test_hostile_bricknames_never_leave_the_survey_root(world, monkeypatch):
    from darkhaloscope.inject import inject
    from darkhaloscope.sources.bank import SourceBank
    from darkhaloscope.survey import remote
    from darkhaloscope.survey.brick_reader import BrickReader
    from darkhaloscope.survey.bricks import coadd_relpath, tractor_relpath

    root = str(world.survey)
    opened = []
    real_open = remote.open_file

    def spy(r, rel, options=None):  # records, then does the real thing
        opened.append((r, rel))
        return real_open(r, rel, options)

    monkeypatch.setattr(remote, "open_file", spy)
    bank = SourceBank.open(str(world.bank))
    task = next(t for t in world.tasks if t["role"] == "injection")
    reader = BrickReader(root)
    for name in HOSTILE_BRICKS:
        cut = reader.cutout(task["ra"], task["dec"], 64, "grz", brickname=name)
        assert not cut.ok and cut.reason.startswith("invalid brick name"), (name, cut.reason)
        row = inject({**task, "brickname": name}, cut, bank, world.cfg)  # the row keeps its (bad) name and says why
        assert row["cutout_ok"] is False and "invalid brick name" in row["cutout_reason"]
        for fn in (lambda n=name: coadd_relpath(n, "image", "g"), lambda n=name: tractor_relpath(n)):
            with pytest.raises(SecurityError):
                fn()
    for band in ("../g", "/", "g/../../x"):
        with pytest.raises(SecurityError):
            coadd_relpath("1500p100", "image", band)
    assert opened == []  # no hostile name reached the filesystem
    ok = reader.cutout(task["ra"], task["dec"], 64, "grz", brickname=task["brickname"])
    assert ok.ok and opened and all(r == root and not rel.startswith(("/", "..")) and "/../" not in rel for r, rel in opened)


@pytest.mark.parametrize("rel", ["../tractor-1500p100.fits", "/etc/tractor-1500p100.fits", "tractor/150/../../../tractor-1500p100.fits",
                                 "tractor/150/tractor-1500p100.fits/..", "tractor/150/tractor-..%2F1500p100.fits", "tractor//tractor-1500p100.fits"])
def test_catalog_relpaths_cannot_escape(rel, world):
    from darkhaloscope.survey.tasks import check_relpath

    with pytest.raises(SecurityError):
        check_relpath(str(world.survey / "tractor"), rel)


def test_catalog_symlink_out_of_the_root_is_refused(world, tmp_path):
    from darkhaloscope.survey.tasks import list_catalogs

    root = copy_survey(world, tmp_path / "survey")
    outside = tmp_path / "outside" / "tractor-1500p100.fits"
    outside.parent.mkdir()
    victim = next((root / "tractor").rglob("tractor-*.fits"))
    outside.write_bytes(victim.read_bytes())
    victim.unlink()
    victim.symlink_to(outside)
    with pytest.raises(SecurityError, match="outside"):
        list_catalogs(str(root / "tractor"))


# -- credentials -----------------------------------------------------------------------------
FAKE = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEDHS0TEST9876",
    "AWS_SECRET_ACCESS_KEY": "dhsFakeSecretKey/NeverLeak+0123456789abcdef",
    "AWS_SESSION_TOKEN": "FQoGZXIvYXdzDHSFAKESESSIONTOKENneverleak0123456789",
}
USERINFO_PASSWORD = "pwUserinfoNeverLeak42"
SECRETS = [*FAKE.values(), USERINFO_PASSWORD]


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.parametrize("text", [
    "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIAFAKEDHS0TEST9876%2F2024&X-Amz-Signature=9f86d081884c7d659a2feaa0c55ad015&X-Amz-Security-Token=FQoGZXIvYXdzDHSFAKESESSIONTOKENneverleak0123456789",
    '{"AccessKeyId": "AKIAFAKEDHS0TEST9876", "SecretAccessKey": "dhsFakeSecretKey/NeverLeak+0123456789abcdef", "SessionToken": "FQoGZXIvYXdzDHSFAKESESSIONTOKENneverleak0123456789"}',
    "aws_secret_access_key = dhsFakeSecretKey/NeverLeak+0123456789abcdef",
    "s3://AKIAFAKEDHS0TEST9876:pwUserinfoNeverLeak42@bucket/key",
    "http://dhs:pwUserinfoNeverLeak42@127.0.0.1:9000 refused",
    "credentials were dhsFakeSecretKey/NeverLeak+0123456789abcdef and FQoGZXIvYXdzDHSFAKESESSIONTOKENneverleak0123456789",
])
def test_redact_masks_every_aws_credential_form(text, monkeypatch):
    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    out = redact(text)
    assert not _leaks(out), out
    signature = "9f86d081884c7d659a2feaa0c55ad015"
    assert signature not in out  # a presigned URL's signature is a bearer credential


def _error_texts(exc: BaseException) -> str:
    parts = [str(exc), repr(exc), " ".join(map(str, exc.args))]
    if isinstance(exc, DarkHaloScopeError):
        back = pickle.loads(pickle.dumps(exc))
        parts += [str(back), json.dumps(back.fields, default=str)]
    return "\n".join(parts)


def test_credentials_never_in_storage_errors_or_logs(s3_server, world, tmp_path, monkeypatch, caplog, capfd):
    """Fake credentials in the environment and in an endpoint URL's userinfo; every storage path
    that fails (write, read, list, footer, bank download, brick read) fails without them."""
    from darkhaloscope.dataset import manifest as mf
    from darkhaloscope.dataset.storage import StorageOptions
    from darkhaloscope.dataset.writer import read_footer, write_shard
    from darkhaloscope.sources.bank import SourceBank
    from darkhaloscope.survey.brick_reader import BrickReader

    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    caplog.set_level(logging.DEBUG)
    host = s3_server.split("://", 1)[1]
    texts = []
    for endpoint in (f"http://dhs:{USERINFO_PASSWORD}@{host}", s3_server):
        opts = StorageOptions(endpoint=endpoint, retry_attempts=1)
        ops = {
            "put": lambda opts=opts: mf.put_bytes("s3://no-such-bucket-dhs/x/_manifest.json", b"{}", opts),
            "get": lambda opts=opts: mf.get_bytes("s3://no-such-bucket-dhs/x/_manifest.json", opts),
            "list": lambda opts=opts: mf.list_shards("s3://no-such-bucket-dhs/x", opts),
            "footer": lambda opts=opts: read_footer("s3://no-such-bucket-dhs/x/split=train/part-00000.parquet", opts),
            "shard": lambda opts=opts: write_shard([], "s3://no-such-bucket-dhs/x/split=train/part-00000.parquet", options=opts),
            "bank": lambda opts=opts: SourceBank.open("s3://no-such-bucket-dhs/bank.h5", cache_dir=str(tmp_path), options=opts),
        }
        for name, op in ops.items():
            try:
                op()
            except Exception as exc:  # noqa: BLE001 - every failure's text is checked
                texts.append(f"{name}: {_error_texts(exc)}")
            else:
                texts.append(f"{name}: no error")
        t = world.tasks[0]
        cut = BrickReader("s3://no-such-bucket-dhs/survey", options=opts).cutout(t["ra"], t["dec"], 64, "grz", brickname=t["brickname"])
        assert not cut.ok
        texts.append(f"cutout: {cut.reason}")
    out, err = capfd.readouterr()
    everything = "\n".join(texts) + caplog.text + out + err
    failed = [x for x in texts if not x.endswith(": no error")]
    assert len(failed) >= 10 and "no-such-bucket-dhs" in everything, texts  # the operations really failed
    print("\n".join(texts))
    assert not _leaks(everything), _leaks(everything)


def test_manifest_never_holds_credentials(tmp_path, monkeypatch):
    """A config whose endpoint carries userinfo, inputs given as presigned / userinfo URLs: the
    written _manifest.json holds none of it."""
    from darkhaloscope.config import config_from_dict
    from darkhaloscope.dataset import manifest as mf

    for k, v in FAKE.items():
        monkeypatch.setenv(k, v)
    cfg = config_from_dict({"generate": {"s3_endpoint": f"http://dhs:{USERINFO_PASSWORD}@127.0.0.1:9000"},
                            "paths": {"bank": f"s3://{FAKE['AWS_ACCESS_KEY_ID']}:{USERINFO_PASSWORD}@b/bank.h5"}})
    inputs = {"tasks": f"https://h/t.parquet?X-Amz-Credential={FAKE['AWS_ACCESS_KEY_ID']}%2F2024&X-Amz-Security-Token={FAKE['AWS_SESSION_TOKEN']}",
              "bank": f"http://dhs:{USERINFO_PASSWORD}@127.0.0.1:9000/b/bank.h5", "bricks": "s3://b/survey"}
    shards = [{"split": "train", "partition": 0, "rows": 1, "bytes": 10, "sha256": "0" * 64}]
    url = mf.write_manifest(str(tmp_path / "ds"), mf.build_manifest(cfg, shards, inputs))
    text = Path(url).read_text()
    assert not _leaks(text), _leaks(text)
    assert json.loads(text)["inputs"]["bricks"] == "s3://b/survey"  # redaction keeps what is not secret
