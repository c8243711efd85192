"""Drives a running jointcoder with unmodified Python FHIR clients: fhirpy and fhirclient.

Usage: python_clients.py BASE_URL EXAMPLE_BUNDLE OUT_DIR [AUTH_BASE_URL TOKEN_ENDPOINT]

Prints one JSON line per client x flow: {"client", "flow", "result": "works"|"fails"|"n/a",
"detail"}. Every resource a client received or wrote is saved under OUT_DIR, to be judged by
the validators afterwards (tests/clients.rs). A flow that a library does not offer is "n/a"
with the reason, never faked with raw HTTP.
"""
import json
import os
import sys
import traceback

BASE, BUNDLE_PATH, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
AUTH_BASE = sys.argv[4] if len(sys.argv) > 4 else None
TOKEN_ENDPOINT = sys.argv[5] if len(sys.argv) > 5 else None
with open(BUNDLE_PATH, encoding="utf-8") as f:
    BUNDLE = json.load(f)
ICD10 = "https://jointcoder.org/fhir/CodeSystem/icd-10-cn-clinical"
saved = 0


def keep(resource):
    """Saves a resource (a dict or a client model) for the validators."""
    global saved
    if hasattr(resource, "as_json"):
        resource = resource.as_json()
    elif hasattr(resource, "serialize"):
        resource = resource.serialize()
    saved += 1
    with open(os.path.join(OUT, f"py-{saved:04d}.json"), "w", encoding="utf-8") as f:
        json.dump(resource, f, ensure_ascii=False)
    return resource


def report(client, flow, fn):
    try:
        detail = fn()
        print(json.dumps({"client": client, "flow": flow, "result": "works", "detail": detail or ""}, ensure_ascii=False))
    except NotOffered as e:
        print(json.dumps({"client": client, "flow": flow, "result": "n/a", "detail": str(e)}, ensure_ascii=False))
    except Exception as e:  # any failure is the finding
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        print(json.dumps({"client": client, "flow": flow, "result": "fails", "detail": last[:400]}, ensure_ascii=False))
    sys.stdout.flush()


class NotOffered(Exception):
    pass


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def coded_bundle(record_id):
    b = json.loads(json.dumps(BUNDLE))
    b["identifier"]["value"] = record_id
    return b


def first_of(bundle, ty):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == ty)


# --- fhirpy -------------------------------------------------------------------------------
def fhirpy_flows():
    from fhirpy import SyncFHIRClient
    from fhirpy.base.exceptions import MultipleResourcesFound

    c = SyncFHIRClient(BASE)
    state = {}

    def capability():
        cap = c.execute("metadata", method="get")
        keep(cap)
        check(cap["resourceType"] == "CapabilityStatement", "not a CapabilityStatement")
        return f"{len(cap['rest'][0]['resource'])} resource types"

    def code():
        out = c.execute("Bundle/$code", method="post", data=coded_bundle("PY-FHIRPY-1"))
        keep(out)
        cond = first_of(out, "Condition")
        state["condition"] = cond["id"]
        state["subject"] = cond["subject"]["reference"]
        return f"principal {cond['code']['coding'][0]['code']}"

    def read():
        r = c.reference("Condition", state["condition"]).to_resource()
        keep(r)
        check(r.id == state["condition"], "wrong id")
        return r["code"]["coding"][0]["code"]

    def vread_history():
        v = c.execute(f"Condition/{state['condition']}/_history/1", method="get")
        h = c.execute(f"Condition/{state['condition']}/_history", method="get")
        keep(v), keep(h)
        check(h["type"] == "history" and h["total"] >= 1, "no history")
        return f"{h['total']} version(s)"

    def search_paging():
        s = c.resources("Procedure").search(subject=state["subject"]).limit(1)
        every = s.fetch_all()  # follows the next links
        for r in every:
            keep(r)
        total = s.count()  # _count=0 and fhirpy's own _totalMethod=count
        check(len(every) == total and total >= 2, f"{len(every)} fetched, total {total}")
        one = c.resources("Condition").search(_id=state["condition"]).get()
        check(one.id == state["condition"], "_id search")
        return f"{total} procedures over {total} pages; _id search"

    def conditional_create():
        comp = keep(json.loads(json.dumps(BUNDLE["entry"][0]["resource"])))
        ident = "urn:example:hospital:discharge|PY-FHIRPY-COND-1"
        search = c.resources("Composition").search(identifier=ident)
        first, created = search.get_or_create(c.resource("Composition", **comp))
        again, created_again = search.get_or_create(c.resource("Composition", **comp))
        check(created and not created_again and first.id == again.id, f"{created} {created_again} {first.id} {again.id}")
        return "201 then the same resource (200)"

    def review():
        cond = c.reference("Condition", state["condition"]).to_resource()
        cond["verificationStatus"]["coding"][0]["code"] = "confirmed"
        cond.save()
        saved_cond = keep(c.reference("Condition", state["condition"]).to_resource())
        check(saved_cond["meta"]["versionId"] == "2", "not version 2")
        stale = SyncFHIRClient(BASE, extra_headers={"If-Match": 'W/"1"'})
        cond["verificationStatus"]["coding"][0]["code"] = "refuted"
        try:
            stale.resource("Condition", **dict(cond)).save()
        except MultipleResourcesFound:
            # fhirpy maps every 412 to MultipleResourcesFound (its conditional-update meaning).
            return "PUT 200, stale If-Match 412 (fhirpy raises MultipleResourcesFound for any 412)"
        raise AssertionError("a stale If-Match was accepted")

    def terminology():
        look = c.execute("CodeSystem/$lookup", method="get", params={"system": ICD10, "code": "I25.103"})
        exp = c.execute("ValueSet/$expand", method="get", params={"url": ICD10 + "?vs", "filter": "心绞痛", "count": 5})
        tr = c.execute("ConceptMap/$translate", method="get", params={"system": ICD10, "code": "I25.103"})
        for r in (look, exp, tr):
            keep(r)
        check(exp["expansion"]["contains"], "empty expansion")
        maps = c.resources("ConceptMap").search(url=tr_url(tr)).fetch() if tr_url(tr) else []
        return f"lookup, expand ({len(exp['expansion']['contains'])}), translate; {len(maps)} map by url"

    def bulk():
        raise NotOffered("fhirpy has no Bulk Data client")

    def smart():
        raise NotOffered("fhirpy does no SMART discovery")

    for flow, fn in [("capability", capability), ("$code", code), ("read", read), ("vread+_history", vread_history),
                     ("search+paging", search_paging), ("conditional create", conditional_create),
                     ("review If-Match/412", review), ("terminology", terminology), ("bulk export", bulk), ("SMART discovery", smart)]:
        report("fhirpy 2.3.1", flow, fn)


