"""The footer: the keys that mean something now, each struck through when it cannot act."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive

from warroom.tui.parts import Parts


@dataclass(frozen=True)
class KeyHint:
    """What the footer shows of a key, nothing more: a hint that looks the same compares equal,
    so a reason that changes each second (a soak counting down) does not repaint the footer."""

    key: str  # as displayed, after any remapping from the plan
    label: str
    enabled: bool = True
    loud: bool = False  # the rollback key stands out
    binding_id: str = ""


class KeysBar(Parts):
    PARTS = {"key": "$accent bold", "label": "$foreground", "disabled": "$text-disabled strike", "loud": "$error bold reverse",
             "note": "$warning bold reverse"}
    DEFAULT_CSS = """
    KeysBar { height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    hints: reactive[tuple[KeyHint, ...]] = reactive(())

    def render(self) -> Text:
        text = Text()
        room = self.size.width or None
        for hint in self.hints:
            if not hint.key:  # a note, not a key: "read-only"
                text.append(f" {hint.label} ", self.part("note"))
                text.append("  ")
                continue
            if hint.enabled:
                key_style = self.part("loud" if hint.loud else "key")
                label_style = self.part("label")
            else:
                key_style = label_style = self.part("disabled")
            # Only the loud key gets a padded badge; the rest stay compact for 80 columns.
            key = f" {hint.key} " if hint.loud and hint.enabled else hint.key
            part = Text.assemble((key, key_style), (f" {hint.label}", label_style))
            # A hint shows whole or not at all (`t t…` helps nobody); the hints come most
            # important first, and `?` lists every key.
            if room is not None and text.cell_len + part.cell_len > room:
                break
            text.append_text(part)
            text.append("  ")
        return text
