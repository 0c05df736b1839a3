"""flask commands: init-db, backup, setup-url, create-site, create-user, seed-demo, demo-setup, purge; API keys
(create-api-key, list-api-keys, rotate-key, revoke-key); GDPR (export-visitor, erase-visitor); AWS
(replay-dead-letters).

What they print for a person is in the language of the environment (LC_ALL, LC_MESSAGES or LANG:
`speaks_the_environment`); what a program reads (ids, keys, secrets, URLs, JSON) stays as it is."""
from __future__ import annotations

import copy
import functools
import gettext
import json
import os
import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from flask_babel import force_locale

from app import privacy
from app.analytics import funnels, goals
from app.auth import api_keys
from app.auth.sites import SiteError, create_site
from app.auth.members import add_member
from app.auth.users import AccountError, create_user, password_matches
from app.context import get_store, now_ms
from app.i18n import DEFAULT_LANGUAGE, LANGUAGES, TRANSLATIONS, N_, catalogue, gettext as _, padded
from app.retention import run_retention
from app.security import private_folder
from app.store.base import DAY_MS, ROLES, Conflict, StoreError


def register_commands(app: Flask) -> None:
    """The commands, their help in the environment's language; and Click's own words in it too
    (Click asks Python's gettext, which now reads our catalogues: CLICK_WORDS)."""
    gettext.bindtextdomain("messages", str(TRANSLATIONS))
    language = environment_language()
    for command in (init_db, backup, setup_url, create_site_command, create_user_command, seed_demo, demo_setup, purge,
                    create_api_key, list_api_keys, rotate_key, revoke_key, export_visitor, erase_visitor,
                    replay_dead_letters):
        app.cli.add_command(_helped_in(command, language))


def _helped_in(command: click.Command, language: str) -> click.Command:
    """A copy of a command whose help texts (English, marked N_ where it is declared) read in
    `language`; the command itself stays English for the next app."""
    words = catalogue(language)
    helped = copy.copy(command)
    helped.help = words.ugettext(command.help) if command.help else command.help
    helped.params = [copy.copy(param) for param in command.params]
    for param in helped.params:
        if getattr(param, "help", None):
            param.help = words.ugettext(param.help)
    return helped


# What Click itself writes on a help page or an error, marked so that `make translations`
# extracts it (as Click writes it: str.format's fields); Click translates it through gettext.
CLICK_WORDS = (N_("Usage:"), N_("Options"), N_("Commands"), N_("Show this message and exit."),
               N_("Error: {message}"), N_("Try '{command} {option}' for help."), N_("Missing argument"),
               N_("Missing option"), N_("No such option {name!r}."), N_("No such command {name!r}."),
               N_("Invalid value for {param_hint}: {message}"), N_("default: {default}"), N_("required"),
               N_("Aborted!"), N_("Repeat for confirmation"), N_("Error: The two entered values do not match."),
               N_("Do you want to continue?"))


CLI_ACTOR = "cli"  # who the audit log says did what these commands do


def environment_language() -> str:
    """The language of the environment, as the C library reads it: the first of LC_ALL,
    LC_MESSAGES and LANG that is set ("ko_KR.UTF-8" -> "ko"); English for one we do not speak
    ("C", "POSIX", "de_DE.UTF-8") or none."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            code = value.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
            return code if code in LANGUAGES else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def speaks_the_environment(command):
    """A command's callback, run in the environment's language (flask gives it an app context)."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        with force_locale(environment_language()):
            return command(*args, **kwargs)
    return run


def _site(site_id: str):
    site = get_store().get_site(site_id)
    if site is None:
        raise click.ClickException(_("no site %(site)s", site=repr(site_id)))
    return site


def _ready_store():
    """The store, ready for a command that uses it (Store.open_schema): on DynamoDB the stack's
    tables must be there, so that a wrong name or region never makes new ones."""
    store = get_store()
    try:
        store.open_schema()
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    return store


@click.command("init-db", help=N_("Create the store's tables, or upgrade them (safe to run again)."))
@speaks_the_environment
def init_db() -> None:
    get_store().create_schema()
    click.echo(_("store ready: %(url)s", url=current_app.config["STORE_URL"]))


