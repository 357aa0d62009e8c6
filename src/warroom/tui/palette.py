"""The `:` command palette: warroom's actions, each with its key; nothing of Textual's own."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from warroom.tui.console_app import ConsoleApp
from warroom.tui.keymap import ACTIONS, ConsoleAction, availability
from warroom.tui.safe_text import markup_safe

# Not the bindings that only mean something on their widget (move in the checklist, zoom
# the focused pane), nor the palette itself.
IN_PALETTE = [a for a in ACTIONS if a.scope != "pane" and a.id not in ("checklist.up", "checklist.down", "palette")]


class WarroomCommands(Provider):
    @property
    def _app(self) -> ConsoleApp:
        app = self.app
        assert isinstance(app, ConsoleApp)
        return app

    def _display(self, action: ConsoleAction, title: Content) -> Content:
        key = self._app.key_for(action.id) if action.keys else ""
        return Content.assemble(title, (f"   {key}", "bold") if key else "")

    def _help(self, action: ConsoleAction) -> str:
        state = availability(action, self._app.snapshot)
        return markup_safe(action.does if state.enabled else f"not now: {state.reason}")

    def _run(self, action: ConsoleAction) -> None:
        self._app.run_console_action(action)

    async def discover(self) -> Hits:
        for action in IN_PALETTE:
            yield DiscoveryHit(self._display(action, Content(action.title)), partial(self._run, action),
                               text=action.title, help=self._help(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in IN_PALETTE:
            score = matcher.match(action.title)
            if score > 0:
                yield Hit(score, self._display(action, matcher.highlight(action.title)), partial(self._run, action),
                          text=action.title, help=self._help(action))
