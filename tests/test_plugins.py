"""Plugin discovery: entry points, broken plugins reported not fatal, malformed values named."""

from dlbench.plugins.registry import load_registry


def test_builtin_plugins_come_through_the_entry_point_group():
    registry = load_registry()
    assert {"pytorch", "keras"} <= set(registry.frameworks)
    owners = {name: registry.owner[name] for name in ("pytorch", "keras")}
    assert owners["pytorch"].name == "pytorch" and owners["pytorch"].dist == "dlbench"
    assert owners["keras"].dist_version


def test_broken_plugins_are_reported_and_the_others_still_load(monkeypatch):
    monkeypatch.setenv("DLBENCH_PLUGINS", "plugin_fails_on_import,plugin_misbehaves,plugin_misspelt_hook,fake_plugins")
    registry = load_registry()
    errors = {p.name: p.error for p in registry.plugins}
    assert "needs the frobnicator" in errors["plugin_fails_on_import"]
    assert "lacks the methods version, variants, devices, supports, prepare" in errors["plugin_misbehaves"]
    assert "dlbench_register_framework" in errors["plugin_misspelt_hook"]
    assert {"pytorch", "keras", "fake"} <= set(registry.frameworks)


def test_plugins_can_be_disabled_by_name(monkeypatch):
    monkeypatch.setenv("DLBENCH_DISABLE_PLUGINS", "keras")
    assert "keras" not in load_registry().frameworks
