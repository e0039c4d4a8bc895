/**
 * The one configuration schema. Defaults and descriptions live here; environment variable
 * names (YACHAY_*) are derived from the key paths, so a new key needs no extra wiring.
 */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    school: {
      type: 'string', pattern: '^[a-z0-9-]{3,40}$', default: 'escuela-demo',
      description: 'school id used in MQTT topics and the catalog',
    },
    dataDir: { type: 'string', minLength: 1, default: './.yachay', description: 'SQLite database and content store' },
    log: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        level: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
      },
    },
    http: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        host: { type: 'string', default: '0.0.0.0', description: 'address the LAN server listens on' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8080 },
        maxUploadMB: { type: 'integer', minimum: 1, maximum: 16384, default: 2048, description: 'largest recording a teacher may upload' },
        loginAttemptsPerMinute: { type: 'integer', minimum: 1, maximum: 100, default: 5 },
        studentsNeedLogin: { type: 'boolean', default: false, description: 'students browse without accounts on the school LAN' },
      },
    },
    mqtt: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        host: { type: 'string', default: '0.0.0.0' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 1883 },
        wsPort: { type: 'integer', minimum: 0, maximum: 65535, default: 8083, description: 'MQTT over WebSocket, for web pages' },
      },
    },
    jobs: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        workers: { type: 'integer', minimum: 1, maximum: 8, default: 1, description: 'parallel transcodes (1 on a Pi)' },
        leaseSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 60, description: 'a job not heartbeated for this long goes back to the queue' },
        maxAttempts: { type: 'integer', minimum: 1, maximum: 20, default: 3 },
        backoffSeconds: { type: 'number', minimum: 0, maximum: 86400, default: 30, description: 'first retry delay, doubled each attempt' },
        governor: {
          type: 'object', additionalProperties: false, default: {},
          description: 'pauses transcoding (never serving) when the box is hot or under-powered',
          properties: {
            thermalFiles: {
              type: 'array', items: { type: 'string' }, maxItems: 16,
              default: ['/sys/class/thermal/thermal_zone0/temp', '/sys/class/thermal/thermal_zone1/temp'],
              description: 'temperature files in millidegrees C (Pi: zone0; Jetson: several zones)',
            },
            throttledFile: {
              type: 'string', default: '/sys/devices/platform/soc/soc:firmware/get_throttled',
              description: "the Pi firmware's throttled bits (bit 0: under-voltage now); missing elsewhere",
            },
            hotC: { type: 'number', minimum: 40, maximum: 110, default: 80, description: 'pause encodes at this temperature' },
            resumeC: { type: 'number', minimum: 30, maximum: 105, default: 70, description: 'resume them once cooled to this' },
            intervalMs: { type: 'integer', minimum: 100, maximum: 600000, default: 5000 },
          },
        },
      },
    },
    shutdown: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        serviceMs: { type: 'integer', minimum: 100, maximum: 120000, default: 10000, description: 'deadline for each service to stop' },
      },
    },
    sync: {
      type: 'object', additionalProperties: false, default: {},
      description: 'lessons from the hub (issue 9): enrollment, night window, bandwidth cap, disk quota',
      properties: {
        hub: { type: 'string', default: '', description: 'the hub\'s HTTP URL, for enrollment (`start --hub URL --enroll CODE`); empty: not enrolled' },
        window: { type: 'string', pattern: '^(always|([01]\\d|2[0-3]):[0-5]\\d-([01]\\d|2[0-3]):[0-5]\\d)$', default: '22:00-05:00', description: 'when the link may be used, school time: HH:MM-HH:MM (may cross midnight) or always' },
        timeZone: { type: 'string', default: 'America/Lima', description: 'the school\'s time zone for the window' },
        rateKbps: { type: 'number', minimum: 8, maximum: 10000000, default: 384, description: 'bandwidth cap of the sync, kb/s, shared by all fetches' },
        quotaBytes: { type: 'integer', minimum: 0, default: 0, description: 'disk bytes synced lessons may use; 0: keep 10% of the disk free' },
        origin: { type: 'string', default: '', description: 'another box on the LAN (http://HOST:PORT/) to take lesson bytes from instead of the hub' },
        outboxMaxRows: { type: 'integer', minimum: 100, maximum: 1000000, default: 10000, description: 'up-messages kept while the hub is unreachable' },
        outboxMaxBytes: { type: 'integer', minimum: 65536, maximum: 1073741824, default: 5242880 },
        telemetryMinutes: { type: 'number', minimum: 0.01, maximum: 1440, default: 10, description: 'how often the box reports its health to the hub' },
      },
    },
    hub: {
      type: 'object', additionalProperties: false, default: {},
      description: '`yachay hub start` only (issue 11): what this hub replica does',
      properties: {
        role: {
          type: 'string', enum: ['all', 'api', 'worker'], default: 'all',
          description: 'all: one hub does everything; api: HTTP, enrollment and MQTT, no encodes; worker: encodes only (needs --database and --broker), HTTP just /health and /metrics. k3s/overlays/hub sets it as YACHAY_HUB_ROLE',
        },
      },
    },
    update: {
      type: 'object', additionalProperties: false, default: {},
      description: 'signed releases from the hub, installed in the sync window and rolled back if unhealthy (issue 11 item 7)',
      properties: {
        enabled: { type: 'boolean', default: true, description: 'install newer releases the hub publishes' },
        root: { type: 'string', default: '', description: 'folder with releases/ and the current link (/opt/yachay); empty: found from where the program runs' },
        healthSeconds: { type: 'number', minimum: 1, maximum: 3600, default: 120, description: 'time a new release has to answer /health good before it is rolled back' },
        arch: { type: 'string', pattern: '^([a-z0-9_]{2,16})?$', default: '', description: 'the release arch to follow (x64, arm64); empty: this machine\'s' },
      },
    },
    optimize: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        threads: { type: 'integer', minimum: 0, maximum: 64, default: 0, description: 'ffmpeg threads, 0 = all cores' },
        preset: {
          type: 'string', enum: ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow'],
          default: 'medium', description: 'x264 speed preset: medium measured 11% fewer bytes than veryfast at the same floors (a Pi 4 is about 3x slower than a laptop)',
        },
        segmentSeconds: { type: 'number', minimum: 1, maximum: 30, default: 6, description: 'target HLS segment length' },
        analysisFps: { type: 'number', minimum: 1, maximum: 30, default: 5, description: 'frames per second decoded for analysis' },
        refineCuts: { type: 'boolean', default: true, description: 'move each cut the analysis found onto the source frame where the picture changes (a short decode per cut)' },
        maxAttempts: { type: 'integer', minimum: 1, maximum: 5, default: 3, description: 'encodes per rendition before giving up on a floor' },
        verify: { type: 'boolean', default: true, description: 'measure the quality floors on the output before publishing' },
        ocrLang: { type: 'string', enum: ['spa', 'eng', 'spa+eng'], default: 'spa', description: 'language of slide text for the OCR check' },
        av1: {
          type: 'string', enum: ['off', 'on'], default: 'off',
          description: 'an AV1 data saver (SVT-AV1) beside the H.264 one for phones that decode AV1: 6–16% fewer bytes at the same floors on the bench lectures, for more than twice the encode time (off on a Pi)',
        },
        models: {
          type: 'object', additionalProperties: false, default: {},
          description: 'models that assist the plan (models/manifest.json); `--no-models` turns all off',
          properties: {
            vad: { type: 'boolean', default: true, description: 'speech detection (Silero VAD): pauses between sentences are coded as silence' },
            face: { type: 'boolean', default: true, description: 'face detection (BlazeFace): the teacher becomes a region of interest in talking-head shots' },
            rate: { type: 'boolean', default: true, description: 'learned rate model: the highest quantiser predicted to keep each shot above its floor' },
          },
        },
        floors: {
          type: 'object', additionalProperties: false, default: {},
          properties: {
            ocrRatio: { type: 'number', minimum: 0, maximum: 1, default: 0.97, description: 'slide OCR words kept vs source' },
            ssimTalkingHead: { type: 'number', minimum: 0, maximum: 1, default: 0.95 },
            ssimMotion: { type: 'number', minimum: 0, maximum: 1, default: 0.75 },
            stoi: { type: 'number', minimum: 0, maximum: 1, default: 0.96, description: 'speech intelligibility (STOI) kept' },
          },
        },
      },
    },
    feedback: {
      type: 'object', additionalProperties: false, default: {},
      description: 'what students and teachers say about a lesson (issue 13 item 3)',
      properties: {
        studentBadPerShot: { type: 'integer', minimum: 1, maximum: 1000, default: 3, description: 'student "no" answers on one shot (and more than its "yes") that re-encode it with more bits' },
        answersPerAddressPerHour: { type: 'integer', minimum: 1, maximum: 10000, default: 60, description: 'student answers accepted from one address per hour' },
      },
    },
  },
} as const;

