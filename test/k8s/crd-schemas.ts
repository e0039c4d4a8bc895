import Ajv from 'ajv';

/**
 * Our own small JSON Schemas for the objects no npm model covers: Velero's Schedule, Fleet's
 * GitRepo and the fleet.yaml bundle options. They hold only the fields k3s/ uses, with
 * additionalProperties: false, so a misspelt or unsupported field fails here instead of
 * being dropped by the CRD's structural pruning on the cluster. Field names and types follow
 * Velero 1.14's and Fleet 0.13's published CRDs.
 */
const str = { type: 'string', minLength: 1 };
const strList = { type: 'array', items: str };
const labels = { type: 'object', additionalProperties: { type: 'string' } };
const selector = {
  type: 'object',
  additionalProperties: false,
  properties: {
    matchLabels: labels,
    matchExpressions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'operator'],
        properties: { key: str, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: strList },
      },
    },
  },
};
const metadata = {
  type: 'object',
  required: ['name'],
  properties: { name: str, namespace: str, labels, annotations: labels },
};
/** Go duration as Velero writes it: 720h0m0s */
const duration = { type: 'string', pattern: '^([0-9]+h)?([0-9]+m)?([0-9]+s)?$', minLength: 2 };
/** five cron fields, or a @descriptor (robfig/cron, which Velero uses) */
const cron = { type: 'string', pattern: '^(@(yearly|annually|monthly|weekly|daily|midnight|hourly|every [0-9hms]+)|(\\S+\\s+){4}\\S+)$' };

const veleroSchedule = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'velero.io/v1' },
    kind: { const: 'Schedule' },
    metadata: { ...metadata, required: ['name', 'namespace'] },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['schedule', 'template'],
      properties: {
        schedule: cron,
        paused: { type: 'boolean' },
        useOwnerReferencesInBackup: { type: 'boolean' },
        skipImmediately: { type: 'boolean' },
        template: {
          type: 'object',
          additionalProperties: false,
          properties: {
            includedNamespaces: strList,
            excludedNamespaces: strList,
            includedResources: strList,
            excludedResources: strList,
            labelSelector: selector,
            snapshotVolumes: { type: 'boolean' },
            defaultVolumesToFsBackup: { type: 'boolean' },
            includeClusterResources: { type: ['boolean', 'null'] },
            storageLocation: str,
            volumeSnapshotLocations: strList,
            ttl: duration,
            csiSnapshotTimeout: duration,
            itemOperationTimeout: duration,
          },
        },
      },
    },
  },
};

const kustomizeOpts = { type: 'object', additionalProperties: false, required: ['dir'], properties: { dir: str } };

const fleetGitRepo = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: 'fleet.cattle.io/v1alpha1' },
    kind: { const: 'GitRepo' },
    metadata: { ...metadata, required: ['name', 'namespace'] },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['repo'],
      properties: {
        repo: str,
        branch: str,
        revision: str,
        paths: strList,
        bundles: {
          type: 'array',
          minItems: 1,
          items: { type: 'object', additionalProperties: false, required: ['base'], properties: { base: str, options: str } },
        },
        paused: { type: 'boolean' },
        pollingInterval: duration,
        targets: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            properties: { name: str, clusterSelector: selector, clusterGroup: str, clusterGroupSelector: selector, clusterName: str },
          },
        },
      },
    },
  },
};

/** fleet.yaml: bundle options, not a Kubernetes object */
export const fleetYamlSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['kustomize'],
  properties: {
    defaultNamespace: str,
    namespace: str,
    kustomize: kustomizeOpts,
    rolloutStrategy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxUnavailable: { type: ['string', 'integer'], pattern: '^[0-9]+%?$' },
        maxUnavailablePartitions: { type: ['string', 'integer'] },
        autoPartitionSize: { type: ['string', 'integer'] },
        partitions: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name'],
            properties: { name: str, maxUnavailable: { type: ['string', 'integer'], pattern: '^[0-9]+%?$' }, clusterSelector: selector, clusterGroup: str, clusterName: str },
          },
        },
      },
    },
    targetCustomizations: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name: str, clusterSelector: selector, clusterGroup: str, clusterName: str, kustomize: kustomizeOpts },
      },
    },
  },
};

const ajv = new Ajv.default({ allErrors: true, strict: true, allowUnionTypes: true });
const validators = {
  'velero.io/v1 Schedule': ajv.compile(veleroSchedule),
  'fleet.cattle.io/v1alpha1 GitRepo': ajv.compile(fleetGitRepo),
  'fleet.yaml': ajv.compile(fleetYamlSchema),
} as const;

export type OwnSchema = keyof typeof validators;

export function ownSchemaFor(apiVersion: string, kind: string): OwnSchema | undefined {
  const k = `${apiVersion} ${kind}`;
  return k in validators ? (k as OwnSchema) : undefined;
}

/** problems found by one of our schemas (empty = valid) */
export function validateOwn(which: OwnSchema, value: unknown): string[] {
  const v = validators[which];
  if (v(value)) return [];
  return (v.errors ?? []).map((e) => `schema: ${e.instancePath || '/'} ${e.message}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`);
}