@click.command("backup", help=N_(
    "A consistent copy of the SQLite store into a new file PATH, while the server runs (restore: README, "
    "Backups)."))
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@speaks_the_environment
def backup(path: str) -> None:
    try:
        get_store().backup(path)
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    click.echo(_("backed up to %(path)s", path=path))


@click.command("setup-url", help=N_(
    "The first-run link that creates the first account (it works while there is none)."))
@click.option("--base", default="http://127.0.0.1:8000", show_default=True, help=N_("The address users open."))
@speaks_the_environment
def setup_url(base: str) -> None:
    from app.auth.views import setup_token
    if get_store().list_users():
        raise click.ClickException(_("this instance has accounts already: log in, or use create-user"))
    click.echo(f"{base.rstrip('/')}/setup?token={setup_token()}")


@click.command("create-site", help=N_('Create a site; the last line printed is "SITE_ID TRACKER_KEY".'))
@click.argument("name")
@click.option("--domain", "domains", multiple=True, required=True,
              help=N_("A domain the tracker may send from (repeat for several)."))
@click.option("--timezone", default="UTC", show_default=True, help=N_("IANA time zone for 'today'."))
@click.option("--id", "site_id", default=None, help=N_("A site id of your choice (default: random)."))
@speaks_the_environment
def create_site_command(name: str, domains: tuple[str, ...], timezone: str, site_id: str | None) -> None:
    store = _ready_store()
    try:
        site = create_site(store, name, list(domains), now_ms(), timezone, site_id)
    except SiteError as error:
        raise click.ClickException(str(error)) from error
    click.echo(_("created site %(name)s for %(domains)s", name=repr(site.name), domains=", ".join(site.domains)))
    click.echo(f"{site.site_id} {site.tracker_key}")  # for a program: the last line, as it is


@click.command("create-user", help=N_("Create a user who logs in with EMAIL and the password."))
@click.argument("email")
@click.option("--admin", is_flag=True, help=N_("An instance admin: creates users, sees every site."))
@click.option("--site", "sites", multiple=True, help=N_("A site id to give the user a role on (repeat)."))
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True,
              help=N_("The role on those sites."))
@click.password_option(help=N_("The password (asked for when not given; 10 characters or more)."))
@speaks_the_environment
def create_user_command(email: str, admin: bool, sites: tuple[str, ...], role: str, password: str) -> None:
    store = _ready_store()
    try:
        user = create_user(store, email, password, now_ms(), is_admin=admin)
        for site_id in sites:
            add_member(store, site_id, user.email, role, now_ms())
    except (AccountError, Conflict) as error:
        raise click.ClickException(str(error)) from error
    if sites:
        created = _("created instance admin %(email)s, %(role)s of %(sites)s", email=user.email, role=role,
                    sites=", ".join(sites)) if admin else \
            _("created user %(email)s, %(role)s of %(sites)s", email=user.email, role=role, sites=", ".join(sites))
    else:
        created = _("created instance admin %(email)s", email=user.email) if admin else \
            _("created user %(email)s", email=user.email)
    click.echo(created)


def _seed(site_id: str, days: float, visits_per_day: int) -> dict:
    from app import seed  # the single box's demo (not in the Lambda package)
    store, site = get_store(), _site(site_id)
    end = now_ms()
    visits = seed.plan_visits(site, days, end, visits_per_day)
    batches = list(seed.tracker_batches(visits, end))
    with click.progressbar(length=len(batches), label=_("Seeding %(days)s days of traffic", days=format(days, "g")),
                           show_pos=True) as bar:
        totals = seed.seed(store, site, batches, on_batch=lambda: bar.update(1))
    click.echo(_("%(stored)s events stored, %(dropped)s bot events dropped", stored=totals["accepted"],
                 dropped=totals["dropped"]))
    return totals


@click.command("seed-demo", help=N_("Generate realistic traffic for a site through the real ingestion pipeline."))
@click.argument("site_id")
@click.option("--days", default=3.0, show_default=True, help=N_("How many days of history."))
@click.option("--visits-per-day", default=300, show_default=True)
@speaks_the_environment
def seed_demo(site_id: str, days: float, visits_per_day: int) -> None:
    _seed(site_id, days, visits_per_day)


@click.command("demo-setup", help=N_(
    "Create the store (a SQLite file) and a demo site with traffic (once), and print how to use it."))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@click.option("--days", default=3.0, show_default=True)