/**
 * The config's TypeScript type, read off the schema above (json-schema-to-ts's FromSchema, for
 * the keywords this schema uses), so a key is written once. Every key has a default the loader
 * fills (test/unit/config/schema-types.test.ts checks), so every key is present after loading.
 */
export type FromSchema<S> =
  S extends { enum: ReadonlyArray<infer E> } ? E
  : S extends { type: 'string' } ? string
  : S extends { type: 'integer' | 'number' } ? number
  : S extends { type: 'boolean' } ? boolean
  : S extends { type: 'array'; items: infer I } ? Array<FromSchema<I>>
  : S extends { type: 'object'; properties: infer P } ? { -readonly [K in keyof P]: FromSchema<P[K]> }
  : never;

export type Config = FromSchema<typeof configSchema>;
export type HttpConfig = Config['http'];
export type MqttConfig = Config['mqtt'];
export type JobsConfig = Config['jobs'];
export type GovernorConfig = JobsConfig['governor'];
export type OptimizeConfig = Config['optimize'];
export type ModelsConfig = OptimizeConfig['models'];
export type Floors = OptimizeConfig['floors'];
export type SyncConfig = Config['sync'];
export type UpdateConfig = Config['update'];
export type FeedbackConfig = Config['feedback'];
export type HubRole = Config['hub']['role'];
