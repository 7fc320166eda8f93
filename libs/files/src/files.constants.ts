/** Multipart field that carries the upload (SPEC 5: `POST /upload`, field `file`). */
export const UPLOAD_FIELD = 'file';

/**
 * Bytes kept in memory to sniff the content type. file-type needs 4100 for most formats, but the
 * office formats are ZIP archives whose `[Content_Types].xml` / `mimetype` entry can sit further in.
 */
export const SNIFF_BYTES = 64 * 1024;

/** Longest stored file name (characters), extension kept. */
export const FILENAME_MAX_CHARS = 200;

/** Name used when nothing printable is left after sanitising. */
export const FALLBACK_FILENAME = 'file';

/** Bytes of random id for uploads: 32 hex characters, like session ids. */
export const FILE_ID_BYTES = 16;
export const FILE_ID_PATTERN = /^[0-9a-f]{32}$/;

/** Derivation label for the file URL signing key (so it never equals the JWT key itself). */
export const FILE_URL_KEY_LABEL = 'file-url-signing';

/** Busboy limits besides the file size: one file, a few small text fields. */
export const MULTIPART_LIMITS = { files: 1, fields: 10, fieldSize: 1024, parts: 16 } as const;

/** S3 needs a region for signing even when an endpoint is given; this is the SDK's usual default. */
export const DEFAULT_S3_REGION = 'us-east-1';

/** lib-storage part size (S3's minimum) and parallel parts: bounds the memory of one upload. */
export const S3_PART_SIZE = 5 * 1024 * 1024;
export const S3_QUEUE_SIZE = 2;

/** Subfolder of DATA_DIR for the local driver. */
export const LOCAL_UPLOADS_DIR = 'uploads';
/** Suffix of local temp files (renamed into place when complete). */
export const PARTIAL_SUFFIX = '.partial';

/** Whole-download bound for files an AI provider links to (Dify `message_file`). */
export const REMOTE_FILE_TIMEOUT_MS = 15_000;

/** Uploads looked at per query of the clean-up sweep (and per reference check). */
export const CLEANUP_BATCH = 100;
