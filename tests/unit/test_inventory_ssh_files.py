"""check_ssh_files: the key and known_hosts files the inventory names exist and can be read."""

from pathlib import Path

import pytest
from conftest import write_inventory

from fleet.core.errors import InventoryError
from fleet.inventory import check_ssh_files, load_inventory

DEFAULTS = "data:\n  isatap_prefix: 'fd00:5efe:1ab::/64'\n"
HOSTS = "a:\n  hostname: 10.0.0.1\nb:\n  hostname: 10.0.0.2\n"


def extras(known_hosts=None, client_keys=None) -> str:
    """A defaults.yaml setting the two file options for every host (None: not set)."""
    lines = [f"      known_hosts: '{known_hosts}'\n" if known_hosts is not None else "",
             f"      client_keys: {client_keys}\n" if client_keys is not None else ""]
    return DEFAULTS + "connection_options:\n  asyncssh:\n    extras:\n" + "".join(lines)


@pytest.fixture
def files(tmp_path):
    """A real key file and a real known_hosts file."""
    key = tmp_path / "keys" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    known = tmp_path / "known_hosts"
    known.write_text("")
    return key, known


def inventory(tmp_path, defaults, hosts=HOSTS, groups=None):
    return load_inventory(write_inventory(tmp_path / "inv", hosts, groups, defaults))


def error_of(inv, **kwargs) -> InventoryError:
    with pytest.raises(InventoryError) as caught:
        check_ssh_files(inv, **kwargs)
    return caught.value


def test_files_that_exist_pass(tmp_path, files):
    key, known = files
    check_ssh_files(inventory(tmp_path, extras(known, f"['{key}', '{key}']")))
    check_ssh_files(inventory(tmp_path, extras(known, f"'{key}'")))  # one path, not a list


def test_nothing_named_nothing_checked(tmp_path):
    check_ssh_files(inventory(tmp_path, DEFAULTS))
    check_ssh_files(inventory(tmp_path, DEFAULTS + "connection_options: {asyncssh: {extras: "
                                                   "{known_hosts: null, client_keys: null}}}\n"))


def test_a_missing_key_names_file_host_field_and_path(tmp_path, files):
    key, known = files
    missing = tmp_path / "keys" / "id_rsa"
    inv = inventory(tmp_path, extras(known, f"['{key}', '{missing}']"))  # loading does not look
    err = error_of(inv)
    assert err.file == str(tmp_path / "inv" / "defaults.yaml") and err.host == "a"
    assert err.field == "connection_options.asyncssh.extras.client_keys"
    assert str(err).endswith(f"{missing}: no such file")


def test_a_missing_known_hosts_is_refused_unless_accept_new(tmp_path, files):
    key, _ = files
    missing = tmp_path / "nowhere" / "known_hosts"
    inv = inventory(tmp_path, extras(missing, f"['{key}']"))
    err = error_of(inv)
    assert err.field == "connection_options.asyncssh.extras.known_hosts"
    assert f"{missing}: no such file" in str(err)
    check_ssh_files(inv, allow_missing_known_hosts=True)


def test_accept_new_still_wants_the_keys_and_a_readable_known_hosts(tmp_path, files):
    key, known = files
    inv = inventory(tmp_path, extras(tmp_path / "absent", f"['{key}.nope']"))
    assert error_of(inv, allow_missing_known_hosts=True).field.endswith(".client_keys")
    inv = inventory(tmp_path, extras(tmp_path / "keys", f"['{key}']"))  # a directory is not missing
    err = error_of(inv, allow_missing_known_hosts=True)
    assert err.field.endswith(".known_hosts") and str(err).endswith("not a regular file")


def test_a_path_through_a_file(tmp_path, files):
    key, known = files
    err = error_of(inventory(tmp_path, extras(known, f"['{key}/sub']")))
    assert str(err).endswith(f"{key}/sub: Not a directory")


def test_the_file_that_set_the_option_is_named(tmp_path, files):
    key, known = files
    hosts = "a:\n  hostname: 10.0.0.1\nb:\n  hostname: 10.0.0.2\n  groups: [g]\n"
    groups = f"g:\n  connection_options: {{asyncssh: {{extras: {{client_keys: ['{key}.gone']}}}}}}\n"
    err = error_of(inventory(tmp_path, extras(known, f"['{key}']"), hosts, groups))
    assert err.file == str(tmp_path / "inv" / "groups.yaml") and err.host == "b"
    assert str(err).endswith(f"{key}.gone: no such file (set in group 'g')")
    hosts = (f"a:\n  hostname: 10.0.0.1\n  connection_options: {{asyncssh: {{extras: "
             f"{{known_hosts: '{key}.x'}}}}}}\n")
    err = error_of(inventory(tmp_path, DEFAULTS, hosts))
    assert (err.file, err.host) == (str(tmp_path / "inv" / "hosts.yaml"), "a")


def test_tilde_is_the_home_directory(tmp_path, files, monkeypatch):
    key, known = files
    monkeypatch.setenv("HOME", str(tmp_path))
    check_ssh_files(inventory(tmp_path, extras("~/known_hosts", "['~/keys/id_ed25519']")))
    err = error_of(inventory(tmp_path, extras("~/known_hosts", "['~/keys/id_gone']")))
    assert str(err).endswith(f"{tmp_path}/keys/id_gone: no such file")  # the path after expansion


def test_a_relative_path_is_relative_to_the_current_directory(tmp_path, files, monkeypatch):
    # As asyncssh opens it: not relative to the inventory directory.
    key, known = files
    inv = inventory(tmp_path, extras("known_hosts", "['keys/id_ed25519']"))
    monkeypatch.chdir(tmp_path)
    check_ssh_files(inv)
    monkeypatch.chdir(tmp_path / "inv")
    err = error_of(inv)
    assert str(err).endswith(f"known_hosts (relative to the current directory {tmp_path / 'inv'}): "
                             "no such file")


def test_only_the_selected_hosts_are_checked(tmp_path, files):
    key, known = files
    hosts = (f"a:\n  hostname: 10.0.0.1\n  connection_options: {{asyncssh: {{extras: {{client_keys: "
             f"['{key}.gone']}}}}}}\nb:\n  hostname: 10.0.0.2\n")
    inv = inventory(tmp_path, extras(known, f"['{key}']"), hosts)
    check_ssh_files(inv.select(names=["b"]))
    assert error_of(inv).host == "a"


def test_an_unknown_user_after_tilde(tmp_path, files):
    _, known = files
    err = error_of(inventory(tmp_path, extras(known, "['~no-such-user-here/.ssh/id']")))
    assert "cannot expand '~'" in str(err)


def test_inventory_still_loads_with_the_files_absent(tmp_path):
    inv = inventory(tmp_path, extras(tmp_path / "absent", f"['{Path(tmp_path) / 'gone'}']"))
    assert [h.name for h in inv.hosts] == ["a", "b"]
