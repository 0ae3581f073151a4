/** The download cache: models stored in IndexedDB, opened without network once complete. */
export { openCachedModel, MAX_CHUNK_BYTES, type DownloadProgress, type OpenCachedModelOptions } from './download';
export { listCachedModels, deleteCachedModel, type CachedModelInfo } from './cache';
export { IntegrityError, StorageQuotaError } from './errors';
