"""What counts as a secret, how `mask` hides it, and how token and key files are read."""

from __future__ import annotations

from pathlib import Path

import pytest

from genja import ConfigurationError, ConnectionOptions, Host
from genja._secrets import (
    MASK,
    is_secret_key,
    mask,
    mask_fields,
    mask_result,
    read_secret_file,
    read_token,
)
from genja.task import (
    TaskFailureKind,
    TaskFailureResult,
    TaskMessage,
    TaskMessageLevel,
    TaskSuccessResult,
)


@pytest.mark.parametrize(
    "name",
    [
        "password", "secret", "enable_secret", "passphrase", "private_key", "privateKey",
        "token", "auth-token", "api_key", "ssh_key", "key", "credentials", "pkey", "pass",
    ],
)  # fmt: skip
def test_names_that_hold_secrets(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize(
    "name",
    ["key_file", "host_key_policy", "look_for_keys", "known_hosts", "username", "mode", "bypass"],
)
def test_names_that_do_not(name: str) -> None:
    assert not is_secret_key(name)


def test_mask_hides_secret_keys_and_known_values_and_copies() -> None:
    extras = {"secret": "s1", "key_file": "/k", "passphrase": None, "nested": ["x hunter22 y"]}
    value = {"extras": extras, "note": ("hunter22",)}
    masked = mask(value, ["hunter22", "ab"])
    assert masked == {
        "extras": {"secret": MASK, "key_file": "/k", "passphrase": None, "nested": [f"x {MASK} y"]},
        "note": (MASK,),
    }
    assert extras["secret"] == "s1"
    # Results keep their own keys: only the host's values are masked there.
    assert mask({"token": "t", "v": "hunter22"}, ["hunter22"], by_key=False) == {
        "token": "t",
        "v": MASK,
    }
    # A secret that contains another is masked whole.
    assert mask("pw=hunter22!", ["hunter22", "hunter22!"]) == f"pw={MASK}"


def test_a_host_knows_its_secrets_and_repr_shows_none() -> None:
    host = Host(
        "r1",
        password="pw-111",
        data={"site": "ams", "note": "pw-111 again"},
        connection_options={
            "ssh": ConnectionOptions(
                password="pw-222",
                extras={"passphrase": "pp-333", "key_file": "/keys/r1", "jump": "env-444"},
                env_extras=frozenset({"jump"}),
            ),
            "netconf": ConnectionOptions(extras={"private_key": {"pem": "pk-555"}}),
        },
    )
    assert set(host.secret_values()) == {"pw-111", "pw-222", "pp-333", "env-444", "pk-555"}
    shown = repr(host) + str(host) + repr(host.connection_params("ssh"))
    for secret in host.secret_values():
        assert secret not in shown
    assert "/keys/r1" in shown
    assert "ams" in shown


def test_results_are_masked_field_by_field() -> None:
    secrets = ["hunter22"]
    failed = TaskFailureResult(
        message="login as admin/hunter22 refused",
        kind=TaskFailureKind.AUTHENTICATION,
        details={"argv": ["ssh", "-p", "hunter22"]},
    )
    masked = mask_fields(failed, secrets)
    assert masked.message == f"login as admin/{MASK} refused"
    assert masked.details == {"argv": ["ssh", "-p", MASK]}
    assert masked.kind is TaskFailureKind.AUTHENTICATION
    passed = TaskSuccessResult(metadata={"token": "hunter22"}, summary="ok")
    assert mask_fields(passed, secrets).metadata == {"token": MASK}


def test_secrets_in_levelled_messages_are_masked() -> None:
    result = TaskSuccessResult(
        messages=[
            "plain hunter22",
            TaskMessage(level=TaskMessageLevel.WARNING, text="sent hunter22", code="hunter22x"),
        ]
    )
    masked = mask_result(result, ("hunter22",))
    assert masked.messages == (
        TaskMessage(f"plain {MASK}"),
        TaskMessage(level=TaskMessageLevel.WARNING, text=f"sent {MASK}", code=f"{MASK}x"),
    )


def test_a_result_without_secrets_is_returned_as_it_is() -> None:
    result = TaskSuccessResult(summary="ok", metadata={"out": ["a", {"b": "c"}]})
    assert mask_result(result, ("hunter22",)) is result
    assert mask_result(result, ()) is result
    leaky = TaskSuccessResult(summary="ok", metadata={"out": ["a", {"b": "x hunter22"}]})
    assert mask_result(leaky, ("hunter22",)).metadata == {"out": ["a", {"b": f"x {MASK}"}]}


def test_secret_files_open_to_group_or_others_are_refused(tmp_path: Path) -> None:
    token = tmp_path / "client.token"
    token.write_text("  tok-1234\n")
    token.chmod(0o640)
    with pytest.raises(ConfigurationError) as caught:
        read_token(token, "--client-token-file")
    message = str(caught.value)
    assert message.startswith(f"--client-token-file {token}: permissions 0640 are too open")
    assert f"chmod 600 {token}" in message
    assert "tok-1234" not in message
    token.chmod(0o600)
    assert read_token(token, "--client-token-file") == "tok-1234"
    token.chmod(0o400)
    assert read_secret_file(token, "x") == b"  tok-1234\n"


def test_missing_and_empty_secret_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"--tls-key .*nope.key: cannot read: No such"):
        read_secret_file(tmp_path / "nope.key", "--tls-key")
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    empty.chmod(0o600)
    with pytest.raises(ConfigurationError, match=r"empty.token is empty"):
        read_token(empty, "--token-file")