@speaks_the_environment
def demo_setup(host: str, port: int, days: float) -> None:
    store = _ready_store()
    site_id = current_app.config["DEMO_SITE_ID"]
    site = store.get_site(site_id)
    if site is None:
        site = create_site(store, "Demo site", sorted({"localhost", "127.0.0.1", host}), now_ms(),
                           site_id=site_id)
        from app.seed import DEMO_GOALS, demo_funnels
        before_traffic = now_ms() - int(days * DAY_MS) - 60_000
        for goal in DEMO_GOALS:  # defined before the demo's traffic, so they count all of it
            goals.add_goal(store, site, *goal, before_traffic)
        for name, steps, window_days in demo_funnels(site):
            funnels.add_funnel(store, site, funnels.new_funnel(site, name, steps, before_traffic, window_days))
        _seed(site.site_id, days, 300)
    login = _demo_login(store, site.site_id)
    base = f"http://{host}:{port}"
    snippet = f'<script defer src="{base}/tracker.js" data-key="{site.tracker_key}"></script>'
    click.echo("")
    for label, value in ((_("Dashboard:"), f"{base}/sites/{site.site_id}"),
                         (_("Log in as:"), _("%(email)s   password: %(password)s", email=DEMO_EMAIL, password=login)),
                         (_("Demo page:"), _("%(url)s   (open it and watch yourself arrive)", url=base + "/demo")),
                         (_("Tracker key:"), site.tracker_key), (_("Snippet:"), snippet)):
        click.echo("  " + padded(label, 14) + " " + value)
    click.echo("")


DEMO_EMAIL = "demo@liveinsight.local"


def _demo_login(store, site_id: str) -> str:
    """The demo admin's password, for `make run` to print: made once and kept in the instance
    folder (readable by this user only), so each run prints the same login."""
    path = Path(current_app.instance_path) / "demo-password"
    user = store.get_user_by_email(DEMO_EMAIL)
    if user is None:
        password = secrets.token_urlsafe(12)
        user = create_user(store, DEMO_EMAIL, password, now_ms(), is_admin=True)
        add_member(store, site_id, DEMO_EMAIL, "owner", now_ms())
        private_folder(path.parent)
        path.touch(mode=0o600)
        path.write_text(password)
        return password
    password = path.read_text().strip() if path.exists() else ""
    if password and password_matches(user, password):
        return password
    return _("(the one you set; `flask --app app create-user` makes another account)")


@click.command("purge", help=N_(
    "Write the month rollups that are due, then delete what is past retention (raw data after 24 h, "
    "rollups after 400 days): what the server does every hour."))
@speaks_the_environment
def purge() -> None:
    done = run_retention(get_store(), now_ms())
    for site_id, months in done["rolled_up_months"].items():
        click.echo(_("site %(site)s: rolled up %(num)s month(s)", site=site_id, num=len(months)))
    # what was deleted: by the names of its tables, as they are
    click.echo(_("%(counts)s deleted", counts=", ".join(f"{n} {what}" for what, n in done["deleted"].items())))


# -- API keys
@click.command("create-api-key", help=N_(
    "A secret key for SITE's stats API, named for what uses it; printed once, last."))
@click.argument("site_id")
@click.argument("name")
@speaks_the_environment
def create_api_key(site_id: str, name: str) -> None:
    _site(site_id)
    try:
        key, secret = api_keys.create_key(get_store(), site_id, name, CLI_ACTOR, now_ms())
    except api_keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(_("created key %(name)s (%(prefix)s…); it is shown only now:", name=repr(key.name), prefix=key.prefix))
    click.echo(secret)


@click.command("list-api-keys", help=N_(
    "SITE's API keys: prefix, state (a code, as the API says it), last use, name."))
