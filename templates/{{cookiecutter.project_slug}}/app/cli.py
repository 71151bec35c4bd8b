"""Operator commands: `python -m app.cli --help`.

  python -m app.cli db upgrade                       apply migrations (alembic upgrade heads)
{%- if cookiecutter.auth == 'api_key' %}
  python -m app.cli keys create --tenant acme        create an API key (printed once)
  python -m app.cli keys list [--tenant acme]
  python -m app.cli keys revoke KEY_ID
{%- endif %}
{%- if cookiecutter.usage_billing == 'stripe' %}
  python -m app.cli tenants link --tenant acme --stripe-customer cus_123
  python -m app.cli outbox drain                     send pending usage to Stripe now
  python -m app.cli meter requeue [--id N]           retry dead-lettered meter events
{%- endif %}
"""

from __future__ import annotations

import argparse
import sys

from app.db import base as db
from app.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = parser.add_subparsers(dest="group", required=True)

    dbp = groups.add_parser("db", help="database schema").add_subparsers(dest="cmd", required=True)
    dbp.add_parser("upgrade", help="alembic upgrade heads")
{%- if cookiecutter.auth == 'api_key' %}

    keys = groups.add_parser("keys", help="API keys").add_subparsers(dest="cmd", required=True)
    create = keys.add_parser("create", help="create a key; the secret is printed once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant")
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
{%- endif %}
{%- if cookiecutter.usage_billing == 'stripe' %}

    tenants = groups.add_parser("tenants", help="tenants").add_subparsers(dest="cmd", required=True)
    link = tenants.add_parser("link", help="bill a tenant's usage to a Stripe customer")
    link.add_argument("--tenant", required=True)
    link.add_argument("--stripe-customer", required=True)
    outbox = groups.add_parser("outbox", help="usage export").add_subparsers(dest="cmd", required=True)
    outbox.add_parser("drain", help="deliver pending meter events to Stripe")
    meter = groups.add_parser("meter", help="Stripe meter events").add_subparsers(dest="cmd", required=True)
    requeue = meter.add_parser("requeue", help="retry dead-lettered meter events (all, or --id)")
    requeue.add_argument("--id", type=int, action="append", dest="ids", help="an outbox event id (repeatable)")
{%- endif %}

    args = parser.parse_args(argv)
    settings = get_settings()
    db.configure(settings.database_url)
    if args.group == "db":
        db.upgrade(settings.database_url)
        print("database is at the latest revision")
        return 0
    db.upgrade(settings.database_url)
{%- if cookiecutter.auth == 'api_key' %}
    if args.group == "keys":
        from app.auth import keys as k

        if args.cmd == "create":
            try:
                info, secret = k.create_key(args.tenant, args.name)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            print(f"created key {info.id} for tenant {info.tenant}; store it now, it is not shown again:")
            print(secret)
        elif args.cmd == "list":
            for info in k.list_keys(args.tenant):
                state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "active"
                print(f"{info.id}  {info.tenant:<20} {info.prefix}...  {info.name or '-':<16} {state}")
        elif args.cmd == "revoke":
            if not k.revoke(args.key_id):
                print(f"error: no active key with id {args.key_id!r} (see `keys list`)", file=sys.stderr)
                return 1
            print(f"revoked {args.key_id}")
        return 0
{%- endif %}
{%- if cookiecutter.usage_billing == 'stripe' %}
    if args.group == "tenants":
        from app.db.models import Tenant

        with db.session_scope() as session:
            tenant = session.get(Tenant, args.tenant) or Tenant(id=args.tenant, created_at=db.utcnow())
            tenant.stripe_customer_id = args.stripe_customer
            session.add(tenant)
        print(f"tenant {args.tenant} is billed to {args.stripe_customer}")
        return 0
    if args.group == "outbox":
        import anyio

        from app.metering.stripe import drain

        try:
            result = anyio.run(drain, settings)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(result)
        return 0 if not result.failed else 1
    if args.group == "meter":
        from app.metering.stripe import requeue as requeue_events

        requeued, too_old = requeue_events(args.ids)
        print(f"requeued {requeued} dead-lettered meter event(s)")
        if too_old:
            print(f"error: {too_old} event(s) are older than Stripe's 35-day window and cannot be sent; "
                  "bill them another way (an invoice item)", file=sys.stderr)
            return 1
        return 0
{%- endif %}
    return 2


if __name__ == "__main__":
    sys.exit(main())
