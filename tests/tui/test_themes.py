"""Themes are data files that load in a checkout and from a real (non-editable) install."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from textual.color import Color

from warroom.tui.themes import load_themes, themes_dir
from warroom.tui.widgets.banner import Banner

REPO = Path(__file__).resolve().parents[2]
SHIPPED = {"warroom-dark", "warroom-light", "warroom-high-contrast"}


def test_checkout_themes_load_without_problems():
    themes, problems = load_themes()
    assert themes_dir() == REPO / "themes"
    assert {t.name for t in themes} == SHIPPED and problems == []
    # The environment colours the banner in every theme.
    for theme in themes:
        assert {"env-production", "env-staging", "env-drill"} <= set(theme.variables)


def test_a_broken_theme_file_is_skipped_with_a_message_naming_it(tmp_path):
    (tmp_path / "good.yaml").write_text("name: good\nprimary: '#ff0000'\n")
    (tmp_path / "typo.yaml").write_text("name: typo\nprimary: '#ff0000'\nbackgroud: '#000'\n")
    (tmp_path / "colour.json").write_text(json.dumps({"name": "colour", "primary": "not-a-colour"}))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    themes, problems = load_themes(tmp_path)
    assert [t.name for t in themes] == ["good"]
    text = "\n".join(problems)
    assert "typo.yaml: unknown theme keys: backgroud" in text
    assert "colour.json" in text and "broken.yaml: cannot read the theme" in text


@pytest.mark.slow
def test_themes_ship_in_the_wheel_and_load_from_a_non_editable_install(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", str(REPO), "-w", str(tmp_path / "dist")], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("warroom-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"warroom/themes/{n}.yaml" for n in SHIPPED} <= set(names)

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    probe = "from warroom.tui.themes import load_themes, themes_dir; t, p = load_themes(); print(themes_dir()); print(sorted(x.name for x in t), p)"
    # Run from outside the checkout with the installed copy first on the path.
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(site)},
                         check=True, capture_output=True, text=True).stdout.splitlines()
    assert out[0] == str(site / "warroom" / "themes")
    assert out[1] == f"{sorted(SHIPPED)} []"


def contrast(a, b) -> float:
    """WCAG contrast ratio of two textual Colors (1: none, 21: black on white)."""
    def luminance(c) -> float:
        def channel(v: int) -> float:
            v /= 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "NO_COLOR"])
@pytest.mark.parametrize("environment", ["production", "staging", "drill"])
async def test_environment_badge_is_readable_in_every_theme(console, test_plan, monkeypatch, environment, no_color):
    # Textual reads NO_COLOR when the app is made and then turns every colour grey by luminance.
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    c = console(test_plan({"rollout": {"name": "launch", "environment": environment}}))
    async with c.app.run_test(size=(120, 36)) as pilot:
        await c.tick(pilot)
        assert c.app.no_color == no_color
        banner = c.app.query_one(Banner)
        assert environment.upper() in banner.shown("env").upper()
        for theme in sorted(SHIPPED):
            c.app.theme = theme
            await pilot.pause()
            badge = banner.env_style()
            background, text = Color.from_rich_color(badge.bgcolor), Color.from_rich_color(badge.color)
            around = banner.colors[2]
            if no_color:
                background, text, around = background.monochrome, text.monochrome, around.monochrome
            if badge.reverse:
                background, text = text, background
            assert contrast(text, background) >= 3.0, f"{environment} badge text unreadable in {theme}"
            if no_color and environment != "staging":
                # Without colour only lightness is left: the loud badges must stand out of the banner.
                assert contrast(background, around) >= 3.0, f"{environment} badge lost in the banner in {theme}"
