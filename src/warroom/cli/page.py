"""`warroom page PLAN` (the read-only status page, or a shareable link to it) and `warroom update PLAN`
(the stakeholder update waiting for its owner; `--approve` publishes it)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from warroom.client import EngineClient
from warroom.core import secrets
from warroom.core.exit_codes import Exit
from warroom.core.text import terminal_safe
from warroom.core.units import format_duration, parse_duration
from warroom.plan.model import Plan
from warroom.plan.page import Page
from warroom.store.paths import StateRef, state_path

KEY_ENV = "WARROOM_PAGE_KEY"  # the page's key when the plan names none: `export WARROOM_PAGE_KEY=…`
UPDATE_LIMIT = 4000  # characters an edited update may have: a status update, not a document


def add_page_parsers(sub: argparse._SubParsersAction, verb: argparse.ArgumentParser | None = None) -> None:
    def duration(text: str) -> float:
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    p = sub.add_parser("page", help="serve the read-only status page (or, with --link, print a shareable link to it)",
                       description="Serve the read-only status page of PLAN from its store (read-only), on loopback unless the "
                                   "plan's `page:` says otherwise; with --link, print a signed link that expires.")
    p.add_argument("plan", help="the plan YAML file")
    p.add_argument("--state", help="state database (default: page.state, else the plan's `state`)")
    p.add_argument("--listen", metavar="HOST:PORT", help="where to listen (default: page.listen, else 127.0.0.1:8080)")
    p.add_argument("--link", action="store_true", help="print a shareable link with an expiring signed token, and exit")
    p.add_argument("--for", dest="valid_for", type=duration, default=86400.0, help="how long a --link is valid (default 24h)")
    u = sub.add_parser("update", help="show the stakeholder update waiting for its owner; --approve publishes it",
                       description="Show the drafted stakeholder update, when it is due and the last one published; "
                                   "--approve publishes it (archived, posted to the notify targets) as you.")
    u.add_argument("plan", help="the plan YAML file")
    u.add_argument("--state", help="state database (default: the plan's `state`, else the user state dir)")
    u.add_argument("--approve", action="store_true", help="publish the draft (or, with --edit-file, your text instead)")
    u.add_argument("--edit-file", metavar="FILE", help="with --approve: publish this file's text (start from `warroom update PLAN > FILE`)")


def page_key(page: Page) -> str | None:
    """The key that signs links: the plan's `page.key`, else $WARROOM_PAGE_KEY; None: no links (loopback only)."""
    ref = page.key or (f"env:{KEY_ENV}" if os.environ.get(KEY_ENV) else None)
    return secrets.resolve(ref) if ref else None


def page_state(plan: Plan, page: Page, override: str | None) -> StateRef:
    if override or page.state is None:
        return state_path(plan, override)
    return page.state.keyed(plan.rollout.name)


def cmd_page(plan: Plan, args: argparse.Namespace) -> int:
    page = plan.page or Page()
    listen = args.listen or page.listen
    key = page_key(page)
    if args.link:
        if key is None:
            print(f"warroom page: links need a key: give the plan `page: {{key: keyring:warroom/page}}` (warroom secret set …) "
                  f"or export {KEY_ENV}", file=sys.stderr)
            return Exit.USAGE
        if args.valid_for <= 0:
            print("warroom page: --for must be more than zero", file=sys.stderr)
            return Exit.USAGE
        from warroom.page.access import link

        base = page.base_url or f"{'https' if page.tls else 'http'}://{listen}"
        url, valid = link(base, key, plan.rollout.name, time.time(), args.valid_for)
        print(url)
        print(f"{valid} (until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(time.time() + args.valid_for))}); "
              "anyone with it can read the page until then", file=sys.stderr)
        return 0
    from warroom.page.server import serve  # the web stack only when the page is served

    return serve(plan.rollout.name, page_state(plan, page, args.state), page, listen=listen, key=key)


def approved_text(plan: Plan, args: argparse.Namespace) -> str | int:
    """What `update --approve` publishes: "" for the engine's draft, the --edit-file's text, or an exit code."""
    if plan.updates is None:
        print(f"warroom update: {plan.path or plan.rollout.name} promises no stakeholder updates: add an `updates:` section "
              "(see the README, \"The status page\")", file=sys.stderr)
        return Exit.USAGE
    if not args.edit_file:
        return ""
    try:
        text = Path(args.edit_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"warroom update: --edit-file {args.edit_file}: cannot read it ({exc.__class__.__name__}: {exc})", file=sys.stderr)
        return Exit.USAGE
    if not text or len(text) > UPDATE_LIMIT:
        print(f"warroom update: --edit-file {args.edit_file}: " + ("it is empty" if not text else
              f"{len(text)} characters; an update has at most {UPDATE_LIMIT}"), file=sys.stderr)
        return Exit.USAGE
    return text


def show_update(plan: Plan, client: EngineClient) -> int:
    """The draft on standard output (to edit and approve), when it is due and by whom on standard error."""
    assert plan.updates is not None  # approved_text said so first
    snap = client.snapshot()
    view = snap.updates if snap is not None else None
    if view is None:
        print(f"{plan.rollout.name}: no engine has published the updates yet (promised: {plan.updates.promises()})", file=sys.stderr)
        return 0
    zone = plan.updates.tz
    from warroom.engine.updates import at  # the times as the update itself writes them

    due = "nothing due now" if view.due is None else f"due by {at(view.due, zone)}" + (
        f", OVERDUE by {format_duration(time.time() - view.due)}" if view.overdue else "")
    print(terminal_safe(f"# {plan.rollout.name}: {due}; owner {view.owner}; promised {view.promises}"), file=sys.stderr)
    if view.draft:
        print(terminal_safe(view.draft, keep_newlines=True))
        print("# approve: warroom update PLAN --approve   (edit: save this text to a file, change it, add --edit-file FILE)",
              file=sys.stderr)
    else:
        print("# no draft waiting" + (f"; last published at {at(view.last_published, zone)}" if view.last_published else ""),
              file=sys.stderr)
    return 0
