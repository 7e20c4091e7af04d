#!/usr/bin/env python3
"""Fidelity test: Google's own Python libraries against the Google emulator.

Usage: test_google_libs.py EMULATOR_URL KEY_FILE

Uses google-auth (service-account credentials with domain-wide delegation, i.e. the JWT bearer
grant) and google-api-python-client (the static discovery document of admin directory_v1, with
api_endpoint pointed at the emulator). Pages through every user (maxResults=500), every group and
every group's members with list_next(), and compares what it saw with the emulator's own
numbers from its control API. Reads the admin activity log with reports_v1 after changes made
through the control API. Also checks a few error paths the libraries must surface as
Google would. Exits non-zero on any mismatch.
"""

import json
import sys
import urllib.request

import google.auth.exceptions
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
]
ADMIN = "admin@example.com"
# The admin activity log (Reports API), for incremental sync.
AUDIT_SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"

failures = []


def check(cond, what):
    if cond:
        print(f"ok   {what}")
    else:
        print(f"FAIL {what}")
        failures.append(what)


def control(url, path):
    with urllib.request.urlopen(f"{url}/_emulator/{path}") as r:
        return json.load(r)


def post_control(url, path, body):
    req = urllib.request.Request(
        f"{url}/_emulator/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def directory(key_file, url, subject=ADMIN):
    creds = service_account.Credentials.from_service_account_file(key_file, scopes=SCOPES).with_subject(subject)
    return build(
        "admin",
        "directory_v1",
        credentials=creds,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": url},
    )


def reports(key_file, url, scopes=(AUDIT_SCOPE,)):
    creds = service_account.Credentials.from_service_account_file(key_file, scopes=list(scopes)).with_subject(ADMIN)
    return build(
        "admin",
        "reports_v1",
        credentials=creds,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": url},
    )


def check_admin_log(url, key_file, users, groups):
    """The admin activity log read by reports_v1: every change made through the control API,
    newest first, paged with list_next, with Google's event names and parameters."""
    old, new = users[2]["primaryEmail"], "renamed.fidelity@example.com"
    post_control(url, "directory/changes", [
        {"op": "rename_user", "old": old, "new": new},
        {"op": "suspend_user", "email": users[3]["primaryEmail"]},
        {"op": "add_alias", "email": users[4]["primaryEmail"], "alias": "alias.fidelity@example.com"},
        {"op": "add_member", "group": groups[0]["email"], "member": users[5]["primaryEmail"]},
        {"op": "delete_user", "email": users[6]["primaryEmail"]},
    ])
    logged = control(url, "activities")["items"]
    rep = reports(key_file, url)
    items, pages = list_all(rep.activities(), "items", userKey="all", applicationName="admin", maxResults=2)
    check(len(items) == len(logged) == 6, f"activities: {len(items)} listed, emulator logged {len(logged)} (rename logs two)")
    check(pages == 3, f"activity pages of 2: {pages}")
    times = [a["id"]["time"] for a in items]
    check(times == sorted(times, reverse=True), "activities come newest first")
    check(all(isinstance(a["id"]["uniqueQualifier"], str) for a in items), "uniqueQualifier is a string")
    names = sorted(a["events"][0]["name"] for a in items)
    want = sorted(["RENAME_USER", "REMOVE_NICKNAME", "SUSPEND_USER", "ADD_NICKNAME", "ADD_GROUP_MEMBER", "DELETE_USER"])
    check(names == want, f"event names: {names}")
    renamed = rep.activities().list(userKey="all", applicationName="admin", eventName="RENAME_USER").execute()
    params = {p["name"]: p["value"] for p in renamed["items"][0]["events"][0]["parameters"]}
    check(params == {"USER_EMAIL": old, "NEW_VALUE": new}, f"RENAME_USER names the old and the new address: {params}")
    none = rep.activities().list(userKey="all", applicationName="admin", eventName="CREATE_GROUP").execute()
    check("items" not in none, "no items field when nothing matches")
    try:
        reports(key_file, url, scopes=SCOPES).activities().list(userKey="all", applicationName="admin").execute()
        check(False, "a token without the audit scope is refused")
    except HttpError as e:
        check(e.resp.status == 403, f"a token without the audit scope answers 403 ({e.resp.status})")


def list_all(collection, field, **kwargs):
    """Pages with list_next; returns (items, pages)."""
    items, pages = [], 0
    request = collection.list(**kwargs)
    while request is not None:
        resp = request.execute()
        pages += 1
        items.extend(resp.get(field, []))
        request = collection.list_next(request, resp)
    return items, pages


def main():
    url, key_file = sys.argv[1].rstrip("/"), sys.argv[2]
    stats = control(url, "stats")
    post_control(url, "counts/reset", {})
    svc = directory(key_file, url)

    users, user_pages = list_all(svc.users(), "users", customer="my_customer", maxResults=500)
    check(len(users) == stats["users"], f"users: {len(users)} listed, emulator has {stats['users']}")
    check(len({u["id"] for u in users}) == len(users), "user ids are unique across pages")
    expected_pages = -(-stats["users"] // 500)
    check(user_pages == expected_pages, f"user pages: {user_pages}, expected {expected_pages}")
    check(all(isinstance(u["id"], str) and u["id"].isdigit() for u in users), "user ids are numeric strings")
    check(any(u.get("aliases") for u in users), "some users have aliases")
    check(all("aliases" not in u or u["aliases"] for u in users), "aliases absent when empty")
    check(all(("suspensionReason" in u) == u["suspended"] for u in users), "suspensionReason only when suspended")
    check(any(u["suspended"] for u in users) and any(u["archived"] for u in users), "suspended and archived users")
    admin = [u for u in users if u["primaryEmail"] == ADMIN]
    check(len(admin) == 1 and admin[0]["isAdmin"] is True, "admin@example.com is a super admin")

    # Partial responses, as dirsync asks for them.
    fields = "nextPageToken,users(id,primaryEmail,name/fullName,suspended,archived,aliases,nonEditableAliases,emails(address))"
    partial, _ = list_all(svc.users(), "users", domain="example.com", maxResults=500, fields=fields)
    check(len(partial) == stats["users"], "users with fields= and domain=")
    allowed = {"id", "primaryEmail", "name", "suspended", "archived", "aliases", "nonEditableAliases", "emails"}
    check(all(set(u) <= allowed for u in partial), "fields= drops unselected fields")
    check(all(set(u["name"]) == {"fullName"} for u in partial), "fields= name/fullName selects a sub-field")
    check(all(all(set(e) == {"address"} for e in u["emails"]) for u in partial), "fields= emails(address)")

    groups, group_pages = list_all(svc.groups(), "groups", customer="my_customer")
    check(len(groups) == stats["groups"], f"groups: {len(groups)} listed, emulator has {stats['groups']}")
    expected_pages = max(1, -(-stats["groups"] // 200))
    check(group_pages == expected_pages, f"group pages: {group_pages}, expected {expected_pages}")
    check(all(isinstance(g["directMembersCount"], str) for g in groups), "directMembersCount is a string")

    total_members, member_pages, expected_member_pages = 0, 0, 0
    mismatched = []
    kinds = set()
    for g in groups:
        members, pages = list_all(svc.members(), "members", groupKey=g["email"])
        total_members += len(members)
        member_pages += pages
        expected_member_pages += max(1, -(-stats["group_members"][g["email"]] // 200))
        kinds.update(m["type"] for m in members)
        if len(members) != stats["group_members"][g["email"]] or str(len(members)) != g["directMembersCount"]:
            mismatched.append(g["email"])
        for m in members:
            if m["type"] == "CUSTOMER" and "email" in m:
                mismatched.append(g["email"] + " (CUSTOMER member with email)")
    check(not mismatched, f"members per group match ({len(mismatched)} mismatched: {mismatched[:5]})")
    check(total_members == stats["members"], f"members: {total_members} listed, emulator has {stats['members']}")
    check(member_pages == expected_member_pages, f"member pages: {member_pages}, expected {expected_member_pages}")
    check({"USER", "GROUP", "CUSTOMER"} <= kinds, f"member types seen: {sorted(kinds)}")

    counts = control(url, "counts")
    check(counts["users_list"] == 2 * -(-stats["users"] // 500), f"emulator counted {counts['users_list']} users.list calls")
    check(counts["members_list"] == expected_member_pages, f"emulator counted {counts['members_list']} members.list calls")
    check(counts["token"] == 1, f"one token for the whole run (emulator counted {counts['token']})")

    # gzip: httplib2 asks for it; the decoded response keeps the original encoding aside.
    resp, _ = svc._http.request(f"{url}/admin/directory/v1/users?customer=my_customer&maxResults=5")
    check(resp.status == 200 and resp.get("-content-encoding") == "gzip", f"responses are gzip-compressed ({resp.get('-content-encoding')})")

    # Single-object methods.
    user = svc.users().get(userKey=users[1]["primaryEmail"]).execute()
    check(user["id"] == users[1]["id"], "users.get by primary email")
    grp = svc.groups().get(groupKey=groups[0]["id"]).execute()
    check(grp["email"] == groups[0]["email"], "groups.get by id")

    # Errors come back as Google's: HttpError with status and reason, RefreshError for the token.
    try:
        svc.members().list(groupKey="no-such-group@example.com").execute()
        check(False, "missing group answers 404")
    except HttpError as e:
        check(e.resp.status == 404 and e.error_details[0]["reason"] == "notFound", f"missing group answers 404 notFound ({e.resp.status})")
    try:
        svc.users().list(customer="C0nonexist").execute()
        check(False, "wrong customer answers 404")
    except HttpError as e:
        check(e.resp.status == 404 and "Domain not found" in str(e), f"wrong customer answers 404 Domain not found ({e.resp.status})")
    try:
        directory(key_file, url, subject="nobody@example.com").users().list(customer="my_customer").execute()
        check(False, "unknown admin is refused")
    except google.auth.exceptions.RefreshError as e:
        check("invalid_grant" in str(e) and "Invalid email or User ID" in str(e), f"unknown admin: {e}")
    non_admin = next(u["primaryEmail"] for u in users if not u["isAdmin"] and not u["suspended"])
    try:
        directory(key_file, url, subject=non_admin).users().list(customer="my_customer").execute()
        check(False, "non-admin is refused")
    except HttpError as e:
        check(e.resp.status == 403 and e.error_details[0]["reason"] == "forbidden", f"non-admin answers 403 forbidden ({e.resp.status})")

    check_admin_log(url, key_file, users, groups)

    print(f"{'FAILED' if failures else 'PASSED'}: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
