"""Superset-side provisioning steps, run with `.venv-superset/bin/python superset/bootstrap.py CMD`.

This file runs inside Superset's own virtual environment (it imports Superset), never in the
pipeline's. `gridcredit bi` (superset/gridcredit_bi.py) calls it with the environment that
superset_config.py reads, and passes secrets on standard input, never on the command line.

Commands:

* ``init``: migrate the metadata database, sync Superset's built-in roles and permissions (what
  `superset db upgrade` and `superset init` do, in one process: one app start instead of two), and
  create or update the admin account from ``{"admin": {"username", "password"}}`` on stdin.
* ``security``: make roles, users and row-level security filters match a JSON spec on stdin
  exactly (see ``sync_security``). Objects this tool manages carry the ``gridcredit:`` prefix (RLS
  filters) or are listed in the spec; Superset's built-in roles are left alone.
"""

# The top-level superset/ folder makes ruff take Apache Superset for first-party code: skip isort here.
# ruff: noqa: I001
from __future__ import annotations

import json
import logging
import sys
import warnings

MANAGED_RLS_PREFIX = "gridcredit: "


def _app():
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    from superset.app import create_app

    app = create_app()
    logging.disable(logging.NOTSET)
    logging.getLogger().setLevel(logging.ERROR)
    return app


def _upsert_user(sm, spec: dict, roles: list) -> str:
    from werkzeug.security import generate_password_hash

    user = sm.find_user(username=spec["username"])
    if user is None:
        user = sm.add_user(
            spec["username"],
            spec.get("first_name", spec["username"]),
            spec.get("last_name", "gridcredit"),
            spec.get("email", f"{spec['username']}@gridcredit.invalid"),
            roles,
            password=spec["password"],
        )
        if not user:
            raise RuntimeError(f"could not create Superset user {spec['username']}")
        return "created"
    changed = False
    if set(user.roles) != set(roles):
        user.roles = roles
        changed = True
    if not _password_matches(user.password, spec["password"]):
        user.password = generate_password_hash(spec["password"])
        changed = True
    if not user.active:
        user.active = True
        changed = True
    if changed:
        sm.update_user(user)
    return "updated" if changed else "unchanged"


def _password_matches(hashed: str, password: str) -> bool:
    from werkzeug.security import check_password_hash

    try:
        return check_password_hash(hashed, password)
    except (TypeError, ValueError):
        return False


def init(spec: dict) -> dict:
    app = _app()
    with app.app_context():
        from flask_migrate import upgrade
        from superset import appbuilder, security_manager
        from superset.extensions import db

        upgrade()
        appbuilder.add_permissions(update_perms=True)
        security_manager.sync_role_definitions()
        admin = spec["admin"]
        status = _upsert_user(security_manager, admin, [security_manager.find_role("Admin")])
        db.session.commit()
        return {"admin": status}


def _role_permissions(sm, spec: dict, all_pvms: list) -> list:
    from superset.extensions import db
    from superset.models.core import Database

    checks = {
        "admin": sm._is_admin_pvm,
        "alpha": sm._is_alpha_pvm,
        "gamma": sm._is_gamma_pvm,
        "sql_lab": sm._is_sql_lab_pvm,
    }
    pvms = [pvm for pvm in all_pvms if any(checks[base](pvm) for base in spec.get("base", []))]
    for permission, view in spec.get("extra", []):
        if permission == "database_access":
            database = db.session.query(Database).filter_by(database_name=view).one_or_none()
            if database is None:
                raise RuntimeError(f"role {spec['name']}: no Superset database named {view!r}")
            view = database.perm
        pvm = sm.find_permission_view_menu(permission, view)
        if pvm is None:
            pvm = sm.add_permission_view_menu(permission, view)
        pvms.append(pvm)
    denied = {tuple(item) for item in spec.get("deny", [])}
    return [pvm for pvm in dict.fromkeys(pvms) if (pvm.permission.name, pvm.view_menu.name) not in denied]