@click.argument("site_id")
@speaks_the_environment
def list_api_keys(site_id: str) -> None:
    _site(site_id)
    now = now_ms()
    for key in get_store().list_api_keys(site_id):
        used = _("never used") if key.last_used_ms is None else \
            _("last used %(minutes)s min ago", minutes=(now - key.last_used_ms) // 60_000)
        click.echo(f"{key.prefix}  {api_keys.state(key, now):<8}  {padded(used, 24)}  {key.name}")


def _key_by_prefix(site_id: str, prefix: str):
    matches = [k for k in get_store().list_api_keys(site_id) if k.prefix == prefix or k.key_hash == prefix]
    if len(matches) != 1:
        raise click.ClickException(_("no key %(key)s on %(site)s (list-api-keys shows them)", key=repr(prefix),
                                     site=site_id))
    return matches[0]


@click.command("rotate-key", help=N_(
    "A new secret for the API key KEY (its prefix, as listed); the old one keeps working for the grace "
    "period. The new secret is printed once, last."))
@click.argument("site_id")
@click.argument("key")
@click.option("--grace-hours", type=click.FloatRange(0, 24 * 30), default=None,
              help=N_("How long the old key keeps working (default: LIVEINSIGHT_API_KEY_GRACE_S)."))
@speaks_the_environment
def rotate_key(site_id: str, key: str, grace_hours: float | None) -> None:
    _site(site_id)
    old = _key_by_prefix(site_id, key)
    grace_ms = int((grace_hours * 3600 if grace_hours is not None else current_app.config["API_KEY_GRACE_S"]) * 1000)
    try:
        new, secret = api_keys.rotate(get_store(), old, CLI_ACTOR, now_ms(), grace_ms)
    except api_keys.ApiKeyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(_("rotated %(prefix)s… (valid %(hours)s h more); the new key, shown only now:", prefix=old.prefix,
                 hours=format(grace_ms / 3_600_000, "g")))
    click.echo(secret)


@click.command("revoke-key", help=N_("Revoke the API key KEY (its prefix, as listed) at once."))
@click.argument("site_id")
@click.argument("key")
@speaks_the_environment
def revoke_key(site_id: str, key: str) -> None:
    _site(site_id)
    found = _key_by_prefix(site_id, key)
    api_keys.revoke(get_store(), found, CLI_ACTOR, now_ms())
    click.echo(_("revoked %(prefix)s… (%(name)s)", prefix=found.prefix, name=found.name))


# -- GDPR
@click.command("export-visitor", help=N_(
    "Everything SITE stores that names VISITOR_ID (the tracker's id), as JSON."))
@click.argument("site_id")
@click.argument("visitor_id")
@click.option("--output", type=click.File("w"), default="-", help=N_("Where to write the JSON (default: stdout)."))
@speaks_the_environment
def export_visitor(site_id: str, visitor_id: str, output) -> None:
    try:
        document = privacy.export_visitor(get_store(), _site(site_id), visitor_id, CLI_ACTOR, now_ms())
    except privacy.PrivacyError as error:
        raise click.ClickException(str(error)) from error
    output.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


@click.command("erase-visitor", help=N_(
    "Delete everything SITE stores that names VISITOR_ID (its counted figures stay: they name no one)."))
@click.argument("site_id")
@click.argument("visitor_id")
@click.option("--yes", is_flag=True, help=N_("Confirm the action without prompting."))
@speaks_the_environment
def erase_visitor(site_id: str, visitor_id: str, yes: bool) -> None:
    if not yes:  # asked here, not by click.confirmation_option: in the environment's language
        click.confirm(_("Erase everything stored about this visitor?"), abort=True)
    try:
        deleted = privacy.erase_visitor(get_store(), _site(site_id), visitor_id, CLI_ACTOR, now_ms())
    except privacy.PrivacyError as error:
        raise click.ClickException(str(error)) from error
    click.echo(_("erased: %(counts)s", counts=", ".join(f"{n} {what}" for what, n in deleted.items())))


@click.command("replay-dead-letters", help=N_(
    "AWS: fold again the stream batches in the dead-letter queue QUEUE_URL (the stack's "
    "DeadLetterQueueUrl output) while their records are at most 22 hours old."))
@click.argument("queue_url")
@speaks_the_environment
def replay_dead_letters(queue_url: str) -> None:
    from app.lambda_handlers import replay_dead_letters as replay
    done = replay(get_store(), queue_url)
    click.echo(_("%(replayed)s batches (%(records)s records) folded; %(failing)s failed again, %(gone)s no longer in "
                 "the stream: left in the queue", replayed=done["replayed"], records=done["records"],
                 failing=done["still_failing"], gone=done["gone"]))
    if done["too_old"]:
        click.echo(_("%(records)s records were over 22 hours old and were not folded: whether they were "
                     "counted already is no longer known", records=done["too_old"]))

