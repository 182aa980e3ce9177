/**
 * Applies a kustomization directory (deploy/aegis) to a test cluster for real (server-side
 * apply, not dry-run), through the client's generic KubernetesObjectApi.
 *
 * It implements the subset of kustomize that deploy/aegis uses — `resources` (files),
 * `configMapGenerator` (name, namespace, files as `path` or `key=path`) and `generatorOptions`
 * (`disableNameSuffixHash: true`, `labels`) — and rejects anything else, so the manifests cannot
 * silently drift into features this applier would ignore. A test compares its output with
 * `kubectl kustomize`.
 */
import { readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';

/** A manifest as plain data. */
export interface Manifest extends KubernetesObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

/** Options of `renderKustomization`. */
export interface RenderOptions {
  /** Content for generator files that do not exist (keyed by path as written in the kustomization). */
  readonly missingFiles?: Readonly<Record<string, string>>;
}

const KNOWN_KEYS = new Set([
  'apiVersion',
  'kind',
  'resources',
  'generatorOptions',
  'configMapGenerator',
]);

interface Kustomization {
  readonly resources?: readonly string[];
  readonly generatorOptions?: {
    readonly disableNameSuffixHash?: boolean;
    readonly labels?: Record<string, string>;
  };
  readonly configMapGenerator?: readonly {
    readonly name: string;
    readonly namespace?: string;
    readonly files: readonly string[];
  }[];
}

/** Reads `<dir>/kustomization.yaml` and returns the objects it produces, in file order. */
export async function renderKustomization(
  dir: string,
  options: RenderOptions = {},
): Promise<Manifest[]> {
  const raw = parse(await readFile(join(dir, 'kustomization.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  const unknown = Object.keys(raw).filter((k) => !KNOWN_KEYS.has(k));
  if (unknown.length > 0)
    throw new Error(`apply-manifests: unsupported keys ${unknown.join(', ')}`);
  const k = raw as Kustomization;
  if (k.configMapGenerator !== undefined && k.generatorOptions?.disableNameSuffixHash !== true) {
    throw new Error(
      'apply-manifests: generators need generatorOptions.disableNameSuffixHash: true',
    );
  }
  const objects: Manifest[] = [];
  for (const file of k.resources ?? []) {
    const text = await readFile(join(dir, file), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message ?? ''}`);
      const obj = doc.toJS() as Manifest | null;
      if (obj !== null) objects.push(obj);
    }
  }
  for (const gen of k.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const entry of gen.files) {
      const [key, path] = entry.includes('=') ? entry.split('=', 2) : [basename(entry), entry];
      if (key === undefined || path === undefined) throw new Error(`bad entry ${entry}`);
      data[key] = await readGeneratorFile(dir, path, options);
    }
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: gen.name,
        ...(gen.namespace === undefined ? {} : { namespace: gen.namespace }),
        ...(k.generatorOptions?.labels === undefined ? {} : { labels: k.generatorOptions.labels }),
      },
      data,
    });
  }
  return objects;
}

async function readGeneratorFile(
  dir: string,
  path: string,
  options: RenderOptions,
): Promise<string> {
  try {
    return await readFile(join(dir, path), 'utf8');
  } catch (err) {
    const stand = options.missingFiles?.[path];
    if (stand !== undefined) return stand;
    throw new Error(`apply-manifests: cannot read ${join(dir, path)}`, { cause: err });
  }
}

/**
 * Server-side applies `objects` (Namespaces first) as field manager `aegis-test`, with force, and
 * returns `Kind/namespace/name` of each. Throws on the first object the server rejects.
 */
export async function applyManifests(
  kc: KubeConfig,
  objects: readonly Manifest[],
): Promise<string[]> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const ordered = [...objects].sort((a, b) => rank(a) - rank(b));
  const applied: string[] = [];
  for (const obj of ordered) {
    const id = `${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
    try {
      await api.patch(obj, undefined, undefined, 'aegis-test', true, PatchStrategy.ServerSideApply);
    } catch (err) {
      throw new Error(`apply-manifests: ${id} rejected: ${String(err)}`, { cause: err });
    }
    applied.push(id);
  }
  return applied;
}

function rank(obj: Manifest): number {
  return obj.kind === 'Namespace' ? 0 : 1;
}

/** A KubeConfig for a bearer token against a test apiserver. */
export function tokenKubeConfig(server: string, caData: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, caData, skipTLSVerify: false }],
    users: [{ name: 'user', token }],
    contexts: [{ name: 'test', cluster: 'test', user: 'user' }],
    currentContext: 'test',
  });
  return kc;
}

/** Directory of deploy/aegis in this checkout. */
export const DEPLOY_AEGIS_DIR = join(dirname(import.meta.dirname), '..', 'deploy', 'aegis');