def sync_security(spec: dict) -> dict:
    """Roles, users and RLS filters exactly as in ``spec``.

    spec = {
      "roles": [{"name", "base": ["gamma", ...], "extra": [[perm, view]], "deny": [[perm, view]]}],
      "remove_roles_like": "Regional manager %",   # managed roles no longer in the spec are dropped
      "users": [{"username", "password", "roles": [...], "first_name", "last_name", "email"}],
      "remove_users_like": "manager_%",                # managed users no longer in the spec: deactivated
      "rls": [{"name", "filter_type": "Base"|"Regular", "roles": [...], "datasets": [uuid, ...],
               "group_key", "clause", "description"}],
    }
    """
    app = _app()
    report = {"roles": {}, "users": {}, "rls": {}}
    with app.app_context():
        from superset import security_manager as sm
        from superset.connectors.sqla.models import RowLevelSecurityFilter, SqlaTable
        from superset.extensions import db
        from superset.utils.core import RowLevelSecurityFilterType

        all_pvms = sm._get_all_pvms()
        wanted_roles = {role["name"] for role in spec["roles"]}
        for role_spec in spec["roles"]:
            role = sm.find_role(role_spec["name"])
            created = role is None
            if created:
                role = sm.add_role(role_spec["name"])
            permissions = _role_permissions(sm, role_spec, all_pvms)
            if created or set(role.permissions) != set(permissions):
                role.permissions = permissions
                report["roles"][role_spec["name"]] = "created" if created else "updated"
            else:
                report["roles"][role_spec["name"]] = "unchanged"
        pattern = spec.get("remove_roles_like")
        if pattern:
            for role in db.session.query(sm.role_model).filter(sm.role_model.name.like(pattern)).all():
                if role.name not in wanted_roles:
                    for user in list(role.user):
                        user.roles = [r for r in user.roles if r.id != role.id]
                    db.session.delete(role)
                    report["roles"][role.name] = "removed"
        db.session.flush()

        for user_spec in spec.get("users", []):
            roles = [sm.find_role(name) for name in user_spec["roles"]]
            if None in roles:
                raise RuntimeError(f"user {user_spec['username']}: unknown role in {user_spec['roles']}")
            report["users"][user_spec["username"]] = _upsert_user(sm, user_spec, roles)
        wanted_users = {user_spec["username"] for user_spec in spec.get("users", [])}
        pattern = spec.get("remove_users_like")
        if pattern:
            for user in db.session.query(sm.user_model).filter(sm.user_model.username.like(pattern)).all():
                if user.username not in wanted_users and (user.active or user.roles):
                    # Deactivated, not deleted: the action log keeps referring to the user.
                    user.active = False
                    user.roles = []
                    report["users"][user.username] = "deactivated"

        datasets = {str(table.uuid): table for table in db.session.query(SqlaTable).all()}
        existing = {
            rls.name: rls
            for rls in db.session.query(RowLevelSecurityFilter).all()
            if rls.name.startswith(MANAGED_RLS_PREFIX)
        }
        wanted = set()
        for rls_spec in spec.get("rls", []):
            name = MANAGED_RLS_PREFIX + rls_spec["name"]
            wanted.add(name)
            missing = [uuid for uuid in rls_spec["datasets"] if uuid not in datasets]
            if missing:
                raise RuntimeError(f"RLS {name}: datasets not imported: {missing}")
            tables = [datasets[uuid] for uuid in rls_spec["datasets"]]
            roles = [sm.find_role(role) for role in rls_spec["roles"]]
            if None in roles:
                raise RuntimeError(f"RLS {name}: unknown role in {rls_spec['roles']}")
            filter_type = RowLevelSecurityFilterType(rls_spec["filter_type"])
            rls = existing.get(name)
            state = (
                None
                if rls is None
                else (
                    rls.filter_type,
                    rls.clause,
                    rls.group_key,
                    rls.description,
                    {t.id for t in rls.tables},
                    {r.id for r in rls.roles},
                )
            )
            target = (
                filter_type,
                rls_spec["clause"],
                rls_spec.get("group_key"),
                rls_spec.get("description"),
                {t.id for t in tables},
                {r.id for r in roles},
            )
            if rls is None:
                rls = RowLevelSecurityFilter(name=name)
                db.session.add(rls)
            if state != target:
                rls.filter_type = filter_type
                rls.clause = rls_spec["clause"]
                rls.group_key = rls_spec.get("group_key")
                rls.description = rls_spec.get("description")
                rls.tables = tables
                rls.roles = roles
                report["rls"][name] = "created" if state is None else "updated"
            else:
                report["rls"][name] = "unchanged"
        for name, rls in existing.items():
            if name not in wanted:
                db.session.delete(rls)
                report["rls"][name] = "removed"
        db.session.commit()
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in {"init", "security"}:
        print("usage: bootstrap.py init|security  (JSON spec on stdin)", file=sys.stderr)
        return 2
    spec = json.loads(sys.stdin.read() or "{}")
    result = init(spec) if argv[1] == "init" else sync_security(spec)
    # The last stdout line is the machine-readable result.
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