def tr_url(translate_parameters):
    """The ConceptMap a $translate answer came from, if it names one."""
    for p in translate_parameters.get("parameter", []):
        for part in p.get("part", []):
            if part.get("name") == "source":
                return part.get("valueUri") or part.get("valueCanonical")
    return None


# --- fhirclient (SMART on FHIR client-py) -------------------------------------------------
def fhirclient_flows():
    from fhirclient import client
    from fhirclient.models.condition import Condition
    from fhirclient.models.procedure import Procedure

    smart = client.FHIRClient(settings={"app_id": "jointcoder-tests", "api_base": BASE})
    server = smart.server
    state = {}

    def capability():
        smart.prepare()
        cap = server.capabilityStatement  # parsed into fhirclient's R4 models, which check types
        keep(cap)
        return f"{len(cap.rest[0].resource)} resource types, parsed by the client's models"

    def code():
        r = server.post_json("Bundle/$code", coded_bundle("PY-FHIRCLIENT-1"))
        out = keep(r.json())
        cond = first_of(out, "Condition")
        state["condition"], state["subject"] = cond["id"], cond["subject"]["reference"]
        return f"principal {cond['code']['coding'][0]['code']}"

    def read():
        cond = Condition.read(state["condition"], server)
        keep(cond)
        state["model"] = cond
        return cond.code.coding[0].code

    def vread_history():
        v = Condition.read_from(f"Condition/{state['condition']}/_history/1", server)
        h = server.request_json(f"Condition/{state['condition']}/_history")
        keep(v), keep(h)
        check(h["type"] == "history", "not a history")
        return f"{h['total']} version(s)"

    def search_paging():
        every = list(Procedure.where(struct={"subject": state["subject"], "_count": "1"}).perform_resources_iter(server))
        for r in every:
            keep(r)
        check(len(every) >= 2, f"{len(every)} procedures")
        return f"{len(every)} procedures over {len(every)} pages (next links followed)"

    def conditional_create():
        raise NotOffered("fhirclient's create() sends no If-None-Exist and takes no headers")

    def review():
        cond = state["model"]
        cond.verificationStatus.coding[0].code = "confirmed"
        cond.update(server)
        again = Condition.read(state["condition"], server)
        keep(again)
        check(again.meta.versionId == "2", f"version {again.meta.versionId}")
        return "PUT 200 (fhirclient sends no If-Match, so the 412 path is not reachable from it)"

    def terminology():
        look = server.request_json(f"CodeSystem/$lookup?system={ICD10}&code=I25.103")
        keep(look)
        check(look["resourceType"] == "Parameters", "not Parameters")
        return "lookup"

    def bulk():
        raise NotOffered("fhirclient has no Bulk Data client")

    def smart_discovery():
        if not AUTH_BASE:
            raise NotOffered("no authenticated server given")
        secured = client.FHIRClient(settings={"app_id": "jointcoder-tests", "api_base": AUTH_BASE})
        secured.prepare()
        auth = secured.server.auth
        token_uri = getattr(auth, "_token_uri", None)
        check(type(auth).__name__ == "FHIROAuth2Auth", f"auth is {type(auth).__name__}")
        check(token_uri == TOKEN_ENDPOINT, f"token uri {token_uri}")
        return f"OAuth2 from rest.security, token endpoint {token_uri}"

    for flow, fn in [("capability", capability), ("$code", code), ("read", read), ("vread+_history", vread_history),
                     ("search+paging", search_paging), ("conditional create", conditional_create),
                     ("review If-Match/412", review), ("terminology", terminology), ("bulk export", bulk), ("SMART discovery", smart_discovery)]:
        report("fhirclient 4.4.0", flow, fn)


fhirpy_flows()
fhirclient_flows()
