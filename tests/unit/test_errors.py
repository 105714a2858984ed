"""errors.py: one hierarchy, builtin subclasses, fields survive pickling, credentials redacted."""

from __future__ import annotations

import pickle

import pytest

from darkhaloscope import errors as E


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (E.ConfigError, ValueError), (E.DataFileError, OSError), (E.CatalogError, ValueError),
        (E.CutoutError, ValueError), (E.BankError, ValueError), (E.PhysicsError, ValueError),
        (E.StorageError, OSError), (E.DatasetError, ValueError), (E.SecurityError, ValueError),
        (E.GateFailure, AssertionError),
    ],
)
def test_subclasses_base_and_builtin(cls, builtin):
    err = cls("boom", path="/x")
    assert isinstance(err, E.DarkHaloScopeError) and isinstance(err, builtin)
    with pytest.raises(builtin):
        raise err


def test_pickling_keeps_type_message_and_fields():
    err = E.CatalogError("bad row", path="/data/tractor-1501p100.fits", row=17, field="flux_r")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is E.CatalogError
    assert back.message == "bad row"
    assert back.path == "/data/tractor-1501p100.fits" and back.row == 17 and back.field == "flux_r"
    assert back.fields == err.fields and str(back) == str(err)


def test_redact_masks_credentials():
    text = ("aws_secret_access_key=abcd1234 token: xyz https://user:hunter2@host/p "
            "key AKIAABCDEFGHIJKLMNOP")
    out = E.redact(text)
    for secret in ("abcd1234", "xyz", "hunter2", "AKIAABCDEFGHIJKLMNOP"):
        assert secret not in out
    assert "https://user:***@host/p" in out


def test_messages_and_fields_are_redacted():
    err = E.StorageError("cannot open s3://b/k with secret_key=SEKRET", path="https://u:pw@h/x")
    assert "SEKRET" not in str(err) and "pw@" not in err.path
    assert "SEKRET" not in str(pickle.loads(pickle.dumps(err)))
